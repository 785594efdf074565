"""The methods' predictors paragraph says how the handcrafted features were extracted,
from what the radiomics stage recorded (its table's provenance), and nothing when the run
computed none."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from toolkit.artifacts import write_parquet
from toolkit.config import Radiomics
from toolkit.imaging import radiomics as rad
from toolkit.report.methods import predictors


def _text(tmp_path, section: Radiomics | None) -> str:
    if section is not None:
        params = rad.extractor_parameters(rad.parameters_from_settings(section), section.modes)
        settings = rad.RadiomicsSettings(("arterial", "portal"), params)
        table = pd.DataFrame({"patient": ["P001"], "reader": ["r1"]})
        path = tmp_path / "results" / "tables" / "radiomics_features.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_parquet(path, table, {"radiomics": settings.as_dict()})
    settings = {"imaging": {"readers": ["r1", "r2"]}, "variables": []}
    results = SimpleNamespace(settings=settings, weights="random", results=tmp_path / "results")
    return predictors(results)


def test_the_extraction_is_described_from_the_recorded_settings(tmp_path):
    text = _text(
        tmp_path,
        Radiomics(
            mode="both",
            image_types=["Original", "LoG"],
            log_sigmas=[1.0, 3.0],
            feature_classes=["shape", "firstorder", "glcm"],
            bin_width=10,
            resampled_spacing_mm=[1, 1, 2.5],
        ),
    )
    for part in (
        f"PyRadiomics {rad.pyradiomics_version()}",
        "in 3-D on the tumour volume and in 2-D (axial, PyRadiomics' force2D)",
        "image types Original and LoG",
        "feature classes shape, firstorder, glcm",
        "bin width 10, resampled to 1 × 1 × 2.5 mm",
        "diameters identical",
    ):
        assert part in text, part


def test_a_2d_only_run_names_its_mode_and_the_shape_class(tmp_path):
    text = _text(tmp_path, Radiomics(mode="2d"))
    assert "in 2-D (axial" in text and "in 3-D" not in text
    assert "feature classes shape, firstorder, glcm, glrlm, glszm, gldm, ngtdm" in text
    assert "bin width 25." in text


def test_no_radiomics_table_no_sentence(tmp_path):
    assert "Handcrafted" not in _text(tmp_path, None)
