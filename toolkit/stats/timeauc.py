"""Time-dependent AUC (cumulative cases / dynamic controls) with IPCW, as ``riskRegression::Score``.

At horizon :math:`t`, cases are subjects with an event by :math:`t`
(:math:`T_i \\le t, \\delta_i = 1`), weighted :math:`w_i = 1 / \\hat G(T_i-)`; controls
are subjects still event-free after :math:`t` (:math:`T_j > t`), weighted
:math:`w_j = 1 / \\hat G(t)`; subjects censored before :math:`t` get weight 0.
:math:`\\hat G` is the Kaplan-Meier estimate of the censoring distribution
(censoring treated as the event; ``prodlim(..., reverse = TRUE)``, which
``Score(..., cens.model = "km")`` uses: a death at the same time as a censoring
leaves the risk set first, so the censoring hazard at :math:`s` is
:math:`c(s) / (n(s) - d(s))`; ``survfit(Surv(time, 1 - status) ~ 1)`` divides by
:math:`n(s)` instead). Then

.. math::

    \\mathrm{AUC}(t) = \\frac{\\nu}{\\mu}, \\quad
    \\nu = \\frac1{n^2} \\sum_i \\sum_j w_i w_j h_{ij}, \\quad
    \\mu = \\frac1{n^2} \\sum_i w_i \\sum_j w_j, \\quad
    h_{ij} = 1(r_i > r_j) + \\tfrac12 1(r_i = r_j)

over cases :math:`i` and controls :math:`j`, for risk scores :math:`r` (higher =
worse). ``Score`` computes the same number as the trapezoidal area under the
weighted ROC curve (``AireTrap`` over distinct risks, ties contributing half),
which is this double sum (Blanche, Dartigues and Jacqmin-Gadda 2013). Any risk
score monotone in the predicted risk at :math:`t` gives the same AUC (for a Cox
model, the linear predictor).

The standard error is ``Score``'s (``se.fit = TRUE``, ``conservative = FALSE``):
the standard deviation of the influence function over :math:`\\sqrt n`,

.. math::

    \\mathrm{IF}_k = \\frac{\\mathrm{IF}_k(\\nu) - \\mathrm{AUC}\\,\\mathrm{IF}_k(\\mu)}{\\mu},

where :math:`\\mathrm{IF}_k(\\nu)` has the V-statistic's own term
:math:`\\frac{w_k}{n} \\sum_j w_j h_{kj}` for a case, :math:`\\frac{w_k}{n} \\sum_i
w_i h_{ik}` for a control, plus the censoring term of the estimated weights,
:math:`\\frac1{n^2} \\sum_i w_i \\big(\\sum_j w_j h_{ij}\\big)
\\mathrm{IF}_\\Lambda(T_i-; k) + \\nu\\, \\mathrm{IF}_\\Lambda(t; k)` (``toolkit.stats._ipcw``;
:math:`\\mathrm{IF}_k(\\mu)` the same with :math:`h = 1`). The 95 % interval is the
Wald interval clipped to [0, 1], as ``Score``'s. Two scores on the same patients
are compared by the difference of their influence functions (``Score``'s
``contrasts = TRUE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from toolkit.stats._checks import check_survival, listed
from toolkit.stats._ipcw import (
    CensoringInfluence,
    censoring_influence,
    censoring_survival,
    g_at,
    km_steps,
    step_at,
)
from toolkit.stats.wald import quantile


@dataclass(frozen=True)
class TimeAUC:
    """AUC(t) at each horizon, with the number of cases and controls used, its SE and CI.

    ``se``, ``lower`` and ``upper`` are NaN where the AUC is (no case or no control).
    """

    times: np.ndarray
    auc: np.ndarray
    n_cases: np.ndarray
    n_controls: np.ndarray
    se: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


@dataclass(frozen=True)
class AUCComparison:
    """Two risk scores' AUC(t) on the same patients: ``diff = auc_a - auc_b``, SE, CI, P."""

    times: np.ndarray
    auc_a: np.ndarray
    auc_b: np.ndarray
    diff: np.ndarray
    se: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    p: np.ndarray


@dataclass(frozen=True)
class _Horizon:
    """Cases, controls and their weights at one horizon."""

    horizon: float
    case: np.ndarray
    control: np.ndarray
    w_case: np.ndarray
    w_control: np.ndarray

    @property
    def defined(self) -> bool:
        return bool(self.case.any() and self.control.any() and self.w_control.any())


