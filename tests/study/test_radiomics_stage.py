"""The radiomics stage and the radiomics signature in the session's study run.

The study runs them by default (``[radiomics]`` absent from the synthetic study.toml):
features of every patient x reader, PyRadiomics' version and settings in the
provenance, and the radiomics signature from the same function as the deep one, its
files beside the deep ones with the ``_radiomics`` suffix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit.artifacts import read_json, read_parquet_provenance
from toolkit.contracts import RadiomicsFeature, SignatureSpec


def test_the_study_extracts_radiomics_features_of_every_patient_and_reader(study_run):
    study, _, lines = study_run
    table = pd.read_parquet(study / "results" / "tables" / "radiomics_features.parquet")
    crops = read_json(study / "crops" / "manifest.json")
    ok = [p for p, record in crops["patients"].items() if record["status"] == "ok"]
    readers = crops["readers"]
    assert list(zip(table["patient"], table["reader"], strict=True)) == [
        (p, r) for p in ok for r in readers
    ]
    names = [RadiomicsFeature.parse(c) for c in table.columns[2:]]
    assert {(n.phase, n.mode) for n in names} == {
        (phase, mode) for phase in ("arterial", "portal") for mode in ("3d", "2d")
    }
    assert table["portal_3d_original_shape_VoxelVolume"].gt(0).all()
    prov = read_parquet_provenance(study / "results" / "tables" / "radiomics_features.parquet")
    import radiomics

    assert prov["radiomics"]["pyradiomics"] == radiomics.__version__
    assert "toolkit.imaging.mesh" in prov["radiomics"]["extractor"]
    parameters = prov["radiomics"]["parameters"]
    assert list(parameters) == ["3d", "2d"]
    assert parameters["3d"]["setting"]["binWidth"] == 25.0
    assert parameters["2d"]["setting"]["force2D"] is True
    assert any(line.startswith("  radiomics ") for line in lines)
    # the stage read the volumes' boxes preprocessing kept for it, one per patient with a crop
    kept = sorted(path.stem for path in (study / "crops" / "volumes").glob("*.npz"))
    assert kept == sorted(ok)


def test_preprocessing_keeps_the_boxes_only_for_a_radiomics_stage_that_reads_them(study_run):
    from toolkit.config import load_study
    from toolkit.study.stages.preprocess import keeps_volumes

    study, _, _ = study_run
    config = load_study(study / "cohort")
    assert config.radiomics.enabled and keeps_volumes(config)
    off = config.model_copy(
        update={"radiomics": config.radiomics.model_copy(update={"enabled": False})}
    )
    assert not keeps_volumes(off)
    log = config.radiomics.model_copy(update={"image_types": ["Original", "LoG"]})
    assert not keeps_volumes(config.model_copy(update={"radiomics": log}))  # filters see the grid
    resampled = config.radiomics.model_copy(update={"resampled_spacing_mm": [1.0, 1.0, 1.0]})
    assert not keeps_volumes(config.model_copy(update={"radiomics": resampled}))


def test_the_radiomics_signature_sits_beside_the_deep_one(study_run):
    study, _, _ = study_run
    results, tables = study / "results", study / "results" / "tables"
    deep = SignatureSpec.read(results / "signature.json")
    spec = SignatureSpec.read(results / "signature_radiomics.json")
    assert spec.features and all(isinstance(f, RadiomicsFeature) for f in spec.features)
    assert spec.n_incomplete is not None and deep.n_incomplete is None
    assert "n_incomplete" not in read_json(results / "signature.json")
    for stem in ("signature_features", "signature_cv", "mrmr_ranking", "icc", "scores"):
        assert (tables / f"{stem}_radiomics.parquet").is_file(), stem
        assert (tables / f"{stem}.parquet").is_file(), stem
    icc = pd.read_parquet(tables / "icc_radiomics.parquet")
    assert all(RadiomicsFeature.is_feature(f) for f in icc["feature"])
    weights = pd.read_parquet(tables / "signature_features_radiomics.parquet")
    assert list(weights["feature"]) == [f.format() for f in spec.features]
    assert (weights["icc"] >= 0.75).all()
    scores = pd.read_parquet(tables / "scores_radiomics.parquet")
    assert list(scores.columns) == ["set", "signature_radiomics"]
    deep_scores = pd.read_parquet(tables / "scores.parquet")
    assert list(deep_scores.columns) == ["set", "signature"]
    assert scores.index.equals(deep_scores.index)
    assert np.isfinite(scores["signature_radiomics"]).all()


def test_features_nan_for_some_patient_are_left_out_and_counted(study_run):
    from toolkit.config import load_study, prepare_clinical, read_clinical
    from toolkit.imaging.manifest import study_manifest
    from toolkit.study.signature import RADIOMICS, build, feature_names

    study, _, _ = study_run
    config = load_study(study / "cohort")
    clinical = prepare_clinical(
        config,
        read_clinical(config, study / "cohort", study_manifest(config, study / "cohort")),
    )
    table = pd.read_parquet(study / "results" / "tables" / "radiomics_features.parquet")
    names = feature_names(table, config.imaging.phases, RADIOMICS)
    before = build(table, clinical.frame, config, RADIOMICS)
    assert before.n_incomplete == 0 and list(before.feature_names) == names
    holed = table.copy()
    gone = ["portal_3d_original_firstorder_Mean", "arterial_2d_original_glcm_Idmn"]
    holed.loc[holed.index[5], gone[0]] = np.nan  # one patient, one reader
    holed.loc[holed["patient"] == holed["patient"].iloc[-1], gone[1]] = np.nan
    after = build(holed, clinical.frame, config, RADIOMICS)
    assert after.n_incomplete == 2
    assert list(after.feature_names) == [n for n in names if n not in gone]


def test_radiomics_disabled_computes_nothing(study_run):
    from toolkit.config import load_study
    from toolkit.study.run import resolve, study_context
    from toolkit.study.stages import radiomics, signature_radiomics

    study, _, _ = study_run
    paths = resolve(study)
    config = load_study(paths.cohort)
    off = config.model_copy(
        update={"radiomics": config.radiomics.model_copy(update={"enabled": False})}
    )
    lines: list[str] = []
    ctx = study_context(paths, off, weights="random", workers=0, echo=lines.append)
    assert radiomics.run(ctx, {"crops": paths.crops}) == {"radiomics": None}
    assert signature_radiomics.run(ctx, {"radiomics": None, "clinical": None}) == {
        "signature_radiomics": None,
        "scores_radiomics": None,
    }
    assert lines == ["    radiomics disabled ([radiomics] enabled = false)"]


@pytest.mark.parametrize("name", ["signature.json", "signature_radiomics.json"])
def test_each_signature_file_reads_back_byte_for_byte(study_run, tmp_path, name):
    study, _, _ = study_run
    spec = SignatureSpec.read(study / "results" / name)
    spec.write(tmp_path / name)
    assert (tmp_path / name).read_bytes() == (study / "results" / name).read_bytes()


def test_the_synthetic_truth_is_set_beside_the_radiomics_signature(study_run):
    from scipy.stats import spearmanr

    study, _, _ = study_run
    tables = study / "results" / "tables"
    table = pd.read_parquet(tables / "radiomics_truth.parquet")
    assert list(table.columns) == ["truth", "kind", "feature", "rho", "p", "n"]
    truth = pd.read_csv(study / "cohort" / "ground_truth" / "truth.csv", dtype={"patient": str})
    truth = truth.set_index("patient")
    scores = pd.read_parquet(tables / "scores_radiomics.parquet")["signature_radiomics"]
    spec = SignatureSpec.read(study / "results" / "signature_radiomics.json")
    for quantity, rows in table.groupby("truth", sort=False):
        kinds = list(rows["kind"])
        assert kinds == ["signature"] + ["signature feature"] * len(spec.features) + [
            "best feature"
        ]
        rho, p = spearmanr(scores, truth.loc[scores.index, quantity])
        assert rows.iloc[0]["rho"] == rho and rows.iloc[0]["p"] == p
        assert rows.iloc[0]["n"] == len(scores)
    # the measured volume must recover the simulated one: a wiring check, not a finding
    volume = table[(table["truth"] == "tumour_volume_ml") & (table["kind"] == "best feature")]
    assert volume["rho"].iloc[0] > 0.9, volume
