"""Handcrafted radiomics features (PyRadiomics, IBSI) of the volumes and masks the crops come from.

Per patient (:func:`patient_features`): the registered volumes and every reader's mask
on the crops' grid (:func:`toolkit.imaging.preprocess.registered_volumes`: the crop's own
transform and largest-ROI slices, nothing chosen again; the box around the masks that
preprocessing kept in ``crops/volumes/`` when it is the crop's, else rebuilt); then, for
every reader, phase and mode, one ``RadiomicsFeatureExtractor.execute``: "3d" on the
tumour volume, "2d" on the reader's largest-ROI slice (a one-slice image, PyRadiomics'
``force2D`` with the ``shape2D`` class in place of ``shape``). Columns are
``RadiomicsFeature(phase, mode, ...).format()``: ``portal_3d_original_shape_VoxelVolume``.
Shortcuts that leave every number as PyRadiomics gives it (tests/imaging/
test_radiomics.py compares each feature with PyRadiomics run directly on the whole
volumes): with the Original image alone, no normalisation and no resampling
(:func:`crop_safe`), image and mask are first cut to the mask's bounding box, which
PyRadiomics crops to anyway; the shape features, of the mask alone, are computed with
the first phase and copied to the second; the extractor (:func:`extractor_class`)
discretises each image once for all its classes (the ROI's extremes found by numpy), finds
the mask's bounding box by numpy, and takes the 3-D shape class's mesh measures from
:mod:`toolkit.imaging.mesh`, its maximum diameters bit for bit and its surface area and
volume summed in another order: the seven features of those two (:data:`MESH_SUMS`) equal
PyRadiomics' to rounding (1e-12 relative in the tests), not bit for bit.

A feature PyRadiomics cannot compute is NaN, with a warning that names the patient, the
reader, the phase and the mode: all the features of a mask PyRadiomics refuses (a single
voxel, a ROI one voxel thick in 3-D), and the single features its feature classes give
up on (it logs the error and leaves the feature out; the column is then NaN here).

Per cohort (:func:`radiomics_cohort`): patients fan out through Dask as preprocessing's
do (:func:`toolkit._dask.dask_client`), or run in this process with ``workers=0``; a
progress bar counts them. A patient that fails (a stale crop, an unreadable image) is
returned among the failures and has no row.

PyRadiomics' settings are its parameter mapping (``imageType``, ``featureClass``,
``setting``), one per mode (:func:`extractor_parameters`); the defaults are PyRadiomics'
own but for ``additionalInfo`` (off: sigkit records the provenance itself).
"""

from __future__ import annotations

import collections
import copy
import functools
import json
import logging
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toolkit._dask import map_patients
from toolkit.contracts import RadiomicsFeature
from toolkit.imaging.preprocess import BOX_MARGIN

WARNING_COLUMNS = ["patient", "reader", "phase", "mode", "warning"]
FAILURE_COLUMNS = ["patient", "stage", "reason"]


class RadiomicsSettingsError(ValueError):
    """The radiomics settings (study.toml's [radiomics], a parameter file) are not usable."""


class RadiomicsWarning(UserWarning):
    """Features PyRadiomics could not compute for a patient: they are NaN."""


def pyradiomics_version() -> str:
    import radiomics

    return str(radiomics.__version__)


def _quiet() -> None:
    """PyRadiomics logs every step (and a note per GLCM) to stderr: keep its errors only,
    which the NaN warnings report anyway."""
    logging.getLogger("radiomics").setLevel(logging.ERROR)


def parameters_from_settings(radiomics: Any) -> dict[str, Any]:
    """The 3-D PyRadiomics parameter mapping of study.toml's validated ``[radiomics]``
    (a :class:`toolkit.config.Radiomics` without a ``parameter_file``)."""
    image_types: dict[str, dict[str, Any]] = {}
    for name in radiomics.image_types:
        image_types[name] = {"sigma": list(radiomics.log_sigmas)} if name == "LoG" else {}
    setting: dict[str, Any] = {"binWidth": float(radiomics.bin_width), "label": 1}
    if radiomics.resampled_spacing_mm is not None:
        setting["resampledPixelSpacing"] = [float(v) for v in radiomics.resampled_spacing_mm]
    return {
        "imageType": image_types,
        "featureClass": {name: None for name in radiomics.feature_classes},
        "setting": setting,
    }


