"""The fine-tuned signature (``[signature] source = "finetuned"``): outer folds that never
train on their test patients, and a whole `sigkit study run` on a 48-patient synthetic
cohort with a reduced-width network, whose report's methods say how it was trained; its
weights file, CAMs, locked bundle (and `sigkit apply` with it) and the report's internal
validation."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from toolkit.artifacts import read_json
from toolkit.config import Finetune
from toolkit.study import finetuned

SMALL = {
    "blocks": [1, 1, 1, 1],
    "growth_rate": 8,
    "stem_features": 16,
    "input_size": 32,
    "steps": 4,
    "learning_rate": 3e-3,
    "validation_fraction": 0.25,
    "patience": 2,
    "chunk_size": 16,
}
FINETUNE_TOML = "\n[signature.finetune]\n" + "\n".join(
    f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in SMALL.items()
)


def test_outer_folds_are_stratified_and_seeded():
    event = np.r_[np.ones(13), np.zeros(22)]
    fold = finetuned.outer_folds(event, 5, seed=1)
    assert sorted(np.bincount(fold)) == [7, 7, 7, 7, 7]
    for k in range(5):  # 13 events dealt out over 5 folds: 2 or 3 each
        assert event[fold == k].sum() in (2, 3)
    np.testing.assert_array_equal(finetuned.outer_folds(event, 5, seed=1), fold)
    assert not np.array_equal(finetuned.outer_folds(event, 5, seed=2), fold)


def test_no_fold_trains_on_its_test_patients():
    rng = np.random.default_rng(0)
    n = 20
    patients = np.asarray([f"P{i:03d}" for i in range(n)])
    cohort = finetuned.Cohort(
        arterial=rng.normal(size=(n, 32, 32)).astype(np.float32),
        portal=rng.normal(size=(n, 32, 32)).astype(np.float32),
        time=rng.exponential(size=n),
        event=(np.arange(n) % 3 == 0).astype(float),
        patients=patients,
    )
    seen: list[set[str]] = []

    def recording(arterial, portal, time, event, *, rows, network, backbone, settings):
        from toolkit.deep.finetune import FinetuneResult, init_params

        seen.append(set(rows))
        # the crops handed over are those patients' crops, row for row
        where = [int(np.flatnonzero(patients == r)[0]) for r in rows]
        np.testing.assert_array_equal(arterial, cohort.arterial[where])
        np.testing.assert_array_equal(time, cohort.time[where])
        params = init_params(network, arterial.shape[1:], seed=0)
        head = np.ones(params["head"]["kernel"].shape, np.float32)
        params = {**params, "head": {"kernel": head}}
        return FinetuneResult(params, np.zeros(1), np.zeros(0), 0, 0, where, [], settings)

    settings = Finetune(**SMALL)
    cv, folds = finetuned.cross_validate(cohort, settings, 4, seed=0, train_function=recording)
    assert len(seen) == 4
    for k, trained_on in enumerate(seen, start=1):
        test = set(folds.loc[folds["fold"] == k, "patient"])
        assert test and not trained_on & test
        assert trained_on | test == set(patients)
    assert cv["n_test"].sum() == n and (cv["n_train"] + cv["n_test"] == n).all()
    assert np.isfinite(cv["c_index"]).all()


@pytest.fixture(scope="module")
def finetuned_study(tmp_path_factory, r):
    from toolkit.cli import app
    from toolkit.synth import Grid, generate_cohort

    study = tmp_path_factory.mktemp("finetuned_study")
    grid = Grid(shape=(20, 128, 128), spacing=(1.6, 1.6, 5.0))
    generate_cohort(study / "cohort", n_patients=48, seed=0, grid=grid, workers=1)
    toml = study / "cohort" / "study.toml"
    text = toml.read_text()
    text = text.replace("[signature]\n", '[signature]\nsource = "finetuned"\n')
    text = text.replace("n_folds = 5\n", "n_folds = 3\n")
    text = text.replace(
        "n_bootstrap = 1000\n", "n_bootstrap = 50\ncalibration_bootstrap = 20\nmin_events = 5\n"
    )
    assert 'source = "finetuned"' in text and "n_folds = 3" in text
    toml.write_text(text + FINETUNE_TOML + "\n")
    start = time.perf_counter()
    out = CliRunner().invoke(
        app, ["study", "run", str(study), "--weights", "random", "--workers", "0", "--no-report"]
    )
    seconds = time.perf_counter() - start
    return study, out, seconds


def test_study_run_with_a_finetuned_signature_completes(finetuned_study):
    study, out, seconds = finetuned_study
    assert out.exit_code == 0, out.output
    print(f"finetuned study run: {seconds:.0f} s")
    results = study / "results"
    signature = read_json(results / "signature.json")
    assert signature["penalty"] == "finetuned" and signature["features"] == []
    assert "fine-tuned DenseNet-121" in signature["note"]
    cv = pd.read_parquet(results / "tables" / "finetune_cv.parquet")
    assert list(cv["fold"]) == [1, 2, 3] and cv["c_index"].between(0, 1).all()
    # every fold's network trained at least one step: its eta is not constant
    assert (cv["best_step"] >= 1).all()
    scores = pd.read_parquet(results / "tables" / "scores.parquet")
    assert scores["signature"].notna().all() and scores["signature"].std() > 0
    assert set(scores["set"]) == {"train", "validation"}
    # everything after the signature ran on its scores: models, validation, the R check
    assert read_json(results / "r_check.json")["passed"] is True
    models = read_json(results / "models.json")
    assert "signature" in str(models)
    assert not (results / "internal_validation.json").exists()  # left out, as documented
    assert (study / "model" / "model.json").exists()


def test_report_methods_say_how_the_signature_was_trained(finetuned_study):
    from toolkit.report import methods, narrative
    from toolkit.report.study import load

    study, out, _ = finetuned_study
    assert out.exit_code == 0, out.output
    results = load(study)
    assert "weight decay, augmentation and early stopping" in methods.sample_size(results)
    text = methods.model_building(results)
    assert "fine-tuned end to end" in text
    assert "3-fold cross-validation with the fine-tuning repeated inside each outer fold" in text
    assert "reduced-width DenseNet" in text and "exact Cox partial likelihood" in text
    assert "mRMR" not in text.split("No ICC filter")[0]
    summary = narrative.signature(results)
    assert "fine-tuned end to end" in summary and "combines 0 features" not in summary


def test_finetune_settings_are_checked_where_study_toml_is_read():
    from pydantic import ValidationError

    from toolkit.config import Signature

    assert Signature().source == "frozen" and Finetune().full_width
    assert not Finetune(**SMALL).full_width
    for bad, message in (
        ({"input_size": 48}, "multiple of 32"),
        ({"input_size": 256}, "less than or equal to 224"),
        ({"blocks": [1, 0]}, "at least one layer"),
        ({"dtype": "float16"}, "float32"),
        ({"chunk_size": 0}, "greater than or equal to 1"),
        ({"epochs": 3}, "Extra inputs are not permitted"),
    ):
        with pytest.raises(ValidationError, match=message):
            Finetune(**bad)
    with pytest.raises(ValidationError, match="frozen"):
        Signature(source="trained")


def _weights_record(study):
    return read_json(study / "results" / "finetune.json")["weights"]


def test_final_network_is_saved_and_reloads_to_the_study_scores(finetuned_study):
    """results/finetuned.safetensors, with its SHA-256 in finetune.json, reread gives the
    scores of scores.parquet for every patient (the crops as the signature stage read them)."""
    from toolkit.artifacts import file_hash
    from toolkit.config import load_study
    from toolkit.deep.finetune import linear_predictor

    study, out, _ = finetuned_study
    assert out.exit_code == 0, out.output
    recorded = _weights_record(study)
    path = study / "results" / recorded["path"]
    assert recorded["path"] == "finetuned.safetensors" and file_hash(path) == recorded["sha256"]
    weights = finetuned.read_weights(path, recorded["sha256"])
    assert weights.input_size == SMALL["input_size"] and list(weights.blocks) == SMALL["blocks"]
    config = load_study(study / "cohort")
    scores = pd.read_parquet(study / "results" / "tables" / "scores.parquet")
    patients = scores.index.astype(str).tolist()
    arterial, portal = finetuned.primary_crops(
        study / "crops", patients, config.imaging.primary_reader, weights.input_size
    )
    eta = linear_predictor(
        weights.network(), weights.params, arterial, portal, chunk_size=SMALL["chunk_size"]
    )
    np.testing.assert_array_equal(eta.astype(float), scores["signature"].to_numpy())


def test_report_says_why_there_is_no_bootstrap_and_gives_the_cv_optimism(finetuned_study):
    from toolkit.report import methods, narrative
    from toolkit.report.study import load

    study, out, _ = finetuned_study
    assert out.exit_code == 0, out.output
    record = read_json(study / "results" / "finetune.json")
    metrics = read_json(study / "results" / "metrics.json")
    # the apparent C-index is the validate stage's training C of the signature
    assert record["apparent_c_index"] == pytest.approx(
        metrics["cindex"]["train"]["signature"]["c"], abs=1e-12
    )
    cv = pd.read_parquet(study / "results" / "tables" / "finetune_cv.parquet")
    assert record["cv_optimism"] == pytest.approx(
        record["apparent_c_index"] - cv["c_index"].mean(), abs=1e-12
    )
    assert record["final_seconds"] > 0
    results = load(study)
    text = narrative.internal_validation(results)
    assert "No whole-procedure bootstrap for the fine-tuned signature" in text
    assert f"optimism {record['cv_optimism']:.3f}" in text
    assert f"apparent training C-index {record['apparent_c_index']:.3f}" in text
    assert "nomograms' optimism was not estimated" in text
    assert "outer-fold cross-validation" in methods.internal_validation(results)


def test_cams_of_the_finetuned_network_are_drawn(finetuned_study):
    study, out, _ = finetuned_study
    assert out.exit_code == 0, out.output
    done = read_json(study / "results" / ".cam_done.json")
    assert len(done["figures"]) == 2
    scores = pd.read_parquet(study / "results" / "tables" / "scores.parquet")
    valid = scores[scores["set"] == "validation"]["signature"]
    assert {f"cam_{valid.idxmax()}", f"cam_{valid.idxmin()}"} == set(done["figures"])
    for name in done["figures"]:
        assert (study / "results" / "figures" / f"{name}.png").stat().st_size > 0
    assert done["provenance"]["inputs"]["finetuned"] == _weights_record(study)["sha256"]


def test_bundle_names_the_network_and_apply_scores_with_it(finetuned_study, tmp_path):
    """model.json's weights.finetuned names model/finetuned.safetensors by its SHA-256, and
    `sigkit apply` on six of the study's own validation patients gives their study scores."""
    from toolkit.artifacts import file_hash
    from toolkit.study.apply import apply_model
    from toolkit.study.bundle import ModelBundle

    study, out, _ = finetuned_study
    assert out.exit_code == 0, out.output
    bundle = ModelBundle.load(study / "model")
    entry = bundle.weights["finetuned"]
    assert entry["sha256"] == _weights_record(study)["sha256"]
    assert file_hash(study / "model" / entry["path"]) == entry["sha256"]
    scores = pd.read_parquet(study / "results" / "tables" / "scores.parquet")
    chosen = scores.index[scores["set"] == "validation"][:6].astype(str).tolist()
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    (cohort / "images").symlink_to(study / "cohort" / "images")
    for name in ("manifest.csv", "clinical.csv"):
        table = pd.read_csv(study / "cohort" / name, dtype=str)
        table[table["patient"].isin(chosen)].to_csv(cohort / name, index=False)

    def apply_to(out):
        quiet = {"workers": 0, "report": False, "echo": lambda _: None}
        return apply_model(study / "model", cohort, out, weights="random", **quiet)

    outcome = apply_to(tmp_path / "out")
    predicted = outcome.predictions["signature"].loc[chosen].to_numpy()
    expected = scores.loc[chosen, "signature"].to_numpy()
    print(f"apply vs study signature: max |diff| {np.abs(predicted - expected).max():.3g}")
    np.testing.assert_allclose(predicted, expected, rtol=1e-6, atol=1e-7)
    assert read_json(tmp_path / "out" / "apply.json")["weights"]["finetuned"] == entry
    # a changed network file is refused, naming it
    (study / "model" / entry["path"]).write_bytes(b"not the network")
    try:
        with pytest.raises(ValueError, match=r"finetuned\.safetensors"):
            apply_to(tmp_path / "again")
    finally:
        import shutil

        shutil.copyfile(
            study / "results" / "finetuned.safetensors", study / "model" / entry["path"]
        )


