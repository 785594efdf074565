"""The Cox model's extensions against survival 3.5-3's coxph (live through rpy2): the
clustered robust variance (``cluster =``), offsets and (start, stop] data (``entry =``,
``id =``), the exact partial likelihood (``ties = "exact"``), and cases worked by hand
from the formulas."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from toolkit.stats import _coxexact, cox
from toolkit.stats.cox_residuals import global_tests, residuals
from toolkit.stats.cox_zph import zph

TOL = 1e-8


def _assert_close(ours, theirs, what):
    np.testing.assert_allclose(ours, theirs, rtol=TOL, atol=1e-12, err_msg=what)


def _assert_fit_equals_r(fit, ref):
    """Coefficients, both variances, summary's table and the global tests."""
    _assert_close(fit.coef, ref["coef"], "coef")
    _assert_close(fit.variance, ref["var"], "var")
    _assert_close(fit.naive_variance, ref["naive_var"], "naive.var")
    _assert_close([fit.loglik_null, fit.loglik], ref["loglik"], "loglik")
    assert fit.robust == ref["robust"]
    table = ref["table"]
    if fit.robust:  # coef, exp(coef), se(coef), robust se, z, p
        _assert_close(np.c_[fit.naive_se, fit.se, fit.z, fit.p], table[:, 2:], "summary")
    else:
        _assert_close(np.c_[fit.se, fit.z, fit.p], table[:, 2:], "summary")
    tests = global_tests(fit)
    _assert_close(tests.wald.statistic, ref["wald_test"][0], "wald")
    _assert_close([tests.likelihood_ratio.statistic, tests.score.statistic],
                  [ref["logtest"][0], ref["sctest"][0]], "LR and score tests")  # fmt: skip
    if fit.robust:
        _assert_close([tests.robust_score.statistic, tests.robust_score.p],
                      ref["robscore"][[0, 2]], "robust score test")  # fmt: skip


def _rats(r):
    rats = r.dataset("rats")
    x = np.c_[rats["rx"], (rats["sex"] == "f").astype(float)]
    return x, rats["time"].to_numpy(float), rats["status"].to_numpy(float), rats["litter"]


def _lung_by_inst(r):
    lung = r.dataset("lung").dropna(subset=["inst", "ph.ecog", "wt.loss"]).reset_index(drop=True)
    x = lung[["age", "ph.ecog", "wt.loss"]].to_numpy(float)
    event = (lung["status"] == 2).to_numpy(float)
    return x, lung["time"].to_numpy(float), event, lung["inst"], lung["sex"].to_numpy()


# --- item 5: cluster = -------------------------------------------------------------------


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_clustered_variance_equals_r_on_rats_by_litter(r, ties):
    from toolkit.rbridge.cox_extensions import coxph

    x, time, event, litter = _rats(r)
    fit = cox.fit(x, time, event, ties=ties, cluster=litter)
    ref = coxph(x, time, event, cluster=litter, ties=ties)
    assert fit.robust and len(np.unique(fit.cluster)) == 100
    _assert_fit_equals_r(fit, ref)


@pytest.mark.parametrize(("ties", "stratified", "weighted"),
                         [("efron", False, False), ("breslow", True, True)])  # fmt: skip
def test_clustered_variance_equals_r_on_lung_by_inst(r, ties, stratified, weighted):
    """lung by institution (one institution has a single patient): strata, weights."""
    from toolkit.rbridge.cox_extensions import coxph

    x, time, event, inst, sex = _lung_by_inst(r)
    strata = sex if stratified else None
    w = 1.0 + (np.arange(len(time)) % 3) if weighted else None
    fit = cox.fit(x, time, event, ties=ties, cluster=inst, strata=strata, weights=w)
    ref = coxph(x, time, event, cluster=inst, strata=strata, ties=ties, weights=w)
    _assert_fit_equals_r(fit, ref)


