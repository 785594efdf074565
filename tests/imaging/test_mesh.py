"""The mesh measures of toolkit.imaging.mesh against PyRadiomics' own C code on the same
padded masks (the diameters bit for bit, area and volume to 1e-12), and a one-voxel
octahedron worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from radiomics import cShape
from scipy import ndimage

from toolkit.imaging.mesh import mesh_measures

SPACINGS = {
    "ct": (2.5, 0.8, 0.8),
    "iso": (1.0, 1.0, 1.0),
    "irrational": (0.7310585786300049, 1.1, np.pi / 3),
}


def _padded(mask: np.ndarray) -> np.ndarray:
    return np.pad(np.asarray(mask, dtype=bool), 1)


def _masks(seed: int) -> list[np.ndarray]:
    """Masks of every kind the stage meets: noise (many small components and holes),
    smoothed blobs (tumour-like, large enough for the hull search), a flat slice, a line,
    single voxels, an empty mask."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(6):
        shape = tuple(int(n) for n in rng.integers(1, 12, 3))
        out.append(rng.random(shape) < rng.uniform(0.2, 0.9))
    for _ in range(4):
        shape = tuple(int(n) for n in rng.integers(8, 28, 3))
        field = ndimage.gaussian_filter(rng.random(shape), rng.uniform(1.0, 3.0))
        out.append(field > np.quantile(field, rng.uniform(0.4, 0.8)))
    z, y, x = np.mgrid[:18, :44, :40]
    lobes = ((z - 9) / 7) ** 2 + ((y - 20) / 17) ** 2 + ((x - 18) / 12) ** 2 < 1
    lobes |= ((z - 6) / 4) ** 2 + ((y - 32) / 9) ** 2 + ((x - 30) / 8) ** 2 < 1
    out.append(lobes)
    out.append(ndimage.binary_dilation(np.eye(30, dtype=bool))[None])  # one slice thick, 30 x 30
    out.append(np.ones((1, 1, 9), dtype=bool))
    out.append(np.ones((1, 1, 1), dtype=bool))
    single = np.zeros((5, 5, 5), dtype=bool)
    single[0, 0, 0] = single[4, 4, 4] = True  # two voxels far apart: two meshes
    out.append(single)
    out.append(np.zeros((3, 4, 5), dtype=bool))
    return [_padded(m) for m in out]


@pytest.mark.parametrize("spacing", list(SPACINGS.values()), ids=list(SPACINGS))
@pytest.mark.parametrize("seed", [0, 1])
def test_diameters_are_pyradiomics_bit_for_bit_and_area_volume_to_rounding(spacing, seed):
    for k, mask in enumerate(_masks(seed)):
        area, volume, diameters = cShape.calculate_coefficients(mask, np.asarray(spacing))
        ours = mesh_measures(mask, spacing)
        assert ours.diameters == tuple(diameters), (k, mask.shape)
        assert ours.surface_area == pytest.approx(area, rel=1e-12, abs=1e-12), k
        assert ours.volume == pytest.approx(volume, rel=1e-12, abs=1e-9), k


def test_one_voxel_is_the_octahedron_of_its_face_centres():
    """By hand: a voxel of a x b x c mm gives the octahedron on its six face centres:
    volume (4/3)(a/2)(b/2)(c/2) = abc/6; eight faces of area (1/8) sqrt(a^2b^2 + b^2c^2 +
    a^2c^2); diameters between opposite centres: in the axial plane max(b, c), in the
    coronal max(a, c), in the sagittal max(a, b), and max(a, b, c) in 3-D."""
    a, b, c = 2.5, 0.8, 0.6
    ours = mesh_measures(_padded(np.ones((1, 1, 1))), (a, b, c))
    assert ours.volume == pytest.approx(a * b * c / 6, rel=1e-14)
    assert ours.surface_area == pytest.approx(
        np.sqrt(a**2 * b**2 + b**2 * c**2 + a**2 * c**2), rel=1e-14
    )
    assert ours.diameters == pytest.approx((max(b, c), max(a, c), max(a, b), max(a, b, c)))


def test_a_mask_that_is_not_3d_is_refused():
    with pytest.raises(ValueError, match="3-D mask"):
        mesh_measures(np.ones((4, 4), dtype=bool), (1.0, 1.0, 1.0))
