"""`sigkit apply` on the issue's bad input: patients of the training set (named, by the
bundle's salted hashes of the training IDs and scans: not an external validation), an
empty cohort (refused), a cohort without events or outcomes (predictions only, said in
every output); and the bundle's de-identified training case mix. Every cohort here is a
folder with a manifest and a clinical table only (no study.toml): apply reads the
model's settings."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from toolkit.study.apply import ApplyError, apply_model
from toolkit.study.bundle import BundleError, ModelBundle


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cohort(study, tmp_path, rows, edit=None):
    """A cohort folder made of the session study's patients: ``rows`` maps each new ID to
    the study patient whose images and clinical row it gets (images by absolute path)."""
    source = study / "cohort"
    target = tmp_path / "cohort"
    target.mkdir()
    manifest = pd.read_csv(source / "manifest.csv", dtype=str).set_index("patient")
    clinical = pd.read_csv(source / "clinical.csv", dtype={"patient": str}).set_index("patient")
    images = [c for c in manifest.columns if c in ("arterial", "portal") or c.startswith("mask_")]
    for column in images:
        manifest[column] = [str(source / p) for p in manifest[column]]
    new_manifest = manifest.loc[list(rows.values())].set_axis(list(rows), axis=0)
    new_clinical = clinical.loc[list(rows.values())].set_axis(list(rows), axis=0)
    if edit is not None:
        new_clinical = edit(new_clinical)
    new_manifest.rename_axis("patient").to_csv(target / "manifest.csv")
    new_clinical.rename_axis("patient").to_csv(target / "clinical.csv")
    assert not (target / "study.toml").exists()
    return target


def _page_text(out) -> str:
    """apply.html's text as a reader sees it (entities decoded, whitespace collapsed)."""
    from bs4 import BeautifulSoup

    html = (out / "report" / "apply.html").read_text(encoding="utf-8")
    return " ".join(BeautifulSoup(html, "html.parser").get_text(" ").split())


def _sets(study_frame):
    config, frame, _ = study_frame
    train = frame.index[frame["set"].isin(config.study.train_sets)]
    other = frame.index[~frame["set"].isin(config.study.train_sets)]
    return list(train), list(other)


def test_the_bundle_keeps_the_training_patients_as_salted_hashes(study_run, study_frame):
    """training_patients.json by hand: sha256(salt:ID) and sha256(salt:sha256(sha256(arterial)
    :sha256(portal))) of every training patient, salt = the training model frame's hash;
    no raw ID in the file."""
    study, _, _ = study_run
    train, _ = _sets(study_frame)
    model = study / "model"
    manifest = json.loads((model / "model.json").read_text())
    text = (model / "training_patients.json").read_text()
    record = json.loads(text)
    salt = manifest["training"]["model_frame_sha256"]
    assert record["salt"] == salt and manifest["files"]["training_patients"]["sha256"]
    assert not any(p in text for p in train)
    by_hand = sorted(hashlib.sha256(f"{salt}:{p}".encode()).hexdigest() for p in train)
    assert record["ids"] == by_hand
    images = pd.read_csv(study / "cohort" / "manifest.csv", dtype=str).set_index("patient")
    scans = []
    for p in train:
        arterial = _sha256(study / "cohort" / images.loc[p, "arterial"])
        portal = _sha256(study / "cohort" / images.loc[p, "portal"])
        digest = hashlib.sha256(f"{arterial}:{portal}".encode()).hexdigest()
        scans.append(hashlib.sha256(f"{salt}:{digest}".encode()).hexdigest())
    assert record["scans"] == sorted(scans) and len(scans) == manifest["training"]["n_patients"]


