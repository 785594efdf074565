import pickle

import numpy as np
import pytest
import SimpleITK as sitk

from toolkit.imaging.io import ImageReadError, read_volume, same_geometry, write_volume


def _volume():
    array = (np.arange(4 * 5 * 6).reshape(4, 5, 6) - 60).astype(np.int16)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 0.8, 2.5))
    image.SetOrigin((-10.0, 5.0, 3.0))
    return image, array


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_volume_formats_round_trip(tmp_path, suffix):
    image, array = _volume()
    path = write_volume(image, tmp_path / f"ct{suffix}")
    back = read_volume(path)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), array.astype(np.float32))
    assert same_geometry(image, back) is None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


@pytest.fixture
def restored_locale():
    """GDCM's DICOM writer sets the process's locale to "C" (LC_ALL) and leaves it so:
    every later ``open()`` without an encoding would then decode ASCII. Restore it."""
    import locale

    saved = locale.setlocale(locale.LC_ALL)
    yield
    locale.setlocale(locale.LC_ALL, saved)


def test_dicom_series_folder_is_read_as_one_volume(tmp_path, restored_locale):
    image, array = _volume()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series = "1.2.826.0.1.3680043.2.1125.1.999"
    for k in range(image.GetDepth()):
        plane = image[:, :, k]
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        for tag, value in {
            "0020|000e": series,
            "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{v:.3f}" for v in position),
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0008|0060": "CT",
        }.items():
            plane.SetMetaData(tag, value)
        writer.SetFileName(str(tmp_path / f"slice{k:03d}.dcm"))
        writer.Execute(plane)
    volume = read_volume(tmp_path)
    assert volume.GetSize() == (6, 5, 4)
    np.testing.assert_allclose(volume.GetSpacing()[2], 2.5, atol=1e-3)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(volume), array.astype(np.float32))


def test_missing_truncated_and_garbage_files_raise_naming_the_file(tmp_path):
    image, _ = _volume()
    with pytest.raises(ImageReadError, match=r"absent\.nii\.gz: file not found"):
        read_volume(tmp_path / "absent.nii.gz")
    path = write_volume(image, tmp_path / "cut.nrrd")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.nrrd: cannot read"):
        read_volume(path)
    garbage = tmp_path / "garbage.nii.gz"
    garbage.write_bytes(b"this is not an image")
    with pytest.raises(ImageReadError, match=r"garbage\.nii\.gz: not a gzip file") as error:
        read_volume(garbage)
    assert error.value.path == garbage and error.value.problem.startswith("not a gzip file")
    copy = pickle.loads(pickle.dumps(error.value))  # crosses a Dask worker boundary intact
    assert (copy.path, copy.problem, str(copy)) == (garbage, error.value.problem, str(error.value))
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(ImageReadError, match="no DICOM series"):
        read_volume(tmp_path / "empty_folder")


def _ct(size=(8, 8, 4), spacing=(1.0, 1.0, 5.0), origin=(0.0, 0.0, 0.0), direction=None):
    """A real SimpleITK image; geometry set from numpy float64 values, as readers give them."""
    image = sitk.Image(list(size), sitk.sitkFloat32)
    image.SetSpacing(tuple(np.asarray(spacing, dtype=np.float64)))
    image.SetOrigin(tuple(np.asarray(origin, dtype=np.float64)))
    if direction is not None:
        image.SetDirection(tuple(np.asarray(direction, dtype=np.float64).ravel()))
    return image


FLIPPED_Z = np.diag([1.0, 1.0, -1.0])
TILTED = [[1.0, 0.0, 0.0], [0.0, np.cos(0.5), -np.sin(0.5)], [0.0, np.sin(0.5), np.cos(0.5)]]


@pytest.mark.parametrize(
    "other, message",
    [
        (_ct(spacing=(0.8, 0.8, 5.0)), "spacing 0.8 x 0.8 x 5 mm vs 1 x 1 x 5 mm"),
        (_ct(size=(8, 8, 2)), "size 8 x 8 x 2 voxels vs 8 x 8 x 4 voxels"),
        (_ct(origin=(-120.5, 3.25, 10.0)), "origin (-120.5, 3.25, 10) mm vs (0, 0, 0) mm"),
        (
            _ct(direction=FLIPPED_Z),
            "direction [1, 0, 0; 0, 1, 0; 0, 0, -1] vs [1, 0, 0; 0, 1, 0; 0, 0, 1]",
        ),
        (
            _ct(direction=TILTED),
            "direction [1, 0, 0; 0, 0.877583, -0.479426; 0, 0.479426, 0.877583] "
            "vs [1, 0, 0; 0, 1, 0; 0, 0, 1]",
        ),
    ],
    ids=["spacing", "size", "origin", "direction-flip", "direction-tilt"],
)
def test_geometry_difference_is_plain_numbers_with_units(other, message):
    reference = _ct()
    assert same_geometry(reference, reference) is None
    described = same_geometry(reference, other)
    assert described == message
    assert "np.float64" not in described and "float64" not in described
    named = same_geometry(reference, other, names=("portal", "mask_r1"))
    left, right = message.split(" vs ")
    assert named == f"{left} (mask_r1) vs {right} (portal)"


def test_geometry_within_tolerance_is_the_same():
    reference = _ct(spacing=(0.7, 0.8, 2.5), origin=(-10.0, 5.0, 3.0))
    close = _ct(spacing=(0.7000001, 0.8, 2.5), origin=(-10.0, 5.0, 3.0004))
    assert same_geometry(reference, close) is None
