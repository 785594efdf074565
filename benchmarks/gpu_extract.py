#!/usr/bin/env python
"""GPU benchmark: sigkit's Flax DenseNet-121 extraction against torchvision's densenet121.

Run from the repository root on a machine with jax[cuda], flax, torch and
torchvision (no network needed; random weights):

    python benchmarks/gpu_extract.py            # full run, under ~5 minutes on an H100
    python benchmarks/gpu_extract.py --smoke    # tiny batch, one iteration (CI, CPU)

Measures images/s at batch 64, 256 and 1024 in float32 and bfloat16 for
 - sigkit: `DenseNet121` jit-compiled, input (B, 224, 224) single-channel crops on
   the device (replication to 3 channels inside the program), pooled features out;
 - sigkit end-to-end: `toolkit.deep.extract.extract` from host NumPy (batch 256);
 - torchvision densenet121 (classifier removed), eager, channels_last,
   inference_mode, bfloat16 through autocast;
 - the same under torch.compile (default mode).
Each configuration: warm-up, then the median of several timed runs with
block_until_ready / torch.cuda.synchronize. Each is in its own try/except, so a
failure (say torch.compile) is recorded and the others still run; a time budget
skips what would overrun. Also checks that our bfloat16 features match float32
(cosine >= 0.999 on every image), that ours and torchvision's give the same
features from the same weights, and reports achieved TFLOP/s (2 x 2.83 GMAC per
image, counted analytically from the layer shapes) against the device's dense
bf16 peak. Prints a table and writes JSON to $OUT/gpu_extract.json when $OUT is
a folder ($OUT itself when it names a .json file), else ./gpu_extract.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

# JAX must not take the whole GPU: torch runs in the same process.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.5")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) by device name.
PEAKS_BF16 = (
    ("GH200", 989.0),
    ("H200", 989.0),
    ("H100 PCIE", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),
    ("H800", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10G", 70.0),
    ("B200", 2250.0),
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="batch 2, one iteration (CI)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 64, 1024])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per configuration")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--budget", type=float, default=200.0, help="no new configuration starts after this"
    )
    parser.add_argument("--no-torch", action="store_true", help="only sigkit's configurations")
    parser.add_argument(
        "--versus-compile",
        action="store_true",
        help="only sigkit and torch.compile, side by side per (dtype, batch), bfloat16 first",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.batch_sizes, args.repeats, args.warmup = [2], 1, 0
    return args


def peak_bf16(name: str) -> float | None:
    upper = name.upper()
    for key, peak in PEAKS_BF16:
        if key in upper:
            return peak
    return None


def ct_like_crops(n: int, seed: int = 0) -> np.ndarray:
    """z-scored synthetic liver slices with a tumour (hypodense core, bright rim) and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:224, 0:224].astype(np.float32)
    out = np.empty((n, 224, 224), np.float32)
    for i in range(n):
        image = np.where(((yy - 112) / 105) ** 2 + ((xx - 112) / 110) ** 2 < 1, 40.0, -1000.0)
        cy, cx, radius = rng.uniform(90, 130), rng.uniform(90, 130), rng.uniform(18, 35)
        liver = ((yy - cy) / 70) ** 2 + ((xx - cx) / 80) ** 2 < 1
        image = np.where(liver, 100.0, image)
        r = np.hypot(yy - cy - 10, xx - cx + 5)
        image = np.where(r < radius, 140.0, image)
        image = np.where(r < 0.7 * radius, 20.0, image)
        image = image + rng.normal(0, 12, size=image.shape)
        out[i] = (image - image.mean()) / image.std()
    return out


def timed(run, sync, warmup: int, repeats: int) -> dict:
    """Compile/first call time, then `warmup` untimed and `repeats` timed runs (median)."""
    start = time.perf_counter()
    sync(run())
    first = time.perf_counter() - start
    for _ in range(warmup):
        sync(run())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sync(run())
        times.append(time.perf_counter() - start)
    return {"first_call_s": first, "median_s": statistics.median(times), "times_s": times}


