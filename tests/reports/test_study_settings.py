"""The report's study settings come through toolkit.config: study.toml as written,
validated, or the copy metrics.json recorded when the study folder has no study.toml."""

from __future__ import annotations

import json
import tomllib

import pytest

from toolkit.config import StudyInputError
from toolkit.contracts import Metrics
from toolkit.report.study import load
from toolkit.synth.cohort import STUDY_TOML

PRIMARY_LAST = STUDY_TOML.replace(
    'readers = ["reader1_a", "reader1_b", "reader2"]',
    'readers = ["reader2", "reader1_b", "reader1_a"]',
)


def _results(study_dir, recorded=None):
    provenance = {"synthetic": True}
    if recorded is not None:
        provenance["settings"] = {"stage_key": "k", "study_toml": recorded}
    sections = ("cohort", "cindex", "comparisons", "calibration", "risk_groups", "td_auc")
    empty = {section: {} for section in sections}
    (study_dir / "results").mkdir(parents=True)
    Metrics(provenance=provenance, icc=None, median_survival={}, **empty).write(
        study_dir / "results" / "metrics.json"
    )
    return study_dir


def test_settings_are_study_toml_as_written(tmp_path):
    study = _results(tmp_path / "study")
    (study / "cohort").mkdir()
    (study / "cohort" / "study.toml").write_text(PRIMARY_LAST, encoding="utf-8")
    assert load(study).settings == tomllib.loads(PRIMARY_LAST)


def test_without_study_toml_the_recorded_copy_is_read_and_validated(tmp_path):
    recorded = json.loads(json.dumps(tomllib.loads(PRIMARY_LAST)))  # as metrics.json holds it
    assert load(_results(tmp_path / "a", recorded)).settings == recorded
    assert load(_results(tmp_path / "b")).settings == {}
    recorded["imaging"]["crop_size"] = 256
    with pytest.raises(StudyInputError, match=r"metrics\.json's study_toml: imaging\.crop_size"):
        load(_results(tmp_path / "c", recorded))


def test_a_bad_study_toml_is_refused_naming_the_setting(tmp_path):
    study = _results(tmp_path / "study")
    toml = STUDY_TOML.replace("crop_size = 224", "crop_size = 256")
    (study / "study.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(
        StudyInputError, match=r"study\.toml: imaging\.crop_size: crop_size must be"
    ):
        load(study)
