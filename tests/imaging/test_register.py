import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from toolkit.imaging.io import read_volume
from toolkit.imaging.register import euler_transform, identity, register_rigid, transform_error
from toolkit.synth import generate_cohort
from toolkit.synth.truth import MOTION


def test_transform_error_measures_maps_not_parameters():
    truth = euler_transform([0.0, 0.0, 0.0, 1.0, 2.0, 3.0])
    shifted = euler_transform([0.0, 0.0, 0.0, 2.0, 4.0, 5.0])
    shift, angle = transform_error(shifted, truth, np.zeros(3))
    assert shift == pytest.approx(3.0) and angle == pytest.approx(0.0, abs=1e-6)
    turned = euler_transform([0.0, 0.0, np.deg2rad(0.5), 1.0, 2.0, 3.0])
    shift, angle = transform_error(turned, truth, np.zeros(3))
    assert shift == pytest.approx(0.0, abs=1e-9) and angle == pytest.approx(0.5, abs=1e-6)
    # the same map expressed about another centre of rotation has no error
    moved = euler_transform([0.0, 0.0, np.deg2rad(2.0), 0.0, 0.0, 0.0], centre=(10.0, 0, 0))
    same = sitk.Euler3DTransform()
    same.SetCenter((0.0, 0.0, 0.0))
    same.SetRotation(0.0, 0.0, np.deg2rad(2.0))
    same.SetTranslation(tuple(np.subtract(moved.TransformPoint((0.0, 0.0, 0.0)), (0, 0, 0))))
    assert transform_error(moved, same, np.array([30.0, -20.0, 5.0]))[0] == pytest.approx(
        0.0, abs=1e-9
    )


@pytest.fixture(scope="module")
def full_size_cohort(tmp_path_factory):
    """Three patients on the default grid (40 x 256 x 256, 0.8 x 0.8 x 2.5 mm)."""
    out = tmp_path_factory.mktemp("full")
    generate_cohort(out, 3, seed=11, workers=1)
    return out


def test_registration_recovers_the_known_motion(full_size_cohort):
    truth = pd.read_csv(full_size_cohort / "ground_truth" / "truth.csv")
    for row in truth.itertuples(index=False):
        folder = full_size_cohort / "images" / row.patient
        portal = read_volume(folder / "portal.nii.gz")
        fit = register_rigid(portal, read_volume(folder / "arterial.nii.gz"))
        true = euler_transform([getattr(row, m) for m in MOTION])
        tumour = np.array([row.tumour_centre_x, row.tumour_centre_y, row.tumour_centre_z])
        shift, angle = transform_error(fit.transform(), true, tumour)
        before, _ = transform_error(identity(portal).transform(), true, tumour)
        assert shift < 1.0, f"{row.patient}: {shift:.2f} mm (unregistered {before:.2f} mm)"
        assert angle < 1.0, f"{row.patient}: {angle:.2f} degrees"
        assert before > 1.0  # the phases really were misaligned


def test_identity_is_centred_and_zero():
    image = sitk.Image([10, 20, 5], sitk.sitkFloat32)
    fit = identity(image)
    assert np.all(fit.parameters == 0)
    np.testing.assert_allclose(fit.centre, [4.5, 9.5, 2.0])


def test_registration_repeats_exactly_whatever_the_thread_count(full_size_cohort):
    """Identical calls give identical parameters, bit for bit, with SimpleITK's global
    thread count above one (with 2+ threads ITK's Mattes MI sums in a varying order:
    before the fix four calls gave four results ~1e-14 apart)."""
    folder = full_size_cohort / "images" / "P001"
    portal = read_volume(folder / "portal.nii.gz")
    arterial = read_volume(folder / "arterial.nii.gz")
    default = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(4)
    try:
        fits = [register_rigid(portal, arterial) for _ in range(4)]
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(default)
    for fit in fits[1:]:
        assert fit.parameters.tobytes() == fits[0].parameters.tobytes()
        assert fit.metric == fits[0].metric
