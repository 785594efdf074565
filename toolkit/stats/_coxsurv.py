"""Predicted survival of a Cox model with its uncertainty, as ``survfit(coxfit, newdata)``.

survival 3.5-3's ``coxsurv.fit`` and ``agsurv``, for a right-censored ``coxph`` fit.
At each distinct event time :math:`t_k` of a stratum, with case weights
:math:`w_i`, centred covariates :math:`x_i - \\bar x` (``fit$means``), risk
:math:`r_i = e^{(x_i - \\bar x)^\\top\\beta}`, :math:`m_k` tied events of total
weight :math:`W_k`, risk-set sums :math:`S_0 = \\sum_{R_k} w_i r_i`,
:math:`S_1 = \\sum_{R_k} w_i r_i x_i` and event sums :math:`D_0, D_1` (the same
over the :math:`m_k` events), Efron's sub-steps :math:`f_j = j / m_k`,
:math:`j = 0 .. m_k - 1` (Breslow: :math:`m_k = 1` step, :math:`f = 0`), and
:math:`A_j = S_0 - f_j D_0`:

.. math::

    dH_k = \\frac{W_k}{m_k}\\sum_j \\frac{1}{A_j}, \\qquad
    dV_k = \\frac{W_k}{m_k}\\sum_j \\frac{1}{A_j^2}, \\qquad
    d\\bar X_k = \\frac{W_k}{m_k}\\sum_j \\frac{S_1 - f_j D_1}{A_j^2}

(``agsurv``'s ``hazard``, ``varhaz`` and ``xbar``: vartype 3, the Efron
correction of ``agsurv5.c``, for ``ties="efron"``; vartype 2 for Breslow). For a
new row :math:`z` with risk :math:`r = e^{(z - \\bar x)^\\top\\beta}`, the
cumulative hazard is :math:`r H(t)`, :math:`H(t) = \\sum_{t_k \\le t} dH_k`, and
its variance (Tsiatis; Andersen et al. 1993, eq. VII.2.15)

.. math::

    \\operatorname{var}\\{r H(t)\\} = r^2 \\Big( \\sum_{t_k \\le t} dV_k
        + d(t)^\\top V d(t) \\Big), \\qquad
    d(t) = H(t)\\,(z - \\bar x) - \\sum_{t_k \\le t} d\\bar X_k,

with :math:`V` the coefficients' variance (``fit$var``: the robust one when
coxph reports it, as for non-integer weights). ``survfit.coxph`` (``stype = 2``,
``ctype`` from the ties) gives :math:`S = e^{-rH}`; its ``std.err`` is on the
log scale (``logse = TRUE``), the standard error of :math:`rH = -\\log S`, and
``std.chaz`` is the same number. ``summary.survfit`` prints ``S * std.err``
(here ``survival_se``). The limits are those of ``survfit_confint`` at
:math:`z_{(1 + level)/2}`: "log" :math:`S e^{\\mp z\\,se}` (upper at most 1),
"log-log" :math:`S^{e^{\\mp z\\,se / \\log S}}`, "plain" :math:`S \\mp z\\,se\\,S`
within [0, 1].

At a time before the first observed time of the row's stratum the values are
``summary.survfit``'s added starting row (survival 1, SE 0, limits 1); beyond the
last time the last values (``extend = TRUE``). As R, the "log-log" limits are
undefined (NaN, R's NA) where the curve is still 1, i.e. from a censoring time
before the stratum's first event up to that event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from toolkit.stats._checks import listed
from toolkit.stats._rows import row_products
from toolkit.stats.wald import quantile

if TYPE_CHECKING:
    from toolkit.stats.cox import CoxFit, RiskSets

ConfType = Literal["log", "log-log", "plain"]
CONF_TYPES: tuple[str, ...] = ("log", "log-log", "plain")


@dataclass(frozen=True, eq=False)
class PredictedSurvival:
    """Predicted survival with its uncertainty: ``summary(survfit(fit, newdata), times)``.

    Every matrix is (rows of new data, times), in the order given. ``survival``
    equals ``CoxFit.predict_survival`` exactly; ``std_err`` is survfit's
    ``std.err``, the standard error of the cumulative hazard (of ``-log S``);
    ``lower`` and ``upper`` its ``conf.type`` limits at ``conf_int``;
    ``cumulative_hazard`` is survfit's ``cumhaz``.
    """

    times: np.ndarray
    survival: np.ndarray
    std_err: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    cumulative_hazard: np.ndarray
    conf_type: str
    conf_int: float

    @property
    def std_chaz(self) -> np.ndarray:
        """survfit's ``std.chaz``: for a Cox curve (``stype = 2``) the same as ``std_err``."""
        return self.std_err

    @property
    def survival_se(self) -> np.ndarray:
        """The standard error on the survival scale, ``S * std.err`` (``summary.survfit``'s
        ``std.err``)."""
        return self.survival * self.std_err


