import pandas as pd
import pytest

from toolkit.imaging.manifest import ManifestError, read_manifest

HEADER = "patient,centre,set,arterial,portal,mask_r1,mask_r2\n"


def test_paths_resolve_against_the_manifest_folder(tmp_path):
    (tmp_path / "m.csv").write_text(HEADER + "P1,A,train,a.nii.gz,/abs/p.nii.gz,m1.nrrd,m2.mha\n")
    manifest = read_manifest(tmp_path / "m.csv")
    row = manifest.rows()[0]
    assert row["arterial"] == str(tmp_path / "a.nii.gz")
    assert row["portal"] == "/abs/p.nii.gz"
    assert manifest.readers == ("r1", "r2")
    assert read_manifest(tmp_path / "m.csv", ["r2", "r1"]).readers == ("r2", "r1")


def test_missing_column_is_named(tmp_path):
    (tmp_path / "m.csv").write_text("patient,centre,set,arterial,mask_r1\nP1,A,train,a,m\n")
    with pytest.raises(ManifestError, match="missing column\\(s\\) portal"):
        read_manifest(tmp_path / "m.csv")
    with pytest.raises(ManifestError, match="mask_r9"):
        read_manifest(tmp_path / "m.csv", ["r9"])
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "absent.csv")


def test_duplicates_and_empty_paths_are_row_problems(tmp_path):
    rows = [
        "P1,A,train,a,p,m1,m2",
        "P2,A,train,a,p,m1,m2",
        "P1,B,train,a,p,m1,m2",
        "P3,C,validation,a,,m1,m2",
        "P4,C,validation,a,p,m1,m2",
    ]
    (tmp_path / "m.csv").write_text(HEADER + "\n".join(rows) + "\n")
    manifest = read_manifest(tmp_path / "m.csv")
    assert manifest.problems["P1"] == "duplicate patient id 'P1' on manifest rows 2, 4"
    assert manifest.problems["P3"] == "no path given for portal"
    assert [r["patient"] for r in manifest.rows()] == ["P2", "P4"]
    assert isinstance(manifest.frame, pd.DataFrame)