class Ours:
    """sigkit's network, jitted once per (batch, dtype), batch sharded over local devices."""

    def __init__(self, weights) -> None:
        import jax
        import jax.numpy as jnp
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        from toolkit.deep._densenet import DenseNet121

        self.jax, self.jnp = jax, jnp
        devices = jax.local_devices()
        mesh = Mesh(np.array(devices), ("batch",))
        self.batch_sharding = NamedSharding(mesh, PartitionSpec("batch"))
        self.params = jax.device_put(weights.flax_params(), NamedSharding(mesh, PartitionSpec()))
        self.n_devices = len(devices)
        self.models = {d: DenseNet121(dtype=getattr(jnp, d)) for d in ("float32", "bfloat16")}
        self.fns = {}

    def fn(self, dtype: str):
        if dtype not in self.fns:
            model, jnp = self.models[dtype], self.jnp

            def run(params, crops):
                images = jnp.broadcast_to(crops[..., None], (*crops.shape, 3))
                return model.apply({"params": params}, images)[1]

            self.fns[dtype] = self.jax.jit(run)
        return self.fns[dtype]

    def features(self, crops: np.ndarray, dtype: str) -> np.ndarray:
        x = self.jax.device_put(crops, self.batch_sharding)
        return np.asarray(self.fn(dtype)(self.params, x))

    def bench(self, batch: int, dtype: str, warmup: int, repeats: int) -> dict:
        x = self.jax.device_put(
            np.random.default_rng(batch).normal(size=(batch, 224, 224)).astype(np.float32),
            self.batch_sharding,
        )
        start = time.perf_counter()
        compiled = self.fn(dtype).lower(self.params, x).compile()
        compile_s = time.perf_counter() - start
        result = timed(
            lambda: compiled(self.params, x), lambda y: y.block_until_ready(), warmup, repeats
        )
        result["compile_s"] = compile_s
        return result


class Torchvision:
    def __init__(self, device: str) -> None:
        import torch
        import torchvision

        self.torch, self.device = torch, device
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
        model = torchvision.models.densenet121(weights=None)
        model.classifier = torch.nn.Identity()
        self.model = model.eval().to(device, memory_format=torch.channels_last)
        self.compiled = None
        self.version = f"torch {torch.__version__}, torchvision {torchvision.__version__}"

    def sync(self, _):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def features(self, crops: np.ndarray) -> np.ndarray:
        torch = self.torch
        x = torch.from_numpy(np.repeat(crops[:, None], 3, axis=1)).to(self.device)
        with torch.inference_mode():
            return self.model(x.contiguous(memory_format=torch.channels_last)).float().cpu().numpy()

    def bench(self, batch: int, dtype: str, compiled: bool, warmup: int, repeats: int) -> dict:
        torch = self.torch
        if compiled and self.compiled is None:
            self.compiled = torch.compile(self.model, dynamic=False)
        model = self.compiled if compiled else self.model
        x = torch.randn(batch, 3, 224, 224, device=self.device)
        x = x.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast(self.device, dtype=torch.bfloat16, enabled=dtype == "bfloat16")

        def run():
            with torch.inference_mode(), autocast:
                return model(x)

        try:
            return timed(run, self.sync, warmup, repeats)
        finally:
            if self.device == "cuda":
                torch.cuda.empty_cache()


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def checks(ours: Ours, smoke: bool) -> dict:
    """bf16 vs f32 cosine for ours on CT-like crops (every image must reach 0.999)."""
    crops = ct_like_crops(2 if smoke else 16, seed=7)
    full, half = ours.features(crops, "float32"), ours.features(crops, "bfloat16")
    values = cosine(full, half)
    return {
        "bf16_vs_f32_cosine_min": float(values.min()),
        "bf16_vs_f32_pass": bool(np.all(values >= 0.999)),
    }


