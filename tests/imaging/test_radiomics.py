"""PyRadiomics features of the volumes the crops come from: the wiring, not PyRadiomics itself.

One module-scoped cohort: three patients of the tiny cohort, registration off (the
phases share one grid), patient P003's reader2 mask cut down to one voxel, preprocessed
with the volumes' boxes the stage reads. The features must equal PyRadiomics run
directly on the volumes rebuilt from the inputs, column for column and bit for bit
(but the mesh sums, to rounding); the one-voxel mask gives NaN with a warning naming P003.
"""

from __future__ import annotations

import copy
import functools
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from toolkit.config import load_study
from toolkit.contracts import RadiomicsFeature
from toolkit.imaging import radiomics as rad
from toolkit.imaging.manifest import read_manifest
from toolkit.imaging.preprocess import (
    BOX_MARGIN,
    PreprocessSettings,
    preprocess_cohort,
    registered_volumes,
)

PATIENTS = ("P001", "P002", "P003")
READERS = ("reader1_a", "reader1_b", "reader2")


def _one_voxel(folder):
    """Keep one voxel of the mask (the one nearest its centroid that is inside it)."""
    path = folder / "mask_reader2.nii.gz"
    image = sitk.ReadImage(str(path))
    array = sitk.GetArrayFromImage(image)
    inside = np.argwhere(array > 0.5)
    keep = inside[np.argmin(((inside - inside.mean(axis=0)) ** 2).sum(axis=1))]
    one = np.zeros_like(array)
    one[tuple(keep)] = 1
    out = sitk.GetImageFromArray(one)
    out.CopyInformation(image)
    sitk.WriteImage(out, str(path))


@pytest.fixture(scope="module")
def cohort(tiny_cohort, tmp_path_factory):
    root = tmp_path_factory.mktemp("radiomics_cohort")
    manifest = pd.read_csv(tiny_cohort / "manifest.csv")
    manifest[manifest["patient"].isin(PATIENTS)].to_csv(root / "manifest.csv", index=False)
    for patient in PATIENTS:
        shutil.copytree(tiny_cohort / "images" / patient, root / "images" / patient)
    shutil.copy(tiny_cohort / "study.toml", root / "study.toml")
    _one_voxel(root / "images" / "P003")
    config = load_study(root)
    settings = PreprocessSettings.from_config(config, register=False, qc=False)
    summary = preprocess_cohort(
        root / "manifest.csv", root / "crops", workers=0, progress=False, settings=settings,
        volumes=True,  # as the preprocess stage keeps them: the stage reads the boxes
    )  # fmt: skip
    assert summary.n_failed == 0, summary.failures
    assert len(list((root / "crops" / "volumes").glob("*.npz"))) == len(PATIENTS)
    params = rad.extractor_parameters(
        rad.parameters_from_settings(config.radiomics), config.radiomics.modes
    )
    features = rad.RadiomicsSettings(tuple(config.imaging.phases), params)
    rows = read_manifest(root / "manifest.csv", settings.readers).rows()
    with pytest.warns(rad.RadiomicsWarning) as caught:
        result = rad.radiomics_cohort(
            rows, root / "crops", settings, features, workers=0, progress=False
        )
    return {
        "root": root,
        "rows": {r["patient"]: r for r in rows},
        "preprocess": settings,
        "settings": features,
        "result": result,
        "warned": [str(w.message) for w in caught],
    }


def test_one_row_per_patient_and_reader_and_columns_named_by_the_contract(cohort):
    table = cohort["result"].features
    assert list(table.columns[:2]) == ["patient", "reader"]
    assert list(zip(table["patient"], table["reader"], strict=True)) == [
        (p, r) for p in PATIENTS for r in READERS
    ]
    names = [RadiomicsFeature.parse(c) for c in table.columns[2:]]
    assert [c.format() for c in names] == list(table.columns[2:])
    blocks = list(dict.fromkeys((n.phase, n.mode) for n in names))
    assert blocks == [("arterial", "3d"), ("arterial", "2d"), ("portal", "3d"), ("portal", "2d")]
    assert "portal_3d_original_shape_VoxelVolume" in table.columns
    assert "arterial_2d_original_shape2D_PixelSurface" in table.columns
    classes = {(n.mode, n.feature_class) for n in names}
    assert ("3d", "shape2D") not in classes and ("2d", "shape") not in classes
    assert {n.feature_class for n in names} >= {"firstorder", "glcm", "glrlm", "glszm", "ngtdm"}


