"""Surface area, volume and maximum diameters of a mask's marching-cubes mesh, as
PyRadiomics' 3-D ``shape`` class defines them, without its quadratic diameter search.

PyRadiomics (``radiomics.cShape.calculate_coefficients``, pyradiomics-bhklab 3.1.4) marches
a 2 x 2 x 2 cube over the zero-padded mask: each cube's configuration (which of its eight
voxels are in the mask) gives a fixed set of triangles whose corners are the midpoints of
the cube's edges between a voxel inside and one outside. The mesh's surface area is the sum
of the triangles' areas, its volume the sum of the signed tetrahedra each triangle spans
with the origin (divergence theorem), and the four maximum diameters the largest distances
between two mesh vertices: in the same axial plane, the same coronal plane, the same
sagittal plane and anywhere (IBSI's maximum 2-D diameters and maximum 3-D diameter).
PyRadiomics compares every pair of vertices, O(n^2) in the vertex count, which is most of
the 3-D shape class's time on a tumour of a few thousand vertices.

Here:

* **Diameters** are the same floating-point maxima as PyRadiomics', bit for bit: the
  vertices are the same (every lattice edge of the padded mask whose two voxels differ, at
  its midpoint, each coordinate ``(index + 0.5) * spacing`` or ``index * spacing`` as
  PyRadiomics computes it) and each distance the same sum ``dz^2 + dy^2 + dx^2`` in that
  order, but the search runs only over the vertices that can be an end of a maximum:
  along any grid line the computed distance to a fixed point is non-decreasing in the
  exact coordinate difference, so a vertex between two others on the same line never
  beats both, and only the first and last vertex of each line (in each direction that
  stays in the diameter's plane) are compared.
* **Surface area and volume** are sums over cubes of per-configuration values. The values
  are not a transcription of PyRadiomics' triangle table: they are measured by calling
  PyRadiomics' own ``calculate_coefficients`` on each of the 256 single-cube
  configurations (and on two-cube blocks, for the volume's dependence on the cube's
  position: a triangle's signed volume is linear in a translation of the triangle), once
  per voxel spacing. The sums add the same terms in another order, so they equal
  PyRadiomics' to rounding (relative difference about 1e-13), not bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# a cube's configuration: bit 4 * dz + 2 * dy + dx is set when the voxel at that corner
# (offset dz, dy, dx from the cube's origin) is in the mask
_CORNERS = [(dz, dy, dx) for dz in (0, 1) for dy in (0, 1) for dx in (0, 1)]

_HULL_FROM = 256  # fewer points than this are compared pair by pair without a hull
_CHUNK = 1 << 22  # distances per block of the brute-force search (32 MiB of float64)


@dataclass(frozen=True)
class MeshMeasures:
    """Surface area (mm^2), volume (mm^3) and maximum diameters (mm) of a mask's mesh;
    ``diameters`` in PyRadiomics' order: same axial plane (``Maximum2DDiameterSlice``),
    same coronal plane (``...Column``), same sagittal plane (``...Row``), any (3-D)."""

    surface_area: float
    volume: float
    diameters: tuple[float, float, float, float]


def mesh_measures(mask: np.ndarray, spacing: tuple[float, float, float]) -> MeshMeasures:
    """The measures of ``mask`` (a boolean z, y, x array, zero on every border, as PyRadiomics
    pads it) with voxel ``spacing`` (z, y, x, mm)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 3:
        raise ValueError(f"mesh_measures needs a 3-D mask, got {mask.ndim} dimensions")
    spacing = tuple(float(s) for s in spacing)
    area, volume = _area_volume(mask, spacing)
    return MeshMeasures(area, volume, _diameters(mask, spacing))