def same_as_torchvision(tv: Torchvision, smoke: bool) -> dict:
    """Ours with torchvision's (random) weights imported gives torchvision's features."""
    from toolkit.deep.weights import LoadedWeights, check_params, params_from_torch_state_dict

    crops = ct_like_crops(2 if smoke else 16, seed=7)
    state = {k: v.detach().cpu() for k, v in tv.model.state_dict().items()}
    params = check_params(params_from_torch_state_dict(state), "torchvision")
    same = Ours(LoadedWeights(params, "imagenet-torchvision", "n/a", 1e-5))
    mine, theirs = same.features(crops, "float32"), tv.features(crops)
    return {
        "ours_vs_torchvision_max_abs_diff": float(np.max(np.abs(mine - theirs))),
        "ours_vs_torchvision_cosine_min": float(cosine(mine, theirs).min()),
    }


def row(impl: str, batch: int, dtype: str, result: dict | None, flops: float, peak, error=None):
    entry = {"impl": impl, "batch": batch, "dtype": dtype, "error": error}
    if result is not None:
        ips = batch / result["median_s"]
        tflops = ips * flops / 1e12
        entry.update(result)
        entry["images_per_s"] = ips
        entry["tflops"] = tflops
        entry["pct_of_bf16_peak"] = 100 * tflops / peak if peak else None
    return entry


def print_table(rows: list[dict], peak) -> None:
    print(
        f"\n{'implementation':<28}{'dtype':<10}{'batch':>6}{'images/s':>11}{'TFLOP/s':>9}"
        f"{'% peak':>8}{'1st call s':>11}"
    )
    for r in rows:
        if r.get("error"):
            print(f"{r['impl']:<28}{r['dtype']:<10}{r['batch']:>6}  {r['error'][:60]}")
            continue
        pct = f"{r['pct_of_bf16_peak']:.1f}" if r.get("pct_of_bf16_peak") is not None else "-"
        print(
            f"{r['impl']:<28}{r['dtype']:<10}{r['batch']:>6}{r['images_per_s']:>11.1f}"
            f"{r['tflops']:>9.1f}{pct:>8}{r['first_call_s']:>11.1f}"
        )
    print(f"(bf16 dense peak used: {peak} TFLOP/s)" if peak else "(no bf16 peak known)")


def output_path() -> Path:
    out = os.environ.get("OUT")
    if not out:
        return Path("gpu_extract.json")
    path = Path(out)
    return path if path.suffix == ".json" else path / "gpu_extract.json"


