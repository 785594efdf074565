"""Kaplan-Meier curves and the k-sample log-rank tests, equal to ``survfit`` and ``survdiff``.

References: survival 3.5-3, ``survfit.formula`` (``survfitKM``, ``conf.type="log"``),
``print.survfit``'s median (``survmean``'s ``minmin``) and ``survdiff`` (``strata()``,
``rho=``, after survdiff2.c); the Tarone-Ware and Fleming-Harrington weights after
Klein & Moeschberger (2003), section 7.3.
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
    """``survdiff(Surv(time, event) ~ group [+ strata(s)], rho=)``: chi-square on ``df`` df.

    ``groups`` are the group labels in R's factor-level order (a pandas
    categorical's categories, else the sorted distinct values); ``observed``,
    ``expected`` and ``variance`` follow that order. ``observed`` and ``expected``
    are summed over the strata (the columns ``print.survdiff`` shows); with a
    weight other than 1 they are weighted sums, as survdiff's ``obs`` and ``exp``.
    ``strata`` are the stratum labels in the same order rule (``("all",)`` when
    unstratified), ``n_strata`` their sizes (survdiff's ``strata`` table), and
    ``observed_strata``/``expected_strata`` the group-by-stratum matrices
    (survdiff's ``obs``/``exp`` when stratified). ``rho`` and ``gamma`` are the
    exponents of the weight :math:`S(t-)^\\rho (1 - S(t-))^\\gamma`; ``weight``
    names the weight family ("survival" or "tarone-ware").
    """

    chisq: float
    df: int
    p: float
    groups: tuple[str, ...]
    n: np.ndarray
    observed: np.ndarray
    expected: np.ndarray
    variance: np.ndarray
    strata: tuple[str, ...]
    n_strata: np.ndarray
    observed_strata: np.ndarray
    expected_strata: np.ndarray
    rho: float
    gamma: float
    weight: str


def _factor(values: Any) -> pd.Categorical:
    """Labels as R's factor: a categorical keeps its declared levels, else sorted values."""
    if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        return pd.Categorical(values)
    return pd.Categorical(np.asarray(values, dtype=object))


def _exponent(value: float, name: str) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value:g}")
    return value


def _time_weights(n_risk: np.ndarray, d: np.ndarray, rho: float, gamma: float, weight: str):
    """The weight of each distinct time of one stratum (survdiff2.c's ``wt``).

    "survival": :math:`S(t-)^\\rho (1-S(t-))^\\gamma` with :math:`S(t-)` the
    left-continuous Kaplan-Meier of the pooled stratum, built as survdiff2.c
    builds it (the running product of :math:`(n-d)/n`); "tarone-ware":
    :math:`\\sqrt{n}`.
    """
    if weight == "tarone-ware":
        return np.sqrt(n_risk)
    if rho == 0 and gamma == 0:
        return np.ones_like(n_risk)
    left = np.r_[1.0, np.cumprod((n_risk - d) / n_risk)[:-1]]
    return left**rho * (1 - left) ** gamma


def _stratum_sums(t, e, codes, k, exponents):
    """Weighted observed, expected (per group) and variance of one stratum's rows."""
    unique, inverse = np.unique(t, return_inverse=True)
    at_time = np.zeros((len(unique), k))
    np.add.at(at_time, (inverse, codes), 1.0)
    deaths = np.zeros((len(unique), k))
    np.add.at(deaths, (inverse, codes), e)
    n_risk_group = at_time[::-1].cumsum(axis=0)[::-1]
    n_risk = n_risk_group.sum(axis=1)
    d = deaths.sum(axis=1)
    w = _time_weights(n_risk, d, *exponents)
    rows = d > 0
    share = n_risk_group[rows] / n_risk[rows, None]
    observed = (w[:, None] * deaths).sum(axis=0)
    expected = ((w * d)[rows, None] * share).sum(axis=0)
    nr, dr = n_risk[rows], d[rows]
    scale = w[rows] ** 2 * np.where(nr > 1, dr * (nr - dr) / np.maximum(nr - 1, 1), 0.0)
    variance = np.einsum("t,tj,jk->jk", scale, share, np.eye(k)) - np.einsum(
        "t,tj,tk->jk", scale, share, share
    )
    return observed, expected, variance


def _chisq(observed: np.ndarray, expected: np.ndarray, variance: np.ndarray) -> tuple[float, int]:
    """survdiff's statistic over the groups with expected > 0, the first of them dropped."""
    keep = expected > 0
    df = int(keep.sum()) - 1
    if df < 1:
        return 0.0, df
    diff = (observed - expected)[keep][1:]
    v = variance[np.ix_(keep, keep)][1:, 1:]
    return float(diff @ np.linalg.solve(v, diff)), df


def _labels_checked(time, event, group, strata):
    """Validated time, event, group and stratum factors; missing labels name their rows."""
    labels = _factor(group)
    layers = _factor(np.zeros(len(labels)) if strata is None else strata)
    arrays = [np.where(labels.isna(), np.nan, 0.0)]  # a missing label is a bad row
    names = ["time", "event", "group"]
    if strata is not None:
        arrays.append(np.where(layers.isna(), np.nan, 0.0))
        names.append("strata")
    rows = next((v for v in (group, strata) if isinstance(v, pd.Series)), None)
    t, e, *_ = check_survival(time, event, *arrays, names=names, rows=rows)
    return t, e, labels, layers.remove_unused_categories()


def logrank(
    time: Any,
    event: Any,
    group: Any,
    strata: Any = None,
    rho: float = 0.0,
    gamma: float = 0.0,
    weight: str = "survival",
) -> LogRank:
    """The k-sample (stratified, weighted) log-rank test, as ``survdiff`` (survival 3.5-3).

    Within each stratum, at each distinct event time with :math:`d` events among
    :math:`n` at risk (:math:`n_j` in group j) and weight :math:`w`:
    :math:`O_j \\mathrel{+}= w\\,d_j`, :math:`E_j \\mathrel{+}= w\\,d\\,n_j/n` and
    :math:`V_{jk} \\mathrel{+}= w^2 d\\,(n-d)/(n-1)\\,(n_j/n)(\\delta_{jk} - n_k/n)`;
    O, E and V are summed over the strata. The statistic is
    :math:`(O-E)^\\top V^{-1} (O-E)` over the groups with :math:`E > 0`, first one
    dropped, on (number of such groups - 1) df.

    The weight is survdiff's G-rho family, :math:`w = S(t-)^\\rho` with
    :math:`S(t-)` the left-continuous Kaplan-Meier of the pooled stratum: rho = 0
    is the log-rank test, rho = 1 Peto & Peto's modification of the
    Gehan-Wilcoxon test; both equal ``survdiff(..., rho=)``. Two weights that
    survdiff does not have follow Klein & Moeschberger (2003), section 7.3: the
    Fleming-Harrington :math:`G^{p,q}` weight :math:`S(t-)^p (1 - S(t-))^q`
    (``rho`` = p, ``gamma`` = q; gamma = 0 is survdiff's G-rho) and the
    Tarone-Ware weight :math:`\\sqrt{n}` (``weight="tarone-ware"``); these two
    are checked against hand computations, not against R. Unlike survdiff we do
    not apply ``timefix``: times are taken as given.

    Parameters
    ----------
    time, event
        Follow-up time and event indicator.
    group
        One label per row; at least two distinct labels. Missing labels are an
        error naming the rows (R would drop them).
    strata
        Optional stratum label per row (``strata(centre)``); missing labels are
        an error naming the rows.
    rho, gamma
        Exponents of the weight :math:`S(t-)^\\rho (1 - S(t-))^\\gamma`, each >= 0.
    weight
        "survival" (the weight above) or "tarone-ware" (rho and gamma must be 0).
    """
    rho, gamma = _exponent(rho, "rho"), _exponent(gamma, "gamma")
    if weight not in ("survival", "tarone-ware"):
        raise ValueError(f"weight must be 'survival' or 'tarone-ware', got {weight!r}")
    if weight == "tarone-ware" and (rho or gamma):
        raise ValueError("the Tarone-Ware weight takes no rho or gamma")
    t, e, labels, layers = _labels_checked(time, event, group, strata)
    codes, levels = labels.codes, labels.categories
    k = len(levels)
    if k < 2:
        raise ValueError(f"group needs at least two distinct values, found {k}")
    sums = [
        _stratum_sums(t[s], e[s], codes[s], k, (rho, gamma, weight))
        for s in (layers.codes == i for i in range(len(layers.categories)))
    ]
    observed_strata = np.column_stack([o for o, _, _ in sums])
    expected_strata = np.column_stack([x for _, x, _ in sums])
    observed, expected = observed_strata.sum(axis=1), expected_strata.sum(axis=1)
    variance = np.sum([v for _, _, v in sums], axis=0)
    chisq, df = _chisq(observed, expected, variance)
    return LogRank(
        chisq=chisq,
        df=df,
        p=float(stats.chi2.sf(chisq, df)) if df >= 1 else float("nan"),
        groups=tuple(str(v) for v in levels),
        n=np.bincount(codes, minlength=k),
        observed=observed,
        expected=expected,
        variance=variance,
        strata=("all",) if strata is None else tuple(str(v) for v in layers.categories),
        n_strata=np.bincount(layers.codes, minlength=len(layers.categories)),
        observed_strata=observed_strata,
        expected_strata=expected_strata,
        rho=rho,
        gamma=gamma,
        weight=weight,
    )
