import numpy as np
import pytest

from toolkit.imaging import roi
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


def _mask_with_areas(areas, shape=(12, 12)):
    """A (len(areas), *shape) mask whose slice z holds areas[z] tumour pixels."""
    mask = np.zeros((len(areas), *shape), np.uint8)
    for z, area in enumerate(areas):
        mask[z].flat[:area] = 1
    return mask


# slice:                 0  1  2  3  4  5  6  7  8  9
INTERIOR = _mask_with_areas([0, 0, 3, 5, 9, 7, 4, 2, 0, 0])  # tumour on 2..7, largest 4


@pytest.mark.parametrize(
    ("slices", "expected"),
    [
        (1, [4]),
        (3, [3, 4, 5]),  # odd: the largest in the middle
        (5, [2, 3, 4, 5, 6]),
        (2, [3, 4]),  # even: k/2 below the largest, k/2 - 1 above
        (4, [2, 3, 4, 5]),
        (6, [2, 3, 4, 5, 6, 7]),  # the whole tumour
        (7, [2, 3, 4, 5, 6, 7]),  # more than the tumour has: all of it, never a slice without
        ("all", [2, 3, 4, 5, 6, 7]),
    ],
)
def test_tumour_slices_around_the_largest(slices, expected):
    assert roi.tumour_slices(INTERIOR, slices).tolist() == expected


def test_tumour_slices_shift_back_inside_at_the_tumour_and_volume_edge():
    # largest at slice 0, the volume's first: the window shifts up, keeping k slices
    first = _mask_with_areas([9, 7, 5, 3, 1, 0])
    assert roi.tumour_slices(first, 3).tolist() == [0, 1, 2]
    assert roi.tumour_slices(first, 4).tolist() == [0, 1, 2, 3]
    # largest at the volume's last slice: shifts down
    last = _mask_with_areas([0, 1, 2, 3, 9])
    assert roi.tumour_slices(last, 3).tolist() == [2, 3, 4]
    assert roi.tumour_slices(last, 2).tolist() == [3, 4]
    # largest at the tumour's last slice inside the volume: the empty slices beyond are not used
    top = _mask_with_areas([0, 2, 4, 8, 0, 0])
    assert roi.tumour_slices(top, 3).tolist() == [1, 2, 3]
    assert roi.tumour_slices(top, 2).tolist() == [2, 3]
    # a one-slice tumour gives that slice whatever k
    single = _mask_with_areas([0, 0, 6, 0])
    assert roi.tumour_slices(single, 5).tolist() == [2]
    assert roi.tumour_slices(single, "all").tolist() == [2]


def test_tumour_slices_skip_slices_without_tumour_and_take_the_first_largest():
    gapped = _mask_with_areas([2, 0, 9, 0, 4, 3])  # tumour on 0, 2, 4, 5
    assert roi.tumour_slices(gapped, 3).tolist() == [0, 2, 4]
    assert roi.tumour_slices(gapped, "all").tolist() == [0, 2, 4, 5]
    tied = _mask_with_areas([0, 5, 5, 5, 0])  # largest_slice takes the first of a tie: 1
    assert roi.tumour_slices(tied, 1).tolist() == [1]
    assert roi.tumour_slices(tied, 2).tolist() == [1, 2]


@pytest.mark.parametrize("bad", [0, -2, True, 2.5, "some", None])
def test_tumour_slices_refuse_what_is_not_a_count_or_all(bad):
    with pytest.raises(ValueError, match="slices must be a positive integer or 'all'"):
        roi.tumour_slices(INTERIOR, bad)


def test_tumour_slices_of_an_empty_mask_is_an_roi_error():
    with pytest.raises(roi.RoiError):
        roi.tumour_slices(np.zeros((3, 4, 4), np.uint8), 3)
