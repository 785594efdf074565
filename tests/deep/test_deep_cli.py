"""`sigkit weights import|info|fetch` and `sigkit extract` through the real Typer app."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from deep_helpers import write_patient_crops
from typer.testing import CliRunner

from toolkit.artifacts import read_parquet_provenance
from toolkit.cli import app


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.setenv("SIGKIT_WEIGHTS", str(tmp_path / "weights-cache"))
    return CliRunner()


@pytest.fixture
def crops_dir(tmp_path):
    folder = tmp_path / "crops"
    write_patient_crops(folder, "P001", seed=11)
    write_patient_crops(folder, "P002", seed=12)
    return folder


def test_extract_without_weights_refuses_and_says_how_to_import(runner, crops_dir, tmp_path):
    result = runner.invoke(app, ["extract", str(crops_dir), "--out", str(tmp_path / "f.parquet")])
    assert result.exit_code == 1
    assert "sigkit weights import FILE" in result.output
    assert not (tmp_path / "f.parquet").exists()


def test_extract_with_random_weights_labels_every_output(runner, crops_dir, tmp_path):
    out = tmp_path / "features.parquet"
    args = ["extract", str(crops_dir), "--out", str(out), "--weights", "random"]
    result = runner.invoke(app, [*args, "--batch-size", "3", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "RANDOM WEIGHTS" in result.output
    table = pd.read_parquet(out)
    assert table.shape == (4, 2050)
    assert read_parquet_provenance(out)["weights"] == "random"


def test_weights_import_then_info_then_extract(runner, keras_reference, crops_dir, tmp_path):
    result = runner.invoke(app, ["weights", "info"])
    assert result.exit_code == 0 and json.loads(result.output)["installed"] is False
    with pytest.warns(UserWarning, match="does not match the hash Keras publishes"):
        result = runner.invoke(app, ["weights", "import", str(keras_reference.keras2_h5)])
    assert result.exit_code == 0, result.output
    assert "NOT verified" in result.output
    info = json.loads(runner.invoke(app, ["weights", "info"]).output)
    assert info["installed"] and info["weights"] == "imagenet-keras"
    assert info["weights_source"] == keras_reference.keras2_h5.name
    out = tmp_path / "features.parquet"
    args = ["extract", str(crops_dir), "--out", str(out), "--batch-size", "3", "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    provenance = read_parquet_provenance(out)
    assert provenance["weights"] == "imagenet-keras"
    assert provenance["weights_sha256"] == info["weights_sha256"]


def test_weights_import_of_a_bad_file_fails_cleanly(runner, tmp_path):
    bad = tmp_path / "x.h5"
    bad.write_text("no")
    result = runner.invoke(app, ["weights", "import", str(bad)])
    assert result.exit_code == 1 and "not an HDF5 file" in result.output


def test_weights_fetch_without_network_fails_cleanly(runner, monkeypatch):
    monkeypatch.setenv("SIGKIT_WEIGHTS_URL", "http://127.0.0.1:9/nothing.h5")  # discard port
    result = runner.invoke(app, ["weights", "fetch", "--timeout", "5"])
    assert result.exit_code == 1 and "sigkit weights import FILE" in result.output