def test_patients_of_the_training_set_are_named_not_an_external_validation(
    study_run, study_frame, tmp_path
):
    """Two training patients as they were, a third's images under a new ID, a validation
    patient's images under a fourth training patient's ID, and a validation patient."""
    study, _, _ = study_run
    train, other = _sets(study_frame)
    rows = {train[0]: train[0], train[1]: train[1], "X001": train[2]}
    rows |= {train[3]: other[0], other[1]: other[1]}
    cohort = _cohort(study, tmp_path, rows)
    lines: list[str] = []
    outcome = apply_model(
        study / "model", cohort, tmp_path / "out", weights="random", workers=0, echo=lines.append
    )
    label = (
        "NOT AN EXTERNAL VALIDATION: 3 patients of the cohort's 5 have the images of a "
        f"training patient of the model ({train[0]}, {train[1]}, X001)"
    )
    assert label in outcome.labels
    assert f"  warning: {label}" in lines
    warning = (
        f"1 patient of the cohort's 5 carries the ID of a training patient of the model, with "
        f"other images ({train[3]})"
    )
    assert any(warning in line for line in lines)
    written = pd.read_csv(tmp_path / "out" / "predictions.csv", dtype={"patient": str})
    written = written.set_index("patient")
    assert written["in_training"].fillna("").to_dict() == {
        train[0]: "images and ID",
        train[1]: "images and ID",
        "X001": "images",
        train[3]: "ID",
        other[1]: "",
    }
    assert (written["labels"].str.contains(label, regex=False)).all()
    record = json.loads((tmp_path / "out" / "apply.json").read_text())
    assert label in record["labels"] and record["training_overlap"]["checked"]
    assert record["training_overlap"]["patients"] == {
        p: v for p, v in written["in_training"].fillna("").items() if v
    }
    assert warning in record["training_overlap"]["warning"]
    page = _page_text(tmp_path / "out")
    assert "3 patients have the images of a training patient" in page
    assert "this is not an external validation" in page and label in page
    assert warning in page


def test_a_bundle_without_training_hashes_says_overlap_not_checked(
    study_run, study_frame, tmp_path
):
    study, _, _ = study_run
    bundle = replace(ModelBundle.load(study / "model"), training_patients=None)
    bundle.save(tmp_path / "model")
    assert not (tmp_path / "model" / "training_patients.json").exists()
    train, _ = _sets(study_frame)
    # no outcome: one patient is too few for the external validation's statistics
    cohort = _cohort(study, tmp_path, {train[0]: train[0]}, lambda t: t.drop(columns=["os_months"]))
    lines: list[str] = []
    apply_model(
        tmp_path / "model",
        cohort,
        tmp_path / "out",
        weights="random",
        workers=0,
        report=False,
        echo=lines.append,
    )
    assert "  the model bundle keeps no training patients' hashes: overlap not checked" in lines
    record = json.loads((tmp_path / "out" / "apply.json").read_text())
    assert record["training_overlap"] == {"checked": False, "patients": {}, "warning": None}
    assert "in_training" not in pd.read_csv(tmp_path / "out" / "predictions.csv").columns