def _direct(volumes, phase, reader, mode, params):
    """PyRadiomics itself on the whole registered volume (no crop of ours) and the mask."""
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    image, mask = volumes.phase(phase), volumes.masks[reader]
    if mode == "2d":
        k = volumes.slice_index[reader]
        image, mask = image[:, :, k : k + 1], mask[:, :, k : k + 1]
    result = RadiomicsFeatureExtractor(copy.deepcopy(params[mode])).execute(image, mask)
    return {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}


@pytest.mark.parametrize("patient", ["P001", "P002"])
def test_every_feature_equals_pyradiomics_run_directly_on_the_same_volumes(cohort, patient):
    table = cohort["result"].features.set_index(["patient", "reader"])
    volumes = registered_volumes(
        cohort["rows"][patient], cohort["preprocess"], cohort["root"] / "crops" / f"{patient}.npz"
    )
    compared = 0
    for reader in READERS:
        for phase in ("arterial", "portal"):
            for mode in ("3d", "2d"):
                direct = _direct(volumes, phase, reader, mode, cohort["settings"].parameters)
                ours = table.loc[(patient, reader)]
                for name, value in direct.items():
                    feature = RadiomicsFeature.of(phase, mode, name)
                    column = feature.format()
                    if feature.feature_class == "shape" and feature.feature in rad.MESH_SUMS:
                        # the mesh's area and volume summed in another order (toolkit.imaging.mesh)
                        assert ours[column] == pytest.approx(value, rel=1e-12, abs=0), column
                    else:
                        assert ours[column] == value, (patient, reader, column)
                    compared += 1
    assert compared == len(table.columns) * len(READERS)


def test_voxel_volume_and_slice_area_are_the_masks_voxel_counts(cohort):
    """By hand: VoxelVolume = voxels x voxel volume; the 2-D PixelSurface = the crop's mask
    pixels x pixel area (the 2-D features are of the slice the crops were cut from)."""
    table = cohort["result"].features.set_index(["patient", "reader"])
    for patient in ("P001", "P002"):
        volumes = registered_volumes(
            cohort["rows"][patient],
            cohort["preprocess"],
            cohort["root"] / "crops" / f"{patient}.npz",
        )
        with np.load(cohort["root"] / "crops" / f"{patient}.npz") as crop:
            crop_pixels = crop["mask"].reshape(len(READERS), -1).sum(axis=1)
            spacing = crop["spacing"]
        for i, reader in enumerate(READERS):
            voxels = int(sitk.GetArrayViewFromImage(volumes.masks[reader]).sum())
            row = table.loc[(patient, reader)]
            assert row["portal_3d_original_shape_VoxelVolume"] == pytest.approx(
                voxels * np.prod(spacing), rel=1e-12
            )
            assert row["portal_2d_original_shape2D_PixelSurface"] == pytest.approx(
                crop_pixels[i] * spacing[0] * spacing[1], rel=1e-12
            )


def test_a_one_voxel_mask_gives_nan_features_and_a_warning_naming_the_patient(cohort):
    table = cohort["result"].features.set_index(["patient", "reader"])
    assert table.loc[("P003", "reader2")].isna().all()
    assert table.loc[("P003", "reader1_a")].notna().all()
    assert table.drop(index=[("P003", "reader2")]).notna().all().all()
    warned = cohort["warned"]
    assert len(warned) == 4  # two phases x two modes
    assert all(w.startswith("patient P003, reader reader2, ") for w in warned)
    assert any("arterial 3d: PyRadiomics could not compute the features" in w for w in warned)
    assert "1 segmented voxel" in warned[0] and warned[0].endswith("; all NaN")
    listed = cohort["result"].warnings
    assert list(listed.columns) == ["patient", "reader", "phase", "mode", "warning"]
    assert set(listed["patient"]) == {"P003"} and list(listed["warning"]) == warned