def read_parameter_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A PyRadiomics parameter file (YAML) as its mapping; errors name the file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise RadiomicsSettingsError(f"{path}: PyRadiomics parameter file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RadiomicsSettingsError(f"{path}: not a YAML parameter file: {exc}") from None
    if not isinstance(data, dict):
        raise RadiomicsSettingsError(f"{path}: a parameter file is a mapping, got {data!r}")
    return data


def extractor_parameters(three_d: Mapping[str, Any], modes: Sequence[str]) -> dict[str, Any]:
    """mode -> the parameter mapping of its extractor, from the 3-D mapping ``three_d``.

    The 2-D mapping is the 3-D one with ``force2D`` (in-plane texture, axial:
    ``force2Ddimension = 0``), the ``shape2D`` class in place of ``shape``, and a
    resampling (if any) that keeps the slice's thickness (z spacing 0, PyRadiomics' "keep").
    Both run without ``additionalInfo`` (the diagnostics, image hashes included).
    """
    out: dict[str, Any] = {}
    for mode in modes:
        params = copy.deepcopy(dict(three_d))
        params.setdefault("setting", {})
        params["setting"] = dict(params["setting"] or {}) | {"additionalInfo": False}
        if mode == "2d":
            params["setting"] |= {"force2D": True, "force2Ddimension": 0}
            spacing = params["setting"].get("resampledPixelSpacing")
            if spacing:
                params["setting"]["resampledPixelSpacing"] = [*spacing[:2], 0]
            classes = params.get("featureClass") or {}
            params["featureClass"] = {
                ("shape2D" if name == "shape" else name): value for name, value in classes.items()
            }
        out[mode] = params
    return out


def make_extractor(params: Mapping[str, Any], source: str = "[radiomics]"):
    """PyRadiomics' extractor of ``params`` (sigkit's :func:`extractor_class`); a mapping its
    schema refuses names ``source``."""
    RadiomicsFeatureExtractor = extractor_class()
    _quiet()
    try:
        with warnings.catch_warnings():
            # pykwalify (PyRadiomics' schema check) loads its extensions with importlib's
            # deprecated load_module(): nothing of ours to act on
            warnings.filterwarnings("ignore", "the load_module", DeprecationWarning)
            return RadiomicsFeatureExtractor(copy.deepcopy(dict(params)))
    except Exception as exc:  # pykwalify's SchemaError, PyRadiomics' ValueError, ...
        raise RadiomicsSettingsError(
            f"{source}: PyRadiomics refuses the settings: {type(exc).__name__}: {exc}"
        ) from None


# 3-D shape features computed from the mesh's summed surface area and volume: equal to
# PyRadiomics' to rounding (toolkit.imaging.mesh), every other feature bit for bit
MESH_SUMS = frozenset(
    {
        "MeshVolume",
        "SurfaceArea",
        "SurfaceVolumeRatio",
        "Sphericity",
        "Compactness1",
        "Compactness2",
        "SphericalDisproportion",
    }
)


# what sigkit's extractor changes (recorded in the provenance, part of the stage's key)
EXTRACTOR = (
    "PyRadiomics' feature classes; 3-D shape mesh measures from toolkit.imaging.mesh "
    "(diameters bit for bit, surface area and volume to rounding); one discretisation per image"
)


@functools.cache
def extractor_class():
    """PyRadiomics' ``RadiomicsFeatureExtractor`` with four changes of speed, not of result.

    * The 3-D ``shape`` class takes its surface area, volume and maximum diameters from
      :func:`toolkit.imaging.mesh.mesh_measures` (the same mesh; the diameters bit for bit,
      area and volume to rounding, hence :data:`MESH_SUMS`) instead of PyRadiomics'
      pairwise search over every mesh vertex; the rest of the class is PyRadiomics'.
    * The texture classes and first order discretise the image once per image and mask
      instead of once per class (PyRadiomics' ``binImage`` on the same voxels, settings and
      mask gives the same bins each time: the first result is handed to the others), with
      the ROI's extremes found by numpy (:func:`_apply_binning`).
    * Less repeated work in those classes: each class's feature names found once per
      process (PyRadiomics inspects the class for every instance), first order's second
      moment once (:func:`_moment_once`) and its four percentiles from one call
      (:func:`_percentiles_once`).
    * ``execute`` of a plain extraction (SimpleITK images of one geometry, the Original
      image alone, none of the settings that add a step: :func:`_plain_extraction`) runs
      PyRadiomics' own steps (:func:`_plain_execute`) with the mask check's bounding box
      found by numpy instead of a SimpleITK label-statistics pass; any other extraction,
      and any mask that check could refuse, goes through PyRadiomics' ``execute``.

    Built on first use, as PyRadiomics is imported only when features are computed.
    """
    import SimpleITK as sitk
    from radiomics.featureextractor import RadiomicsFeatureExtractor, getFeatureClasses
    from radiomics.shape import RadiomicsShape

    from toolkit.imaging.mesh import mesh_measures

    class MeshShape(RadiomicsShape):
        """PyRadiomics' 3-D shape class, its mesh measures from :mod:`toolkit.imaging.mesh`."""

        def _initSegmentBasedCalculation(self):
            # as PyRadiomics: z, y, x spacing; the mask padded with one empty voxel all round
            self.pixelSpacing = np.array(self.inputImage.GetSpacing()[::-1])
            self.inputMask = sitk.ConstantPad(self.inputMask, (1, 1, 1), (1, 1, 1))
            self.maskArray = sitk.GetArrayFromImage(self.inputMask) == self.label
            self.labelledVoxelCoordinates = np.where(self.maskArray != 0)
            measures = mesh_measures(self.maskArray, tuple(self.pixelSpacing))
            self.SurfaceArea, self.Volume = measures.surface_area, measures.volume
            self.diameters = measures.diameters
            self.eigenValues = _principal_moments(self.labelledVoxelCoordinates, self.pixelSpacing)

    class Extractor(RadiomicsFeatureExtractor):
        def execute(self, imageFilepath, maskFilepath, label=None, label_channel=None, **kw):
            # PyRadiomics' steps for a plain extraction, its bounding box found by numpy
            # (_plain_execute); any other extraction, and every mask its checks might
            # refuse, goes through PyRadiomics' own execute (which then raises as it does)
            features = _plain_execute(self, imageFilepath, maskFilepath, label, label_channel, kw)
            if features is None:
                features = super().execute(imageFilepath, maskFilepath, label, label_channel, **kw)
            return features

        def computeShape(self, image, mask, boundingBox, **kwargs):
            if "shape" not in self.enabledFeatures or mask.GetDimension() != 3:
                return super().computeShape(image, mask, boundingBox, **kwargs)
            cropped_image, cropped_mask = _crop_to(image, mask, boundingBox)
            out = _class_features(
                MeshShape, "shape", "original_shape", cropped_image, cropped_mask, self, kwargs
            )
            if "shape2D" in self.enabledFeatures:  # PyRadiomics' own, on a twin without 3-D
                twin = copy.copy(self)
                twin.enabledFeatures = {
                    k: v for k, v in self.enabledFeatures.items() if k != "shape"
                }
                out |= RadiomicsFeatureExtractor.computeShape(
                    twin, image, mask, boundingBox, **kwargs
                )
            return out

        def computeFeatures(self, image, mask, imageTypeName, **kwargs):
            classes = getFeatureClasses()
            shared: dict[str, Any] = {}  # this image's bins, for every class
            out: dict[str, Any] = {}
            for name in self.enabledFeatures:
                # shape: computeShape's; a class PyRadiomics does not know: it skips it too
                if not name.startswith("shape") and name in classes:
                    binned = _binning_once(classes[name], shared)
                    out |= _class_features(
                        binned, name, f"{imageTypeName}_{name}", image, mask, self, kwargs
                    )
            return out

    return Extractor


# settings under which PyRadiomics' execute does more than load, check, compute the shape
# and crop each image type (what the plain path reproduces); their defaults are all off
_NOT_PLAIN = (
    "additionalInfo",
    "geometryTolerance",
    "correctMask",
    "resegmentRange",
    "normalize",
    "resampledPixelSpacing",
    "preCrop",
    "minimumROISize",
)


def _plain_extraction(extractor, image, mask, label, label_channel, kwargs) -> bool:
    """Whether PyRadiomics' ``execute`` would only load image and mask, check the mask,
    compute the shape features on its bounding box and the other classes on the Original
    image cropped there: SimpleITK images of one exact geometry, segment-based, the
    study's label, the Original image alone, and none of the settings that add a step
    (normalisation, resampling, resegmentation, mask correction, a geometry tolerance, a
    minimum ROI size, the diagnostics). Then the mask check's bounding box is found by
    numpy (:func:`_bounding_box`) instead of a SimpleITK label-statistics pass over the
    image (3 ms for a 300 000-voxel box, twelve times a patient)."""
    import SimpleITK as sitk

    settings = extractor.settings
    return (
        label is None
        and label_channel is None
        and not kwargs.get("voxelBased", False)
        and set(kwargs) <= {"voxelBased"}
        and isinstance(image, sitk.Image)
        and isinstance(mask, sitk.Image)
        and set(extractor.enabledImagetypes) == {"Original"}
        and not any(settings.get(name) for name in _NOT_PLAIN)
        and image.GetDimension() == mask.GetDimension() == 3
        and image.GetSize() == mask.GetSize()
        and image.GetOrigin() == mask.GetOrigin()
        and image.GetSpacing() == mask.GetSpacing()
        and image.GetDirection() == mask.GetDirection()
    )


def _plain_execute(extractor, image, mask, label, label_channel, kwargs):
    """PyRadiomics' ``execute`` of a plain extraction (:func:`_plain_extraction`), step for
    step (``loadImage``, the mask check, ``computeShape`` on the bounding box, each image
    type cropped there and ``computeFeatures``), its mask check's bounding box found by
    :func:`_bounding_box`; None for any other extraction, or when that check could refuse
    the mask."""
    from radiomics import imageoperations

    if not _plain_extraction(extractor, image, mask, label, label_channel, kwargs):
        return None
    settings = extractor.settings.copy()
    image, mask = extractor.loadImage(image, mask, None, **settings)
    box = _bounding_box(mask, settings)
    if box is None:
        return None
    features = collections.OrderedDict(extractor.computeShape(image, mask, box, **settings))
    for image_type, custom in extractor.enabledImagetypes.items():
        generated = getattr(imageoperations, f"get{image_type}Image")(
            image, mask, **(settings | dict(custom or {}))
        )
        for filtered, name, kwargs in generated:
            filtered, cropped = _crop_to(filtered, mask, box)
            features.update(extractor.computeFeatures(filtered, cropped, name, **kwargs))
    return features


def _extents(inside: np.ndarray) -> list[tuple[int, int]] | None:
    """(first, last) index of the non-zero voxels of a (z, y, x) array along x, y and z;
    None when there is none."""
    where = [np.flatnonzero(inside.any(axis=axes)) for axes in ((0, 1), (0, 2), (1, 2))]
    if any(len(w) == 0 for w in where):
        return None
    return [(int(w[0]), int(w[-1])) for w in where]


def _crop_to(image, mask, box):
    """PyRadiomics' ``cropToTumorMask`` without padding, or image and mask as they are when
    the box is all of them (that crop copies them unchanged)."""
    from radiomics import imageoperations

    size = np.asarray(mask.GetSize())
    if np.array_equal(box[0::2], np.zeros_like(size)) and np.array_equal(box[1::2], size - 1):
        return image, mask
    return imageoperations.cropToTumorMask(image, mask, box)


def _bounding_box(mask, settings: Mapping[str, Any]) -> np.ndarray | None:
    """PyRadiomics' ``checkMask`` bounding box of the label (x low, x high, y low, y high, z
    low, z high, as SimpleITK's label statistics give it), or None where its checks could
    refuse the mask (the label absent, a single voxel, fewer dimensions than
    ``minimumROIDimensions``): PyRadiomics' own execute then says why."""
    import SimpleITK as sitk

    extents = _extents(sitk.GetArrayViewFromImage(mask) == int(settings.get("label", 1)))
    if extents is None:
        return None
    box = np.array([v for low, high in extents for v in (low, high)], dtype=np.int64)
    dimensions = int(np.sum((box[1::2] - box[0::2] + 1) > 1))
    if dimensions == 0 or dimensions < settings.get("minimumROIDimensions", 2):
        return None
    return box


def _class_features(
    feature_class, name: str, prefix: str, image, mask, extractor, kwargs
) -> dict[str, Any]:
    """The features of class ``name`` the extractor enables (all when it names none)."""
    instance = feature_class(image, mask, **kwargs)
    for feature in extractor.enabledFeatures.get(name) or ():
        instance.enableFeatureByName(feature)
    return {f"{prefix}_{feature}": value for feature, value in instance.execute().items()}


def _binning_once(feature_class, shared: dict[str, Any]):
    """``feature_class`` discretising through ``shared``: the bins of the first class are
    given to the next when its voxels, mask and settings are the same (compared, not assumed)."""

    def _applyBinning(self, matrix):
        key = shared.get("key")
        if (
            key is not None
            and key[2] == self.settings
            and np.array_equal(key[0], matrix)
            and np.array_equal(key[1], self.maskArray)
        ):
            self.coefficients["grayLevels"] = shared["grayLevels"].copy()
            self.coefficients["Ng"] = shared["Ng"]
            return shared["binned"].copy()
        binned = _apply_binning(self, matrix)
        if binned is None:
            binned = feature_class._applyBinning(self, matrix)
        shared.update(
            key=(matrix.copy(), self.maskArray.copy(), dict(self.settings)),
            binned=binned.copy(),
            grayLevels=self.coefficients["grayLevels"].copy(),
            Ng=self.coefficients["Ng"],
        )
        return binned

    names = _feature_names(feature_class)
    members = {
        "_applyBinning": _applyBinning,
        "__module__": feature_class.__module__,
        # PyRadiomics lists a class's features by inspecting it, for every instance
        "getFeatureNames": classmethod(lambda cls: dict(names)),
    }
    if hasattr(feature_class, "_moment"):
        members["_moment"] = _moment_once(feature_class)
    if hasattr(feature_class, "get10PercentileFeatureValue"):
        members |= _percentiles_once()
    return type(feature_class.__name__, (feature_class,), members)


@functools.cache
def _feature_names(feature_class) -> dict[str, bool]:
    """PyRadiomics' ``getFeatureNames`` of a feature class, found once per process."""
    return feature_class.getFeatureNames()


_QUANTILES = (10, 25, 75, 90)  # first order's percentiles: 10th, 90th, the quartiles


def _percentiles_once() -> dict[str, Any]:
    """First order's percentile features from one ``nanpercentile`` call per instance.

    PyRadiomics calls ``numpy.nanpercentile`` of the same voxels six times a class (the
    10th and 90th percentiles, the interquartile range's two, and the 10th and 90th again
    for the robust mean absolute deviation), each a partition of every voxel. numpy's
    percentiles of several ``q`` at once are each the value of that ``q`` alone: the same
    order statistics, the same interpolation (the features, bit for bit, are tested
    against PyRadiomics run directly). The median stays PyRadiomics' ``nanmedian``, and
    an instance without voxels gets PyRadiomics' own call (and its failure)."""

    def percentile(self, q: int) -> np.ndarray:
        voxels = self.targetVoxelArray
        if voxels.size == 0:
            return np.nanpercentile(voxels, q, axis=1)
        found = _memo(
            self, "percentiles", voxels, lambda: np.nanpercentile(voxels, _QUANTILES, axis=1)
        )
        return found[_QUANTILES.index(q)].copy()  # a copy each time, as PyRadiomics makes one

    return {
        "get10PercentileFeatureValue": lambda self: percentile(self, 10),
        "get90PercentileFeatureValue": lambda self: percentile(self, 90),
        "getInterquartileRangeFeatureValue": lambda self: (
            percentile(self, 75) - percentile(self, 25)
        ),
    }


def _moment_once(feature_class):
    """First order's ``_moment`` computed once per array and order (skewness and kurtosis
    both ask for the second moment of the same voxels); each call gets its own copy, as
    PyRadiomics' callers change the result in place."""

    def _moment(self, a, moment=1):
        return copy.copy(
            _memo(self, ("moment", moment), a, lambda: feature_class._moment(a, moment))
        )

    return _moment


def _memo(instance, slot, array: np.ndarray, compute) -> Any:
    """``compute()``, kept on ``instance`` under ``slot`` while ``array`` is the array it was
    computed of (compared by identity; the array is kept with it, so its id stays its own)."""
    cache = instance.__dict__.setdefault("_memo", {})
    kept = cache.get(slot)
    if kept is None or kept[0] is not array:
        kept = cache[slot] = (array, compute())
    return kept[1]


def _apply_binning(instance, matrix: np.ndarray) -> np.ndarray | None:
    """PyRadiomics' ``_applyBinning`` with a fixed bin width, the mask's voxels taken once.

    PyRadiomics' ``getBinEdges`` finds the ROI's minimum and maximum with Python's ``min``
    and ``max`` over every voxel (4 ms for a 140 000-voxel tumour); the edges depend on
    those two values alone, so they are PyRadiomics' own ``getBinEdges`` of the two, found
    by numpy (the same values, of the same dtype, when no voxel is NaN). Then the voxels
    are digitised and the grey levels counted as PyRadiomics' ``binImage`` and
    ``_applyBinning`` do. None (PyRadiomics' own path) with a bin count (``binCount``) in
    place of the width, or when a voxel is NaN or the mask is empty, where Python's ``min``
    and numpy's differ or there is nothing to find.
    """
    from radiomics import imageoperations

    if instance.settings.get("binCount") is not None:
        return None
    mask = instance.maskArray
    values = matrix[mask]
    if values.size == 0 or np.isnan(values).any():
        return None
    ends = np.array([values.min(), values.max()], dtype=values.dtype)
    edges = imageoperations.getBinEdges(ends, **instance.settings)
    binned = np.zeros(matrix.shape, dtype="int")
    binned[mask] = np.digitize(values, edges)
    # the grey levels present, ascending: np.unique's values and dtype, by counting
    levels = np.flatnonzero(np.bincount(binned[mask])).astype(binned.dtype)
    instance.coefficients["grayLevels"] = levels
    instance.coefficients["Ng"] = int(np.max(levels))
    return binned


def _principal_moments(where: tuple[np.ndarray, ...], spacing: np.ndarray) -> np.ndarray:
    """The eigenvalues, smallest first, of the covariance of the mask's voxel centres in mm
    (``where``: their z, y, x indices), with PyRadiomics' steps in its order, so that the
    axis lengths, elongation and flatness are its own bit for bit; values in (-1e-10, 0),
    rounding of a flat mask, are 0 as in PyRadiomics."""
    count = len(where[0])
    centred = np.array(where, dtype="int").transpose((1, 0)) * spacing[None, :]
    centred -= np.mean(centred, axis=0)
    centred /= np.sqrt(count)
    values = np.linalg.eigvals(np.dot(centred.T.copy(), centred))
    values[(values < 0) & (values > -1e-10)] = 0
    values.sort()
    return values


@dataclass(frozen=True)
class RadiomicsSettings:
    """What the features depend on: the phases, the modes and each mode's parameters."""

    phases: tuple[str, ...]
    parameters: Mapping[str, Mapping[str, Any]]  # mode -> PyRadiomics parameter mapping

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(self.parameters)

    def as_dict(self) -> dict[str, Any]:
        """The provenance: PyRadiomics' version, sigkit's changes to its extractor, and
        every mode's parameters."""
        return {
            "pyradiomics": pyradiomics_version(),
            "extractor": EXTRACTOR,
            "phases": list(self.phases),
            "parameters": copy.deepcopy(dict(self.parameters)),
        }

    def check(self) -> None:
        """Raise :class:`RadiomicsSettingsError` if PyRadiomics refuses any mode's mapping."""
        for mode, params in self.parameters.items():
            make_extractor(params, f"[radiomics] ({mode})")


def _scalars(result: Mapping[str, Any]) -> dict[str, float]:
    """PyRadiomics' result without its diagnostics, as floats."""
    return {
        name: float(value) for name, value in result.items() if not name.startswith("diagnostics_")
    }


def crop_safe(params: Mapping[str, Any]) -> bool:
    """Whether features of ``params`` depend only on the voxels in the mask's bounding box:
    the Original image alone, without normalisation (over the whole image) or resampling.
    Then PyRadiomics itself crops image and mask to that box before it computes anything
    (``cropToTumorMask``, no padding for segment-based features), so cropping first gives
    the same numbers and spares PyRadiomics' whole-image passes (the mask's cast and label
    statistics); filters (LoG, wavelet) would see the crop's border instead of the anatomy.
    """
    setting = params.get("setting") or {}
    return (
        set(params.get("imageType") or {"Original": {}}) == {"Original"}
        and not setting.get("normalize", False)
        and setting.get("resampledPixelSpacing") is None
    )


SHAPE_CLASSES = ("shape", "shape2D")


def _region(volumes: Any, reader: str, mode: str, crop: bool) -> tuple[list[int], list[int]]:
    """(size, index) of the region to compute ``reader``'s features on, x, y, z: the whole
    volume ("3d") or the crops' slice ("2d"); with ``crop``, only the mask's bounding box
    there (PyRadiomics crops a segment-based extraction to it without padding; its shape
    classes pad the mask themselves)."""
    import SimpleITK as sitk

    mask = volumes.masks[reader]
    size = list(mask.GetSize())
    z0 = 0 if mode == "3d" else volumes.slice_index[reader]
    z1 = size[2] if mode == "3d" else z0 + 1
    if not crop:
        return [size[0], size[1], z1 - z0], [0, 0, z0]
    extents = _extents(sitk.GetArrayViewFromImage(mask)[z0:z1])
    if extents is None:
        return [size[0], size[1], z1 - z0], [0, 0, z0]  # empty: PyRadiomics says so itself
    low = [start + a for (a, _), start in zip(extents, (0, 0, z0), strict=True)]
    return [b - a + 1 for a, b in extents], low


def _extractors(params: Mapping[str, Any]):
    """The extractor of ``params`` and the same without the shape classes (shape features
    are of the mask alone, the same for every phase: computed once per reader and mode)."""
    key = json.dumps(params, sort_keys=True, default=str)
    if key not in _EXTRACTORS:
        full, rest = make_extractor(params), make_extractor(params)
        for name in SHAPE_CLASSES:
            if name in rest.enabledFeatures:
                rest.enableFeatureClassByName(name, enabled=False)
        _EXTRACTORS[key] = (full, rest)
    return _EXTRACTORS[key]


_EXTRACTORS: dict[str, tuple[Any, Any]] = {}  # per process: building one reads a YAML schema


def _one(extractor, image, mask, where: str) -> tuple[dict[str, float], list[str]]:
    """One extraction: the features, and the warnings of those PyRadiomics could not compute."""
    try:
        values = _scalars(extractor.execute(image, mask))
    except Exception as exc:  # PyRadiomics refuses the mask (ValueError) or fails on it
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return {}, [f"{where}: PyRadiomics could not compute the features ({message}); all NaN"]
    failed = sorted(name for name, value in values.items() if not np.isfinite(value))
    if not failed:
        return values, []
    shown = ", ".join(failed[:5]) + (" ..." if len(failed) > 5 else "")
    return values, [f"{where}: {len(failed)} features not computed by PyRadiomics ({shown}); NaN"]


def patient_features(
    row: dict,
    crop_path: str,
    preprocess: Any,
    settings: RadiomicsSettings,
    threads: int | None = None,
) -> dict[str, Any]:
    """One patient's features: ``{"patient", "status", "features": {reader: {column: value}},
    "warnings": [(reader, phase, mode, text)], "seconds"}``; never raises (a failure comes
    back as ``status = "failed"`` with ``stage`` and ``reason``)."""
    from toolkit.imaging.preprocess import PatientFailure, registered_volumes

    start = time.perf_counter()
    record: dict[str, Any] = {"patient": row["patient"], "status": "ok", "warnings": []}
    try:
        if threads:
            import SimpleITK as sitk

            sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(threads))
        crop = all(crop_safe(params) for params in settings.parameters.values())
        # cropped anyway: only the box of the grid that holds the masks and their padding
        volumes = registered_volumes(row, preprocess, crop_path, BOX_MARGIN if crop else None)
        record["features"], record["warnings"] = volume_features(volumes, settings)
    except PatientFailure as exc:
        record.update(status="failed", stage=exc.stage, reason=exc.reason)
    except Exception as exc:  # any other error fails this patient only
        record.update(status="failed", stage="unexpected", reason=f"{type(exc).__name__}: {exc}")
    record["seconds"] = time.perf_counter() - start
    return record