def test_clustered_variance_worked_by_hand():
    """Times 1..4, events 1, 1, 1, 0, x = 1, 0, 1, 0, clusters A A B B, at beta = 0.

    Risk-set means 1/2, 1/3, 1/2; score residuals 27/72, -7/72, -7/72, 35/72 (sum
    U(0) = 2/3), information 1/4 + 2/9 + 1/4 = 13/18. Collapsed: A 5/18, B 7/18, so
    the robust variance is (18/13)^2 (25 + 49) / 324 = 74/169 and the robust score
    test (2/3)^2 / (74/324) = 72/37.
    """
    time, event = np.array([1.0, 2, 3, 4]), np.array([1.0, 1, 1, 0])
    x = np.array([[1.0], [0], [1], [0]])
    fit = cox.fit(x, time, event, cluster=["A", "A", "B", "B"], max_iter=0)
    np.testing.assert_allclose(fit.naive_variance, [[18 / 13]], rtol=1e-14)
    np.testing.assert_allclose(fit.variance, [[74 / 169]], rtol=1e-14)
    np.testing.assert_allclose(global_tests(fit).robust_score.statistic, 72 / 37, rtol=1e-14)
    each_own = cox.fit(x, time, event, cluster=["A", "B", "C", "D"], max_iter=0)
    unclustered = cox.fit(x, time, event, robust=True, max_iter=0)
    np.testing.assert_allclose(each_own.variance, unclustered.variance, rtol=1e-14)


def test_cluster_bad_input_is_refused_naming_rows():
    time, event = np.array([1.0, 2, 3, 4]), np.array([1.0, 1, 1, 0])
    x = np.array([0.0, 1, 1, 0])
    with pytest.raises(ValueError, match=r"cluster has one label \(A\) for all 4 rows"):
        cox.fit(x, time, event, cluster=["A"] * 4)
    with pytest.raises(ValueError, match=r"cluster has missing labels \(rows 2\)"):
        cox.fit(x, time, event, cluster=["A", "A", None, "B"])
    with pytest.raises(ValueError, match="cluster has 3 labels for 4 rows"):
        cox.fit(x, time, event, cluster=["A", "A", "B"])
    with pytest.raises(ValueError, match="cluster= needs the robust variance"):
        cox.fit(x, time, event, cluster=["A", "A", "B", "B"], robust=False)


# --- item 6: offset = and (start, stop] data ----------------------------------------------


def _heart(r):
    heart = r.dataset("heart")  # jasa1 in (start, stop] form: transplant time-varying
    x = np.c_[heart[["age", "year", "surgery"]], heart["transplant"].astype(str).astype(float)]
    return x, heart["start"].to_numpy(), heart["stop"].to_numpy(), heart["event"].to_numpy(), heart


def _cgd(r):
    cgd = r.dataset("cgd")  # recurrent infections, one row per interval of each patient
    x = np.c_[cgd["treat"].astype(str) == "rIFN-g", cgd["age"],
              cgd["inherit"].astype(str) == "autosomal", cgd["steroids"]].astype(float)  # fmt: skip
    start, stop = cgd["tstart"].to_numpy(float), cgd["tstop"].to_numpy(float)
    return x, start, stop, cgd["status"].to_numpy(float), cgd


