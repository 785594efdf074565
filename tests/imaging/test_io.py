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


def test_dicom_series_folder_is_read_as_one_volume(tmp_path):
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


def test_geometry_difference_is_described():
    image, _ = _volume()
    other = sitk.Image(image)
    other.SetSpacing((0.7, 0.8, 3.0))
    assert "spacing" in same_geometry(image, other)
    assert "size" in same_geometry(image, image[:, :, :2])