def load_torchvision(args, device: str, notes: list[str]):
    if args.no_torch:
        notes.append("torch configurations skipped (--no-torch)")
        return None
    try:
        return Torchvision(device)
    except Exception as error:  # torchvision missing or broken: keep ours
        message = f"torchvision not usable ({type(error).__name__}: {error}); torch skipped"
        print(message)
        notes.append(message)
        return None


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    import jax

    from toolkit.deep._densenet import conv_macs
    from toolkit.deep.weights import random_weights

    device = jax.devices()[0]
    name = getattr(device, "device_kind", str(device))
    peak = peak_bf16(name) if device.platform == "gpu" else None
    flops = 2.0 * conv_macs()
    notes: list[str] = []
    report = {
        "device": name,
        "platform": device.platform,
        "n_devices": jax.local_device_count(),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "bf16_peak_tflops": peak,
        "gflop_per_image": flops / 1e9,
        "smoke": args.smoke,
        "notes": notes,
        "rows": [],
    }
    print(
        f"device: {name} ({device.platform}, {jax.local_device_count()} device(s)); "
        f"{flops / 1e9:.2f} GFLOP per image"
    )
    ours = Ours(random_weights(0))
    # JAX runs its first convolutions (and loads its cuDNN) before torch is imported.
    try:
        report["checks"] = checks(ours, args.smoke)
    except Exception as error:
        report["checks"] = {"error": f"{type(error).__name__}: {error}"}
        traceback.print_exc()
    torch_device = "cuda" if device.platform == "gpu" else "cpu"
    tv = load_torchvision(args, torch_device, notes)
    if tv is not None:
        report["torch"] = tv.version
        try:
            report["checks"].update(same_as_torchvision(tv, args.smoke))
        except Exception as error:
            report["checks"]["torchvision_error"] = f"{type(error).__name__}: {error}"
            traceback.print_exc()
    print("checks:", json.dumps(report["checks"]))

    # sigkit and torchvision eager everywhere first, then sigkit end to end; torch.compile
    # (slow to compile) last, so that the time budget, if it bites, trims only its rows.
    eager = []
    for batch in args.batch_sizes:
        for dtype in ("bfloat16", "float32"):
            eager.append(("sigkit-flax (jit)", batch, dtype))
            if tv is not None:
                eager.append(("torchvision eager (CL)", batch, dtype))
    compiled = [
        ("torchvision compile", batch, dtype)
        for batch in args.batch_sizes
        for dtype in ("bfloat16", "float32")
        if tv is not None
    ]
    context = (ours, tv, args, flops, peak, started)
    if args.versus_compile:
        pairs = [
            (impl, batch, dtype)
            for dtype in ("bfloat16", "float32")
            for batch in args.batch_sizes
            for impl in ("sigkit-flax (jit)", "torchvision compile")
            if tv is not None or impl.startswith("sigkit")
        ]
        notes.append("--versus-compile: torchvision eager and extract() not measured")
        run_configs(report, pairs, *context)
    else:
        run_configs(report, eager, *context)
        end_to_end(report, args, flops, peak, started)
        run_configs(report, compiled, *context)
    report["total_s"] = time.perf_counter() - started
    print_table(report["rows"], peak)
    path = output_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path} in {report['total_s']:.0f} s")
    return 0


def run_configs(report: dict, configs, ours, tv, args, flops: float, peak, started: float):
    """Measure each configuration in its own try/except; skip once the budget is spent."""
    for impl, batch, dtype in configs:
        if time.perf_counter() - started > args.budget:
            report["rows"].append(row(impl, batch, dtype, None, flops, peak, "skipped: budget"))
            continue
        try:
            if impl.startswith("sigkit"):
                result = ours.bench(batch, dtype, args.warmup, args.repeats)
            else:
                result = tv.bench(batch, dtype, "compile" in impl, args.warmup, args.repeats)
            report["rows"].append(row(impl, batch, dtype, result, flops, peak))
        except Exception as error:
            report["rows"].append(
                row(impl, batch, dtype, None, flops, peak, f"{type(error).__name__}: {error}")
            )
            traceback.print_exc()
        print(json.dumps({k: v for k, v in report["rows"][-1].items() if k != "times_s"}))


def end_to_end(report: dict, args, flops: float, peak, started: float) -> None:
    """`extract()` from host NumPy: transfers, padding and prefetch included."""
    batch = args.batch_sizes[0]
    n = batch * (1 if args.smoke else 4)
    impl = "sigkit extract() host->dev"
    if time.perf_counter() - started > args.budget:
        report["rows"].append(row(impl, batch, "bfloat16", None, flops, peak, "skipped: budget"))
        return
    try:
        from toolkit.deep.extract import extract
        from toolkit.deep.weights import random_weights

        crops = np.random.default_rng(0).normal(size=(n, 224, 224)).astype(np.float32)
        weights = random_weights(0)
        result = timed(
            lambda: extract(crops, params=weights, dtype="bfloat16", batch_size=batch),
            lambda y: y,
            min(args.warmup, 1),
            max(1, min(args.repeats, 3)),
        )
        entry = row(impl, n, "bfloat16", result, flops, peak)
        entry["batch_size"] = batch
        report["rows"].append(entry)
    except Exception as error:
        report["rows"].append(
            row(impl, n, "bfloat16", None, flops, peak, f"{type(error).__name__}: {error}")
        )


if __name__ == "__main__":
    sys.exit(main())
