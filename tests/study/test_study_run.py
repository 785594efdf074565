"""The whole study on a small synthetic cohort: results/ per docs/contracts.md, R check."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from toolkit import contracts
from toolkit.artifacts import read_json, read_parquet_provenance
from toolkit.study.validate import COMPARISONS

FIGURES = [
    "km_train_vs_validation",
    "km_risk_train",
    "km_risk_validation",
    "nomogram_clinical",
    "nomogram_integrated",
    "calibration_train_clinical",
    "calibration_train_integrated",
    "calibration_validation_clinical",
    "calibration_validation_integrated",
    "decision_train",
    "decision_validation",
    "td_auc",
    "forest",
]
TABLES = [
    "baseline",
    "univariate",
    "multivariable_clinical",
    "multivariable_integrated",
    "signature_features",
    "calibration",
    "decision",
    "decision_summary",
    "td_auc",
    "cindex",
    "exclusions",
]


def test_results_hold_every_contract_artifact(study_run):
    study, _, _ = study_run
    results = study / "results"
    for name in (
        "metrics.json",
        "r_check.json",
        "signature.json",
        "nomogram_clinical.json",
        "nomogram_integrated.json",
    ):
        assert (results / name).is_file(), name
    for name in TABLES:
        assert (results / "tables" / f"{name}.parquet").is_file(), name
    for name in FIGURES:
        for suffix in ("png", "svg"):
            assert (results / "figures" / f"{name}.{suffix}").is_file(), f"{name}.{suffix}"
    assert list((results / "figures").glob("cam_*.png")), "no CAM figure"


def test_r_cross_check_passes_and_covers_every_statistic(study_run):
    study, _, _ = study_run
    check = read_json(study / "results" / "r_check.json")
    assert check["passed"] is True
    names = " | ".join(c["name"] for c in check["checks"])
    for needle in (
        "coxph coefficients, integrated",
        "survfit.coxph survival",
        "rms::nomogram points",
        "concordance C-index, validation",
        "concordance comparison P",
        "riskRegression::Score AUC",
        "Score Brier, validation, integrated",
        "Score IPA, train, clinical",
        "Score AUC SE, validation, signature",
        "coxph calibration slope and SE, validation, integrated",
        "cox.zph chisq per term and GLOBAL, integrated",
        "rms::validate Dxy",
        "rms::validate Slope",
    ):
        assert needle in names, needle
    for c in check["checks"]:
        assert c["diff"] <= c["tolerance"], c


def test_metrics_follow_the_contract_and_say_synthetic_random(study_run):
    study, _, _ = study_run
    metrics = read_json(study / "results" / "metrics.json")
    prov = metrics["provenance"]
    assert prov["synthetic"] is True and prov["weights"] == "random"
    assert prov["sigkit_version"]
    assert metrics["cohort"]["train"]["n"] + metrics["cohort"]["validation"]["n"] <= 48
    assert metrics["icc"]["n_features"] == 2048 and 0 < metrics["icc"]["n_kept"] <= 2048
    for s in ("train", "validation"):
        for m in ("signature", "clinical", "integrated"):
            c = metrics["cindex"][s][m]
            assert c["lower"] < c["c"] < c["upper"]
            assert c["boot_lower"] <= c["boot_upper"]
            assert set(metrics["td_auc"][s][m]) == {"12", "24", "36"}
        # the fixture runs radiomics: every comparison of the six models
        assert set(metrics["comparisons"][s]) == {f"{a}_vs_{b}" for a, b in COMPARISONS}
        assert 0 <= metrics["risk_groups"][s]["p"] <= 1
        assert metrics["median_survival"][s]["os"]["median"] > 0
        for m in ("clinical", "integrated"):
            for t in ("12", "24", "36"):
                entry = metrics["calibration"][s][m][t]
                assert entry["rmse"] >= 0 and entry["ici"] >= 0
                if s == "train":
                    assert "rmse_corrected" in entry
    names = [stage["name"] for stage in metrics["stages"]]
    assert names == [
        "preprocess",
        "radiomics",
        "extract",
        "signature",
        "signature_radiomics",
        "radiomics_truth",
        "models",
        "validate",
        "internal_validation",
        "bundle",
        "r_check",
        "cam",
    ]


def test_accuracy_block_brier_ipa_auc_ci_and_calibration_slope(study_run):
    study, _, _ = study_run
    accuracy = read_json(study / "results" / "metrics.json")["accuracy"]
    for s in ("train", "validation"):
        assert accuracy[s]["beyond_follow_up"] == []
        for m in ("signature", "clinical", "integrated"):
            entry = accuracy[s][m]
            assert set(entry["brier"]) == set(entry["auc"]) == {"12", "24", "36"}
            for b in entry["brier"].values():
                assert 0 <= b["lower"] <= b["brier"] <= b["upper"] <= 1
                assert b["ipa"] == pytest.approx(1 - b["brier"] / b["null_brier"], abs=1e-12)
            for a in entry["auc"].values():
                assert a["lower"] <= a["auc"] <= a["upper"] and a["se"] > 0
            slope = entry["calibration_slope"]
            assert slope["lower"] < slope["slope"] < slope["upper"]
            if s == "train":  # each model is the Cox MLE on the training set: slope 1 there
                assert slope["slope"] == pytest.approx(1.0, abs=1e-6)
            for large in entry["calibration_in_the_large"].values():
                assert large["oe"] == pytest.approx(large["observed"] / large["expected"])
                assert large["lower"] <= large["oe"] <= large["upper"]


def test_decision_summary_is_dcurves_net_benefit_with_the_bootstrap_difference(study_run):
    """decision_summary.parquet recomputed from the study's models by stats.decision
    (dcurves' rules; the paired bootstrap of the difference from validation.seed)."""
    from toolkit.config import load_study, prepare_clinical, read_clinical
    from toolkit.imaging.manifest import study_manifest
    from toolkit.stats.decision import compare, decision_curve
    from toolkit.study.nomograms import FittedModel

    study, _, _ = study_run
    results = study / "results"
    table = pd.read_parquet(results / "tables" / "decision_summary.parquet")
    config = load_study(study / "cohort")
    clinical = read_clinical(config, study / "cohort", study_manifest(config, study / "cohort"))
    frame = prepare_clinical(config, clinical).frame
    scores = pd.read_parquet(results / "tables" / "scores.parquet")
    frame["signature"] = scores.loc[frame.index, "signature"]
    radiomics = pd.read_parquet(results / "tables" / "scores_radiomics.parquet")
    frame["signature_radiomics"] = radiomics.loc[frame.index, "signature_radiomics"]
    models = contracts.StudyModels.read(results / "models.json", model=FittedModel).models
    assert len(models) == 6
    assert sorted(table["threshold"].unique()) == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert set(table["set"]) == {"train", "validation"}
    thresholds, boot = [0.1, 0.2, 0.3, 0.4, 0.5], config.validation
    for name in ("train", "validation"):
        followed = frame.loc[frame["set"] == name, "time"].max()
        within = [h for h in boot.decision_times if h <= followed]
        assert sorted(table.loc[table["set"] == name, "horizon"].unique()) == within
    for (name, horizon), block in table.groupby(["set", "horizon"]):
        rows = frame[frame["set"] == name]
        t, e = rows["time"].to_numpy(float), rows["event"].to_numpy(float)
        risk = {m: 1 - models[m].survival(rows, [horizon])[:, 0] for m in models}
        by_model = {m: b.sort_values("threshold") for m, b in block.groupby("model")}
        for m in models:
            curve = decision_curve(t, e, risk[m], horizon, thresholds)
            got = by_model[m]
            np.testing.assert_array_equal(got["net_benefit"], curve.net_benefit)
            np.testing.assert_array_equal(got["treat_all"], curve.treat_all)
            np.testing.assert_array_equal(got["interventions_avoided"], curve.interventions_avoided)
        for a, b in COMPARISONS:
            diff = compare(
                t, e, risk[a], risk[b], horizon, thresholds, B=boot.n_bootstrap, seed=boot.seed
            )
            got = by_model[f"{a} - {b}"]
            np.testing.assert_array_equal(got["net_benefit"], diff.difference)
            np.testing.assert_array_equal(got[["lower", "upper"]].T, [diff.lower, diff.upper])
            counts = got["n_resamples"].to_numpy()
            assert ((0 <= counts) & (counts <= boot.n_bootstrap)).all()
            assert got.loc[counts == 0, ["lower", "upper"]].isna().all().all()
    gains = table[table["model"] == "integrated - clinical"]
    assert (gains["n_resamples"] > 0).any()


def test_fixed_model_validation_is_rms_validate_shaped(study_run):
    study, _, _ = study_run
    block = read_json(study / "results" / "metrics.json")["fixed_model_validation"]
    assert block["B"] == 20
    for m in ("clinical", "integrated"):
        indexes = block[m]["indexes"]
        assert list(indexes) == ["Dxy", "R2", "Slope", "D", "U", "Q", "g"]
        assert indexes["Slope"]["index.orig"] == pytest.approx(1.0)
        for v in indexes.values():
            assert v["optimism"] == pytest.approx(v["training"] - v["test"], abs=1e-12)
            assert v["index.corrected"] == pytest.approx(v["index.orig"] - v["optimism"])
            assert 20 - len(block[m]["failed"]) >= v["n"] > 0


def test_every_artifact_records_provenance(study_run):
    study, _, _ = study_run
    results = study / "results"
    for name in ("signature.json", "nomogram_integrated.json", "r_check.json"):
        prov = read_json(results / name)["provenance"]
        assert prov["weights"] == "random" and prov["synthetic"] is True, name
        assert prov["settings"]["stage_key"], name
    prov = read_parquet_provenance(results / "tables" / "cindex.parquet")
    assert prov["weights"] == "random" and prov["synthetic"] is True
    for name in ("td_auc", "nomogram_integrated", "km_risk_validation"):
        svg = (results / "figures" / f"{name}.svg").read_text(encoding="utf-8")
        assert "SYNTHETIC COHORT" in svg and "RANDOM NETWORK WEIGHTS" in svg, name


RECORDS = {
    "signature.json": contracts.SignatureSpec,
    "models.json": contracts.StudyModels,
    "nomogram_clinical.json": contracts.NomogramSpec,
    "nomogram_integrated.json": contracts.NomogramSpec,
    "metrics.json": contracts.Metrics,
    "r_check.json": contracts.RCheck,
}


@pytest.mark.parametrize("name", list(RECORDS))
def test_results_json_read_through_its_record_is_written_back_byte_for_byte(
    study_run, name, tmp_path
):
    study, _, _ = study_run
    written = study / "results" / name
    again = RECORDS[name].read(written).write(tmp_path / name)
    assert again.read_bytes() == written.read_bytes()


def test_signature_scores_reproduce_signature_json(study_run):
    from toolkit.study.signature import Signature

    study, _, _ = study_run
    data = read_json(study / "results" / "signature.json")
    signature = Signature.from_json(data)
    features = pd.read_parquet(study / "features" / "features.parquet")
    primary = features[features["reader"] == "reader1_a"].set_index("patient")
    scores = pd.read_parquet(study / "results" / "tables" / "scores.parquet")
    ours = signature.score(primary.loc[scores.index])
    np.testing.assert_allclose(ours, scores["signature"].to_numpy(), rtol=1e-12)
    assert len(data["features"]) == len(data["coefficients"]) >= 1
    assert data["formula"].startswith("signature = ")


def test_nomogram_json_reproduces_the_models_survival(study_run):
    from toolkit.config import load_study, prepare_clinical, read_clinical
    from toolkit.imaging.manifest import study_manifest
    from toolkit.stats.nomogram import Nomogram
    from toolkit.study.nomograms import FittedModel

    study, _, _ = study_run
    results = study / "results"
    config = load_study(study / "cohort")
    table = read_clinical(config, study / "cohort", study_manifest(config, study / "cohort"))
    frame = prepare_clinical(config, table).frame
    scores = pd.read_parquet(results / "tables" / "scores.parquet")
    frame["signature"] = scores.loc[frame.index, "signature"]
    models = contracts.StudyModels.read(results / "models.json", model=FittedModel)
    assert all(isinstance(m, FittedModel) for m in models.models.values())
    for name in ("clinical", "integrated"):
        model = models.models[name]
        nomo = Nomogram.from_json(read_json(results / f"nomogram_{name}.json"))
        widest = max(
            max(p["points"] for p in (s.get("levels") or s["ticks"])) for s in nomo.predictors
        )
        assert widest == pytest.approx(100.0)
        columns = {v: frame[v].astype(object).tolist() for v in model.variables}
        points = nomo.total_points(columns)
        for t in (12, 24, 36):
            np.testing.assert_allclose(
                nomo.survival(points, t), model.survival(frame, [t])[:, 0], atol=1e-12
            )


def test_second_run_skips_every_stage(study_run):
    from toolkit.study.run import run_study

    study, first, _ = study_run
    before = (study / "results" / "metrics.json").read_text(encoding="utf-8")
    lines: list[str] = []
    outcome = run_study(study, weights="random", workers=0, report=False, echo=lines.append)
    assert outcome.metrics.stages and all(stage.skipped for stage in outcome.metrics.stages)
    after = json.loads((study / "results" / "metrics.json").read_text(encoding="utf-8"))
    assert after["cindex"] == json.loads(before)["cindex"]
    assert outcome.metrics.cindex == first.metrics.cindex
    assert outcome.r_check == first.r_check


def test_failed_stage_leaves_earlier_results(study_copy, monkeypatch):
    from toolkit.study import nomograms
    from toolkit.study.run import run_study

    toml = study_copy / "cohort" / "study.toml"
    text = toml.read_text(encoding="utf-8")
    assert "[validation]\n" in text
    toml.write_text(
        text.replace("[validation]\n", "[validation]\nunivariate_alpha = 0.1\n"), encoding="utf-8"
    )
    results = study_copy / "results"
    kept = {name: (results / name).read_bytes() for name in ("signature.json", "metrics.json")}
    stamp = study_copy / ".sigkit" / "stages" / "models.json"
    stamp_before = stamp.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("stepwise exploded")

    monkeypatch.setattr(nomograms, "select", broken)
    lines: list[str] = []
    with pytest.raises(RuntimeError, match="stepwise exploded"):
        run_study(study_copy, weights="random", workers=0, report=False, echo=lines.append)
    assert any("signature" in line and "skipped" in line for line in lines)
    for name, content in kept.items():
        assert (results / name).read_bytes() == content, name
    assert stamp.read_bytes() == stamp_before  # the failed stage is retried next time


def test_r_mismatch_fails_the_run_loudly_after_writing_everything(study_copy, monkeypatch):
    from toolkit.cli import app
    from toolkit.study import rcheck

    real = rcheck.r_check

    def tampered(*args, **kwargs):
        result = real(*args, **kwargs)
        first = replace(result.checks[0], passed=False, diff=1.0)
        return replace(result, passed=False, checks=(first, *result.checks[1:]))

    monkeypatch.setattr(rcheck, "r_check", tampered)
    (study_copy / ".sigkit" / "stages" / "r_check.json").unlink()
    out = CliRunner().invoke(
        app,
        ["study", "run", str(study_copy), "--weights", "random", "--workers", "0", "--no-report"],
    )
    assert out.exit_code == 2
    assert "R cross-check FAILED" in out.output
    assert "C-index" in out.output
    check = read_json(study_copy / "results" / "r_check.json")
    assert check["passed"] is False
    assert read_json(study_copy / "results" / "metrics.json")["r_check_passed"] is False


def test_cli_prints_the_summary(study_run):
    from toolkit.cli import app

    study, _, _ = study_run
    out = CliRunner().invoke(
        app, ["study", "run", str(study), "--weights", "random", "--workers", "0", "--no-report"]
    )
    assert out.exit_code == 0, out.output
    for needle in (
        "SYNTHETIC",
        "RANDOM",
        "C-index",
        "integrated vs clinical",
        "Calibration RMSE",
        "R cross-check: PASSED",
    ):
        assert needle in out.output, needle
