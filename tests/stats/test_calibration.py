"""Calibration (grouped KM RMSE, ICI/E50/E90) against survival/rms on pbc and lung."""

import numpy as np
import pytest

from toolkit.rbridge import study as rstudy
from toolkit.stats import cox
from toolkit.stats.calibration import calibrate, optimism_corrected, rcs_knots


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