@dataclass(frozen=True)
class CurveTerms:
    """``agsurv``'s sums at each distinct event time, cumulated within each stratum.

    Event times are in the risk sets' order (stratum, then time); the hazard
    refers to covariates at the means.
    """

    time: np.ndarray
    stratum: np.ndarray  # stratum index of each event time
    cumhaz: np.ndarray  # H(t_k)
    varhaz: np.ndarray  # sum of dV up to t_k
    xbar: np.ndarray  # (events, p): sum of dXbar up to t_k
    first_time: np.ndarray  # per stratum: its first observed time


def curve_terms(risk: RiskSets, beta: np.ndarray) -> CurveTerms:
    """The module docstring's :math:`H`, :math:`\\sum dV` and :math:`\\sum d\\bar X` of a fit's
    (centred, sorted) risk sets at its coefficients."""
    we = risk.weight * np.exp(risk.x @ beta)
    g = len(risk.group_first)
    columns = np.c_[we, we[:, None] * risk.x]
    cumulated = np.concatenate([np.zeros((1, columns.shape[1])), np.cumsum(columns, axis=0)])
    sums = cumulated[risk.group_end] - cumulated[risk.group_first]
    s0, s1 = sums[:, 0], sums[:, 1:]
    dead_we = we[risk.death_rows]
    d0 = np.bincount(risk.group, weights=dead_we, minlength=g)
    d1 = np.add.reduceat(dead_we[:, None] * risk.x_dead, risk.group_start, axis=0)
    f, k = risk.efron_fraction, risk.group
    denom = s0[k] - f * d0[k]
    meanwt = (risk.group_weight / risk.group_size)[k]
    hazard = np.bincount(k, weights=meanwt / denom, minlength=g)
    varhaz = np.bincount(k, weights=meanwt / denom**2, minlength=g)
    weighted_mean = (meanwt / denom**2)[:, None] * (s1[k] - f[:, None] * d1[k])
    xbar = np.add.reduceat(weighted_mean, risk.group_start, axis=0)
    ends = np.unique(risk.stratum_end)
    stratum = np.searchsorted(ends, risk.group_end)
    return CurveTerms(
        time=risk.time[risk.group_first],
        stratum=stratum,
        cumhaz=_cumulate(hazard, stratum),
        varhaz=_cumulate(varhaz, stratum),
        xbar=_cumulate(xbar, stratum),
        first_time=risk.time[np.r_[0, ends[:-1]]],
    )


def _cumulate(values: np.ndarray, stratum: np.ndarray) -> np.ndarray:
    """Cumulative sums along axis 0, restarting at each stratum."""
    out = np.empty_like(values)
    for level in np.unique(stratum):
        here = stratum == level
        out[here] = np.cumsum(values[here], axis=0)
    return out


def check_times(times: Any) -> np.ndarray:
    """Prediction times: a 1-D array of finite values >= 0 (any order, repeats allowed)."""
    try:
        t = np.atleast_1d(np.asarray(times, dtype=float))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"times must be numeric: {exc}") from None
    if t.ndim != 1 or not len(t):
        raise ValueError(f"times must be a non-empty 1-D list of times, got shape {t.shape}")
    bad = ~np.isfinite(t) | (t < 0)
    if bad.any():
        raise ValueError(
            f"times must be finite and >= 0; got {listed(f'{v:g}' for v in t[bad])} "
            f"(positions {listed(np.flatnonzero(bad))})"
        )
    return t


def check_level(conf_type: str, conf_int: float) -> None:
    if conf_type not in CONF_TYPES:
        raise ValueError(f"conf_type must be one of {list(CONF_TYPES)}, got {conf_type!r}")
    if not (isinstance(conf_int, int | float) and 0 < conf_int < 1):
        raise ValueError(f"conf_int must be a level in (0, 1), got {conf_int!r}")


def check_rows(x: np.ndarray, rows: Any) -> None:
    """Every covariate row finite; a bad one is named by ``rows`` (labels) or position."""
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        labels = np.arange(len(x)) if rows is None else np.asarray(rows)
        raise ValueError(
            f"X has missing or infinite covariates in rows {listed(labels[bad])}: "
            "no prediction there"
        )


def stratum_index(baseline: pd.DataFrame, strata: Any, n: int) -> np.ndarray:
    """Each new row's stratum: its index among the fit's (sorted) strata, 0 when unstratified.

    ``baseline`` is the fit's ``baseline_cumulative_hazard``, whose ``strata`` column
    (a stratified fit's) has the strata as its categories.
    """
    if "strata" not in baseline.columns:
        return np.zeros(n, dtype=np.int64)
    if strata is None:
        raise ValueError("this fit is stratified: pass strata (one label per row)")
    labels = np.asarray(strata).astype(str)
    if labels.shape != (n,):
        raise ValueError(f"strata has {labels.size} labels for {n} rows")
    known = [str(level) for level in baseline["strata"].cat.categories]
    unknown = ~np.isin(labels, known)
    if unknown.any():
        raise ValueError(
            f"unknown strata {sorted({str(v) for v in labels[unknown]})} in rows "
            f"{listed(np.flatnonzero(unknown))}; the fit's are {known}"
        )
    return np.searchsorted(known, labels)


