"""The typed names of toolkit/contracts.py, and docs/contracts.md kept in step with them."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from toolkit import contracts
from toolkit.artifacts import write_json
from toolkit.contracts import (
    ContractError,
    FeatureName,
    RadiomicsFeature,
    Term,
    feature_names,
    parse_feature,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "contracts.md"


def _records() -> dict[str, type]:
    return {
        name: obj
        for name, obj in vars(contracts).items()
        if dataclasses.is_dataclass(obj) and obj.__module__ == contracts.__name__
    }


def _doc_section(name: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"### `{name}`")
    end = text.find("\n#", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_every_record_and_field_is_documented():
    text = DOC.read_text(encoding="utf-8")
    for name, record in _records().items():
        assert f"### `{name}`" in text, f"docs/contracts.md has no section for {name}"
        section = _doc_section(name)
        for field in dataclasses.fields(record):
            assert f"| `{field.name}` |" in section, f"{name}.{field.name} is not in the doc"


def test_every_documented_record_exists_with_exactly_its_fields():
    records = _records()
    documented = re.findall(r"^### `(\w+)`", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert documented, "docs/contracts.md documents no record"
    for name in documented:
        assert name in records, f"docs/contracts.md documents {name}, not in toolkit/contracts.py"
        rows = re.findall(r"^\| `(\w+)` \|", _doc_section(name), flags=re.MULTILINE)
        assert rows == [f.name for f in dataclasses.fields(records[name])]


@pytest.mark.parametrize(
    ("text", "record"),
    [
        ("arterial_0012", FeatureName("arterial", 12)),
        ("portal_1023", FeatureName("portal", 1023)),
        ("phase2_0000", FeatureName("phase2", 0)),
    ],
)
def test_feature_name_round_trips(text, record):
    assert FeatureName.parse(text) == record
    assert record.format() == text


def test_feature_names_are_the_columns_in_index_order():
    assert feature_names("portal", 3) == ["portal_0000", "portal_0001", "portal_0002"]
    assert FeatureName.is_feature("arterial_0007")
    assert not FeatureName.is_feature("patient")
    assert not FeatureName.is_feature("arterial_7")


@pytest.mark.parametrize(
    "text", ["arterial_12", "arterial_00012", "late_arterial_0001", "_0001", "arterial0001", ""]
)
def test_feature_name_refuses_bad_text_naming_it(text):
    with pytest.raises(ContractError, match=re.escape(repr(text))):
        FeatureName.parse(text)


@pytest.mark.parametrize(
    ("phase", "index", "message"),
    [
        ("late_arterial", 1, "underscore"),
        ("", 1, "letters and digits"),
        ("arterial", -1, "0 to 9999"),
        ("arterial", 10_000, "0 to 9999"),
        ("arterial", 1.0, "not an integer"),
        ("arterial", True, "not an integer"),
    ],
)
def test_feature_name_refuses_bad_fields(phase, index, message):
    with pytest.raises(ContractError, match=message):
        FeatureName(phase, index)


@pytest.mark.parametrize(
    ("text", "record"),
    [
        ("bclc[C]", Term("bclc", "C")),
        ("alt", Term("alt")),
        ("signature", Term("signature", None)),
        ("afp[>=400]", Term("afp", ">=400")),
        ("tumour_number[2_or_more]", Term("tumour_number", "2_or_more")),
        ("child.pugh[B 7]", Term("child.pugh", "B 7")),
    ],
)
def test_term_round_trips(text, record):
    assert Term.parse(text) == record
    assert record.format() == text


@pytest.mark.parametrize("text", ["bclc[C", "bclc[C]x", "bclc[[C]]", "bclc[]", "[C]", "1bclc"])
def test_term_refuses_bad_text(text):
    with pytest.raises(ContractError, match=re.escape(repr(text))):
        Term.parse(text)


@pytest.mark.parametrize(
    ("variable", "level", "message"),
    [
        ("bclc", "C]", "square brackets"),
        ("bclc", "[C", "square brackets"),
        ("bclc", "", "non-empty"),
        ("bclc", " C", "spaces"),
        ("bclc", 3, "not a string"),
        ("bc lc", "C", "letters, digits"),
        ("_bclc", "C", "starting with a letter"),
    ],
)
def test_term_refuses_bad_fields(variable, level, message):
    with pytest.raises(ContractError, match=message):
        Term(variable, level)


# ------------------------------------------------------------------ records of results/*.json

_PROVENANCE = {"sigkit_version": "0.1.0", "weights": "random", "synthetic": True}
_ICC = {
    "n_features": 2048,
    "n_kept": 1963,
    "n_degenerate_removed": 23,
    "threshold": 0.75,
    "type": "ICC2",
}
_SIGNATURE = {
    "features": ["arterial_0702", "portal_0366"],
    "coefficients": [-0.012571410464146901, 0.1],
    "l1_ratio": 0.1,
    "penalty": "min",
    "penalty_value": 1.0626257880237053,
    "formula": "signature = -0.0125714 * (arterial_0702 - 0.0002902) / 0.00113543 ...",
    "standardisation": {"means": [0.0002902001098846085, 0.0], "scales": [1e-3, 1.0]},
    "note": "",
    "icc": _ICC,
    "provenance": _PROVENANCE,
}
_MODEL = {
    "name": "clinical",
    "variables": ["bclc", "alt"],
    "terms": ["bclc[B]", "bclc[C]", "alt"],
    "coef": [1.1788326636287478, 1.5976957984281768, 0.01],
    "se": [0.5235241379473142, 0.4897670357762602, 0.002],
    "p": [0.024339622684689526, 0.0011056881688538186, 1e-06],
    "means": [0.30833333333333335, 0.5166666666666667, 45.5],
    "lp_centre": 2.3597842258017745,
    "baseline_survival": {"12": 0.8044886719917436, "24": 0.5691015538453381},
    "loglik": -320.20895937535346,
    "aic": 648.4179187507069,
    "levels": {"bclc": ["A", "B", "C"]},
    "note": "",
}
_NOMOGRAM = {
    "model": "clinical",
    "time_unit": "months",
    "points_per_lp": 62.18491862099498,
    "lp_centre": 2.1807390065522263,
    "lp_at_zero_points": -1.250749852256272,
    "baseline_survival": {"12": 0.8074766434973091},
    "predictors": [
        {
            "name": "bclc",
            "label": "BCLC stage",
            "kind": "categorical",
            "levels": [{"value": "A", "lp": 0.0, "points": 0.0}],
        },
    ],
    "provenance": _PROVENANCE,
}
_METRICS = {
    "provenance": _PROVENANCE,
    "cohort": {"train": {"n": 120, "events": 87}},
    "icc": _ICC,
    "cindex": {"train": {"signature": {"c": 0.6525897852373218, "n_bootstrap": 1000}}},
    "comparisons": {"train": {"integrated_vs_clinical": {"diff": 0.02, "p": 0.038}}},
    "calibration": {"train": {"clinical": {"12": {"rmse": 0.0823203457983035}}}},
    "risk_groups": {"cutoff": 2.5, "train": {"n_high": 60, "n_low": 60, "p": 3e-09}},
    "td_auc": {"train": {"signature": {"12": 0.6796363837641054}}},
    "median_survival": {"train": {"os": {"median": None, "lower": 19.49}}},
    "selection_notes": ["bclc: one level only"],
    "stages": [{"name": "preprocess", "seconds": 177.09030430499843, "skipped": False}],
    "r_check_passed": True,
}
_R_CHECK = {
    "passed": False,
    "checks": [
        {
            "name": "coxph coefficients, signature model",
            "ours": 5.703231235167424,
            "r": 5.7032312351674195,
            "diff": 4.440892098500626e-15,
            "tolerance": 1e-07,
            "passed": True,
            "n_values": 1,
        },
        {
            "name": "td_auc: R computation failed",
            "ours": None,
            "r": None,
            "diff": None,
            "tolerance": None,
            "passed": False,
            "message": "RComputationError: singular",
            "notes": ["R demo: first"],
        },
    ],
    "provenance": _PROVENANCE,
}
_FILES = [
    (contracts.SignatureSpec, _SIGNATURE),
    (
        contracts.StudyModels,
        {"models": {"clinical": _MODEL}, "selection_notes": [], "provenance": _PROVENANCE},
    ),
    (contracts.NomogramSpec, _NOMOGRAM),
    (contracts.Metrics, _METRICS),
    (contracts.RCheck, _R_CHECK),
]


@pytest.mark.parametrize(("record", "data"), _FILES, ids=lambda x: getattr(x, "__name__", ""))
def test_a_record_writes_its_file_byte_for_byte_as_read(record, data, tmp_path):
    written = write_json(tmp_path / "written.json", data)
    again = record.read(written).write(tmp_path / "again.json")
    assert again.read_bytes() == written.read_bytes()
    assert record.from_json(data).to_json() == data


def test_records_are_typed():
    signature = contracts.SignatureSpec.from_json(_SIGNATURE)
    assert signature.features == (FeatureName("arterial", 702), FeatureName("portal", 366))
    assert signature.icc == contracts.IccSummary(2048, 1963, 23, 0.75, "ICC2")
    model = contracts.CoxModel.from_json(_MODEL)
    assert model.terms == (Term("bclc", "B"), Term("bclc", "C"), Term("alt"))
    assert model.levels == {"bclc": ("A", "B", "C")}
    metrics = contracts.Metrics.from_json(_METRICS)
    assert metrics.stages == (contracts.Stage("preprocess", 177.09030430499843, False),)
    r_check = contracts.RCheck.from_json(_R_CHECK)
    assert [c.name for c in r_check.failed] == ["td_auc: R computation failed"]
    assert r_check.checks[1].notes == ("R demo: first",)


def test_absent_fields_are_not_written():
    partial = {k: v for k, v in _METRICS.items() if k not in ("stages", "r_check_passed")}
    metrics = contracts.Metrics.from_json(partial)
    assert metrics.stages is None and metrics.r_check_passed is None
    assert list(metrics.to_json()) == list(partial)
    bare = {k: v for k, v in _SIGNATURE.items() if k not in ("icc", "provenance")}
    assert contracts.SignatureSpec.from_json(bare).to_json() == bare


def test_a_file_lacking_a_key_is_refused_naming_file_and_key(tmp_path):
    data = {k: v for k, v in _MODEL.items() if k != "lp_centre"}
    path = write_json(tmp_path / "models.json", {"models": {"clinical": data}})
    with pytest.raises(ContractError, match=r"models\.json: model 'clinical': no 'lp_centre'"):
        contracts.StudyModels.read(path)
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(ContractError, match=r"bad\.json: cannot be read as JSON"):
        contracts.RCheck.read(tmp_path / "bad.json")


def test_a_bad_name_in_a_file_is_refused_quoting_it():
    with pytest.raises(ContractError, match="'arterial_12'"):
        contracts.SignatureSpec.from_json({**_SIGNATURE, "features": ["arterial_12", "p_0001"]})
    with pytest.raises(ContractError, match=re.escape("'bclc[C'")):
        contracts.CoxModel.from_json({**_MODEL, "terms": ["bclc[B]", "bclc[C", "alt"]})


def test_records_refuse_columns_of_different_lengths():
    with pytest.raises(ContractError, match="3 terms but 2 coefficients"):
        contracts.CoxModel.from_json({**_MODEL, "coef": [1.0, 2.0]})
    with pytest.raises(ContractError, match="2 features, 1 coefficients"):
        contracts.SignatureSpec.from_json({**_SIGNATURE, "coefficients": [1.0]})


def test_every_handed_on_result_is_documented_with_the_stage_that_makes_it():
    from toolkit.study.pipeline import PIPELINE

    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## What the stages hand on") : text.index("## Result records")]
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \|", section, flags=re.MULTILINE)
    declared = [(name, stage.name) for stage in PIPELINE for name in stage.outputs]
    assert rows == declared


@pytest.mark.parametrize(
    ("text", "record"),
    [
        (
            "portal_3d_original_shape_VoxelVolume",
            RadiomicsFeature("portal", "3d", "original", "shape", "VoxelVolume"),
        ),
        (
            "arterial_2d_original_shape2D_PixelSurface",
            RadiomicsFeature("arterial", "2d", "original", "shape2D", "PixelSurface"),
        ),
        (
            "portal_3d_log-sigma-1-0-mm-3D_firstorder_10Percentile",
            RadiomicsFeature("portal", "3d", "log-sigma-1-0-mm-3D", "firstorder", "10Percentile"),
        ),
        (
            "arterial_3d_wavelet-LLH_glcm_Idmn",
            RadiomicsFeature("arterial", "3d", "wavelet-LLH", "glcm", "Idmn"),
        ),
    ],
)
def test_radiomics_feature_round_trips_and_keeps_pyradiomics_name(text, record):
    assert RadiomicsFeature.parse(text) == record
    assert record.format() == text
    assert RadiomicsFeature.is_feature(text) and not FeatureName.is_feature(text)
    assert parse_feature(text) == record
    assert text.endswith(record.pyradiomics_name)
    assert RadiomicsFeature.of(record.phase, record.mode, record.pyradiomics_name) == record


@pytest.mark.parametrize(
    "text",
    [
        "portal_original_shape_VoxelVolume",  # no mode
        "portal_3D_original_shape_VoxelVolume",  # the mode is lower case
        "portal_3d_original_shape",  # no feature
        "portal_3d_original_shape_Voxel_Volume",  # one part too many
        "late_portal_3d_original_shape_VoxelVolume",  # a phase with an underscore
        "portal_3d__shape_VoxelVolume",
        "",
    ],
)
def test_radiomics_feature_refuses_bad_text_naming_it(text):
    assert not RadiomicsFeature.is_feature(text)
    with pytest.raises(ContractError, match=re.escape(repr(text))):
        RadiomicsFeature.parse(text)


def test_a_feature_of_either_source_is_parsed_and_other_text_refused():
    assert parse_feature("arterial_0012") == FeatureName("arterial", 12)
    with pytest.raises(ContractError, match="expected a feature name, deep"):
        parse_feature("arterial_12")
    with pytest.raises(ContractError, match="mode '4d'"):
        RadiomicsFeature("portal", "4d", "original", "shape", "VoxelVolume")