def _assert_residuals_and_baseline_equal_r(fit, ref):
    for kind in ("martingale", "score", "dfbeta"):
        values = residuals(fit, kind).values
        _assert_close(values.reshape(ref[kind].shape), ref[kind], kind)
    base = fit.baseline_cumulative_hazard
    _assert_close(base["time"], ref["base_time"], "basehaz time")
    _assert_close(base["hazard"], ref["base_hazard"], "basehaz hazard")


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_counting_process_fit_equals_r_on_heart(r, ties):
    """coxph(Surv(start, stop, event) ~ age + year + surgery + transplant, heart, id = id)."""
    from toolkit.rbridge.cox_extensions import coxph

    x, start, stop, event, heart = _heart(r)
    fit = cox.fit(x, stop, event, entry=start, id=heart["id"], ties=ties)
    ref = coxph(x, stop, event, entry=start, id=heart["id"], ties=ties)
    assert not fit.robust  # no patient has two events
    _assert_fit_equals_r(fit, ref)
    _assert_residuals_and_baseline_equal_r(fit, ref)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_counting_process_with_offset_equals_r_on_heart(r, ties):
    from toolkit.rbridge.cox_extensions import coxph

    x, start, stop, event, _ = _heart(r)
    offset = 0.2 * np.sin(np.arange(len(stop)))
    fit = cox.fit(x[:, :3], stop, event, entry=start, offset=offset, ties=ties)
    ref = coxph(x[:, :3], stop, event, entry=start, offset=offset, ties=ties)
    _assert_fit_equals_r(fit, ref)
    _assert_residuals_and_baseline_equal_r(fit, ref)


@pytest.mark.parametrize(("ties", "how"), [("efron", "cluster"), ("breslow", "id"),
                                           ("efron", "id, strata")])  # fmt: skip
def test_recurrent_events_equal_r_on_cgd(r, ties, how):
    """cgd: cluster = id gives the robust variance; id alone too (patients with several
    infections make coxph robust, clustered on id), also stratified by hospital."""
    from toolkit.rbridge.cox_extensions import coxph

    x, start, stop, event, cgd = _cgd(r)
    kw = {"cluster": cgd["id"]} if how == "cluster" else {"id": cgd["id"]}
    strata = cgd["center"].astype(str).to_numpy() if "strata" in how else None
    fit = cox.fit(x, stop, event, entry=start, ties=ties, strata=strata, **kw)
    ref = coxph(x, stop, event, entry=start, ties=ties, strata=strata, **kw)
    assert fit.robust and len(np.unique(fit.cluster)) == 128
    _assert_fit_equals_r(fit, ref)
    _assert_residuals_and_baseline_equal_r(fit, ref)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_offset_equals_r_on_lung(r, ties):
    from toolkit.rbridge.cox_extensions import coxph

    lung = r.dataset("lung").dropna(subset=["ph.ecog"]).reset_index(drop=True)
    x, offset = lung[["age", "ph.ecog"]].to_numpy(float), 0.3 * lung["sex"].to_numpy(float)
    time, event = lung["time"].to_numpy(float), (lung["status"] == 2).to_numpy(float)
    fit = cox.fit(x, time, event, offset=offset, ties=ties)
    ref = coxph(x, time, event, offset=offset, ties=ties)
    _assert_fit_equals_r(fit, ref)
    _assert_residuals_and_baseline_equal_r(fit, ref)


# (start, stop] rows A-D with x = 1, 0, 1, 1: C enters at 1, D at 2 (so not at risk at 2).
HAND_START = np.array([0.0, 0, 1, 2])
HAND_STOP = np.array([2.0, 3, 4, 5])
HAND_EVENT = np.array([1.0, 1, 0, 1])
HAND_X = np.array([[1.0], [0], [1], [1]])


def test_counting_process_worked_by_hand():
    """Risk sets {A, B, C} at 2, {B, C, D} at 3, {D} at 5: loglik(b) = b - 2 log(1 + 2e^b),
    maximal at e^b = 1/2 (b = -log 2, loglik -3 log 2, information 2 (1/2)(1/2) = 1/2);
    at b = 0 the score is 1/3 - 2/3 = -1/3 and the information 2/9 + 2/9, so the score
    test is (1/9) / (4/9) = 1/4."""
    fit = cox.fit(HAND_X, HAND_STOP, HAND_EVENT, entry=HAND_START, eps=1e-12)
    np.testing.assert_allclose(fit.coef, [-np.log(2)], rtol=1e-10)
    np.testing.assert_allclose(fit.loglik, -3 * np.log(2), rtol=1e-12)
    np.testing.assert_allclose(fit.loglik_null, -2 * np.log(3), rtol=1e-14)
    np.testing.assert_allclose(fit.variance, [[2.0]], rtol=1e-9)
    np.testing.assert_allclose(global_tests(fit).score.statistic, 0.25, rtol=1e-14)
    # baseline hazard at x = 0: 1 / (2 (1/2) + 1) at 2, 1 / (1 + 2 (1/2)) at 3, 1 / (1/2) at 5
    base = fit.baseline_cumulative_hazard
    np.testing.assert_allclose(base["hazard"], [0.5, 1.0, 1.0, 3.0], rtol=1e-9)


