"""Brier score of predicted survival (KM-IPCW), its SE, IPA and IBS, as riskRegression::Score.

At horizon :math:`t`, with predicted survival :math:`S_i(t)` and
:math:`\\hat G` the Kaplan-Meier of the censoring distribution
(``prodlim(..., reverse = TRUE)``: see ``toolkit.stats._ipcw``),

.. math::

    \\mathrm{BS}(t) = \\frac1n \\sum_i R_i, \\qquad
    R_i = \\frac{1(T_i \\le t, \\delta_i = 1)\\, S_i(t)^2}{\\hat G(T_i-)}
        + \\frac{1(T_i > t)\\, (1 - S_i(t))^2}{\\hat G(t)}

(subjects censored by :math:`t` contribute 0; Graf et al. 1999, Gerds and
Schumacher 2006). The null model predicts the Kaplan-Meier :math:`\\hat S(t)`
of the same data for everyone, and the index of prediction accuracy is
:math:`\\mathrm{IPA}(t) = 1 - \\mathrm{BS}(t) / \\mathrm{BS}_0(t)` (Kattan and
Gerds 2018).

The standard error is ``Score``'s (``se.fit = TRUE``, ``conservative = FALSE``):
the empirical standard deviation of the influence function over
:math:`\\sqrt n`, the influence being :math:`R_k - \\mathrm{BS}(t)` plus the
censoring term of the estimated weights,

.. math::

    \\frac1n \\Big[\\sum_{i\\,:\\,\\mathrm{case}} R_i\\, \\mathrm{IF}_\\Lambda(T_i-; k)
        + \\mathrm{IF}_\\Lambda(t; k) \\sum_{j\\,:\\,T_j > t} R_j\\Big].

Two models on the same patients differ by
:math:`\\Delta = \\mathrm{BS}_a - \\mathrm{BS}_b`, with the standard error of the
difference of their influence functions (``Score``'s ``contrasts = TRUE``, whose
``delta.Brier`` is the second model minus the first: the opposite sign), a
Wald interval and a two-sided normal P.

``Score`` drops a horizon beyond the last follow-up with a message; here that is
an error, as are predicted survivals outside [0, 1] or increasing in time.
Equal to ``Score(list(...), Hist(time, status) ~ 1, metrics = "brier",
summary = c("ibs", "ipa"), se.fit = TRUE, cens.model = "km", times = times)``
of riskRegression 2022.11.28 (``riskRegression`` takes predicted risks
:math:`1 - S`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from toolkit.stats._checks import check_survival
from toolkit.stats._ipcw import CensoringInfluence, censoring_influence, censoring_survival, g_at
from toolkit.stats._km import km_at
from toolkit.stats._predicted import check_horizons, check_survival_matrix, row_names
from toolkit.stats.wald import quantile


@dataclass(frozen=True)
class BrierScore:
    """The Brier score at each horizon with its SE and 95 % CI, against the null model.

    ``lower``/``upper`` are ``Score``'s Wald limits, clipped to [0, 1]; ``ipa`` is
    NaN where the null model's Brier score is 0 (no event by that horizon).
    ``n_cases`` had the event by :math:`t`, ``n_controls`` are followed beyond it,
    ``n_censored`` were censored by it (weight 0).
    """

    times: np.ndarray
    brier: np.ndarray
    se: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    null_brier: np.ndarray
    null_se: np.ndarray
    ipa: np.ndarray
    n_cases: np.ndarray
    n_controls: np.ndarray
    n_censored: np.ndarray


@dataclass(frozen=True)
class IntegratedBrier:
    """The integrated Brier score up to each horizon, of the model and of the null model."""

    times: np.ndarray
    ibs: np.ndarray
    null_ibs: np.ndarray


@dataclass(frozen=True)
class BrierComparison:
    """Two models' Brier scores on the same patients: ``diff = brier_a - brier_b``, SE, CI, P."""

    times: np.ndarray
    brier_a: np.ndarray
    brier_b: np.ndarray
    diff: np.ndarray
    se: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    p: np.ndarray


