"""Batched DenseNet-121 feature extraction: jit-compiled, prefetched, sharded over devices.

`extract` turns (N, 224, 224) single-channel crops into (N, 1024) float32
features: each crop is replicated to three channels, normalised, run through
`DenseNet121` and global-average pooled. One program is compiled per batch size
(the last batch is zero-padded to it), the next batch is copied to the devices
while the current one runs, and each batch is split over all local JAX devices
with `jax.sharding` (on a CPU, start Python with
`XLA_FLAGS=--xla_force_host_platform_device_count=<cores>` to get one device per
core; `sigkit extract` does that itself).

`extract_crops_dir` reads `sigkit preprocess`'s `crops/<patient>.npz` files and
builds the features table of docs/contracts.md: from each patient's and reader's
largest-ROI crop, or, for a study with ``[imaging] slices`` other than 1, from the
crops of every chosen slice (the ``slices_*`` keys), pooled over the slices by
`pool_slices`.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toolkit._jax import jax
from toolkit._progress import progress_bar
from toolkit.config import CROP_SIZE, PHASES
from toolkit.contracts import feature_names
from toolkit.deep._densenet import N_FEATURES, DenseNet121
from toolkit.deep.weights import LoadedWeights, load
from toolkit.stats._checks import listed

NORMALIZATIONS = ("zscore", "imagenet")
DTYPES = ("float32", "bfloat16")
# ImageNet statistics used by torchvision and by Keras's DenseNet preprocessing ("torch" mode).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_WINDOW = (-3.0, 3.0)
# On a CPU, larger batches cost more per image because their activations overflow the
# caches (measured on 2 EPYC cores: 0.035 CPU-s per image at 1-4 crops, 0.042 at 8, 0.048
# at 16, 0.07 at 32), so the compiled batch is capped at this many crops per device.
CPU_CROPS_PER_DEVICE = 4
POOLINGS = ("mean", "max")


class CropError(ValueError):
    """A crop that cannot go through the network (wrong shape, non-finite values)."""


def _labels(n: int, patients: Sequence[str] | None) -> list[str]:
    return [str(p) for p in patients] if patients is not None else [f"crop {i}" for i in range(n)]


def check_crops(crops: np.ndarray, patients: Sequence[str] | None = None) -> np.ndarray:
    """Validate (N, 224, 224) finite crops; return them as float32. Errors name the patients."""
    crops = np.asarray(crops)
    if crops.ndim == 2:
        crops = crops[None]
    labels = _labels(len(crops), patients)
    if patients is not None and len(labels) != len(crops):
        raise CropError(f"{len(crops)} crops but {len(labels)} patient labels")
    if crops.ndim != 3 or crops.shape[1:] != (CROP_SIZE, CROP_SIZE):
        raise CropError(
            f"crops have shape {crops.shape}; expected (N, {CROP_SIZE}, {CROP_SIZE})"
            + (f" ({labels[0]}…)" if labels else "")
        )
    if crops.dtype.kind not in "fiu":
        raise CropError(f"crops have dtype {crops.dtype}; expected numbers")
    bad = np.flatnonzero(~np.isfinite(crops).all(axis=(1, 2)))
    if bad.size:
        named = listed([labels[i] for i in bad])
        raise CropError(f"{bad.size} crop(s) contain NaN or infinite values: {named}")
    return crops.astype(np.float32, copy=False)


def _normalise(images, normalization: str, window: tuple[float, float]):
    """(B, H, W) float32 crops -> (B, H, W, 3) network input."""
    import jax.numpy as jnp

    x = images[..., None]
    if normalization == "imagenet":
        low, high = window
        x = (jnp.clip(x, low, high) - low) / (high - low)
        mean = jnp.asarray(IMAGENET_MEAN, jnp.float32)
        std = jnp.asarray(IMAGENET_STD, jnp.float32)
        return (x - mean) / std
    return jnp.broadcast_to(x, (*x.shape[:-1], 3))


@functools.lru_cache(maxsize=16)
def network(
    dtype: str = "float32",
    normalization: str = "zscore",
    window: tuple[float, float] = DEFAULT_WINDOW,
    feature_map: bool = False,
):
    """The jitted network: f(flax_params, crops (B, 224, 224) float32) -> pooled (B, 1024) float32.

    With feature_map=True it returns the (B, 7, 7, 1024) final feature map in float32.
    Cached, so every caller shares one compiled program per batch shape.
    """
    import jax.numpy as jnp

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, not {dtype!r}")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, not {normalization!r}")
    model = DenseNet121(dtype=jnp.bfloat16 if dtype == "bfloat16" else jnp.float32)

    def run(params, crops):
        maps, pooled = model.apply({"params": params}, _normalise(crops, normalization, window))
        return maps.astype(jnp.float32) if feature_map else pooled

    return jax.jit(run)


@dataclass
class _Placement:
    """Where batches and parameters go: a 1-D mesh over all local devices."""

    devices: list = field(default_factory=jax.local_devices)

    def __post_init__(self) -> None:
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        self.mesh = Mesh(np.array(self.devices), ("batch",))
        self.batch = NamedSharding(self.mesh, PartitionSpec("batch"))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())

    def batch_size(self, requested: int, n: int) -> int:
        """The requested size (at most `n`; on a CPU at most CPU_CROPS_PER_DEVICE per device),
        rounded up to a multiple of the device count."""
        k = len(self.devices)
        if self.devices[0].platform == "cpu":
            requested = min(requested, CPU_CROPS_PER_DEVICE * k)
        size = max(1, min(requested, n))
        return -(-size // k) * k


def resolve_weights(params: LoadedWeights | str | os.PathLike[str] | None) -> LoadedWeights:
    """LoadedWeights as given; None -> the installed weights; "random" or a path -> `load`."""
    if isinstance(params, LoadedWeights):
        return params
    return load(params)


def _batches(crops: np.ndarray, size: int):
    for start in range(0, len(crops), size):
        batch = crops[start : start + size]
        if len(batch) < size:
            pad = np.zeros((size - len(batch), *batch.shape[1:]), np.float32)
            batch = np.concatenate([batch, pad])
        yield start, batch


def run_batched(
    crops: np.ndarray,
    weights: LoadedWeights,
    fn,
    *,
    batch_size: int,
    progress: bool = False,
    description: str = "DenseNet-121",
) -> np.ndarray:
    """Run a jitted `fn(params, batch)` over validated crops, prefetching and sharding batches."""
    placement = _Placement()
    size = placement.batch_size(batch_size, len(crops))
    params = jax.device_put(weights.flax_params(), placement.replicated)
    outputs: list[np.ndarray] = []
    pending = None
    batches = _batches(crops, size)
    upcoming = next(batches, None)
    upcoming_device = None if upcoming is None else jax.device_put(upcoming[1], placement.batch)
    n_batches = -(-len(crops) // size)
    with progress_bar(
        n_batches, enabled=progress, description=description, unit="batches"
    ) as advance:
        while upcoming is not None:
            start, current = upcoming[0], upcoming_device
            upcoming = next(batches, None)
            # Dispatch is asynchronous: the next batch's copy overlaps this batch's run.
            upcoming_device = (
                None if upcoming is None else jax.device_put(upcoming[1], placement.batch)
            )
            result = fn(params, current)
            if pending is not None:
                outputs.append(np.asarray(pending[1])[: len(crops) - pending[0]])
                advance()
            pending = (start, result)
        if pending is not None:
            outputs.append(np.asarray(pending[1])[: len(crops) - pending[0]])
            advance()
    if not outputs:
        return np.zeros((0, N_FEATURES), np.float32)
    return np.concatenate(outputs).astype(np.float32, copy=False)


def extract(
    crops: np.ndarray,
    *,
    params: LoadedWeights | str | os.PathLike[str] | None = None,
    dtype: str = "float32",
    normalization: str = "zscore",
    batch_size: int = 32,
    progress: bool = False,
    window: tuple[float, float] = DEFAULT_WINDOW,
    patients: Sequence[str] | None = None,
) -> np.ndarray:
    """DenseNet-121 global-average-pooled features of single-channel crops.

    features[i] = mean over the 7x7 grid of the final BN+ReLU feature map of
    DenseNet-121 applied to crop i replicated to three channels.

    crops: (N, 224, 224) (float32; already z-scored for normalization="zscore",
    the paper's choice, fed to the network as is); params: LoadedWeights, None
    for the installed weights, "random" or a weights path; dtype: compute dtype
    "float32" or "bfloat16" (parameters and pooling stay float32);
    normalization "imagenet": clip to `window` (in the crop's units), scale to
    [0, 1], subtract ImageNet's channel means and divide by its stds;
    batch_size: crops per compiled call (rounded up to a multiple of the device
    count; on a CPU capped at CPU_CROPS_PER_DEVICE per device, which is faster);
    patients: names used in error messages.
    Returns (N, 1024) float32.
    """
    crops = check_crops(crops, patients)
    weights = resolve_weights(params)
    fn = network(dtype, normalization, tuple(float(w) for w in window))
    return run_batched(crops, weights, fn, batch_size=batch_size, progress=progress)


def feature_maps(
    crops: np.ndarray,
    *,
    params: LoadedWeights | str | os.PathLike[str] | None = None,
    dtype: str = "float32",
    normalization: str = "zscore",
    batch_size: int = 8,
    window: tuple[float, float] = DEFAULT_WINDOW,
    patients: Sequence[str] | None = None,
) -> np.ndarray:
    """The (N, 7, 7, 1024) float32 final feature maps (after the last BN+ReLU) of crops."""
    crops = check_crops(crops, patients)
    weights = resolve_weights(params)
    fn = network(dtype, normalization, tuple(float(w) for w in window), feature_map=True)
    return run_batched(crops, weights, fn, batch_size=batch_size)


@dataclass(frozen=True)
class CropsDirectory:
    """Crops read from `sigkit preprocess`'s folder, in (patient, reader) row order.

    One-slice reading: one crop per row, ``row_of`` None. Every-slice reading
    (``read_crops_dir(..., slices=True)``): each row's slice crops in turn, and
    ``row_of[i]`` is the row that crop i belongs to.
    """

    patients: list[str]
    readers: list[str]
    crops: dict[str, np.ndarray]  # phase -> (crops, 224, 224)
    hashes: dict[str, str]
    excluded: list[dict[str, str]]
    synthetic: bool | None
    row_of: np.ndarray | None = None


_SLICE_KEYS = (*(f"slices_{phase}" for phase in PHASES), "slices_reader")


def _read_npz(path: Path, slices: bool = False):
    """readers, phase -> crops, synthetic flag, and the reader of each crop (None: one each)."""
    with np.load(path, allow_pickle=False) as data:
        wanted = ("readers", *(_SLICE_KEYS if slices else PHASES))
        missing = [key for key in wanted if key not in data.files]
        if missing:
            why = " (preprocessed with [imaging] slices = 1?)" if slices else ""
            raise CropError(f"{path.name}: missing {', '.join(missing)}{why}")
        readers = [str(r) for r in data["readers"]]
        prefix = "slices_" if slices else ""
        phases = {phase: np.asarray(data[prefix + phase]) for phase in PHASES}
        reader_of = np.asarray(data["slices_reader"]) if slices else np.arange(len(readers))
        meta = json.loads(str(data["metadata"])) if "metadata" in data.files else {}
    n = len(reader_of)
    for phase, array in phases.items():
        if array.shape != (n, CROP_SIZE, CROP_SIZE):
            raise CropError(
                f"{path.stem}: {prefix}{phase} crops have shape {array.shape}, expected "
                f"({n}, {CROP_SIZE}, {CROP_SIZE}) for readers {readers}"
            )
        names = [f"{path.stem} ({phase}, {readers[r]})" for r in reader_of]
        phases[phase] = check_crops(array, names)
    without = sorted(set(range(len(readers))) - set(reader_of.tolist()))
    if without or reader_of.min(initial=0) < 0 or reader_of.max(initial=0) >= len(readers):
        raise CropError(f"{path.stem}: slices_reader does not give every reader a slice")
    synthetic = meta.get("synthetic") if isinstance(meta, dict) else None
    return readers, phases, synthetic, (reader_of if slices else None)


def read_crops_dir(crops_dir: str | os.PathLike[str], *, slices: bool = False) -> CropsDirectory:
    """Read every crops/<patient>.npz; a bad file is excluded with its reason (never silently).

    ``slices``: read the crops of every chosen slice (``slices_*``) instead of the
    largest-ROI slice's; a file without them is excluded, saying so.
    """
    from toolkit.artifacts import file_hash

    crops_dir = Path(crops_dir)
    files = sorted(crops_dir.glob("*.npz"))
    if not files:
        raise FileNotFoundError(f"no <patient>.npz crops in {crops_dir}")
    patients: list[str] = []
    readers: list[str] = []
    stacks: dict[str, list[np.ndarray]] = {phase: [] for phase in PHASES}
    rows: list[np.ndarray] = []
    hashes: dict[str, str] = {}
    excluded: list[dict[str, str]] = []
    flags: set[bool | None] = set()
    for path in files:
        try:
            names, phases, synthetic, reader_of = _read_npz(path, slices)
        except (CropError, ValueError, OSError, KeyError) as error:
            excluded.append({"patient": path.stem, "reason": str(error)})
            continue
        if reader_of is not None:
            rows.append(len(patients) + reader_of)
        patients += [path.stem] * len(names)
        readers += names
        for phase in PHASES:
            stacks[phase].append(phases[phase])
        hashes[path.stem] = file_hash(path)
        flags.add(synthetic)
    if not patients:
        reasons = listed([f"{e['patient']}: {e['reason']}" for e in excluded], sep="; ", limit=5)
        raise CropError(f"no usable crops in {crops_dir}: {reasons}")
    return CropsDirectory(
        patients=patients,
        readers=readers,
        crops={phase: np.concatenate(stacks[phase]) for phase in PHASES},
        hashes=hashes,
        excluded=excluded,
        synthetic=flags.pop() if len(flags) == 1 else None,
        row_of=np.concatenate(rows) if slices else None,
    )


def pool_slices(features: np.ndarray, row_of: np.ndarray, n_rows: int, pooling: str) -> np.ndarray:
    """Per row r, the mean or the maximum, feature by feature, of the crops i with row_of[i] = r.

    The mean is summed in float64 and rounded once to float32; the maximum is exact.
    Every row must have at least one crop. Returns (n_rows, features) float32.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}")
    row_of = np.asarray(row_of)
    counts = np.bincount(row_of, minlength=n_rows)
    if len(counts) != n_rows or not counts.all():
        raise ValueError(f"every one of the {n_rows} rows needs a crop; row counts {counts}")
    order = np.argsort(row_of, kind="stable")
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    values = np.asarray(features)[order]
    if pooling == "max":
        return np.maximum.reduceat(values, starts, axis=0).astype(np.float32)
    sums = np.add.reduceat(values.astype(np.float64), starts, axis=0)
    return (sums / counts[:, None]).astype(np.float32)


def feature_columns(phase: str) -> list[str]:
    return feature_names(phase, N_FEATURES)


def extract_crops_dir(
    crops_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    params: LoadedWeights | str | os.PathLike[str] | None = None,
    dtype: str = "float32",
    normalization: str = "zscore",
    batch_size: int = 32,
    progress: bool = False,
    pooling: str | None = None,
):
    """Write features.parquet (docs/contracts.md) for a crops folder; return the table.

    One row per patient and reader: `patient`, `reader`, `arterial_0000…1023`,
    `portal_0000…1023` (float32). ``pooling`` None: the features of the largest-ROI
    slice's crop (a one-slice study); ``"mean"`` or ``"max"``: the features of every
    chosen slice's crop (``slices_*``), pooled per row by `pool_slices`. Provenance:
    the weights' origin and SHA-256, each crop file's hash, the settings (with the
    pooling, and the number of slices pooled per row, when pooled), the patients
    excluded and why.
    """
    import pandas as pd

    from toolkit.artifacts import provenance, write_parquet

    if pooling is not None and pooling not in POOLINGS:
        raise ValueError(f"pooling must be None or one of {', '.join(POOLINGS)}; got {pooling!r}")
    weights = resolve_weights(params)
    data = read_crops_dir(crops_dir, slices=pooling is not None)
    both = np.concatenate([data.crops[phase] for phase in PHASES])
    rows = data.row_of if data.row_of is not None else np.arange(len(data.patients))
    labels = [f"{data.patients[r]} ({phase}, {data.readers[r]})" for phase in PHASES for r in rows]
    features = extract(
        both,
        params=weights,
        dtype=dtype,
        normalization=normalization,
        batch_size=batch_size,
        progress=progress,
        patients=labels,
    )
    n, m = len(data.patients), len(rows)
    blocks = [pd.DataFrame({"patient": data.patients, "reader": data.readers})]
    for index, phase in enumerate(PHASES):
        values = features[index * m : (index + 1) * m]
        if pooling is not None:
            values = pool_slices(values, rows, n, pooling)
        blocks.append(pd.DataFrame(values, columns=feature_columns(phase)))
    table = pd.concat(blocks, axis=1)
    settings: dict[str, Any] = {
        "dtype": dtype,
        "normalization": normalization,
        "batch_size": batch_size,
    }
    if pooling is not None:
        settings["pooling"] = pooling
    block = provenance(
        inputs=data.hashes, settings=settings, weights=weights.origin, synthetic=data.synthetic
    )
    block.update({k: v for k, v in weights.describe().items() if k != "weights"})
    block["excluded"] = data.excluded
    block["devices"] = [str(d) for d in jax.local_devices()]
    if pooling is not None:
        counts = np.bincount(rows, minlength=n)
        block["slices_pooled"] = [
            {"patient": p, "reader": r, "slices": int(c)}
            for p, r, c in zip(data.patients, data.readers, counts, strict=True)
        ]
    write_parquet(out, table, block)
    return table
