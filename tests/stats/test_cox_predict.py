"""Predicted survival with its standard error and CI against survfit.coxph (live through rpy2),
and a case worked by hand from the formula."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from toolkit.stats import cox
from toolkit.stats.wald import Z_975

TOL = 1e-8  # the tolerance for survfit's curves, SEs and limits

# dataset -> (event code of status, covariates, strata column)
MODELS = {
    "pbc": (2, ["age", "bili", "albumin", "edema", "protime"], "sex"),
    "lung": (2, ["age", "ph.ecog", "wt.loss"], "sex"),
    "veteran": (1, ["age", "karno", "diagtime", "prior"], "trt"),
}


def _data(r, name: str):
    code, covariates, strata = MODELS[name]
    frame = r.dataset(name)[["time", "status", *covariates, strata]].dropna()
    event = (frame["status"] == code).astype(float).to_numpy()
    x = frame[covariates].to_numpy(dtype=float)
    return x, frame["time"].to_numpy(dtype=float), event, np.asarray(frame[strata]).astype(str)


def _times(time: np.ndarray) -> np.ndarray:
    """Before the first time, between event times, quantiles, and beyond the last time."""
    inner = np.quantile(time, [0.1, 0.25, 0.5, 0.75, 0.9])
    return np.unique(np.r_[0.0, time.min() / 2, inner, time.max(), time.max() * 2])


def _assert_equal_r(ours: cox.PredictedSurvival, ref: dict) -> None:
    assert ref["logse"][0] and ref["chaz_is_std_err"][0]  # survfit's std.err is SE(cumhaz)
    np.testing.assert_allclose(ours.survival, ref["surv"], rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.cumulative_hazard, ref["cumhaz"], rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.std_err, ref["std_chaz"], rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.std_chaz, ref["std_chaz"], rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.survival_se, ref["std_err"], rtol=0, atol=TOL)
    # NaN where R has NA (log-log limits where the curve is still 1)
    np.testing.assert_allclose(ours.lower, ref["lower"], rtol=0, atol=TOL, equal_nan=True)
    np.testing.assert_allclose(ours.upper, ref["upper"], rtol=0, atol=TOL, equal_nan=True)


@pytest.mark.parametrize("conf_type", ["log", "log-log", "plain"])
@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("name", list(MODELS))
def test_predicted_survival_ci_equals_survfit_coxph(r, name, ties, conf_type):
    from toolkit.rbridge.cox import survfit_coxph

    x, time, event, _ = _data(r, name)
    newx = np.r_[x[:4] * 1.1, x.mean(axis=0, keepdims=True), x[-1:] * 0.8]
    times = _times(time)
    fit = cox.fit(x, time, event, ties=ties)
    ours = fit.predict_survival_ci(newx, times, conf_type=conf_type)
    ref = survfit_coxph(x, time, event, newx, times, ties=ties, conf_type=conf_type)
    _assert_equal_r(ours, ref)
    np.testing.assert_array_equal(ours.survival, fit.predict_survival(newx, times))
    assert ours.conf_type == conf_type and ours.conf_int == 0.95
    np.testing.assert_array_equal(ours.times, times)


@pytest.mark.parametrize("conf_type", ["log", "log-log"])
@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_stratified_weighted_ci_equals_survfit_on_lung(r, ties, conf_type):
    """Strata by sex, integer case weights, 90% limits; each new row in its stratum."""
    from toolkit.rbridge.cox import survfit_coxph

    x, time, event, sex = _data(r, "lung")
    weights = 1.0 + np.arange(len(time)) % 3
    newx = x[:6] + np.array([5.0, 1.0, -3.0])
    newsex = sex[[0, 1, 2, 3, 4, 5]][::-1]
    times = _times(time)
    fit = cox.fit(x, time, event, ties=ties, weights=weights, strata=sex)
    assert not fit.robust
    ours = fit.predict_survival_ci(newx, times, strata=newsex, conf_type=conf_type, conf_int=0.9)
    ref = survfit_coxph(
        x, time, event, newx, times, ties=ties, weights=weights, strata=sex,
        newstrata=newsex, conf_type=conf_type, conf_int=0.9,
    )  # fmt: skip
    _assert_equal_r(ours, ref)
    np.testing.assert_array_equal(ours.survival, fit.predict_survival(newx, times, newsex))


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_fractional_weights_use_the_robust_variance_as_survfit(r, ties):
    """Non-integer weights: coxph's variance is the robust one, and survfit's SE uses it."""
    from toolkit.rbridge.cox import survfit_coxph

    x, time, event, trt = _data(r, "veteran")
    weights = 1.0 + 0.5 * (np.arange(len(time)) % 3)
    newx, newtrt = x[:5] * 1.1, trt[:5]
    times = _times(time)
    fit = cox.fit(x, time, event, ties=ties, weights=weights, strata=trt)
    assert fit.robust
    ours = fit.predict_survival_ci(newx, times, strata=newtrt)
    ref = survfit_coxph(
        x, time, event, newx, times, ties=ties, weights=weights, strata=trt, newstrata=newtrt
    )
    _assert_equal_r(ours, ref)


def test_censoring_before_the_first_event_leaves_log_log_undefined_as_r(r):
    """Between a censoring and the first event the curve is 1: R's log-log limits are NA,
    while before the first observed time summary.survfit's starting row gives 1."""
    from toolkit.rbridge.cox import survfit_coxph

    time = np.array([1.0, 2, 3, 4, 5, 6, 7, 8])
    event = np.array([0.0, 1, 1, 0, 1, 1, 0, 1])
    x = np.array([[1.0], [0], [1], [0], [1], [0], [2], [1]])
    newx, times = np.array([[0.0], [1.5]]), np.array([0.0, 0.5, 1.0, 1.5, 2.0, 9.0])
    ours = cox.fit(x, time, event).predict_survival_ci(newx, times, conf_type="log-log")
    _assert_equal_r(ours, survfit_coxph(x, time, event, newx, times, conf_type="log-log"))
    assert np.isnan(ours.lower[:, 2:4]).all() and (ours.lower[:, :2] == 1).all()


