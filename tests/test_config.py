"""study.toml schema and clinical-table checks: every bad input gets a clear message."""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import pytest

from toolkit.config import (
    PHASES,
    StudyConfigError,
    StudyInputError,
    check_inputs,
    load_study,
    prepare_clinical,
    read_clinical,
)
from toolkit.imaging.manifest import study_manifest
from toolkit.synth.cohort import STUDY_TOML


def test_a_centre_column_named_by_study_centre_must_exist(tmp_path):
    cohort = _cohort(tmp_path, edit=lambda clinical, manifest: clinical.pop("centre"))
    config = load_study(cohort / "study.toml")
    with pytest.raises(StudyConfigError, match=r"no column 'centre' \(named by study.centre"):
        read_clinical(config, cohort, study_manifest(config, cohort))


def _cohort(tmp_path, n_train=30, n_valid=20, toml=STUDY_TOML, edit=None):
    rng = np.random.default_rng(0)
    n = n_train + n_valid
    patients = [f"P{i:03d}" for i in range(1, n + 1)]
    sets = ["train"] * n_train + ["validation"] * n_valid
    manifest = pd.DataFrame(
        {"patient": patients, "centre": ["A"] * n_train + ["C"] * n_valid, "set": sets}
    )
    for column in ("arterial", "portal", "mask_reader1_a", "mask_reader1_b", "mask_reader2"):
        manifest[column] = [f"images/{p}/{column}.nii.gz" for p in patients]
    clinical = pd.DataFrame(
        {
            "patient": patients,
            "centre": manifest["centre"],
            "os_months": rng.uniform(1, 60, n).round(2),
            "os_event": rng.integers(0, 2, n) | (np.arange(n) % 2 == 0),
            "pfs_months": rng.uniform(1, 30, n).round(2),
            "pfs_event": 1,
            "ecog": rng.choice(["0", "1"], n),
            "child_pugh": rng.choice(["A", "B"], n),
            "tumour_number": rng.integers(1, 4, n),
            "tumour_size_cm": rng.uniform(1, 12, n).round(1),
            "bclc": rng.choice(["A", "B", "C"], n),
            "hbv": rng.choice(["no", "yes"], n),
            "cirrhosis": rng.choice(["no", "yes"], n),
            "distribution": rng.choice(["unilobar", "bilobar"], n),
            "afp": rng.uniform(1, 1000, n).round(1),
            "alt": rng.uniform(5, 100, n).round(1),
            "ast": rng.uniform(5, 100, n).round(1),
            "hbsag": rng.choice(["negative", "positive"], n),
        }
    )
    if edit:
        edit(clinical, manifest)
    clinical.to_csv(tmp_path / "clinical.csv", index=False)
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    (tmp_path / "study.toml").write_text(toml)
    return tmp_path


def _prepare(folder):
    config = load_study(folder)
    return prepare_clinical(config, read_clinical(config, folder, study_manifest(config, folder)))


def test_synthetic_study_toml_is_valid_and_categorises_at_cutoffs(tmp_path):
    data = _prepare(_cohort(tmp_path))
    frame = data.frame
    assert list(frame["afp"].cat.categories) == ["<400", ">=400"]
    raw_afp = pd.read_csv(tmp_path / "clinical.csv").set_index("patient")["afp"]
    assert ((raw_afp.loc[frame.index] >= 400) == (frame["afp"] == ">=400")).all()
    assert list(frame["bclc"].cat.categories) == ["A", "B", "C"]
    assert data.exclusions.empty


def test_unknown_variable_is_named(tmp_path):
    toml = STUDY_TOML + '\n[[variables]]\nname = "bilirubin"\nkind = "numeric"\ncutoffs = [1]\n'
    folder = _cohort(tmp_path, toml=toml)
    with pytest.raises(StudyConfigError, match=r"bilirubin"):
        _prepare(folder)


def test_numeric_variable_without_cutoffs_is_refused(tmp_path):
    toml = STUDY_TOML.replace("cutoffs = [400]", "")
    with pytest.raises(StudyConfigError, match=r"afp.*no cutoffs"):
        load_study(_cohort(tmp_path, toml=toml))


def test_unknown_time_unit_is_refused(tmp_path):
    toml = STUDY_TOML.replace('time_unit = "months"', 'time_unit = "fortnights"')
    with pytest.raises(StudyConfigError, match=r"time_unit must be one of"):
        load_study(_cohort(tmp_path, toml=toml))