def test_volumes_are_those_the_crops_were_cut_from(cohort):
    """The rebuilt portal slice, cropped and z-scored as preprocessing does, is the crop."""
    from toolkit.imaging import roi

    patient = "P001"
    volumes = registered_volumes(
        cohort["rows"][patient], cohort["preprocess"], cohort["root"] / "crops" / f"{patient}.npz"
    )
    with np.load(cohort["root"] / "crops" / f"{patient}.npz") as crop:
        for i, reader in enumerate(READERS):
            k = volumes.slice_index[reader]
            assert k == int(crop["slice_index"][i])
            mask = sitk.GetArrayViewFromImage(volumes.masks[reader])[k]
            plane = sitk.GetArrayViewFromImage(volumes.portal)[k]
            fill = roi.border_value(sitk.GetArrayViewFromImage(volumes.portal)[0])
            centre = tuple(crop["centre_index"][i])
            np.testing.assert_array_equal(roi.crop(mask, centre, 224, 0), crop["mask"][i])
            window = roi.zscore(roi.crop(plane, centre, 224, fill), crop["mask"][i], "crop")
            np.testing.assert_allclose(window, crop["portal"][i], rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "imaging",
    [{}, {"spacing_mm": 1.5}, {"mask_phase": "portal"}],
    ids=["registered", "in-plane-resampled", "masks-on-portal"],
)
def test_the_masks_box_is_the_whole_volumes_region_bit_for_bit(cohort, tiny_cohort, imaging):
    """With the Original image alone the stage rebuilds only the box of the grid that holds
    the masks (``registered_volumes(..., margin)``): every voxel of it must be the whole
    volumes' voxel, so that the features are those of the whole volumes. Registered (a
    real rotation), resampled in-plane, and with the masks drawn on the portal phase."""
    root = cohort["root"] / f"box_{'_'.join(imaging) or 'registered'}"
    settings = PreprocessSettings.from_config(load_study(cohort["root"]), qc=False, **imaging)
    summary = preprocess_cohort(
        cohort["root"] / "manifest.csv", root, workers=0, progress=False, settings=settings,
        volumes=True,
    )  # fmt: skip
    assert summary.n_failed == 0, summary.failures
    row, crop = cohort["rows"]["P001"], root / "P001.npz"
    whole = registered_volumes(row, settings, crop)
    box = registered_volumes(row, settings, crop, BOX_MARGIN)  # preprocessing's, read back
    kept = root / "volumes" / "P001.npz"
    kept.rename(kept.with_suffix(".away"))
    rebuilt = registered_volumes(row, settings, crop, BOX_MARGIN)  # from the inputs
    kept.with_suffix(".away").rename(kept)
    _assert_same_volumes(box, rebuilt)
    assert whole.offset == (0, 0, 0) and box.offset != (0, 0, 0)
    size, index = list(box.portal.GetSize()), list(box.offset)
    assert np.prod(size) < np.prod(whole.portal.GetSize()) / 2
    for name in ("arterial", "portal", *(f"mask {r}" for r in READERS)):
        ours, theirs = (
            (v.masks[name[5:]] if name.startswith("mask") else v.phase(name)) for v in (box, whole)
        )
        region = sitk.RegionOfInterest(theirs, size, index)
        assert ours.GetOrigin() == region.GetOrigin(), name
        assert ours.GetSpacing() == region.GetSpacing(), name
        np.testing.assert_array_equal(
            sitk.GetArrayViewFromImage(ours), sitk.GetArrayViewFromImage(region), err_msg=name
        )
    for reader in READERS:
        assert box.slice_index[reader] == whole.slice_index[reader] - index[2]
        inside = int(sitk.GetArrayViewFromImage(box.masks[reader]).sum())
        assert inside == int(sitk.GetArrayViewFromImage(whole.masks[reader]).sum()), reader
    features = [rad.volume_features(v, cohort["settings"]) for v in (box, whole)]
    assert features[0] == features[1]


def _assert_same_volumes(ours, theirs):
    """Two RegisteredVolumes alike voxel for voxel, in geometry and pixel type."""
    assert (ours.patient, ours.slice_index, ours.offset) == (
        theirs.patient,
        theirs.slice_index,
        theirs.offset,
    )
    assert list(ours.masks) == list(theirs.masks)
    pairs = [(ours.arterial, theirs.arterial), (ours.portal, theirs.portal)]
    pairs += [(ours.masks[r], theirs.masks[r]) for r in ours.masks]
    for a, b in pairs:
        assert a.GetPixelID() == b.GetPixelID()
        assert (a.GetOrigin(), a.GetSpacing(), a.GetDirection()) == (
            b.GetOrigin(),
            b.GetSpacing(),
            b.GetDirection(),
        )
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b))