def volume_features(
    volumes: Any, settings: RadiomicsSettings
) -> tuple[dict[str, dict[str, float]], list[tuple[str, str, str, str]]]:
    """The features of one patient's registered volumes (a
    :class:`toolkit.imaging.preprocess.RegisteredVolumes`): reader -> {column: value}, and
    the warnings ``(reader, phase, mode, text)`` of the features PyRadiomics could not
    compute (absent from the mapping, or NaN in it).

    The shape features, of the mask alone, are computed with the first phase and given to
    the others as they are (PyRadiomics would compute the same numbers again)."""
    out: dict[str, dict[str, float]] = {}
    warnings: list[tuple[str, str, str, str]] = []
    for reader in volumes.masks:
        columns: dict[str, float] = {}
        for mode, params in settings.parameters.items():
            found = _reader_features(volumes, reader, mode, params, settings.phases)
            for phase, values, texts in found:
                warnings += [(reader, phase, mode, text) for text in texts]
                columns |= {
                    RadiomicsFeature.of(phase, mode, name).format(): value
                    for name, value in values.items()
                }
        out[reader] = columns
    return out, warnings


def _reader_features(volumes, reader: str, mode: str, params, phases: Sequence[str]):
    """[(phase, {PyRadiomics name: value}, warnings)] of one reader in one mode."""
    import SimpleITK as sitk

    full, rest = _extractors(params)
    size, index = _region(volumes, reader, mode, crop_safe(params))
    mask = sitk.RegionOfInterest(volumes.masks[reader], size, index)
    shape: dict[str, float] = {}
    out = []
    for i, phase in enumerate(phases):
        image = sitk.RegionOfInterest(volumes.phase(phase), size, index)
        where = f"patient {volumes.patient}, reader {reader}, {phase} {mode}"
        values, texts = _one(full if i == 0 else rest, image, mask, where)
        if i == 0:
            shape = {n: v for n, v in values.items() if _is_shape(n)}
        elif values:
            values = shape | values
        out.append((phase, values, texts))
    return out


