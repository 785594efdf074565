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


@pytest.fixture(scope="session")
def study_frame(study_run):
    """(config, model frame, models) of the session study: every patient with features, its
    set, outcome, variables and signature scores (deep, and radiomics when the run made
    it); models.json's ``FittedModel``s."""
    import pandas as pd

    from toolkit.config import load_study, prepare_clinical, read_clinical
    from toolkit.contracts import StudyModels
    from toolkit.imaging.manifest import study_manifest
    from toolkit.study.nomograms import FittedModel

    study, _, _ = study_run
    cohort = study / "cohort"
    config = load_study(cohort)
    data = prepare_clinical(config, read_clinical(config, cohort, study_manifest(config, cohort)))
    scores = pd.read_parquet(study / "results" / "tables" / "scores.parquet")
    frame = data.frame.loc[[p for p in data.frame.index if p in scores.index]].copy()
    frame["signature"] = scores.loc[frame.index, "signature"].to_numpy(float)
    radiomics = study / "results" / "tables" / "scores_radiomics.parquet"
    if radiomics.is_file():
        values = pd.read_parquet(radiomics).loc[frame.index, "signature_radiomics"]
        frame["signature_radiomics"] = values.to_numpy(float)
    models = StudyModels.read(study / "results" / "models.json", model=FittedModel).models
    return config, frame, models
