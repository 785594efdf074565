"""Cox regression against survival::coxph on R's own datasets (live through rpy2)."""

from __future__ import annotations

import warnings

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
        cox.fit(np.ones((4, 1)), time, event, ties="discrete")


# survival's tests/book1.R: six rows (the seventh, status NA, is dropped by coxph).
BOOK1_TIME = np.array([9.0, 1, 1, 6, 6, 8])
BOOK1_EVENT = np.array([1.0, 1, 0, 1, 1, 0])
BOOK1_X = np.array([0.0, 1, 1, 1, 0, 0])


def test_max_iter_zero_is_the_start_worked_by_hand():
    """At beta = 0 with Breslow ties, by hand: the event at t=1 has 6 at risk, 3 with
    x=1 (mean 1/2, variance 1/4); the two events at t=6 have 4 at risk, 1 with x=1
    (mean 1/4, variance 3/16); the event at t=9 is alone (variance 0). So
    U = (1 - 1/2) + (1 - 2/4) = 1, I = 1/4 + 2 * 3/16 = 5/8, var = 1/I = 1.6 and
    loglik = -(log 6 + 2 log 4)."""
    fit = cox.fit(BOOK1_X[:, None], BOOK1_TIME, BOOK1_EVENT, ties="breslow", max_iter=0)
    assert fit.coef.tolist() == [0.0]
    assert fit.iterations == 0
    assert not fit.converged
    np.testing.assert_allclose(fit.variance, [[1.6]], rtol=1e-14)
    np.testing.assert_allclose(fit.loglik, -(np.log(6) + 2 * np.log(4)), rtol=1e-14)
    assert fit.loglik == fit.loglik_null


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_max_iter_zero_equals_coxph_iter_max_zero_on_lung(r, lung_data, ties):
    from toolkit.rbridge.cox import coxph

    x, time, event, sex = lung_data
    ours = cox.fit(x, time, event, ties=ties, strata=sex, max_iter=0)
    ref = coxph(x, time, event, ties=ties, strata=sex, iter_max=0)
    assert ref["iter"][0] == 0 and ours.iterations == 0
    np.testing.assert_array_equal(ours.coef, ref["coef"])
    np.testing.assert_allclose(ours.variance, ref["var"], rtol=1e-10)
    np.testing.assert_allclose([ours.loglik_null, ours.loglik], ref["loglik"], rtol=1e-12)


def _count_halvings(monkeypatch, nan_at: int | None = None, betas=None) -> list[float]:
    """Record every log-likelihood that cox.fit's Newton iteration evaluates (and
    each beta in ``betas``); ``nan_at``: make that evaluation (1 = the first
    candidate) return NaN."""
    seen: list[float] = []
    terms = cox.partial_likelihood

    def recording(risk, beta, **kwargs):
        out = terms(risk, beta, **kwargs)
        seen.append(out[0])
        if betas is not None:
            betas.append(np.array(beta))
        if nan_at is not None and len(seen) == nan_at + 1:
            seen[-1] = np.nan
            return (np.nan, *out[1:])
        return out

    monkeypatch.setattr(cox, "partial_likelihood", recording)
    return seen


@pytest.mark.parametrize(
    ("data", "covariates", "halvings"),
    [("mgus", ["creat"], 1), ("flchain", ["creatinine"], 3), ("flchain", ["kappa", "mgus"], 3)],
)
def test_newton_path_that_halves_equals_coxph(r, monkeypatch, data, covariates, halvings):
    """Real data whose first Newton steps overshoot: coxfit6 pulls a step back
    towards the best point, harder on each consecutive failure ((new + k old) / (k + 1)),
    and may stop in the midst of halving. Same coefficients and iteration count as R."""
    from toolkit.rbridge.cox import coxph

    frame = r.dataset(data)
    time_col, event_col = ("futime", "death")
    d = frame.dropna(subset=[time_col, event_col, *covariates])
    x = d[covariates].to_numpy(float)
    time, event = d[time_col].to_numpy(float), d[event_col].to_numpy(float)
    seen = _count_halvings(monkeypatch)
    ours = cox.fit(x, time, event)
    best = np.maximum.accumulate(seen)
    assert int(np.sum(np.asarray(seen[1:]) < best[:-1])) == halvings  # the path halved
    ref = coxph(x, time, event)
    assert ours.converged
    assert ours.iterations == ref["iter"][0]
    assert _rel(ours.coef, ref["coef"]) < 1e-9
    assert _rel(ours.loglik, ref["loglik"][1]) < 1e-12
    np.testing.assert_allclose(ours.variance, ref["var"], rtol=1e-8)


def test_non_finite_loglik_is_halved_not_accepted(r, monkeypatch, pbc_data):
    """coxfit6 halves a candidate whose log-likelihood is not finite (exp overflow);
    taking NaN as an improvement (NaN < x is false) never converged."""
    X, time, event = pbc_data
    clean = cox.fit(X, time, event)
    betas: list[np.ndarray] = []
    seen = _count_halvings(monkeypatch, nan_at=1, betas=betas)
    ours = cox.fit(X, time, event)
    assert np.isnan(seen[1])
    np.testing.assert_allclose(betas[2], betas[1] / 2, rtol=1e-15)  # halved from beta = 0
    assert ours.converged
    np.testing.assert_allclose(ours.coef, clean.coef, rtol=1e-7)


_COXPH_AT = """function(x, time, event, init) {
  fit <- survival::coxph(survival::Surv(time, event) ~ x, init = init, iter.max = 0)
  list(var = as.matrix(fit$var), loglik = fit$loglik)
}"""


def test_running_out_of_iterations_warns_as_coxph(r, lung_data):
    """iter.max = 2 on lung: R warns "Ran out of iterations", returns the last accepted
    point with the terms recomputed there, and reports iter = iter.max + 1.

    R's ``fit$var`` there is not the inverse information at that point (coxfit6
    inverts the recomputed information without factoring it first: the matrix comes
    back diagonal); ours is, and equals R's own ``coxph(init = coef, iter.max = 0)``."""
    from toolkit.rbridge.cox import coxph

    x, time, event, _ = lung_data
    with pytest.warns(RuntimeWarning, match="ran out of iterations"):
        ours = cox.fit(x, time, event, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # R's own "Ran out of iterations"
        ref = coxph(x, time, event, iter_max=2)
    assert not ours.converged
    assert ours.iterations == ref["iter"][0] == 3
    assert _rel(ours.coef, ref["coef"]) < 1e-10
    assert _rel(ours.loglik, ref["loglik"][1]) < 1e-12
    assert np.count_nonzero(ref["var"] - np.diag(np.diag(ref["var"]))) == 0
    at = r.call(r.r_function(_COXPH_AT, ["survival"]), x, time, event, ref["coef"])
    np.testing.assert_allclose(ours.variance, at["var"], rtol=1e-9)
    np.testing.assert_allclose(ours.loglik, at["loglik"][0], rtol=1e-12)


@pytest.mark.parametrize("bad", [-1, 2.5, True, "20"])
def test_max_iter_must_be_a_whole_number(bad):
    with pytest.raises(ValueError, match="max_iter must be a whole number"):
        cox.fit(BOOK1_X[:, None], BOOK1_TIME, BOOK1_EVENT, max_iter=bad)