def _is_shape(name: str) -> bool:
    return RadiomicsFeature.of("phase", "3d", name).feature_class in SHAPE_CLASSES


@dataclass(frozen=True)
class RadiomicsCohort:
    """Outcome of :func:`radiomics_cohort`."""

    features: pd.DataFrame  # patient, reader, then the RadiomicsFeature columns
    warnings: pd.DataFrame  # patient, reader, phase, mode, warning
    failures: pd.DataFrame  # patient, stage, reason
    seconds: float

    def __str__(self) -> str:
        n = self.features["patient"].nunique() if len(self.features) else 0
        return (
            f"radiomics: {n} patients x {len(self.features.columns) - 2} features, "
            f"{len(self.failures)} failed, {len(self.warnings)} warnings, {self.seconds:.1f} s"
        )


def radiomics_cohort(
    rows: Sequence[dict],
    crops_dir: str | os.PathLike[str],
    preprocess: Any,
    settings: RadiomicsSettings,
    workers: int | str = 2,
    scheduler: str | None = None,
    progress: bool = True,
) -> RadiomicsCohort:
    """The features of every patient of ``rows`` (manifest rows) that has a crop in
    ``crops_dir``, one row per patient and reader (readers primary-first), patients in
    the order of ``rows``.

    ``preprocess`` is the :class:`toolkit.imaging.preprocess.PreprocessSettings` the crops
    were made with; ``workers`` Dask worker processes of a LocalCluster (0 or "sync": this
    process), or the cluster at ``scheduler``. Patients without a crop are skipped
    (preprocessing lists their failures). Each feature PyRadiomics could not compute is
    warned of (a :class:`RadiomicsWarning` naming the patient, reader, phase and mode).
    """
    start = time.perf_counter()
    settings.check()
    crops_dir = Path(crops_dir)
    jobs = [(row, str(crops_dir / f"{row['patient']}.npz")) for row in rows]
    jobs = [(row, crop) for row, crop in jobs if Path(crop).is_file()]
    results = map_patients(
        patient_features,
        [row["patient"] for row, _ in jobs],
        jobs,
        {"preprocess": preprocess, "settings": settings},
        workers=workers,
        scheduler=scheduler,
        progress=progress,
        description="radiomics",
    )
    order = {row["patient"]: i for i, row in enumerate(rows)}
    results.sort(key=lambda r: order[r["patient"]])
    for result in results:
        for *_, text in result["warnings"]:
            warnings.warn(text, RadiomicsWarning, stacklevel=2)
    return RadiomicsCohort(
        features=features_table(results, settings),
        warnings=pd.DataFrame(
            [(r["patient"], *w) for r in results for w in r["warnings"]], columns=WARNING_COLUMNS
        ),
        failures=pd.DataFrame(
            [(r["patient"], r["stage"], r["reason"]) for r in results if r["status"] == "failed"],
            columns=FAILURE_COLUMNS,
        ),
        seconds=time.perf_counter() - start,
    )


def features_table(results: Sequence[dict], settings: RadiomicsSettings) -> pd.DataFrame:
    """The table of :func:`patient_features`' records (the failed ones left out): patient,
    reader, then every feature any patient has, by phase, then mode, then in PyRadiomics'
    order; a feature a patient lacks is NaN."""
    rows = [
        {"patient": str(r["patient"]), "reader": str(reader), **values}
        for r in results
        if r["status"] == "ok"
        for reader, values in r["features"].items()
    ]
    names = list(dict.fromkeys(c for row in rows for c in row if c not in ("patient", "reader")))

    def place(name: str) -> tuple[int, int]:
        feature = RadiomicsFeature.parse(name)
        return settings.phases.index(feature.phase), settings.modes.index(feature.mode)

    columns = ["patient", "reader", *sorted(names, key=place)]
    return pd.DataFrame(rows, columns=columns).astype({"patient": str, "reader": str})
