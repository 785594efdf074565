"""DenseNet-121 (Huang et al. 2017) in Flax, for feature extraction.

Architecture as in Keras's `keras.applications.DenseNet121` and torchvision's
`densenet121`: a 7x7/2 convolution stem, 3x3/2 max pooling, four dense blocks of
6, 12, 24 and 16 layers (growth rate 32, 1x1 bottleneck of 4 x 32 channels, 3x3
convolution), transitions with compression 0.5 and 2x2/2 average pooling, a
final batch norm + ReLU giving the 7x7x1024 feature map, and global average
pooling to the 1024 features. NHWC throughout.

Inference only. Batch normalisation is applied in its folded form
``y = x * scale + offset`` with ``scale = gamma / sqrt(moving_variance + eps)`` and
``offset = beta - moving_mean * scale`` (`fold_batch_norm`, in float64 on the
host), so the epsilon of the weights' origin (Keras 1.001e-5, torchvision 1e-5)
is part of the parameters and one compiled program serves both. Deliberate
difference from Keras/torchvision: in the transitions the 2x2 average pooling is
applied before the 1x1 convolution rather than after; both are linear, so the
result is the same up to rounding and the convolution costs 4x fewer FLOPs.

Parameters are float32; the compute dtype (float32 or bfloat16) applies to the
convolutions and activations, and the global average pool accumulates in float32.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

BLOCKS: tuple[int, ...] = (6, 12, 24, 16)
GROWTH_RATE = 32
BOTTLENECK = 4
STEM_FEATURES = 64
N_FEATURES = 1024
KERAS_BN_EPSILON = 1.001e-5
TORCHVISION_BN_EPSILON = 1e-5

BN_VARIABLES = ("gamma", "beta", "moving_mean", "moving_variance")


def layer_shapes() -> dict[str, dict[str, tuple[int, ...]]]:
    """Every weighted layer of DenseNet-121 with Keras's layer names and its variables' shapes.

    Convolution kernels are HWIO (`kernel`); batch norms have `gamma`, `beta`,
    `moving_mean`, `moving_variance`. Order is the network's order.
    """
    shapes: dict[str, dict[str, tuple[int, ...]]] = {}

    def conv(name: str, size: int, c_in: int, c_out: int) -> None:
        shapes[name] = {"kernel": (size, size, c_in, c_out)}

    def bn(name: str, channels: int) -> None:
        shapes[name] = {v: (channels,) for v in BN_VARIABLES}

    conv("conv1_conv", 7, 3, STEM_FEATURES)
    bn("conv1_bn", STEM_FEATURES)
    channels = STEM_FEATURES
    for stage, n_layers in enumerate(BLOCKS, start=2):
        for layer in range(1, n_layers + 1):
            prefix = f"conv{stage}_block{layer}"
            bn(f"{prefix}_0_bn", channels)
            conv(f"{prefix}_1_conv", 1, channels, BOTTLENECK * GROWTH_RATE)
            bn(f"{prefix}_1_bn", BOTTLENECK * GROWTH_RATE)
            conv(f"{prefix}_2_conv", 3, BOTTLENECK * GROWTH_RATE, GROWTH_RATE)
            channels += GROWTH_RATE
        if stage < 2 + len(BLOCKS) - 1:
            bn(f"pool{stage}_bn", channels)
            conv(f"pool{stage}_conv", 1, channels, channels // 2)
            channels //= 2
    bn("bn", channels)
    return shapes


def fold_batch_norm(
    params: Mapping[str, Mapping[str, np.ndarray]], bn_epsilon: float
) -> dict[str, dict[str, np.ndarray]]:
    """Flax parameters of `DenseNet121` from Keras-named weights.

    Each batch norm becomes ``scale = gamma / sqrt(moving_variance + bn_epsilon)``,
    ``offset = beta - moving_mean * scale`` (computed in float64, stored float32);
    kernels are copied. `params` maps layer name -> variable -> array, as
    `layer_shapes` describes.
    """
    folded: dict[str, dict[str, np.ndarray]] = {}
    for name, variables in params.items():
        if "kernel" in variables:
            folded[name] = {"kernel": np.asarray(variables["kernel"], dtype=np.float32)}
            continue
        gamma, beta, mean, var = (np.asarray(variables[v], np.float64) for v in BN_VARIABLES)
        scale = gamma / np.sqrt(var + bn_epsilon)
        folded[name] = {
            "scale": scale.astype(np.float32),
            "offset": (beta - mean * scale).astype(np.float32),
        }
    return folded


class FoldedBatchNorm(nn.Module):
    """Inference batch norm in folded form: ``x * scale + offset`` per channel, then ReLU."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        scale = self.param("scale", nn.initializers.ones, (self.features,), jnp.float32)
        offset = self.param("offset", nn.initializers.zeros, (self.features,), jnp.float32)
        return nn.relu(x * scale.astype(self.dtype) + offset.astype(self.dtype))


