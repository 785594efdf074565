"""The study tests share the session's one small synthetic study run.

`synthetic_study` (tests/conftest.py) is 48 patients on a coarse grid (same
field of view, 8x fewer voxels), random DenseNet weights and fewer bootstrap
replicates: the smallest settings that still run every stage (preprocess,
extract, ICC, mRMR, elastic-net CV, stepwise, nomograms, validation, R
cross-check, CAM). The report tests use the same run, so CI runs it once.
"""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def study_run(synthetic_study):
    return synthetic_study


@pytest.fixture
def study_copy(study_run, tmp_path):
    """A private copy of the finished study to modify."""
    study, _, _ = study_run
    target = tmp_path / "study"
    shutil.copytree(study, target)
    return target
