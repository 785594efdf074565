"""The [imaging] slice choice through the study: the stages' keys, the ICC table's provenance
and the methods text (toolkit/study/stages/{preprocess,signature}.py, toolkit/report/methods.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from toolkit.config import loads_study
from toolkit.synth.cohort import STUDY_TOML

# the preprocess stage's settings of a one-slice study before slices existed (main at 9eb682f):
# config.imaging.model_dump(by_alias=True)
ONE_SLICE_STAGE_SETTINGS = [
    "phases", "readers", "primary_reader", "crop_size", "zscore", "register",
    "spacing_mm", "mask_phase",
]  # fmt: skip


def _config(setting: str = ""):
    return loads_study(STUDY_TOML.replace("[imaging]\n", f"[imaging]\n{setting}\n"))


def test_a_one_slice_study_keeps_its_preprocess_stage_key():
    from toolkit.study.stages.preprocess import crop_settings

    config = _config()
    settings = crop_settings(config)
    assert list(settings) == ONE_SLICE_STAGE_SETTINGS
    dumped = config.imaging.model_dump(by_alias=True)
    assert settings == {k: dumped[k] for k in ONE_SLICE_STAGE_SETTINGS}
    # pooling does not change the crops; slices does
    assert crop_settings(_config('pooling = "max"')) == settings
    assert crop_settings(_config("slices = 3"))["slices"] == 3
    assert "pooling" not in crop_settings(_config('slices = 3\npooling = "max"'))


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("", {"slices": 1}),
        ('slices = 5\npooling = "max"', {"slices": 5, "pooling": "max"}),
        ('slices = "all"', {"slices": "all", "pooling": "mean"}),
    ],
)
def test_the_icc_table_names_the_slice_choice_its_features_came_from(setting, named):
    from toolkit.study.stages.signature import icc_provenance

    prov = {"stage_key": "k", "weights": "random"}
    assert icc_provenance(prov, _config(setting)) == prov | {"features_from": named}


def _methods_text(imaging: dict) -> str:
    from toolkit.report.methods import predictors

    settings = {"imaging": {"readers": ["r1", "r2"], **imaging}, "variables": []}
    return predictors(SimpleNamespace(settings=settings, weights="random"))


def test_methods_say_which_slices_and_how_they_were_pooled():
    one = _methods_text({})
    assert "on the axial slice with the largest tumour ROI a 224×224 crop" in one
    assert "pooled" not in one
    assert "pooled" not in _methods_text({"slices": 1, "pooling": "max"})
    three = _methods_text({"slices": 3, "pooling": "max"})
    assert (
        "on the 3 consecutive axial slices with tumour around the slice with the largest" in three
    )
    assert "pooled over the slices by their maximum feature by feature" in three
    assert "(ICC) filter below was computed on these pooled features" in three
    every = _methods_text({"slices": "all"})
    assert "on every axial slice with tumour" in every and "by their mean" in every
