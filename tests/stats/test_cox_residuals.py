"""Cox residuals and global tests against survival::residuals.coxph and summary(coxph)
3.5-3 (live through rpy2), and survival's tests/book1.R data worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit.stats import cox
from toolkit.stats import cox_residuals as residuals_
from toolkit.stats.cox_residuals import residuals

TYPES = ("martingale", "deviance", "score", "schoenfeld", "scaledsch", "dfbeta", "dfbetas")
TOL = 1e-10

# dataset -> (event code of status, covariates, strata column)
MODELS = {
    "pbc": (2, ["age", "bili", "albumin", "edema", "protime"], "sex"),
    "lung": (2, ["age", "ph.ecog", "wt.loss"], "sex"),
    "veteran": (1, ["age", "karno", "diagtime", "prior"], "trt"),
    "colon": (1, ["nodes", "extent", "age"], "sex"),
}


def _data(r, name: str):
    code, covariates, strata = MODELS[name]
    frame = r.dataset(name)
    if name == "colon":
        frame = frame[frame["etype"] == 2]  # death
    frame = frame[["time", "status", *covariates, strata]].dropna().reset_index(drop=True)
    event = (frame["status"] == code).astype(float).to_numpy()
    x = frame[covariates].to_numpy(dtype=float)
    return x, frame["time"].to_numpy(dtype=float), event, np.asarray(frame[strata]).astype(str)


def _weights(n: int, fractional: bool) -> np.ndarray:
    return 1.0 + (0.5 if fractional else 1.0) * (np.arange(n) % 3)


def _assert_residuals_equal_r(fit, time, event, strata, ref, weighted=None):
    for kind in TYPES if weighted is None else [t for t in TYPES if t != "deviance"]:
        ours = residuals(fit, kind, weighted=weighted)
        values = ours.values.reshape(ref[kind].shape)
        np.testing.assert_allclose(values, ref[kind], rtol=TOL, atol=TOL, err_msg=kind)
        if kind in ("schoenfeld", "scaledsch"):
            np.testing.assert_array_equal(ours.time, ref["schoenfeld_time"])
            assert np.array_equal(time[ours.rows], ours.time) and event[ours.rows].all()
            if strata is not None:
                counts = pd.Series(ours.strata).value_counts(sort=False)
                assert counts.tolist() == ref["schoenfeld_strata"].tolist()
        else:
            assert np.array_equal(ours.rows, np.arange(len(time)))


def _assert_tests_equal_r(tests, ref):
    for ours, theirs in ((tests.likelihood_ratio, ref["logtest"]), (tests.score, ref["sctest"])):
        np.testing.assert_allclose([ours.statistic, ours.p], theirs[[0, 2]], rtol=TOL, atol=0)
        assert ours.df == theirs[1]
    np.testing.assert_allclose(tests.wald.statistic, ref["wald_test"][0], rtol=TOL)
    np.testing.assert_allclose(tests.wald.p, ref["waldtest"][2], rtol=TOL)
    assert round(tests.wald.statistic, 2) == ref["waldtest"][0]
    if "robscore" in ref:
        robust = tests.robust_score
        np.testing.assert_allclose([robust.statistic, robust.p], ref["robscore"][[0, 2]],
                                   rtol=TOL)  # fmt: skip
    else:
        assert tests.robust_score is None


CASES = [
    # (dataset, ties, stratified, weights: None | "integer" | "fractional")
    ("pbc", "efron", False, None),
    ("pbc", "breslow", True, "integer"),
    ("lung", "efron", True, "integer"),
    ("lung", "breslow", False, "fractional"),
    ("veteran", "efron", True, "fractional"),
    ("veteran", "breslow", False, None),
    ("colon", "efron", True, None),
    ("colon", "breslow", False, "integer"),
]


@pytest.mark.parametrize(("name", "ties", "stratified", "weights"), CASES)
def test_residuals_and_global_tests_equal_r(r, name, ties, stratified, weights):
    from toolkit.rbridge.cox_residuals import residuals as r_residuals

    x, time, event, strata = _data(r, name)
    strata = strata if stratified else None
    w = None if weights is None else _weights(len(time), weights == "fractional")
    fit = cox.fit(x, time, event, ties=ties, weights=w, strata=strata)
    ref = r_residuals(x, time, event, ties=ties, weights=w, strata=strata)
    np.testing.assert_allclose(fit.coef, ref["coef"], rtol=1e-12)
    _assert_residuals_equal_r(fit, time, event, strata, ref)
    tests = residuals_.global_tests(fit)
    _assert_tests_equal_r(tests, ref)
    assert tests.robust_score is None or fit.robust


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_weighted_residuals_equal_r_on_time_sorted_lung(r, ties):
    """weighted=TRUE for every type but deviance. R weights the Schoenfeld residuals by
    the weights in input order against the time-sorted events, so sort the rows first."""
    from toolkit.rbridge.cox_residuals import residuals as r_residuals

    x, time, event, strata = _data(r, "lung")
    order = np.lexsort((-event, time, strata))
    x, time, event, strata = x[order], time[order], event[order], strata[order]
    w = _weights(len(time), fractional=True)
    fit = cox.fit(x, time, event, ties=ties, weights=w, strata=strata)
    ref = r_residuals(x, time, event, ties=ties, weights=w, strata=strata, weighted=True)
    _assert_residuals_equal_r(fit, time, event, strata, ref, weighted=True)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_score_test_and_residuals_at_max_iter_zero_equal_r(r, pbc, ties):
    """coxph(iter.max = 0): every residual and test at beta = 0."""
    from toolkit.rbridge.cox_residuals import residuals as r_residuals

    x, time, event, strata = _data(r, "pbc")
    fit = cox.fit(x, time, event, ties=ties, strata=strata, max_iter=0)
    ref = r_residuals(x, time, event, ties=ties, strata=strata, iter_max=0)
    _assert_residuals_equal_r(fit, time, event, strata, ref)
    tests = residuals_.global_tests(fit)
    _assert_tests_equal_r(tests, ref)
    assert tests.likelihood_ratio.statistic == 0 and tests.wald.statistic == 0
    assert tests.score.statistic > 0


# survival's tests/book1.R: six rows (the seventh, status NA, is dropped by coxph).
BOOK1_TIME = np.array([9.0, 1, 1, 6, 6, 8])
BOOK1_EVENT = np.array([1.0, 1, 0, 1, 1, 0])
BOOK1_X = np.array([[0.0], [1], [1], [1], [0], [0]])


def _book1(ties: str, kind: str, max_iter: int = 0):
    fit = cox.fit(BOOK1_X, BOOK1_TIME, BOOK1_EVENT, ties=ties, max_iter=max_iter)
    return residuals(fit, kind)


def test_book1_breslow_residuals_at_zero_worked_by_hand():
    """beta = 0, Breslow. Hazard increments 1/6 (t=1: 1 event, 6 at risk, mean x 1/2),
    2/4 (t=6: 2 events, 4 at risk, mean 1/4), 1 (t=9: 1 at risk, mean 0), so
    H = 1/6, 2/3, 5/3 at t = 1, 6, 9 and M_i = d_i - H(t_i). Schoenfeld: x minus the
    mean at the event, sorted by time. Score: d_i (x_i - xbar(t_i)) - sum over the
    event times up to t_i of (x_i - xbar_k) dH_k. V = 1/I = 8/5, 4 events."""
    martingale = _book1("breslow", "martingale").values
    np.testing.assert_allclose(martingale, [-2 / 3, 5 / 6, -1 / 6, 1 / 3, 1 / 3, -2 / 3])
    deviance = _book1("breslow", "deviance").values
    np.testing.assert_allclose(
        deviance[[0, 2]], [-np.sqrt(4 / 3 - 2 * np.log(5 / 3)), -np.sqrt(1 / 3)]
    )
    schoenfeld = _book1("breslow", "schoenfeld")
    np.testing.assert_allclose(schoenfeld.values[:, 0], [1 / 2, 3 / 4, -1 / 4, 0])
    assert schoenfeld.rows.tolist() == [1, 3, 4, 0]
    assert schoenfeld.time.tolist() == [1.0, 6.0, 6.0, 9.0]
    scaled = _book1("breslow", "scaledsch").values[:, 0]
    np.testing.assert_allclose(scaled, 4 * np.array([1 / 2, 3 / 4, -1 / 4, 0]) * 8 / 5)
    score = np.array([5 / 24, 5 / 12, -1 / 12, 7 / 24, -1 / 24, 5 / 24])
    np.testing.assert_allclose(_book1("breslow", "score").values[:, 0], score)
    np.testing.assert_allclose(_book1("breslow", "dfbeta").values[:, 0], score * 8 / 5)
    np.testing.assert_allclose(
        _book1("breslow", "dfbetas").values[:, 0], score * 8 / 5 / np.sqrt(8 / 5)
    )


def test_book1_efron_residuals_and_score_test_at_zero_worked_by_hand():
    """beta = 0, Efron. At t=6 the two tied events split into sub-steps with risk sums
    4 and 4 - 1/2 * 2 = 3: increment 1/4 + 1/3 = 7/12, of which each tied event takes
    1/4 + (1/2)(1/3) = 5/12; its mean is the average of 1/4 and (1 - 1/2)/3 = 1/6,
    i.e. 5/24. U = 1/2 + 19/24 - 5/24 = 13/12, I = 1/4 + 3/16 + 5/36 = 83/144, so the
    score test is U^2 / I = 169/83 on 1 df."""
    martingale = _book1("efron", "martingale").values
    np.testing.assert_allclose(martingale, [-3 / 4, 5 / 6, -1 / 6, 5 / 12, 5 / 12, -3 / 4])
    schoenfeld = _book1("efron", "schoenfeld").values[:, 0]
    np.testing.assert_allclose(schoenfeld, [1 / 2, 19 / 24, -5 / 24, 0])
    fit = cox.fit(BOOK1_X, BOOK1_TIME, BOOK1_EVENT, ties="efron", max_iter=0)
    tests = residuals_.global_tests(fit)
    assert tests.score.statistic == pytest.approx(169 / 83, rel=1e-14)
    assert tests.score.df == 1
    assert tests.likelihood_ratio.statistic == 0 and tests.wald.statistic == 0


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_residuals_sum_to_zero_at_the_fitted_book1_model(ties):
    """At the maximum the score is 0: score and Schoenfeld residuals sum to 0, and the
    martingale residuals sum to 0 in any Cox model."""
    for kind in ("score", "schoenfeld"):
        assert abs(_book1(ties, kind, max_iter=20).values.sum()) < 1e-9
    assert abs(_book1(ties, "martingale", max_iter=20).values.sum()) < 1e-12


def test_bad_type_and_weighted_deviance_are_refused():
    fit = cox.fit(BOOK1_X, BOOK1_TIME, BOOK1_EVENT)
    with pytest.raises(ValueError, match="weighted deviance residuals are not defined"):
        residuals(fit, "deviance", weighted=True)
    with pytest.raises(ValueError, match="type must be one of"):
        residuals(fit, "pearson")


def test_residuals_keep_a_data_frames_names_and_tabulate():
    frame = pd.DataFrame({"x": BOOK1_X[:, 0]})
    fit = cox.fit(frame, BOOK1_TIME, BOOK1_EVENT, strata=list("aabbab"), max_iter=0)
    table = residuals(fit, "score").to_frame()
    assert list(table.columns) == ["row", "time", "strata", "x"]
    assert table["strata"].tolist() == list("aabbab")
    table = residuals(fit).to_frame()
    assert list(table.columns) == ["row", "time", "strata", "martingale"]


ZPH_CASES = [
    # (dataset, ties, transform, stratified, weights)
    ("pbc", "efron", "km", False, None),
    ("lung", "breslow", "rank", True, "integer"),
    ("veteran", "efron", "identity", True, None),
    ("veteran", "breslow", "km", False, "fractional"),
    ("colon", "efron", "log", True, "fractional"),
]


@pytest.mark.parametrize(("name", "ties", "transform", "stratified", "weights"), ZPH_CASES)
def test_zph_equals_cox_zph(r, name, ties, transform, stratified, weights):
    from toolkit.rbridge.cox_residuals import cox_zph
    from toolkit.stats.cox_zph import zph

    x, time, event, strata = _data(r, name)
    strata = strata if stratified else None
    w = None if weights is None else _weights(len(time), weights == "fractional")
    fit = cox.fit(x, time, event, ties=ties, weights=w, strata=strata)
    ours = zph(fit, transform)
    ref = cox_zph(x, time, event, np.arange(1, x.shape[1] + 1), transform=transform,
                  ties=ties, weights=w, strata=strata)  # fmt: skip
    _assert_zph_equals_r(ours, ref)
    assert list(ours.table.index) == [*fit.names, "GLOBAL"]


def _assert_zph_equals_r(ours, ref):
    np.testing.assert_allclose(ours.table.to_numpy(), ref["table"], rtol=1e-8, atol=0)
    np.testing.assert_allclose(ours.residuals, ref["y"], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.x, ref["x"], rtol=1e-12)
    np.testing.assert_array_equal(ours.time, ref["time"])
    np.testing.assert_allclose(ours.variance, ref["var"], rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_zph_tests_a_factor_as_one_term_on_its_df(r, veteran, ties):
    """celltype (4 levels) as three dummy columns, one term on 3 df, as R's factor."""
    from toolkit.rbridge.cox_residuals import cox_zph
    from toolkit.stats.cox_zph import zph

    cells = pd.get_dummies(veteran["celltype"], drop_first=True, dtype=float)
    x = pd.concat([veteran[["karno", "age"]].astype(float), cells], axis=1)
    time, event = veteran["time"].to_numpy(float), veteran["status"].to_numpy(float)
    strata = veteran["trt"].to_numpy()
    fit = cox.fit(x, time, event, ties=ties, strata=strata)
    terms = {"karno": ["karno"], "age": ["age"], "celltype": list(cells.columns)}
    ours = zph(fit, "km", terms=terms)
    ref = cox_zph(x.to_numpy(), time, event, np.array([1, 2, 3, 3, 3]), ties=ties,
                  strata=strata)  # fmt: skip
    _assert_zph_equals_r(ours, ref)
    assert ours.table["df"].tolist() == [1, 1, 3, 5]
    assert ours.terms == ("karno", "age", "celltype")


