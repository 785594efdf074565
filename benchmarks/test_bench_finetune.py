"""Fine-tuning throughput on the CPU: forward + backward of DenseNet-121 with a Cox head,
sigkit (Flax, jit, `toolkit.deep.finetune.loss_and_grad`, the batch split over one XLA host
device per core) vs torch 2.13 (eager, the torchvision-named reference model of tests/deep,
channels_last), in one run.

Both take the same step: B patients' arterial and portal 224 x 224 crops (2B images,
float32, z-scored CT-like) through DenseNet-121 with frozen batch-norm statistics, the two
phases' pooled features into a linear Cox head, the Cox negative partial log-likelihood of
the B linear predictors, and its gradient in every parameter (no optimiser update: the
same for both and negligible). images/s counts the 2B images.

Run alone (the XLA flag must be set before JAX starts):
``.venv/bin/pytest benchmarks/test_bench_finetune.py --benchmark-only
--benchmark-json=benchmarks/results/<time>_<host>.json``, then
``python benchmarks/write_readme.py``. Compilation is excluded by a warm-up call and
reported in extra_info; the load average at the start is recorded too.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

if "jax" not in sys.modules:
    cores = len(os.sched_getaffinity(0))
    os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={cores}")

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "deep"))

ROUNDS = 3
PATIENTS = 4  # per step: 8 images


def _cohort(n: int):
    from deep_helpers import ct_like_crops

    crops = ct_like_crops(2 * n, seed=11)
    rng = np.random.default_rng(0)
    time_ = rng.exponential(12.0, n)
    event = np.r_[1.0, 1.0, np.zeros(n - 2)] if n > 2 else np.ones(n)
    return crops[:n], crops[n:], time_, event


def _record(benchmark, images: int, **extra) -> None:
    median = benchmark.stats.stats.median
    load = os.getloadavg()
    benchmark.extra_info.update(
        images_per_s=round(images / median, 2),
        load_average_1min=round(load[0], 2),
        **extra,
    )


@pytest.mark.parametrize("patients", [PATIENTS])
def test_sigkit_flax_forward_backward(benchmark, patients):
    import jax

    from toolkit.deep.cox_loss import risk_sets
    from toolkit.deep.finetune import Chunks, CoxNetwork, init_params, loss_and_grad

    arterial, portal, time_, event = _cohort(patients)
    network = CoxNetwork()
    chunks = Chunks.of(patients, None)
    params = jax.device_put(init_params(network, (224, 224), seed=0), chunks.replicated)
    head = np.full(params["head"]["kernel"].shape, 1e-3, np.float32)
    params = {**params, "head": {"kernel": jax.device_put(head, chunks.replicated)}}
    risk = risk_sets(time_, event)
    step = jax.jit(loss_and_grad(network, chunks))
    a, p = chunks.put(arterial), chunks.put(portal)

    def run():
        value, grads = step(params, a, p, risk)
        return jax.block_until_ready((value, grads))

    start = time.perf_counter()
    run()
    compile_s = time.perf_counter() - start
    benchmark.group = f"DenseNet-121 fine-tuning step CPU, {2 * patients} images"
    value, grads = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    assert np.isfinite(float(value))
    assert np.abs(np.asarray(grads["backbone"]["conv1_conv"]["kernel"])).max() > 0
    _record(
        benchmark,
        2 * patients,
        devices=jax.local_device_count(),
        first_call_s=round(compile_s, 1),
    )


def _torch_cox_loss(eta, time_, event):
    """Breslow's negative partial log-likelihood (no ties in these times) per event."""
    import torch

    order = torch.argsort(torch.as_tensor(time_), descending=True)
    e, d = eta[order], torch.as_tensor(event, dtype=eta.dtype)[order]
    return -(d * (e - torch.logcumsumexp(e, 0))).sum() / d.sum()


@pytest.mark.parametrize("patients", [PATIENTS])
def test_torch_forward_backward(benchmark, patients):
    import torch
    from torch_reference import TorchDenseNet121

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    arterial, portal, time_, event = _cohort(patients)
    model = TorchDenseNet121().eval().to(memory_format=torch.channels_last)  # frozen BN stats
    head = torch.nn.Linear(2048, 1, bias=False)
    torch.nn.init.constant_(head.weight, 1e-3)
    both = np.concatenate([arterial, portal])[:, None]
    x = torch.from_numpy(np.repeat(both, 3, axis=1)).contiguous(memory_format=torch.channels_last)

    def run():
        model.zero_grad(set_to_none=True)
        head.zero_grad(set_to_none=True)
        pooled = model.pooled(x)
        features = torch.cat([pooled[:patients], pooled[patients:]], dim=1)
        loss = _torch_cox_loss(head(features)[:, 0], time_, event)
        loss.backward()
        return loss

    run()
    benchmark.group = f"DenseNet-121 fine-tuning step CPU, {2 * patients} images"
    loss = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    assert torch.isfinite(loss)
    assert model.features.conv0.weight.grad.abs().max() > 0
    _record(benchmark, 2 * patients, threads=torch.get_num_threads())
