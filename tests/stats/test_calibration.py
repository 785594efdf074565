"""Calibration (grouped KM RMSE, ICI/E50/E90, slope, calibration-in-the-large) against
survival/rms on pbc, lung and veteran, and worked by hand."""

import numpy as np
import pytest

from toolkit.rbridge import calibration as rcalibration
from toolkit.rbridge import study as rstudy
from toolkit.stats import cox
from toolkit.stats.calibration import (
    calibrate,
    calibration_in_the_large,
    calibration_slope,
    optimism_corrected,
    rcs_knots,
)
from toolkit.stats.wald import Z_975


def _pbc(pbc):
    d = pbc.dropna(subset=["bili", "albumin", "age"])
    X = np.column_stack(
        [np.log(d["bili"].to_numpy(float)), d["albumin"].to_numpy(float), d["age"].to_numpy(float)]
    )
    return X, d["time"].to_numpy(float), (d["status"] == 2).to_numpy(float)


def test_calibration_equals_r_on_pbc(pbc):
    X, t, e = _pbc(pbc)
    fit = cox.fit(X, t, e)
    for horizon in (1000.0, 2000.0, 3000.0):
        s = fit.predict_survival(X, [horizon])[:, 0]
        ours = calibrate(t, e, s, horizon, n_groups=4)
        order = np.argsort(s, kind="stable")
        group = np.empty(len(s), int)
        for g, rows in enumerate(np.array_split(order, 4), start=1):
            group[rows] = g
        theirs = rstudy.calibration(t, e, s, horizon, group, rcs_knots(np.log(-np.log(s))))
        np.testing.assert_allclose(ours.groups["observed"], theirs["observed"], atol=1e-12)
        np.testing.assert_allclose(ours.groups["predicted"], theirs["predicted"], atol=1e-12)
        assert ours.rmse == pytest.approx(float(theirs["rmse"][0]), abs=1e-12)
        np.testing.assert_allclose(rcs_knots(np.log(-np.log(s))), theirs["knots"], atol=1e-12)
        for key in ("ici", "e50", "e90"):
            assert getattr(ours, key) == pytest.approx(float(theirs[key][0]), abs=1e-7), key


def test_knots_for_small_samples_equal_rcspline_eval(r):
    fn = r.r_function("function(x) Hmisc::rcspline.eval(x, nk = 3, knots.only = TRUE)")
    x = np.random.default_rng(3).normal(size=60)
    np.testing.assert_allclose(rcs_knots(x), r.call(fn, x), atol=1e-12)


def test_optimism_correction_penalises_an_overfitted_model(lung):
    d = lung.dropna(subset=["ph.ecog", "age", "wt.loss", "meal.cal"]).reset_index(drop=True)
    rng = np.random.default_rng(0)
    X = np.column_stack([d["ph.ecog"], d["age"], rng.normal(size=(len(d), 6))]).astype(float)
    t = d["time"].to_numpy(float)
    e = (d["status"] == 2).to_numpy(float)
    horizons = [180.0, 365.0]

    def refit(rows):
        fit = cox.fit(X[rows], t[rows], e[rows])
        return lambda idx: fit.predict_survival(X[idx], horizons)

    out = optimism_corrected(t, e, refit, horizons, n_bootstrap=20, seed=1)
    apparent = calibrate(t, e, refit(np.arange(len(t)))(np.arange(len(t)))[:, 1], 365.0)
    assert out[365.0]["n_used"] == 20
    assert out[365.0]["ici"] > apparent.ici


def test_lean_efron_fit_equals_cox_fit(veteran, lung):
    from toolkit.stats._efron import efron_fit

    d = lung.dropna(subset=["ph.ecog"])
    cases = [
        (veteran[["karno", "age"]], veteran["time"], veteran["status"]),
        (d[["age", "ph.ecog", "sex"]], d["time"], d["status"] == 2),
    ]
    for X, t, e in cases:
        X, t, e = (np.asarray(v, dtype=float) for v in (X, t, e))
        ours, ref = efron_fit(X, t, e), cox.fit(X, t, e)
        horizons = np.quantile(t, [0.2, 0.5, 0.8])
        assert ours.converged
        np.testing.assert_allclose(ours.coef, ref.coef, atol=1e-9)
        np.testing.assert_allclose(
            ours.survival(X, horizons), ref.predict_survival(X, horizons), atol=1e-10
        )


