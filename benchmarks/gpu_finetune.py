#!/usr/bin/env python
"""GPU benchmark: sigkit's fine-tuning of DenseNet-121 with the exact Cox loss.

Run from the repository root on a machine with jax[cuda], flax and optax (no network
needed; random weights):

    python benchmarks/gpu_finetune.py            # full run, a few minutes on an H100/H200
    python benchmarks/gpu_finetune.py --smoke    # reduced width, 32 x 32, 8 patients (CI, CPU)

For each compute dtype (bfloat16 first, then float32) and chunk size it times one
fine-tuning epoch of the 120-patient training set of the reference study: augmentation
of all 240 crops (224 x 224), the chunked forward pass, the exact Cox loss over the
whole risk set, the chunk-by-chunk backward pass and one AdamW update
(`toolkit.deep.finetune.loss_and_grad`, `toolkit.deep.augment.augment`), jit-compiled,
the chunks split over the local devices. Reports images/s (forward + backward, 240 per
epoch), seconds per epoch (median of ``--repeats``), the compile time and the device's
peak memory (``memory_stats()["peak_bytes_in_use"]``; on a CPU the process's maximum
resident set). Each configuration is in its own try/except, so a failure (out of
memory) is recorded and the others still run; no configuration starts after
``--budget`` seconds. Prints a table and writes JSON to $OUT/gpu_finetune.json when
$OUT is a folder ($OUT itself when it names a .json file), else ./gpu_finetune.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

STUDY_PATIENTS = 120


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny network and crops (CI)")
    parser.add_argument("--patients", type=int, default=STUDY_PATIENTS)
    parser.add_argument("--chunk-sizes", type=int, nargs="+", default=[32, 120])
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float32"])
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per configuration")
    parser.add_argument(
        "--budget", type=float, default=420.0, help="no new configuration starts after this"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.patients, args.chunk_sizes, args.repeats = 8, [4], 1
    return args


def output_path() -> Path:
    out = os.environ.get("OUT")
    if not out:
        return Path("gpu_finetune.json")
    path = Path(out)
    return path if path.suffix == ".json" else path / "gpu_finetune.json"


def cohort(n: int, size: int, seed: int = 0):
    """z-scored noise crops with a bright disc whose size drives a synthetic hazard."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    radius = rng.uniform(0.1, 0.3, n)
    disc = (np.hypot(yy - 0.5, xx - 0.5)[None] < radius[:, None, None]).astype(np.float32)
    arterial = disc + rng.normal(0, 0.5, (n, size, size)).astype(np.float32)
    portal = disc + rng.normal(0, 0.5, (n, size, size)).astype(np.float32)
    time_ = rng.exponential(1.0 / np.exp(5 * radius))
    event = (rng.uniform(size=n) < 0.7).astype(float)
    event[0] = 1.0
    return arterial, portal, time_, event


def peak_memory(device) -> dict:
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "peak_bytes_in_use" in stats:
        return {"peak_memory_gib": stats["peak_bytes_in_use"] / 2**30, "memory_of": "device"}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"peak_memory_gib": rss / 2**30, "memory_of": "process max RSS (host)"}


def epoch_function(network, chunks, risk, learning_rate: float = 1e-4):
    """One jitted fine-tuning epoch, as `toolkit.deep.finetune` takes it."""
    import jax
    import optax

    from toolkit.deep.augment import Augmentation, augment
    from toolkit.deep.finetune import loss_and_grad

    optimiser = optax.adamw(learning_rate, weight_decay=1e-4)
    value_and_grad = loss_and_grad(network, chunks)
    augmentation = Augmentation()

    def epoch(params, state, arterial, portal, key):
        a, p = augment(key, arterial, portal, augmentation)
        a, p = (
            jax.lax.with_sharding_constraint(chunks.lay_out(x), chunks.sharding) for x in (a, p)
        )
        value, grads = value_and_grad(params, a, p, risk)
        updates, state = optimiser.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    donate = () if jax.local_devices()[0].platform == "cpu" else (0, 1)
    return optimiser, jax.jit(epoch, donate_argnums=donate)


