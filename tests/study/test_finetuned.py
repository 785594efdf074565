"""The fine-tuned signature (``[signature] source = "finetuned"``): outer folds that never
train on their test patients, and a whole `sigkit study run` on a 48-patient synthetic
cohort with a reduced-width network, whose report's methods say how it was trained."""

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
    assert not (study / "model" / "model.json").exists()


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
