import json
import shutil

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.config import load_study
from toolkit.imaging.manifest import ManifestError
from toolkit.imaging.preprocess import PreprocessSettings, preprocess_cohort

SMALL = PreprocessSettings(crop_size=64)


def _cohort(source, target, patients=("P001", "P002", "P003")):
    """A copy of `patients` of the tiny cohort (manifest, study.toml, images)."""
    manifest = pd.read_csv(source / "manifest.csv")
    manifest = manifest[manifest["patient"].isin(patients)]
    for patient in patients:
        shutil.copytree(source / "images" / patient, target / "images" / patient)
    shutil.copy(source / "study.toml", target / "study.toml")
    manifest.to_csv(target / "manifest.csv", index=False)
    return target / "manifest.csv"


def _run(manifest, out, settings=SMALL):
    return preprocess_cohort(manifest, out, workers=0, progress=False, settings=settings)


def _image(folder, name):
    return sitk.ReadImage(str(folder / name))


def _replace(folder, name, array, like):
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(like)
    sitk.WriteImage(image, str(folder / name))


def test_crops_follow_the_contract(tiny_cohort, tmp_path):
    manifest = _cohort(tiny_cohort, tmp_path)
    summary = _run(manifest, tmp_path / "crops")
    assert (summary.n_ok, summary.n_failed, summary.n_skipped) == (3, 0, 0)
    assert not summary.partial
    with np.load(tmp_path / "crops" / "P002.npz", allow_pickle=False) as npz:
        assert list(npz["readers"]) == ["reader1_a", "reader1_b", "reader2"]
        for key in ("arterial", "portal"):
            assert npz[key].shape == (3, 64, 64) and npz[key].dtype == np.float32
            np.testing.assert_allclose(npz[key].mean(axis=(1, 2)), 0.0, atol=1e-4)
            np.testing.assert_allclose(npz[key].std(axis=(1, 2)), 1.0, atol=1e-4)
        assert npz["mask"].dtype == np.uint8 and npz["mask"].shape == (3, 64, 64)
        assert npz["mask"][0, 32, 32] == 1  # the crop is centred on the ROI
        assert npz["slice_index"].shape == (3,) and npz["centre_index"].shape == (3, 2)
        np.testing.assert_allclose(npz["spacing"], [2.0, 2.0, 5.0])
        assert npz["registration"].shape == (6,)
        meta = json.loads(str(npz["metadata"]))
    assert meta["patient"] == "P002" and meta["synthetic"] is True
    assert set(meta["inputs"]) == {
        "arterial",
        "portal",
        "mask_reader1_a",
        "mask_reader1_b",
        "mask_reader2",
    }
    assert (tmp_path / "crops" / "qc" / "P002.png").is_file()
    assert pd.read_csv(tmp_path / "crops" / "failures.csv").empty
    statuses = json.loads((tmp_path / "crops" / "manifest.json").read_text())["patients"]
    assert {p: s["status"] for p, s in statuses.items()} == {f"P00{i}": "ok" for i in (1, 2, 3)}


def test_slice_is_the_largest_roi_on_the_portal_grid(tiny_cohort, tmp_path):
    manifest = _cohort(tiny_cohort, tmp_path, ("P004",))
    _run(manifest, tmp_path / "crops", PreprocessSettings(crop_size=64, register=False))
    mask = sitk.GetArrayFromImage(_image(tmp_path / "images" / "P004", "mask_reader1_a.nii.gz"))
    with np.load(tmp_path / "crops" / "P004.npz") as npz:
        # without registration the arterial-grid mask lands on the identical portal grid
        assert npz["slice_index"][0] == int(np.argmax(mask.reshape(len(mask), -1).sum(1)))
        assert np.all(npz["registration"] == 0)
        assert npz["mask"][0].sum() == mask[npz["slice_index"][0]].sum()


