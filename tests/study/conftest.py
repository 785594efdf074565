"""One small synthetic study run shared by the study tests (session scope).

48 patients on a coarse grid (same field of view, 8x fewer voxels), random
DenseNet weights, fewer bootstrap replicates: the smallest settings that still
run every stage (preprocess, extract, ICC, mRMR, elastic-net CV, stepwise,
nomograms, validation, R cross-check, CAM).
"""

from __future__ import annotations

import shutil

import pytest

N_PATIENTS = 48


def _tune(path):
    text = path.read_text()
    text = text.replace(
        "n_bootstrap = 1000\n", "n_bootstrap = 200\ncalibration_bootstrap = 20\nmin_events = 5\n"
    )
    assert "calibration_bootstrap = 20" in text, "synth's study.toml changed its [validation]"
    path.write_text(text)


@pytest.fixture(scope="session")
def study_run(tmp_path_factory, r):
    from toolkit.study.run import run_study
    from toolkit.synth import generate_cohort
    from toolkit.synth.phantom import Grid

    study = tmp_path_factory.mktemp("study")
    grid = Grid(shape=(20, 128, 128), spacing=(1.6, 1.6, 5.0))
    generate_cohort(study / "cohort", n_patients=N_PATIENTS, seed=0, grid=grid, workers=1)
    _tune(study / "cohort" / "study.toml")
    lines: list[str] = []
    outcome = run_study(study, weights="random", workers=0, report=False, echo=lines.append)
    return study, outcome, lines


@pytest.fixture
def study_copy(study_run, tmp_path):
    """A private copy of the finished study to modify."""
    study, _, _ = study_run
    target = tmp_path / "study"
    shutil.copytree(study, target)
    return target
