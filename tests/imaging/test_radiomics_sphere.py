"""Shape features of a digitised sphere, through the radiomics stage's code, against the
sphere's closed forms: volume 4/3 pi r^3, surface area 4 pi r^2, sphericity 1, diameter 2r
(and, in the stage's 2-D mode, the largest slice's disc: area pi rho^2, perimeter 2 pi rho).

The mask is every voxel whose centre lies within r of the centre c (c off the voxel grid).
The tolerances are those of PyRadiomics' mesh of such a mask (marching cubes with the
vertices at the midpoints of the grid edges that leave the mask), derived here. Spacing
s = (sx, sy, sz), h = max(s) its largest step and d = |s| the diagonal of a grid cell:

1. A vertex is the midpoint m of an edge (length <= h) from a voxel centre p inside
   (|p - c| <= r) to one q outside (|q - c| > r), so r - h/2 < |m - c| <= r + h/2. The
   triangles are convex hulls of vertices: the mesh lies inside the ball of radius r + h/2,
   hence MeshVolume <= V(r + h/2) and Maximum3DDiameter <= 2r + h.
2. A point within r - d of c lies in a cell whose 8 corners are all inside (each corner is
   within d of it): that cell is solid and holds no triangle. So the solid holds the ball
   of radius r - d (MeshVolume >= V(r - d)), and the surface lies outside it; the radial
   projection onto the sphere of radius r - d shortens no distance there and covers that
   sphere, so SurfaceArea >= 4 pi (r - d)^2.
3. Each line parallel to an axis crosses the digitised ball's mesh twice, so the mesh's
   area projected along axis i is twice the solid's shadow, <= 2 pi (r + h/2)^2; a
   triangle's area is at most the sum of its three projections (|n|_1 >= 1 for a unit
   normal n), so SurfaceArea <= 6 pi (r + h/2)^2, 1.5 times the sphere's at r + h/2. The
   mesh's area is indeed biased upwards, not only noisy: a triangle's normal takes one of
   marching cubes' few directions, not the sphere's (about +8 % at isotropic spacing,
   +17 % at 0.8 x 0.8 x 2.5 mm, and the bias does not shrink with r), so sphericity stays
   below 1 (about 0.92 and 0.85) however fine the grid.
4. Sphericity pi^(1/3) (6 V)^(2/3) / A <= 1 for any closed surface (the isoperimetric
   inequality); from 1-3 it is >= pi^(1/3) (6 V(r - d))^(2/3) / (6 pi (r + h/2)^2).
5. The voxels (VoxelVolume = N sx sy sz): the union of the voxels' boxes holds the ball of
   radius r - d/2 and lies in that of radius r + d/2, so V(r - d/2) <= VoxelVolume <= V(r + d/2).
6. The two mesh vertices where the grid line nearest c (within d/2 of it) along x leaves
   the mask are on either side of c: Maximum3DDiameter >= 2 sqrt((r - h/2)^2 - d^2 / 4).
7. Second order (an estimate, not a bound): with the vertices' offsets from the sphere
   spread evenly over +-h/2 the first-order volume error cancels; what remains is the caps
   between the sphere and the flat triangles (circumradius <= d / sqrt 3): a relative
   deficit of about d^2 / (4 r^2). The test allows twice that, d^2 / (2 r^2), for the
   vertices' scatter; measured over random centres it stays below 1.9 times d^2 / (4 r^2).
8. Elongation and Flatness (square roots of ratios of the voxel centres' principal
   variances) are 1 for the ball; the voxels the sphere cuts are a shell of width <= d,
   so they stay above 1 - d / r (a swapped or dropped spacing makes them far smaller).

In 2-D (the stage's "2d" mode: the largest-ROI slice, a disc of radius rho at the slice's
height, marching squares), the same arguments with s2 = (sx, sy), h2 = max(s2) and
d2 = |s2| give pi (rho - d2)^2 <= MeshSurface <= pi (rho + h2/2)^2 and
2 pi (rho - d2) <= Perimeter <= 8 (rho + h2/2) (a segment is at most |dx| + |dy| long,
and the contour's |dx| add up to twice the disc's width, <= 2 (rho + h2/2), so do its
|dy|), 2 sqrt((rho - h2/2)^2 - d2^2 / 4) <= MaximumDiameter <= 2 rho + h2, and Sphericity
(2-D: the perimeter of the disc of the same area over the perimeter) <= 1.

The shape features must also be those of the reader's own sphere (three readers, three
radii), the same in both phases (the stage computes them with the first and copies them).
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from toolkit.config import Radiomics, load_study
from toolkit.imaging import radiomics as rad
from toolkit.imaging.manifest import read_manifest
from toolkit.imaging.preprocess import PreprocessSettings, RegisteredVolumes, preprocess_cohort
from toolkit.imaging.roi import largest_slice

PHASES = ("arterial", "portal")
READERS = ("reader1_a", "reader1_b", "reader2")
SHRINK = (1.0, 0.85, 0.7)  # each reader's radius, as a share of the largest


def _ball(r: float) -> float:
    return 4 / 3 * math.pi * r**3


def _settings() -> rad.RadiomicsSettings:
    """The stage's default settings (study.toml without a [radiomics] section)."""
    section = Radiomics()
    params = rad.extractor_parameters(rad.parameters_from_settings(section), section.modes)
    return rad.RadiomicsSettings(PHASES, params)