def _split_sets(pbc, lung, veteran):
    """A model fitted on the first two thirds of each dataset, assessed on the last third."""
    pbc = pbc.dropna(subset=["bili", "albumin", "age"]).reset_index(drop=True)
    lung = lung.dropna(subset=["ph.ecog"]).reset_index(drop=True)
    for name, time, event, x in [
        (
            "pbc",
            pbc["time"],
            pbc["status"] == 2,
            np.column_stack([np.log(pbc["bili"]), pbc["albumin"], pbc["age"]]),
        ),
        ("lung", lung["time"], lung["status"] == 2, lung[["ph.ecog", "age", "sex"]]),
        ("veteran", veteran["time"], veteran["status"], veteran[["karno", "age"]]),
    ]:
        t, e, x = np.asarray(time, float), np.asarray(event, float), np.asarray(x, float)
        train = np.arange(len(t)) < 2 * len(t) // 3
        fit = cox.fit(x[train], t[train], e[train])
        test = ~train
        times = np.quantile(t[test][e[test] == 1], [0.25, 0.5, 0.75])
        yield (
            name,
            t[test],
            e[test],
            fit.predict_linear(x[test]),
            fit.predict_survival(x[test], times),
            times,
        )


def test_slope_and_calibration_in_the_large_equal_r(pbc, lung, veteran):
    for name, t, e, lp, s, times in _split_sets(pbc, lung, veteran):
        ref = rcalibration.slope_and_large(t, e, lp, s, times)
        slope = calibration_slope(t, e, lp)
        large = calibration_in_the_large(t, e, s, times)
        for got, want, what in [
            (slope.slope, ref["slope"], "slope"),
            (slope.se, ref["se"], "slope SE"),
            (slope.lower, ref["lower"], "slope lower"),
            (slope.upper, ref["upper"], "slope upper"),
            (large.observed, ref["observed"], "observed risk"),
            (large.observed_lower, ref["observed_lower"], "observed lower"),
            (large.observed_upper, ref["observed_upper"], "observed upper"),
            (large.expected, ref["expected"], "expected risk"),
            (large.ratio, ref["observed"] / ref["expected"], "O/E"),
            (large.lower, ref["observed_lower"] / ref["expected"], "O/E lower"),
            (large.upper, ref["observed_upper"] / ref["expected"], "O/E upper"),
        ]:
            np.testing.assert_allclose(got, want, atol=1e-8, rtol=0, err_msg=f"{name}: {what}")


def test_slope_is_one_on_the_fitting_set(veteran):
    x = veteran[["karno", "age", "diagtime"]].to_numpy(float)
    t, e = veteran["time"].to_numpy(float), veteran["status"].to_numpy(float)
    lp = cox.fit(x, t, e).predict_linear(x)
    # the refitted coefficient of the fitted lp is 1; a shift of lp changes nothing
    assert calibration_slope(t, e, lp).slope == pytest.approx(1.0, abs=1e-8)
    assert calibration_slope(t, e, lp + 3.0).slope == pytest.approx(1.0, abs=1e-8)
    assert calibration_slope(t, e, 2 * lp).slope == pytest.approx(0.5, abs=1e-8)


def test_calibration_in_the_large_by_hand():
    # KM(3.5) = (1 - 1/5)(1 - 1/3) = 8/15; Greenwood var(log S) = 1/(5*4) + 1/(3*2) = 13/60
    time, event = [1.0, 2, 3, 4, 5], [1, 0, 1, 1, 0]
    survival = np.array([0.2, 0.5, 0.6, 0.7, 0.9])
    out = calibration_in_the_large(time, event, survival, [3.5])
    expected = np.mean(1 - survival)
    assert out.observed[0] == pytest.approx(7 / 15)
    assert out.ratio[0] == pytest.approx((7 / 15) / expected)
    km_lower = 8 / 15 * np.exp(-Z_975 * np.sqrt(13 / 60))
    km_upper = min(1.0, 8 / 15 * np.exp(Z_975 * np.sqrt(13 / 60)))
    assert out.lower[0] == pytest.approx((1 - km_upper) / expected)
    assert out.upper[0] == pytest.approx((1 - km_lower) / expected)
    assert out.n_events.tolist() == [2]


def test_calibration_in_the_large_refuses_a_horizon_beyond_follow_up():
    with pytest.raises(ValueError, match="beyond the last follow-up"):
        calibration_in_the_large([1.0, 2, 3], [1, 0, 1], [0.5, 0.5, 0.5], [4.0])
