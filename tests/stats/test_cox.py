"""Cox regression against survival::coxph on R's own datasets (live through rpy2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit.stats import cox

PBC_COVARIATES = ["age", "bili", "albumin", "edema", "protime"]
LUNG_COVARIATES = ["age", "ph.ecog", "wt.loss"]


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) / np.asarray(b) - 1)))


@pytest.fixture(scope="module")
def pbc_data(pbc):
    d = pbc.dropna(subset=PBC_COVARIATES)
    return d[PBC_COVARIATES], d["time"].to_numpy(), (d["status"] == 2).astype(float).to_numpy()


@pytest.fixture(scope="module")
def lung_data(lung):
    d = lung.dropna(subset=LUNG_COVARIATES)
    x = d[LUNG_COVARIATES].to_numpy()
    return x, d["time"].to_numpy(), (d["status"] == 2).astype(float).to_numpy(), d["sex"].to_numpy()


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_coxph_equals_r_on_pbc(r, pbc_data, ties):
    from toolkit.rbridge.cox import coxph

    X, time, event = pbc_data
    ours = cox.fit(X, time, event, ties=ties)
    ref = coxph(X.to_numpy(), time, event, ties=ties)
    assert ours.converged
    assert ours.names == tuple(PBC_COVARIATES)
    assert _rel(ours.coef, ref["coef"]) < 1e-7
    assert _rel(ours.se, ref["se"]) < 1e-6
    assert _rel(ours.loglik, ref["loglik"][1]) < 1e-7
    assert _rel(ours.loglik_null, ref["loglik"][0]) < 1e-7
    assert abs(ours.aic - ref["aic"][0]) < 1e-6
    assert _rel(ours.p, ref["p"]) < 1e-6
    hr = ours.hazard_ratio()
    assert _rel(hr["lower"], ref["lower"]) < 1e-6
    assert _rel(hr["upper"], ref["upper"]) < 1e-6
    np.testing.assert_allclose(ours.means, ref["means"], rtol=1e-12)
    assert ours.n == ref["n"][0] and ours.n_events == ref["nevent"][0]
    assert ours.iterations == ref["iter"][0]  # same Newton path as coxfit6
    base = ours.baseline_cumulative_hazard
    np.testing.assert_array_equal(base["time"], ref["base_time"])
    np.testing.assert_allclose(base["hazard"], ref["base_hazard"], rtol=1e-7, atol=1e-8)
    table = ours.summary()
    assert list(table.columns) == ["coef", "exp(coef)", "se(coef)", "z", "p"]
    np.testing.assert_allclose(table["exp(coef)"], np.exp(ours.coef))


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_stratified_weighted_fit_and_survfit_equal_r_on_lung(r, lung_data, ties):
    """Strata, integer case weights, and survfit.coxph on new rows, both tie methods."""
    from toolkit.rbridge.cox import coxph

    x, time, event, sex = lung_data
    weights = 1.0 + np.arange(len(time)) % 3
    newx = x[:6] + np.array([5.0, 1.0, -3.0])
    times = np.array([0.0, 5.0, 100.0, 365.5, 700.0, 5000.0])
    ours = cox.fit(x, time, event, ties=ties, weights=weights, strata=sex)
    ref = coxph(
        x, time, event, ties=ties, weights=weights, strata=sex,
        newx=newx, newstrata=sex[:6], times=times,
    )  # fmt: skip
    assert _rel(ours.coef, ref["coef"]) < 1e-7
    assert _rel(ours.se, ref["se"]) < 1e-6
    assert _rel(ours.loglik, ref["loglik"][1]) < 1e-7
    base = ours.baseline_cumulative_hazard
    assert list(base["strata"].astype(str)) == ref["base_strata"]
    np.testing.assert_allclose(base["hazard"], ref["base_hazard"], rtol=1e-7, atol=1e-8)
    survival = ours.predict_survival(newx, times, strata=sex[:6])
    np.testing.assert_allclose(survival, ref["surv"], atol=1e-8)


def test_predict_survival_equals_survfit_on_new_data(r, lung_data):
    from toolkit.rbridge.cox import coxph

    x, time, event, _ = lung_data
    newx = np.array([[40.0, 0, 0], [60.0, 1, 10], [80.0, 3, -5]])
    times = np.array([1.0, 30.0, 180.0, 365.0, 1022.0])
    ours = cox.fit(x, time, event)
    ref = coxph(x, time, event, newx=newx, times=times)
    np.testing.assert_allclose(ours.predict_survival(newx, times), ref["surv"], atol=1e-8)
    assert ours.predict_linear(newx).shape == (3,)


def test_eps_follows_coxph_control(r, pbc_data):
    """At coxph's default eps the coefficients are ~1e-7 from the exact maximum; with
    the same eps as an R fit (here 1e-12, as rms::cph(eps=1e-12)) both agree again."""
    from toolkit.rbridge.cox import coxph

    X, time, event = pbc_data
    x = np.c_[np.log(X["bili"]), X[["age", "albumin", "edema"]]]
    ours = cox.fit(x, time, event, eps=1e-12)
    ref = coxph(x, time, event, eps=1e-12)
    assert _rel(ours.coef, ref["coef"]) < 1e-10
    assert ours.iterations == ref["iter"][0]


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_fractional_weights_give_coxph_robust_variance(r, lung_data, ties):
    """coxph switches to the robust (sandwich) variance for non-integer weights."""
    from toolkit.rbridge.cox import coxph

    x, time, event, sex = lung_data
    weights = 1.0 + 0.5 * (np.arange(len(time)) % 3)
    ours = cox.fit(x, time, event, ties=ties, weights=weights, strata=sex)
    ref = coxph(x, time, event, ties=ties, weights=weights, strata=sex)
    assert ours.robust
    assert _rel(ours.coef, ref["coef"]) < 1e-7
    assert _rel(ours.se, ref["se"]) < 1e-6
    assert _rel(np.sqrt(np.diag(ours.naive_variance)), ref["naive_se"]) < 1e-6


def test_separating_covariate_warns_and_is_not_converged(lung):
    time = lung["time"].to_numpy()
    x = (time < np.median(time)).astype(float)
    event = x.copy()  # every event has x = 1: the likelihood rises for ever in beta
    with pytest.warns(RuntimeWarning, match="coefficient may be infinite"):
        result = cox.fit(np.c_[x, lung["age"]], time, event, names=["separator", "age"])
    assert not result.converged
    assert result.coef[0] > 10


def test_bad_input_names_rows_and_problem():
    time = np.array([5.0, 3.0, 7.0, 2.0])
    event = np.array([1, 0, 1, 1])
    x = pd.DataFrame({"a": [1.0, np.nan, 0.5, 2.0]}, index=["P1", "P2", "P3", "P4"])
    with pytest.raises(ValueError, match=r"covariates has 1 missing.*rows P2"):
        cox.fit(x, pd.Series(time, index=x.index), event)
    with pytest.raises(ValueError, match=r"time has 1 negative.*rows 1"):
        cox.fit(np.ones((4, 1)), [5.0, -1.0, 7.0, 2.0], event)
    with pytest.raises(ValueError, match=r"event must be coded 0.*found 2.*rows 2"):
        cox.fit(np.ones((4, 1)), time, [1, 0, 2, 1])
    with pytest.raises(ValueError, match="length mismatch"):
        cox.fit(np.ones((3, 1)), time, event)
    with pytest.raises(ValueError, match="no events"):
        cox.fit(np.ones((4, 1)), time, np.zeros(4))
    with pytest.raises(ValueError, match=r"numeric.*\['g'\]"):
        cox.fit(pd.DataFrame({"g": list("abab")}), time, event)
    with pytest.raises(ValueError, match="ties"):
        cox.fit(np.ones((4, 1)), time, event, ties="exact")
