"""`sigkit apply`: the session study's locked model scores a second synthetic cohort (another
seed), equal to scoring it in-process with the study's own files and to R's survfit; each
refusal and warning names the patient and the column."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from apply_helpers import cohort_frame, r_survfit

from toolkit.study.apply import ApplyError, apply_model, check_weights, unseen_levels
from toolkit.study.bundle import ModelBundle

N_NEW = 12  # the second cohort: small, the session study's grid
TOL_R = 1e-6  # the tolerance against survfit's lower/upper


@pytest.fixture(scope="module")
def new_cohort(tmp_path_factory):
    from toolkit.synth import Grid, generate_cohort

    out = tmp_path_factory.mktemp("new_cohort")
    grid = Grid(shape=(20, 128, 128), spacing=(1.6, 1.6, 5.0))
    generate_cohort(out, n_patients=N_NEW, seed=7, grid=grid, workers=1)
    (out / "study.toml").unlink()  # a new cohort needs only its manifest and clinical table
    return out


@pytest.fixture(scope="module")
def applied(study_run, new_cohort, tmp_path_factory):
    study, _, _ = study_run
    out = tmp_path_factory.mktemp("applied")
    lines: list[str] = []
    outcome = apply_model(
        study / "model", new_cohort, out, weights="random", workers=0, echo=lines.append
    )
    return outcome, lines


def _in_process(study, cohort, tmp_path):
    """The new cohort's model frame made with the study's own files (study.toml,
    signature.json) and the study stages' functions: crops, features, signature score."""
    from toolkit.config import load_study, prepare_cohort, read_clinical
    from toolkit.contracts import SignatureSpec
    from toolkit.deep.extract import extract_crops_dir
    from toolkit.imaging.manifest import read_manifest
    from toolkit.imaging.preprocess import PreprocessSettings, preprocess_cohort
    from toolkit.study.signature import Signature

    config = load_study(study / "cohort")
    primary = config.imaging.primary_reader
    settings = PreprocessSettings.from_config(config, readers=(primary,))
    preprocess_cohort(
        cohort / "manifest.csv", tmp_path / "crops", workers=0, progress=False, settings=settings
    )
    features = extract_crops_dir(tmp_path / "crops", tmp_path / "f.parquet", params="random")
    features = features[features["reader"] == primary].set_index("patient")
    manifest = read_manifest(cohort / "manifest.csv", (primary,))
    frame = prepare_cohort(config, read_clinical(config, cohort, manifest)).frame.copy()
    signature = Signature.from_spec(SignatureSpec.read(study / "results" / "signature.json"))
    frame["signature"] = signature.score(features.loc[frame.index])
    return frame


def test_apply_equals_scoring_the_cohort_in_process(
    study_run, study_frame, new_cohort, applied, tmp_path
):
    """predictions.csv = the study's FittedModel, Nomogram and cutoff on the same patients,
    and the CI of the study's Cox fit refitted (CoxFit.predict_survival_ci)."""
    from toolkit.contracts import Metrics, NomogramSpec
    from toolkit.stats.nomogram import Nomogram
    from toolkit.study.nomograms import refit

    study, _, _ = study_run
    config, training, models = study_frame
    train = training[training["set"].isin(config.study.train_sets)]
    outcome, lines = applied
    written = pd.read_csv(
        outcome.out_dir / "predictions.csv",
        index_col="patient",
        dtype={"patient": str},
        float_precision="round_trip",  # the file holds every digit; pandas' default parser not
    )
    text = ["labels", "warnings"]  # an empty column reads back as NaN
    pd.testing.assert_frame_equal(
        written.drop(columns=text), outcome.predictions.drop(columns=text)
    )
    assert (written[text].fillna("") == outcome.predictions[text]).all().all()
    assert len(written) == N_NEW and outcome.exclusions.empty
    frame = _in_process(study, new_cohort, tmp_path).loc[written.index]
    np.testing.assert_array_equal(written["signature"], frame["signature"])
    metrics = Metrics.read(study / "results" / "metrics.json")
    times = list(config.validation.times)
    for name in ("clinical", "integrated"):
        model = models[name]
        nomogram = Nomogram.from_spec(
            NomogramSpec.read(study / "results" / f"nomogram_{name}.json")
        )
        np.testing.assert_array_equal(written[f"{name}_lp"], model.linear_predictor(frame))
        data = {v: frame[v].astype(str) if v in model.levels else frame[v] for v in model.variables}
        np.testing.assert_array_equal(written[f"{name}_points"], nomogram.total_points(data))
        survival = model.survival(frame, times)
        ci = refit(model, train).predict_survival_ci(model.design(frame), times)
        for j, t in enumerate(times):
            column = f"{name}_survival_{t:g}"
            np.testing.assert_array_equal(written[column], survival[:, j])
            np.testing.assert_allclose(written[f"{column}_lower"], ci.lower[:, j], atol=1e-12)
            np.testing.assert_allclose(written[f"{column}_upper"], ci.upper[:, j], atol=1e-12)
    high = models["integrated"].linear_predictor(frame) > metrics.risk_groups["cutoff"]
    assert list(written["risk_group"]) == list(np.where(high, "high", "low"))
    assert (written["labels"] == "SYNTHETIC; RANDOM weights").all()
    record = json.loads((outcome.out_dir / "apply.json").read_text())
    assert record["labels"] == ["SYNTHETIC", "RANDOM weights"]
    assert record["weights"]["matches_model"] and record["n_scored"] == N_NEW
    assert record["model"]["sha256"] == ModelBundle.load(study / "model").sha256
    assert any("RANDOM weights: every output is labelled so" in line for line in lines)