@pytest.mark.parametrize("thresholds", ["[0.1, 1.0]", "[0, 0.2]", "[-0.1]"])
def test_decision_thresholds_outside_zero_one_are_refused(tmp_path, thresholds):
    toml = STUDY_TOML.replace(
        "decision_times = [12, 24]",
        f"decision_times = [12, 24]\ndecision_thresholds = {thresholds}",
    )
    with pytest.raises(StudyConfigError, match=r"strictly between 0 and 1"):
        load_study(_cohort(tmp_path, toml=toml))


def test_decision_thresholds_are_sorted_once_each(tmp_path):
    toml = STUDY_TOML.replace(
        "decision_times = [12, 24]",
        "decision_times = [12, 24]\ndecision_thresholds = [0.3, 0.1, 0.3]",
    )
    assert load_study(_cohort(tmp_path, toml=toml)).validation.decision_thresholds == [0.1, 0.3]


def test_time_points_beyond_follow_up_suggest_the_unit(tmp_path):
    toml = STUDY_TOML.replace("times = [12, 24, 36]", "times = [12, 24, 120]")
    with pytest.raises(StudyConfigError, match=r"is study.time_unit"):
        _prepare(_cohort(tmp_path, toml=toml))


def test_unexpected_category_names_the_patients(tmp_path):
    def edit(clinical, manifest):
        clinical.loc[[3, 7], "bclc"] = "D"

    with pytest.raises(
        StudyInputError, match=r"bclc holds 'D', not among its levels.*in 2 patients \(P004, P008\)"
    ):
        _prepare(_cohort(tmp_path, edit=edit))


def _with_missing(clinical, manifest):
    clinical.loc[[2, 5], "alt"] = np.nan
    clinical.loc[5, "hbv"] = np.nan


def test_missing_values_complete_case_lists_the_patients(tmp_path):
    data = _prepare(_cohort(tmp_path, edit=_with_missing))
    assert data.exclusions["patient"].tolist() == ["P003", "P006"]
    assert "alt" in data.exclusions.iloc[0]["reason"]
    assert "P003" not in data.frame.index and len(data.frame) == 48


def test_missing_values_imputed_when_asked_and_recorded(tmp_path):
    toml = STUDY_TOML.replace('missing = "complete-case"', 'missing = "impute-median-mode"')
    data = _prepare(_cohort(tmp_path, toml=toml, edit=_with_missing))
    assert len(data.frame) == 50
    assert sorted(data.imputations["patient"]) == ["P003", "P006", "P006"]
    assert not data.frame[["alt", "hbv"]].isna().any().any()


def test_median_mode_refuses_a_variable_no_training_patient_has(tmp_path):
    """Nothing to take a median from: the error names the column (it filled NaN before)."""

    def edit(clinical, manifest):
        clinical.loc[:29, "alt"] = np.nan  # every training patient

    toml = STUDY_TOML.replace('missing = "complete-case"', 'missing = "impute-median-mode"')
    with pytest.raises(StudyConfigError, match=r"alt: no observed value .* in the training set"):
        _prepare(_cohort(tmp_path, toml=toml, edit=edit))


def test_missing_values_refused_when_asked(tmp_path):
    toml = STUDY_TOML.replace('missing = "complete-case"', 'missing = "error"')
    with pytest.raises(
        StudyConfigError, match=r"P003: alt; P006: hbv, alt|P003: alt; P006: alt, hbv"
    ):
        _prepare(_cohort(tmp_path, toml=toml, edit=_with_missing))


def test_too_few_events_in_a_set(tmp_path):
    def edit(clinical, manifest):
        clinical.loc[30:, "os_event"] = 0
        clinical.loc[30:32, "os_event"] = 1

    with pytest.raises(StudyConfigError, match=r"too few events in the validation set.*3 events"):
        _prepare(_cohort(tmp_path, edit=edit))


def test_no_external_set_is_refused(tmp_path):
    def edit(clinical, manifest):
        manifest["set"] = "train"

    with pytest.raises(StudyConfigError, match=r"no external validation set"):
        _prepare(_cohort(tmp_path, edit=edit))
    toml = STUDY_TOML.replace('validation_sets = ["validation"]', "validation_sets = []")
    with pytest.raises(StudyConfigError, match=r"no external validation set"):
        load_study(_cohort(tmp_path, toml=toml))


