"""Transportability of the session study's locked models, its validation set standing in for
the new cohort: the numbers are stats.transport's on the bundle's models, the original
model's calibration is the external validation's (the validate stage's functions), and the
membership model equals R's glm and pROC."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.rbridge import transport as rtransport
from toolkit.study.bundle import MODELS, ModelBundle
from toolkit.study.external import external_validation
from toolkit.study.nomograms import design_matrix
from toolkit.study.transport import transportability

TOL = 1e-12
TOL_R = 1e-8


@pytest.fixture(scope="module")
def cohorts(study_run, study_frame):
    study, _, _ = study_run
    config, frame, _ = study_frame
    train = frame["set"].isin(config.study.train_sets)
    bundle = ModelBundle.load(study / "model")
    return bundle, frame[train], frame[~train]


@pytest.fixture(scope="module")
def transported(cohorts):
    bundle, training, new = cohorts
    return transportability(bundle, new, training)


def test_original_calibration_is_the_external_validations(cohorts, transported):
    bundle, _, new = cohorts
    result, table = transported
    validation, _ = external_validation(bundle, new)
    accuracy = validation["accuracy"]["external"]
    assert result["horizons"] == [float(h) for h in bundle.horizons]
    for name in MODELS:
        original = result["models"][name]["updating"]["original"]
        slope = accuracy[name]["calibration_slope"]
        assert original["calibration_slope"]["slope"] == pytest.approx(slope["slope"], abs=TOL)
        for h, cells in original["horizons"].items():
            large = accuracy[name]["calibration_in_the_large"][h]
            assert cells["oe"] == pytest.approx(large["oe"], abs=TOL)
            assert cells["oe_lower"] == pytest.approx(large["lower"], abs=TOL)
            if name in validation["calibration"]["external"]:
                grouped = validation["calibration"]["external"][name][h]
                assert cells["rmse"] == pytest.approx(grouped["rmse"], abs=TOL)
                assert cells["ici"] == pytest.approx(grouped["ici"], abs=TOL)
    assert len(table) == len(MODELS) * 4 * len(result["horizons"])
    row = table[(table["model"] == "integrated") & (table["method"] == "baseline")].iloc[0]
    cells = result["models"]["integrated"]["updating"]["baseline"]["horizons"][f"{row.horizon:g}"]
    assert row.oe == cells["oe"] and row.rmse == cells["rmse"]


def test_updated_slopes_are_one_and_the_slope_update_is_the_calibration_slope(transported):
    result, _ = transported
    for name in MODELS:
        updating = result["models"][name]["updating"]
        fitted = updating["slope"]["updated_slope"]["slope"]
        assert fitted == pytest.approx(updating["original"]["calibration_slope"]["slope"], abs=TOL)
        assert updating["slope"]["calibration_slope"]["slope"] == pytest.approx(1.0, abs=1e-8)
        base = updating["baseline"]["calibration_slope"]["slope"]  # an offset does not move it
        assert base == pytest.approx(updating["original"]["calibration_slope"]["slope"], abs=TOL)


def test_case_mix_equals_glm_and_proc(cohorts, transported):
    bundle, training, new = cohorts
    result, _ = transported
    for name in MODELS:
        model = bundle.models[name].model
        case_mix = result["models"][name]["case_mix"]
        lp_dev, lp_new = model.linear_predictor(training), model.linear_predictor(new)
        # the training mean of the linear predictor is the model's own centre
        assert case_mix["linear_predictor"]["training"]["mean"] == pytest.approx(
            model.lp_centre, abs=1e-10
        )
        assert case_mix["linear_predictor"]["new"]["sd"] == pytest.approx(
            np.std(lp_new, ddof=1), abs=TOL
        )
        x_dev, _ = design_matrix(training, list(model.variables), dict(model.levels))
        x_new, _ = design_matrix(new, list(model.variables), dict(model.levels))
        member = np.r_[np.zeros(len(training)), np.ones(len(new))]
        for key, z in (
            ("membership_lp", np.r_[lp_dev, lp_new]),
            ("membership_variables", np.vstack([x_dev, x_new])),
        ):
            theirs = rtransport.membership(z, member)
            ours = case_mix[key]
            assert ours["auc"] == pytest.approx(float(theirs["auc"][0]), abs=TOL_R), (name, key)
            assert ours["lower"] == pytest.approx(float(theirs["lower"][0]), abs=TOL_R)
            assert ours["upper"] == pytest.approx(float(theirs["upper"][0]), abs=TOL_R)
            np.testing.assert_allclose(
                list(ours["coefficients"].values()), theirs["coef"], atol=TOL_R, rtol=0
            )


def test_without_training_rows_the_membership_models_are_said_missing(cohorts):
    bundle, _, new = cohorts
    result, _ = transportability(bundle, new)
    case_mix = result["models"]["integrated"]["case_mix"]
    assert "membership_lp" not in case_mix and "no training case mix" in case_mix["note"]
    model = bundle.models["integrated"].model
    assert case_mix["linear_predictor"]["training"] == {"mean": model.lp_centre}


def test_the_apply_pages_validation_tables_show_validation_json(cohorts, transported, tmp_path):
    """The page's external-validation and transportability tables on a cohort large enough
    for every statistic (the study's validation set): the JSON's numbers, as printed."""
    import pandas as pd

    from toolkit.artifacts import write_parquet
    from toolkit.report import apply as page
    from toolkit.report.formatting import number, pvalue, with_ci

    bundle, _, new = cohorts
    validation, tables = external_validation(bundle, new)
    write_parquet(tmp_path / "tables" / "decision.parquet", tables["decision"], {})
    results = page.ApplyResults(tmp_path, {}, pd.DataFrame(), validation, transported[0])
    shown = page.cindex_table(results) + page.calibration_table(results)
    shown += page.risk_groups_table(results) + page.decision_table(results)
    for e in validation["cindex"]["external"].values():
        assert with_ci(e["c"], e["lower"], e["upper"]) in shown
    for c in validation["comparisons"]["external"].values():
        assert f"<td>{number(c['diff'])}</td>" in shown.replace(' class="num"', "")
        assert pvalue(c["p"]) in shown
    for name in MODELS:
        accuracy = validation["accuracy"]["external"][name]
        for h, large in accuracy["calibration_in_the_large"].items():
            assert with_ci(large["oe"], large["lower"], large["upper"]) in shown
            assert number(accuracy["brier"][h]["ipa"]) in shown
            assert number(validation["td_auc"]["external"][name][h]) in shown
    groups = validation["risk_groups"]
    assert number(groups["chisq"]) in shown and number(groups["cutoff"]) in shown
    decision = tables["decision"]
    at = decision[decision["threshold"].round(6) == 0.2].iloc[0]
    assert number(at["net_benefit"]) in shown
    mix = page.case_mix_table(results)
    for block in transported[0]["models"].values():
        member = block["case_mix"]["membership_variables"]
        assert with_ci(member["auc"], member["lower"], member["upper"]) in mix
