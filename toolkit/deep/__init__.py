"""sigkit.deep: DenseNet-121 in Flax, ImageNet weight import, batched extraction, CAMs.

Modules: `weights` (import, cache, load), `extract` (jit-compiled, sharded
extraction), `cam` (class activation maps of a linear signature), `cox_loss` (the
Cox negative partial log-likelihood for training, in JAX), `finetune` (the backbone and
a Cox head trained end to end by Optax on that loss), `augment` (its random flips,
rotations and intensity jitter); the network
itself is private (`_densenet`) and re-exported here. The re-exports load
lazily so that importing `toolkit.deep` (the CLI does) does not import JAX.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DenseNet121": "toolkit.deep._densenet",
    "KERAS_BN_EPSILON": "toolkit.deep._densenet",
    "N_FEATURES": "toolkit.deep._densenet",
    "TORCHVISION_BN_EPSILON": "toolkit.deep._densenet",
    "conv_macs": "toolkit.deep._densenet",
    "fold_batch_norm": "toolkit.deep._densenet",
    "layer_shapes": "toolkit.deep._densenet",
    "LoadedWeights": "toolkit.deep.weights",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'toolkit.deep' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    return getattr(module, name)


__all__ = sorted(_EXPORTS)
