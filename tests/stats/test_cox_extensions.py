"""The Cox model's extensions against survival 3.5-3's coxph (live through rpy2): the
clustered robust variance (``cluster =``), and cases worked by hand from the formulas."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.stats import cox
from toolkit.stats.cox_residuals import global_tests

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