def _weighted_sums(risk: np.ndarray, w_case: np.ndarray, w_control: np.ndarray):
    """Per subject: sum_j w_j h(r_i, r_j) over controls, sum_i w_i h(r_i, r_j) over cases."""
    values, inverse = np.unique(risk, return_inverse=True)
    cases = np.bincount(inverse, weights=w_case, minlength=len(values))
    controls = np.bincount(inverse, weights=w_control, minlength=len(values))
    below = np.cumsum(controls) - controls
    above = cases.sum() - np.cumsum(cases)
    return (below + 0.5 * controls)[inverse], (above + 0.5 * cases)[inverse]


def _weighted_auc(risk: np.ndarray, w_case: np.ndarray, w_control: np.ndarray) -> float:
    """sum_ij wi wj [1(ri > rj) + 1/2 1(ri = rj)] / (sum wi sum wj), in O(n log n)."""
    values, inverse = np.unique(risk, return_inverse=True)
    cases = np.bincount(inverse, weights=w_case, minlength=len(values))
    controls = np.bincount(inverse, weights=w_control, minlength=len(values))
    below = np.cumsum(controls) - controls
    numerator = np.sum(cases * (below + 0.5 * controls))
    return float(numerator / (cases.sum() * controls.sum()))


def _influence(h: _Horizon, risk: np.ndarray, auc: float, ic: CensoringInfluence) -> np.ndarray:
    """Influence function of AUC(t), censoring term included (module docstring)."""
    n = len(risk)
    above_controls, below_cases = _weighted_sums(risk, h.w_case, h.w_control)
    sum_case, sum_control = h.w_case.sum(), h.w_control.sum()
    pairs = h.w_case * above_controls  # zero outside the cases
    nu = pairs.sum() / n**2
    mu = sum_case * sum_control / n**2
    at_horizon = ic.at(h.horizon)
    if_nu = (pairs + h.w_control * below_cases) / n
    if_nu += ic.before_own_times(pairs) / n**2 + nu * at_horizon
    if_mu = (h.w_case * sum_control + h.w_control * sum_case) / n
    if_mu += ic.before_own_times(h.w_case) * sum_control / n**2 + mu * at_horizon
    return (if_nu - auc * if_mu) / mu


def _horizons(time: Any, event: Any, times: Sequence[float], risks: Sequence[Any], names):
    """Validated arrays, the horizons, and cases/controls with their weights at each."""
    horizons = np.atleast_1d(np.asarray(times, dtype=float))
    t, e, *rs = check_survival(time, event, *risks, names=["time", "event", *names])
    for r, name in zip(rs, names, strict=True):
        if r.ndim != 1 and r.shape != (len(t), len(horizons)):
            raise ValueError(f"{name} has shape {r.shape}; expected ({len(t)}, {len(horizons)})")
    distinct, g = censoring_survival(t, e)
    g_case = g_at(distinct, g, t, left=True)
    out = []
    for horizon in horizons:
        case = (t <= horizon) & (e == 1)
        control = t > horizon
        g_t = g_at(distinct, g, np.array([horizon]), left=False)[0]
        w_case = np.where(case, 1.0 / np.where(case, g_case, 1.0), 0.0)
        w_control = np.where(control, 1.0 / g_t if g_t > 0 else 0.0, 0.0)
        out.append(_Horizon(float(horizon), case, control, w_case, w_control))
    return horizons, censoring_influence(t, e), out, rs


def _column(risk: np.ndarray, k: int) -> np.ndarray:
    return risk if risk.ndim == 1 else risk[:, k]


def _auc_and_influence(h: _Horizon, risk: np.ndarray, ic: CensoringInfluence):
    """AUC(t) and its influence function; NaN (and no influence) without cases or controls."""
    if not h.defined:
        return float("nan"), None
    auc = _weighted_auc(risk, h.w_case, h.w_control)
    return auc, _influence(h, risk, auc, ic)


def _se(influence: np.ndarray | None) -> float:
    if influence is None:
        return float("nan")
    return float(influence.std(ddof=1) / np.sqrt(len(influence)))