def test_predicted_survival_ci_equals_r_survfit_on_the_new_cohort(
    r, study_run, study_frame, new_cohort, applied
):
    """coxph in R on the training patients (factors with the training levels, the signature
    as a number), survfit(fit, newdata = the new cohort): lower/upper = predictions.csv."""
    study, _, _ = study_run
    outcome, _ = applied
    bundle = ModelBundle.load(study / "model")
    config, training, models = study_frame
    train = training[training["set"].isin(config.study.train_sets)]
    new = cohort_frame(bundle, new_cohort, outcome.predictions)
    times = np.asarray(bundle.horizons, dtype=float)
    for name in ("clinical", "integrated"):
        model = models[name]
        ref = r_survfit(
            r,
            model,
            train,
            new,
            times,
            computation=f"survival::survfit.coxph of the {name} model on the new cohort",
        )
        np.testing.assert_allclose(ref["coef"], model.coef, rtol=0, atol=1e-9)
        for key, suffix in (("surv", ""), ("lower", "_lower"), ("upper", "_upper")):
            expected = np.asarray(ref[key]).reshape(len(times), len(new)).T
            columns = [f"{name}_survival_{t:g}{suffix}" for t in bundle.horizons]
            ours = outcome.predictions[columns].to_numpy(float)
            np.testing.assert_allclose(ours, expected, rtol=0, atol=TOL_R)


def _cohort_copy(new_cohort, tmp_path, patients=None, edit=None):
    """A copy of the new cohort's tables (images by absolute path), optionally cut to
    ``patients`` and with ``edit(clinical)`` applied."""
    target = tmp_path / "cohort"
    target.mkdir()
    manifest = pd.read_csv(new_cohort / "manifest.csv", dtype=str)
    clinical = pd.read_csv(new_cohort / "clinical.csv", dtype={"patient": str})
    for column in [
        c for c in manifest.columns if c in ("arterial", "portal") or c.startswith("mask_")
    ]:
        manifest[column] = [str(new_cohort / p) for p in manifest[column]]
    if patients is not None:
        manifest = manifest[manifest["patient"].isin(patients)]
        clinical = clinical[clinical["patient"].isin(patients)]
    if edit is not None:
        clinical = edit(clinical)
    manifest.to_csv(target / "manifest.csv", index=False)
    clinical.to_csv(target / "clinical.csv", index=False)
    return target


def test_a_model_variable_absent_from_the_clinical_table_is_refused(
    study_run, new_cohort, tmp_path
):
    study, _, _ = study_run
    cohort = _cohort_copy(new_cohort, tmp_path, edit=lambda t: t.drop(columns=["alt"]))
    with pytest.raises(
        ApplyError,
        match=r"clinical.csv: no column 'alt' \(used by the clinical and integrated nomograms\)",
    ):
        apply_model(study / "model", cohort, tmp_path / "out", weights="random", workers=0)
    assert not (tmp_path / "out").exists()  # refused before any imaging work