def bench(args, dtype: str, chunk_size: int) -> dict:
    import jax

    from toolkit.deep import DenseNet121
    from toolkit.deep.cox_loss import risk_sets
    from toolkit.deep.finetune import Chunks, CoxNetwork, init_params, with_dtype

    size = 32 if args.smoke else 224
    backbone = (
        DenseNet121(blocks=(1, 1, 1, 1), growth_rate=8, stem_features=16)
        if args.smoke
        else DenseNet121()
    )
    network = with_dtype(CoxNetwork(backbone), dtype)
    arterial, portal, time_, event = cohort(args.patients, size)
    chunks = Chunks.of(args.patients, chunk_size)
    risk = risk_sets(time_, event)
    params = jax.device_put(init_params(network, (size, size), seed=0), chunks.replicated)
    optimiser, epoch = epoch_function(network, chunks, risk)
    state = optimiser.init(params)
    a, p = jax.device_put(arterial), jax.device_put(portal)
    key = jax.random.key(0)
    start = time.perf_counter()
    params, state, value = jax.block_until_ready(epoch(params, state, a, p, key))
    first = time.perf_counter() - start
    times, losses = [], [float(value)]
    for k in range(args.repeats):
        start = time.perf_counter()
        params, state, value = epoch(params, state, a, p, jax.random.fold_in(key, k + 1))
        losses.append(float(jax.block_until_ready(value)))
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {
        "dtype": dtype,
        "chunk_size": chunks.size,
        "patients": args.patients,
        "images_per_epoch": 2 * args.patients,
        "crop_size": size,
        "first_call_s": first,
        "epoch_s": median,
        "epoch_times_s": times,
        "images_per_s": 2 * args.patients / median,
        "losses": losses,
        **peak_memory(jax.local_devices()[0]),
        "error": None,
    }


def print_table(rows: list[dict]) -> None:
    print(f"{'dtype':<10}{'chunk':>6}{'epoch s':>10}{'images/s':>10}{'peak GiB':>10}")
    for r in rows:
        if r["error"]:
            print(f"{r['dtype']:<10}{r['chunk_size']:>6}  error: {r['error'][:60]}")
            continue
        print(
            f"{r['dtype']:<10}{r['chunk_size']:>6}{r['epoch_s']:>10.3f}"
            f"{r['images_per_s']:>10.1f}{r['peak_memory_gib']:>10.2f}"
        )


def main(argv=None) -> int:
    args = parse_args(argv)
    import jax

    started = time.perf_counter()
    device = jax.local_devices()[0]
    report = {
        "script": "benchmarks/gpu_finetune.py",
        "smoke": args.smoke,
        "device": getattr(device, "device_kind", str(device)),
        "platform": device.platform,
        "devices": jax.local_device_count(),
        "host": platform.node(),
        "jax": jax.__version__,
        "study_patients": STUDY_PATIENTS,
        "rows": [],
        "notes": [],
    }
    if device.platform == "cpu" and not args.smoke:
        report["notes"].append("ran on a CPU: the times are not a GPU's")
    for dtype in args.dtypes:
        for chunk in args.chunk_sizes:
            if time.perf_counter() - started > args.budget:
                report["notes"].append(f"skipped {dtype}, chunk {chunk}: over the budget")
                continue
            try:
                report["rows"].append(bench(args, dtype, chunk))
            except Exception as error:  # out of memory, say: keep the other rows
                traceback.print_exc()
                report["rows"].append(
                    {
                        "dtype": dtype,
                        "chunk_size": chunk,
                        "error": f"{type(error).__name__}: {error}"[:500],
                    }
                )
    report["total_s"] = time.perf_counter() - started
    print_table(report["rows"])
    path = output_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")
    return 0 if all(r["error"] is None for r in report["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
