"""Augmentation (toolkit/deep/augment.py): flips, rotations and the intensity jitter, each
checked against what its formula gives by hand, and the draw deterministic in its key."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from toolkit.deep.augment import Augmentation, augment

RNG = np.random.default_rng(0)
ARTERIAL = RNG.normal(size=(6, 32, 32)).astype(np.float32)
PORTAL = RNG.normal(size=(6, 32, 32)).astype(np.float32)


def _run(settings, key=0, arterial=ARTERIAL, portal=PORTAL):
    a, p = augment(jax.random.key(key), arterial, portal, settings)
    return np.asarray(a), np.asarray(p)


def _flips(image):
    return [image, image[:, ::-1], image[::-1, :], image[::-1, ::-1]]


def test_flips_alone_give_one_of_the_four_flips_shared_by_both_phases():
    a, p = _run(Augmentation(flip=True, rotation=0, intensity_scale=0, intensity_shift=0))
    seen = set()
    for i in range(len(a)):
        matches = [k for k, f in enumerate(_flips(ARTERIAL[i])) if np.array_equal(a[i], f)]
        assert len(matches) == 1
        assert np.array_equal(p[i], _flips(PORTAL[i])[matches[0]])  # the same flip
        seen.add(matches[0])
    assert len(seen) > 1  # not always the same one


def test_rotation_moves_a_point_as_a_rotation_about_the_centre_does():
    # a ramp along columns, x - cx: rotated by theta it samples cos*x + sin*y at (y, x)
    # (y, x measured from the centre), which bilinear interpolation reproduces exactly
    # away from the edges
    y, x = np.meshgrid(np.arange(32) - 15.5, np.arange(32) - 15.5, indexing="ij")
    ramp = np.broadcast_to(x, (6, 32, 32)).astype(np.float32)
    settings = Augmentation(flip=False, rotation=30, intensity_scale=0, intensity_shift=0)
    a, p = _run(settings, arterial=ramp, portal=ramp)
    np.testing.assert_array_equal(a, p)
    inner = (np.abs(y) < 8) & (np.abs(x) < 8)
    angles = []
    for i in range(6):
        # least squares: a = c * x + s * y on the inner region
        design = np.c_[x[inner], y[inner]]
        (c, s), *_ = np.linalg.lstsq(design, a[i][inner], rcond=None)
        np.testing.assert_allclose(a[i][inner], design @ (c, s), atol=1e-4)
        assert c**2 + s**2 == pytest.approx(1.0, abs=1e-5)
        angles.append(np.degrees(np.arctan2(s, c)))
    assert max(np.abs(angles)) <= 30 and np.ptp(angles) > 1
    zero = Augmentation(flip=False, rotation=0, intensity_scale=0, intensity_shift=0)
    assert np.array_equal(_run(zero)[0], ARTERIAL)


def test_intensity_jitter_is_an_affine_map_within_its_bounds_per_phase():
    settings = Augmentation(flip=False, rotation=0, intensity_scale=0.1, intensity_shift=0.2)
    a, p = _run(settings, key=4)
    slopes = []
    for out, original in ((a, ARTERIAL), (p, PORTAL)):
        for i in range(len(out)):
            design = np.c_[original[i].ravel(), np.ones(original[i].size)]
            (slope, shift), *_ = np.linalg.lstsq(design, out[i].ravel(), rcond=None)
            np.testing.assert_allclose(out[i].ravel(), design @ (slope, shift), atol=1e-5)
            assert abs(slope - 1) <= 0.1 + 1e-6 and abs(shift) <= 0.2 + 1e-6
            slopes.append(slope)
    assert np.ptp(slopes) > 0.01  # drawn per patient and phase


def test_the_draw_is_deterministic_in_its_key():
    settings = Augmentation()
    first = _run(settings, key=7)
    for again, before in zip(_run(settings, key=7), first, strict=True):
        np.testing.assert_array_equal(again, before)
    assert not np.array_equal(_run(settings, key=8)[0], first[0])


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="rotation must be between 0 and 45"):
        Augmentation(rotation=90)
    with pytest.raises(ValueError, match=r"intensity_scale must be in \[0, 1\)"):
        Augmentation(intensity_scale=1.5)