def time_auc(
    time: Any, event: Any, risk: Any, times: Sequence[float], conf_level: float = 0.95
) -> TimeAUC:
    """Cumulative/dynamic AUC(t) with KM-IPCW and its SE, equal to ``Score(..., metrics = "auc")``.

    Parameters
    ----------
    time, event : follow-up and event indicator (1 = event).
    risk : one risk score per subject, higher = worse; or an (n, len(times))
        array of predicted risks, one column per horizon (as ``Score`` takes).
    times : the horizons.
    conf_level : level of the Wald interval (``Score``'s ``conf.int``).

    Returns ``TimeAUC`` (``AUC``, ``se``, ``lower``, ``upper`` of ``Score``'s
    ``$AUC$score``, ``se.fit = TRUE``); the AUC and its SE are NaN where a
    horizon has no case or no control.
    """
    horizons, ic, at, (r,) = _horizons(time, event, times, [risk], ["risk"])
    fits = [_auc_and_influence(h, _column(r, k), ic) for k, h in enumerate(at)]
    auc = np.array([a for a, _ in fits])
    se = np.array([_se(influence) for _, influence in fits])
    z = quantile(conf_level)
    return TimeAUC(
        times=horizons,
        auc=auc,
        n_cases=np.array([int(h.case.sum()) for h in at]),
        n_controls=np.array([int(h.control.sum()) for h in at]),
        se=se,
        lower=np.maximum(0.0, auc - z * se),
        upper=np.minimum(1.0, auc + z * se),
    )


def compare(
    time: Any,
    event: Any,
    risk_a: Any,
    risk_b: Any,
    times: Sequence[float],
    conf_level: float = 0.95,
) -> AUCComparison:
    """Difference of two risk scores' AUC(t) on the same patients, with SE and P.

    ``diff = auc_a - auc_b``; its SE is the standard deviation of the difference
    of the two influence functions over :math:`\\sqrt n`, ``p`` two-sided normal,
    the interval Wald's. Equal to ``Score(list(a, b), ..., metrics = "auc",
    se.fit = TRUE, contrasts = TRUE)``'s ``$AUC$contrasts`` row "b vs a" with the
    sign of ``delta.AUC`` (b - a) reversed. Parameters as :func:`time_auc`;
    NaN at a horizon without cases or controls.
    """
    horizons, ic, at, (ra, rb) = _horizons(
        time, event, times, [risk_a, risk_b], ["risk_a", "risk_b"]
    )
    rows = []
    for k, h in enumerate(at):
        auc_a, if_a = _auc_and_influence(h, _column(ra, k), ic)
        auc_b, if_b = _auc_and_influence(h, _column(rb, k), ic)
        se = _se(None if if_a is None or if_b is None else if_a - if_b)
        rows.append((auc_a, auc_b, auc_a - auc_b, se))
    auc_a, auc_b, diff, se = (np.array(column) for column in zip(*rows, strict=True))
    z = quantile(conf_level)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(se > 0, 2 * stats.norm.sf(np.abs(diff) / se), np.nan)
    return AUCComparison(horizons, auc_a, auc_b, diff, se, diff - z * se, diff + z * se, p)


@dataclass(frozen=True)
class DynamicAUC:
    """AUC(t) at each horizon and their mean, as ``sksurv.metrics.cumulative_dynamic_auc``."""

    times: np.ndarray
    auc: np.ndarray
    mean_auc: float


def _ipcw_horizons(t: np.ndarray, times: Sequence[float], k: int | None) -> np.ndarray:
    horizons = np.atleast_1d(np.asarray(times, dtype=float))
    if horizons.ndim != 1 or not np.isfinite(horizons).all():
        raise ValueError("times must be finite horizons, one dimension")
    if k is not None and (horizons.size != k or np.any(np.diff(horizons) <= 0)):
        raise ValueError(
            f"a risk matrix needs one column per horizon, horizons strictly increasing: "
            f"{k} columns for times {horizons.tolist()}"
        )
    horizons = np.unique(horizons)
    if horizons.max() >= t.max() or horizons.min() < t.min():
        raise ValueError(
            f"all times must lie in the follow-up of the test data, [{t.min():g}, {t.max():g})"
        )
    return horizons


def _tolerant_auc(risk: np.ndarray, case_weight: np.ndarray, control: np.ndarray, tol: float):
    """Area under the weighted ROC curve: risks run in decreasing order and a risk within
    ``tol`` of the one before it joins its threshold (ties chain, as in sksurv); each
    case-control pair counts 1 when the case's threshold comes first, 1/2 when shared."""
    order = np.argsort(-risk)
    ranked = risk[order]
    threshold = np.cumsum(np.r_[True, ~(np.abs(np.diff(ranked)) <= tol)]) - 1
    cases = np.bincount(threshold, weights=case_weight[order])
    controls = np.bincount(threshold, weights=control[order])
    before = np.r_[0.0, np.cumsum(cases)[:-1]]
    return float(controls @ (before + cases / 2)) / (cases.sum() * controls.sum())