def _configurations(mask: np.ndarray) -> np.ndarray:
    """Each cube's configuration, an (nz - 1, ny - 1, nx - 1) array of 0..255."""
    nz, ny, nx = mask.shape
    out = np.zeros((nz - 1, ny - 1, nx - 1), dtype=np.intp)
    for bit, (dz, dy, dx) in enumerate(_CORNERS):
        out |= mask[dz : nz - 1 + dz, dy : ny - 1 + dy, dx : nx - 1 + dx].astype(np.intp) << bit
    return out


def _area_volume(mask: np.ndarray, spacing: tuple[float, float, float]) -> tuple[float, float]:
    if min(mask.shape) < 2:
        return 0.0, 0.0
    area_of, volume_of, shift_of = _cube_tables(spacing)
    config = _configurations(mask)
    counts = np.bincount(config.ravel(), minlength=256)
    area = float(counts @ area_of)
    volume = float(counts @ volume_of)
    for axis in range(3):
        # a cube at index i along ``axis`` adds i times its configuration's shift there
        position = np.arange(config.shape[axis], dtype=float)
        shape = [1, 1, 1]
        shape[axis] = -1
        weights = np.broadcast_to(position.reshape(shape), config.shape)
        by_config = np.bincount(config.ravel(), weights=weights.ravel(), minlength=256)
        volume += float(by_config @ shift_of[axis])
    return area, volume


@lru_cache(maxsize=32)
def _cube_tables(spacing: tuple[float, float, float]):
    """Per configuration: the surface area and the signed volume of a cube at the origin,
    and per axis the volume a cube adds for each step of its position along that axis,
    all measured with PyRadiomics' ``calculate_coefficients`` at ``spacing``."""
    from radiomics import cShape

    def measured(array: np.ndarray) -> tuple[float, float]:
        area, volume, _ = cShape.calculate_coefficients(array, np.asarray(spacing, dtype=float))
        return float(area), float(volume)

    cubes = np.zeros((256, 2, 2, 2), dtype=bool)
    for config in range(256):
        for bit, corner in enumerate(_CORNERS):
            cubes[(config, *corner)] = bool(config >> bit & 1)
    area_of = np.empty(256)
    volume_of = np.empty(256)
    for config in range(256):
        area_of[config], volume_of[config] = measured(cubes[config])
    shift_of = np.empty((3, 256))
    for axis in range(3):
        for config in range(256):
            cube = np.moveaxis(cubes[config], axis, 0)
            # a block of two cubes along ``axis``: an empty plane, then this configuration;
            # the first cube holds the configuration's lower half as its upper half
            block = np.concatenate([np.zeros((1, 2, 2), dtype=bool), cube])
            lower = np.concatenate([np.zeros((1, 2, 2), dtype=bool), cube[:1]])
            first = _configuration_of(np.moveaxis(lower, 0, axis))
            _, both = measured(np.ascontiguousarray(np.moveaxis(block, 0, axis)))
            shift_of[axis, config] = both - volume_of[first] - volume_of[config]
    return area_of, volume_of, shift_of


def _configuration_of(cube: np.ndarray) -> int:
    return sum(int(cube[corner]) << bit for bit, corner in enumerate(_CORNERS))


def _vertices(mask: np.ndarray) -> np.ndarray:
    """The mesh's vertices in doubled index units (an (n, 3) int array, z, y, x): the
    midpoint of every edge between neighbouring voxels of which one is in the mask."""
    found = []
    for axis in range(3):
        low = [slice(None)] * 3
        high = [slice(None)] * 3
        low[axis] = slice(0, -1)
        high[axis] = slice(1, None)
        where = np.argwhere(mask[tuple(low)] != mask[tuple(high)]) * 2
        where[:, axis] += 1
        found.append(where)
    return np.concatenate(found)


def _line_ends(doubled: np.ndarray, along: int) -> np.ndarray:
    """Whether each vertex is the first or last on its grid line along axis ``along``."""
    across = [a for a in range(3) if a != along]
    order = np.lexsort((doubled[:, along], doubled[:, across[1]], doubled[:, across[0]]))
    line = doubled[order][:, across]
    new = np.ones(len(order), dtype=bool)
    new[1:] = np.any(line[1:] != line[:-1], axis=1)
    last = np.ones(len(order), dtype=bool)
    last[:-1] = new[1:]
    out = np.empty(len(order), dtype=bool)
    out[order] = new | last
    return out