def test_breslow_cumulative_hazard_and_variance_by_hand():
    """Four rows, x = 5, -9, 0, 0, deaths at 1, 2, 3 and a censoring at 4.

    The score at beta = 0 is (5 - -1) + (-9 - -3) + (0 - 0) = 0, so beta = 0, every
    risk is 1 and the information is the sum of the risk sets' variances of x:
    25.5 + 18 + 0, V = 1 / 43.5. With the means -1 (centred x 6, -8, 1, 1):
    dH = 1/4, 1/3, 1/2; dV = 1/16, 1/9, 1/4; dXbar = S1 / S0^2 = 0/16, -6/9, 2/4.
    For a new row x = 2 (centred 3): var(t) = sum dV + (3 H(t) - sum dXbar)^2 V.
    """
    fit = cox.fit(np.array([5.0, -9, 0, 0]), [1.0, 2, 3, 4], [1.0, 1, 1, 0], ties="breslow")
    assert abs(fit.coef[0]) < 1e-15 and fit.means[0] == -1  # 0 up to the score's rounding
    np.testing.assert_allclose(fit.variance, [[1 / 43.5]], rtol=1e-14)
    v = Fraction(2, 87)
    hazard = [Fraction(0), Fraction(1, 4), Fraction(7, 12), Fraction(13, 12), Fraction(13, 12)]
    var_h = [Fraction(0), Fraction(1, 16), Fraction(25, 144), Fraction(61, 144), Fraction(61, 144)]
    xbar = [Fraction(0), Fraction(0), Fraction(-2, 3), Fraction(-1, 6), Fraction(-1, 6)]
    variance = [vh + (3 * h - xb) ** 2 * v for h, vh, xb in zip(hazard, var_h, xbar, strict=True)]
    assert variance[1:4] == [Fraction(105, 1392), Fraction(133, 432), Fraction(8669, 12528)]
    se = np.sqrt([float(f) for f in variance])
    times = [0.5, 1.0, 2.5, 3.0, 10.0]
    ours = fit.predict_survival_ci(np.array([[2.0]]), times)
    np.testing.assert_allclose(ours.cumulative_hazard[0], [float(h) for h in hazard], rtol=1e-14)
    np.testing.assert_allclose(ours.std_err[0], se, rtol=1e-14)
    survival = np.exp(-np.array([float(h) for h in hazard]))
    np.testing.assert_allclose(ours.survival[0], survival, rtol=1e-14)
    np.testing.assert_allclose(ours.lower[0], survival * np.exp(-Z_975 * se), rtol=1e-14)
    np.testing.assert_allclose(ours.upper[0], np.minimum(survival * np.exp(Z_975 * se), 1))
    plain = fit.predict_survival_ci(np.array([[2.0]]), times, conf_type="plain")
    np.testing.assert_allclose(plain.lower[0], np.maximum(survival * (1 - Z_975 * se), 0))