def predicted_survival(
    fit: CoxFit,
    x: np.ndarray,
    times: np.ndarray,
    stratum: np.ndarray,
    conf_type: str,
    conf_int: float,
) -> PredictedSurvival:
    """``summary(survfit(fit, newdata), times, extend=TRUE)`` for checked rows ``x`` (each
    with its stratum index) and checked ``times``."""
    terms = curve_terms(fit.risk_sets, fit.coef)
    lp = row_products(x, fit.coef)
    cumhaz = np.empty((len(x), len(times)))
    base = fit.baseline_cumulative_hazard
    codes = base["strata"].cat.codes.to_numpy() if fit.stratified else np.zeros(len(base), int)
    for level in np.unique(stratum):
        here = stratum == level
        rows = codes == level
        knots, hazard = base["time"].to_numpy()[rows], base["hazard"].to_numpy()[rows]
        # the arithmetic of predict_survival, so that survival equals it bit for bit
        i = np.searchsorted(knots, times, side="right") - 1
        cumhaz[here] = np.outer(np.exp(lp[here]), np.where(i >= 0, hazard[np.maximum(i, 0)], 0.0))
    survival = np.exp(-cumhaz)
    std_err = curve_std_err(terms, fit.coef, fit.means, fit.variance, x, times, stratum)
    lower, upper = confidence_limits(survival, std_err, terms, times, stratum, conf_type, conf_int)
    return PredictedSurvival(
        times, survival, std_err, lower, upper, cumhaz, conf_type, float(conf_int)
    )


def confidence_limits(
    survival: np.ndarray,
    std_err: np.ndarray,
    terms: CurveTerms,
    times: np.ndarray,
    stratum: np.ndarray,
    conf_type: str,
    conf_int: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``conf_type`` limits of ``survival`` (rows, times) with its log-scale ``std_err``,
    1 before the first observed time of each row's stratum (the module docstring)."""
    lower, upper = _limits(survival, std_err, conf_type, quantile(conf_int))
    before = times[None, :] < terms.first_time[stratum][:, None]
    lower[before], upper[before] = 1.0, 1.0
    return lower, upper


def curve_std_err(
    terms: CurveTerms,
    coef: np.ndarray,
    means: np.ndarray,
    variance: np.ndarray,
    x: np.ndarray,
    times: np.ndarray,
    stratum: np.ndarray,
) -> np.ndarray:
    """:math:`r \\sqrt{\\sum dV + d^\\top V d}` per row and time (the module docstring).

    Only the fit's curve terms, coefficients, means and variance ``V`` enter, so a model
    saved without its data (``toolkit.study.bundle``) gives survfit's standard errors too.
    """
    centred = x - means
    risk = np.exp(row_products(centred, coef))
    p = x.shape[1]
    cumhaz = np.zeros((len(x), len(times)))
    varhaz = np.zeros_like(cumhaz)
    xbar = np.zeros((len(x), len(times), p))
    for level in np.unique(stratum):
        events = np.flatnonzero(terms.stratum == level)
        if not len(events):  # a stratum without events: no hazard, no variance
            continue
        here = stratum == level
        i = np.searchsorted(terms.time[events], times, side="right") - 1
        at, reached = events[np.maximum(i, 0)], i >= 0
        cumhaz[here] = np.where(reached, terms.cumhaz[at], 0.0)
        varhaz[here] = np.where(reached, terms.varhaz[at], 0.0)
        xbar[here] = np.where(reached[:, None], terms.xbar[at], 0.0)
    d = cumhaz[:, :, None] * centred[:, None, :] - xbar
    quadratic = np.einsum("ijp,pq,ijq->ij", d, variance, d)
    return risk[:, None] * np.sqrt(varhaz + quadratic)


def _limits(
    survival: np.ndarray, se: np.ndarray, conf_type: str, z: float
) -> tuple[np.ndarray, np.ndarray]:
    """``survfit_confint(p, se, logse=TRUE, conf.type)`` of survival 3.5-3."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # R: NA, Inf
        if conf_type == "plain":
            half = z * se * survival
            return np.maximum(survival - half, 0.0), np.minimum(survival + half, 1.0)
        if conf_type == "log":
            p = np.where(survival == 0, np.nan, survival)
            return np.exp(np.log(p) - z * se), np.minimum(np.exp(np.log(p) + z * se), 1.0)
        p = np.where((survival == 0) | (survival == 1), np.nan, survival)
        shift = z * se / np.log(p)
        loglog = np.log(-np.log(p))
        return np.exp(-np.exp(loglog - shift)), np.exp(-np.exp(loglog + shift))