class DenseNet121(nn.Module):
    """DenseNet-121 without its classifier.

    Input: (N, 224, 224, 3) images (any spatial size divisible by 32 works).
    Returns ``(feature_map, pooled)``: the final feature map after the last batch
    norm + ReLU, (N, 7, 7, 1024) in the compute dtype, and its global average,
    (N, 1024) float32.

    ``blocks``, ``growth_rate`` and ``stem_features`` are DenseNet-121's by default
    (the only values ImageNet weights fit); smaller ones give the reduced-width
    networks that the fine-tuning tests train in seconds on a CPU.
    """

    dtype: Any = jnp.float32
    blocks: tuple[int, ...] = BLOCKS
    growth_rate: int = GROWTH_RATE
    stem_features: int = STEM_FEATURES

    def _conv(self, x, features: int, size: int, name: str, stride: int = 1, pad: int = 0):
        return nn.Conv(
            features,
            (size, size),
            strides=(stride, stride),
            padding=((pad, pad), (pad, pad)),
            use_bias=False,
            dtype=self.dtype,
            param_dtype=jnp.float32,
            name=name,
        )(x)

    def _bn_relu(self, x, name: str):
        return FoldedBatchNorm(x.shape[-1], dtype=self.dtype, name=name)(x)

    @nn.compact
    def __call__(self, images: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        x = images.astype(self.dtype)
        x = self._conv(x, self.stem_features, 7, "conv1_conv", stride=2, pad=3)
        x = self._bn_relu(x, "conv1_bn")
        # After the ReLU every value is >= 0, so max pooling's -inf padding equals
        # Keras's zero padding.
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        for stage, n_layers in enumerate(self.blocks, start=2):
            for layer in range(1, n_layers + 1):
                prefix = f"conv{stage}_block{layer}"
                y = self._bn_relu(x, f"{prefix}_0_bn")
                y = self._conv(y, BOTTLENECK * self.growth_rate, 1, f"{prefix}_1_conv")
                y = self._bn_relu(y, f"{prefix}_1_bn")
                y = self._conv(y, self.growth_rate, 3, f"{prefix}_2_conv", pad=1)
                x = jnp.concatenate([x, y], axis=-1)
            if stage < 2 + len(self.blocks) - 1:
                x = self._bn_relu(x, f"pool{stage}_bn")
                x = nn.avg_pool(x, (2, 2), strides=(2, 2))
                x = self._conv(x, x.shape[-1] // 2, 1, f"pool{stage}_conv")
        feature_map = self._bn_relu(x, "bn")
        pooled = jnp.mean(feature_map.astype(jnp.float32), axis=(1, 2))
        return feature_map, pooled


def conv_macs(image_size: int = 224) -> int:
    """Multiply-accumulates of DenseNet-121's convolutions for one image (standard order).

    Counted analytically from `layer_shapes` as in the papers (transition
    convolutions at the pre-pooling resolution): about 2.87e9 at 224 x 224.
    """
    shapes = layer_shapes()
    size = image_size // 4  # after the stem convolution and max pooling
    total = (image_size // 2) ** 2 * int(np.prod(shapes["conv1_conv"]["kernel"]))
    for name, variables in shapes.items():
        if "kernel" not in variables or name == "conv1_conv":
            continue
        stage = int(name[4])  # conv<stage>_block… or pool<stage>_conv
        spatial = size // 2 ** (stage - 2)
        total += spatial**2 * int(np.prod(variables["kernel"]))
    return total