def test_preprocessing_keeps_the_box_the_stage_reads_and_only_this_crops(cohort, tmp_path):
    """``preprocess_cohort(volumes=True)`` keeps crops/volumes/<patient>.npz, which
    registered_volumes reads (the same volumes as rebuilt from the inputs); a box of
    another patient, a corrupt one or one for another margin is not used; a rerun
    without it removes it, and a crop kept without its box is made again."""
    settings = PreprocessSettings.from_config(load_study(cohort["root"]), qc=False)
    manifest, out = cohort["root"] / "manifest.csv", tmp_path / "crops"
    run = functools.partial(preprocess_cohort, manifest, out, workers=0, progress=False)
    assert run(settings=settings).n_failed == 0
    assert not (out / "volumes").exists()
    again = run(settings=settings, volumes=True)
    assert again.n_skipped == 0 and again.n_failed == 0  # the crops made again, with boxes
    assert sorted(p.name for p in (out / "volumes").glob("*.npz")) == [f"{p}.npz" for p in PATIENTS]
    assert run(settings=settings, volumes=True).n_skipped == len(PATIENTS)
    row, crop = cohort["rows"]["P001"], out / "P001.npz"
    kept = registered_volumes(row, settings, crop, BOX_MARGIN)
    box = out / "volumes" / "P001.npz"
    original = box.read_bytes()
    box.write_bytes((out / "volumes" / "P002.npz").read_bytes())  # another patient's box
    _assert_same_volumes(registered_volumes(row, settings, crop, BOX_MARGIN), kept)
    box.write_bytes(original[: len(original) // 2])  # truncated
    _assert_same_volumes(registered_volumes(row, settings, crop, BOX_MARGIN), kept)
    box.write_bytes(original)
    wider = registered_volumes(row, settings, crop, (3, 3, 2))  # another margin: rebuilt
    assert np.prod(wider.portal.GetSize()) > np.prod(kept.portal.GetSize())
    features = [rad.volume_features(v, cohort["settings"]) for v in (kept, wider)]
    assert features[0] == features[1]
    assert run(settings=settings).n_skipped == len(PATIENTS)
    assert run(settings=replace(settings, zscore="roi")).n_failed == 0  # crops made again
    assert not list((out / "volumes").glob("*.npz"))


def test_the_plain_path_finds_pyradiomics_own_bounding_box_and_hands_over_the_rest(cohort):
    """The stage's extractions take the plain path; its bounding box is PyRadiomics'
    ``checkMask`` box (3-D tumour and 2-D slice); a mask that check refuses (P003's one
    voxel) and an extraction with more steps go to PyRadiomics' own ``execute``."""
    from radiomics import imageoperations

    params = cohort["settings"].parameters
    for patient in ("P001", "P003"):
        volumes = registered_volumes(
            cohort["rows"][patient], cohort["preprocess"],
            cohort["root"] / "crops" / f"{patient}.npz", BOX_MARGIN,
        )  # fmt: skip
        for reader in READERS:
            for mode in ("3d", "2d"):
                size, index = rad._region(volumes, reader, mode, True)
                mask = sitk.RegionOfInterest(volumes.masks[reader], size, index)
                image = sitk.RegionOfInterest(volumes.portal, size, index)
                extractor = rad.make_extractor(params[mode])
                assert rad._plain_extraction(extractor, image, mask, None, None, {})
                settings = extractor.settings
                _, loaded = extractor.loadImage(image, mask, None, **settings)
                ours = rad._bounding_box(loaded, settings)
                try:
                    theirs, _ = imageoperations.checkMask(image, loaded, **settings)
                except ValueError:  # refused: the plain path must not take it
                    assert (patient, reader) == ("P003", "reader2") and ours is None
                    continue
                np.testing.assert_array_equal(ours, theirs)
                assert ours.dtype == theirs.dtype
    diagnostics = rad.make_extractor(params["3d"] | {"setting": {"additionalInfo": True}})
    assert not rad._plain_extraction(diagnostics, image, mask, None, None, {})
    filtered = rad.make_extractor(params["3d"] | {"imageType": {"Original": {}, "LoG": {}}})
    assert not rad._plain_extraction(filtered, image, mask, None, None, {})
    shifted = sitk.Image(mask)
    shifted.SetOrigin(tuple(o + 0.5 for o in mask.GetOrigin()))
    assert not rad._plain_extraction(extractor, image, shifted, None, None, {})
    assert not rad._plain_extraction(extractor, image, mask, 2, None, {})


def test_a_stale_crop_fails_the_patient_not_the_cohort(cohort, tmp_path):
    settings = cohort["preprocess"]
    other = PreprocessSettings.from_config(load_study(cohort["root"]), register=False, zscore="roi")
    record = rad.patient_features(
        cohort["rows"]["P001"], str(cohort["root"] / "crops/P001.npz"), other, cohort["settings"]
    )
    assert record["status"] == "failed" and record["stage"] == "crops"
    assert "P001.npz was made from other images or settings" in record["reason"]
    assert settings.zscore == "crop"


def test_patients_fanned_out_over_dask_give_the_same_table(cohort):
    with pytest.warns(rad.RadiomicsWarning) as caught:
        fanned = rad.radiomics_cohort(
            list(cohort["rows"].values()),
            cohort["root"] / "crops",
            cohort["preprocess"],
            cohort["settings"],
            workers=1,
            progress=False,
        )
    assert fanned.failures.empty
    pd.testing.assert_frame_equal(fanned.features, cohort["result"].features, check_exact=True)
    assert [str(w.message) for w in caught] == cohort["warned"]


def test_pyradiomics_settings_it_refuses_are_named():
    with pytest.raises(rad.RadiomicsSettingsError, match=r"\[radiomics\] \(3d\): PyRadiomics"):
        rad.RadiomicsSettings(
            ("portal",), {"3d": {"imageType": {"Original": {}}, "setting": {"binWidth": "x"}}}
        ).check()


def test_two_d_parameters_force_2d_with_shape2d_and_keep_the_slice_thickness():
    three_d = {
        "imageType": {"Original": {}},
        "featureClass": {"shape": None, "glcm": None},
        "setting": {"binWidth": 10.0, "resampledPixelSpacing": [1.0, 1.0, 2.0]},
    }
    params = rad.extractor_parameters(three_d, ("3d", "2d"))
    assert params["3d"]["featureClass"] == {"shape": None, "glcm": None}
    assert params["2d"]["featureClass"] == {"shape2D": None, "glcm": None}
    assert params["2d"]["setting"] == {
        "binWidth": 10.0,
        "resampledPixelSpacing": [1.0, 1.0, 0],
        "additionalInfo": False,
        "force2D": True,
        "force2Ddimension": 0,
    }
    assert not rad.crop_safe(params["3d"])
    assert three_d["setting"]["resampledPixelSpacing"] == [1.0, 1.0, 2.0]  # not changed


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (1, 7), (1, 1000), (5, 27)])
def test_first_orders_percentiles_of_one_call_are_pyradiomics_own(shape):
    # segment-based (one row of the ROI's voxels) and voxel-based (a row per kernel, NaN
    # outside the mask); ties, odd and even counts
    from radiomics.firstorder import RadiomicsFirstOrder

    class Voxels:  # only the voxels the getters read
        targetVoxelArray = np.round(np.random.default_rng(1).normal(size=shape) * 3)

    if shape[0] > 1:
        Voxels.targetVoxelArray[1, ::3] = np.nan
    getters = rad._percentiles_once()
    ours, theirs = Voxels(), Voxels()
    for name, getter in getters.items():
        expected = getattr(RadiomicsFirstOrder, name)(theirs)
        got = getter(ours)
        np.testing.assert_array_equal(got, expected)
        assert got.dtype == expected.dtype and got.shape == expected.shape
    # new voxels (PyRadiomics' next voxel batch): found again, not the first ones' values
    ours.targetVoxelArray = theirs.targetVoxelArray = Voxels.targetVoxelArray + 100.0
    for name, getter in getters.items():
        np.testing.assert_array_equal(getter(ours), getattr(RadiomicsFirstOrder, name)(theirs))
    assert set(getters) == {
        "get10PercentileFeatureValue",
        "get90PercentileFeatureValue",
        "getInterquartileRangeFeatureValue",
    }


def test_first_order_without_voxels_fails_as_pyradiomics_does():
    from radiomics.firstorder import RadiomicsFirstOrder

    class Empty:
        targetVoxelArray = np.empty((1, 0))

    for name, getter in rad._percentiles_once().items():
        with pytest.warns(RuntimeWarning):  # numpy's: a mean of nothing, NaN
            expected = getattr(RadiomicsFirstOrder, name)(Empty())
        with pytest.warns(RuntimeWarning):
            got = getter(Empty())
        np.testing.assert_array_equal(got, expected)
