"""Kaplan-Meier curves and the k-sample log-rank test, equal to ``survfit`` and ``survdiff``.

References: survival 3.5-3, ``survfit.formula`` (``survfitKM``, ``conf.type="log"``),
``print.survfit``'s median (``survmean``'s ``minmin``) and ``survdiff(rho=0)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from toolkit.stats._checks import check_survival
from toolkit.stats.wald import quantile

# print.survfit treats survival within sqrt(machine epsilon) of 0.5 as equal to it.
_MEDIAN_TOLERANCE = float(np.sqrt(np.finfo(float).eps))


@dataclass(frozen=True, eq=False)
class KaplanMeier:
    """A Kaplan-Meier curve at every distinct observed time (``survfit(Surv(time, event) ~ 1)``).

    ``std_err`` is survfit's ``std.err``: Greenwood's standard error of the
    cumulative hazard :math:`-\\log S`, i.e. :math:`\\sqrt{\\sum d/(n(n-d))}` (infinite
    once :math:`n = d`); the standard error of :math:`S` itself (what
    ``summary(survfit)`` prints) is ``survival * std_err``. ``lower``/``upper``
    are the default log-scale limits :math:`S\\exp(\\mp z\\,\\mathrm{se})`, the upper one
    capped at 1, NaN where :math:`S = 0` (R's NA). ``median``, ``median_lower``
    and ``median_upper`` are the three numbers ``print(survfit)`` shows.
    """

    time: np.ndarray
    n_risk: np.ndarray
    n_event: np.ndarray
    n_censor: np.ndarray
    survival: np.ndarray
    std_err: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    median: float
    median_lower: float
    median_upper: float
    conf_level: float
    n: int
    n_events: int

    def at(self, times: Any) -> np.ndarray:
        """Survival at `times`: the right-continuous step function (1 before the first time).

        As ``summary(fit, times=..., extend=TRUE)``: after the last observed time
        the last value is carried forward.
        """
        t = np.atleast_1d(np.asarray(times, dtype=float))
        i = np.searchsorted(self.time, t, side="right") - 1
        return np.where(i >= 0, self.survival[np.maximum(i, 0)], 1.0)

    def to_frame(self) -> pd.DataFrame:
        """The curve as a table (columns as survfit's components)."""
        return pd.DataFrame(
            {
                "time": self.time,
                "n_risk": self.n_risk,
                "n_event": self.n_event,
                "n_censor": self.n_censor,
                "survival": self.survival,
                "std_err": self.std_err,
                "lower": self.lower,
                "upper": self.upper,
            }
        )


def _first_below_half(y: np.ndarray, x: np.ndarray) -> float:
    """survmean's ``minmin``: first time y <= 0.5; on a flat stretch at exactly 0.5,
    the midpoint between its start and the next drop."""
    keep = ~np.isnan(y) & (y < 0.5 + _MEDIAN_TOLERANCE)
    if not keep.any():
        return float("nan")
    x, y = x[keep], y[keep]
    if abs(y[0] - 0.5) < _MEDIAN_TOLERANCE:
        lower = np.flatnonzero(y < y[0])
        if lower.size:
            return float((x[0] + x[lower[0]]) / 2)
    return float(x[0])


def kaplan_meier(time: Any, event: Any, conf_level: float = 0.95) -> KaplanMeier:
    """Kaplan-Meier estimate with Greenwood SE and log-scale CI, as ``survfit`` (survival 3.5-3).

    :math:`\\hat S(t) = \\prod_{t_i \\le t} (1 - d_i/n_i)`, reported at every distinct
    observed time (events and censorings), like ``survfit``. Unlike survfit we do not
    apply ``timefix`` (merging times that differ by rounding error): times are
    taken as given.

    Parameters
    ----------
    time, event
        Follow-up time and event indicator (1 = event, 0 = censored). A cohort
        without events is an error (as everywhere in sigkit).
    conf_level
        Level of the pointwise confidence limits and the median's CI.
    """
    t, e = check_survival(time, event)
    unique, inverse = np.unique(t, return_inverse=True)
    n_event = np.bincount(inverse, weights=e, minlength=len(unique))
    n_total = np.bincount(inverse, minlength=len(unique)).astype(float)
    n_risk = len(t) - np.r_[0.0, np.cumsum(n_total)[:-1]]
    survival = np.cumprod(1 - n_event / n_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        increment = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
    std_err = np.sqrt(np.cumsum(increment))
    z = quantile(conf_level)
    positive = survival > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_s = np.log(np.where(positive, survival, 1.0))
        lower = np.where(positive, np.exp(log_s - z * std_err), np.nan)
        upper = np.where(positive, np.minimum(np.exp(log_s + z * std_err), 1.0), np.nan)
    return KaplanMeier(
        time=unique,
        n_risk=n_risk,
        n_event=n_event,
        n_censor=n_total - n_event,
        survival=survival,
        std_err=std_err,
        lower=lower,
        upper=upper,
        median=_first_below_half(survival, unique),
        median_lower=_first_below_half(lower, unique),
        median_upper=_first_below_half(upper, unique),
        conf_level=conf_level,
        n=len(t),
        n_events=int(e.sum()),
    )


@dataclass(frozen=True, eq=False)
class LogRank:
    """``survdiff(Surv(time, event) ~ group)``: chi-square on ``df`` degrees of freedom.

    ``groups`` are the group labels in R's factor-level order (a pandas
    categorical's categories, else the sorted distinct values); ``observed``,
    ``expected`` and ``variance`` follow that order.
    """

    chisq: float
    df: int
    p: float
    groups: tuple[str, ...]
    n: np.ndarray
    observed: np.ndarray
    expected: np.ndarray
    variance: np.ndarray


def logrank(time: Any, event: Any, group: Any) -> LogRank:
    """The k-sample log-rank test, as ``survdiff(..., rho=0)`` (survival 3.5-3).

    At each distinct event time with :math:`d` events among :math:`n` at risk
    (:math:`n_j` in group j): :math:`E_j \\mathrel{+}= d\\,n_j/n` and
    :math:`V_{jk} \\mathrel{+}= d\\,(n-d)/(n-1)\\,(n_j/n)(\\delta_{jk} - n_k/n)`. The
    statistic is :math:`(O-E)^\\top V^{-1} (O-E)` over the groups with
    :math:`E > 0`, first one dropped, on (number of such groups - 1) df.

    Parameters
    ----------
    time, event
        Follow-up time and event indicator.
    group
        One label per row; at least two distinct labels. Missing labels are an
        error naming the rows (R would drop them).
    """
    if isinstance(getattr(group, "dtype", None), pd.CategoricalDtype):
        labels = pd.Categorical(group)  # keep the declared level order, as R's factor
    else:
        labels = pd.Categorical(np.asarray(group, dtype=object))
    flags = np.where(labels.isna(), np.nan, 0.0)  # a missing label is a bad row
    rows = group if isinstance(group, pd.Series) else None
    t, e, _ = check_survival(time, event, flags, names=("time", "event", "group"), rows=rows)
    codes, levels = labels.codes, labels.categories
    k = len(levels)
    if k < 2:
        raise ValueError(f"group needs at least two distinct values, found {k}")
    unique, inverse = np.unique(t, return_inverse=True)
    at_time = np.zeros((len(unique), k))
    np.add.at(at_time, (inverse, codes), 1.0)
    deaths = np.zeros((len(unique), k))
    np.add.at(deaths, (inverse, codes), e)
    n_risk_group = at_time[::-1].cumsum(axis=0)[::-1]
    n_risk = n_risk_group.sum(axis=1)
    d = deaths.sum(axis=1)
    rows = d > 0
    share = n_risk_group[rows] / n_risk[rows, None]
    observed = deaths.sum(axis=0)
    expected = (d[rows, None] * share).sum(axis=0)
    nr, dr = n_risk[rows], d[rows]
    scale = np.where(nr > 1, dr * (nr - dr) / np.maximum(nr - 1, 1), 0.0)
    variance = np.einsum("t,tj,jk->jk", scale, share, np.eye(k)) - np.einsum(
        "t,tj,tk->jk", scale, share, share
    )
    keep = expected > 0
    df = int(keep.sum()) - 1
    if df < 1:
        chisq = 0.0
    else:
        diff = (observed - expected)[keep][1:]
        v = variance[np.ix_(keep, keep)][1:, 1:]
        chisq = float(diff @ np.linalg.solve(v, diff))
    return LogRank(
        chisq=chisq,
        df=df,
        p=float(stats.chi2.sf(chisq, df)) if df >= 1 else float("nan"),
        groups=tuple(str(v) for v in levels),
        n=np.bincount(codes, minlength=k),
        observed=observed,
        expected=expected,
        variance=variance,
    )
