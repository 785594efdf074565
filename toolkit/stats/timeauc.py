"""Time-dependent AUC (cumulative cases / dynamic controls) with IPCW, as ``riskRegression::Score``.

At horizon :math:`t`, cases are subjects with an event by :math:`t`
(:math:`T_i \\le t, \\delta_i = 1`), weighted :math:`1 / \\hat G(T_i-)`; controls are
subjects still event-free after :math:`t` (:math:`T_j > t`), weighted
:math:`1 / \\hat G(t)`; subjects censored before :math:`t` get weight 0.
:math:`\\hat G` is the Kaplan-Meier estimate of the censoring distribution
(censoring treated as the event; ``prodlim(..., reverse = TRUE)``, which
``Score(..., cens.model = "km")`` uses: a death at the same time as a censoring
leaves the risk set first, so the censoring hazard at :math:`s` is
:math:`c(s) / (n(s) - d(s))`; ``survfit(Surv(time, 1 - status) ~ 1)`` divides by
:math:`n(s)` instead). Then

.. math::

    \\mathrm{AUC}(t) = \\frac{\\sum_i \\sum_j w_i w_j \\{1(r_i > r_j) + \\tfrac12 1(r_i = r_j)\\}}
                            {\\sum_i w_i \\sum_j w_j}

for risk scores :math:`r` (higher = worse). ``Score`` computes the same number as
the trapezoidal area under the weighted ROC curve (``AireTrap`` over distinct
risks, ties contributing half), which is this double sum (Blanche, Dartigues
and Jacqmin-Gadda 2013). Any risk score monotone in the predicted risk at
:math:`t` gives the same AUC (for a Cox model, the linear predictor).

The standard error is not computed (``Score``'s influence-function SE is not
part of the contract).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from toolkit.stats._checks import check_survival


@dataclass(frozen=True)
class TimeAUC:
    """AUC(t) at each horizon, with the number of cases and controls used."""

    times: np.ndarray
    auc: np.ndarray
    n_cases: np.ndarray
    n_controls: np.ndarray


def censoring_survival(time: np.ndarray, event: np.ndarray):
    """Reverse Kaplan-Meier G as prodlim: distinct times and G there (right-continuous)."""
    order = np.argsort(time, kind="stable")
    t, censored = time[order], 1.0 - event[order]
    distinct, first = np.unique(t, return_index=True)
    n_at_risk = len(t) - first
    n_censored = np.add.reduceat(censored, first)
    n_events = np.add.reduceat(1.0 - censored, first)
    at_risk = n_at_risk - n_events
    hazard = np.divide(n_censored, at_risk, out=np.zeros_like(n_censored), where=at_risk > 0)
    return distinct, np.cumprod(1.0 - hazard)


def _g_at(distinct: np.ndarray, g: np.ndarray, query: np.ndarray, *, left: bool) -> np.ndarray:
    """G(query) (right-continuous) or G(query-) (left limit)."""
    side = "left" if left else "right"
    idx = np.searchsorted(distinct, query, side=side) - 1
    return np.where(idx >= 0, g[np.maximum(idx, 0)], 1.0)


def _weighted_auc(risk: np.ndarray, w_case: np.ndarray, w_control: np.ndarray) -> float:
    """sum_ij wi wj [1(ri > rj) + 1/2 1(ri = rj)] / (sum wi sum wj), in O(n log n)."""
    values, inverse = np.unique(risk, return_inverse=True)
    cases = np.bincount(inverse, weights=w_case, minlength=len(values))
    controls = np.bincount(inverse, weights=w_control, minlength=len(values))
    below = np.cumsum(controls) - controls
    numerator = np.sum(cases * (below + 0.5 * controls))
    return float(numerator / (cases.sum() * controls.sum()))


def time_auc(time: Any, event: Any, risk: Any, times: Sequence[float]) -> TimeAUC:
    """Cumulative/dynamic AUC(t) with KM-IPCW, equal to ``Score(..., metrics = "auc")``.

    Parameters
    ----------
    time, event : follow-up and event indicator (1 = event).
    risk : one risk score per subject, higher = worse; or an (n, len(times))
        array of predicted risks, one column per horizon (as ``Score`` takes).
    times : the horizons.

    Returns ``TimeAUC``; an AUC is NaN where a horizon has no case or no control.
    """
    horizons = np.atleast_1d(np.asarray(times, dtype=float))
    t, e, r = check_survival(time, event, risk, names=["time", "event", "risk"])
    if r.ndim != 1 and r.shape != (len(t), len(horizons)):
        raise ValueError(f"risk has shape {r.shape}; expected ({len(t)}, {len(horizons)})")
    distinct, g = censoring_survival(t, e)
    g_case = _g_at(distinct, g, t, left=True)
    aucs, n_cases, n_controls = [], [], []
    for k, horizon in enumerate(horizons):
        case = (t <= horizon) & (e == 1)
        control = t > horizon
        g_t = _g_at(distinct, g, np.array([horizon]), left=False)[0]
        w_case = np.where(case, 1.0 / np.where(case, g_case, 1.0), 0.0)
        w_control = np.where(control, 1.0 / g_t if g_t > 0 else 0.0, 0.0)
        n_cases.append(int(case.sum()))
        n_controls.append(int(control.sum()))
        if not case.any() or not control.any():
            aucs.append(float("nan"))
            continue
        score = r if r.ndim == 1 else r[:, k]
        aucs.append(_weighted_auc(score, w_case, w_control))
    return TimeAUC(horizons, np.array(aucs), np.array(n_cases), np.array(n_controls))
