"""Survival curves with case weights, both hazard estimators and every CI, as ``survfit``.

The general single-curve form of ``survfit(Surv(time, event) ~ 1, weights=, stype=,
ctype=, conf.type=, conf.lower=)`` of survival 3.5-3 (``survfitKM`` and survfitkm.c)
and its ``quantile.survfit``. :func:`toolkit.stats.survival.kaplan_meier` stays the
plain Kaplan-Meier of the study; this module adds what a reviewer may ask beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from toolkit.stats._checks import check_survival, negative_times
from toolkit.stats._coxinput import entry_times
from toolkit.stats.wald import quantile as z_quantile

_CONF_TYPES = ("log", "log-log", "plain", "logit", "arcsin", "none")
_CONF_LOWER = ("usual", "peto", "modified")
# quantile.survfit's tolerance for a curve that sits exactly at 1 - p.
_QUANTILE_TOLERANCE = float(np.sqrt(np.finfo(float).eps))


@dataclass(frozen=True, eq=False)
class SurvivalQuantiles:
    """``quantile(fit, probs)``: the times where the curve (and its limits) reach 1 - p.

    ``lower`` comes from the lower confidence curve, ``upper`` from the upper one,
    as quantile.survfit; NaN where a curve never gets that low (R's NA).
    """

    probs: np.ndarray
    quantile: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


@dataclass(frozen=True, eq=False)
class SurvivalCurve:
    """A survival curve at every distinct observed time, with the components of ``survfit``.

    ``n_risk``, ``n_event`` and ``n_censor`` are weighted counts (survfit's with
    case weights). ``cumhaz`` is the Nelson-Aalen (``ctype=1``) or
    Fleming-Harrington (``ctype=2``) cumulative hazard, ``std_chaz`` its standard
    error. ``survival`` is the Kaplan-Meier product (``stype=1``) or
    :math:`\\exp(-\\Lambda)` (``stype=2``). ``std_err`` is survfit's ``std.err``:
    the standard error of :math:`-\\log S` when ``logse`` is true, else of
    :math:`S` itself (see :func:`survfit` for the robust variance, ``robust``).
    ``lower``/``upper`` are the pointwise limits of ``conf_type`` (NaN throughout
    for "none"; NaN where R gives NA). ``influence_surv``/``influence_chaz`` (with
    ``influence=True``) are the rows-by-times infinitesimal-jackknife influence
    matrices, rows in data order.
    """

    time: np.ndarray
    n_risk: np.ndarray
    n_event: np.ndarray
    n_censor: np.ndarray
    survival: np.ndarray
    std_err: np.ndarray
    cumhaz: np.ndarray
    std_chaz: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    logse: bool
    stype: int
    ctype: int
    conf_type: str
    conf_lower: str
    conf_level: float
    n: int
    robust: bool
    influence_surv: np.ndarray | None
    influence_chaz: np.ndarray | None

    def quantile(self, probs: Any = (0.25, 0.5, 0.75)) -> SurvivalQuantiles:
        """Quantiles of the survival time with their CI, as ``quantile.survfit`` (3.5-3).

        The p-quantile is the first time the curve reaches :math:`1-p`; where the
        curve is flat at exactly :math:`1-p` (within ``sqrt(eps)``), the midpoint of
        that stretch, and at the last time the midpoint between its start and the
        last time. The limits apply the same rule to the lower and upper curves.
        Unlike R, a probability of 0 or 1 is refused.

        Parameters
        ----------
        probs
            Probabilities strictly between 0 and 1.
        """
        p = np.atleast_1d(np.asarray(probs, dtype=float))
        bad = ~((p > 0) & (p < 1))
        if bad.any():
            shown = ", ".join(f"{v:g}" for v in p[bad])
            raise ValueError(f"probs must lie strictly between 0 and 1, got {shown}")
        x = np.r_[0.0, self.time]
        return SurvivalQuantiles(
            probs=p,
            quantile=_findq(x, np.r_[0.0, 1 - self.survival], p),
            lower=_findq(x, np.r_[0.0, 1 - self.lower], p),
            upper=_findq(x, np.r_[0.0, 1 - self.upper], p),
        )


def _first_at_least(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """R's ``approx(y, seq_along(y), p, method="constant", f=1)``: first index with y >= p.

    0-based; -1 where p lies outside the range of the non-missing y (R's NA). At
    least one y is not missing (findq returns early otherwise).
    """
    index = np.arange(len(y))
    keep = ~np.isnan(y)
    order = np.argsort(y[keep], kind="stable")
    ys, idx = y[keep][order], index[keep][order]
    pos = np.searchsorted(ys, p, side="left")
    inside = (p >= ys[0]) & (p <= ys[-1])
    return np.where(inside, idx[np.minimum(pos, len(ys) - 1)], -1)


def _findq(x: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """survival's ``findq``: where the non-decreasing y (1 - S) reaches each p."""
    tol = _QUANTILE_TOLERANCE
    if np.nanmax(y) < p.min():  # y[0] = 0, never all missing
        return np.full(p.shape, np.nan)
    xmax = x[-1]
    _, where = np.unique(np.where(np.isnan(y), np.inf, y), return_index=True)
    first = np.isin(np.arange(len(y)), where)  # !duplicated(y), NaN counting as one value
    x, y = x[first], y[first]
    i1, i2 = _first_at_least(y + tol, p), _first_at_least(y - tol, p)
    x1 = np.where(i1 >= 0, x[np.maximum(i1, 0)], np.nan)
    x2 = np.where(i2 >= 0, x[np.maximum(i2, 0)], np.nan)
    quant = (x1 + x2) / 2
    if not np.isnan(y[-1]):
        last = np.abs(p - y[-1]) < tol
        quant = np.where(last, (x1 + xmax) / 2, quant)
    return quant


def _counts(t: np.ndarray, e: np.ndarray, w: np.ndarray, start: np.ndarray | None):
    """Per distinct time: weighted at risk, unweighted and weighted events, weighted censored.

    With ``start`` ((start, stop] rows, ``t`` the stops) the rows that start at or
    after a time are not at risk there (survfitkm.c: ``tstart >= dtime`` leave).
    """
    unique, inverse = np.unique(t, return_inverse=True)
    m = len(unique)
    weight_at = np.bincount(inverse, weights=w, minlength=m)
    n_risk = weight_at[::-1].cumsum()[::-1]
    if start is not None:
        entered = np.bincount(np.searchsorted(unique, start, side="right"), w, minlength=m + 1)
        n_risk = n_risk - entered[1:][::-1].cumsum()[::-1]
    d0 = np.bincount(inverse, weights=e, minlength=m)
    d1 = np.bincount(inverse, weights=w * e, minlength=m)
    censor = np.bincount(inverse, weights=w * (1 - e), minlength=m)
    return unique, n_risk, d0, d1, censor


def _nelson_aalen(n_risk, d0, d1):
    """Nelson-Aalen :math:`\\sum d/n` and its variance :math:`\\sum d/n^2` (survfitkm.c)."""
    jump = (d0 > 0) & (d1 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.cumsum(np.where(jump, d1 / n_risk, 0.0))
        variance = np.cumsum(np.where(jump, d1 / n_risk**2, 0.0))
    return hazard, variance


def _fleming_harrington(n_risk, d0, d1):
    """Fleming-Harrington hazard: d tied deaths leave one at a time,
    :math:`\\sum_{j<d} (d_w/d)/(n - j d_w/d)`, variance with the squared denominators."""
    count = d0.astype(int)
    at = np.repeat(np.arange(len(d0)), count)
    j = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    share = (d1 / np.maximum(d0, 1))[at]
    denominator = n_risk[at] - j * share
    with np.errstate(divide="ignore", invalid="ignore"):  # only rows of weight 0 at risk
        terms = share / denominator, share / denominator**2
    hazard = np.cumsum(np.bincount(at, weights=terms[0], minlength=len(d0)))
    variance = np.cumsum(np.bincount(at, weights=terms[1], minlength=len(d0)))
    return hazard, variance


def _kaplan_meier(n_risk, d0, d1):
    """Kaplan-Meier product of :math:`(n-d)/n` and Greenwood's :math:`\\sum d/(n(n-d))`."""
    jump = (d0 > 0) & (d1 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        survival = np.cumprod(np.where(jump, (n_risk - d1) / n_risk, 1.0))
        greenwood = np.cumsum(np.where(jump, d1 / (n_risk * (n_risk - d1)), 0.0))
    return survival, greenwood


def _fh_terms(n: float, d0: float, d1: float) -> tuple[float, float, float]:
    """survfitkm.c's Fleming-Harrington pieces at one time: the mean of the :math:`d_0`
    reciprocal denominators :math:`b_k = 1/(n - d + (k/d_0) d)`, and the weighted sums
    :math:`\\sum b_k^2 k/d_0` (a death's derivative) and :math:`\\sum b_k^2` (a survivor's),
    both times :math:`d/d_0` with case weights."""
    frac = np.arange(int(d0), 0, -1) / d0
    b = 1 / (n - d1 + frac * d1)
    death, alive = float(np.sum(b * b * frac)), float(np.sum(b * b))
    if d1 != d0:
        death, alive = death * d1 / d0, alive * d1 / d0
    return float(np.sum(b)) / d0, death, alive


def _hazard_step(at_risk, dying, n, d0, d1, ctype):
    """The change of every row's influence on the cumulative hazard at one event time."""
    if ctype == 1:
        return dying / n - at_risk * (d1 / n) / n
    mean, death, alive = _fh_terms(n, d0, d1)
    return dying * (mean + alive - death) - at_risk * alive


def _jackknife(t, e, w, start, counts, ctype):
    """Infinitesimal-jackknife influence of each row on S and on the hazard (survfitkm.c).

    Each row is its own cluster. At an event time with hazard :math:`h = d/n`, every
    row's survival influence becomes :math:`U(1-h) + w S(t-) h/n` (:math:`w = 0` once
    out of the risk set), less :math:`w S(t-)/n` for a row with an event there; the
    Nelson-Aalen influence moves by :math:`-w h/n`, plus :math:`w/n` for an event
    (Fleming-Harrington: the derivatives of its tied-death sum, :func:`_fh_terms`).
    With ``start`` a row is at risk at t only once ``start < t``.
    Returns the two n-by-times influence matrices (rows in data order).
    """
    unique, n_risk, d0, d1 = counts
    entered = np.full(len(t), -np.inf) if start is None else start
    surv_inf, haz_inf = np.zeros(len(t)), np.zeros(len(t))
    surv_cols, haz_cols = np.zeros((len(t), len(unique))), np.zeros((len(t), len(unique)))
    km = 1.0
    for i, time in enumerate(unique):
        if d0[i] > 0 and d1[i] > 0:
            at_risk = np.where((t >= time) & (entered < time), w, 0.0)
            dying = np.where((t == time) & (e == 1), w, 0.0)
            haz = d1[i] / n_risk[i]
            surv_inf = surv_inf * (1.0 - haz) + at_risk * km * haz / n_risk[i]
            surv_inf = surv_inf - dying * km / n_risk[i]
            haz_inf = haz_inf + _hazard_step(at_risk, dying, n_risk[i], d0[i], d1[i], ctype)
            km *= 1 - haz
        surv_cols[:, i], haz_cols[:, i] = surv_inf, haz_inf
    return surv_cols, haz_cols


def _lag_at_risk(n_risk: np.ndarray, n_event: np.ndarray) -> np.ndarray:
    """survfitKM's ``n.lag``: the number at risk at the last event time so far (or the first)."""
    events = n_event > 0
    events[0] = True
    last = np.maximum.accumulate(np.where(events, np.arange(len(events)), 0))
    return n_risk[last]


def _limits(p, se, logse, conf_type, z, scale):
    """survfit_confint (survival 3.5-3): pointwise limits on the chosen scale."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if not logse:
            se = np.where(se == 0, 0.0, se / p)
        if conf_type == "plain":
            se2 = se * p * z
            return np.maximum(p - se2 * scale, 0), np.minimum(p + se2, 1)
        if conf_type == "log":
            xx = np.where(p == 0, np.nan, p)
            se2 = z * se
            return np.exp(np.log(xx) - se2 * scale), np.minimum(np.exp(np.log(xx) + se2), 1)
        if conf_type == "log-log":
            xx = np.where((p == 0) | (p == 1), np.nan, p)
            se2 = z * se / np.log(xx)
            loglog = np.log(-np.log(xx))
            return np.exp(-np.exp(loglog - se2 * scale)), np.exp(-np.exp(loglog + se2))
        if conf_type == "logit":
            xx = np.where(p == 0, np.nan, p)
            se2 = z * se * (1 + xx / (1 - xx))
            logit = np.log(p / (1 - p))
            return 1 - 1 / (1 + np.exp(logit - se2 * scale)), 1 - 1 / (1 + np.exp(logit + se2))
        xx = np.where(p == 0, np.nan, p)  # arcsin
        se2 = 0.5 * z * se * np.sqrt(xx / (1 - xx))
        angle = np.arcsin(np.sqrt(xx))
        lower = np.sin(np.maximum(0, angle - se2 * scale)) ** 2
        return lower, np.sin(np.minimum(np.pi / 2, angle + se2)) ** 2


def _lower_scale(conf_lower, survival, std_err, n_risk, n_event):
    """survfit_confint's ``selow/se``: 1, or Peto's or the modified lower-limit SE over se."""
    if conf_lower == "usual":
        return np.ones_like(std_err)
    if conf_lower == "peto":
        low = np.sqrt((1 - survival) / n_risk)
    else:
        low = std_err * np.sqrt(_lag_at_risk(n_risk, n_event) / n_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(low == 0, 1.0, low / std_err)


def _checked(time: Any, event: Any, weights: Any, entry: Any):
    """Validated time, event, weights (1 without weights) and entry (start) times
    (None without); bad rows named by label (start >= stop, a missing start: as
    ``cox.fit``'s ``entry=``)."""
    source = next((v for v in (time, event, weights) if isinstance(v, pd.Series)), None)
    if weights is None:
        t, e = check_survival(time, event)
        w = np.ones(len(t))
    else:
        names = ("time", "event", "weights")
        t, e, w = check_survival(time, event, weights, names=names)
        if w.ndim != 1:
            raise ValueError(f"weights must be one-dimensional, got shape {w.shape}")
    labels = np.arange(len(t)) if source is None else np.asarray(source.index)
    problem = negative_times(w, labels, "weights")
    if problem:
        raise ValueError(f"{problem}; case weights must be non-negative")
    return t, e, w, entry_times(entry, t, labels)


def _check_options(stype: int, ctype: int, conf_type: str, conf_lower: str) -> None:
    if stype not in (1, 2) or ctype not in (1, 2):
        raise ValueError(f"stype and ctype must each be 1 or 2, got {stype} and {ctype}")
    if conf_type not in _CONF_TYPES:
        raise ValueError(f"conf_type must be one of {', '.join(_CONF_TYPES)}, got {conf_type!r}")
    if conf_lower not in _CONF_LOWER:
        raise ValueError(f"conf_lower must be one of {', '.join(_CONF_LOWER)}, got {conf_lower!r}")


def _robust(w: np.ndarray, robust: bool | None, influence: bool) -> bool:
    """survfitKM's default: the robust variance with non-integer weights or an influence."""
    if robust is None:
        return influence or bool(np.any(w != np.floor(w)))
    if influence and not robust:
        raise ValueError("influence=True needs the robust variance (robust=True or None)")
    return robust


def _estimates(t, e, w, start, stype, ctype, robust):
    """Counts; survival, its SE, the hazard, its SE; R's logse flag; the influence matrices."""
    unique, n_risk, d0, d1, censor = _counts(t, e, w, start)
    hazard_of = _nelson_aalen if ctype == 1 else _fleming_harrington
    cumhaz, var_chaz = hazard_of(n_risk, d0, d1)
    std_chaz = np.sqrt(var_chaz)
    if stype == 1:
        survival, greenwood = _kaplan_meier(n_risk, d0, d1)
        std_err = np.sqrt(greenwood)
    else:
        survival, std_err = np.exp(-cumhaz), std_chaz
    influence = (None, None)
    if robust:
        surv_inf, haz_inf = _jackknife(t, e, w, start, (unique, n_risk, d0, d1), ctype)
        if stype == 2:  # the survival influence follows from the hazard's
            surv_inf = -haz_inf * survival
        std_chaz = np.sqrt(np.sum(haz_inf**2, axis=0))
        std_err = np.sqrt(np.sum(surv_inf**2, axis=0)) if stype == 1 else std_chaz
        influence = (surv_inf, haz_inf)
    logse = not robust or ctype == 2  # survfitKM 3.5-3: (ncluster == 0 || type 2 or 4)
    curve = (survival, std_err, cumhaz, std_chaz)
    return (unique, n_risk, d1, censor), curve, logse, influence


def survfit(
    time: Any,
    event: Any,
    weights: Any = None,
    *,
    stype: int = 1,
    ctype: int = 1,
    conf_type: str = "log",
    conf_lower: str = "usual",
    conf_level: float = 0.95,
    robust: bool | None = None,
    influence: bool = False,
    entry: Any = None,
) -> SurvivalCurve:
    """One survival curve as ``survfit(Surv(time, event) ~ 1, weights, stype, ctype, ...)``.

    At each distinct time with weighted :math:`n` at risk and :math:`d` events
    (:math:`d_0` unweighted): the Nelson-Aalen hazard adds :math:`d/n` (variance
    :math:`d/n^2`); the Fleming-Harrington hazard lets the :math:`d_0` tied deaths
    leave one at a time, adding :math:`\\sum_{j<d_0} (d/d_0)/(n - j d/d_0)`
    (variance with the squared denominators). ``stype=1`` is the Kaplan-Meier
    product :math:`\\prod (n-d)/n` with Greenwood's SE of :math:`-\\log S`,
    :math:`\\sqrt{\\sum d/(n(n-d))}`; ``stype=2`` is :math:`\\exp(-\\Lambda)` with
    the hazard's SE.

    The robust variance (survfit's default with non-integer weights or
    ``influence=TRUE``) is the infinitesimal jackknife, each row its own cluster:
    the SE is the root sum of squares of the rows' influences (:func:`_jackknife`);
    for ``stype=1`` ``std_err`` is then the SE of :math:`S` itself. As survfit 3.5-3
    does (its ``logse = ncluster == 0 || type 2 or 4``), the limits treat the robust
    ``std_err`` as that of :math:`\\log S` for ``ctype=2`` and as that of :math:`S`
    for ``ctype=1``, also where that is not what it is (``stype=1, ctype=2`` and
    ``stype=2, ctype=1``); ``logse`` says which, and we keep R's choice so that the
    numbers agree.

    Confidence limits as survfit_confint: "log" :math:`S e^{\\mp z\\,se}` (upper
    capped at 1), "log-log" :math:`S^{\\exp(\\pm z\\,se/\\log S)}`, "plain"
    :math:`S(1 \\mp z\\,se)` clipped to [0, 1], also "logit", "arcsin" and "none".
    ``conf_lower="modified"`` (Dorey & Korn) narrows the lower limit's SE by
    :math:`\\sqrt{n_{lag}/n}`, :math:`n_{lag}` the number at risk at the last event
    time; "peto" uses :math:`\\sqrt{(1-S)/n}`. As in :func:`kaplan_meier`, times are
    taken as given (no ``timefix``).

    Parameters
    ----------
    time, event
        Follow-up time and event indicator (1 = event, 0 = censored).
    weights
        Optional non-negative case weights, one per row.
    stype, ctype
        Survival (1 Kaplan-Meier, 2 exp(-hazard)) and hazard (1 Nelson-Aalen,
        2 Fleming-Harrington) estimators, as survfit's.
    conf_type, conf_lower, conf_level
        The pointwise CI's scale, its lower-limit variant and level.
    robust
        The infinitesimal-jackknife variance; None: survfit's default (with
        non-integer weights or ``influence``).
    influence
        Also return each row's influence on the survival and on the cumulative
        hazard at every time (survfit's ``influence.surv``, ``influence.chaz``).
    entry
        Optional start time per row for counting-process data, as
        ``survfit(Surv(entry, time, event) ~ 1)``: ``time`` is then each (start,
        stop] interval's stop and the risk set at t holds the rows with
        ``entry < t <= time`` (a row that starts at an event time is not at risk
        there). The curve is reported at every distinct stop time; ``n_censor``
        counts every interval that ends without an event (R without ``id``).
        Each row is its own cluster in the robust variance (R's default with
        weights and no ``id``); R's ``n.enter`` is not returned. A start at or
        after its stop, or a missing start, is an error naming the rows.
    """
    _check_options(stype, ctype, conf_type, conf_lower)
    t, e, w, start = _checked(time, event, weights, entry)
    robust = _robust(w, robust, influence)
    counts, curve, logse, influences = _estimates(t, e, w, start, stype, ctype, robust)
    unique, n_risk, n_event, censor = counts
    survival, std_err, cumhaz, std_chaz = curve
    if conf_type == "none":
        lower = upper = np.full(len(unique), np.nan)
    else:
        scale = _lower_scale(conf_lower, survival, std_err, n_risk, n_event)
        z = z_quantile(conf_level)
        lower, upper = _limits(survival, std_err, logse, conf_type, z, scale)
    return SurvivalCurve(
        time=unique,
        n_risk=n_risk,
        n_event=n_event,
        n_censor=censor,
        survival=survival,
        std_err=std_err,
        cumhaz=cumhaz,
        std_chaz=std_chaz,
        lower=lower,
        upper=upper,
        logse=logse,
        stype=stype,
        ctype=ctype,
        conf_type=conf_type,
        conf_lower=conf_lower,
        conf_level=conf_level,
        n=len(t),
        robust=robust,
        influence_surv=influences[0] if influence else None,
        influence_chaz=influences[1] if influence else None,
    )
