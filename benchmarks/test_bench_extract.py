"""DenseNet-121 feature extraction on the CPU: sigkit (Flax, jit, batch sharded over one XLA
host device per core) vs Keras 3 `DenseNet121.predict` (JAX backend) vs torch 2.13 (oneDNN,
channels_last, the torchvision-named reference model of tests/deep), in one run.

Run alone (the XLA flag must be set before JAX starts):
``.venv/bin/pytest benchmarks/test_bench_extract.py --benchmark-only
--benchmark-columns=median,iqr,rounds``; images/s and ratios go to benchmarks/README.md
(## DenseNet-121 extraction). Each timed round is one batch of z-scored CT-like crops
(224 x 224, float32); compilation is excluded by a warm-up round and reported in extra_info.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

if "jax" not in sys.modules:
    cores = len(os.sched_getaffinity(0))
    os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={cores}")
os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "deep"))

ROUNDS = 3
GFLOP = 2 * 2.833  # per image, 2 x multiply-accumulates (toolkit.deep.conv_macs)


def _crops(n: int) -> np.ndarray:
    from deep_helpers import ct_like_crops

    base = ct_like_crops(4, seed=5)
    return np.concatenate([base] * (n // 4 + 1))[:n]


def _record(benchmark, batch: int, **extra) -> None:
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(
        images_per_s=round(batch / median, 2), gflop_per_s=round(batch * GFLOP / median, 1), **extra
    )


@pytest.fixture(scope="module")
def weights():
    from toolkit.deep.weights import random_weights

    return random_weights(0)


@pytest.mark.parametrize("batch", [1, 8, 16, 32, 64])
def test_sigkit_flax(benchmark, weights, batch):
    from toolkit._jax import jax
    from toolkit.deep.extract import extract

    crops = _crops(batch)
    start = time.perf_counter()
    extract(crops, params=weights, batch_size=batch)
    compile_s = time.perf_counter() - start
    benchmark.group = f"DenseNet-121 CPU, batch {batch}"
    out = benchmark.pedantic(
        extract, (crops,), {"params": weights, "batch_size": batch}, rounds=ROUNDS, iterations=1
    )
    assert out.shape == (batch, 1024)
    _record(benchmark, batch, devices=jax.local_device_count(), first_call_s=round(compile_s, 1))


@pytest.fixture(scope="module")
def keras_model():
    import keras

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return keras.applications.DenseNet121(weights=None, include_top=False, pooling="avg")


@pytest.mark.parametrize("batch", [16])
def test_keras_predict(benchmark, keras_model, batch):
    rgb = np.repeat(_crops(batch)[..., None], 3, axis=-1)

    def predict():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return keras_model.predict(rgb, batch_size=batch, verbose=0)

    start = time.perf_counter()
    predict()
    compile_s = time.perf_counter() - start
    benchmark.group = f"DenseNet-121 CPU, batch {batch}"
    out = benchmark.pedantic(predict, rounds=ROUNDS, iterations=1)
    assert out.shape == (batch, 1024)
    _record(benchmark, batch, first_call_s=round(compile_s, 1))


@pytest.mark.parametrize("batch", [1, 8, 16, 32])
def test_torch_channels_last(benchmark, batch):
    import torch
    from torch_reference import TorchDenseNet121

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    model = TorchDenseNet121().eval().to(memory_format=torch.channels_last)
    x = torch.from_numpy(np.repeat(_crops(batch)[:, None], 3, axis=1))
    x = x.contiguous(memory_format=torch.channels_last)

    def run():
        with torch.inference_mode():
            return model.pooled(x)

    run()
    benchmark.group = f"DenseNet-121 CPU, batch {batch}"
    out = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    assert tuple(out.shape) == (batch, 1024)
    _record(benchmark, batch, threads=torch.get_num_threads())
