"""Univariate Cox screen against summary(coxph) and stepwise AIC against MASS::stepAIC."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.stats import stepwise
from validation import datasets

PBC, LUNG = datasets.STEPWISE_PBC, datasets.STEPWISE_LUNG


@pytest.fixture(scope="module")
def pbc_cc(pbc):
    return datasets.stepwise_pbc(pbc)


@pytest.fixture(scope="module")
def lung_cc(lung):
    return datasets.stepwise_lung(lung)


def _assert_same_as_stepaic(ours, ref):
    assert list(ours.trace["step"]) == ref["step"]
    np.testing.assert_allclose(ours.trace["aic"], ref["aic"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(ours.trace["df"].iloc[1:], np.asarray(ref["df"])[1:], atol=0)
    assert list(ours.variables) == ref["variables"]
    if ours.fit is not None:
        assert list(ours.fit.names) == ref["coef_names"]
        np.testing.assert_allclose(ours.fit.coef, ref["coef"], rtol=1e-6)
        assert ours.fit.loglik == pytest.approx(ref["loglik"], abs=1e-9)


def test_univariate_screen_equals_summary_coxph_on_pbc(pbc_cc):
    from toolkit.rbridge import stepwise as r_stepwise

    ours = stepwise.univariate_screen(pbc_cc, "time", "event", PBC)
    ref = r_stepwise.univariate(pbc_cc, "time", "event", PBC)
    assert list(ours["contrast"]) == list(ref["contrast"])
    assert list(ours["variable"]) == list(ref["variable"])
    # coxph stops its Newton iterations at a relative change of 1e-9; we converge fully.
    for column in ["coef", "se", "hr", "lower", "upper"]:
        np.testing.assert_allclose(ours[column], ref[column], rtol=1e-6, err_msg=column)
    np.testing.assert_allclose(ours["p"], ref["p"], rtol=1e-5)
    np.testing.assert_allclose(ours["p_lr"], ref["p_lr"], rtol=1e-8)
    # the score test is at beta = 0: no iteration, so equal to rounding
    np.testing.assert_allclose(ours["p_score"], ref["p_score"], rtol=1e-10)
    np.testing.assert_array_equal(ours["selected"], ref["p_lr"] < 0.05)
    assert ours.loc[ours["contrast"] == "edema1", "variable"].item() == "edema"


@pytest.mark.parametrize("direction", ["both", "backward"])
def test_stepwise_from_full_model_equals_stepaic_on_pbc(direction, pbc_cc):
    from toolkit.rbridge import stepwise as r_stepwise

    ours = stepwise.aic(pbc_cc, "time", "event", PBC, direction=direction)
    ref = r_stepwise.step_aic(pbc_cc, "time", "event", PBC, PBC, direction=direction)
    _assert_same_as_stepaic(ours, ref)
    assert len(ours.trace) > 3


def test_forward_from_null_model_with_scope_equals_stepaic_on_pbc(pbc_cc):
    from toolkit.rbridge import stepwise as r_stepwise

    upper = ["bili", "edema", "stage", "albumin", "age", "copper", "sex", "protime", "chol"]
    ours = stepwise.aic(pbc_cc, "time", "event", PBC, direction="forward", scope=upper)
    ref = r_stepwise.step_aic(pbc_cc, "time", "event", [], upper, direction="forward")
    _assert_same_as_stepaic(ours, ref)
    assert ours.trace["step"].iloc[1] == "+ bili"
    assert ours.trace["aic"].iloc[0] == pytest.approx(-2 * ours.fit.loglik_null, abs=1e-9)


def test_both_from_partial_start_with_lower_scope_equals_stepaic_on_pbc(pbc_cc):
    from toolkit.rbridge import stepwise as r_stepwise

    start = ["sex", "chol", "trig", "platelet", "bili"]
    scope = {"upper": PBC, "lower": ["sex"]}
    ours = stepwise.aic(pbc_cc, "time", "event", PBC, start=start, scope=scope)
    ref = r_stepwise.step_aic(pbc_cc, "time", "event", start, PBC, ["sex"], "both")
    _assert_same_as_stepaic(ours, ref)
    changes = set(ours.trace["step"].str[0])
    assert {"+", "-"} <= changes  # both additions and removals happened
    assert "sex" in ours.variables


@pytest.mark.parametrize(
    ("direction", "penalty"), [("both", 2.0), ("backward", None), ("forward", 2.0)]
)
def test_stepwise_equals_stepaic_on_lung(direction, penalty, lung_cc):
    from toolkit.rbridge import stepwise as r_stepwise

    k = np.log(len(lung_cc)) if penalty is None else penalty
    start = [] if direction == "forward" else LUNG
    ours = stepwise.aic(lung_cc, "time", "event", LUNG, direction=direction, k=k)
    ref = r_stepwise.step_aic(lung_cc, "time", "event", start, LUNG, direction=direction, k=k)
    _assert_same_as_stepaic(ours, ref)


def test_each_step_table_lists_none_then_drops_then_adds(lung_cc):
    ours = stepwise.aic(lung_cc, "time", "event", LUNG, start=["age", "sex"])
    first = ours.steps[0]
    assert list(first["change"]) == [
        "<none>", "- age", "- sex", "+ ph.ecog", "+ ph.karno", "+ pat.karno", "+ meal.cal",
        "+ wt.loss",
    ]  # fmt: skip
    assert first.loc[first["change"] == "+ ph.ecog", "df"].item() == 3


def test_missing_values_are_named_with_rows(pbc):
    d = pbc[["time", "status", "age", "chol"]].copy()
    d["event"] = (d["status"] == 2).astype(float)
    with pytest.raises(ValueError, match=r"chol has 134 missing values \(rows 13, 39, 40, "):
        stepwise.aic(d, "time", "event", ["age", "chol"])
    with pytest.raises(ValueError, match="chol has"):
        stepwise.univariate_screen(d, "time", "event", ["age", "chol"])


def test_constant_and_duplicated_variables_dropped_with_warning(lung_cc):
    d = lung_cc.copy()
    d["flat"] = 1.0
    d["age_again"] = d["age"]
    with pytest.warns(UserWarning) as record:
        res = stepwise.aic(d, "time", "event", ["age", "flat", "age_again", "sex"])
    messages = " | ".join(str(w.message) for w in record)
    assert "dropped constant variable flat" in messages
    assert "dropped duplicated variables: age_again (= age)" in messages
    assert "flat" not in res.variables and "age_again" not in res.variables


def test_no_candidates_left_and_unknown_names_are_errors(lung_cc):
    d = lung_cc.copy()
    d["flat"] = 2.0
    with (
        pytest.warns(UserWarning, match="flat"),
        pytest.raises(ValueError, match="no candidate variables left"),
    ):
        stepwise.aic(d, "time", "event", ["flat"])
    with pytest.raises(ValueError, match="columns not in the data: nope"):
        stepwise.aic(d, "time", "event", ["age", "nope"])
    with pytest.raises(ValueError, match="start names variables not among the candidates: sex"):
        stepwise.aic(d, "time", "event", ["age"], start=["sex"])
