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


IMPUTED_M, IMPUTED_SEED = 3, 5
IMPUTED_DELETED = ("afp", "alt")  # 10 % of each deleted at random


@pytest.fixture(scope="session")
def imputed_study(synthetic_study, tmp_path_factory):
    """The session study run again with validation.missing = "multiple-imputation"
    (m = 3, seed 5) after 10 % of AFP and ALT were deleted at random, from its cached
    features: (study_dir, outcome, echoed lines, {column: deleted patients}). Shared by
    tests/study (models, bundle, R checks) and tests/reports (the calculator under
    imputation). Read-only: copy it before modifying."""
    import shutil

    import numpy as np
    import pandas as pd

    from toolkit.study.run import run_study

    source, _, _ = synthetic_study
    study = tmp_path_factory.mktemp("imputed_study") / "study"
    shutil.copytree(source, study)
    toml = study / "cohort" / "study.toml"
    text = toml.read_text()
    assert 'missing = "complete-case"\n' in text, "synth's study.toml changed its missing"
    toml.write_text(
        text.replace(
            'missing = "complete-case"\n',
            f'missing = "multiple-imputation"\nm = {IMPUTED_M}\nimputation_seed = {IMPUTED_SEED}\n',
        )
    )
    path = study / "cohort" / "clinical.csv"
    table = pd.read_csv(path, dtype=str)
    rng = np.random.default_rng(11)
    deleted = {}
    for column in IMPUTED_DELETED:
        rows = rng.choice(len(table), size=round(0.1 * len(table)), replace=False)
        table.loc[rows, column] = np.nan
        deleted[column] = set(table.loc[rows, table.columns[0]])
    table.to_csv(path, index=False)
    lines: list[str] = []
    outcome = run_study(study, weights="random", workers=0, report=False, echo=lines.append)
    return study, outcome, lines, deleted
