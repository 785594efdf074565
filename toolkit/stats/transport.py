"""Transportability of a locked survival model to a new cohort: case-mix and model updating.

**Case-mix difference** (Debray et al., J Clin Epidemiol 2015;68:279, "A new framework to
enhance the interpretation of external validation studies of clinical prediction
models"). A *membership model*, the logistic regression

.. math::

    \\operatorname{logit} P(\\text{new}_i = 1) = \\gamma_0 + z_i^\\top \\gamma

of belonging to the new cohort (1) rather than the development cohort (0), is fitted
on both cohorts stacked (``glm(new ~ z, family = binomial)``; statsmodels' GLM, IRLS to
a deviance change below ``tol``). Its C-statistic, the AUC of the fitted
probabilities,

.. math::

    \\hat A = \\frac{1}{mn} \\sum_{i \\in \\text{new}} \\sum_{j \\in \\text{dev}}
        \\psi(\\hat p_i, \\hat p_j), \\qquad \\psi(a, b) = 1[a > b] + \\tfrac12 1[a = b],

near 0.5 means the two cohorts have the same case-mix (the validation tests
reproducibility); near 1 they are told apart (it tests transportability). Its
variance is DeLong's (DeLong, DeLong and Clarke-Pearson 1988): with
:math:`V_{10,i}` the mean of :math:`\\psi(\\hat p_i, \\cdot)` over the development
patients and :math:`V_{01,j}` the mean of :math:`\\psi(\\cdot, \\hat p_j)` over the new
ones, :math:`\\widehat{\\mathrm{Var}} = s^2(V_{10})/m + s^2(V_{01})/n` (sample
variances, divisor :math:`k-1`), and the interval :math:`\\hat A \\pm z\\,\\mathrm{se}`
clipped to [0, 1]: ``pROC::ci.auc(roc(new, p, levels = c(0, 1), direction = "<"),
method = "delong")``. The AUC is not flipped below 0.5 (pROC's ``direction = "auto"``
would): the membership model is fitted, so its AUC is at least 0.5 up to ties.

``z`` is what the caller says: the study uses two membership models, one on the
model's linear predictor alone (do the cohorts differ in predicted risk?) and one on
the model's variables (its design columns; the linear predictor is a combination of
them, so it is not added). Debray's framework also enters the outcome; with censored
survival times whose follow-up differs by design between cohorts, we leave it out.

Debray's second summary: the mean and SD (divisor :math:`n - 1`) of the linear predictor
in each cohort. A larger SD in the new cohort means a more heterogeneous case-mix
(a higher attainable C-index); a shifted mean, a different baseline risk.

**Model updating** (Van Houwelingen, Stat Med 2000;19:3401; Steyerberg, Clinical
Prediction Models, 2nd ed., ch. 20), on the new cohort with the model's linear
predictor :math:`\\eta_i` (uncentred):

* ``baseline``: the baseline hazard re-estimated with :math:`\\eta` as an offset,
  ``coxph(Surv(time, event) ~ offset(lp))``; predicted survival
  :math:`\\exp(-\\hat H_0(t)\\, e^{\\eta_i - \\bar\\eta})` with :math:`\\hat H_0` Efron's
  estimate at the mean offset :math:`\\bar\\eta` (``basehaz(fit, centered = FALSE)``, as
  ``survfit.coxph``'s ``offset.mean``). Equal to ``survfit(coxph(Surv ~ lp, init = 1,
  iter.max = 0), newdata)`` (R's ``survfit`` of an offset-only fit warns and recycles);
* ``slope``: ``coxph(Surv(time, event) ~ lp)``: the slope :math:`\\hat\\beta` with its
  Wald CI, and the baseline with it; predicted
  :math:`\\exp(-\\hat H_0(t)\\, e^{\\hat\\beta \\eta_i})`;
* ``refit``: the model's design columns refitted (``coxph(Surv ~ x)``).

Each update's effect on calibration is measured on the new cohort with the statistics
the validate stage uses (``toolkit.stats.calibration``): grouped KM RMSE and ICI at
each horizon, calibration-in-the-large (O/E) at each horizon and the calibration slope
of the updated linear predictor. These are apparent (the update is fitted on the same
patients): a slope of exactly 1 after ``slope`` or ``refit`` is by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from toolkit.stats._checks import check_survival

METHODS = ("original", "baseline", "slope", "refit")


@dataclass(frozen=True)
class AUC:
    """A C-statistic (AUC) with its DeLong SE and clipped Wald interval (module docstring)."""

    auc: float
    se: float
    lower: float
    upper: float
    conf_level: float
    n_cases: int
    n_controls: int


def _placements(cases: np.ndarray, controls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """V10 (each case against every control) and V01 (each control against every case)."""
    sorted_controls, sorted_cases = np.sort(controls), np.sort(cases)
    below = np.searchsorted(sorted_controls, cases, side="left")
    tied = np.searchsorted(sorted_controls, cases, side="right") - below
    v10 = (below + 0.5 * tied) / len(controls)
    above = len(cases) - np.searchsorted(sorted_cases, controls, side="right")
    tied = np.searchsorted(sorted_cases, controls, side="right") - np.searchsorted(
        sorted_cases, controls, side="left"
    )
    v01 = (above + 0.5 * tied) / len(cases)
    return v10, v01


def delong_auc(score: Any, case: Any, conf_level: float = 0.95) -> AUC:
    """AUC of ``score`` for ``case`` (1) against control (0), DeLong's SE and interval.

    Equal to pROC's ``auc`` and ``ci.auc(method = "delong")`` with ``levels = c(0, 1),
    direction = "<"`` (module docstring).
    """
    from toolkit.stats.wald import quantile

    s = np.asarray(score, dtype=float)
    y = np.asarray(case)
    if s.ndim != 1 or y.shape != s.shape:
        raise ValueError(f"score and case must be vectors of one length, got {s.shape}, {y.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"score has {int((~np.isfinite(s)).sum())} missing or infinite values")
    if not np.all(np.isin(y, (0, 1))):
        raise ValueError("case must be 0 (control) or 1 (case)")
    cases, controls = s[y == 1], s[y == 0]
    if len(cases) < 2 or len(controls) < 2:
        raise ValueError(
            f"an AUC needs at least 2 cases and 2 controls, got {len(cases)} and {len(controls)}"
        )
    v10, v01 = _placements(cases, controls)
    auc = float(v10.mean())
    se = float(np.sqrt(v10.var(ddof=1) / len(cases) + v01.var(ddof=1) / len(controls)))
    z = quantile(conf_level)
    lower, upper = max(auc - z * se, 0.0), min(auc + z * se, 1.0)
    return AUC(auc, se, lower, upper, conf_level, len(cases), len(controls))


@dataclass(frozen=True)
class Membership:
    """A membership model (new = 1 vs development = 0): its coefficients (``const`` first),
    their SEs, the fitted probabilities (development rows first) and their AUC."""

    names: tuple[str, ...]
    coef: np.ndarray
    se: np.ndarray
    fitted: np.ndarray
    auc: AUC


def membership_model(
    development: Any, new: Any, names: Sequence[str] | None = None, *, tol: float = 1e-12
) -> Membership:
    """``glm(new ~ z, family = binomial)`` on the two cohorts stacked, and its AUC.

    ``development`` and ``new`` are the membership covariates ``z`` (rows x columns, or a
    vector for one covariate) of each cohort; the intercept is added. IRLS stops when the
    deviance changes by less than ``tol`` (relative), tighter than glm's default 1e-8, so
    that two implementations meet at the maximum rather than at their own stopping points.
    """
    import statsmodels.api as sm

    dev = np.asarray(development, dtype=float)
    nov = np.asarray(new, dtype=float)
    dev, nov = (dev[:, None] if dev.ndim == 1 else dev), (nov[:, None] if nov.ndim == 1 else nov)
    if dev.shape[1] != nov.shape[1]:
        raise ValueError(f"the cohorts have {dev.shape[1]} and {nov.shape[1]} covariates")
    for label, z in (("development", dev), ("new", nov)):
        bad = ~np.all(np.isfinite(z), axis=1)
        if bad.any():
            raise ValueError(f"{label} cohort: rows {np.flatnonzero(bad)[:10].tolist()} missing")
    cols = tuple(names) if names is not None else tuple(f"z{k + 1}" for k in range(dev.shape[1]))
    z = np.column_stack([np.ones(len(dev) + len(nov)), np.vstack([dev, nov])])
    y = np.r_[np.zeros(len(dev)), np.ones(len(nov))]
    result = sm.GLM(y, z, family=sm.families.Binomial()).fit(tol=tol, maxiter=100)
    fitted = np.asarray(result.fittedvalues)
    return Membership(
        ("const", *cols),
        np.asarray(result.params),
        np.asarray(result.bse),
        fitted,
        delong_auc(fitted, y),
    )


@dataclass(frozen=True)
class Spread:
    """Mean and SD (divisor n - 1) of the linear predictor in one cohort (Debray's summary)."""

    n: int
    mean: float
    sd: float


def spread(linear_predictor: Any) -> Spread:
    lp = np.asarray(linear_predictor, dtype=float)
    return Spread(len(lp), float(lp.mean()), float(lp.std(ddof=1)))


@dataclass(frozen=True)
class CalibrationEffect:
    """The calibration of one set of predictions on the new cohort: per horizon the grouped
    RMSE, ICI and O/E with its interval; the slope of the linear predictor."""

    horizons: tuple[float, ...]
    rmse: np.ndarray
    ici: np.ndarray
    ratio: np.ndarray
    ratio_lower: np.ndarray
    ratio_upper: np.ndarray
    slope: Any  # calibration.CalibrationSlope


def calibration_effect(
    time: Any,
    event: Any,
    survival: np.ndarray,
    linear_predictor: Any,
    horizons: Sequence[float],
    n_groups: int = 3,
) -> CalibrationEffect:
    """``calibration.calibrate``, ``calibration_in_the_large`` and ``calibration_slope`` of
    predictions ``survival`` (n x horizons) with linear predictor ``linear_predictor``."""
    from toolkit.stats.calibration import (
        calibrate,
        calibration_in_the_large,
        calibration_slope,
    )

    fits = [
        calibrate(time, event, survival[:, k], h, n_groups=n_groups) for k, h in enumerate(horizons)
    ]
    large = calibration_in_the_large(time, event, survival, horizons)
    return CalibrationEffect(
        tuple(float(h) for h in horizons),
        np.array([f.rmse for f in fits]),
        np.array([f.ici for f in fits]),
        large.ratio,
        large.lower,
        large.upper,
        calibration_slope(time, event, linear_predictor),
    )


@dataclass(frozen=True)
class Update:
    """One update of the model on the new cohort: the updated linear predictor and survival
    at the horizons (n x horizons), the Cox fit behind it (None for ``original``), and its
    calibration on the new cohort."""

    method: str
    linear_predictor: np.ndarray
    survival: np.ndarray
    fit: Any  # cox.CoxFit | None
    calibration: CalibrationEffect


def _step(base: pd.DataFrame, horizons: np.ndarray) -> np.ndarray:
    knots = base["time"].to_numpy()
    at = np.searchsorted(knots, horizons, side="right") - 1
    return np.where(at >= 0, base["hazard"].to_numpy()[np.maximum(at, 0)], 0.0)


def recalibrate_baseline(time: Any, event: Any, linear_predictor: Any, horizons: Sequence[float]):
    """The offset fit ``coxph(Surv ~ offset(lp))`` and its survival at ``horizons``."""
    from toolkit.stats import cox

    t, e, lp = check_survival(time, event, linear_predictor, names=["time", "event", "lp"])
    fit = cox.fit(np.empty((len(t), 0)), t, e, offset=lp)
    cumhaz = _step(fit.baseline_cumulative_hazard, np.asarray(horizons, dtype=float))
    return fit, np.exp(-np.outer(np.exp(lp - lp.mean()), cumhaz))


def update_model(
    time: Any,
    event: Any,
    linear_predictor: Any,
    original_survival: np.ndarray,
    horizons: Sequence[float],
    *,
    design: pd.DataFrame | None = None,
    n_groups: int = 3,
) -> dict[str, Update]:
    """The original model and its updates on the new cohort (module docstring), each with
    its calibration: ``original``, ``baseline``, ``slope`` and, with ``design`` (the model's
    design columns on the new cohort), ``refit``."""
    from toolkit.stats import cox

    t, e, lp = check_survival(time, event, linear_predictor, names=["time", "event", "lp"])
    original = np.asarray(original_survival, dtype=float)
    if original.shape != (len(t), len(horizons)):
        raise ValueError(
            f"original_survival has shape {original.shape}, expected {(len(t), len(horizons))}"
        )

    def made(method, new_lp, survival, fit):
        effect = calibration_effect(t, e, survival, new_lp, horizons, n_groups)
        return Update(method, new_lp, survival, fit, effect)

    out = {"original": made("original", lp, original, None)}
    fit, survival = recalibrate_baseline(t, e, lp, horizons)
    out["baseline"] = made("baseline", lp, survival, fit)
    fit = cox.fit(lp[:, None], t, e, names=["linear_predictor"])
    out["slope"] = made("slope", fit.coef[0] * lp, fit.predict_survival(lp[:, None], horizons), fit)
    if design is not None:
        fit = cox.fit(design, t, e)
        out["refit"] = made(
            "refit", fit.predict_linear(design), fit.predict_survival(design, horizons), fit
        )
    return out
