import tomllib

import numpy as np
import pandas as pd
import SimpleITK as sitk

from toolkit.synth import Grid, centre_counts, generate_cohort
from toolkit.synth.phantom import longest_axial_diameter_mm

CLINICAL = [
    "ecog",
    "child_pugh",
    "tumour_number",
    "tumour_size_cm",
    "bclc",
    "hbv",
    "cirrhosis",
    "distribution",
    "afp",
    "alt",
    "ast",
    "hbsag",
]


def test_centre_counts_follow_the_reference_study():
    assert centre_counts(201) == {"A": 60, "B": 60, "C": 81}
    assert centre_counts(10) == {"A": 3, "B": 3, "C": 4}
    assert sum(centre_counts(57).values()) == 57


def test_cohort_folder_matches_the_contract(tiny_cohort):
    manifest = pd.read_csv(tiny_cohort / "manifest.csv")
    assert list(manifest.columns[:8]) == [
        "patient",
        "centre",
        "set",
        "arterial",
        "portal",
        "mask_reader1_a",
        "mask_reader1_b",
        "mask_reader2",
    ]
    assert set(manifest["set"]) == {"train", "validation"}
    assert (manifest.loc[manifest["centre"] == "C", "set"] == "validation").all()
    assert (manifest.loc[manifest["centre"] != "C", "set"] == "train").all()
    for column in manifest.columns[3:8]:
        assert all((tiny_cohort / p).is_file() for p in manifest[column])
    clinical = pd.read_csv(tiny_cohort / "clinical.csv")
    assert list(clinical.columns) == [
        "patient",
        "centre",
        "os_months",
        "os_event",
        "pfs_months",
        "pfs_event",
        *CLINICAL,
    ]
    assert (clinical["pfs_months"] <= clinical["os_months"]).all()
    assert (clinical["os_months"] > 0).all()
    assert list(clinical["centre"]) == list(manifest["centre"])
    study = tomllib.loads((tiny_cohort / "study.toml").read_text())
    assert [v["name"] for v in study["variables"]] == CLINICAL
    assert study["imaging"]["readers"] == ["reader1_a", "reader1_b", "reader2"]


def test_study_toml_is_accepted_by_the_study_schema(tiny_cohort):
    from toolkit.config import load_study, read_clinical
    from toolkit.imaging.manifest import study_manifest

    config = load_study(tiny_cohort / "study.toml")
    manifest = study_manifest(config, tiny_cohort)
    table = read_clinical(config, tiny_cohort, manifest)
    assert len(table) == 8


def test_every_output_says_synthetic(tiny_cohort):
    assert "SYNTHETIC" in (tiny_cohort / "SYNTHETIC.txt").read_text()
    assert tomllib.loads((tiny_cohort / "study.toml").read_text())["study"]["synthetic"] is True
    assert pd.read_csv(tiny_cohort / "manifest.csv")["synthetic"].all()
    assert pd.read_csv(tiny_cohort / "ground_truth" / "truth.csv")["synthetic"].all()


def test_same_seed_gives_the_same_cohort(tmp_path):
    grid = Grid(shape=(8, 64, 64), spacing=(3.0, 3.0, 10.0))
    generate_cohort(tmp_path / "a", 3, seed=5, grid=grid, workers=1)
    generate_cohort(tmp_path / "b", 3, seed=5, grid=grid, workers=1)
    generate_cohort(tmp_path / "c", 3, seed=6, grid=grid, workers=1)
    a = pd.read_csv(tmp_path / "a" / "clinical.csv")
    pd.testing.assert_frame_equal(a, pd.read_csv(tmp_path / "b" / "clinical.csv"))
    assert not a.equals(pd.read_csv(tmp_path / "c" / "clinical.csv"))
    image = "images/P002/portal.nii.gz"
    first = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "a" / image)))
    second = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "b" / image)))
    np.testing.assert_array_equal(first, second)


def test_largest_size_in_clinical_table_agrees_with_the_image(tiny_cohort):
    clinical = pd.read_csv(tiny_cohort / "clinical.csv")
    truth = pd.read_csv(tiny_cohort / "ground_truth" / "truth.csv")
    np.testing.assert_allclose(clinical["tumour_size_cm"], truth["size_cm_measured"], atol=0.051)
    np.testing.assert_allclose(truth["size_cm_measured"], truth["size_cm_drawn"], atol=0.6)
    for patient, size in zip(clinical["patient"][:3], clinical["tumour_size_cm"][:3], strict=True):
        image = sitk.ReadImage(str(tiny_cohort / "images" / patient / "mask_reader1_a.nii.gz"))
        mask = sitk.GetArrayFromImage(image)
        diameter, _ = longest_axial_diameter_mm(mask, image.GetSpacing())
        assert abs(diameter / 10 - size) < 0.5  # a reader's outline, 2 mm pixels


def test_tumours_enhance_in_arterial_and_wash_out_in_portal(tiny_cohort):
    truth = pd.read_csv(tiny_cohort / "ground_truth" / "truth.csv")
    for patient in truth["patient"][:4]:
        folder = tiny_cohort / "images" / patient
        arterial = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "arterial.nii.gz")))
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "mask_reader1_a.nii.gz")))
        # the necrotic core is hypodense; the viable rim is hyper-enhancing in the arterial phase
        inside = arterial[mask > 0].astype(float)
        assert np.percentile(inside, 90) > 120
    assert truth["motion_tx"].abs().max() > 0  # every patient moved between the phases