def test_zph_at_zero_worked_by_hand():
    """book1 at beta = 0, Breslow, identity: the event times 1, 6, 6, 9 centred on their
    mean 5.5 give g = -4.5, 0.5, 0.5, 3.5; the Schoenfeld residuals 1/2, 3/4, -1/4, 0 and
    variances 1/4, 3/16, 3/16, 0 give U_g = -2, I = 5/8, I_g = -15/16, I_gg = 165/32,
    so chisq = U_g^2 I / (I I_gg - I_g^2) = 16/15 on 1 df."""
    from toolkit.stats.cox_zph import zph

    fit = cox.fit(BOOK1_X, BOOK1_TIME, BOOK1_EVENT, ties="breslow", max_iter=0)
    result = zph(fit, "identity")
    np.testing.assert_allclose(result.table["chisq"], [16 / 15, 16 / 15], rtol=1e-14)
    assert result.table["df"].tolist() == [1, 1]
    np.testing.assert_allclose(result.x, [1, 6, 6, 9])
    # scaled: Schoenfeld residual / (I / 4 events) + beta
    np.testing.assert_allclose(result.residuals[:, 0], np.array([1 / 2, 3 / 4, -1 / 4, 0]) * 32 / 5)


def test_zph_refuses_bad_terms_and_transform():
    from toolkit.stats.cox_zph import zph

    frame = pd.DataFrame({"a": BOOK1_X[:, 0], "b": BOOK1_TIME % 2})
    fit = cox.fit(frame, BOOK1_TIME, BOOK1_EVENT, max_iter=0)
    with pytest.raises(ValueError, match="transform must be"):
        zph(fit, "loglog")
    with pytest.raises(ValueError, match=r"does not have: \['c'\]"):
        zph(fit, terms={"a": ["a", "c"], "b": ["b"]})
    with pytest.raises(ValueError, match=r"in several \['a'\], in none \[\]"):
        zph(fit, terms={"a": ["a"], "ab": ["a", "b"]})
    with pytest.raises(ValueError, match=r"in none \['b'\]"):
        zph(fit, terms={"a": ["a"]})
