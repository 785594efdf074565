"""signature: features + clinical -> the deep-learning signature and every patient's score.

``study.signature.build`` does the work (ICC filter, mRMR, elastic-net Cox with
CV, see there) on the training patients. Writes ``results/signature.json`` and
the tables ``signature_features``, ``signature_cv``, ``mrmr_ranking``, ``icc``
(its provenance's ``features_from`` names the slice choice, ``{"slices": 1}`` or
``{"slices": k or "all", "pooling": ...}``, whose features the ICC was computed on)
and ``scores`` (the primary reader's signature per patient, with its set).

With ``[signature] source = "finetuned"`` (``study.finetuned``) the signature is the
fine-tuned network's linear predictor instead: ``signature.json`` has no features (its
``penalty`` is ``"finetuned"``, its note says how it was trained), the tables are
``finetune_cv`` (each outer fold's C-index) and ``finetune_folds`` (each training
patient's outer fold), ``results/finetune.json`` records the training, and ``scores``
is as above. The stage then also takes the crops.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from toolkit.artifacts import file_hash, write_json, write_parquet
from toolkit.contracts import IccSummary, SignatureSpec
from toolkit.study._stages import Cached
from toolkit.study.context import Context

if TYPE_CHECKING:
    from toolkit.config import StudyConfig


def icc_provenance(prov: dict[str, Any], config: StudyConfig) -> dict[str, Any]:
    """The ICC table's provenance: the stage's, and ``features_from``, the slice choice
    (``[imaging] slices`` and, with more than one slice, ``pooling``) whose features the
    ICC was computed on."""
    return prov | {"features_from": config.imaging.slice_choice}


def _write_tables(ctx: Context, built, prov: dict[str, Any]) -> None:
    from toolkit.study import signature as sig

    tables = ctx.paths.tables
    write_parquet(tables / "signature_features.parquet", sig.feature_table(built), prov)
    write_parquet(tables / "signature_cv.parquet", built.cv, prov)
    write_parquet(tables / "mrmr_ranking.parquet", built.ranking, prov)
    icc_table = pd.DataFrame({"feature": built.feature_names, "icc": built.icc})
    write_parquet(tables / "icc.parquet", icc_table, icc_provenance(prov, ctx.config))


def _finetuned(ctx: Context, given: Mapping[str, Any]) -> Cached:
    """The ``source = "finetuned"`` branch of `run`."""
    from toolkit.deep.weights import load as load_weights
    from toolkit.study import finetuned

    clinical, config = given["clinical"], ctx.config
    signature_path = ctx.paths.results / "signature.json"
    scores_path = ctx.paths.tables / "scores.parquet"
    record_path = ctx.paths.results / "finetune.json"
    inputs = {
        "crops": file_hash(given["crops"] / "manifest.json"),
        "clinical": ctx.clinical_hash(),
    }

    def compute(key: str) -> dict[str, Any]:
        settings = config.signature
        built = finetuned.build(
            given["crops"],
            clinical.frame,
            list(config.study.train_sets),
            config.imaging.primary_reader,
            settings.finetune,
            settings.n_folds,
            settings.seed,
            load_weights(ctx.weights_source),
        )
        prov = ctx.prov(key, inputs)
        tables = ctx.paths.tables
        write_parquet(tables / "finetune_cv.parquet", built.cv, prov)
        write_parquet(tables / "finetune_folds.parquet", built.folds, prov)
        cv_mean = float(built.cv["c_index"].mean())
        write_json(
            record_path,
            {
                "cv_c_index_mean": cv_mean,
                "n_folds": settings.n_folds,
                "best_step": built.best_step,
                "steps_run": built.steps_run,
                "backbone": built.backbone,
                "settings": settings.finetune.model_dump(),
                "provenance": prov,
            },
        )
        scores = pd.DataFrame(
            {"set": clinical.frame["set"], "signature": built.score},
            index=clinical.frame.index.rename("patient"),
        )
        write_parquet(scores_path, scores, prov)
        note = (
            f"fine-tuned DenseNet-121 with a linear Cox head (backbone from {built.backbone}); "
            f"{settings.n_folds}-fold cross-validated C-index {cv_mean:.3f}; final model "
            f"stopped at step {built.best_step} of {built.steps_run}"
        )
        spec = SignatureSpec(
            features=(),
            coefficients=(),
            l1_ratio=0.0,
            penalty="finetuned",
            penalty_value=0.0,
            formula="signature = linear predictor of the fine-tuned network's Cox head",
            means=(),
            scales=(),
            note=note,
            provenance=prov,
        )
        spec.write(signature_path)
        return {"signature": spec, "scores": scores}

    def load() -> dict[str, Any]:
        scores = pd.read_parquet(scores_path)
        return {"signature": SignatureSpec.read(signature_path), "scores": scores}

    return Cached(
        inputs=inputs,
        settings=config.signature.model_dump() | {"weights": ctx.weights_origin},
        files=(signature_path, scores_path, record_path),
        compute=compute,
        load=load,
    )


def run(ctx: Context, given: Mapping[str, Any]) -> Cached:
    """Hands on ``signature`` (signature.json's ``SignatureSpec``) and ``scores``
    (scores.parquet)."""
    from toolkit.study import signature as sig

    if ctx.config.signature.source == "finetuned":
        return _finetuned(ctx, given)
    features, clinical = given["features"], given["clinical"]
    signature_path = ctx.paths.results / "signature.json"
    scores_path = ctx.paths.tables / "scores.parquet"
    inputs = {"features": file_hash(ctx.paths.features), "clinical": ctx.clinical_hash()}

    def compute(key: str) -> dict[str, Any]:
        built = sig.build(features, clinical.frame, ctx.config)
        prov = ctx.prov(key, inputs)
        icc = IccSummary(
            n_features=len(built.feature_names),
            n_kept=len(built.kept) + built.n_copies,
            n_degenerate_removed=built.n_copies,
            threshold=ctx.config.signature.icc_threshold,
            type=ctx.config.signature.icc_type,
        )
        _write_tables(ctx, built, prov)
        primary = features[features["reader"] == ctx.config.imaging.primary_reader]
        primary = primary.set_index("patient").loc[clinical.frame.index]
        scores = pd.DataFrame(
            {"set": clinical.frame["set"], "signature": built.signature.score(primary)},
            index=clinical.frame.index.rename("patient"),
        )
        write_parquet(scores_path, scores, prov)
        spec = built.signature.spec(icc=icc, provenance=prov)
        spec.write(signature_path)
        return {"signature": spec, "scores": scores}

    def load() -> dict[str, Any]:
        scores = pd.read_parquet(scores_path)
        return {"signature": SignatureSpec.read(signature_path), "scores": scores}

    return Cached(
        inputs=inputs,
        # the frozen signature's key leaves out the fine-tuning settings, as before them
        settings=ctx.config.signature.model_dump(exclude={"source", "finetune"}),
        files=(signature_path, scores_path),
        compute=compute,
        load=load,
    )
