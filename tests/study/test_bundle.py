"""The locked model bundle (STUDY_DIR/model/): written by every study run, read alone, equal
to the study's models, and a case of its survival CI worked by hand."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from toolkit.contracts import Term
from toolkit.stats.wald import Z_975
from toolkit.study.bundle import (
    VERSION,
    BaselineHazard,
    BundledCox,
    BundleError,
    ModelBundle,
)


def test_every_run_writes_a_bundle_that_reproduces_the_study_models_exactly(study_run, study_frame):
    """On the training patients: the same linear predictors and survival, bit for bit; the
    CI equal to the study's Cox fit refitted (CoxFit.predict_survival_ci); the signature,
    nomograms and risk-group cutoff those of results/."""
    from toolkit.contracts import Metrics, NomogramSpec, SignatureSpec
    from toolkit.study.nomograms import refit

    study, _, _ = study_run
    bundle = ModelBundle.load(study / "model")
    config, frame, models = study_frame
    train = frame[frame["set"].isin(config.study.train_sets)]
    times = list(config.validation.times)
    assert bundle.horizons == tuple(times)
    for name in ("signature", "clinical", "integrated"):
        bundled, model = bundle.models[name], models[name]
        predicted = bundled.predict(train, times)
        np.testing.assert_array_equal(predicted.linear_predictor, model.linear_predictor(train))
        np.testing.assert_array_equal(predicted.survival, model.survival(train, times))
        fit = refit(model, train)
        reference = fit.predict_survival_ci(model.design(train), times)
        np.testing.assert_allclose(predicted.lower, reference.lower, rtol=0, atol=1e-12)
        np.testing.assert_allclose(predicted.upper, reference.upper, rtol=0, atol=1e-12)
        np.testing.assert_allclose(predicted.std_err, reference.std_err, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(bundled.covariance, fit.variance)
    signature = SignatureSpec.read(study / "results" / "signature.json")
    assert bundle.signature == replace(signature, provenance=None)
    scores = pd.read_parquet(study / "results" / "tables" / "scores.parquet")
    for name in ("clinical", "integrated"):
        spec = NomogramSpec.read(study / "results" / f"nomogram_{name}.json")
        assert bundle.nomograms[name] == replace(spec, provenance=None)
    metrics = Metrics.read(study / "results" / "metrics.json")
    assert bundle.risk_groups.cutoff == metrics.risk_groups["cutoff"]
    assert bundle.risk_groups.model == "integrated"
    table = bundle.predict(train)
    np.testing.assert_array_equal(table["signature"], scores.loc[train.index, "signature"])
    high = models["integrated"].linear_predictor(train) > metrics.risk_groups["cutoff"]
    assert (table["risk_group"] == np.where(high, "high", "low")).all()
    assert (table["risk_group"] == "high").sum() == metrics.risk_groups["train"]["n_high"]


def test_bundle_records_weights_version_and_training_hashes(study_run):
    from toolkit._version import __version__
    from toolkit.artifacts import file_hash, read_json, read_parquet_provenance

    study, _, _ = study_run
    manifest = json.loads((study / "model" / "model.json").read_text())
    assert manifest["format"] == "sigkit-model" and manifest["version"] == VERSION
    assert manifest["sigkit_version"] == __version__
    features = read_parquet_provenance(study / "features" / "features.parquet")
    assert manifest["weights"] == {"origin": "random", "sha256": features["weights_sha256"]}
    training = manifest["training"]
    assert training["clinical_sha256"] == file_hash(study / "cohort" / "clinical.csv")
    assert training["manifest_sha256"] == file_hash(study / "cohort" / "manifest.csv")
    assert training["features_sha256"] == file_hash(study / "features" / "features.parquet")
    assert len(training["model_frame_sha256"]) == 64 and training["n_patients"] > 0
    assert manifest["preprocessing"]["crop_size"] == 224
    assert manifest["study_toml"]["imaging"]["primary_reader"] == "reader1_a"
    prov = manifest["provenance"]
    assert prov["weights"] == "random" and prov["synthetic"] is True
    assert prov["settings"]["stage_key"] == read_json(study / ".sigkit/stages/bundle.json")["key"]
    for entry in manifest["files"].values():
        assert file_hash(study / "model" / entry["path"]) == entry["sha256"]


def test_loading_needs_no_other_file_of_the_study(study_copy, study_frame, tmp_path):
    """model/ copied elsewhere, the study deleted: it loads and predicts the same."""
    original = ModelBundle.load(study_copy / "model")
    _, frame, _ = study_frame
    expected = original.predict(frame)
    shutil.copytree(study_copy / "model", tmp_path / "locked")
    shutil.rmtree(study_copy)
    loaded = ModelBundle.load(tmp_path / "locked")
    pd.testing.assert_frame_equal(loaded.predict(frame), expected, check_exact=True)
    assert loaded.sha256 == original.sha256
    assert loaded.config.study.name == original.study


def test_a_changed_or_foreign_bundle_is_refused(study_run, tmp_path):
    study, _, _ = study_run
    locked = tmp_path / "model"
    shutil.copytree(study / "model", locked)
    path = locked / "cox_clinical.json"
    data = json.loads(path.read_text())
    data["model"]["coef"][0] += 0.1
    path.write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"cox_clinical\.json: its SHA-256 differs"):
        ModelBundle.load(locked)
    manifest = json.loads((locked / "model.json").read_text())
    (locked / "model.json").write_text(json.dumps({**manifest, "version": VERSION + 1}))
    with pytest.raises(BundleError, match=f"version {VERSION + 1}"):
        ModelBundle.load(locked)
    with pytest.raises(BundleError, match=r"no model\.json"):
        ModelBundle.load(tmp_path)


def test_survival_ci_of_a_bundled_model_worked_by_hand():
    """One numeric term, beta = 0.5, mean 0, two event times with H = 0.2, 0.5,
    sum dV = 0.01, 0.04, sum dXbar = 0.1, 0.3, var(beta) = 0.04. At t = 2 a patient with
    x = 1 has r = e^0.5, d = 0.5 * 1 - 0.3 = 0.2, se = r sqrt(0.04 + 0.2^2 * 0.04) and
    S = exp(-0.5 r); the log limits are S exp(-/+ z se), the upper one at most 1."""
    from toolkit.study.nomograms import FittedModel

    model = FittedModel(
        name="m",
        variables=("x",),
        terms=(Term("x"),),
        coef=(0.5,),
        se=(0.2,),
        p=(0.01,),
        means=(0.0,),
        lp_centre=0.0,
        baseline_survival={"2": math.exp(-0.5), "1.5": math.exp(-0.2)},
        loglik=0.0,
        aic=0.0,
        levels={},
    )
    baseline = BaselineHazard(
        time=np.array([1.0, 2.0]),
        cumulative_hazard=np.array([0.2, 0.5]),
        variance=np.array([0.01, 0.04]),
        xbar=np.array([[0.1], [0.3]]),
        first_time=1.0,
    )
    bundled = BundledCox(model, np.array([[0.04]]), baseline, {"x": (0.0, 1.0)})
    got = bundled.predict(pd.DataFrame({"x": [1.0, 0.0]}, index=["a", "b"]), [2.0, 1.5])
    r = math.exp(0.5)
    se = r * math.sqrt(0.04 + 0.2**2 * 0.04)
    s = math.exp(-0.5 * r)
    assert got.survival[0, 0] == pytest.approx(s, abs=1e-15)
    assert got.std_err[0, 0] == pytest.approx(se, abs=1e-15)
    assert got.lower[0, 0] == pytest.approx(s * math.exp(-Z_975 * se), abs=1e-15)
    assert got.upper[0, 0] == pytest.approx(min(1.0, s * math.exp(Z_975 * se)), abs=1e-15)
    # x = 0 at t = 1.5 (the step at t = 1): r = 1, d = 0 - 0.1, se = sqrt(0.01 + 0.01 * 0.04)
    se_b = math.sqrt(0.01 + 0.1**2 * 0.04)
    assert got.std_err[1, 1] == pytest.approx(se_b, abs=1e-15)
    assert got.lower[1, 1] == pytest.approx(math.exp(-0.2) * math.exp(-Z_975 * se_b), abs=1e-15)
    again = BundledCox.from_json(json.loads(json.dumps(bundled.to_json())))
    again_got = again.predict(pd.DataFrame({"x": [1.0, 0.0]}, index=["a", "b"]), [2.0, 1.5])
    np.testing.assert_array_equal(again_got.lower, got.lower)


def test_the_bundle_made_in_memory_is_the_one_read_back(study_run, study_frame):
    """from_study's bundle (the stage's compute) and ModelBundle.load of its files: the
    same documents, number for number (JSON keeps every float)."""
    from toolkit.contracts import Metrics, NomogramSpec, SignatureSpec
    from toolkit.imaging.manifest import study_manifest
    from toolkit.stats.nomogram import Nomogram
    from toolkit.study.bundle import from_study, scan_digests

    study, _, _ = study_run
    config, frame, models = study_frame
    loaded = ModelBundle.load(study / "model")
    results = study / "results"
    train = frame[frame["set"].isin(config.study.train_sets)]
    made = from_study(
        config,
        models,
        {m: Nomogram.from_spec(NomogramSpec.read(results / f"nomogram_{m}.json")) for m in
         ("clinical", "integrated")},
        SignatureSpec.read(results / "signature.json"),
        train,
        cutoff=Metrics.read(results / "metrics.json").risk_groups["cutoff"],
        weights=dict(loaded.weights),
        training=dict(loaded.training),
        scans=scan_digests(study_manifest(config, study / "cohort"), train.index),
    )  # fmt: skip
    assert json.dumps(made.documents()) == json.dumps(loaded.documents())
    pd.testing.assert_frame_equal(made.case_mix, loaded.case_mix, check_exact=True)
    files = json.loads((study / "model" / "model.json").read_text())["files"]
    expected = {k: v for k, v in loaded.manifest(files).items() if k != "provenance"}
    assert made.manifest(files) == expected


def test_survival_terms_give_the_prediction_by_their_documented_formula():
    """``BundledCox.survival_terms`` (what the report's calculator computes from) gives
    ``predict``'s survival and log limits by its docstring's formula: two terms (a level and
    a number), a time before the first observed time (limits 1), one between event times
    and one beyond the last."""
    from toolkit.study.nomograms import FittedModel

    model = FittedModel(
        name="m",
        variables=("stage", "x"),
        terms=(Term("stage", "II"), Term("x")),
        coef=(0.7, -0.4),
        se=(0.3, 0.2),
        p=(0.02, 0.04),
        means=(0.4, 1.5),
        lp_centre=0.7 * 0.4 - 0.4 * 1.5,
        baseline_survival={"0.5": 1.0, "1.5": math.exp(-0.2), "9": math.exp(-0.5)},
        loglik=0.0,
        aic=0.0,
        levels={"stage": ("I", "II")},
    )
    baseline = BaselineHazard(
        time=np.array([1.0, 2.0]),
        cumulative_hazard=np.array([0.2, 0.5]),
        variance=np.array([0.01, 0.04]),
        xbar=np.array([[0.05, 0.3], [0.12, 0.7]]),
        first_time=0.8,
    )
    covariance = np.array([[0.09, 0.01], [0.01, 0.04]])
    bundled = BundledCox(model, covariance, baseline, {"x": (0.0, 3.0)})
    times = [0.5, 1.5, 9.0]
    frame = pd.DataFrame({"stage": ["II", "I"], "x": [2.5, -1.0]}, index=["a", "b"])
    got = bundled.predict(frame, times)
    terms = json.loads(json.dumps(bundled.survival_terms(times)))
    assert terms["training_range"] == {"x": [0.0, 3.0]}
    assert [t["time"] for t in terms["times"]] == times
    for row, (stage, x_value) in enumerate(zip(frame["stage"], frame["x"], strict=True)):
        x = np.array(
            [float(stage == t["level"]) if t["level"] else x_value for t in terms["terms"]]
        )
        centred = x - np.array(terms["means"])
        lp, risk = x @ terms["coef"], math.exp(centred @ terms["coef"])
        for j, at in enumerate(terms["times"]):
            s = at["baseline_survival"] ** math.exp(lp - terms["lp_centre"])
            d = at["cumulative_hazard"] * centred - np.array(at["xbar"])
            se = risk * math.sqrt(at["variance"] + d @ np.array(terms["covariance"]) @ d)
            lower, upper = s * math.exp(-terms["z"] * se), min(1.0, s * math.exp(terms["z"] * se))
            if at["time"] < terms["first_time"]:
                lower = upper = 1.0
            assert got.survival[row, j] == pytest.approx(s, abs=1e-14)
            assert got.std_err[row, j] == pytest.approx(se, abs=1e-14)
            assert got.lower[row, j] == pytest.approx(lower, abs=1e-14)
            assert got.upper[row, j] == pytest.approx(upper, abs=1e-14)
    assert terms["z"] == Z_975
    assert got.lower[0, 0] == got.upper[0, 0] == 1.0  # t = 0.5 is before the first time
    assert got.upper[1, 2] < 1.0 or got.upper[0, 2] < 1.0  # an upper limit not cut at 1
