"""extract: crops -> DenseNet-121 features, ``STUDY_DIR/features/features.parquet``.

``deep.extract.extract_crops_dir`` writes one row per patient and reader (see
docs/contracts.md). The stage is keyed on the crops' manifest and the weights,
and hands on the features table: as extracted, or read back when skipped.
Either way the run's weights label (``Context.weights_origin``) is the one the
features' provenance records. With ``[imaging] slices`` other than 1 the features
of every chosen slice are pooled by ``[imaging] pooling``; the slice choice then
joins the stage's settings (a one-slice study keeps the key it had before).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from toolkit.artifacts import file_hash, read_parquet_provenance
from toolkit.study._stages import Cached
from toolkit.study.context import Context


def _weights(ctx: Context):
    from toolkit.deep.weights import load

    loaded = load(ctx.weights_source)
    ctx.weights_origin = loaded.origin
    ctx.weights_sha256 = getattr(loaded, "sha256", "")
    return loaded


def features_table(ctx: Context, table: pd.DataFrame) -> pd.DataFrame:
    """The features as the later stages take them (``patient``, ``reader`` as text);
    the run's weights label from the features file's provenance."""
    prov = read_parquet_provenance(ctx.paths.features)
    ctx.weights_origin = str(prov.get("weights", ctx.weights_origin))
    ctx.weights_sha256 = str(prov.get("sha256", prov.get("weights_sha256", ctx.weights_sha256)))
    table["patient"] = table["patient"].astype(str)
    table["reader"] = table["reader"].astype(str)
    return table


def run(ctx: Context, given: Mapping[str, Any]) -> Cached:
    """Extract the features of every crop in ``crops``; hands on ``features``."""
    from toolkit.deep.extract import extract_crops_dir

    loaded = _weights(ctx)
    if loaded.origin == "random":
        ctx.echo("    DenseNet-121 with RANDOM weights: every output is labelled so")
    crops = given["crops"]
    imaging = ctx.config.imaging
    pooling = None if imaging.slices == 1 else imaging.pooling

    def compute(key: str) -> dict[str, pd.DataFrame]:
        table = extract_crops_dir(
            crops, ctx.paths.features, params=loaded, batch_size=ctx.batch_size, pooling=pooling
        )
        return {"features": features_table(ctx, table)}

    def load() -> dict[str, pd.DataFrame]:
        return {"features": features_table(ctx, pd.read_parquet(ctx.paths.features))}

    return Cached(
        inputs={
            "crops": file_hash(crops / "manifest.json"),
            "weights": ctx.weights_sha256 or loaded.origin,
        },
        settings={"batch_size": ctx.batch_size, "dtype": "float32"}
        | ({} if pooling is None else imaging.slice_choice),
        files=(ctx.paths.features,),
        compute=compute,
        load=load,
    )
