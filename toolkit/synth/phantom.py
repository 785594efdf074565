"""Contrast-enhanced CT phantoms of the abdomen with hepatocellular carcinoma.

A patient is a body cross-section (fat ring, soft tissue) holding a liver
(whose caudal tip lies inside the volume), a spleen, two kidneys, the spine
(vertebral bodies with discs every 30 mm), the aorta and the inferior vena cava,
and one or more tumours inside the liver. The structures that change along z
(liver tip, spleen, kidneys, discs) are what lets a rigid registration recover
the z translation. Each structure has an arterial-
and a portal-phase attenuation (HU), so the two phases differ the way CECT
phases do: the aorta is bright in the arterial phase, the liver parenchyma
enhances in the portal phase, and a hepatocellular carcinoma is hyper-enhancing
in the arterial phase and washes out (darker than liver) in the portal phase.

The largest tumour carries the image phenotype of the survival model:

* size: the longest axial diameter (cm) of an ellipsoid with lobulated outline;
* necrosis: the radius of a non-enhancing hypodense core, as a fraction of the
  tumour radius (0 = none);
* heterogeneity: the standard deviation (HU) of a smooth random texture inside
  the viable tumour, identical in both phases (it is tissue, not noise).

The field of view is liver-targeted: the body (about 250 x 235 mm) fills the
205 mm field but for its corners, so a 224-pixel crop around the tumour holds
tissue, not air, and z-scoring over the crop keeps the tumour's contrast
(about 0.3-0.6 SD between tumour and liver).

Edges are rendered with a 0.4 mm logistic partial-volume ramp so that images are
smooth functions of the geometry (sub-voxel registration is then meaningful).
Coordinates are physical (mm), x left→right of the image, y anterior→posterior,
z caudal→cranial, the grid centred at 0; arrays are indexed (z, y, x).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

#: Attenuation (HU) of each structure in the (arterial, portal) phase.
TISSUE_HU = {
    "air": (-1000.0, -1000.0),
    "fat": (-100.0, -100.0),
    "soft": (45.0, 60.0),
    "liver": (70.0, 115.0),
    "spleen": (120.0, 125.0),
    "kidney": (170.0, 150.0),
    "disc": (90.0, 90.0),
    "bone": (350.0, 350.0),
    "cortex": (700.0, 700.0),
    "aorta": (300.0, 160.0),
    "ivc": (80.0, 150.0),
    "necrosis": (12.0, 15.0),
}

#: Width (mm) of the logistic partial-volume edge.
EDGE_MM = 0.4


@dataclass(frozen=True)
class Grid:
    """A CT grid: shape (z, y, x) and spacing (x, y, z) mm, centred at the origin."""

    shape: tuple[int, int, int] = (40, 256, 256)
    spacing: tuple[float, float, float] = (0.8, 0.8, 2.5)

    @property
    def origin(self) -> tuple[float, float, float]:
        """Physical position (x, y, z) of voxel (0, 0, 0), so that the centre is at 0."""
        nz, ny, nx = self.shape
        sx, sy, sz = self.spacing
        return (-(nx - 1) / 2 * sx, -(ny - 1) / 2 * sy, -(nz - 1) / 2 * sz)

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Physical coordinates (x, y, z) along each axis, float32."""
        nz, ny, nx = self.shape
        ox, oy, oz = self.origin
        sx, sy, sz = self.spacing
        return (
            (ox + sx * np.arange(nx)).astype(np.float32),
            (oy + sy * np.arange(ny)).astype(np.float32),
            (oz + sz * np.arange(nz)).astype(np.float32),
        )

    @property
    def half_extent(self) -> tuple[float, float, float]:
        nz, ny, nx = self.shape
        sx, sy, sz = self.spacing
        return (nx * sx / 2, ny * sy / 2, nz * sz / 2)