@dataclass(frozen=True)
class _Weights:
    """The survival data with the censoring weights and their influence."""

    time: np.ndarray
    event: np.ndarray
    horizons: np.ndarray
    g_case: np.ndarray
    g_horizon: np.ndarray
    influence: CensoringInfluence


def _prepared(
    time: Any, event: Any, survivals: Sequence[Any], names: Sequence[str], times: Sequence[float]
) -> tuple[_Weights, list[np.ndarray]]:
    """Validate the inputs once; the censoring weights at each subject's time and horizon."""
    t, e, *arrays = check_survival(time, event, *survivals, names=["time", "event", *names])
    horizons = check_horizons(times, t, "Brier score")
    matrices = [
        check_survival_matrix(a, row_names(values, len(t)), name, len(horizons))
        for values, a, name in zip(survivals, arrays, names, strict=True)
    ]
    distinct, g = censoring_survival(t, e)
    weights = _Weights(
        time=t,
        event=e,
        horizons=horizons,
        g_case=g_at(distinct, g, t, left=True),
        g_horizon=g_at(distinct, g, horizons, left=False),
        influence=censoring_influence(t, e),
    )
    return weights, matrices


def _residuals(w: _Weights, k: int, survival: np.ndarray) -> np.ndarray:
    """:math:`R_i` at horizon ``k`` (module docstring)."""
    horizon = w.horizons[k]
    case = (w.time <= horizon) & (w.event == 1)
    control = w.time > horizon
    out = np.zeros(len(w.time))
    out[case] = survival[case] ** 2 / w.g_case[case]
    out[control] = (1.0 - survival[control]) ** 2 / w.g_horizon[k]
    return out


def _influence(w: _Weights, k: int, residuals: np.ndarray) -> np.ndarray:
    """The influence function of the Brier score at horizon ``k``, censoring term included."""
    horizon = w.horizons[k]
    case = (w.time <= horizon) & (w.event == 1)
    control = w.time > horizon
    censoring = w.influence.before_own_times(np.where(case, residuals, 0.0))
    censoring += w.influence.at(horizon) * residuals[control].sum()
    return residuals - residuals.mean() + censoring / len(residuals)


