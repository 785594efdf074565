"""Preprocess a cohort's CECT volumes into the crops the network reads.

Per patient (:func:`process_patient`): read the arterial and portal phases and
every reader's mask; check them (readable, 3-D, no NaN, masks on the image's
grid, non-empty; several mask components keep the largest, with a warning);
register the arterial phase onto the portal phase (Euler3D, Mattes MI:
:mod:`toolkit.imaging.register`); resample the masks onto the portal grid
(optionally with a fixed in-plane spacing); then for each reader take the axial
slice with the largest ROI, crop both phases 224 x 224 around the ROI centroid
(padded with the slice's background value) and z-score the crop (or the ROI);
with ``slices`` other than 1, the same for each slice that
:func:`toolkit.imaging.roi.tumour_slices` chooses, around that slice's own centroid.
Writes ``crops/<patient>.npz`` (docs/contracts.md) and ``crops/qc/<patient>.png``; with
``volumes=True`` also ``crops/volumes/<patient>.npz``, the box of the registered volumes
around the masks that the radiomics stage reads (:func:`registered_volumes`).

Per cohort (:func:`preprocess_cohort`): patients fan out through Dask
(a ``distributed.LocalCluster`` of `workers` processes, or an existing cluster
at `scheduler`), or run in this process with ``workers=0``. A patient whose
crops exist with the same input hash and settings hash is skipped, so an
interrupted run resumes. Failures never stop the run: each is listed in
``crops/failures.csv`` (patient, stage, reason) and ``crops/manifest.json``.
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from toolkit._dask import map_patients
from toolkit._version import __version__
from toolkit.artifacts import atomic_path, file_hash, settings_hash, write_json
from toolkit.config import PHASES
from toolkit.imaging.manifest import Manifest, read_manifest
from toolkit.imaging.register import RegistrationSettings

if TYPE_CHECKING:
    from toolkit.config import StudyConfig

FAILURE_COLUMNS = ["patient", "stage", "reason"]


@dataclass(frozen=True)
class PreprocessSettings:
    """What the crops depend on (all of it goes into the settings hash).

    A study's settings come from its validated [imaging] (:meth:`from_config`), which
    admits only the crop size the network reads; other sizes serve tests and benchmarks.

    readers: reader names, primary first (default: the manifest's mask columns).
    crop_size: side of the square crop (pixels).
    zscore: "crop" (the paper) or "roi".
    register: register arterial onto portal; False resamples by physical position only.
    spacing_mm: resample in-plane to this spacing before cropping (None: keep the portal grid).
    mask_phase: the phase the masks were drawn on ("arterial": they follow the registration).
    slices: 1 (the largest-ROI slice only), k > 1 or "all": also write the crops of the slices
        that `toolkit.imaging.roi.tumour_slices` chooses (the ``slices_*`` keys of the crops).
        1 is left out of `as_dict`, so one-slice crops keep the settings hash they had
        before the setting existed.
    qc: write crops/qc/<patient>.png.
    """

    readers: tuple[str, ...] | None = None
    crop_size: int = 224
    zscore: str = "crop"
    register: bool = True
    spacing_mm: float | None = None
    mask_phase: str = "arterial"
    slices: int | str = 1
    qc: bool = True
    registration: RegistrationSettings = field(default_factory=RegistrationSettings)

    def __post_init__(self) -> None:
        if self.zscore not in ("crop", "roi"):
            raise ValueError(f"zscore must be 'crop' or 'roi', not {self.zscore!r}")
        if self.mask_phase not in PHASES:
            raise ValueError(
                f"mask_phase must be one of {', '.join(PHASES)}, not {self.mask_phase!r}"
            )
        if self.crop_size < 8:
            raise ValueError(f"crop_size must be at least 8 pixels, not {self.crop_size}")
        if self.spacing_mm is not None and self.spacing_mm <= 0:
            raise ValueError(f"spacing_mm must be positive, not {self.spacing_mm}")
        one_or_more = isinstance(self.slices, int) and not isinstance(self.slices, bool)
        if not (self.slices == "all" or (one_or_more and self.slices >= 1)):
            raise ValueError(f"slices must be a positive integer or 'all', not {self.slices!r}")

    @classmethod
    def from_config(cls, config: StudyConfig, **overrides: Any) -> PreprocessSettings:
        """A study's settings (its validated [imaging]), with ``overrides``: the readers
        primary-first, as :class:`toolkit.config.Imaging` stores them, so that the
        crops, and the network's batches over them, do not depend on the order written
        in study.toml."""
        imaging = config.imaging
        values: dict[str, Any] = {
            "readers": tuple(imaging.readers),
            "crop_size": imaging.crop_size,
            "zscore": imaging.zscore,
            "register": imaging.register_phases,
            "spacing_mm": imaging.spacing_mm,
            "mask_phase": imaging.mask_phase,
            "slices": imaging.slices,
        }
        return cls(**(values | overrides))

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["readers"] = list(self.readers or [])
        data.pop("qc")  # the QC picture does not change the crops
        if self.slices == 1:
            data.pop("slices")  # as before the setting existed: the same settings hash
        return data


@dataclass(frozen=True)
class PreprocessSummary:
    """Outcome of :func:`preprocess_cohort`."""

    out_dir: Path
    n_ok: int
    n_failed: int
    n_skipped: int
    failures: pd.DataFrame  # patient, stage, reason
    warnings: pd.DataFrame  # patient, warning
    timings: pd.DataFrame  # patient, status, read_s, register_s, crop_s, total_s
    seconds: float

    @property
    def partial(self) -> bool:
        return self.n_failed > 0

    def __str__(self) -> str:
        state = "PARTIAL" if self.partial else "complete"
        return (
            f"preprocess {state}: {self.n_ok} ok ({self.n_skipped} up to date, skipped), "
            f"{self.n_failed} failed, {len(self.warnings)} warnings, {self.seconds:.1f} s "
            f"-> {self.out_dir}"
        )


class PatientFailure(Exception):
    """A patient cannot be preprocessed; `stage` says where."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(reason)
        self.stage = stage
        self.reason = reason


# --------------------------------------------------------------------------- one patient


def _input_files(row: dict, readers: tuple[str, ...]) -> dict[str, str]:
    return {"arterial": row["arterial"], "portal": row["portal"]} | {
        f"mask_{r}": row[f"mask_{r}"] for r in readers
    }


def _hash_path(path: Path) -> str:
    if path.is_dir():
        return settings_hash({p.name: file_hash(p) for p in sorted(path.iterdir()) if p.is_file()})
    return file_hash(path)


def _shown(path: str | os.PathLike[str], folder: str | None) -> str:
    """`path` as messages show it: relative to the manifest's folder when inside it."""
    if folder:
        try:
            return str(Path(path).relative_to(folder))
        except ValueError:
            pass
    return str(path)


def input_hashes(files: dict[str, str], folder: str | None = None) -> dict[str, str]:
    """SHA-256 of each input file (a DICOM folder: of its files); raises on a missing one."""
    out = {}
    for key, value in files.items():
        path = Path(value)
        if not path.exists():
            phase = "mask" if key.startswith("mask_") else "phase"
            raise PatientFailure("read", f"{key} {phase} missing: {_shown(path, folder)} not found")
        out[key] = _hash_path(path)
    return out


def _up_to_date(npz_path: Path, input_hash: str, settings_key: str) -> dict | None:
    """The metadata of an existing crop made from the same inputs and settings, else None."""
    if not npz_path.is_file():
        return None
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            meta = json.loads(str(data["metadata"]))
    except (OSError, ValueError, KeyError):
        return None
    same = meta.get("input_hash") == input_hash and meta.get("settings_hash") == settings_key
    return meta if same else None


def _read_inputs(
    files: dict[str, str],
    readers: tuple[str, ...],
    folder: str | None = None,
    check_gzip: bool = True,
):
    """Both phases and every mask as float32; a failure names the file and its manifest column.
    ``check_gzip``: see :func:`toolkit.imaging.io.read_volume`."""
    from toolkit.imaging.io import ImageReadError, read_volume

    images = {}
    for key in ("portal", "arterial", *(f"mask_{r}" for r in readers)):
        try:
            images[key] = read_volume(files[key], check_gzip=check_gzip)
        except ImageReadError as exc:
            reason = f"{_shown(exc.path, folder)} ({key}): {exc.problem}"
            raise PatientFailure("read", reason) from None
    return images["arterial"], images["portal"], {r: images[f"mask_{r}"] for r in readers}


def _check_inputs(files, arterial, portal, masks, mask_phase: str) -> tuple[dict, list[str]]:
    """NaN, geometry and component checks; returns binary mask arrays and warnings."""
    import SimpleITK as sitk

    from toolkit.imaging.io import nan_count, same_geometry
    from toolkit.imaging.roi import RoiError, largest_component

    for name, image in (("arterial", arterial), ("portal", portal)):
        n_nan = nan_count(files[name], image)
        if n_nan:
            raise PatientFailure("check", f"{name} image has {n_nan} NaN voxels")
    reference = arterial if mask_phase == "arterial" else portal
    arrays, warnings = {}, []
    for reader, mask in masks.items():
        differs = same_geometry(reference, mask, names=(mask_phase, f"mask_{reader}"))
        if differs:
            raise PatientFailure(
                "check", f"mask_{reader} geometry does not match the {mask_phase} image: {differs}"
            )
        values = sitk.GetArrayViewFromImage(mask)
        if np.isnan(values).any():
            raise PatientFailure("check", f"mask_{reader} has NaN voxels")
        try:
            parts = largest_component(values > 0.5, f"mask_{reader}")
        except RoiError as exc:
            raise PatientFailure("check", str(exc)) from None
        if parts.n_components > 1:
            warnings.append(
                f"mask_{reader} has {parts.n_components} connected components; kept the largest "
                f"({parts.kept_voxels} voxels), dropped {parts.dropped_voxels} voxels"
            )
        arrays[reader] = parts.mask
    return arrays, warnings


def _target_grid(portal, spacing_mm: float | None):
    """The portal grid, or the portal grid resampled in-plane to `spacing_mm`."""
    import SimpleITK as sitk

    if spacing_mm is None:
        return portal
    sx, sy, sz = portal.GetSpacing()
    nx, ny, nz = portal.GetSize()
    size = [max(1, round(nx * sx / spacing_mm)), max(1, round(ny * sy / spacing_mm)), nz]
    spacing = (spacing_mm, spacing_mm, sz)
    # same physical extent: first pixel centre moves by half the change of spacing
    shift = np.asarray([(spacing_mm - sx) / 2, (spacing_mm - sy) / 2, 0.0])
    direction = np.asarray(portal.GetDirection()).reshape(3, 3)
    origin = np.asarray(portal.GetOrigin()) + direction @ shift
    grid = sitk.Image(size, sitk.sitkFloat32)
    grid.SetSpacing(spacing)
    grid.SetDirection(portal.GetDirection())
    grid.SetOrigin(tuple(origin))
    return grid


def _resample(image, reference, transform, *, default: float, linear: bool = True):
    import SimpleITK as sitk

    resampler = sitk.ResampleImageFilter()
    resampler.SetReferenceImage(reference)
    resampler.SetTransform(transform)
    resampler.SetInterpolator(sitk.sitkLinear if linear else sitk.sitkNearestNeighbor)
    resampler.SetDefaultPixelValue(float(default))
    resampler.SetOutputPixelType(sitk.sitkFloat32)
    return resampler.Execute(image)


def _slice_reference(grid, k: int):
    """A one-slice image with `grid`'s in-plane geometry at axial index k."""
    import SimpleITK as sitk

    nx, ny, _ = grid.GetSize()
    ref = sitk.Image([nx, ny, 1], sitk.sitkFloat32)
    ref.SetSpacing(grid.GetSpacing())
    ref.SetDirection(grid.GetDirection())
    ref.SetOrigin(grid.TransformIndexToPhysicalPoint((0, 0, int(k))))
    return ref


def _masks_on_grid(masks, source, grid, transform) -> dict[str, np.ndarray]:
    """Masks drawn on `source`'s grid, moved by `transform` onto `grid` (linear, >= 0.5)."""
    import SimpleITK as sitk

    out = {}
    for reader, array in masks.items():
        image = sitk.GetImageFromArray(array.astype(np.float32))
        image.CopyInformation(source)
        moved = _resample(image, grid, transform, default=0.0)
        binary = (sitk.GetArrayViewFromImage(moved) >= 0.5).astype(np.uint8)
        if not binary.any():
            raise PatientFailure("resample", f"mask_{reader} is empty on the portal grid")
        out[reader] = binary
    return out


def _mask_frame(arterial, portal, transform, settings):
    """(the image the masks were drawn on, the transform that moves them onto the grid)."""
    import SimpleITK as sitk

    if settings.mask_phase == "arterial":
        return arterial, transform
    return portal, sitk.Transform(3, sitk.sitkIdentity)


def _grid_and_masks(arterial, portal, mask_arrays, transform, settings):
    """The crops' grid and every reader's mask moved onto it (see :func:`_masks_on_grid`)."""
    grid = _target_grid(portal, settings.spacing_mm)
    source, moved = _mask_frame(arterial, portal, transform, settings)
    return grid, _masks_on_grid(mask_arrays, source, grid, moved)


def _phase_slice(image, grid, transform, k: int, fill: float) -> np.ndarray:
    import SimpleITK as sitk

    moved = _resample(image, _slice_reference(grid, k), transform, default=fill)
    return sitk.GetArrayFromImage(moved)[0]


def _crops(arterial, portal, grid, transform, masks, settings) -> dict[str, np.ndarray]:
    """Per reader: largest-ROI slice, centroid, both phases' crops, the mask crop; with
    ``settings.slices`` other than 1, also every chosen slice's crops (`_slice_crops`)."""
    import SimpleITK as sitk

    from toolkit.imaging import roi

    identity = sitk.Transform(3, sitk.sitkIdentity)
    fills = (
        roi.border_value(sitk.GetArrayViewFromImage(arterial)[0]),
        roi.border_value(sitk.GetArrayViewFromImage(portal)[0]),
    )
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def planes(k: int) -> tuple[np.ndarray, np.ndarray]:
        if k not in cache:
            cache[k] = (
                _phase_slice(arterial, grid, transform, k, fills[0]),
                _phase_slice(portal, grid, identity, k, fills[1]),
            )
        return cache[k]

    chosen = [[roi.largest_slice(mask)] for mask in masks.values()]
    out = _slice_crops(list(masks.values()), chosen, planes, fills, settings)
    arrays = {
        "arterial": out["arterial"],
        "portal": out["portal"],
        "mask": out["mask"],
        "slice_index": out["index"],
        "centre_index": out["centre"],
    }
    if settings.slices != 1:
        chosen = [roi.tumour_slices(mask, settings.slices).tolist() for mask in masks.values()]
        extra = _slice_crops(list(masks.values()), chosen, planes, fills, settings)
        arrays |= {f"slices_{key}": value for key, value in extra.items()}
    return arrays


def _slice_crops(masks, chosen, planes, fills, settings) -> dict[str, np.ndarray]:
    """The crops of slices ``chosen[r]`` of reader r's mask, readers in order, each centred
    at its own slice's ROI centroid and z-scored as the largest-ROI slice's crop is."""
    from toolkit.imaging import roi

    size = settings.crop_size
    keys = ("arterial", "portal", "mask", "index", "centre", "reader")
    out: dict[str, list] = {k: [] for k in keys}
    for reader, (mask, ks) in enumerate(zip(masks, chosen, strict=True)):
        for k in ks:
            centre = roi.centroid(mask[k])
            mask_crop = roi.crop(mask[k], centre, size, 0)
            for name, plane, fill in zip(("arterial", "portal"), planes(k), fills, strict=True):
                window = roi.crop(plane, centre, size, fill)
                out[name].append(roi.zscore(window, mask_crop, settings.zscore))
            out["mask"].append(mask_crop)
            out["index"].append(k)
            out["centre"].append(centre)
            out["reader"].append(reader)
    return {
        "arterial": np.stack(out["arterial"]).astype(np.float32),
        "portal": np.stack(out["portal"]).astype(np.float32),
        "mask": np.stack(out["mask"]).astype(np.uint8),
        "index": np.asarray(out["index"], dtype=np.int64),
        "centre": np.asarray(out["centre"], dtype=np.int64),
        "reader": np.asarray(out["reader"], dtype=np.int64),
    }


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def _is_synthetic(row: dict) -> bool:
    return str(row.get("synthetic", "")).strip().lower() in ("true", "1", "yes")


def process_patient(
    row: dict,
    settings: PreprocessSettings,
    out_dir: str,
    threads: int | None = None,
    volumes: bool = False,
) -> dict[str, Any]:
    """Preprocess one manifest row; never raises: failures come back as a record.
    ``volumes``: also keep the box of the registered volumes that holds the masks
    (``volumes/<patient>.npz``, what the radiomics stage reads; see :func:`registered_volumes`)."""
    start = time.perf_counter()
    record: dict[str, Any] = {"patient": row["patient"], "status": "ok", "warnings": []}
    try:
        record.update(_process(row, settings, Path(out_dir), threads, start, volumes))
    except PatientFailure as exc:
        record.update(status="failed", stage=exc.stage, reason=exc.reason)
    except Exception as exc:  # any other error fails this patient only
        record.update(status="failed", stage="unexpected", reason=f"{type(exc).__name__}: {exc}")
    if record["status"] == "failed":  # never leave a stale crop of a patient that now fails
        _remove_crop(Path(out_dir), str(row["patient"]))
    record["total_s"] = time.perf_counter() - start
    return record


def _remove_crop(out_dir: Path, patient: str) -> None:
    crop = out_dir / f"{patient}.npz"
    crop.unlink(missing_ok=True)
    _volumes_path(crop).unlink(missing_ok=True)


def _process(row, settings, out_dir: Path, threads, start, volumes: bool) -> dict[str, Any]:
    import SimpleITK as sitk

    from toolkit.imaging.register import identity, register_rigid

    if threads:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(threads))
    readers = tuple(settings.readers)
    files = _input_files(row, readers)
    hashes = input_hashes(files, row.get("folder"))
    input_hash = settings_hash(hashes)
    settings_key = settings_hash(settings.as_dict())
    npz_path = out_dir / f"{row['patient']}.npz"
    previous = _up_to_date(npz_path, input_hash, settings_key)
    if previous is not None and volumes and not _volumes_path(npz_path).is_file():
        previous = None  # the crop is current, the volumes' box is not there: make both
    if previous is not None:
        return {
            "status": "skipped",
            "input_hash": input_hash,
            "warnings": previous.get("warnings", []),
        }
    arterial, portal, masks = _read_inputs(files, readers, row.get("folder"))
    mask_arrays, warnings = _check_inputs(files, arterial, portal, masks, settings.mask_phase)
    read_s = time.perf_counter() - start

    t0 = time.perf_counter()
    try:
        fit = (
            register_rigid(portal, arterial, settings.registration)
            if settings.register
            else (identity(portal))
        )
    except RuntimeError as exc:
        raise PatientFailure("register", f"registration failed: {exc}") from None
    register_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    transform = fit.transform()
    grid, on_grid = _grid_and_masks(arterial, portal, mask_arrays, transform, settings)
    arrays = _crops(arterial, portal, grid, transform, on_grid, settings)
    meta = {
        "patient": row["patient"],
        "centre": row.get("centre"),
        "set": row.get("set"),
        "synthetic": _is_synthetic(row),
        "input_hash": input_hash,
        "inputs": hashes,
        "settings": settings.as_dict(),
        "settings_hash": settings_key,
        "sigkit_version": __version__,
        "registration": {
            "centre": fit.centre.tolist(),
            "metric": fit.metric,
            "iterations": fit.iterations,
            "stop": fit.stop,
            "convention": "Euler3D maps a portal point x to the arterial point T(x)",
        },
        "warnings": warnings,
    }
    arrays |= {
        "readers": np.asarray(readers, dtype=str),
        "spacing": np.asarray(grid.GetSpacing(), dtype=np.float64),
        "registration": np.asarray(fit.parameters, dtype=np.float64),
        "metadata": np.asarray(json.dumps(meta)),
    }
    _write_npz(npz_path, arrays)
    if volumes:
        on_whole = (grid, on_grid)  # the crops' grid and masks, not made again
        box = _box_volumes(arterial, portal, mask_arrays, transform, settings, BOX_MARGIN, on_whole)
        _write_volumes(_volumes_path(npz_path), box, meta, fit.parameters)
    else:  # none, rather than one of other inputs
        _volumes_path(npz_path).unlink(missing_ok=True)
    if settings.qc:
        from toolkit.imaging.qc import write_qc

        write_qc(out_dir / "qc" / f"{row['patient']}.png", arrays)
    return {
        "input_hash": input_hash,
        "warnings": warnings,
        "read_s": read_s,
        "register_s": register_s,
        "crop_s": time.perf_counter() - t0,
        "registration": fit.parameters.tolist(),
    }


