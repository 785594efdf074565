"""`sigkit extract` and `sigkit weights import|fetch|info`: thin wrappers over toolkit.deep.

JAX is imported inside the commands (after `extract` has set up one host device
per CPU core), so `sigkit --help` stays instant.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli._exit import fail

weights_app = typer.Typer(
    help="DenseNet-121 ImageNet weights: import a file, fetch Keras's, show what is installed.",
    no_args_is_help=True,
)


@weights_app.command("import")
def import_weights(
    file: Annotated[Path, typer.Argument(help="Keras .h5 / .weights.h5 or torchvision .pth file.")],
) -> None:
    """Convert a DenseNet-121 weights file and install it in the cache."""
    from toolkit.deep import weights as W

    try:
        loaded = W.import_file(file)
        path = W.install(loaded)
    except W.WeightsError as error:
        raise fail(str(error)) from error
    status = "verified" if loaded.verified else "NOT verified against a published hash"
    typer.echo(f"installed {loaded.origin} weights from {file.name} ({status}) -> {path}")
    typer.echo(f"sha256 {loaded.sha256}")


@weights_app.command("fetch")
def fetch_weights(
    timeout: Annotated[float, typer.Option(help="Download timeout in seconds.")] = 60.0,
) -> None:
    """Download Keras's official DenseNet-121 no-top file, check its MD5 and install it."""
    from toolkit.deep import weights as W

    try:
        loaded, path = W.fetch(timeout=timeout)
    except (W.WeightsError, OSError) as error:
        raise fail(f"{error} (no network? use `sigkit weights import FILE`)") from error
    typer.echo(f"installed {loaded.origin} weights -> {path} (sha256 {loaded.sha256})")


@weights_app.command("info")
def weights_info() -> None:
    """Show the installed weights (origin, source, hash) as JSON."""
    from toolkit.deep import weights as W

    try:
        typer.echo(json.dumps(W.info(), indent=2))
    except W.WeightsError as error:
        raise fail(str(error)) from error


def _one_host_device_per_core() -> None:
    """Before JAX starts: split the CPU into one XLA device per core, so batches shard over
    all cores (XLA's CPU convolutions alone keep about one core busy)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if cores and cores > 1:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={cores}".strip()


def extract(
    crops_dir: Annotated[
        Path, typer.Argument(help="Folder of crops/<patient>.npz from preprocess.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Features table to write.")] = Path(
        "features.parquet"
    ),
    weights: Annotated[
        str | None,
        typer.Option(help="'random', a weights file, or (default) the installed weights."),
    ] = None,
    dtype: Annotated[str, typer.Option(help="Compute dtype: float32 or bfloat16.")] = "float32",
    normalization: Annotated[
        str, typer.Option(help="zscore (the paper's) or imagenet.")
    ] = "zscore",
    batch_size: Annotated[int, typer.Option(min=1, help="Crops per compiled batch.")] = 32,
    seed: Annotated[int, typer.Option(help="Seed of --weights random.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    pooling: Annotated[
        str | None,
        typer.Option(
            help="mean or max: pool the features of every slice the crops hold (crops made "
            "with [imaging] slices other than 1); default: the largest-ROI slice only."
        ),
    ] = None,
) -> None:
    """DenseNet-121 features of every patient and reader -> features.parquet."""
    import sys

    if "jax" not in sys.modules:
        _one_host_device_per_core()
    from toolkit.deep import weights as W
    from toolkit.deep.extract import CropError, extract_crops_dir

    try:
        loaded = W.load(weights, seed=seed)
        table = extract_crops_dir(
            crops_dir,
            out,
            params=loaded,
            dtype=dtype,
            normalization=normalization,
            batch_size=batch_size,
            progress=progress,
            pooling=pooling,
        )
    except (ValueError, W.WeightsNotInstalledError, CropError, FileNotFoundError) as error:
        raise fail(str(error)) from error
    from toolkit.artifacts import read_parquet_provenance

    excluded = read_parquet_provenance(out).get("excluded", [])
    for item in excluded:
        typer.secho(f"excluded {item['patient']}: {item['reason']}", err=True, fg="yellow")
    label = " (RANDOM WEIGHTS: features are not ImageNet features)" if loaded.is_random else ""
    typer.echo(
        f"wrote {out}: {table['patient'].nunique()} patients, {len(table)} rows, "
        f"weights {loaded.origin}{label}; {len(excluded)} excluded"
    )