def _scores(w: _Weights, survival: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Brier score and influence functions (n x horizons) of one model."""
    brier, influence = [], []
    for k in range(len(w.horizons)):
        residuals = _residuals(w, k, survival[:, k])
        brier.append(residuals.mean())
        influence.append(_influence(w, k, residuals))
    return np.array(brier), np.column_stack(influence)


def _se(influence: np.ndarray) -> np.ndarray:
    return influence.std(axis=0, ddof=1) / np.sqrt(influence.shape[0])


def _null_survival(w: _Weights) -> np.ndarray:
    km = km_at(w.time, w.event, w.horizons)
    return np.broadcast_to(km, (len(w.time), len(km)))


def brier_score(
    time: Any, event: Any, survival: Any, times: Sequence[float], conf_level: float = 0.95
) -> BrierScore:
    """IPCW Brier score, its SE and IPA at each horizon, equal to ``riskRegression::Score``.

    Parameters
    ----------
    time, event : follow-up and event indicator (1 = event, 0 = censored).
    survival : predicted survival :math:`S_i(t)`, an (n, len(times)) array (a
        single horizon may be a vector): one row per patient, one column per
        horizon, in [0, 1] and non-increasing along the row.
    times : the horizons, strictly increasing, none beyond the last follow-up.
    conf_level : level of the Wald interval (``Score``'s ``conf.int``).

    Returns
    -------
    BrierScore
        ``brier``, ``se``, ``lower``, ``upper`` as ``Score``'s ``$Brier$score``
        rows of the model; ``null_brier``/``null_se`` those of the "Null model";
        ``ipa`` its ``IPA`` column.
    """
    w, (s,) = _prepared(time, event, [survival], ["survival"], times)
    brier, influence = _scores(w, s)
    null_brier, null_influence = _scores(w, _null_survival(w))
    se = _se(influence)
    z = quantile(conf_level)
    ratio = np.divide(brier, null_brier, out=np.full_like(brier, np.nan), where=null_brier > 0)
    cases = np.array([np.sum((w.time <= h) & (w.event == 1)) for h in w.horizons])
    controls = np.array([np.sum(w.time > h) for h in w.horizons])
    return BrierScore(
        times=w.horizons,
        brier=brier,
        se=se,
        lower=np.maximum(0.0, brier - z * se),
        upper=np.minimum(1.0, brier + z * se),
        null_brier=null_brier,
        null_se=_se(null_influence),
        ipa=1.0 - ratio,
        n_cases=cases,
        n_controls=controls,
        n_censored=len(w.time) - cases - controls,
    )


def _step_integral(horizons: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``Score``'s IBS at each horizon (:func:`integrated_brier`)."""
    grid = np.concatenate([[0.0], horizons])
    areas = np.concatenate([[0.0], values[:-1]]) * np.diff(grid)
    return np.divide(np.cumsum(areas), horizons, out=np.zeros_like(horizons), where=horizons > 0)


def integrated_brier(
    time: Any, event: Any, survival: Any, times: Sequence[float]
) -> IntegratedBrier:
    """Integrated Brier score up to each horizon, as ``Score(..., summary = "ibs")``.

    ``Score`` integrates the Brier score as a step function over the horizons it
    was given, holding each value until the next horizon and counting 0 before
    the first:

    .. math::

        \\mathrm{IBS}(t_k) = \\frac1{t_k} \\sum_{j=0}^{k-1} \\mathrm{BS}(t_j)\\,(t_{j+1} - t_j),
        \\qquad t_0 = 0,\\ \\mathrm{BS}(t_0) = 0,

    so :math:`\\mathrm{IBS}(t_1) = 0` and the grid matters: pass a fine grid
    (every event time up to the last horizon of interest) for the integral of
    the Brier curve. Parameters as :func:`brier_score`.
    """
    w, (s,) = _prepared(time, event, [survival], ["survival"], times)
    brier, _ = _scores(w, s)
    null_brier, _ = _scores(w, _null_survival(w))
    return IntegratedBrier(
        w.horizons, _step_integral(w.horizons, brier), _step_integral(w.horizons, null_brier)
    )


def compare(
    time: Any,
    event: Any,
    survival_a: Any,
    survival_b: Any,
    times: Sequence[float],
    conf_level: float = 0.95,
) -> BrierComparison:
    """Difference of two models' Brier scores on the same patients, with SE and P.

    ``diff = brier_a - brier_b`` (negative: model a is more accurate); its SE is
    the standard deviation of the difference of the two influence functions
    over :math:`\\sqrt n`, ``p`` two-sided normal. Equal to ``Score(list(a, b),
    ..., contrasts = TRUE)``'s ``$Brier$contrasts`` row "b vs a" with the sign
    of ``delta.Brier`` reversed. Parameters as :func:`brier_score`.
    """
    w, (sa, sb) = _prepared(
        time, event, [survival_a, survival_b], ["survival_a", "survival_b"], times
    )
    brier_a, influence_a = _scores(w, sa)
    brier_b, influence_b = _scores(w, sb)
    diff = brier_a - brier_b
    se = _se(influence_a - influence_b)
    z = quantile(conf_level)
    p = np.where(se > 0, 2 * stats.norm.sf(np.abs(diff) / np.where(se > 0, se, 1.0)), np.nan)
    return BrierComparison(w.horizons, brier_a, brier_b, diff, se, diff - z * se, diff + z * se, p)