def test_unknown_setting_and_missing_outcome_values(tmp_path):
    toml = STUDY_TOML.replace("crop_size = 224", "crop_size = 224\ncrop_shape = 3")
    with pytest.raises(StudyConfigError, match=r"imaging.crop_shape: unknown setting"):
        load_study(_cohort(tmp_path, toml=toml))

    def edit(clinical, manifest):
        clinical.loc[4, "os_months"] = np.nan

    with pytest.raises(StudyConfigError, match=r"os_months.*P005.*never imputed"):
        _prepare(_cohort(tmp_path, edit=edit))


def _many_problems(clinical, manifest):
    clinical.loc[[2, 6], "os_event"] = 2
    clinical.loc[16, "os_months"] = -3.0
    clinical["afp"] = clinical["afp"].astype(object)
    clinical.loc[[3, 10], "afp"] = ["unknown", ">1000"]
    clinical.loc[8, "bclc"] = "D"
    manifest.loc[45, "set"] = "test"


def test_every_problem_of_the_clinical_table_is_reported_at_once(tmp_path):
    """A negative time no longer hides text in a numeric column, nor a coding error."""
    folder = _cohort(tmp_path, edit=_many_problems)
    config = load_study(folder)
    with pytest.raises(StudyInputError) as caught:
        check_inputs(config, folder)
    assert caught.value.problems == [
        "manifest.csv: set 'test' is in neither study.train_sets ['train'] nor "
        "study.validation_sets ['validation'] (1 patient: P046)",
        "clinical.csv: os_months has 1 negative value (P017)",
        "clinical.csv: os_event must be coded 0 (censored) or 1 (event); found 2 in 2 patients "
        "(P003, P007)",
        "clinical.csv: bclc holds 'D', not among its levels ['A', 'B', 'C'] in study.toml, "
        "in 1 patient (P009)",
        "clinical.csv: afp is numeric but holds text in 2 patients (P004: 'unknown', "
        "P011: '>1000')",
    ]
    message = str(caught.value)
    assert message.startswith("5 problems in the study's inputs:\n  - manifest.csv: set 'test'")
    with pytest.raises(StudyInputError) as again:
        study_manifest(config, folder)
    assert again.value.problems == caught.value.problems[:1]


def test_events_coded_1_2_are_refused_with_the_recoding(tmp_path):
    def edit(clinical, manifest):
        clinical["os_event"] = clinical["os_event"] + 1

    with pytest.raises(StudyInputError) as caught:
        _prepare(_cohort(tmp_path, edit=edit))
    (problem,) = caught.value.problems
    assert problem.startswith(
        "clinical.csv: os_event must be coded 0 (censored) or 1 (event); found 2 in "
    )
    assert problem.endswith("recode to 0/1")


def test_patients_columns_and_duplicates_of_both_files_are_reported(tmp_path):
    def edit(clinical, manifest):
        extra = clinical.iloc[[0]].assign(patient="P099")
        clinical.drop(index=[4], inplace=True)
        clinical.drop(columns=["alt"], inplace=True)
        clinical.loc[len(clinical) + 10] = clinical.iloc[0]
        clinical.loc[len(clinical) + 11] = extra.iloc[0]
        manifest.loc[len(manifest)] = manifest.iloc[7]
        manifest.drop(columns=["mask_reader2"], inplace=True)

    folder = _cohort(tmp_path, edit=edit)
    config = load_study(folder)
    with pytest.raises(StudyInputError) as caught:
        check_inputs(config, folder)
    assert caught.value.problems == [
        "manifest.csv: no column 'mask_reader2' (imaging.readers in study.toml)",
        "manifest.csv: 1 patient listed more than once (P008)",
        "clinical.csv: 1 patient listed more than once (P001)",
        "clinical.csv: no column 'alt' (named by variables in study.toml)",
        "clinical.csv: no row for 1 patient of manifest.csv (P005)",
        "clinical.csv: 1 patient not in manifest.csv (P099); add their images to the "
        "manifest or remove their rows",
    ]


