"""sigkit.deep: DenseNet-121 in Flax, ImageNet weight import, batched extraction, CAMs.

Modules: `weights` (import, cache, load), `extract` (jit-compiled, sharded
extraction), `cam` (class activation maps of a linear signature); the network
itself is private (`_densenet`) and re-exported here.
"""

from toolkit.deep._densenet import (
    KERAS_BN_EPSILON,
    N_FEATURES,
    TORCHVISION_BN_EPSILON,
    DenseNet121,
    conv_macs,
    fold_batch_norm,
    layer_shapes,
)

__all__ = [
    "KERAS_BN_EPSILON",
    "N_FEATURES",
    "TORCHVISION_BN_EPSILON",
    "DenseNet121",
    "conv_macs",
    "fold_batch_norm",
    "layer_shapes",
]