def test_settings_come_from_the_study_config_and_roi_zscore_option(tiny_cohort, tmp_path):
    manifest = _cohort(tiny_cohort, tmp_path, ("P001",))
    settings = PreprocessSettings.from_config(load_study(tmp_path / "study.toml"))
    assert settings.readers == ("reader1_a", "reader1_b", "reader2")
    preprocess_cohort(manifest, tmp_path / "a", workers="sync", progress=False, settings=settings)
    with np.load(tmp_path / "a" / "P001.npz") as npz:
        assert npz["arterial"].shape == (3, 224, 224)
    _run(manifest, tmp_path / "b", PreprocessSettings(crop_size=64, zscore="roi", spacing_mm=1.0))
    with np.load(tmp_path / "b" / "P001.npz") as npz:
        roi = npz["arterial"][0][npz["mask"][0] > 0]
        assert abs(roi.mean()) < 1e-4 and abs(roi.std() - 1) < 1e-3
        np.testing.assert_allclose(npz["spacing"], [1.0, 1.0, 5.0])


def test_rerun_skips_up_to_date_patients_and_redoes_changed_ones(tiny_cohort, tmp_path):
    manifest = _cohort(tiny_cohort, tmp_path)
    _run(manifest, tmp_path / "crops")
    first = (tmp_path / "crops" / "manifest.json").read_text()
    again = _run(manifest, tmp_path / "crops")
    assert (again.n_ok, again.n_skipped) == (3, 3)
    assert (tmp_path / "crops" / "manifest.json").read_text() == first  # stable for later stages
    folder = tmp_path / "images" / "P003"
    mask_image = _image(folder, "mask_reader2.nii.gz")
    mask = sitk.GetArrayFromImage(mask_image)
    mask[np.nonzero(mask)[0][0], np.nonzero(mask)[1][0], np.nonzero(mask)[2][0]] = 0
    _replace(folder, "mask_reader2.nii.gz", mask, mask_image)
    changed = _run(manifest, tmp_path / "crops")
    assert (changed.n_ok, changed.n_skipped) == (3, 2)
    other = _run(manifest, tmp_path / "crops", PreprocessSettings(crop_size=48))
    assert other.n_skipped == 0


def _bad_run(tiny_cohort, tmp_path, patient="P002"):
    manifest = _cohort(tiny_cohort, tmp_path)
    return manifest, tmp_path / "images" / patient


def _assert_partial(summary, out, patient, reason):
    assert summary.partial and summary.n_failed == 1 and summary.n_ok == 2
    failures = pd.read_csv(out / "failures.csv")
    assert failures["patient"].tolist() == [patient]
    assert reason in failures["reason"].iloc[0], failures["reason"].iloc[0]
    assert not (out / f"{patient}.npz").exists()
    assert sorted(p.name for p in out.glob("*.npz")) == sorted(
        f"{p}.npz" for p in ("P001", "P002", "P003") if p != patient
    )
    assert not [p for p in out.rglob(".*") if p.is_file()]  # no temp file left behind


