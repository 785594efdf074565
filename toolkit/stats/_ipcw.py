"""Inverse-probability-of-censoring weights and their influence, as ``riskRegression::Score``.

Shared by the time-dependent AUC (``timeauc``) and the Brier score (``brier``).

The weights come from the Kaplan-Meier of the censoring distribution as
``prodlim(..., reverse = TRUE)`` computes it (``Score(..., cens.model = "km")``):
a death at the same time as a censoring leaves the risk set first, so the
censoring hazard at :math:`s` is :math:`c(s) / (Y(s) - d(s))`, with
:math:`Y(s)` the number still followed at :math:`s`.

The influence of the weights on an IPCW estimator (``Score``'s censoring term,
``se.fit = TRUE, conservative = FALSE``) is that of the censoring cumulative
hazard as ``riskRegression``'s C++ (``IC_Nelson_Aalen_cens_time``) writes it:
Nelson-Aalen increments over the whole risk set, :math:`c(s) / Y(s)`, so

.. math::

    \\mathrm{IF}_\\Lambda(s; k) = \\frac{n (1 - \\delta_k) 1(T_k \\le s)}{Y(T_k)}
        - \\sum_{u \\le \\min(s, T_k)} \\frac{n\\, c(u)}{Y(u)^2}

(the weights' and the influence's tie conventions differ in ``Score`` too;
both are reproduced). An IPCW term :math:`v / \\hat G(s)` then moves by
:math:`v\\, \\mathrm{IF}_\\Lambda(s; k)` when subject :math:`k` is perturbed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def censoring_survival(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def g_at(distinct: np.ndarray, g: np.ndarray, query: np.ndarray, *, left: bool) -> np.ndarray:
    """G(query) (right-continuous) or G(query-) (left limit)."""
    side = "left" if left else "right"
    idx = np.searchsorted(distinct, query, side=side) - 1
    return np.where(idx >= 0, g[np.maximum(idx, 0)], 1.0)


@dataclass(frozen=True)
class CensoringInfluence:
    """The pieces of :math:`\\mathrm{IF}_\\Lambda` for every subject, by distinct time.

    ``index[k]`` is the distinct time of subject ``k``; ``compensator[m]`` is
    :math:`A(u_m) = \\sum_{l \\le m} n c(u_l) / Y(u_l)^2`; ``own[k]`` is
    :math:`\\mathrm{IF}_\\Lambda(T_k; k)`, the value it keeps after :math:`T_k`.
    """

    distinct: np.ndarray
    index: np.ndarray
    compensator: np.ndarray
    own: np.ndarray

    def at(self, horizon: float) -> np.ndarray:
        """:math:`\\mathrm{IF}_\\Lambda(t; k)` for every subject ``k`` at one horizon."""
        last = np.searchsorted(self.distinct, horizon, side="right") - 1
        before = -self.compensator[last] if last >= 0 else 0.0
        return np.where(self.index <= last, self.own, before)

    def before_own_times(self, weight: np.ndarray) -> np.ndarray:
        """:math:`\\sum_i v_i\\, \\mathrm{IF}_\\Lambda(T_i-; k)` for every ``k``.

        ``weight`` is :math:`v_i` (zero for the subjects that do not enter);
        computed in O(n log n): the subjects with :math:`T_i > T_k` see
        ``own[k]``, those with :math:`T_i \\le T_k` see :math:`-A(T_i-)`.
        """
        m = len(self.distinct)
        per_time = np.bincount(self.index, weights=weight, minlength=m)
        previous = np.concatenate([[0.0], self.compensator[:-1]])
        after = per_time.sum() - np.cumsum(per_time)
        seen = np.cumsum(per_time * previous)
        return self.own * after[self.index] - seen[self.index]


def censoring_influence(time: np.ndarray, event: np.ndarray) -> CensoringInfluence:
    """:math:`\\mathrm{IF}_\\Lambda` of the censoring cumulative hazard (module docstring)."""
    n = len(time)
    distinct, index = np.unique(time, return_inverse=True)
    first = np.searchsorted(np.sort(time), distinct, side="left")
    at_risk = (n - first).astype(float)
    censored = np.bincount(index, weights=1.0 - event, minlength=len(distinct))
    compensator = np.cumsum(n * censored / at_risk**2)
    own = (1.0 - event) * n / at_risk[index] - compensator[index]
    return CensoringInfluence(distinct, index.ravel(), compensator, own)


def km_steps(time: np.ndarray, event: np.ndarray, *, censoring: bool):
    """scikit-survival's Kaplan-Meier as a step function: (grid, values), right-continuous.

    ``censoring=False``: the survival curve of ``kaplan_meier_estimator``;
    ``censoring=True``: ``CensoringDistributionEstimator``'s (``reverse=True``: the
    censorings at a time are divided by those still followed once its events have
    left). The grid starts at -inf with value 1, except that a censoring curve
    without censorings is 1 at the distinct times alone, as sksurv builds it.
    """
    unique, index = np.unique(time, return_inverse=True)
    if censoring and event.all():
        return unique, np.ones(unique.size)
    deaths = np.bincount(index, weights=event.astype(float), minlength=unique.size)
    total = np.bincount(index, minlength=unique.size).astype(float)
    at_risk = np.cumsum(total[::-1])[::-1]
    steps, denominator = (total - deaths, at_risk - deaths) if censoring else (deaths, at_risk)
    ratio = np.zeros(unique.size)
    np.divide(steps, denominator, out=ratio, where=steps != 0)
    return np.r_[-np.inf, unique], np.r_[1.0, np.cumprod(1.0 - ratio)]


def step_at(grid: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """A :func:`km_steps` curve at ``query`` (all <= the grid's last time), as sksurv's
    ``predict_proba``: a grid time within machine epsilon (absolute) counts as hit."""
    index = np.searchsorted(grid, query)
    exact = np.abs(grid[np.minimum(index, grid.size - 1)] - query) < np.finfo(float).eps
    return values[np.where(exact, index, index - 1)]