def test_a_level_outside_study_toml_or_unseen_in_training_names_patients(
    study_run, new_cohort, tmp_path
):
    study, _, _ = study_run

    def edit(table):
        table.loc[table["patient"].isin(["P002", "P005"]), "bclc"] = "D"
        return table

    cohort = _cohort_copy(new_cohort, tmp_path, edit=edit)
    with pytest.raises(ApplyError, match=r"bclc holds 'D'.*2 patients \(P002, P005\)"):
        apply_model(study / "model", cohort, tmp_path / "out", weights="random", workers=0)
    # a study.toml level that the training set lacked: the model has no coefficient for it
    bundle = ModelBundle.load(study / "model")
    clinical = bundle.models["clinical"]
    narrowed = replace(clinical.model, levels={**clinical.model.levels, "bclc": ("A", "B")})
    bundle = replace(
        bundle, models={**bundle.models, "clinical": replace(clinical, model=narrowed)}
    )
    frame = pd.DataFrame(
        {"bclc": pd.Categorical(["A", "C", "B", "C"], categories=["A", "B", "C"])},
        index=["P1", "P2", "P3", "P4"],
    )
    assert bundle.variables == ["bclc", "alt"]
    problems = unseen_levels(bundle, frame.assign(alt=pd.Categorical(["<40"] * 4)), "clinical.csv")
    assert problems == [
        "clinical.csv: bclc = 'C' was not seen in the training set (the model knows "
        "['A', 'B']), in 2 patients (P2, P4)"
    ]


def test_other_weights_are_refused_unless_allowed_and_then_labelled(
    study_run, new_cohort, tmp_path, monkeypatch
):
    from toolkit.deep import weights

    study, _, _ = study_run
    bundle = ModelBundle.load(study / "model")
    other = weights.random_weights(seed=1)
    with pytest.raises(
        ApplyError, match=r"not the model's \(random, SHA-256 .*--allow-other-weights"
    ):
        check_weights(bundle, other, allow_other=False)
    assert check_weights(bundle, weights.random_weights(seed=0), allow_other=False) == [
        "RANDOM weights"
    ]
    monkeypatch.setattr(weights, "load", lambda source=None: other)
    cohort = _cohort_copy(new_cohort, tmp_path, patients=["P001", "P002"])
    with pytest.raises(ApplyError, match="--allow-other-weights"):
        apply_model(study / "model", cohort, tmp_path / "refused", workers=0)
    outcome = apply_model(
        study / "model",
        cohort,
        tmp_path / "out",
        allow_other_weights=True,
        workers=0,
        report=False,  # the page is the applied fixture's (test_the_apply_page_shows_the_json)
        echo=lambda _: None,
    )
    label = f"OTHER weights than the model's (SHA-256 {other.sha256[:16]}...)"
    written = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert all(label in text for text in written["labels"])
    record = json.loads((tmp_path / "out" / "apply.json").read_text())
    assert label in record["labels"] and not record["weights"]["matches_model"]
    assert outcome.labels == ("SYNTHETIC", "RANDOM weights", label)


def test_a_value_outside_the_training_range_is_a_warning_per_patient(
    study_run, new_cohort, applied
):
    from toolkit.study.apply import score

    study, _, _ = study_run
    outcome, _ = applied
    bundle = ModelBundle.load(study / "model")
    frame = cohort_frame(ModelBundle.load(study / "model"), new_cohort, outcome.predictions)
    low, high = bundle.models["integrated"].ranges["signature"]
    frame.loc[frame.index[1], "signature"] = high + 1.0
    predictions, warnings = score(bundle, frame, ["SYNTHETIC"])
    patient = frame.index[1]
    row = warnings[warnings["patient"] == patient]
    assert list(row["variable"]) == ["signature"] and row["value"].iloc[0] == high + 1.0
    assert (row["min"].iloc[0], row["max"].iloc[0]) == (low, high)
    assert predictions.loc[patient, "warnings"].startswith(
        f"signature = {high + 1.0:.6g} outside the training range"
    )
    written = pd.read_csv(outcome.out_dir / "warnings.csv", dtype={"patient": str})
    inside = outcome.predictions["signature"].between(low, high)
    assert set(written["patient"]) == set(outcome.predictions.index[~inside])