def test_truncated_file_fails_only_that_patient(tiny_cohort, tmp_path):
    manifest, folder = _bad_run(tiny_cohort, tmp_path)
    data = (folder / "arterial.nii.gz").read_bytes()
    (folder / "arterial.nii.gz").write_bytes(data[: len(data) // 3])
    summary = _run(manifest, tmp_path / "crops")
    _assert_partial(
        summary, tmp_path / "crops", "P002", "images/P002/arterial.nii.gz (arterial): truncated"
    )


def test_unreadable_file_fails_only_that_patient(tiny_cohort, tmp_path):
    manifest, folder = _bad_run(tiny_cohort, tmp_path)
    (folder / "portal.nii.gz").write_bytes(b"not a CT volume at all")
    summary = _run(manifest, tmp_path / "crops")
    _assert_partial(
        summary, tmp_path / "crops", "P002", "images/P002/portal.nii.gz (portal): not a gzip file"
    )


TRUNCATED = (
    "images/P002/arterial.nii.gz (arterial): truncated gzip stream "
    "(the file ends before its end-of-stream marker; re-copy or re-export it)"
)


def _read_failure(tiny_cohort, tmp_path, damage, name="arterial.nii.gz"):
    """The failure record of P002 (alone in its cohort) after `damage`(bytes) -> bytes."""
    manifest = _cohort(tiny_cohort, tmp_path, ("P002",))
    path = tmp_path / "images" / "P002" / name
    path.write_bytes(damage(path.read_bytes()))
    summary = _run(manifest, tmp_path / "crops")
    assert summary.n_failed == 1 and not (tmp_path / "crops" / "P002.npz").exists()
    failures = pd.read_csv(tmp_path / "crops" / "failures.csv")
    assert failures["stage"].tolist() == ["read"]
    return failures["reason"].iloc[0]


@pytest.mark.parametrize(
    "keep",
    [lambda n: 20, lambda n: 200, lambda n: n // 3, lambda n: n - 1],
    ids=["in-gzip-header", "in-nifti-header", "in-voxels", "last-byte"],
)
def test_truncated_gzip_names_the_file_the_phase_and_the_fault(tiny_cohort, tmp_path, keep):
    reason = _read_failure(tiny_cohort, tmp_path, lambda data: data[: keep(len(data))])
    assert reason == TRUNCATED


def _flip(offset):
    def damage(data):
        data = bytearray(data)
        data[offset] ^= 0xFF
        return bytes(data)

    return damage


def test_bad_gzip_crc_is_named(tiny_cohort, tmp_path):
    reason = _read_failure(tiny_cohort, tmp_path, _flip(-8))  # the trailer's CRC-32
    assert reason == (
        "images/P002/arterial.nii.gz (arterial): corrupt gzip stream (its CRC check failed: "
        "the decompressed bytes are not the bytes that were written; re-copy or re-export it)"
    )


def test_corrupt_compressed_data_is_named(tiny_cohort, tmp_path):
    reason = _read_failure(tiny_cohort, tmp_path, _flip(20))  # inside the deflate stream
    assert reason == (
        "images/P002/arterial.nii.gz (arterial): corrupt gzip stream (the compressed data is "
        "damaged and cannot be decoded; re-copy or re-export it)"
    )


def test_a_file_that_is_not_gzip_is_named(tiny_cohort, tmp_path):
    reason = _read_failure(tiny_cohort, tmp_path, lambda data: b"DICM and other bytes")
    assert reason == (
        "images/P002/arterial.nii.gz (arterial): not a gzip file although named .nii.gz "
        "(no gzip signature at its start; re-copy or re-export it)"
    )


def test_an_uncompressed_nifti_named_nii_gz_is_named(tiny_cohort, tmp_path):
    import gzip

    reason = _read_failure(tiny_cohort, tmp_path, gzip.decompress, name="mask_reader2.nii.gz")
    assert reason == (
        "images/P002/mask_reader2.nii.gz (mask_reader2): not gzip-compressed although named "
        ".nii.gz (it is an uncompressed NIfTI file; rename it to .nii, in the manifest too, "
        "or compress it with gzip)"
    )


def test_missing_phase_fails_only_that_patient(tiny_cohort, tmp_path):
    manifest, folder = _bad_run(tiny_cohort, tmp_path)
    (folder / "portal.nii.gz").unlink()
    summary = _run(manifest, tmp_path / "crops")
    _assert_partial(
        summary,
        tmp_path / "crops",
        "P002",
        "portal phase missing: images/P002/portal.nii.gz not found",
    )
    assert summary.failures["stage"].tolist() == ["read"]


def test_mask_geometry_mismatch_fails_only_that_patient(tiny_cohort, tmp_path):
    manifest, folder = _bad_run(tiny_cohort, tmp_path)
    mask = _image(folder, "mask_reader1_b.nii.gz")
    mask.SetSpacing((2.5, 2.0, 5.0))
    sitk.WriteImage(mask, str(folder / "mask_reader1_b.nii.gz"))
    summary = _run(manifest, tmp_path / "crops")
    _assert_partial(
        summary,
        tmp_path / "crops",
        "P002",
        "mask_reader1_b geometry does not match the arterial image: "
        "spacing 2.5 x 2 x 5 mm (mask_reader1_b) vs 2 x 2 x 5 mm (arterial)",
    )
    assert "np.float64" not in summary.failures["reason"].iloc[0]


def test_mask_of_another_size_names_both_sizes_in_voxels(tiny_cohort, tmp_path):
    manifest, folder = _bad_run(tiny_cohort, tmp_path)
    mask = _image(folder, "mask_reader2.nii.gz")
    sitk.WriteImage(mask[:, :, 2:14], str(folder / "mask_reader2.nii.gz"))
    summary = _run(manifest, tmp_path / "crops")
    _assert_partial(
        summary,
        tmp_path / "crops",
        "P002",
        "mask_reader2 geometry does not match the arterial image: "
        "size 96 x 96 x 12 voxels (mask_reader2) vs 96 x 96 x 16 voxels (arterial)",
    )


def test_empty_mask_fails_only_that_patient(tiny_cohort, tmp_path):
    manifest, folder = _bad_run(tiny_cohort, tmp_path)
    like = _image(folder, "mask_reader2.nii.gz")
    _replace(folder, "mask_reader2.nii.gz", np.zeros((16, 96, 96), np.uint8), like)
    summary = _run(manifest, tmp_path / "crops")
    _assert_partial(summary, tmp_path / "crops", "P002", "mask_reader2 is empty")


def test_nan_in_image_fails_only_that_patient(tiny_cohort, tmp_path):
    manifest, folder = _bad_run(tiny_cohort, tmp_path)
    like = _image(folder, "portal.nii.gz")
    array = sitk.GetArrayFromImage(like).astype(np.float32)
    array[3, 10, 10:13] = np.nan
    _replace(folder, "portal.nii.gz", array, like)
    summary = _run(manifest, tmp_path / "crops")
    _assert_partial(summary, tmp_path / "crops", "P002", "portal image has 3 NaN voxels")


def test_several_mask_components_keep_the_largest_with_a_warning(tiny_cohort, tmp_path):
    manifest, folder = _bad_run(tiny_cohort, tmp_path)
    like = _image(folder, "mask_reader2.nii.gz")
    mask = sitk.GetArrayFromImage(like)
    mask[1, 2:4, 2:4] = 1  # a speck far from the tumour
    _replace(folder, "mask_reader2.nii.gz", mask, like)
    summary = _run(manifest, tmp_path / "crops")
    assert summary.n_ok == 3 and not summary.partial
    assert summary.warnings["patient"].tolist() == ["P002"]
    assert "2 connected components; kept the largest" in summary.warnings["warning"].iloc[0]
    with np.load(tmp_path / "crops" / "P002.npz") as npz:
        assert json.loads(str(npz["metadata"]))["warnings"]


def test_a_duplicated_patient_stops_the_run_naming_it(tiny_cohort, tmp_path):
    manifest = _cohort(tiny_cohort, tmp_path)
    frame = pd.read_csv(manifest)
    frame = pd.concat([frame, frame.iloc[[1]]])
    frame.to_csv(manifest, index=False)
    with pytest.raises(
        ManifestError, match=r"manifest.csv: 1 patient listed more than once \(P002\)"
    ):
        _run(manifest, tmp_path / "crops")
    assert not (tmp_path / "crops").exists()


def test_missing_manifest_column_stops_with_its_name(tiny_cohort, tmp_path):
    manifest = _cohort(tiny_cohort, tmp_path)
    pd.read_csv(manifest).drop(columns=["mask_reader2"]).to_csv(manifest, index=False)
    with pytest.raises(ManifestError, match="no column 'mask_reader2'"):
        _run(manifest, tmp_path / "crops", PreprocessSettings(readers=("reader1_a", "reader2")))
    result = CliRunner().invoke(
        app, ["preprocess", str(manifest), "--out", str(tmp_path / "c"), "--workers", "0"]
    )
    assert result.exit_code == 2 and "mask_reader2" in result.output


def test_cli_exit_status_says_partial(tiny_cohort, tmp_path):
    manifest, folder = _bad_run(tiny_cohort, tmp_path)
    (folder / "arterial.nii.gz").unlink()
    args = [
        "preprocess",
        str(manifest),
        "--out",
        str(tmp_path / "c"),
        "--workers",
        "0",
        "--no-progress",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 3
    assert "PARTIAL" in result.output and "P002" in result.output


def test_a_patient_that_now_fails_loses_its_old_crop(tiny_cohort, tmp_path):
    manifest, folder = _bad_run(tiny_cohort, tmp_path)
    _run(manifest, tmp_path / "crops")
    assert (tmp_path / "crops" / "P002.npz").exists()
    (folder / "portal.nii.gz").unlink()
    summary = _run(manifest, tmp_path / "crops")
    _assert_partial(summary, tmp_path / "crops", "P002", "portal phase missing")


def test_dask_workers_give_the_same_crops_as_in_process(tiny_cohort, tmp_path):
    manifest = _cohort(tiny_cohort, tmp_path, ("P005", "P006"))
    _run(manifest, tmp_path / "sync")
    summary = preprocess_cohort(
        manifest, tmp_path / "dask", workers=2, progress=False, settings=SMALL
    )
    assert summary.n_ok == 2
    for patient in ("P005", "P006"):
        with np.load(tmp_path / "sync" / f"{patient}.npz") as a:
            with np.load(tmp_path / "dask" / f"{patient}.npz") as b:
                for key in ("mask", "slice_index", "centre_index"):
                    np.testing.assert_array_equal(a[key], b[key])
                # SimpleITK's thread count (all cores in-process, one per Dask worker) moves
                # the metric's floating-point sums in the last digits only
                for key in ("arterial", "portal", "registration"):
                    np.testing.assert_allclose(a[key], b[key], atol=1e-5)


def test_an_existing_scheduler_is_used(tiny_cohort, tmp_path):
    import logging

    from distributed import LocalCluster

    manifest = _cohort(tiny_cohort, tmp_path, ("P007",))
    with LocalCluster(
        n_workers=1, threads_per_worker=1, dashboard_address=":0", silence_logs=logging.ERROR
    ) as cluster:
        summary = preprocess_cohort(
            manifest,
            tmp_path / "crops",
            workers=0,
            scheduler=cluster.scheduler_address,
            progress=False,
            settings=SMALL,
        )
    assert summary.n_ok == 1 and (tmp_path / "crops" / "P007.npz").is_file()


def test_spacing_and_mask_phase_are_study_settings():
    from toolkit.config import loads_study
    from toolkit.synth.cohort import STUDY_TOML

    toml = STUDY_TOML.replace(
        "register = true", 'register = false\nspacing_mm = 1.5\nmask_phase = "portal"'
    )
    settings = PreprocessSettings.from_config(loads_study(toml), qc=False)
    assert (settings.spacing_mm, settings.mask_phase) == (1.5, "portal")
    assert (settings.register, settings.qc, settings.crop_size) == (False, False, 224)


# --------------------------------------------------------------------------- multi-slice crops

ONE_SLICE_KEYS = [
    "arterial", "portal", "mask", "slice_index", "centre_index",
    "readers", "spacing", "registration", "metadata",
]  # fmt: skip
# settings_hash of these settings' as_dict, computed by the code before `slices` existed
# (main at 9eb682f): a one-slice study's crops keep their hash, so they are not redone
PINNED_SETTINGS_HASHES = {
    "default": "71dc22e81110c97292d6db885ff676c3a7908503f8ae221a23b2a2b83a6f597d",
    "64, unregistered": "11c4c4f02231fc8782bcd25691bd011a62c427654c29884738126930b6e8f53f",
    # the same with the tiny cohort's readers, as preprocess_cohort fills them in
    "64, unregistered, 3 readers": (
        "8214ef89276890707e89ee6c89e38feea9d86ca27da529fab454dde6e4cd3e16"
    ),
}
UNREGISTERED = PreprocessSettings(crop_size=64, register=False)


def test_one_slice_settings_hash_is_the_one_from_before_slices_existed():
    from toolkit.artifacts import settings_hash

    assert "slices" not in PreprocessSettings().as_dict()
    assert settings_hash(PreprocessSettings().as_dict()) == PINNED_SETTINGS_HASHES["default"]
    pinned = PINNED_SETTINGS_HASHES["64, unregistered"]
    assert settings_hash(UNREGISTERED.as_dict()) == pinned
    assert PreprocessSettings(slices=3).as_dict()["slices"] == 3
    assert (
        settings_hash(PreprocessSettings(slices=3).as_dict()) != PINNED_SETTINGS_HASHES["default"]
    )


def _without_settings(metadata) -> dict:
    meta = json.loads(str(metadata))
    return {k: v for k, v in meta.items() if k not in ("settings", "settings_hash")}


def test_multi_slice_crops_add_keys_and_leave_the_one_slice_crops_bit_for_bit(
    tiny_cohort, tmp_path
):
    from dataclasses import replace

    from toolkit.imaging.roi import tumour_slices

    manifest = _cohort(tiny_cohort, tmp_path, ("P004",))
    _run(manifest, tmp_path / "one", UNREGISTERED)
    _run(manifest, tmp_path / "three", replace(UNREGISTERED, slices=3))
    with (
        np.load(tmp_path / "one" / "P004.npz") as one,
        np.load(tmp_path / "three" / "P004.npz") as k,
    ):
        assert one.files == ONE_SLICE_KEYS  # the contract of one-slice crops, unchanged
        meta = json.loads(str(one["metadata"]))
        assert "slices" not in meta["settings"]
        assert meta["settings_hash"] == PINNED_SETTINGS_HASHES["64, unregistered, 3 readers"]
        added = {f"slices_{x}" for x in ("arterial", "portal", "mask", "index", "centre", "reader")}
        assert set(k.files) == set(ONE_SLICE_KEYS) | added
        for key in ONE_SLICE_KEYS[:-1]:  # the largest-ROI crops do not depend on `slices`
            assert one[key].dtype == k[key].dtype and one[key].tobytes() == k[key].tobytes(), key
        assert _without_settings(one["metadata"]) == _without_settings(k["metadata"])
        assert json.loads(str(k["metadata"]))["settings"]["slices"] == 3
        readers = list(k["readers"])
        for r, reader in enumerate(readers):
            name = f"mask_{reader}.nii.gz"
            mask = sitk.GetArrayFromImage(_image(tmp_path / "images" / "P004", name)) > 0.5
            expected = tumour_slices(mask, 3)  # unregistered: the mask's grid is the portal's
            mine = k["slices_reader"] == r
            assert k["slices_index"][mine].tolist() == expected.tolist()
            assert len(expected) == 3 and one["slice_index"][r] in expected
            at_largest = np.flatnonzero(mine)[expected.tolist().index(one["slice_index"][r])]
            for phase in ("arterial", "portal", "mask"):
                assert k[f"slices_{phase}"][at_largest].tobytes() == one[phase][r].tobytes()
        assert k["slices_reader"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
        assert k["slices_arterial"].shape == (9, 64, 64) and k["slices_mask"].dtype == np.uint8
        assert k["slices_centre"].shape == (9, 2)


def test_all_slices_crops_every_slice_with_tumour(tiny_cohort, tmp_path):
    from dataclasses import replace

    manifest = _cohort(tiny_cohort, tmp_path, ("P004",))
    _run(manifest, tmp_path / "all", replace(UNREGISTERED, slices="all"))
    mask = sitk.GetArrayFromImage(_image(tmp_path / "images" / "P004", "mask_reader2.nii.gz"))
    with np.load(tmp_path / "all" / "P004.npz") as npz:
        last = npz["slices_reader"] == 2
        expected = np.flatnonzero((mask > 0.5).reshape(len(mask), -1).any(axis=1))
        assert npz["slices_index"][last].tolist() == expected.tolist()
        assert len(expected) > 1
        # each slice's crop is centred on its own slice's ROI centroid and z-scored over the crop
        from toolkit.imaging.roi import centroid

        centres = [list(centroid(mask[z] > 0.5)) for z in expected]
        assert npz["slices_centre"][last].tolist() == centres
        assert npz["slices_mask"][last].sum(axis=(1, 2)).tolist() == [
            int((mask[z] > 0.5).sum()) for z in expected
        ]  # the whole ROI of each slice lies in its 64 x 64 crop
        np.testing.assert_allclose(npz["slices_portal"].mean(axis=(1, 2)), 0.0, atol=1e-4)


def test_slices_come_from_the_study_config_and_bad_values_are_refused():
    from toolkit.config import loads_study
    from toolkit.synth.cohort import STUDY_TOML

    toml = STUDY_TOML.replace("register = true", 'register = true\nslices = "all"')
    assert PreprocessSettings.from_config(loads_study(toml)).slices == "all"
    assert PreprocessSettings.from_config(loads_study(STUDY_TOML)).slices == 1
    for bad in (0, -1, True, "most"):
        with pytest.raises(ValueError, match="slices must be a positive integer or 'all'"):
            PreprocessSettings(slices=bad)
