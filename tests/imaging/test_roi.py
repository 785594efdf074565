import numpy as np
import pytest

from toolkit.imaging.roi import (
    RoiError,
    border_value,
    centroid,
    crop,
    largest_component,
    largest_slice,
    zscore,
)


def test_crop_is_centred_and_padded_with_the_fill_value():
    image = np.arange(100, dtype=np.float32).reshape(10, 10)
    window = crop(image, (1, 9), 4, fill=-1.0)  # rows -1..2, columns 7..10
    expected = np.array(
        [[-1, -1, -1, -1], [7, 8, 9, -1], [17, 18, 19, -1], [27, 28, 29, -1]], dtype=np.float32
    )
    np.testing.assert_array_equal(window, expected)


def test_crop_far_outside_the_image_is_all_fill():
    window = crop(np.ones((5, 5)), (100, 100), 4, fill=7.0)
    assert (window == 7.0).all()


def test_largest_slice_and_centroid():
    mask = np.zeros((4, 8, 8), np.uint8)
    mask[1, 2:4, 2:4] = 1
    mask[2, 1:6, 3:8] = 1
    assert largest_slice(mask) == 2
    assert centroid(mask[2]) == (3, 5)


def test_zscore_over_crop_and_over_roi():
    values = np.array([[1.0, 2.0], [3.0, 10.0]])
    mask = np.array([[1, 1], [0, 0]])
    np.testing.assert_allclose(
        zscore(values, mask, "crop"), (values - 4.0) / np.std([1, 2, 3, 10]), rtol=1e-6
    )
    np.testing.assert_allclose(zscore(values, mask, "roi"), (values - 1.5) / 0.5, rtol=1e-6)
    with pytest.raises(ValueError, match="zscore must be"):
        zscore(values, mask, "slice")


def test_largest_component_keeps_the_biggest_blob():
    mask = np.zeros((5, 10, 10), np.uint8)
    mask[1:4, 1:5, 1:5] = 1  # 48 voxels
    mask[2, 8, 8] = 1  # 1 voxel, not touching
    parts = largest_component(mask)
    assert parts.n_components == 2
    assert parts.kept_voxels == 48 and parts.dropped_voxels == 1
    assert parts.mask[2, 8, 8] == 0 and parts.mask.sum() == 48


def test_empty_mask_is_an_error_naming_it():
    with pytest.raises(RoiError, match="mask_reader2 is empty"):
        largest_component(np.zeros((2, 3, 3)), "mask_reader2")


def test_border_value_is_the_median_of_the_edge():
    image = np.full((6, 6), 40.0)
    image[0, :] = -1000.0
    image[:, 0] = -1000.0
    image[-1, :] = -1000.0
    assert border_value(image) == -1000.0
