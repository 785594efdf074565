"""Decision curves for survival outcomes: net benefit at a time horizon (Vickers et al. 2008).

Vickers, Cronin, Elkin and Gonen, "Extensions to decision curve analysis",
BMC Med Inform Decis Mak 2008;8:53, the Kaplan-Meier formula. At horizon
:math:`t` and threshold probability :math:`p_t`, the patients whose predicted
risk of an event by :math:`t` reaches the threshold are "treated" (test
positive). With :math:`n` patients, a fraction :math:`\\pi = n_+ / n` treated and
:math:`\\hat S_+(t)` the Kaplan-Meier survival among the treated,

.. math::

    \\mathrm{NB}(p_t) = \\{1 - \\hat S_+(t)\\}\\,\\pi
        - \\hat S_+(t)\\,\\pi\\,\\frac{p_t}{1 - p_t}

(true positives :math:`\\{1 - \\hat S_+(t)\\} n_+`, false positives
:math:`\\hat S_+(t) n_+`, both per patient). Treat all uses the whole cohort's
Kaplan-Meier :math:`\\hat S(t)`: :math:`1 - \\hat S(t) - \\hat S(t) p_t / (1 - p_t)`;
treat none is 0.

Two conventions live here, and they differ only at the edges:

* :func:`decision_curve` and :func:`compare` are the ``dcurves`` package's
  (Python, PyPI, 1.1.7; ``dcurves.dca(..., time=, time_to_outcome_col=)``): a
  patient is treated when ``risk >= p_t``; a risk of exactly 0 counts as
  :math:`-\\varepsilon` and one of exactly 1 as :math:`1 + \\varepsilon` (machine
  epsilon), so at :math:`p_t = 0` a zero risk is not treated; the net benefit
  is 0 when nobody is treated and *undefined* (NaN) when the follow-up of every
  treated patient (event or censoring) ends before :math:`t`, even when all of
  them died. R's ``dcurves::dca`` (same authors) applies the same rules
  (``.surv_to_risk``; it computes :math:`\\hat S` as ``survfit``'s product where
  the Python package, through lifelines, sums logarithms: equal to rounding),
  and refuses, as :func:`decision_curve` does, a horizon beyond the whole
  cohort's follow-up (where the Python package fails with a ``TypeError``).
* :func:`net_benefit`, :func:`treat_all` and :func:`decision_table` (the
  study's decision-curve table) follow Vickers' ``stdca``: treated when
  ``risk > p_t`` strictly; but where the treated patients' follow-up ends before
  :math:`t` they carry the last Kaplan-Meier value forward
  (``summary(survfit(...), extend = TRUE)``) instead of leaving it undefined,
  and give 0 when nobody is treated. ``stdca`` itself stops at the first
  threshold with nobody treated or no follow-up through :math:`t` and leaves
  that threshold and every higher one NA.

The net interventions avoided per ``per`` patients are, as in both ``dcurves``
(``net_intervention_avoided``; ``nper``) and ``stdca`` (``interventionper``),
:math:`(\\mathrm{NB} - \\mathrm{NB}_{\\mathrm{all}}) / \\{p_t / (1 - p_t)\\} \\times`
``per``: the reduction in treated patients, per ``per``, at no loss of net
benefit against treating everyone.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from toolkit.stats._checks import check_survival, listed
from toolkit.stats._km import km_at
from toolkit.stats._predicted import check_horizons, row_names


def net_benefit(
    time: Any, event: Any, risk: Any, horizon: float, thresholds: Sequence[float]
) -> np.ndarray:
    """Net benefit of treating patients with predicted risk above each threshold (``stdca``).

    Treated when ``risk > p`` strictly; the Kaplan-Meier carried forward past
    the treated patients' last follow-up; 0 when nobody is treated (module
    docstring). :func:`decision_curve` has ``dcurves``' rules instead.

    Parameters
    ----------
    time, event : follow-up and event indicator.
    risk : predicted probability of an event by ``horizon`` (``1 - S(horizon | x)``).
    horizon : the time point.
    thresholds : threshold probabilities in [0, 1).
    """
    t, e, r = check_survival(time, event, risk, names=["time", "event", "risk"])
    pt = _thresholds(thresholds)
    n = len(t)
    out = np.zeros(len(pt))
    for k, p in enumerate(pt):
        treated = r > p
        if not treated.any():
            continue
        share = treated.sum() / n
        surv = km_at(t[treated], e[treated], np.array([horizon]))[0]
        out[k] = (1 - surv) * share - surv * share * p / (1 - p)
    return out


def treat_all(time: Any, event: Any, horizon: float, thresholds: Sequence[float]) -> np.ndarray:
    """Net benefit of treating everyone: ``1 - S(t) - S(t) p / (1 - p)`` with KM ``S``."""
    t, e = check_survival(time, event, names=["time", "event"])
    pt = _thresholds(thresholds)
    surv = km_at(t, e, np.array([horizon]))[0]
    return (1 - surv) - surv * pt / (1 - pt)


def _thresholds(thresholds: Sequence[float]) -> np.ndarray:
    pt = np.asarray(thresholds, dtype=float)
    if pt.ndim != 1 or not np.isfinite(pt).all() or np.any(pt < 0) or np.any(pt >= 1):
        raise ValueError("thresholds must be probabilities in [0, 1)")
    return pt


def decision_table(
    time: Any,
    event: Any,
    risks: Mapping[str, Mapping[float, Any]],
    horizons: Sequence[float],
    thresholds: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Long table of net benefit: columns horizon, threshold, model, net_benefit.

    ``risks`` maps a model name to {horizon: predicted risk by that horizon};
    the rows "treat all" and "treat none" are added.
    """
    pt = np.round(np.arange(0.01, 1.0, 0.01), 2) if thresholds is None else thresholds
    pt = _thresholds(pt)
    frames = []
    for horizon in horizons:
        curves = {"treat all": treat_all(time, event, horizon, pt), "treat none": 0.0 * pt}
        for name, by_time in risks.items():
            curves[name] = net_benefit(time, event, by_time[horizon], horizon, pt)
        for name, values in curves.items():
            frames.append(
                pd.DataFrame(
                    {
                        "horizon": float(horizon),
                        "threshold": pt,
                        "model": name,
                        "net_benefit": values,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- dcurves


DCURVES_THRESHOLDS = tuple(i / 100 for i in range(100))
"""``dcurves.dca``'s default threshold grid: 0, 0.01, ..., 0.99."""


@dataclass(frozen=True)
class DecisionCurve:
    """One model's decision curve at one horizon, as ``dcurves.dca`` tabulates it.

    Per threshold: ``test_positive`` is the share treated (``test_pos_rate``),
    ``risk_among_positive`` :math:`1 - \\hat S_+(t)`, ``true_positive`` and
    ``false_positive`` its products with the share (``tp_rate``, ``fp_rate``),
    ``net_benefit`` the model's and ``treat_all`` treating everyone's, and
    ``interventions_avoided`` the net interventions avoided per ``per`` patients
    (``net_intervention_avoided`` with ``nper = per``). ``prevalence`` is
    :math:`1 - \\hat S(t)` of the whole cohort. NaN where undefined: the
    treated patients' follow-up ends before the horizon, and the interventions
    avoided at a threshold of 0 (``dcurves`` divides by zero there).
    """

    horizon: float
    thresholds: np.ndarray
    n: int
    prevalence: float
    test_positive: np.ndarray
    risk_among_positive: np.ndarray
    true_positive: np.ndarray
    false_positive: np.ndarray
    net_benefit: np.ndarray
    treat_all: np.ndarray
    interventions_avoided: np.ndarray
    per: int


@dataclass(frozen=True)
class NetBenefitDifference:
    """Net benefit of model a minus model b per threshold, with a bootstrap percentile CI.

    ``n_resamples`` counts, per threshold, the resamples in which both net
    benefits were defined (the others: the treated patients' follow-up ended
    before the horizon in that resample); the CI is taken over those alone and
    is NaN where none was.
    """

    horizon: float
    thresholds: np.ndarray
    net_benefit_a: np.ndarray
    net_benefit_b: np.ndarray
    difference: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    conf_level: float
    n_resamples: np.ndarray
    B: int
    seed: int


def _check_risk(risk: np.ndarray, values: Any, name: str) -> np.ndarray:
    """A predicted risk per patient, in [0, 1]; the rows outside are named."""
    if risk.ndim != 1:
        raise ValueError(f"{name} must be one predicted risk per patient, got shape {risk.shape}")
    outside = (risk < 0) | (risk > 1)
    if outside.any():
        names = row_names(values, len(risk))[outside]
        raise ValueError(f"{name} has predicted risks outside [0, 1] in rows {listed(names)}")
    return risk


def _rectified(risk: np.ndarray) -> np.ndarray:
    """``dcurves``' boundaries: a risk of 0 becomes -eps and one of 1 becomes 1 + eps."""
    eps = sys.float_info.epsilon
    return np.where(risk == 0, 0 - eps, np.where(risk == 1, 1 + eps, risk))


def _positive(
    time: np.ndarray, event: np.ndarray, risk: np.ndarray, horizon: float, pt: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Share treated (``risk >= p``) and 1 - KM at ``horizon`` among them, per threshold.

    The treated at any threshold are the first patients in order of decreasing
    risk, so one cumulative count over that order gives every group's numbers
    at risk and deaths at each event time up to the horizon. The risk is 0 for
    an empty group and NaN where the group's last follow-up is before the horizon.
    """
    r = _rectified(risk)
    order = np.argsort(-r, kind="stable")
    t, e = time[order], event[order]
    size = len(r) - np.searchsorted(np.sort(r), pt, side="left")
    grid = np.unique(t[(e == 1) & (t <= horizon)])
    at_risk = np.cumsum(t[:, None] >= grid[None, :], axis=0)
    deaths = np.cumsum((t[:, None] == grid[None, :]) & (e[:, None] == 1), axis=0)
    row = np.maximum(size - 1, 0)
    n_risk, n_dead = at_risk[row], deaths[row]
    factor = np.ones(n_risk.shape)
    np.divide(n_risk - n_dead, n_risk, out=factor, where=n_risk > 0)
    last = np.maximum.accumulate(t)[row]
    risk_among = np.where(last < horizon, np.nan, 1 - factor.prod(axis=1))
    return size / len(r), np.where(size == 0, 0.0, risk_among)


def _net_benefit(
    share: np.ndarray, risk_among: np.ndarray, pt: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and false positives per patient and the net benefit, in ``dcurves``' order."""
    tp = risk_among * share
    fp = (1 - risk_among) * share
    return tp, fp, tp - (pt / (1 - pt)) * fp


def _prepared(time, event, risks, names, horizon, thresholds):
    """Validate once: survival data, risks in [0, 1], horizon within follow-up, thresholds."""
    t, e, *arrays = check_survival(
        time, event, *risks, names=["time", "event", *names], require_events=False
    )
    checked = [_check_risk(a, v, n) for a, v, n in zip(arrays, risks, names, strict=True)]
    (h,) = check_horizons([horizon], t, "decision curve")
    pt = _thresholds(DCURVES_THRESHOLDS if thresholds is None else thresholds)
    return t, e, checked, float(h), pt


def decision_curve(
    time: Any,
    event: Any,
    risk: Any,
    horizon: float,
    thresholds: Sequence[float] | None = None,
    *,
    per: int = 100,
) -> DecisionCurve:
    """Net benefit, treat all and net interventions avoided per ``per``, as ``dcurves``.

    The rules are ``dcurves.dca``'s (module docstring): treated when
    ``risk >= p_t`` (0 and 1 moved by machine epsilon), the Kaplan-Meier of the
    treated at the horizon, 0 for nobody treated, NaN where the treated
    patients' follow-up ends before the horizon. Equal to
    ``dcurves.dca(data, outcome, [model], thresholds, time = horizon,
    time_to_outcome_col = ..., nper = per)`` of dcurves 1.1.7 (its rows of the
    model; ``risk`` all ones gives its "all" rows, all zeros its "none" rows).

    Parameters
    ----------
    time, event : follow-up and event indicator (1 = event).
    risk : predicted probability of an event by ``horizon`` (``1 - S(horizon | x)``).
    horizon : the time point; not beyond the last follow-up.
    thresholds : threshold probabilities in [0, 1); default ``dcurves``' 0, 0.01, ..., 0.99.
    per : the interventions avoided are counted per this many patients.
    """
    if isinstance(per, bool) or not isinstance(per, int | np.integer) or per < 1:
        raise ValueError(f"per must be a positive whole number of patients, got {per!r}")
    t, e, (r,), h, pt = _prepared(time, event, [risk], ["risk"], horizon, thresholds)
    share, risk_among = _positive(t, e, r, h, pt)
    tp, fp, nb = _net_benefit(share, risk_among, pt)
    everyone, prevalence = _positive(t, e, np.ones(len(t)), h, pt)  # "all": risk 1 + eps
    nb_all = _net_benefit(everyone, prevalence, pt)[2]
    odds = pt / (1 - pt)
    avoided = np.full(len(pt), np.nan)
    np.divide(nb - nb_all, odds, out=avoided, where=odds > 0)
    return DecisionCurve(
        horizon=h,
        thresholds=pt,
        n=len(t),
        prevalence=float(prevalence[0]),
        test_positive=share,
        risk_among_positive=risk_among,
        true_positive=tp,
        false_positive=fp,
        net_benefit=nb,
        treat_all=nb_all,
        interventions_avoided=avoided * per,
        per=int(per),
    )


def _bootstrap_differences(t, e, r_a, r_b, h, pt, indices: np.ndarray) -> np.ndarray:
    """NB_a - NB_b in each resample (rows of ``indices``); NaN where either is undefined."""
    out = np.full((len(indices), len(pt)), np.nan)
    for b, rows in enumerate(indices):
        tb, eb = t[rows], e[rows]
        if tb.max() < h:
            continue
        nb_a = _net_benefit(*_positive(tb, eb, r_a[rows], h, pt), pt)[2]
        nb_b = _net_benefit(*_positive(tb, eb, r_b[rows], h, pt), pt)[2]
        out[b] = nb_a - nb_b
    return out


def compare(
    time: Any,
    event: Any,
    risk_a: Any,
    risk_b: Any,
    horizon: float,
    thresholds: Sequence[float] | None = None,
    *,
    B: int = 1000,
    seed: int = 0,
    conf_level: float = 0.95,
) -> NetBenefitDifference:
    """Net benefit of model a minus model b on the same patients, with a bootstrap CI.

    The point estimate is the difference of the two :func:`decision_curve` net
    benefits. The CI resamples patients: ``B`` resamples of ``n`` patients drawn
    with replacement, ``numpy.random.default_rng(seed).integers(0, n, (B, n))``
    (each row one resample, the same rows for both models: a paired bootstrap),
    each model's net benefit recomputed on the resample by the same rules, and
    the interval is the percentile one: the :math:`(1 - \\text{conf\\_level})/2`
    and :math:`(1 + \\text{conf\\_level})/2` quantiles of the resampled
    differences, linearly interpolated (``numpy.quantile``'s default, R's
    ``quantile(type = 7)``), per threshold over the resamples in which both net
    benefits are defined (counted in ``n_resamples``). ``dcurves`` has no such
    interval (nor has ``stdca``); the point estimates equal its net benefits'
    difference.

    Parameters
    ----------
    time, event, horizon, thresholds : as :func:`decision_curve`.
    risk_a, risk_b : the two models' predicted risks of an event by ``horizon``.
    B : number of bootstrap resamples, at least 20.
    seed : seed of the resampling.
    conf_level : coverage of the interval, in (0, 1).
    """
    if isinstance(B, bool) or not isinstance(B, int | np.integer) or B < 20:
        raise ValueError(
            f"B must be a whole number of at least 20 bootstrap resamples, got {B!r}: "
            "with fewer, the 95 % percentile limits fall between the two most extreme resamples"
        )
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must lie in (0, 1), got {conf_level!r}")
    t, e, (r_a, r_b), h, pt = _prepared(
        time, event, [risk_a, risk_b], ["risk_a", "risk_b"], horizon, thresholds
    )
    nb_a = _net_benefit(*_positive(t, e, r_a, h, pt), pt)[2]
    nb_b = _net_benefit(*_positive(t, e, r_b, h, pt), pt)[2]
    indices = np.random.default_rng(seed).integers(0, len(t), size=(B, len(t)))
    diffs = _bootstrap_differences(t, e, r_a, r_b, h, pt, indices)
    used = np.isfinite(diffs).sum(axis=0)
    limits = np.full((2, len(pt)), np.nan)
    probs = [(1 - conf_level) / 2, (1 + conf_level) / 2]
    for k in np.flatnonzero(used):
        limits[:, k] = np.quantile(diffs[np.isfinite(diffs[:, k]), k], probs)
    return NetBenefitDifference(
        horizon=h,
        thresholds=pt,
        net_benefit_a=nb_a,
        net_benefit_b=nb_b,
        difference=nb_a - nb_b,
        lower=limits[0],
        upper=limits[1],
        conf_level=float(conf_level),
        n_resamples=used,
        B=int(B),
        seed=int(seed),
    )