def test_cam_stage_keeps_the_frozen_path_and_key(tmp_path, monkeypatch):
    """The cam stage of a frozen study calls the frozen figures with the key it had before
    fine-tuned CAMs (signature.json and the crops, n and the weights); a fine-tuned one is
    keyed on the network file too and draws the network's maps."""
    from types import SimpleNamespace

    import toolkit.study.figures
    from toolkit.artifacts import file_hash, write_json
    from toolkit.study.stages import cam

    results, crops = tmp_path / "results", tmp_path / "crops"
    write_json(results / "signature.json", {"features": []})
    write_json(crops / "manifest.json", {"patients": []})
    (results / "finetuned.safetensors").write_bytes(b"a network")
    network = {
        "path": "finetuned.safetensors",
        "sha256": file_hash(results / "finetuned.safetensors"),
    }
    write_json(results / "finetune.json", {"weights": network})
    called = []
    monkeypatch.setattr(
        toolkit.study.figures, "cam_figures", lambda ctx, clinical, n: called.append("frozen") or []
    )
    monkeypatch.setattr(finetuned, "read_weights", lambda path, sha256: path)
    monkeypatch.setattr(
        finetuned, "cam_figures", lambda ctx, weights, n: called.append(weights.name) or []
    )

    def context(source):
        return SimpleNamespace(
            paths=SimpleNamespace(results=results),
            config=SimpleNamespace(signature=SimpleNamespace(source=source)),
            weights_origin="random",
            prov=lambda key, inputs: {"stage_key": key, "inputs": inputs},
        )

    given = {"crops": crops, "clinical": None}
    frozen = cam.run(context("frozen"), given)
    assert frozen.inputs == {
        "signature": file_hash(results / "signature.json"),
        "crops": file_hash(crops / "manifest.json"),
    }
    assert frozen.settings == {"n": cam.N_PATIENTS, "weights": "random"}
    frozen.compute("key")
    tuned = cam.run(context("finetuned"), given)
    assert tuned.inputs == frozen.inputs | {
        "finetuned": file_hash(results / "finetuned.safetensors")
    }
    tuned.compute("key")
    assert called == ["frozen", "finetuned.safetensors"]
