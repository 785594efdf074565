"""Random augmentation of a patient's two phase crops for fine-tuning, in JAX.

For patient i with crops a_i and p_i (H x W, z-scored), one draw from the key gives

    a'_i = (1 + s_a) * T_i(a_i) + b_a,    p'_i = (1 + s_p) * T_i(p_i) + b_p

with T_i one geometric transform shared by the two phases (they are registered
onto each other, so they must move together): a left-right flip and an up-down
flip, each with probability 1/2, then a rotation about the crop's centre by an
angle uniform in [-rotation, rotation] degrees, sampled bilinearly
(``jax.scipy.ndimage.map_coordinates``, order 1) with the nearest edge value
outside the crop; and an intensity jitter per phase, s uniform in
[-intensity_scale, intensity_scale] and b uniform in [-intensity_shift,
intensity_shift] (in z-score units). A rotation of 0 leaves a crop exactly as it
was; a setting of 0 turns its part off.

Deterministic in the key: the same key gives the same crops on any device, and
each patient's draw is ``jax.random.fold_in(key, i)``, so it does not depend on
how the cohort is cut into chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class Augmentation:
    """flip: random left-right and up-down flips; rotation: the largest angle (degrees);
    intensity_scale, intensity_shift: the jitter's bounds (see the module docstring)."""

    flip: bool = True
    rotation: float = 10.0
    intensity_scale: float = 0.1
    intensity_shift: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.rotation <= 45:
            raise ValueError(f"rotation must be between 0 and 45 degrees, not {self.rotation}")
        for name in ("intensity_scale", "intensity_shift"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), not {value}")

    @property
    def active(self) -> bool:
        jitter = self.intensity_scale > 0 or self.intensity_shift > 0
        return self.flip or self.rotation > 0 or jitter


def _rotate(image: jax.Array, angle: jax.Array) -> jax.Array:
    """``image`` rotated by ``angle`` radians about its centre, bilinear, edges extended."""
    h, w = image.shape
    rows, cols = jnp.meshgrid(jnp.arange(h), jnp.arange(w), indexing="ij")
    cy, cx = (h - 1) / 2, (w - 1) / 2
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    y, x = rows - cy, cols - cx
    source = (cos * y - sin * x + cy, sin * y + cos * x + cx)
    rotated = jax.scipy.ndimage.map_coordinates(image, source, order=1, mode="nearest")
    return rotated.astype(image.dtype)


def _one(key: jax.Array, arterial: jax.Array, portal: jax.Array, settings: Augmentation):
    k_flip, k_angle, k_scale, k_shift = jax.random.split(key, 4)
    pair = jnp.stack([arterial, portal])
    if settings.flip:
        lr, ud = jax.random.bernoulli(k_flip, 0.5, (2,))
        pair = jnp.where(lr, pair[:, :, ::-1], pair)
        pair = jnp.where(ud, pair[:, ::-1, :], pair)
    if settings.rotation > 0:
        limit = jnp.deg2rad(settings.rotation)
        angle = jax.random.uniform(k_angle, (), minval=-limit, maxval=limit)
        pair = jax.vmap(_rotate, in_axes=(0, None))(pair, angle)
    scale = settings.intensity_scale
    shift = settings.intensity_shift
    s = jax.random.uniform(k_scale, (2, 1, 1), minval=-scale, maxval=scale)
    b = jax.random.uniform(k_shift, (2, 1, 1), minval=-shift, maxval=shift)
    pair = (1 + s.astype(pair.dtype)) * pair + b.astype(pair.dtype)
    return pair[0], pair[1]


def augment(
    key: jax.Array, arterial: jax.Array, portal: jax.Array, settings: Augmentation
) -> tuple[jax.Array, jax.Array]:
    """One random draw of the module docstring's augmentation of (N, H, W) crops, jit-able."""
    if not settings.active:
        return arterial, portal
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(arterial.shape[0]))
    return jax.vmap(_one, in_axes=(0, 0, 0, None))(keys, arterial, portal, settings)
