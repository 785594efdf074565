"""Shared, session-scoped references for the DenseNet-121 tests.

DenseNet-121 compiles slowly on a CPU, so the Keras reference (model, random
weights in three file layouts, its features on a few CT-like crops) and the
torch reference are built once per session and shared; our own jitted network
is cached in `toolkit.deep.extract.network`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")

from deep_helpers import ct_like_crops, randomise_keras, write_keras2_layout

N_CROPS = 3


@pytest.fixture(scope="session")
def crops() -> np.ndarray:
    return ct_like_crops(N_CROPS, seed=1)


@dataclass(frozen=True)
class KerasReference:
    legacy_h5: Path
    keras2_h5: Path
    weights_h5: Path
    features: np.ndarray  # Keras's pooled features of `crops`
    model: object


@pytest.fixture(scope="session")
def keras_reference(tmp_path_factory, crops) -> KerasReference:
    import h5py
    import keras
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    folder = tmp_path_factory.mktemp("keras")
    legacy = folder / "densenet121_keras3_legacy.h5"
    keras2 = folder / "densenet121_keras2_layout.h5"
    weights_h5 = folder / "densenet121.weights.h5"
    with warnings.catch_warnings():
        # Keras 3.15 converts variables with np.array(variable), which NumPy 2 warns about.
        warnings.simplefilter("ignore", DeprecationWarning)
        model = keras.applications.DenseNet121(weights=None, include_top=False, pooling="avg")
        randomise_keras(model, seed=0)
        with h5py.File(legacy, "w") as handle:
            save_weights_to_hdf5_group(handle, model)
        write_keras2_layout(model, keras2)
        model.save_weights(weights_h5)
        rgb = np.repeat(crops[..., None], 3, axis=-1)
        features = np.asarray(model.predict(rgb, batch_size=len(crops), verbose=0))
    return KerasReference(legacy, keras2, weights_h5, features, model)


@pytest.fixture(scope="session")
def keras_weights(keras_reference):
    """Our import of the Keras 3 legacy-layout file (no published hash: warns)."""
    from toolkit.deep.weights import import_file

    with pytest.warns(UserWarning, match="does not match the hash Keras publishes"):
        return import_file(keras_reference.legacy_h5)


@pytest.fixture(scope="session")
def random_weights():
    from toolkit.deep.weights import random_weights as make

    return make(seed=0)
