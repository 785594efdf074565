"""clinical: the clinical table of the patients with features, and who was excluded why.

Not cached: reading and preparing the clinical table (``config.prepare_clinical``:
outcome columns, levels, missing values) takes well under a second, so it runs
every time and never appears in the stage log. With ``validation.missing =
"multiple-imputation"`` and values missing, it also imputes them ``m`` times
(``study.imputed.impute_cohort``, fitted on the training rows) and hands the
completed sets on in ``clinical``. Exclusions are the patients of the clinical
table without features (with the preprocessing failure, where ``crops/failures.csv``
has one) followed by those ``prepare_clinical`` left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from toolkit.config import prepare_clinical, read_clinical
from toolkit.imaging.manifest import study_manifest
from toolkit.study.context import Context


def _preprocess_failures(ctx: Context) -> dict[str, str]:
    path = ctx.paths.crops / "failures.csv"
    if not path.is_file():
        return {}
    frame = pd.read_csv(path, dtype=str)
    if frame.empty:
        return {}
    return {str(r.patient): f"{r.stage}: {r.reason}" for r in frame.itertuples(index=False)}


def run(ctx: Context, given: Mapping[str, Any]) -> dict[str, Any]:
    """Hands on ``clinical`` (``config.ClinicalData``) and ``exclusions`` (patient,
    stage, reason), both restricted to / counted against the patients in ``features``."""
    features = given["features"]
    manifest = study_manifest(ctx.config, ctx.paths.cohort)
    table = read_clinical(ctx.config, ctx.paths.cohort, manifest)
    with_features = set(features["patient"])
    lost = [p for p in table.index if p not in with_features]
    reasons = _preprocess_failures(ctx)
    rows = [
        {"patient": p, "stage": "imaging", "reason": reasons.get(p, "no features extracted")}
        for p in lost
    ]
    data = prepare_clinical(ctx.config, table.loc[[p for p in table.index if p in with_features]])
    exclusions = pd.concat(
        [pd.DataFrame(rows, columns=["patient", "stage", "reason"]), data.exclusions],
        ignore_index=True,
    )
    if len(exclusions):
        listed = ", ".join(f"{r.patient} ({r.reason})" for r in exclusions.head(10).itertuples())
        ctx.echo(f"  excluded {len(exclusions)} patient(s): {listed}")
    if len(data.imputations):
        ctx.echo(
            f"  imputed {len(data.imputations)} missing clinical value(s) "
            f"(validation.missing = {ctx.config.validation.missing!r}); see tables/imputations"
        )
    if ctx.config.validation.missing == "multiple-imputation" and data.raw.isna().any().any():
        data = _impute(ctx, data)
    return {"clinical": data, "exclusions": exclusions}


def _impute(ctx: Context, data):
    """``data`` with its ``m`` completed frames and the count of missing values."""
    from dataclasses import replace

    from toolkit.study.imputed import impute_cohort

    settings = ctx.config.validation
    cohort = impute_cohort(ctx.config, data.frame, m=settings.m, seed=settings.imputation_seed)
    n = int(cohort.missing["n_missing"].sum())
    ctx.echo(
        f"  {n} missing clinical value(s) imputed {settings.m} times (chained equations, "
        "fitted on the training set); see tables/missing_values"
    )
    return replace(data, completed=cohort.completed, missing=cohort.missing)