@dataclass(frozen=True)
class Tumour:
    """One tumour: centre (x, y, z) mm, semi-axes (a, b, c) mm, outline and contents."""

    centre: tuple[float, float, float]
    semi_axes: tuple[float, float, float]
    angle: float  # in-plane rotation (radians)
    lobulation: tuple[tuple[int, float, float], ...]  # (order k, amplitude, phase)
    necrosis: float = 0.0  # core radius / tumour radius
    necrosis_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)  # mm
    heterogeneity: float = 10.0  # HU
    enhancement: float = 60.0  # HU above liver, arterial phase
    washout: float = 25.0  # HU below liver, portal phase


@dataclass(frozen=True)
class Anatomy:
    """Everything that varies between patients' anatomy; the tumours come first (largest)."""

    body_axes: tuple[float, float]
    liver_centre: tuple[float, float, float]
    liver_axes: tuple[float, float, float]
    liver_wobble: tuple[float, float, float, float]  # amplitudes/phases of the outline
    tumours: tuple[Tumour, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Rendered:
    """Noise-free arterial and portal volumes (HU) and the true tumour mask, body frame."""

    arterial: np.ndarray
    portal: np.ndarray
    tumour: np.ndarray  # uint8, the largest tumour
    readers: dict[str, np.ndarray]  # uint8 masks per reader
    liver: np.ndarray  # bool
    lobe_of: tuple[int, ...]  # 0/1 lobe of each tumour


def _ramp(signed_distance: np.ndarray) -> np.ndarray:
    """Occupancy in [0, 1] from a signed distance (mm, negative inside)."""
    return (1.0 / (1.0 + np.exp(np.clip(signed_distance / EDGE_MM, -30, 30)))).astype(np.float32)


def _blend(volume: np.ndarray, occupancy: np.ndarray, value: float | np.ndarray) -> None:
    volume *= 1.0 - occupancy
    volume += occupancy * value


def _body(grid: Grid, anatomy: Anatomy) -> dict[str, np.ndarray]:
    """In-plane (y, x) occupancies of the body, its inner soft tissue, bone and vessels."""
    x, y, _ = grid.axes()
    yy, xx = np.meshgrid(y, x, indexing="ij")
    ax, ay = anatomy.body_axes
    rho = np.sqrt((xx / ax) ** 2 + (yy / ay) ** 2)
    body = _ramp((rho - 1.0) * min(ax, ay))
    inner = _ramp((rho - 1.0) * min(ax, ay) + 9.0)
    spine_r = np.hypot(xx, yy - 0.62 * ay)
    aorta_r = np.hypot(xx - 14.0, yy - 0.30 * ay)
    ivc_r = np.hypot(xx + 16.0, yy - 0.25 * ay)
    return {
        "body": body,
        "inner": inner,
        "cortex": _ramp(spine_r - 17.0),
        "bone": _ramp(spine_r - 14.5),
        "aorta": _ramp(aorta_r - 10.5),
        "ivc": _ramp(ivc_r - 9.0),
    }


def _ellipsoid_distance(x, y, z, centre, axes) -> np.ndarray:
    """Approximate signed distance (mm) to an ellipsoid: (rho - 1) * smallest semi-axis."""
    rho = np.sqrt(
        ((x - centre[0]) / axes[0]) ** 2
        + ((y - centre[1]) / axes[1]) ** 2
        + ((z - centre[2]) / axes[2]) ** 2
    )
    return (rho - 1.0) * min(axes)


def _liver_distance(grid: Grid, anatomy: Anatomy) -> np.ndarray:
    x, y, z = grid.axes()
    z3, y3, x3 = z[:, None, None], y[None, :, None], x[None, None, :]
    a1, p1, a2, p2 = anatomy.liver_wobble
    # a smooth, patient-specific outline: two low-order waves
    wobble = a1 * np.sin(x3 / 23.0 + p1) * np.cos(z3 / 31.0) + a2 * np.sin(y3 / 19.0 + p2)
    return _ellipsoid_distance(x3, y3, z3, anatomy.liver_centre, anatomy.liver_axes) + wobble


def tumour_box(grid: Grid, tumour: Tumour, margin: float = 6.0) -> tuple[slice, slice, slice]:
    """Index slices (z, y, x) of a box that holds the tumour plus `margin` mm."""
    x, y, z = grid.axes()
    reach = max(tumour.semi_axes[:2]) * 1.25 + margin
    reach_z = tumour.semi_axes[2] * 1.25 + margin
    out = []
    for axis, centre, r in (
        (z, tumour.centre[2], reach_z),
        (y, tumour.centre[1], reach),
        (x, tumour.centre[0], reach),
    ):
        lo = int(np.searchsorted(axis, centre - r))
        hi = int(np.searchsorted(axis, centre + r))
        out.append(slice(max(lo, 0), min(hi, axis.size)))
    return tuple(out)  # type: ignore[return-value]


def tumour_distance(grid: Grid, tumour: Tumour, box) -> np.ndarray:
    """Approximate signed distance (mm) to the lobulated tumour outline, inside `box`."""
    x, y, z = grid.axes()
    z3 = z[box[0]][:, None, None] - tumour.centre[2]
    y3 = y[box[1]][None, :, None] - tumour.centre[1]
    x3 = x[box[2]][None, None, :] - tumour.centre[0]
    c, s = np.cos(tumour.angle), np.sin(tumour.angle)
    u = (c * x3 + s * y3) / tumour.semi_axes[0]
    v = (-s * x3 + c * y3) / tumour.semi_axes[1]
    w = z3 / tumour.semi_axes[2]
    rho = np.sqrt(u * u + v * v + w * w)
    phi = np.arctan2(v, u)
    outline = np.ones_like(phi)
    for k, amplitude, phase in tumour.lobulation:
        outline = outline + amplitude * np.cos(k * phi + phase)
    radius = 0.5 * (tumour.semi_axes[0] + tumour.semi_axes[1])
    return ((rho / outline - 1.0) * radius).astype(np.float32)


def smooth_field(rng: np.random.Generator, shape, sigma: tuple[float, float, float]) -> np.ndarray:
    """Gaussian-smoothed white noise (sigma in voxels, z y x) scaled to unit SD (float32).

    Wide in-plane kernels are applied on a grid coarser by d = sigma // 1.5 and
    linearly interpolated back: the same field statistics for a fraction of the work.
    """
    d = max(1, int(min(sigma[1], sigma[2]) // 1.5))
    coarse = tuple(shape) if d == 1 else (shape[0], -(-shape[1] // d) + 1, -(-shape[2] // d) + 1)
    noise = rng.standard_normal(coarse, dtype=np.float32)
    field = ndimage.gaussian_filter(noise, sigma=(sigma[0], sigma[1] / d, sigma[2] / d))
    if d > 1:  # separable linear interpolation as two small matrix products
        wy = _linear_weights(shape[1], coarse[1], d)
        wx = _linear_weights(shape[2], coarse[2], d)
        nz, cy, cx = field.shape
        field = (wy @ field.transpose(1, 0, 2).reshape(cy, nz * cx)).reshape(shape[1], nz, cx)
        field = (field.transpose(1, 0, 2).reshape(-1, cx) @ wx.T).reshape(shape)
    field = np.ascontiguousarray(field, dtype=np.float32)
    sd = float(field.std())
    return field / sd if sd > 0 else field


def _linear_weights(n_fine: int, n_coarse: int, d: int) -> np.ndarray:
    """(n_fine, n_coarse) linear-interpolation matrix from a grid `d` times coarser."""
    position = np.arange(n_fine) / d
    lower = np.minimum(position.astype(int), n_coarse - 2)
    frac = (position - lower).astype(np.float32)
    weights = np.zeros((n_fine, n_coarse), np.float32)
    weights[np.arange(n_fine), lower] = 1.0 - frac
    weights[np.arange(n_fine), lower + 1] = frac
    return weights


def _texture(rng, shape, spacing) -> np.ndarray:
    """Tumour texture: fine (1.2 mm) plus coarse (4 mm) smooth noise, unit SD."""
    sx, _, sz = spacing
    fine = smooth_field(rng, shape, (max(0.6 / sz, 0.3), 1.2 / sx, 1.2 / sx))
    coarse = smooth_field(rng, shape, (max(2.0 / sz, 0.5), 4.0 / sx, 4.0 / sx))
    field = 0.6 * fine + 0.8 * coarse
    return field / float(field.std())


def _necrotic_core(grid: Grid, tumour: Tumour, box, rng) -> np.ndarray:
    """Occupancy of the hypodense necrotic core (irregular ellipsoid), inside `box`."""
    if tumour.necrosis <= 0:
        return np.zeros(tuple(s.stop - s.start for s in box), np.float32)
    core = Tumour(
        centre=tuple(c + o for c, o in zip(tumour.centre, tumour.necrosis_offset, strict=True)),
        semi_axes=tuple(a * tumour.necrosis for a in tumour.semi_axes),
        angle=tumour.angle + 0.4,
        lobulation=(
            (2, 0.12, float(rng.uniform(0, 2 * np.pi))),
            (5, 0.06, float(rng.uniform(0, 2 * np.pi))),
        ),
    )
    distance = tumour_distance(grid, core, box)
    ragged = 1.2 * smooth_field(rng, distance.shape, (0.6, 2.5, 2.5))
    return (1.0 / (1.0 + np.exp(np.clip((distance + ragged) / 1.0, -30, 30)))).astype(np.float32)


def _paint_tumour(grid, tumour, box, distance, arterial, portal, liver_hu, rng) -> None:
    """Blend one tumour (its signed `distance` inside `box`) into both phases."""
    occupancy = _ramp(distance)
    texture = _texture(rng, distance.shape, grid.spacing) * tumour.heterogeneity
    core = _necrotic_core(grid, tumour, box, rng)
    for volume, base, sign, shift in (
        (arterial, liver_hu[0], 1.0, tumour.enhancement),
        (portal, liver_hu[1], -1.0, tumour.washout),
    ):
        viable = base + sign * shift + texture
        phase = 0 if volume is arterial else 1
        value = viable * (1.0 - core) + core * (TISSUE_HU["necrosis"][phase] + 0.3 * texture)
        sub = volume[box]
        _blend(sub, occupancy, value)
        volume[box] = sub


def reader_mask(distance: np.ndarray, rng, spread_mm: float, bias_mm: float, spacing) -> np.ndarray:
    """A reader's delineation: the true outline moved by a smooth random field.

    mask = (d + bias + spread * f(x) < 0) with f a unit-SD smooth field (5 mm in-plane
    correlation), so repeated delineations disagree along the boundary only.
    """
    sx, _, sz = spacing
    field = smooth_field(rng, distance.shape, (max(2.0 / sz, 0.5), 5.0 / sx, 5.0 / sx))
    return (distance - bias_mm + spread_mm * field < 0).astype(np.uint8)


#: Reader model: (spread mm, outward bias mm) of each delineation.
READERS = {"reader1_a": (0.7, 0.0), "reader1_b": (0.7, 0.0), "reader2": (1.1, 0.5)}


def render(grid: Grid, anatomy: Anatomy, rng: np.random.Generator) -> Rendered:
    """Noise-free arterial and portal volumes, the true mask and the readers' masks."""
    plane = _body(grid, anatomy)
    shape = grid.shape
    volumes = []
    for phase in (0, 1):
        img = np.full(shape[1:], TISSUE_HU["air"][phase], np.float32)
        _blend(img, plane["body"], TISSUE_HU["fat"][phase])
        _blend(img, plane["inner"], TISSUE_HU["soft"][phase])
        volumes.append(np.repeat(img[None], shape[0], axis=0))
    arterial, portal = volumes

    x, y, z = grid.axes()
    spleen = _ramp(
        _ellipsoid_distance(
            x[None, None, :],
            y[None, :, None],
            z[:, None, None],
            (0.55 * anatomy.body_axes[0], 5.0, 10.0),
            (22.0, 34.0, 45.0),
        )
    )
    kidneys = [
        _ramp(
            _ellipsoid_distance(
                x[None, None, :], y[None, :, None], z[:, None, None], centre, (21.0, 27.0, 36.0)
            )
        )
        for centre in (
            (-52.0, 0.55 * anatomy.body_axes[1], -38.0),
            (52.0, 0.55 * anatomy.body_axes[1], -28.0),
        )
    ]
    # intervertebral discs every 30 mm give the spine structure along z
    disc = _ramp(np.abs(np.mod(z - 7.0, 30.0) - 15.0) * -1.0 + 11.5)[:, None, None]
    liver_d = _liver_distance(grid, anatomy)
    boxes = [tumour_box(grid, tumour) for tumour in anatomy.tumours]
    distances = [
        tumour_distance(grid, t, box) for t, box in zip(anatomy.tumours, boxes, strict=True)
    ]
    for box, distance in zip(boxes, distances, strict=True):
        # the liver always wraps its tumours (6 mm of parenchyma)
        liver_d[box] = np.minimum(liver_d[box], distance - 6.0)
    liver = _ramp(liver_d)
    for phase, volume in enumerate((arterial, portal)):
        _blend(volume, spleen, TISSUE_HU["spleen"][phase])
        for kidney in kidneys:
            _blend(volume, kidney, TISSUE_HU["kidney"][phase])
        _blend(volume, liver, TISSUE_HU["liver"][phase])
        for name in ("cortex", "bone", "aorta", "ivc"):  # vessels and spine run past the liver
            _blend(volume, plane[name][None], TISSUE_HU[name][phase])
        _blend(volume, plane["cortex"][None] * disc, TISSUE_HU["disc"][phase])

    true_mask = np.zeros(shape, np.uint8)
    readers = {name: np.zeros(shape, np.uint8) for name in READERS}
    lobes = []
    for index, (tumour, box, distance) in enumerate(
        zip(anatomy.tumours, boxes, distances, strict=True)
    ):
        _paint_tumour(grid, tumour, box, distance, arterial, portal, TISSUE_HU["liver"], rng)
        lobes.append(int(tumour.centre[0] > anatomy.liver_centre[0]))
        if index == 0:
            true_mask[box] = (distance < 0).astype(np.uint8)
            for name, (spread, bias) in READERS.items():
                readers[name][box] = reader_mask(distance, rng, spread, bias, grid.spacing)
    return Rendered(arterial, portal, true_mask, readers, liver_d < 0, tuple(lobes))


def longest_axial_diameter_mm(mask: np.ndarray, spacing) -> tuple[float, int]:
    """Longest in-plane diameter (mm) of a mask over all axial slices, and that slice.

    The radiologist's "largest tumour size": the maximum Feret diameter in the
    axial slice where it is largest, computed from the outline's pixel centres.
    """
    sx, sy, _ = spacing
    best, best_slice = 0.0, -1
    areas = mask.reshape(mask.shape[0], -1).sum(axis=1)
    for k in np.argsort(areas)[::-1][:5]:  # the longest diameter lies near the largest area
        if areas[k] == 0:
            break
        sl = mask[k].astype(bool)
        edge = sl & ~ndimage.binary_erosion(sl)
        pts = np.argwhere(edge).astype(np.float64) * np.array([sy, sx])
        if len(pts) > 600:
            pts = pts[:: len(pts) // 600 + 1]
        d = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1)).max() + sx
        if d > best:
            best, best_slice = float(d), int(k)
    return best, best_slice
