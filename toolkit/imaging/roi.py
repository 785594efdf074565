"""The tumour ROI: mask checks, the largest-ROI axial slice, the centred crop, z-scoring.

The paper's recipe: the axial slice where the delineated tumour is largest, a
224 x 224 square centred at the ROI's centroid in that slice, and a z-score
(subtract the mean, divide by the standard deviation) over the square. The
z-score over the ROI's pixels only is an option, and so are more slices than the
largest one (`tumour_slices`: k around it, or every slice with tumour).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


class RoiError(ValueError):
    """A mask cannot define an ROI (empty, or no usable slice)."""


@dataclass(frozen=True)
class Components:
    """The mask reduced to its largest 3-D connected component."""

    mask: np.ndarray  # uint8, (z, y, x)
    n_components: int
    kept_voxels: int
    dropped_voxels: int


def largest_component(mask: np.ndarray, name: str = "mask") -> Components:
    """Keep the largest 26-connected component of a binary mask.

    Raises :class:`RoiError` when the mask is empty.
    """
    binary = np.asarray(mask) > 0
    if not binary.any():
        raise RoiError(f"{name} is empty (no voxel > 0)")
    # labelled within the mask's bounding box only (every component lies inside it, and
    # C order inside the box is the whole array's, so the labels and the kept one are the same)
    box = _bounding_box(binary)
    labels, n = ndimage.label(binary[box], structure=np.ones((3, 3, 3), bool))
    if n == 1:
        return Components(binary.astype(np.uint8), 1, int(np.count_nonzero(labels)), 0)
    sizes = np.bincount(labels.ravel())[1:]
    keep = int(np.argmax(sizes)) + 1
    kept = np.zeros(binary.shape, np.uint8)
    kept[box] = labels == keep
    return Components(kept, int(n), int(sizes[keep - 1]), int(sizes.sum() - sizes[keep - 1]))


def _bounding_box(binary: np.ndarray) -> tuple[slice, ...]:
    """The smallest box (one slice per axis) that holds every True of a non-empty ``binary``."""
    box = []
    for axis in range(binary.ndim):
        others = tuple(a for a in range(binary.ndim) if a != axis)
        where = np.flatnonzero(binary.any(axis=others))
        box.append(slice(int(where[0]), int(where[-1]) + 1))
    return tuple(box)


def largest_slice(mask: np.ndarray) -> int:
    """Index of the axial slice (axis 0) with the largest ROI area (the first if tied)."""
    areas = np.asarray(mask).reshape(mask.shape[0], -1).sum(axis=1)
    if areas.max() <= 0:
        raise RoiError("the mask has no voxel in any slice")
    return int(np.argmax(areas))


def tumour_slices(mask: np.ndarray, slices: int | str = 1) -> np.ndarray:
    """The axial slices (axis 0) whose crops give a patient's features, in increasing order.

    With T the slices that hold tumour (ROI area > 0), in order, and s the largest-ROI
    slice (`largest_slice`) at position p of T:

    - ``slices = 1``: [s], the paper's choice;
    - ``slices = k > 1``: the k consecutive slices of T at positions p - floor(k/2) to
      p - floor(k/2) + k - 1, so s is the middle one for odd k and, for even k, the one
      just above the middle (k/2 slices of lower index, k/2 - 1 of higher index). Where
      the window would pass the tumour's first or last slice (the volume's edge included,
      which the tumour cannot pass) it is shifted back inside T, so it keeps k slices
      and still holds s; a tumour on fewer than k slices gives all of T;
    - ``slices = "all"``: all of T.

    Windows are taken in T, not in the volume, so a slice without tumour is never chosen
    (a mask whose tumour skips slices yields the nearest slices that hold it).
    """
    whole = isinstance(slices, int) and not isinstance(slices, bool)
    if not (slices == "all" or (whole and slices >= 1)):
        raise ValueError(f"slices must be a positive integer or 'all'; got {slices!r}")
    areas = np.asarray(mask).reshape(mask.shape[0], -1).sum(axis=1)
    largest = largest_slice(mask)
    tumour = np.flatnonzero(areas > 0)
    if slices == "all":
        return tumour
    k = min(int(slices), len(tumour))
    position = int(np.searchsorted(tumour, largest))
    start = min(max(position - int(slices) // 2, 0), len(tumour) - k)
    return tumour[start : start + k]


def centroid(mask2d: np.ndarray) -> tuple[int, int]:
    """ROI centroid (row, column) in a slice, rounded to the nearest pixel."""
    rows, cols = np.nonzero(mask2d)
    return int(np.rint(rows.mean())), int(np.rint(cols.mean()))


def crop(image2d: np.ndarray, centre: tuple[int, int], size: int, fill: float) -> np.ndarray:
    """A `size` x `size` window of `image2d` centred at `centre`, padded with `fill`.

    The window spans rows ``centre_row - size // 2`` to ``centre_row + (size + 1) // 2``
    (and the same for columns); where it leaves the image the value is `fill`.
    """
    out = np.full((size, size), fill, dtype=image2d.dtype)
    r0, c0 = centre[0] - size // 2, centre[1] - size // 2
    ny, nx = image2d.shape
    rs, re = max(r0, 0), min(r0 + size, ny)
    cs, ce = max(c0, 0), min(c0 + size, nx)
    if rs < re and cs < ce:
        out[rs - r0 : re - r0, cs - c0 : ce - c0] = image2d[rs:re, cs:ce]
    return out


def zscore(values: np.ndarray, mask: np.ndarray | None = None, where: str = "crop") -> np.ndarray:
    """(x - mean) / sd with mean and sd over the whole crop or over the ROI (`where`).

    sd is the population standard deviation (numpy's ddof=0). A constant region
    gives sd = 0; then only the mean is removed.
    """
    if where not in ("crop", "roi"):
        raise ValueError(f"zscore must be 'crop' or 'roi', not {where!r}")
    values = np.asarray(values, dtype=np.float64)
    region = values if where == "crop" else values[np.asarray(mask) > 0]
    if region.size == 0:
        raise RoiError("the ROI has no pixel in the crop, cannot z-score over it")
    mean, sd = float(region.mean()), float(region.std())
    return ((values - mean) / (sd if sd > 0 else 1.0)).astype(np.float32)


def border_value(image2d: np.ndarray) -> float:
    """Background value of a slice: the median of its outermost rows and columns."""
    edge = np.concatenate([image2d[0], image2d[-1], image2d[:, 0], image2d[:, -1]])
    return float(np.median(edge))