# ------------------------------------------------------------ the volumes the crops were cut from


@dataclass(frozen=True)
class RegisteredVolumes:
    """One patient's volumes on the grid its crops were cut from (the portal grid, or that
    grid resampled in-plane to ``spacing_mm``), as :func:`registered_volumes` rebuilds them:
    the whole grid, or the box of it that holds every reader's mask (``offset``).

    arterial: the arterial phase registered onto the grid (the crop's transform, linear).
    portal: the portal phase on the grid.
    masks: reader -> the reader's binary mask (uint8) on the grid, primary reader first.
    slice_index: reader -> the axial slice of that reader's crops (the largest ROI), as an
        index of these volumes (the crop's ``slice_index`` less ``offset[2]``).
    offset: the grid index (x, y, z) of these volumes' first voxel; (0, 0, 0) for the whole grid.
    """

    patient: str
    arterial: Any  # SimpleITK.Image, float32
    portal: Any  # SimpleITK.Image, float32
    masks: dict[str, Any]
    slice_index: dict[str, int]
    offset: tuple[int, int, int] = (0, 0, 0)

    def phase(self, name: str) -> Any:
        return {"arterial": self.arterial, "portal": self.portal}[name]


def _crop_record(crop_path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    try:
        with np.load(crop_path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in ("readers", "slice_index", "registration")}
            meta = json.loads(str(data["metadata"]))
    except (OSError, ValueError, KeyError) as exc:
        raise PatientFailure("crops", f"{crop_path.name} cannot be read: {exc}") from None
    return meta, arrays


def _mask_box(mask_arrays, source, grid, transform, margin) -> tuple[list[int], list[int]]:
    """(size, index), x y z, of the box of ``grid`` outside which every mask drawn on
    ``source`` is 0 once moved by ``transform`` (:func:`_masks_on_grid`), widened by
    ``margin`` voxels and kept within the grid.

    A grid voxel x gets the linear interpolation of the mask at T(x): non-zero only where
    T(x) lies within one source voxel of a mask voxel, a box B of source indices. The grid
    points that T maps into B are T^-1(B), the convex hull of its 8 corners' images (T is
    affine), so their grid indices lie between the corners' extremes (one voxel more on
    each side against rounding)."""
    import itertools

    union = np.logical_or.reduce([array > 0 for array in mask_arrays.values()])
    low, high = [], []
    for axes in ((0, 1), (0, 2), (1, 2)):  # x, y, z of the (z, y, x) array
        where = np.flatnonzero(union.any(axis=axes))
        low.append(int(where[0]) - 1)
        high.append(int(where[-1]) + 1)
    inverse = transform.GetInverse()
    corners = np.asarray(
        [
            grid.TransformPhysicalPointToContinuousIndex(
                inverse.TransformPoint(source.TransformContinuousIndexToPhysicalPoint(corner))
            )
            for corner in itertools.product(*zip(low, high, strict=True))
        ]
    )
    size = grid.GetSize()
    first = np.floor(corners.min(axis=0)).astype(int) - 1 - np.asarray(margin)
    last = np.ceil(corners.max(axis=0)).astype(int) + 1 + np.asarray(margin)
    first = np.clip(first, 0, np.asarray(size) - 1)
    last = np.clip(last, 0, np.asarray(size) - 1)
    return [int(b - a + 1) for a, b in zip(first, last, strict=True)], [int(a) for a in first]


VOLUMES_DIR = "volumes"  # crops/volumes/<patient>.npz: the box of the volumes radiomics reads
BOX_MARGIN = (2, 2, 1)  # voxels (x, y, z) that box keeps around the masks (radiomics' padding)


def _box_volumes(arterial, portal, mask_arrays, transform, settings, margin, on_whole=None):
    """(grid, arterial, portal, {reader: mask array}, index) of the registered volumes:
    the whole grid (``margin`` None) or the box of it that :func:`_mask_box` gives.

    The masks are moved onto that grid (:func:`_masks_on_grid`), or, given the whole grid
    and its masks (``on_whole``, preprocessing's own :func:`_grid_and_masks`), cut out of
    them: outside the box every mask is 0 (:func:`_mask_box`), and inside it ITK computes
    each voxel as on the whole grid, so both are the whole grid's voxels
    (tests/imaging/test_radiomics.py)."""
    import SimpleITK as sitk

    from toolkit.imaging import roi

    whole = _target_grid(portal, settings.spacing_mm) if on_whole is None else on_whole[0]
    source, moved = _mask_frame(arterial, portal, transform, settings)
    size, index = list(whole.GetSize()), [0, 0, 0]
    if margin is not None:
        size, index = _mask_box(mask_arrays, source, whole, moved, margin)
    grid = whole
    if (size, index) != (list(whole.GetSize()), [0, 0, 0]):
        grid = sitk.RegionOfInterest(whole, size, index)
    if on_whole is None:
        masks = _masks_on_grid(mask_arrays, source, grid, moved)
    else:
        (x0, y0, z0), (nx, ny, nz) = index, size
        masks = {r: a[z0 : z0 + nz, y0 : y0 + ny, x0 : x0 + nx] for r, a in on_whole[1].items()}
    fills = [roi.border_value(sitk.GetArrayViewFromImage(v)[0]) for v in (arterial, portal)]
    if whole is portal:  # the portal grid itself: its voxels as they are
        portal_on_grid = grid
    else:
        identity = sitk.Transform(3, sitk.sitkIdentity)
        portal_on_grid = _resample(portal, grid, identity, default=fills[1])
    arterial_on_grid = _resample(arterial, grid, transform, default=fills[0])
    return grid, arterial_on_grid, portal_on_grid, masks, index


def _volumes_path(crop_path: Path) -> Path:
    return crop_path.parent / VOLUMES_DIR / crop_path.name


def _write_volumes(path: Path, box, meta: dict[str, Any], registration: np.ndarray) -> None:
    """The box of :func:`_box_volumes` with the crop's identity (its inputs' and settings'
    hashes, its registration), uncompressed: the masks as bits, the phases as they are."""
    import SimpleITK as sitk

    grid, arterial, portal, masks, index = box
    stacked = np.stack(list(masks.values()))
    if stacked.size and stacked.max() > 1:
        raise ValueError("masks on the grid are binary")
    record = {
        "input_hash": meta["input_hash"],
        "settings_hash": meta["settings_hash"],
        "margin": list(BOX_MARGIN),
        "readers": list(masks),
        "index": [int(i) for i in index],
        "shape": list(stacked.shape),
        "origin": list(grid.GetOrigin()),
        "spacing": list(grid.GetSpacing()),
        "direction": list(grid.GetDirection()),
    }
    buffer = io.BytesIO()
    np.savez(
        buffer,
        arterial=sitk.GetArrayViewFromImage(arterial),
        portal=sitk.GetArrayViewFromImage(portal),
        masks=np.packbits(stacked.astype(bool), axis=None),
        registration=np.asarray(registration, dtype=np.float64),
        metadata=np.asarray(json.dumps(record)),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def _read_volumes(path: Path, meta: dict[str, Any], arrays, readers, margin):
    """(grid geometry, arterial, portal, masks, index) of a box file that is this crop's
    (the same inputs, settings, registration, readers and margin), else None."""
    import SimpleITK as sitk

    if margin is None or tuple(margin) != BOX_MARGIN or not path.is_file():
        return None
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
            record = json.loads(str(data["metadata"]))
            same = (
                record.get("input_hash") == meta.get("input_hash")
                and record.get("settings_hash") == meta.get("settings_hash")
                and record.get("readers") == list(readers)
                and record.get("margin") == list(BOX_MARGIN)
                and np.array_equal(data["registration"], arrays["registration"])
            )
            if not same:
                return None
            phases = [data["arterial"], data["portal"]]
            count = int(np.prod(record["shape"]))
            bits = np.unpackbits(data["masks"], count=count).reshape(record["shape"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None  # unreadable: rebuilt from the inputs instead
    images = []
    for array in (*phases, *bits):
        image = sitk.GetImageFromArray(array)
        image.SetOrigin(record["origin"])
        image.SetSpacing(record["spacing"])
        image.SetDirection(record["direction"])
        images.append(image)
    masks = dict(zip(record["readers"], images[2:], strict=True))
    return images[0], images[1], masks, record["index"]


def registered_volumes(
    row: dict,
    settings: PreprocessSettings,
    crop_path: str | os.PathLike[str],
    margin: tuple[int, int, int] | None = None,
) -> RegisteredVolumes:
    """The volumes and masks that ``crop_path`` (a ``crops/<patient>.npz``) was cut from.

    Nothing is chosen again: the registration is the crop's stored Euler3D transform
    (parameters and centre), the slices are the crop's ``slice_index``; the masks go
    through the checks and the resampling of :func:`process_patient` (largest component,
    linear resampling thresholded at 0.5). Raises :class:`PatientFailure` when the crop
    was made from other input files or settings than ``row`` and ``settings`` name.

    ``margin`` None: the whole grid. ``margin = (mx, my, mz)``: only the box of the grid that
    holds every reader's mask widened by at least that many voxels (:func:`_mask_box`),
    which spares resampling the rest: ITK computes each voxel of a box of the grid exactly
    as it does on the whole grid (the same voxels, bit for bit; tests/imaging/
    test_radiomics.py checks it), so the box is the whole volumes' region. With
    ``margin = BOX_MARGIN`` the box that preprocessing kept (``crops/volumes/<patient>.npz``,
    written with ``preprocess_cohort(..., volumes=True)``) is read instead of rebuilt from
    the inputs, when it is this crop's: the same inputs (their hashes checked here as
    always), settings, registration, readers and margin; any other is rebuilt.
    """
    import SimpleITK as sitk

    from toolkit.imaging.register import euler_transform

    crop_path = Path(crop_path)
    meta, arrays = _crop_record(crop_path)
    readers = tuple(str(r) for r in arrays["readers"])
    files = _input_files(row, readers)
    input_hash = settings_hash(input_hashes(files, row.get("folder")))
    settings = replace(settings, readers=readers)
    if (meta.get("input_hash"), meta.get("settings_hash")) != (
        input_hash,
        settings_hash(settings.as_dict()),
    ):
        raise PatientFailure(
            "crops", f"{crop_path.name} was made from other images or settings; preprocess again"
        )
    kept = _read_volumes(_volumes_path(crop_path), meta, arrays, readers, margin)
    if kept is not None:
        arterial, portal, mask_images, index = kept
    else:
        # the files hash as those the crop was made from: their gzip streams passed then
        arterial, portal, masks = _read_inputs(files, readers, row.get("folder"), check_gzip=False)
        mask_arrays, _ = _check_inputs(files, arterial, portal, masks, settings.mask_phase)
        transform = euler_transform(arrays["registration"], meta["registration"]["centre"])
        box = _box_volumes(arterial, portal, mask_arrays, transform, settings, margin)
        grid, arterial, portal, on_grid, index = box
        mask_images = {}
        for reader, array in on_grid.items():
            image = sitk.GetImageFromArray(array)
            image.CopyInformation(grid)
            mask_images[reader] = image
    return RegisteredVolumes(
        patient=str(row["patient"]),
        arterial=arterial,
        portal=portal,
        masks=mask_images,
        slice_index={
            r: int(k) - index[2] for r, k in zip(readers, arrays["slice_index"], strict=True)
        },
        offset=(int(index[0]), int(index[1]), int(index[2])),
    )


# --------------------------------------------------------------------------- the cohort


def _failed(patient: str, stage: str, reason: str) -> dict[str, Any]:
    return {
        "patient": patient,
        "status": "failed",
        "stage": stage,
        "reason": reason,
        "warnings": [],
    }


def preprocess_cohort(
    manifest_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    workers: int | str = 2,
    scheduler: str | None = None,
    progress: bool = True,
    settings: PreprocessSettings | None = None,
    volumes: bool = False,
) -> PreprocessSummary:
    """Preprocess every patient of a manifest into `out_dir` (crops/ of the contract).

    Parameters
    ----------
    manifest_path: manifest.csv (docs/contracts.md).
    out_dir: where <patient>.npz, qc/, failures.csv and manifest.json go.
    workers: Dask worker processes of a LocalCluster; 0 or "sync" runs in this process.
    scheduler: address of an existing Dask scheduler ("tcp://host:port"); overrides workers.
    progress: show a progress bar.
    settings: crop settings (a study's: :meth:`PreprocessSettings.from_config`);
        default: :class:`PreprocessSettings` defaults, the manifest's readers in order.
    volumes: also keep each patient's box of the registered volumes around the masks
        (``volumes/<patient>.npz``), which the radiomics stage then reads instead of
        reading, checking and resampling the inputs again (:func:`registered_volumes`).
        A crop that is up to date but has no box is made again.

    Raises :class:`toolkit.imaging.manifest.ManifestError` when the manifest is
    unusable as a whole (a column absent, a patient listed twice); single patients
    (an empty path, an unreadable image) fail into failures.csv instead.
    """
    start = time.perf_counter()
    manifest_path, out_dir = Path(manifest_path), Path(out_dir)
    settings = settings if settings is not None else PreprocessSettings()
    manifest = read_manifest(manifest_path, settings.readers)
    settings = replace(settings, readers=manifest.readers)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = manifest.rows()
    results = map_patients(
        process_patient,
        [r["patient"] for r in rows],
        [(r,) for r in rows],
        {"settings": settings, "out_dir": str(out_dir), "volumes": volumes},
        workers=workers,
        scheduler=scheduler,
        progress=progress,
        description="preprocess",
    )
    results += [_failed(p, "manifest", reason) for p, reason in manifest.problems.items()]
    for result in results:
        if result["status"] == "failed" and result["patient"] in set(manifest.frame["patient"]):
            _remove_crop(out_dir, str(result["patient"]))
    return _summarise(manifest, settings, out_dir, results, time.perf_counter() - start)


def _summarise(manifest: Manifest, settings, out_dir: Path, results, seconds) -> PreprocessSummary:
    order = {p: i for i, p in enumerate(manifest.frame["patient"])}
    results = sorted(results, key=lambda r: (order.get(r["patient"], len(order)), r["patient"]))
    failures = pd.DataFrame(
        [{k: r[k] for k in FAILURE_COLUMNS} for r in results if r["status"] == "failed"],
        columns=FAILURE_COLUMNS,
    )
    with atomic_path(out_dir / "failures.csv") as tmp:
        failures.to_csv(tmp, index=False, encoding="utf-8")
    warnings = pd.DataFrame(
        [{"patient": r["patient"], "warning": w} for r in results for w in r.get("warnings", [])],
        columns=["patient", "warning"],
    )
    timing_cols = ["patient", "status", "read_s", "register_s", "crop_s", "total_s"]
    timings = pd.DataFrame(
        [{k: r.get(k) for k in timing_cols} for r in results], columns=timing_cols
    )
    write_json(
        out_dir / "manifest.json",
        {
            "sigkit_version": __version__,
            "manifest": str(manifest.path),
            "settings": settings.as_dict(),
            "settings_hash": settings_hash(settings.as_dict()),
            "readers": list(manifest.readers),
            "patients": {
                r["patient"]: {
                    "status": "failed" if r["status"] == "failed" else "ok",
                    "input_hash": r.get("input_hash"),
                    **(
                        {"stage": r["stage"], "reason": r["reason"]}
                        if r["status"] == "failed"
                        else {}
                    ),
                    "warnings": r.get("warnings", []),
                }
                for r in results
            },
        },
    )
    n_failed = len(failures)
    n_skipped = sum(r["status"] == "skipped" for r in results)
    return PreprocessSummary(
        out_dir=out_dir,
        n_ok=len(results) - n_failed,
        n_failed=n_failed,
        n_skipped=n_skipped,
        failures=failures,
        warnings=warnings,
        timings=timings,
        seconds=seconds,
    )