def _sphere_mask(shape_zyx, spacing, centre, r) -> np.ndarray:
    """uint8 (z, y, x): voxels whose centre (index x spacing) lies within r of ``centre``."""
    z, y, x = np.meshgrid(
        *(
            np.arange(n) * s - c
            for n, s, c in zip(shape_zyx, spacing[::-1], centre[::-1], strict=True)
        ),
        indexing="ij",
    )
    return (x**2 + y**2 + z**2 <= r * r).astype(np.uint8)


def check_sphere_3d(row, prefix: str, r: float, spacing) -> None:
    """Items 1-8 of the module docstring for the 3-D shape features of a sphere of radius r."""
    s = np.asarray(spacing, dtype=float)
    h, d = float(s.max()), float(np.linalg.norm(s))
    volume, area = row[prefix + "MeshVolume"], row[prefix + "SurfaceArea"]
    assert _ball(r - d) <= volume <= _ball(r + h / 2), (prefix, r, volume)
    assert abs(volume / _ball(r) - 1) <= d**2 / (2 * r**2), (prefix, r, volume)
    assert 4 * math.pi * (r - d) ** 2 <= area <= 6 * math.pi * (r + h / 2) ** 2, (prefix, area)
    lowest = math.pi ** (1 / 3) * (6 * _ball(r - d)) ** (2 / 3) / (6 * math.pi * (r + h / 2) ** 2)
    assert lowest <= row[prefix + "Sphericity"] <= 1, (prefix, row[prefix + "Sphericity"])
    voxels = row[prefix + "VoxelVolume"]
    assert _ball(r - d / 2) <= voxels <= _ball(r + d / 2), (prefix, r, voxels)
    diameter = row[prefix + "Maximum3DDiameter"]
    assert 2 * math.sqrt((r - h / 2) ** 2 - d**2 / 4) <= diameter <= 2 * r + h, (prefix, diameter)
    for name in ("Elongation", "Flatness"):
        assert 1 - d / r <= row[prefix + name] <= 1, (prefix, name, row[prefix + name])


def check_disc_2d(row, prefix: str, rho: float, spacing) -> None:
    """The 2-D items for the disc of radius rho the largest-ROI slice cuts from the sphere."""
    s2 = np.asarray(spacing[:2], dtype=float)
    h2, d2 = float(s2.max()), float(np.linalg.norm(s2))
    surface, perimeter = row[prefix + "MeshSurface"], row[prefix + "Perimeter"]
    assert math.pi * (rho - d2) ** 2 <= surface <= math.pi * (rho + h2 / 2) ** 2, (prefix, surface)
    assert 2 * math.pi * (rho - d2) <= perimeter <= 8 * (rho + h2 / 2), (prefix, perimeter)
    assert 0 < row[prefix + "Sphericity"] <= 1, (prefix, row[prefix + "Sphericity"])
    diameter = row[prefix + "MaximumDiameter"]
    assert 2 * math.sqrt((rho - h2 / 2) ** 2 - d2**2 / 4) <= diameter <= 2 * rho + h2, diameter


def _volumes(spacing, r) -> tuple[RegisteredVolumes, dict[str, float], dict[str, float]]:
    """A patient whose three readers drew spheres of radii r x SHRINK about one centre off
    the grid, on a grid with 4 voxels of air around the largest; the images are noise."""
    shape_xyz = [math.ceil(2 * (r / s) + 9) for s in spacing]
    centre = [(n - 1) / 2 * s + 0.37 * s for n, s in zip(shape_xyz, spacing, strict=True)]
    rng = np.random.default_rng(7)
    masks, slices, rho = {}, {}, {}
    for reader, share in zip(READERS, SHRINK, strict=True):
        array = _sphere_mask(shape_xyz[::-1], spacing, centre, r * share)
        k = largest_slice(array)
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(spacing)
        masks[reader], slices[reader] = image, k
        rho[reader] = math.sqrt((r * share) ** 2 - (k * spacing[2] - centre[2]) ** 2)
    phases = []
    for mean in (60.0, 110.0):
        image = sitk.GetImageFromArray(rng.normal(mean, 20.0, shape_xyz[::-1]).astype(np.float32))
        image.SetSpacing(spacing)
        phases.append(image)
    volumes = RegisteredVolumes("S001", phases[0], phases[1], masks, slices)
    return volumes, {rd: r * sh for rd, sh in zip(READERS, SHRINK, strict=True)}, rho