def test_study_toml_lists_every_setting_error(tmp_path):
    toml = STUDY_TOML.replace("crop_size = 224", "crop_size = 224\ncrop_shape = 3")
    toml = toml.replace('time_unit = "months"', 'time_unit = "fortnights"')
    with pytest.raises(StudyInputError) as caught:
        load_study(_cohort(tmp_path, toml=toml))
    assert len(caught.value.problems) == 2
    assert caught.value.problems[0].startswith("study.toml: study.time_unit: time_unit must be")
    assert caught.value.problems[1] == "study.toml: imaging.crop_shape: unknown setting"


def test_a_misspelt_column_is_suggested(tmp_path):
    def edit(clinical, manifest):
        clinical.rename(columns={"tumour_size_cm": "tumor_size_cm"}, inplace=True)

    folder = _cohort(tmp_path, edit=edit)
    with pytest.raises(StudyInputError) as caught:
        check_inputs(load_study(folder), folder)
    assert caught.value.problems == [
        "clinical.csv: no column 'tumour_size_cm' (named by variables in study.toml); "
        "did you mean 'tumor_size_cm'?"
    ]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("crop_size = 256", "imaging.crop_size: crop_size must be 224: the network's features"),
        ('phases = ["portal"]', "imaging.phases: phases must be ['arterial', 'portal']"),
        ('phases = ["arterial", "delayed"]', "imaging.phases: phases must be ['arterial', "),
        ('mask_phase = "delayed"', "imaging.mask_phase: mask_phase must be one of arterial"),
        ("spacing_mm = 0", "imaging.spacing_mm: Input should be greater than 0"),
        ("slices = 0", "imaging.slices: slices must be a whole number of slices, at least 1"),
        ("slices = -3", "imaging.slices: slices must be a whole number of slices, at least 1"),
        ("slices = 2.5", "imaging.slices: slices must be a whole number of slices, at least 1"),
        ("slices = true", "imaging.slices: slices must be a whole number of slices, at least 1"),
        ('slices = "every"', "imaging.slices: slices must be a whole number of slices"),
        ('pooling = "median"', "imaging.pooling: pooling must be one of mean, max; got 'median'"),
    ],
)
def test_imaging_settings_the_code_cannot_honour_are_refused(tmp_path, setting, message):
    toml = STUDY_TOML.replace("crop_size = 224\n", "").replace(
        'phases = ["arterial", "portal"]\n', ""
    )
    toml = toml.replace("[imaging]\n", f"[imaging]\n{setting}\n")
    with pytest.raises(StudyInputError) as caught:
        load_study(_cohort(tmp_path, toml=toml))
    (problem,) = caught.value.problems
    assert problem.startswith(f"study.toml: {message}"), problem


@pytest.mark.parametrize(
    ("setting", "slices", "pooling", "choice"),
    [
        ("", 1, "mean", {"slices": 1}),  # the default: the paper's one slice
        ('slices = 1\npooling = "max"', 1, "max", {"slices": 1}),  # pooling idle with one
        ("slices = 3", 3, "mean", {"slices": 3, "pooling": "mean"}),
        ('slices = 4\npooling = "max"', 4, "max", {"slices": 4, "pooling": "max"}),
        ('slices = "all"', "all", "mean", {"slices": "all", "pooling": "mean"}),
    ],
)
def test_slices_and_pooling_are_read_with_defaults(tmp_path, setting, slices, pooling, choice):
    toml = STUDY_TOML.replace("[imaging]\n", f"[imaging]\n{setting}\n")
    imaging = load_study(_cohort(tmp_path, toml=toml)).imaging
    assert (imaging.slices, imaging.pooling, imaging.slice_choice) == (slices, pooling, choice)


def test_phases_in_any_order_are_the_supported_phases(tmp_path):
    toml = STUDY_TOML.replace('phases = ["arterial", "portal"]', 'phases = ["portal", "arterial"]')
    assert load_study(_cohort(tmp_path, toml=toml)).imaging.phases == list(PHASES)


def test_the_config_keeps_study_toml_as_written_for_provenance(tmp_path):
    toml = STUDY_TOML.replace(
        'readers = ["reader1_a", "reader1_b", "reader2"]',
        'readers = ["reader2", "reader1_b", "reader1_a"]',
    )
    config = load_study(_cohort(tmp_path, toml=toml))
    assert config.as_written() == tomllib.loads(toml)
    assert list(config.as_written()) == list(tomllib.loads(toml))
    assert config.as_written()["imaging"]["readers"] == ["reader2", "reader1_b", "reader1_a"]
    assert config.imaging.readers == ["reader1_a", "reader1_b", "reader2"]
    config.as_written()["imaging"]["readers"].clear()  # a copy: the config cannot change
    assert config.as_written() == tomllib.loads(toml)