def test_a_patient_missing_a_model_variable_is_excluded_by_name(study_run, new_cohort, tmp_path):
    from toolkit.config import prepare_cohort, read_clinical
    from toolkit.imaging.manifest import read_manifest
    from toolkit.study.apply import cohort_config

    study, _, _ = study_run

    def edit(table):
        table.loc[table["patient"] == "P003", "alt"] = np.nan
        return table

    cohort = _cohort_copy(new_cohort, tmp_path, edit=edit)
    config = cohort_config(ModelBundle.load(study / "model"), "manifest.csv", "clinical.csv")
    manifest = read_manifest(cohort / "manifest.csv", ("reader1_a",))
    data = prepare_cohort(config, read_clinical(config, cohort, manifest))
    assert data.exclusions.to_dict("records") == [
        {"patient": "P003", "stage": "clinical", "reason": "missing alt"}
    ]
    assert "P003" not in data.frame.index and len(data.frame) == N_NEW - 1


def test_cli_apply_refuses_with_the_message(study_run, new_cohort, tmp_path):
    from typer.testing import CliRunner

    from toolkit.cli import app

    study, _, _ = study_run
    cohort = _cohort_copy(new_cohort, tmp_path, edit=lambda t: t.drop(columns=["bclc"]))
    result = CliRunner().invoke(
        app, ["apply", str(study / "model"), str(cohort), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "no column 'bclc' (used by the clinical nomogram)" in result.output


def _with_outcome(study, cohort, predictions):
    """The new cohort's model frame with its outcome (``time``, ``event``)."""
    from toolkit.config import prepare_cohort, read_clinical
    from toolkit.imaging.manifest import read_manifest
    from toolkit.study.apply import cohort_config

    config = cohort_config(ModelBundle.load(study / "model"), "manifest.csv", "clinical.csv")
    manifest = read_manifest(cohort / "manifest.csv", (config.imaging.primary_reader,))
    table = read_clinical(config, cohort, manifest)
    frame = prepare_cohort(config, table, outcomes=True).frame.loc[predictions.index].copy()
    frame["signature"] = predictions["signature"]
    return frame


def test_external_validation_equals_r_on_the_new_cohort(r, study_run, new_cohort, applied):
    """The validate stage's C-index (IJ SE) and the log-rank of the risk groups at the
    training cutoff, on the new cohort, equal survival::concordance and survdiff; a
    horizon beyond the cohort's follow-up is left out and listed."""
    from toolkit.rbridge.concordance import concordance
    from toolkit.rbridge.survival import survdiff
    from toolkit.study.external import external_validation

    study, _, _ = study_run
    outcome, _ = applied
    bundle = ModelBundle.load(study / "model")
    raw = {**bundle.study_toml, "validation": {**bundle.study_toml["validation"], "n_bootstrap": 0}}
    bundle = replace(bundle, study_toml=raw)  # 12 patients are too few for a bootstrap CI
    frame = _with_outcome(study, new_cohort, outcome.predictions)
    result, tables = external_validation(bundle, frame)
    assert result["n_patients"] == N_NEW and result["n_events"] == int(frame["event"].sum())
    t, e = frame["time"].to_numpy(float), frame["event"].to_numpy(float)
    for name in ("clinical", "integrated"):
        ours = result["cindex"]["external"][name]
        ref = concordance(t, e, outcome.predictions[f"{name}_lp"])
        assert ours["c"] == pytest.approx(ref["c"], abs=1e-10)
        assert ours["se"] == pytest.approx(np.sqrt(ref["var"]), abs=1e-10)
    groups = result["risk_groups"]
    high = outcome.predictions["risk_group"] == "high"
    assert (groups["n_high"], groups["n_low"]) == (int(high.sum()), int((~high).sum()))
    assert groups["cutoff"] == bundle.risk_groups.cutoff
    ref = survdiff(t, e, np.where(high, "high", "low"))
    assert groups["chisq"] == pytest.approx(float(ref["chisq"][0]), abs=1e-10)
    assert set(tables) >= {"cindex", "calibration", "td_auc", "accuracy"}
    last = float(frame["time"].max())
    assert result["beyond_follow_up"] == [h for h in bundle.horizons if h > last]
    # the run itself wrote validation.json (with the bootstrap: a note if too few patients)
    written = json.loads((outcome.out_dir / "validation.json").read_text())
    assert written["provenance"]["labels"] == ["SYNTHETIC", "RANDOM weights"]
    assert "cindex" in written or written["note"].startswith("not computed: ")


def test_a_cohort_without_events_gets_predictions_only():
    from toolkit.study.external import external_validation

    frame = pd.DataFrame({"time": [1.0, 2.0], "event": [0.0, 0.0]}, index=["P1", "P2"])
    result, tables = external_validation(None, frame)
    assert result["note"] == "no events in the cohort: predictions only" and tables == {}


def test_apply_writes_transportability_of_its_predictions(
    study_run, study_frame, new_cohort, applied
):
    """transport.json: the original model's O/E is calibration-in-the-large of
    predictions.csv's survival, its slope the calibration slope of predictions.csv's
    linear predictor; the membership models, fitted on the bundle's de-identified case
    mix, are those of the study's own training rows (IDs and all)."""
    from toolkit.stats.calibration import calibration_in_the_large, calibration_slope
    from toolkit.study.transport import transportability

    study, _, _ = study_run
    outcome, lines = applied
    frame = _with_outcome(study, new_cohort, outcome.predictions)
    written = json.loads((outcome.out_dir / "transport.json").read_text())
    assert written["provenance"]["labels"] == ["SYNTHETIC", "RANDOM weights"]
    assert any("transportability" in line for line in lines)
    t, e = frame["time"].to_numpy(float), frame["event"].to_numpy(float)
    horizons = written["horizons"]
    assert horizons == [h for h in ModelBundle.load(study / "model").horizons if h <= t.max()]
    config, training, _ = study_frame
    train = training[training["set"].isin(config.study.train_sets)]
    direct, _ = transportability(ModelBundle.load(study / "model"), frame, train)
    for name in ("signature", "clinical", "integrated"):
        ours, theirs = written["models"][name]["case_mix"], direct["models"][name]["case_mix"]
        assert "note" not in ours and ours["linear_predictor"]["training"]["n"] == len(train)
        for key in ("membership_lp", "membership_variables"):
            for field in ("auc", "se", "lower", "upper"):
                assert ours[key][field] == pytest.approx(theirs[key][field], abs=1e-10)
    for name in ("clinical", "integrated"):
        block = written["models"][name]
        lp = outcome.predictions[f"{name}_lp"].to_numpy(float)
        new = block["case_mix"]["linear_predictor"]["new"]
        assert new["mean"] == pytest.approx(lp.mean(), abs=1e-12)
        if "note" in block["updating"]:
            assert block["updating"]["note"].startswith("not computed: ")
            continue
        original = block["updating"]["original"]
        slope = calibration_slope(t, e, lp)
        assert original["calibration_slope"]["slope"] == pytest.approx(slope.slope, abs=1e-12)
        columns = [f"{name}_survival_{h:g}" for h in horizons]
        large = calibration_in_the_large(t, e, outcome.predictions[columns].to_numpy(), horizons)
        oe = [original["horizons"][f"{h:g}"]["oe"] for h in horizons]
        np.testing.assert_allclose(oe, large.ratio, atol=1e-12, rtol=0)


def test_the_apply_page_shows_the_json(applied):
    """OUT_DIR/report/apply.html, self-contained, shows the bundle's hash and labels and, as
    printed (three decimals), the numbers of apply.json, predictions.csv, validation.json and
    transport.json."""
    from toolkit.report import apply as page
    from toolkit.report.formatting import number, with_ci

    outcome, lines = applied
    path = outcome.out_dir / "report" / "apply.html"
    text = path.read_text(encoding="utf-8")
    assert f"report: {path}" in lines[-1]
    assert "<script src=" not in text and 'rel="stylesheet" href' not in text
    record = json.loads((outcome.out_dir / "apply.json").read_text())
    assert record["model"]["sha256"] in text and record["weights"]["sha256"] in text
    for label in record["labels"]:
        assert label in text
    lp = outcome.predictions["integrated_lp"]
    assert f"{number(lp.mean())} ({number(lp.std(ddof=1))})" in text
    validation = json.loads((outcome.out_dir / "validation.json").read_text())
    if "cindex" in validation:
        for e in validation["cindex"]["external"].values():
            assert with_ci(e["c"], e["lower"], e["upper"]) in text
    else:
        assert validation["note"] in text
    transport = json.loads((outcome.out_dir / "transport.json").read_text())
    shown = 0
    for block in transport["models"].values():
        new = block["case_mix"]["linear_predictor"]["new"]
        assert number(new["sd"]) in text
        for method, entry in block["updating"].items():
            if method == "note":
                assert entry in text
                continue
            for cells in entry["horizons"].values():
                assert with_ci(cells["oe"], cells["oe_lower"], cells["oe_upper"]) in text
                shown += 1
    assert shown or all("note" in b["updating"] for b in transport["models"].values())
    assert page.METHOD_LABELS["baseline"] in text or not shown