def time_auc_ipcw(
    time: Any,
    event: Any,
    risk: Any,
    times: Sequence[float],
    *,
    train_time: Any = None,
    train_event: Any = None,
    tied_tol: float = 1e-8,
) -> DynamicAUC:
    """Cumulative/dynamic AUC(t) with the censoring distribution from a training set.

    Equals ``sksurv.metrics.cumulative_dynamic_auc(survival_train, survival_test,
    risk, times, tied_tol)`` of scikit-survival 0.28: at each horizon t, the cases
    (events by t) weigh ``1 / G(T_i)`` and the controls (followed beyond t) 1, with
    G the Kaplan-Meier of the censoring on the training rows (by default the test
    rows; events leave first at a tie) evaluated at T_i itself; the AUC is the
    trapezoidal area under the weighted ROC curve, risks within ``tied_tol`` of
    the next larger one sharing a threshold. ``mean_auc`` is sksurv's mean: the
    AUCs weighted by the drops of the test data's Kaplan-Meier S over the horizons,
    ``sum AUC(t_k) (S(t_{k-1}) - S(t_k)) / (1 - S(t_last))`` (the AUC itself for
    one horizon).

    This differs from :func:`time_auc` (``riskRegression::Score``) on purpose:
    cases are weighted by G at T_i, not just before it; controls carry no weight
    (``1 / G(t)`` is the same for all of them and cancels); and near-equal risks
    tie. There is no standard error.

    Parameters
    ----------
    time, event
        The test data.
    risk
        One risk score per row (higher = worse), or an ``(n, len(times))`` matrix of
        predicted risks, one column per horizon (then ``times`` strictly increasing).
    times
        Horizons within the test data's follow-up, ``[min(time), max(time))``.
    train_time, train_event
        The data the censoring distribution is estimated on (both or neither).
    tied_tol
        Risks closer than this (absolute) to the next larger one are tied.

    Raises
    ------
    ValueError
        Bad input, a horizon outside the follow-up or without a case, a test event
        after the last training time (where G is unknown) or with G = 0.
    """
    t, e, r = check_survival(time, event, risk, names=["time", "event", "risk"])
    if r.ndim not in (1, 2):
        raise ValueError(f"risk must be a vector or an n x len(times) matrix, got {r.shape}")
    horizons = _ipcw_horizons(t, times, None if r.ndim == 1 else r.shape[1])
    if (train_time is None) != (train_event is None):
        raise ValueError("give both train_time and train_event, or neither")
    if not (np.isfinite(tied_tol) and tied_tol >= 0):
        raise ValueError(f"tied_tol must be a finite number >= 0, got {tied_tol!r}")
    if train_time is not None:
        train = check_survival(
            train_time, train_event, names=["train_time", "train_event"], require_events=False
        )
        grid, g = km_steps(train[0], train[1].astype(bool), censoring=True)
    else:
        grid, g = km_steps(t, e.astype(bool), censoring=True)
    event_rows = np.flatnonzero(e == 1)
    beyond = t[event_rows] > grid[-1]
    if g[-1] > 0 and beyond.any():
        raise ValueError(
            f"test events after the last training time {grid[-1]:g} (rows "
            f"{listed(event_rows[beyond])}): the censoring distribution is unknown there"
        )
    g_event = np.zeros(event_rows.size)
    g_event[~beyond] = step_at(grid, g, t[event_rows[~beyond]])
    if (g_event == 0).any():
        rows = listed(event_rows[g_event == 0])
        raise ValueError(f"the censoring distribution is 0 at the event times of rows {rows}")
    ipcw = np.zeros(t.size)
    ipcw[event_rows] = 1.0 / g_event
    auc = np.empty(horizons.size)
    for k, horizon in enumerate(horizons):
        case = (t <= horizon) & (e == 1)
        if not case.any():
            raise ValueError(f"no event by time {horizon:g}: AUC({horizon:g}) is undefined")
        column = r if r.ndim == 1 else r[:, k]
        auc[k] = _tolerant_auc(column, np.where(case, ipcw, 0.0), (t > horizon) * 1.0, tied_tol)
    if horizons.size == 1:
        return DynamicAUC(horizons, auc, float(auc[0]))
    s = step_at(*km_steps(t, e.astype(bool), censoring=False), horizons)
    drops = -np.diff(np.r_[1.0, s])
    return DynamicAUC(horizons, auc, float((auc * drops).sum() / (1.0 - s[-1])))