@pytest.mark.parametrize(
    ("spacing", "r"),
    [
        ((1.0, 1.0, 1.0), 12.0),
        ((0.8, 0.8, 2.5), 20.0),
        ((0.8, 0.8, 2.5), 30.0),
        ((0.6, 0.9, 1.7), 15.0),
    ],
    ids=["iso-1mm-r12", "ct-0.8x0.8x2.5-r20", "ct-0.8x0.8x2.5-r30", "aniso-0.6x0.9x1.7-r15"],
)
def test_sphere_shape_features_meet_the_closed_forms_within_the_mesh_tolerance(spacing, r):
    volumes, radius, rho = _volumes(spacing, r)
    features, warnings = rad.volume_features(volumes, _settings())
    assert warnings == []
    for reader in READERS:
        row = features[reader]
        for phase in PHASES:
            check_sphere_3d(row, f"{phase}_3d_original_shape_", radius[reader], spacing)
            check_disc_2d(row, f"{phase}_2d_original_shape2D_", rho[reader], spacing)
        shape = [c for c in row if "_original_shape" in c and c.startswith("arterial_")]
        assert len(shape) == 14 + 9  # PyRadiomics' 3-D and 2-D shape features
        assert all(row[c] == row["portal" + c[len("arterial") :]] for c in shape)


def test_the_tolerances_are_tight_enough_to_see_a_swapped_spacing():
    """The checks must fail on a sphere measured with its spacing swapped (x for z)."""
    spacing, r = (0.8, 0.8, 2.5), 20.0
    volumes, _, _ = _volumes(spacing, r)
    swapped = {}
    for reader, mask in volumes.masks.items():
        image = sitk.Image(mask)
        image.SetSpacing(spacing[::-1])
        swapped[reader] = image
    for phase in (volumes.arterial, volumes.portal):
        phase.SetSpacing(spacing[::-1])
    wrong = RegisteredVolumes(
        "S001", volumes.arterial, volumes.portal, swapped, volumes.slice_index
    )
    features, _ = rad.volume_features(wrong, _settings())
    with pytest.raises(AssertionError):
        check_sphere_3d(features["reader1_a"], "portal_3d_original_shape_", r, spacing)


def test_a_sphere_drawn_in_nifti_files_meets_the_closed_forms_through_preprocess_and_the_stage(
    tiny_cohort, tmp_path
):
    """From the files on: a sphere replaces the masks of the tiny cohort's P001 (its grid,
    2 x 2 x 5 mm), preprocessed without registration (the phases share one grid), then
    ``radiomics_cohort`` as the stage runs it."""
    manifest = pd.read_csv(tiny_cohort / "manifest.csv")
    manifest[manifest["patient"] == "P001"].to_csv(tmp_path / "manifest.csv", index=False)
    shutil.copytree(tiny_cohort / "images" / "P001", tmp_path / "images" / "P001")
    shutil.copy(tiny_cohort / "study.toml", tmp_path / "study.toml")
    folder = tmp_path / "images" / "P001"
    reference = sitk.ReadImage(str(folder / "mask_reader1_a.nii.gz"))
    spacing = reference.GetSpacing()
    size = reference.GetSize()
    centre = reference.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 + 0.3 for n in size])
    offset = np.asarray(centre) - np.asarray(reference.GetOrigin())
    radii = {}
    for reader, share in zip(READERS, SHRINK, strict=True):
        radii[reader] = 30.0 * share
        array = _sphere_mask(size[::-1], spacing, offset, radii[reader])
        image = sitk.GetImageFromArray(array.astype(np.float32))
        image.CopyInformation(reference)
        sitk.WriteImage(image, str(folder / f"mask_{reader}.nii.gz"))
    config = load_study(tmp_path)
    settings = PreprocessSettings.from_config(config, register=False, qc=False)
    summary = preprocess_cohort(
        tmp_path / "manifest.csv", tmp_path / "crops", workers=0, progress=False, settings=settings
    )
    assert summary.n_failed == 0, summary.failures
    rows = read_manifest(tmp_path / "manifest.csv", settings.readers).rows()
    cohort = rad.radiomics_cohort(
        rows, tmp_path / "crops", settings, _settings(), workers=0, progress=False
    )
    table = cohort.features.set_index("reader")
    assert np.asarray(reference.GetDirection()).reshape(3, 3).tolist() == np.eye(3).tolist()
    for reader in READERS:
        for phase in PHASES:
            check_sphere_3d(
                table.loc[reader], f"{phase}_3d_original_shape_", radii[reader], spacing
            )