def test_an_empty_cohort_is_refused_before_any_work(study_run, tmp_path):
    from typer.testing import CliRunner

    from toolkit.cli import app

    study, _, _ = study_run
    cohort = _cohort(study, tmp_path, {})
    assert len(pd.read_csv(cohort / "manifest.csv")) == 0
    with pytest.raises(ApplyError, match=r"an empty cohort \(manifest.csv and clinical.csv list"):
        apply_model(study / "model", cohort, tmp_path / "out", weights="random", workers=0)
    assert not (tmp_path / "out").exists()
    result = CliRunner().invoke(
        app, ["apply", str(study / "model"), str(cohort), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1 and "an empty cohort" in result.output


def test_a_cohort_whose_every_patient_lacks_a_model_variable_is_refused(
    study_run, study_frame, tmp_path
):
    study, _, _ = study_run
    _, other = _sets(study_frame)

    def edit(table):
        return table.assign(alt=np.nan)

    cohort = _cohort(study, tmp_path, {other[0]: other[0], other[1]: other[1]}, edit)
    with pytest.raises(
        ApplyError,
        match=rf"every patient lacks a model variable: {other[0]} \(missing alt\), {other[1]}",
    ):
        apply_model(study / "model", cohort, tmp_path / "out", weights="random", workers=0)
    assert not (tmp_path / "out").exists()


def test_a_cohort_without_events_or_outcomes_gets_predictions_only_said_everywhere(
    study_run, study_frame, tmp_path
):
    study, _, _ = study_run
    _, other = _sets(study_frame)
    rows = {p: p for p in other[:3]}
    no_events = _cohort(study, tmp_path, rows, lambda t: t.assign(os_event=0))
    out = tmp_path / "out"
    lines: list[str] = []
    outcome = apply_model(
        study / "model", no_events, out, weights="random", workers=0, echo=lines.append
    )
    said = "no events in the cohort: predictions only"
    assert len(outcome.predictions) == 3 and f"  {said}" in lines
    assert json.loads((out / "apply.json").read_text())["predictions_only"] == said
    validation = json.loads((out / "validation.json").read_text())
    assert validation["note"] == said and validation["n_events"] == 0
    assert not (out / "transport.json").exists()
    page = _page_text(out)
    assert f"External validation (3 patients, 0 events): {said}" in page
    assert f"No transport.json: {said}." in page
    # the same OUT_DIR, a clinical table without the outcome: the last run's validation goes
    shutil.rmtree(tmp_path / "cohort")
    no_outcome = _cohort(study, tmp_path, rows, lambda t: t.drop(columns=["os_months"]))
    lines.clear()
    apply_model(study / "model", no_outcome, out, weights="random", workers=0, echo=lines.append)
    said = "no outcome columns in the clinical table: predictions only"
    assert f"  {said}" in lines
    assert json.loads((out / "apply.json").read_text())["predictions_only"] == said
    assert not (out / "validation.json").exists() and not (out / "tables").exists()
    page = _page_text(out)
    assert "No outcome columns in the clinical table: predictions only (no validation.json)." in (
        page
    )


def test_the_case_mix_is_the_training_rows_de_identified_and_hashed(
    study_run, study_frame, tmp_path
):
    """model/case_mix.parquet: the nomograms' variables and the signature of every training
    patient, as the study coded them, without IDs or outcomes, rows sorted; hashed in the
    manifest (a changed file is refused); left out with [bundle] case_mix = false."""
    from toolkit.artifacts import file_hash

    study, _, _ = study_run
    config, frame, _ = study_frame
    bundle = ModelBundle.load(study / "model")
    case_mix = bundle.case_mix
    columns = [*bundle.variables, "signature"]
    assert list(case_mix.columns) == columns
    assert isinstance(case_mix.index, pd.RangeIndex)
    train = frame[frame["set"].isin(config.study.train_sets)][columns]
    expected = train.sort_values(columns).reset_index(drop=True)
    pd.testing.assert_frame_equal(case_mix, expected)
    manifest = json.loads((study / "model" / "model.json").read_text())
    entry = manifest["files"]["case_mix"]
    assert entry == {
        "path": "case_mix.parquet",
        "sha256": file_hash(study / "model" / entry["path"]),
    }
    model = tmp_path / "model"
    shutil.copytree(study / "model", model)
    changed = case_mix.assign(signature=case_mix["signature"] + 1.0)
    changed.to_parquet(model / "case_mix.parquet")
    with pytest.raises(BundleError, match=r"case_mix\.parquet: its SHA-256 differs"):
        ModelBundle.load(model)
    replace(bundle, case_mix=None).save(model)  # a stale file is removed with its entry
    assert not (model / "case_mix.parquet").exists()
    assert ModelBundle.load(model).case_mix is None


def test_bundle_case_mix_false_writes_no_patient_rows(study_run, study_frame):
    from toolkit.config import load_study, study_from_mapping
    from toolkit.contracts import Metrics
    from toolkit.imaging.manifest import study_manifest
    from toolkit.stats.nomogram import Nomogram
    from toolkit.study.bundle import from_study, scan_digests

    study, _, _ = study_run
    config, frame, models = study_frame
    bundle = ModelBundle.load(study / "model")
    raw = load_study(study / "cohort").as_written()
    off = study_from_mapping({**raw, "bundle": {"case_mix": False}})
    assert off.bundle.case_mix is False and config.bundle.case_mix is True
    train = frame[frame["set"].isin(config.study.train_sets)]
    made = from_study(
        off,
        models,
        {m: Nomogram.from_spec(bundle.nomograms[m]) for m in ("clinical", "integrated")},
        bundle.signature,
        train,
        cutoff=Metrics.read(study / "results" / "metrics.json").risk_groups["cutoff"],
        weights=bundle.weights,
        training=bundle.training,
        scans=scan_digests(study_manifest(config, study / "cohort"), train.index),
    )
    assert made.case_mix is None
    assert made.training_patients == bundle.training_patients