def test_offset_worked_by_hand():
    """An offset log 2 on row C: loglik(b) = b - 2 log(1 + 3e^b), maximal at e^b = 1/3
    (b = -log 3, loglik -log 3 - 2 log 2)."""
    offset = np.array([0.0, 0, np.log(2), 0])
    fit = cox.fit(HAND_X, HAND_STOP, HAND_EVENT, entry=HAND_START, offset=offset, eps=1e-12)
    np.testing.assert_allclose(fit.coef, [-np.log(3)], rtol=1e-10)
    np.testing.assert_allclose(fit.loglik, -np.log(3) - 2 * np.log(2), rtol=1e-12)


def test_counting_process_bad_input_is_refused_naming_rows():
    x, stop, event = HAND_X, HAND_STOP, HAND_EVENT
    with pytest.raises(ValueError, match=r"start >= stop in 2 rows \(rows 1, 3\)"):
        cox.fit(x, stop, event, entry=[0.0, 3, 1, 5])
    with pytest.raises(ValueError, match=r"entry has 1 missing or infinite values \(rows 2\)"):
        cox.fit(x, stop, event, entry=[0.0, 0, np.nan, 2])
    with pytest.raises(ValueError, match=r"offset has 1 missing or infinite values \(rows 3\)"):
        cox.fit(x, stop, event, offset=[0.0, 0, 0, np.nan])
    with pytest.raises(ValueError, match=r"overlapping .* in 1 pairs of rows \(0 and 2\)"):
        cox.fit(x, stop, event, entry=HAND_START, id=["p1", "p2", "p1", "p3"])
    frame = pd.DataFrame({"x": x[:, 0]}, index=["A", "B", "C", "D"])
    with pytest.raises(ValueError, match=r"offset has 1 missing .* \(rows B\)"):
        cox.fit(frame, stop, event, offset=[0.0, np.inf, 0, 0])
    fit = cox.fit(x, stop, event, entry=HAND_START, id=["p1", "p2", "p3", "p1"])  # A then D
    with pytest.raises(ValueError, match=r"predict_survival_ci is not available .* entry="):
        fit.predict_survival_ci(x, [1.0])
    with pytest.raises(ValueError, match=r"test \(zph\) is not available .* entry="):
        zph(fit)


# --- item 7: ties = "exact" ---------------------------------------------------------------


def _veteran(r, months: bool):
    veteran = r.dataset("veteran")
    x = veteran[["karno", "age", "diagtime", "prior"]].to_numpy(float)
    time = veteran["time"].to_numpy(float)
    time = np.ceil(time / 30) if months else time  # months: up to 41 deaths at one time
    return x, time, veteran["status"].to_numpy(float), veteran["celltype"].astype(str).to_numpy()


@pytest.mark.parametrize(("months", "stratified", "offset"),
                         [(False, False, False), (False, True, False), (True, False, False),
                          (True, True, True)])  # fmt: skip