def test_an_empty_patient_id_or_set_in_the_manifest_is_named(tmp_path):
    def edit(clinical, manifest):
        manifest.loc[3, "patient"] = ""
        manifest.loc[5, "set"] = ""

    folder = _cohort(tmp_path, edit=edit)
    with pytest.raises(StudyInputError) as caught:
        check_inputs(load_study(folder), folder)
    assert caught.value.problems == [
        "manifest.csv: no patient id on row 5",
        "manifest.csv: set is empty in 1 patient (P006)",
        "clinical.csv: 1 patient not in manifest.csv (P004); add their images to the "
        "manifest or remove their rows",
    ]


def _radiomics(section: str):
    from toolkit.config import loads_study

    return loads_study(STUDY_TOML + f"\n[radiomics]\n{section}\n").radiomics


def test_radiomics_defaults_are_pyradiomics_own_in_both_modes():
    radiomics = loads_study_without_section()
    assert radiomics.enabled and radiomics.mode == "both" and radiomics.modes == ("3d", "2d")
    assert radiomics.image_types == ["Original"] and radiomics.bin_width == 25.0
    assert radiomics.feature_classes == [
        "shape",
        "firstorder",
        "glcm",
        "glrlm",
        "glszm",
        "gldm",
        "ngtdm",
    ]
    assert radiomics.resampled_spacing_mm is None and radiomics.parameter_file is None
    assert _radiomics('mode = "2d"').modes == ("2d",)
    sigmas = _radiomics('image_types = ["Original", "LoG"]\nlog_sigmas = [1.0, 3.0]')
    assert sigmas.log_sigmas == [1.0, 3.0]


def loads_study_without_section():
    from toolkit.config import loads_study

    assert "[radiomics]" not in STUDY_TOML
    return loads_study(STUDY_TOML).radiomics


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ('mode = "3D"', "radiomics.mode: Input should be '3d', '2d' or 'both'"),
        ('image_types = ["Original", "Gabor"]', "radiomics.image_types: image_types must be one"),
        ('image_types = ["LoG"]', 'radiomics: image_types has "LoG" but log_sigmas is empty'),
        ("log_sigmas = [1.0]", 'radiomics: log_sigmas is given but image_types has no "LoG"'),
        (
            'image_types = ["LoG"]\nlog_sigmas = [0.0]',
            "radiomics.log_sigmas: log_sigmas must be positive",
        ),
        ('feature_classes = ["glcm", "glcm"]', "radiomics.feature_classes: feature_classes lists"),
        ('feature_classes = ["shape2D"]', "radiomics.feature_classes: feature_classes must be"),
        ("feature_classes = []", "radiomics.feature_classes: List should have at least 1 item"),
        ("bin_width = 0", "radiomics.bin_width: Input should be greater than 0"),
        ("resampled_spacing_mm = [1.0, 1.0]", "radiomics.resampled_spacing_mm: resampled_spacing"),
        ("resampled_spacing_mm = [1, 0, 1]", "radiomics.resampled_spacing_mm: resampled_spacing"),
        (
            'parameter_file = "params.yaml"\nbin_width = 10',
            "radiomics: parameter_file replaces bin_width: give either",
        ),
        ("bin_count = 32", "radiomics.bin_count: unknown setting"),
    ],
)
def test_radiomics_settings_the_code_cannot_honour_are_refused(section, message):
    with pytest.raises(StudyInputError) as caught:
        _radiomics(section)
    (problem,) = caught.value.problems
    assert problem.startswith(f"study.toml: {message}"), problem


def test_a_radiomics_parameter_file_that_is_absent_is_named_before_any_stage(tmp_path):
    toml = STUDY_TOML + '\n[radiomics]\nparameter_file = "pyradiomics.yaml"\n'
    folder = _cohort(tmp_path, toml=toml)
    with pytest.raises(StudyInputError) as caught:
        check_inputs(load_study(folder), folder)
    assert caught.value.problems == [
        f"study.toml: radiomics.parameter_file: 'pyradiomics.yaml' not found in {folder} "
        "(the PyRadiomics parameter file, relative to study.toml's folder)"
    ]
