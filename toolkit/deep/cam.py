"""Class activation maps for a linear survival signature over DenseNet-121's pooled features.

The signature's linear predictor over one phase's pooled features is
``lp = sum_k w_k * f_k`` with ``f_k = mean_{x,y} A_k(x, y)``, A the final 7x7
feature map (after the last BN+ReLU). Global average pooling is linear, so

    lp = mean_{x,y} heat(x, y),    heat(x, y) = sum_k w_k * A_k(x, y),

exactly: the heat map is the class activation map of Zhou et al. (2016,
"Learning deep features for discriminative localization") with the Cox
coefficients in the place of the class weights, and each grid cell's value is
that region's contribution to the risk (higher = worse prognosis). The 7x7 map
is upsampled bilinearly (half-pixel centres, `jax.image.resize`) to the crop.

Coefficients must be on the raw feature scale (a signature fitted on
standardised features: divide each coefficient by its feature's SD); features
outside the signature or of the other phase get weight 0.

**A fine-tuned network** (`toolkit.deep.finetune.CoxNetwork`) has the same form with its
own backbone and its linear Cox head ``eta = beta_a . f(a) + beta_p . f(p)``: per phase,
``heat_a(x, y) = sum_k beta_a,k A_k(a; x, y)`` on the fine-tuned backbone's last feature
map (``input_size / 32`` cells a side), and ``eta = mean heat_a + mean heat_p`` exactly
(`finetuned_risk_contributions`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from toolkit.deep._densenet import N_FEATURES
from toolkit.deep.extract import CROP_SIZE, DEFAULT_WINDOW, feature_maps, resolve_weights
from toolkit.deep.weights import LoadedWeights


def _check_weights(weights_1024: np.ndarray) -> np.ndarray:
    w = np.asarray(weights_1024, dtype=np.float64)
    if w.shape != (N_FEATURES,):
        raise ValueError(f"signature weights have shape {w.shape}; expected ({N_FEATURES},)")
    if not np.all(np.isfinite(w)):
        raise ValueError("signature weights contain NaN or infinite values")
    return w


def risk_contributions(
    crops: np.ndarray,
    weights_1024: np.ndarray,
    params: LoadedWeights | str | os.PathLike[str] | None = None,
    *,
    dtype: str = "float32",
    normalization: str = "zscore",
    window: tuple[float, float] = DEFAULT_WINDOW,
    patients: Sequence[str] | None = None,
) -> np.ndarray:
    """heat(x, y) = sum_k w_k A_k(x, y) on the 7x7 grid, for (N, 224, 224) crops -> (N, 7, 7).

    Its mean over the grid equals ``weights_1024 @ extract(crop)``.
    """
    w = _check_weights(weights_1024)
    maps = feature_maps(
        crops,
        params=params,
        dtype=dtype,
        normalization=normalization,
        window=window,
        patients=patients,
    )
    return np.einsum("nxyk,k->nxy", maps.astype(np.float64), w)


def finetuned_risk_contributions(
    network, params, arterial: np.ndarray, portal: np.ndarray
) -> dict[str, np.ndarray]:
    """heat_phase(x, y) = sum_k beta_phase,k A_k(x, y) of a fine-tuned ``CoxNetwork``.

    ``arterial``, ``portal``: (N, S, S) crops as the network takes them (z-scored, resized
    to its input size); ``params``: the network's (``backbone`` and ``head``). The head's
    kernel (2F, 1) holds beta_a in its first F rows and beta_p in the last F, as the
    network concatenates the phases' pooled features. Returns phase -> (N, S/32, S/32)
    float64; ``mean heat_arterial + mean heat_portal`` over the grid is eta (float32
    rounding aside). Float32 backbone.
    """
    import jax
    import jax.numpy as jnp

    kernel = np.asarray(params["head"]["kernel"], dtype=np.float64)[:, 0]
    n_features = kernel.size // 2
    backbone = network.backbone.clone(dtype=jnp.float32)

    @jax.jit
    def last_map(backbone_params, crops):
        images = jnp.broadcast_to(crops[..., None], (*crops.shape, 3))
        maps, _ = backbone.apply({"params": backbone_params}, images)
        return maps.astype(jnp.float32)

    out = {}
    for phase, crops, beta in (
        ("arterial", arterial, kernel[:n_features]),
        ("portal", portal, kernel[n_features:]),
    ):
        maps = np.asarray(last_map(params["backbone"], jnp.asarray(crops, jnp.float32)))
        if maps.shape[-1] != n_features:
            raise ValueError(
                f"the head has {n_features} weights per phase but the backbone's last "
                f"feature map has {maps.shape[-1]} channels"
            )
        out[phase] = np.einsum("nxyk,k->nxy", maps.astype(np.float64), beta)
    return out


def upsample(heat: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """Bilinear upsampling of a (g, g) map (7 x 7 for 224 x 224 crops) to (size, size)
    (half-pixel centres)."""
    import jax

    out = jax.image.resize(np.asarray(heat, np.float32), (size, size), method="bilinear")
    return np.asarray(out, dtype=np.float64)


def risk_map(
    crop: np.ndarray,
    weights_1024: np.ndarray,
    params: LoadedWeights | str | os.PathLike[str] | None = None,
    *,
    dtype: str = "float32",
    normalization: str = "zscore",
    window: tuple[float, float] = DEFAULT_WINDOW,
    patient: str | None = None,
) -> np.ndarray:
    """The (224, 224) risk-contribution map of one (224, 224) crop (see the module docstring)."""
    crop = np.asarray(crop)
    if crop.shape != (CROP_SIZE, CROP_SIZE):
        who = f"{patient}: " if patient else ""
        raise ValueError(f"{who}crop has shape {crop.shape}; expected ({CROP_SIZE}, {CROP_SIZE})")
    heat = risk_contributions(
        crop[None],
        weights_1024,
        params,
        dtype=dtype,
        normalization=normalization,
        window=window,
        patients=[patient] if patient else None,
    )[0]
    return upsample(heat, CROP_SIZE)


def overlay_figure(
    crop: np.ndarray,
    heat: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    weights: LoadedWeights | str,
    title: str = "",
    window: tuple[float, float] = DEFAULT_WINDOW,
    alpha: float = 0.45,
    network: str = "DenseNet-121",
):
    """A matplotlib figure: the CT crop (windowed) and the risk map over it with the ROI contour.

    The colour scale is diverging and centred at 0 (red: raises the risk, blue:
    lowers it). `weights` (LoadedWeights or its origin) and `network` (its name) label
    the figure; random weights are said so in the title.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    origin = weights.origin if isinstance(weights, LoadedWeights) else str(weights)
    heat = np.asarray(heat, dtype=np.float64)
    limit = float(np.max(np.abs(heat))) or 1.0
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 4.4), layout="constrained")
    for ax in axes:
        ax.imshow(crop, cmap="gray", vmin=window[0], vmax=window[1])
        ax.set_axis_off()
    image = axes[1].imshow(heat, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -limit, limit), alpha=alpha)
    if mask is not None and np.any(mask):
        for ax in axes:
            ax.contour(np.asarray(mask) > 0, levels=[0.5], colors="yellow", linewidths=1.0)
    axes[0].set_title("CT crop")
    axes[1].set_title("Risk contribution (CAM)")
    fig.colorbar(image, ax=axes[1], shrink=0.8, label="contribution to the linear predictor")
    label = (
        "random weights (not ImageNet): not interpretable"
        if origin == "random"
        else f"{network} weights: {origin}"
    )
    fig.suptitle(f"{title}\n{label}" if title else label)
    return fig


def save_overlay(
    stem: str | os.PathLike[str],
    crop: np.ndarray,
    heat: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    weights: LoadedWeights | str,
    title: str = "",
    window: tuple[float, float] = DEFAULT_WINDOW,
) -> list:
    """Draw `overlay_figure` and save it as PNG and SVG (`toolkit.artifacts.save_figure`)."""
    import matplotlib.pyplot as plt

    from toolkit.artifacts import save_figure

    fig = overlay_figure(crop, heat, mask, weights=weights, title=title, window=window)
    try:
        return save_figure(fig, stem)
    finally:
        plt.close(fig)


__all__ = [
    "finetuned_risk_contributions",
    "overlay_figure",
    "resolve_weights",
    "risk_contributions",
    "risk_map",
    "save_overlay",
    "upsample",
]
