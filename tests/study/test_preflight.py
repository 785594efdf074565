"""`sigkit study run` checks its inputs before any stage, and reports every problem at once."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from toolkit.config import StudyInputError
from toolkit.study.run import run_study

INJECTED = [
    "manifest.csv: set 'test' is in neither study.train_sets ['train'] nor "
    "study.validation_sets ['validation'] (1 patient: P008)",
    "clinical.csv: 1 patient listed more than once (P002)",
    "clinical.csv: no column 'alt' (named by variables in study.toml)",
    "clinical.csv: 1 patient not in manifest.csv (P099); add their images to the manifest "
    "or remove their rows",
    "clinical.csv: os_months has 1 negative value (P005)",
    "clinical.csv: os_event must be coded 0 (censored) or 1 (event); found 2 in 3 patients "
    "(P001, P003, P006)",
    "clinical.csv: bclc holds 'D', not among its levels ['A', 'B', 'C'] in study.toml, "
    "in 1 patient (P007)",
    "clinical.csv: afp is numeric but holds text in 2 patients (P002: 'unknown', P004: '>1000')",
]


@pytest.fixture
def broken_study(tiny_cohort, tmp_path):
    """The tiny synthetic cohort with eight problems in its manifest and clinical table."""
    study = tmp_path / "study"
    shutil.copytree(tiny_cohort, study / "cohort")
    clinical = pd.read_csv(study / "cohort" / "clinical.csv", dtype={"patient": str})
    clinical = clinical.set_index("patient").drop(columns=["alt"])
    clinical["afp"] = clinical["afp"].astype(object)
    clinical.loc[["P002", "P004"], "afp"] = ["unknown", ">1000"]
    clinical.loc[["P001", "P003", "P006"], "os_event"] = 2
    clinical.loc["P005", "os_months"] = -1.5
    clinical.loc["P007", "bclc"] = "D"
    extra = clinical.loc[["P002", "P003"]].copy()
    extra.index = pd.Index(["P002", "P099"], name="patient")
    pd.concat([clinical, extra]).to_csv(study / "cohort" / "clinical.csv")
    manifest = pd.read_csv(study / "cohort" / "manifest.csv", dtype=str)
    manifest.loc[manifest["patient"] == "P008", "set"] = "test"
    manifest.to_csv(study / "cohort" / "manifest.csv", index=False)
    return study


def test_run_reports_every_input_problem_before_any_stage(broken_study):
    lines: list[str] = []
    with pytest.raises(StudyInputError) as caught:
        run_study(broken_study, weights="random", workers=0, report=False, echo=lines.append)
    assert sorted(caught.value.problems) == sorted(INJECTED)
    for absent in ("crops", "features", "results", ".sigkit/stages"):
        assert not (broken_study / absent).exists(), absent
    assert not any("running" in line for line in lines), lines


def test_cli_prints_every_problem_on_its_own_line(broken_study):
    from toolkit.cli import app

    result = CliRunner().invoke(app, ["study", "run", str(broken_study), "--weights", "random"])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == f"error: {len(INJECTED)} problems in the study's inputs:"
    assert sorted(lines[1:]) == sorted(f"  - {p}" for p in INJECTED)
    assert not (broken_study / "crops").exists()
