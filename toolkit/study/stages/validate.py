"""validate: the models on the training and validation sets -> ``results/metrics.json``.

``study.validate`` computes each block (C-index and comparisons, calibration,
time-dependent AUC, decision curves, risk groups, median survival, see there)
and ``study.figures.all_figures`` draws them. Writes metrics.json, the tables
``calibration``, ``td_auc``, ``accuracy``, ``decision``, ``decision_summary``, ``cindex``,
``models_compared`` (every model's terms, training AIC and C-index with CI per set, the
nomogram of the lowest training AIC marked), ``cindex_comparisons`` (the comparison
tests), ``exclusions``,
``imputations`` and ``baseline`` (Table 1), and the validation figures.

Under multiple imputation the validation rows were imputed by the training imputation
models; each model's predictions are its pooled coefficients applied to each completed
set and the linear predictor averaged over the imputations (``imputed.AveragedModel``),
and every metric is computed once on those. What refits a model on bootstrap resamples
(the calibration optimism and ``fixed_model_validation``) uses the first completed
training set. The table ``missing_values`` counts each variable's missing values per
set and says what was done.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from toolkit.artifacts import file_hash, write_parquet
from toolkit.contracts import Metrics
from toolkit.study._stages import Cached
from toolkit.study.context import Context
from toolkit.study.stages.models import model_frames


def _cindex_table(cindex: dict[str, Any]) -> pd.DataFrame:
    rows = [
        {"set": s, "model": m, **entry}
        for s, models in cindex.items()
        for m, entry in models.items()
    ]
    return pd.DataFrame(rows)


def _exclusions(exclusions: pd.DataFrame) -> pd.DataFrame:
    if exclusions.empty:
        return pd.DataFrame({"patient": [], "stage": [], "reason": []}, dtype=str)
    return exclusions.astype(str)


def _baseline(ctx: Context, clinical, prov) -> None:
    """Table 1 (training vs validation: Mann-Whitney / Fisher) via stats.tables."""
    from toolkit.stats import tables

    raw = clinical.raw.copy()
    raw["set"] = clinical.frame["set"].map(
        lambda s: "train" if s in ctx.config.study.train_sets else "validation"
    )
    numeric = [v.name for v in ctx.config.variables if v.kind == "numeric"]
    categorical = [v.name for v in ctx.config.variables if v.kind == "categorical"]
    for name in numeric:
        raw[name] = pd.to_numeric(raw[name], errors="coerce")
    for name in categorical:
        raw[name] = pd.Categorical(
            raw[name].map(lambda v: v if pd.isna(v) else str(v)),
            categories=ctx.config.variable(name).levels,
        )
    table = tables.baseline(raw, "set", numeric, categorical)
    write_parquet(ctx.paths.tables / "baseline.parquet", table, prov)


def evaluated(ctx: Context, clinical, scores: pd.DataFrame, models, scores_radiomics=None):
    """The rows of each set (with the radiomics score when ``scores_radiomics`` is given)
    and the models as the metrics see them.

    Under multiple imputation: the first completed set's rows (for what needs a design)
    and the pooled models predicting at the linear predictor averaged over imputations.
    """
    from toolkit.study import imputed
    from toolkit.study import validate as val

    frames = model_frames(clinical, scores, scores_radiomics)
    sets = val.set_rows(frames[0], ctx.config)
    return sets, (imputed.averaged(models, frames) if clinical.imputed else models)


def _metrics(ctx: Context, given: Mapping[str, Any], prov: dict[str, Any]) -> Metrics:
    """Every block of metrics.json; writes the tables and figures on the way."""
    from toolkit.study import figures
    from toolkit.study import validate as val

    clinical = given["clinical"]
    sets, models = evaluated(
        ctx, clinical, given["scores"], given["models"], given["scores_radiomics"]
    )
    cindex, comparisons = val.cindex(sets, models, ctx.config)
    calibration, calibration_table = val.calibration(sets, models, ctx.config)
    td_auc, auc_table = val.td_auc(sets, models, ctx.config)
    accuracy, accuracy_table = val.accuracy(sets, models, ctx.config)
    decision = val.decision(sets, models, ctx.config)
    groups, high = val.risk_groups(sets, models)
    metrics = Metrics(
        provenance=prov,
        cohort=val.cohort_counts(sets),
        icc=given["signature"].icc,
        cindex=cindex,
        comparisons=comparisons,
        calibration=calibration,
        risk_groups=groups,
        td_auc=td_auc,
        median_survival=val.median_survival(sets, ctx.config),
        selection_notes=tuple(given["selection_notes"]),
        accuracy=accuracy,
        fixed_model_validation=val.fixed_model_validation(sets, models, ctx.config),
    )
    write_parquet(ctx.paths.tables / "calibration.parquet", calibration_table, prov)
    write_parquet(ctx.paths.tables / "td_auc.parquet", auc_table, prov)
    write_parquet(ctx.paths.tables / "accuracy.parquet", accuracy_table, prov)
    decision_all = pd.concat([d.assign(set=s) for s, d in decision.items()], ignore_index=True)
    write_parquet(ctx.paths.tables / "decision.parquet", decision_all, prov)
    summary = val.decision_summary(sets, models, ctx.config)
    write_parquet(ctx.paths.tables / "decision_summary.parquet", summary, prov)
    write_parquet(ctx.paths.tables / "cindex.parquet", _cindex_table(cindex), prov)
    compared = val.models_compared(cindex, models)
    write_parquet(ctx.paths.tables / "models_compared.parquet", compared, prov)
    tests = val.comparisons_table(comparisons)
    write_parquet(ctx.paths.tables / "cindex_comparisons.parquet", tests, prov)
    exclusions = _exclusions(given["exclusions"])
    write_parquet(ctx.paths.tables / "exclusions.parquet", exclusions, prov)
    imputed = clinical.imputations.astype(str)
    write_parquet(ctx.paths.tables / "imputations.parquet", imputed, prov)
    if clinical.imputed:
        write_parquet(ctx.paths.tables / "missing_values.parquet", clinical.missing, prov)
    else:  # a previous imputed run's: the methods would say that values were imputed
        (ctx.paths.tables / "missing_values.parquet").unlink(missing_ok=True)
    _baseline(ctx, clinical, prov)
    figures.all_figures(ctx, sets, models, calibration_table, decision, td_auc, groups, high)
    return metrics


def run(ctx: Context, given: Mapping[str, Any]) -> Cached:
    """Hands on ``metrics`` (metrics.json's ``Metrics``, before the run adds its stage
    timings)."""
    path = ctx.paths.results / "metrics.json"
    inputs = {
        "models": file_hash(ctx.paths.results / "models.json"),
        "scores": file_hash(ctx.paths.tables / "scores.parquet"),
        "clinical": ctx.clinical_hash(),
    }
    if given["scores_radiomics"] is not None:
        inputs["scores_radiomics"] = file_hash(ctx.paths.tables / "scores_radiomics.parquet")

    def compute(key: str) -> dict[str, Any]:
        metrics = _metrics(ctx, given, ctx.prov(key, inputs))
        metrics.write(path)
        return {"metrics": metrics}

    return Cached(
        inputs=inputs,
        settings={"validation": ctx.config.validation.model_dump()},
        files=(path,),
        compute=compute,
        load=lambda: {"metrics": Metrics.read(path)},
    )