def _diameters(mask: np.ndarray, spacing: tuple[float, float, float]):
    doubled = _vertices(mask)
    if len(doubled) < 2:
        return (0.0, 0.0, 0.0, 0.0)
    # the coordinates exactly as PyRadiomics computes them: (index + 0 | 0.5 | 1) * spacing
    points = (doubled / 2.0) * np.asarray(spacing)
    ends = [_line_ends(doubled, axis) for axis in range(3)]
    squared = []
    for plane in range(3):  # the plane of constant z, y, x: lines along the other two axes
        others = [a for a in range(3) if a != plane]
        keep = ends[others[0]] & ends[others[1]]
        squared.append(_max_in_planes(points[keep], plane))
    squared.append(_max_squared(_on_hull(points[ends[0] & ends[1] & ends[2]])))
    return tuple(float(np.sqrt(s)) for s in squared)


def _on_hull(points: np.ndarray) -> np.ndarray:
    """The vertices of the points' convex hull (all the points when the hull is flat or the
    set small). For a fixed point p, a point q that is not a hull vertex is a convex
    combination sum(w_i v_i) of vertices, and ``sum(w_i |p - v_i|^2) = |p - q|^2 +
    sum(w_i |v_i - q|^2)``: some vertex is farther from p, in squared distance, by at least
    the squared distance from q to its nearest vertex, (half the smallest voxel spacing)^2
    or more on this lattice, many orders above a computed distance's rounding (1e-16
    relative). So no point other than a hull vertex ends the maximum 3-D diameter."""
    if len(points) < _HULL_FROM:
        return points
    from scipy.spatial import ConvexHull, QhullError

    try:
        hull = ConvexHull(points)
    except QhullError:  # all in one plane or line: the brute force is cheap then
        return points
    return points[np.sort(hull.vertices)]


def _max_in_planes(points: np.ndarray, plane: int) -> float:
    """The largest squared distance between two points with the same coordinate ``plane``.

    Planes are searched widest first and the search stops at the first plane that cannot
    hold a longer pair: no two points of a plane are farther apart than twice the largest
    distance from its bounding box's centre, a bound widened by 1e-9 (relative) to cover
    the rounding of it and of the computed distances, so the result is the same."""
    if len(points) < 2:
        return 0.0
    order = np.argsort(points[:, plane], kind="stable")
    points = points[order]
    starts = np.flatnonzero(np.r_[True, points[1:, plane] != points[:-1, plane]])
    stops = np.r_[starts[1:], len(points)]
    centre = (np.maximum.reduceat(points, starts) + np.minimum.reduceat(points, starts)) / 2
    offset = points - np.repeat(centre, stops - starts, axis=0)
    offset[:, plane] = 0.0
    radius = np.maximum.reduceat(np.einsum("ij,ij->i", offset, offset), starts)
    bound = 4.0 * radius * (1.0 + 1e-9)
    best = 0.0
    for k in np.argsort(-bound, kind="stable"):
        if bound[k] <= best:
            break
        best = max(best, _max_squared(points[starts[k] : stops[k]]))
    return best


def _max_squared(points: np.ndarray) -> float:
    """The largest squared distance between two of ``points``, each summed as
    ``(dz^2 + dy^2) + dx^2``, PyRadiomics' order of operations."""
    n = len(points)
    best = 0.0
    rows = max(1, _CHUNK // max(n, 1))
    for start in range(0, n, rows):
        block = points[start : start + rows]
        difference = block[:, None, :] - points[None, :, :]
        difference *= difference
        squared = (difference[..., 0] + difference[..., 1]) + difference[..., 2]
        best = max(best, float(squared.max()))
    return best
