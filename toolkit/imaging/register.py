"""Rigid registration of the arterial phase onto the portal phase (SimpleITK).

The metric is Mattes mutual information (the phases differ in contrast, not in
anatomy), optimised over an Euler3D transform (three rotations about a centre,
three translations) by regular-step gradient descent, coarse to fine over an
image pyramid. The transform starts at the geometric centre of the volumes
(``CenteredTransformInitializer``, GEOMETRY) and maps a point of the portal
(fixed) grid to the arterial (moving) grid, ITK's convention: the registered
arterial image is ``arterial(T(x))``.

This is the registration the paper did with ITK 4.7; the pyramid, the random
metric sampling and the iteration limits are ours, chosen so that a
40 x 256 x 256 pair registers in about a second on one core with sub-millimetre
accuracy on the synthetic cohort (validation/suite_registration.py).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk


@dataclass(frozen=True)
class RegistrationSettings:
    """Registration settings.

    Both volumes are first bin-averaged to about `working_spacing_mm` per axis
    (never upsampled), then registered over a pyramid (`shrink_factors`,
    Gaussian `smoothing_sigmas` in voxels) with Mattes MI (`histogram_bins`)
    on a random `sampling_percentage` of voxels (seeded, so runs repeat).

    The registration itself runs on one thread, whatever SimpleITK's global thread
    count: ITK 5.4's Mattes MI sums the per-thread partial histograms in an order that
    varies from run to run, so with two or more threads the same call on the same
    images gives parameters ~1e-14 apart (measured: four identical calls, four
    different results with 2 threads, identical with 1). That noise reached the float32
    crops and, through the network, the signature's 6th digit: two runs of one study
    differed. The method's own SetNumberOfThreads does not reach the metric, so SimpleITK's
    global default is 1 while it runs (and restored after; not safe against registrations
    in other threads of the same process, which sigkit never runs: its Dask workers are
    processes). One thread costs a registration up to its threads-fold time (~1 s per
    patient here); the Dask workers run patients in parallel instead.
    """

    working_spacing_mm: float = 3.0
    shrink_factors: tuple[int, ...] = (2, 1)
    smoothing_sigmas: tuple[float, ...] = (1.0, 0.0)
    histogram_bins: int = 32
    sampling_percentage: float = 0.2
    learning_rate: float = 1.0
    min_step: float = 1e-3
    iterations: int = 60
    relaxation: float = 0.6
    seed: int = 1


@contextmanager
def _one_thread():
    """SimpleITK's global default thread count set to 1 for the block, then restored."""
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)


def bin_factors(image: sitk.Image, working_spacing_mm: float) -> list[int]:
    """Per-axis integer bin sizes that bring `image` close to `working_spacing_mm`."""
    return [max(1, round(working_spacing_mm / s)) for s in image.GetSpacing()]


@dataclass(frozen=True)
class Registration:
    """A fitted Euler3D transform (portal point -> arterial point) and its diagnostics."""

    parameters: np.ndarray  # (rx, ry, rz rad, tx, ty, tz mm)
    centre: np.ndarray  # centre of rotation (x, y, z) mm
    metric: float
    iterations: int
    stop: str
    seconds: float

    def transform(self) -> sitk.Euler3DTransform:
        return euler_transform(self.parameters, self.centre)


def euler_transform(parameters, centre=(0.0, 0.0, 0.0)) -> sitk.Euler3DTransform:
    """An Euler3D transform from (rx, ry, rz, tx, ty, tz) and its centre of rotation."""
    transform = sitk.Euler3DTransform()
    transform.SetCenter(tuple(float(c) for c in centre))
    transform.SetParameters(tuple(float(p) for p in parameters))
    return transform


def identity(fixed: sitk.Image) -> Registration:
    """No registration: the identity transform centred on the fixed image."""
    centre = fixed.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2.0 for s in fixed.GetSize()])
    return Registration(np.zeros(6), np.asarray(centre), float("nan"), 0, "not registered", 0.0)


def register_rigid(
    fixed: sitk.Image, moving: sitk.Image, settings: RegistrationSettings | None = None
) -> Registration:
    """Register `moving` (arterial) onto `fixed` (portal); both float32 3-D images."""
    settings = settings or RegistrationSettings()
    start = time.perf_counter()
    fixed = sitk.BinShrink(fixed, bin_factors(fixed, settings.working_spacing_mm))
    moving = sitk.BinShrink(moving, bin_factors(moving, settings.working_spacing_mm))
    initial = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY
    )
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=settings.histogram_bins)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(settings.sampling_percentage, settings.seed)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=settings.learning_rate,
        minStep=settings.min_step,
        numberOfIterations=settings.iterations,
        relaxationFactor=settings.relaxation,
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel(list(settings.shrink_factors))
    method.SetSmoothingSigmasPerLevel(list(settings.smoothing_sigmas))
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    method.SetInitialTransform(initial, inPlace=False)
    with _one_thread():  # reproducible: see RegistrationSettings
        final = method.Execute(fixed, moving)
    euler = sitk.Euler3DTransform(sitk.CompositeTransform(final).GetBackTransform())
    return Registration(
        parameters=np.asarray(euler.GetParameters()),
        centre=np.asarray(euler.GetCenter()),
        metric=float(method.GetMetricValue()),
        iterations=int(method.GetOptimizerIteration()),
        stop=method.GetOptimizerStopConditionDescription(),
        seconds=time.perf_counter() - start,
    )


def rotation_matrix(transform: sitk.Euler3DTransform) -> np.ndarray:
    return np.asarray(transform.GetMatrix()).reshape(3, 3)


def transform_error(
    estimated: sitk.Euler3DTransform, truth: sitk.Euler3DTransform, at: np.ndarray
) -> tuple[float, float]:
    """Translation error (mm) at point `at` and rotation error (degrees) between transforms.

    translation error = |T_est(at) - T_true(at)|; rotation error = the angle of
    R_est R_true^T. Comparing the maps, not the parameters, makes the error
    independent of each transform's centre of rotation.
    """
    p = tuple(float(v) for v in at)
    shift = np.linalg.norm(np.subtract(estimated.TransformPoint(p), truth.TransformPoint(p)))
    relative = rotation_matrix(estimated) @ rotation_matrix(truth).T
    cos = np.clip((np.trace(relative) - 1.0) / 2.0, -1.0, 1.0)
    return float(shift), float(np.degrees(np.arccos(cos)))
