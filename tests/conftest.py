"""Shared test fixtures.

Tests that compare with R need R: `make test` installs it, so a missing R is a
failure here, never a skip.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest


@pytest.fixture(scope="session")
def r():
    """The rbridge module, with R loaded; fails (does not skip) when R is missing."""
    from toolkit import rbridge

    if not rbridge.r_available():
        pytest.fail("R with rpy2 is required for this test; run `make test`, which installs it")
    return rbridge


@pytest.fixture(scope="session")
def pbc(r):
    return r.dataset("pbc")


@pytest.fixture(scope="session")
def lung(r):
    return r.dataset("lung")


@pytest.fixture(scope="session")
def veteran(r):
    return r.dataset("veteran")


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory):
    """An 8-patient synthetic cohort on a small grid (16 x 96 x 96, 2 x 2 x 5 mm); read-only."""
    from toolkit.synth import Grid, generate_cohort

    out = tmp_path_factory.mktemp("tiny_cohort")
    generate_cohort(
        out, 8, seed=3, grid=Grid(shape=(16, 96, 96), spacing=(2.0, 2.0, 5.0)), workers=1
    )
    return out


@pytest.fixture(scope="session")
def synthetic_study(tmp_path_factory, r):
    """One small synthetic study run for the whole session: (study_dir, outcome, echoed lines).

    The settings of tests/study's ``study_run`` (48 patients on a coarse grid,
    random weights, 200 bootstrap replicates, 20 calibration bootstraps, 20 resamples of
    the whole-procedure bootstrap), built
    once and shared by tests/study and tests/reports (``study_run`` can simply
    return this fixture). Read-only: copy it before modifying.
    """
    from toolkit.study.run import run_study
    from toolkit.synth import Grid, generate_cohort

    study = tmp_path_factory.mktemp("synthetic_study")
    grid = Grid(shape=(20, 128, 128), spacing=(1.6, 1.6, 5.0))
    generate_cohort(study / "cohort", n_patients=48, seed=0, grid=grid, workers=1)
    toml = study / "cohort" / "study.toml"
    text = toml.read_text().replace(
        "n_bootstrap = 1000\n", "n_bootstrap = 200\ncalibration_bootstrap = 20\nmin_events = 5\n"
    )
    assert "calibration_bootstrap = 20" in text, "synth's study.toml changed its [validation]"
    text = text.replace("\nB = 50\n", "\nB = 20\n")  # the fewest resamples allowed
    assert "\nB = 20\n" in text, "synth's study.toml changed its [internal_validation]"
    toml.write_text(text)
    lines: list[str] = []
    outcome = run_study(study, weights="random", workers=0, report=False, echo=lines.append)
    return study, outcome, lines
