"""signature_radiomics: radiomics features + clinical -> the radiomics signature and scores.

The same steps, from the same function, as the deep signature
(``stages.signature.signature_of`` with ``study.signature.RADIOMICS``): ICC filter
across the readers, mRMR, elastic-net Cox with CV, on the PyRadiomics features of
``results/tables/radiomics_features.parquet``. Features NaN for some patient are left out
first, counted in ``signature_radiomics.json``'s ``n_incomplete``. Writes
``results/signature_radiomics.json`` and the tables ``signature_features_radiomics``,
``signature_cv_radiomics``, ``mrmr_ranking_radiomics``, ``icc_radiomics`` and
``scores_radiomics`` (column ``signature_radiomics``). With radiomics disabled, both
results are None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toolkit.artifacts import file_hash
from toolkit.study._stages import Cached
from toolkit.study.context import Context


def run(ctx: Context, given: Mapping[str, Any]) -> Cached | Mapping[str, Any]:
    """Hands on ``signature_radiomics`` (a ``SignatureSpec``) and ``scores_radiomics``."""
    from toolkit.study.signature import RADIOMICS
    from toolkit.study.stages.signature import signature_of

    if given["radiomics"] is None:
        return {"signature_radiomics": None, "scores_radiomics": None}
    features_hash = file_hash(ctx.paths.tables / "radiomics_features.parquet")
    return signature_of(ctx, given["radiomics"], given["clinical"], features_hash, RADIOMICS)
