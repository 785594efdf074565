import pandas as pd
import pytest

from toolkit.imaging.manifest import ManifestError, read_manifest

HEADER = "patient,centre,set,arterial,portal,mask_r1,mask_r2\n"


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_paths_resolve_against_the_manifest_folder(tmp_path):
    _write(tmp_path / "m.csv", HEADER + "P1,A,train,a.nii.gz,/abs/p.nii.gz,m1.nrrd,m2.mha\n")
    manifest = read_manifest(tmp_path / "m.csv")
    row = manifest.rows()[0]
    assert row["arterial"] == str(tmp_path / "a.nii.gz")
    assert row["portal"] == "/abs/p.nii.gz"
    assert manifest.frame["arterial"].tolist() == ["a.nii.gz"]  # the frame is as written
    assert manifest.readers == ("r1", "r2")
    assert read_manifest(tmp_path / "m.csv", ["r2", "r1"]).readers == ("r2", "r1")


def test_missing_column_is_named(tmp_path):
    _write(tmp_path / "m.csv", "patient,centre,set,arterial,mask_r1\nP1,A,train,a,m\n")
    with pytest.raises(ManifestError, match=r"no column 'portal' \(imaging.phases"):
        read_manifest(tmp_path / "m.csv")
    with pytest.raises(ManifestError, match=r"no column 'mask_r9'.*did you mean 'mask_r1'"):
        read_manifest(tmp_path / "m.csv", ["r9"])
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "absent.csv")


def test_a_duplicated_patient_is_an_error_naming_the_patients_and_the_file(tmp_path):
    rows = ["P1,A,train,a,p,m1,m2", "P2,A,train,a,p,m1,m2", "P1,B,train,a,p,m1,m2"]
    rows += ["P3,B,train,a,p,m1,m2", "P3,C,train,a,p,m1,m2"]
    _write(tmp_path / "m.csv", HEADER + "\n".join(rows) + "\n")
    with pytest.raises(ManifestError) as caught:
        read_manifest(tmp_path / "m.csv", name="m.csv")
    assert caught.value.problems == ["m.csv: 2 patients listed more than once (P1, P3)"]


def test_every_problem_of_the_file_is_reported_at_once(tmp_path):
    rows = ["P1,A,train,a,m1", "P1,A,train,a,m1"]
    _write(tmp_path / "m.csv", "patient,centre,set,arterial,mask_r1\n" + "\n".join(rows) + "\n")
    with pytest.raises(ManifestError) as caught:
        read_manifest(tmp_path / "m.csv", name="m.csv")
    assert caught.value.problems == [
        "m.csv: no column 'portal' (imaging.phases in study.toml)",
        "m.csv: 1 patient listed more than once (P1)",
    ]
    assert str(caught.value) == "\n".join(caught.value.problems)


def test_empty_paths_and_ids_are_row_problems(tmp_path):
    rows = [
        "P1,A,train,a,p,m1,m2",
        ",A,train,a,p,m1,m2",
        "P3,C,validation,a,,m1,m2",
        "P4,C,validation,a,p,m1,m2",
    ]
    _write(tmp_path / "m.csv", HEADER + "\n".join(rows) + "\n")
    manifest = read_manifest(tmp_path / "m.csv")
    assert manifest.problems == {"(row 3)": "empty patient id", "P3": "no path given for portal"}
    assert [r["patient"] for r in manifest.rows()] == ["P1", "P4"]
    assert isinstance(manifest.frame, pd.DataFrame)