def test_times_may_come_in_any_order_and_repeat():
    fit = cox.fit(np.array([5.0, -9, 0, 0, 3]), [1.0, 2, 3, 4, 5], [1.0, 1, 1, 0, 1])
    newx = np.array([[2.0], [-1.0]])
    forward = fit.predict_survival_ci(newx, [1.0, 2.5, 4.0])
    shuffled = fit.predict_survival_ci(newx, [4.0, 1.0, 2.5, 1.0])
    # shuffled times 4, 1, 2.5, 1 are forward's columns 2, 0, 1, 0
    np.testing.assert_array_equal(shuffled.std_err, forward.std_err[:, [2, 0, 1, 0]])
    np.testing.assert_array_equal(shuffled.upper, forward.upper[:, [2, 0, 1, 0]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"times": [1.0, -2.0]}, r"times must be finite and >= 0; got -2 \(positions 1\)"),
        ({"times": [np.nan, 3.0]}, r"times must be finite and >= 0; got nan \(positions 0\)"),
        ({"conf_type": "logit"}, r"conf_type must be one of \['log', 'log-log', 'plain'\]"),
        ({"conf_int": 95}, r"conf_int must be a level in \(0, 1\), got 95"),
    ],
)
def test_bad_times_and_levels_are_refused_by_name(kwargs, message):
    fit = cox.fit(np.array([5.0, -9, 0, 0, 3]), [1.0, 2, 3, 4, 5], [1.0, 1, 1, 0, 1])
    arguments = {"X": np.array([[1.0]]), "times": [1.0], **kwargs}
    with pytest.raises(ValueError, match=message):
        fit.predict_survival_ci(**arguments)


def test_a_row_with_a_missing_covariate_is_named():
    x = pd.DataFrame({"x": [5.0, -9, 0, 0, 3]})
    fit = cox.fit(x, [1.0, 2, 3, 4, 5], [1.0, 1, 1, 0, 1])
    new = pd.DataFrame({"x": [1.0, np.nan, 2.0]}, index=["P001", "P002", "P003"])
    with pytest.raises(ValueError, match="missing or infinite covariates in rows P002"):
        fit.predict_survival_ci(new, [2.0])
    with pytest.raises(ValueError, match="in rows 1:"):
        fit.predict_survival_ci(new.to_numpy(), [2.0])


def test_strata_are_required_and_must_be_known():
    time, event = np.arange(1.0, 9), np.array([1.0, 1, 0, 1, 1, 0, 1, 1])
    x = np.array([1.0, 0, 1, 0, 2, 1, 0, 1])
    fit = cox.fit(x, time, event, strata=list("aabbabab"))
    with pytest.raises(ValueError, match="stratified: pass strata"):
        fit.predict_survival_ci(np.array([[1.0]]), [2.0])
    with pytest.raises(ValueError, match=r"unknown strata \['c'\] in rows 1"):
        fit.predict_survival_ci(np.array([[1.0], [0.0]]), [2.0], strata=["a", "c"])
