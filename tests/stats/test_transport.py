"""Transportability (membership model and its AUC, model updating) against R on pbc: the
trial patients develop the model, the 106 non-trial (registry) patients are the new cohort,
a real case-mix difference; and cases worked by hand."""

import numpy as np
import pytest

from toolkit.rbridge import transport as rtransport
from toolkit.stats import cox
from toolkit.stats.transport import delong_auc, membership_model, spread, update_model

TOL = 1e-8
HORIZONS = [1000.0, 2000.0, 3000.0]


@pytest.fixture(scope="module")
def cohorts(pbc):
    d = pbc.dropna(subset=["bili", "albumin", "age", "edema"])
    x = np.column_stack(
        [
            np.log(d["bili"].to_numpy(float)),
            np.log(d["albumin"].to_numpy(float)),
            d["age"].to_numpy(float),
            d["edema"].to_numpy(float),
        ]
    )
    t = d["time"].to_numpy(float)
    e = (d["status"] == 2).to_numpy(float)
    trial = d["trt"].notna().to_numpy()
    fit = cox.fit(x[trial], t[trial], e[trial])
    new = ~trial
    return {"fit": fit, "x": x, "trial": trial, "new": new, "t": t[new], "e": e[new]}


def test_membership_model_equals_glm_and_proc_on_pbc(cohorts):
    fit, x, trial, new = cohorts["fit"], cohorts["x"], cohorts["trial"], cohorts["new"]
    lp = fit.predict_linear(x)
    assert new.sum() == 106 and trial.sum() == 312
    for dev, nov in ((lp[trial], lp[new]), (x[trial], x[new])):
        ours = membership_model(dev, nov)
        z = np.concatenate([dev, nov])
        theirs = rtransport.membership(z, np.r_[np.zeros(len(dev)), np.ones(len(nov))])
        np.testing.assert_allclose(ours.coef, theirs["coef"], atol=TOL, rtol=0)
        np.testing.assert_allclose(ours.se, theirs["se"], atol=TOL, rtol=0)
        np.testing.assert_allclose(ours.fitted, theirs["fitted"], atol=TOL, rtol=0)
        assert ours.auc.auc == pytest.approx(float(theirs["auc"][0]), abs=TOL)
        assert ours.auc.se == pytest.approx(float(theirs["se_auc"][0]), abs=TOL)
        assert ours.auc.lower == pytest.approx(float(theirs["lower"][0]), abs=TOL)
        assert ours.auc.upper == pytest.approx(float(theirs["upper"][0]), abs=TOL)
        assert 0.5 < ours.auc.auc < 1.0


def test_updates_equal_coxph_and_survfit_on_pbc(cohorts):
    fit, x, new, t, e = cohorts["fit"], cohorts["x"], cohorts["new"], cohorts["t"], cohorts["e"]
    lp = fit.predict_linear(x[new])
    original = fit.predict_survival(x[new], HORIZONS)
    ours = update_model(t, e, lp, original, HORIZONS, design=x[new])
    theirs = rtransport.updates(t, e, lp, x[new], HORIZONS)
    baseline = ours["baseline"].fit
    assert baseline.loglik == pytest.approx(float(theirs["offset_loglik"][0]), abs=TOL)
    np.testing.assert_allclose(
        baseline.baseline_cumulative_hazard["hazard"], theirs["offset_hazard"], atol=TOL, rtol=0
    )
    np.testing.assert_allclose(ours["baseline"].survival, theirs["baseline"], atol=TOL, rtol=0)
    slope = ours["slope"]
    assert slope.fit.coef[0] == pytest.approx(float(theirs["slope"][0]), abs=TOL)
    assert slope.calibration.slope.slope == pytest.approx(1.0, abs=1e-9)  # by construction
    original_slope = ours["original"].calibration.slope
    assert (original_slope.lower, original_slope.upper) == pytest.approx(
        tuple(theirs["slope_ci"]), abs=TOL
    )
    np.testing.assert_allclose(slope.survival, theirs["slope_survival"], atol=TOL, rtol=0)
    np.testing.assert_allclose(ours["refit"].fit.coef, theirs["refit_coef"], atol=TOL, rtol=0)
    np.testing.assert_allclose(ours["refit"].survival, theirs["refit_survival"], atol=TOL, rtol=0)
    # the registry patients' baseline risk differs: recalibration moves O/E towards 1
    before = np.abs(np.log(ours["original"].calibration.ratio))
    after = np.abs(np.log(ours["baseline"].calibration.ratio))
    assert after.max() < before.max()


def test_delong_auc_by_hand():
    # cases 3, 2, 2; controls 1, 2: psi = (1, 1; 1, .5; 1, .5) -> AUC 5/6
    a = delong_auc([3.0, 2.0, 2.0, 1.0, 2.0], [1, 1, 1, 0, 0])
    assert a.auc == pytest.approx(5 / 6, abs=1e-15)
    v10 = np.array([1.0, 0.75, 0.75])  # each case's mean psi over the controls
    v01 = np.array([1.0, 2 / 3])  # each control's mean psi over the cases
    var = v10.var(ddof=1) / 3 + v01.var(ddof=1) / 2
    assert a.se == pytest.approx(np.sqrt(var), abs=1e-15)
    assert a.upper == 1.0  # clipped


def test_baseline_update_by_hand():
    # one event at each time 1, 2 among 3 patients with offsets 0, log 2, 0:
    # dH(1) = 1 / (1 + 2 + 1), dH(2) = 1 / (2 + 1) at the offsets' own scale
    t = np.array([1.0, 2.0, 3.0])
    e = np.array([1.0, 1.0, 0.0])
    lp = np.array([0.0, np.log(2.0), 0.0])
    ours = update_model(t, e, lp, np.full((3, 1), 0.5), [2.0], n_groups=1)["baseline"]
    cumhaz = 1 / 4 + 1 / 3
    np.testing.assert_allclose(ours.survival[:, 0], np.exp(-cumhaz * np.exp(lp)), atol=1e-15)


def test_spread_and_bad_input():
    s = spread([1.0, 2.0, 3.0, 6.0])
    assert (s.n, s.mean, s.sd) == (4, 3.0, pytest.approx(np.sqrt(14 / 3)))
    with pytest.raises(ValueError, match="new cohort: rows \\[1\\]"):
        membership_model([1.0, 2.0, 3.0], [1.0, np.nan, 0.0])
    with pytest.raises(ValueError, match="at least 2 cases"):
        delong_auc([1.0, 2.0, 3.0], [1, 0, 0])