def test_exact_ties_equal_r_on_veteran(r, months, stratified, offset):
    from toolkit.rbridge.cox_extensions import coxph

    x, time, event, celltype = _veteran(r, months)
    strata = celltype if stratified else None
    o = 0.1 * np.cos(np.arange(len(time))) if offset else None
    fit = cox.fit(x, time, event, ties="exact", strata=strata, offset=o)
    ref = coxph(x, time, event, ties="exact", strata=strata, offset=o)
    _assert_fit_equals_r(fit, ref)
    assert fit.iterations == ref["iter"]
    _assert_close(residuals(fit, "martingale").values, ref["martingale"], "martingale")
    _assert_close(fit.baseline_cumulative_hazard["hazard"], ref["base_hazard"], "basehaz")


def test_exact_likelihood_worked_by_hand():
    """Times 1, 1, 2, 3, events 1, 1, 1, 0, x = 1, 0, 1, 0. At time 1 both deaths among
    four rows: the pairs' scores sum to e^2b + 4e^b + 1; at 2 Breslow's b - log(e^b + 1).
    At b = 0: loglik -log 12, score 1/2, information 1/3 + 1/4, score test 3/7. The
    maximum solves u^3 - 5u - 2 = 0 in u = e^b: u = 1 + sqrt 2."""
    time, event = np.array([1.0, 1, 2, 3]), np.array([1.0, 1, 1, 0])
    x = np.array([[1.0], [0], [1], [0]])
    fit = cox.fit(x, time, event, ties="exact", eps=1e-14)
    np.testing.assert_allclose(fit.loglik_null, -np.log(12), rtol=1e-14)
    np.testing.assert_allclose(global_tests(fit).score.statistic, 3 / 7, rtol=1e-13)
    np.testing.assert_allclose(fit.coef, [np.log(1 + np.sqrt(2))], rtol=1e-10)
    u = 1 + np.sqrt(2)
    loglik = 2 * np.log(u) - np.log(u * u + 4 * u + 1) - np.log(u + 1)
    np.testing.assert_allclose(fit.loglik, loglik, rtol=1e-13)
    breslow = cox.fit(x, time, event, ties="breslow")
    assert abs(breslow.coef[0] - fit.coef[0]) > 0.05


def test_exact_recursion_equals_the_sum_over_subsets():
    """e_d and its derivatives against the sum over every subset, d = 1..5 of 7 rows."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(7, 2))
    r = np.exp(x @ [0.7, -0.4])
    for d in range(1, 6):
        subsets = [list(s) for s in itertools.combinations(range(7), d)]
        weight = np.array([r[s].prod() for s in subsets])
        x_s = np.array([x[s].sum(axis=0) for s in subsets])
        log_e, mean, second = _coxexact.exact_terms(r, x, d)
        np.testing.assert_allclose(log_e, np.log(weight.sum()), rtol=1e-13)
        np.testing.assert_allclose(mean, weight @ x_s / weight.sum(), rtol=1e-12)
        np.testing.assert_allclose(second, (x_s.T * weight) @ x_s / weight.sum(), rtol=1e-12)


def test_exact_ties_refusals():
    time, event = np.array([1.0, 1, 2, 3]), np.array([1.0, 1, 1, 0])
    x = np.array([1.0, 0, 1, 0])
    with pytest.raises(ValueError, match="does not take case weights"):
        cox.fit(x, time, event, ties="exact", weights=[1.0, 2, 1, 1])
    with pytest.raises(ValueError, match="has no robust variance"):
        cox.fit(x, time, event, ties="exact", cluster=["a", "a", "b", "b"])
    with pytest.raises(ValueError, match=r"not available for \(start, stop\] data"):
        cox.fit(x, time, event, ties="exact", entry=[0.0, 0, 0, 0])
    fit = cox.fit(x, time, event, ties="exact")
    with pytest.raises(ValueError, match="dfbeta residuals are not available for ties='exact'"):
        residuals(fit, "dfbeta")
    n = 4000  # every row dies at time 1: d x n = 16,000,000 entries in the recursion
    with pytest.raises(ValueError, match=r"4000 tied events at time 1 with 4000 rows at risk"):
        cox.fit(np.arange(n) % 2, np.ones(n), np.ones(n), ties="exact")
