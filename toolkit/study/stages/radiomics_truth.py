"""radiomics_truth: a synthetic cohort's simulated tumour vs the radiomics signature.

``synth.truth.radiomics_recovery`` (see there): Spearman's rho of the radiomics
signature, of each of its features and of the best single feature with the simulated
tumour volume, size, necrosis, heterogeneity, enhancement and washout, on the primary
reader. Writes ``results/tables/radiomics_truth.parquet``; a cohort that is not synthetic
(no ``ground_truth/truth.csv``), or a study without radiomics, gives None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from toolkit.artifacts import file_hash, write_parquet
from toolkit.study._stages import Cached
from toolkit.study.context import Context


def run(ctx: Context, given: Mapping[str, Any]) -> Cached | Mapping[str, Any]:
    """Hands on ``radiomics_truth``: the correlation table, or None."""
    truth = ctx.paths.cohort / "ground_truth" / "truth.csv"
    features, spec = given["radiomics"], given["signature_radiomics"]
    if not ctx.synthetic or features is None or spec is None or not truth.is_file():
        return {"radiomics_truth": None}
    path = ctx.paths.tables / "radiomics_truth.parquet"
    scores_path = ctx.paths.tables / "scores_radiomics.parquet"
    inputs = {"truth": file_hash(truth), "scores": file_hash(scores_path)}

    def compute(key: str) -> dict[str, pd.DataFrame]:
        from toolkit.study.signature import RADIOMICS, feature_names
        from toolkit.synth.truth import radiomics_recovery

        primary = features[features["reader"] == ctx.config.imaging.primary_reader]
        primary = primary.set_index("patient")
        names = feature_names(primary, ctx.config.imaging.phases, RADIOMICS)
        scores = given["scores_radiomics"]["signature_radiomics"]
        table = radiomics_recovery(
            ctx.paths.cohort, primary[names], scores, [f.format() for f in spec.features]
        )
        write_parquet(path, table, ctx.prov(key, inputs))
        return {"radiomics_truth": table}

    return Cached(
        inputs=inputs,
        settings={},
        files=(path,),
        compute=compute,
        load=lambda: {"radiomics_truth": pd.read_parquet(path)},
    )
