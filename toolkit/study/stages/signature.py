"""signature: features + clinical -> the deep-learning signature and every patient's score.

``study.signature.build`` does the work (ICC filter, mRMR, elastic-net Cox with
CV, see there) on the training patients. Writes ``results/signature.json`` and
the tables ``signature_features``, ``signature_cv``, ``mrmr_ranking``, ``icc``
(its provenance's ``features_from`` names the slice choice, ``{"slices": 1}`` or
``{"slices": k or "all", "pooling": ...}``, whose features the ICC was computed on)
and ``scores`` (the primary reader's signature per patient, with its set).
:func:`signature_of` does the same for any feature source: the radiomics signature
(``stages.signature_radiomics``) writes the same files with the source's suffix.

With ``[signature] source = "finetuned"`` (``study.finetuned``) the deep signature is the
fine-tuned network's linear predictor instead: ``signature.json`` has no features (its
``penalty`` is ``"finetuned"``, its note says how it was trained), the tables are
``finetune_cv`` (each outer fold's C-index) and ``finetune_folds`` (each training
patient's outer fold), ``results/finetune.json`` records the training (with the apparent
C-index, the cross-validated optimism and the weights file's SHA-256), the final network is
``results/finetuned.safetensors`` (``study.finetuned.save_weights``), and ``scores``
is as above. The stage also takes the crops for it.
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


def _write_tables(ctx: Context, built, prov: dict[str, Any], source) -> None:
    from toolkit.study import signature as sig

    tables = ctx.paths.tables
    write_parquet(
        tables / source.file("signature_features", "parquet"), sig.feature_table(built), prov
    )
    write_parquet(tables / source.file("signature_cv", "parquet"), built.cv, prov)
    write_parquet(tables / source.file("mrmr_ranking", "parquet"), built.ranking, prov)
    icc_table = pd.DataFrame({"feature": built.feature_names, "icc": built.icc})
    # the slice choice is that of the deep features' crops: the radiomics use the volumes
    icc_prov = icc_provenance(prov, ctx.config) if source.name == "deep" else prov
    write_parquet(tables / source.file("icc", "parquet"), icc_table, icc_prov)


def _primary_rows(ctx: Context, features: pd.DataFrame, patients: pd.Index, source) -> pd.DataFrame:
    """The primary reader's rows of ``patients``; a patient without one is named."""
    from toolkit.stats._checks import listed
    from toolkit.study.signature import SignatureError

    primary = features[features["reader"] == ctx.config.imaging.primary_reader]
    primary = primary.set_index("patient")
    absent = [p for p in patients if p not in primary.index]
    if absent:
        raise SignatureError(
            f"the {source.name} features have no row of the primary reader "
            f"{ctx.config.imaging.primary_reader!r} for {len(absent)} patients ({listed(absent)})"
        )
    return primary.loc[patients]


def signature_of(
    ctx: Context, features: pd.DataFrame, clinical, features_hash: str, source
) -> Cached:
    """The signature stage of ``source``'s ``features`` (a table whose file hash is
    ``features_hash``): hands on ``signature<suffix>`` and ``scores<suffix>``."""
    from toolkit.study import signature as sig

    score = f"signature{source.suffix}"
    signature_path = ctx.paths.results / source.file("signature", "json")
    scores_path = ctx.paths.tables / source.file("scores", "parquet")
    inputs = {"features": features_hash, "clinical": ctx.clinical_hash()}

    def compute(key: str) -> dict[str, Any]:
        built = sig.build(features, clinical.frame, ctx.config, source)
        prov = ctx.prov(key, inputs)
        icc = IccSummary(
            n_features=len(built.feature_names),
            n_kept=len(built.kept) + built.n_copies,
            n_degenerate_removed=built.n_copies,
            threshold=ctx.config.signature.icc_threshold,
            type=ctx.config.signature.icc_type,
        )
        incomplete = None if source.name == "deep" else built.n_incomplete
        if incomplete:
            ctx.echo(
                f"    {source.name} signature: {incomplete} features NaN for some patient "
                "left out before the ICC filter"
            )
        _write_tables(ctx, built, prov, source)
        primary = _primary_rows(ctx, features, clinical.frame.index, source)
        scores = pd.DataFrame(
            {"set": clinical.frame["set"], score: built.signature.score(primary)},
            index=clinical.frame.index.rename("patient"),
        )
        write_parquet(scores_path, scores, prov)
        spec = built.signature.spec(icc=icc, provenance=prov, n_incomplete=incomplete)
        spec.write(signature_path)
        return {score: spec, f"scores{source.suffix}": scores}

    def load() -> dict[str, Any]:
        scores = pd.read_parquet(scores_path)
        return {score: SignatureSpec.read(signature_path), f"scores{source.suffix}": scores}

    return Cached(
        inputs=inputs,
        # the frozen signature's key leaves out the fine-tuning settings, as before them
        settings=ctx.config.signature.model_dump(exclude={"source", "finetune"}),
        files=(signature_path, scores_path),
        compute=compute,
        load=load,
    )


def _finetuned(ctx: Context, given: Mapping[str, Any]) -> Cached:
    """The ``source = "finetuned"`` branch of `run`."""
    from toolkit.deep.weights import load as load_weights
    from toolkit.study import finetuned

    clinical, config = given["clinical"], ctx.config
    signature_path = ctx.paths.results / "signature.json"
    scores_path = ctx.paths.tables / "scores.parquet"
    record_path = ctx.paths.results / "finetune.json"
    weights_path = ctx.paths.results / finetuned.WEIGHTS_FILE
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
        sha256 = finetuned.save_weights(weights_path, built, settings.finetune)
        write_json(
            record_path,
            {
                "cv_c_index_mean": cv_mean,
                "n_folds": settings.n_folds,
                "best_step": built.best_step,
                "steps_run": built.steps_run,
                "backbone": built.backbone,
                "settings": settings.finetune.model_dump(),
                "apparent_c_index": built.apparent_c_index,
                "cv_optimism": built.cv_optimism,
                "final_seconds": built.final_seconds,
                "weights": {"path": weights_path.name, "sha256": sha256},
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
        files=(signature_path, scores_path, record_path, weights_path),
        compute=compute,
        load=load,
    )


def run(ctx: Context, given: Mapping[str, Any]) -> Cached:
    """Hands on ``signature`` (signature.json's ``SignatureSpec``) and ``scores``
    (scores.parquet)."""
    from toolkit.study.signature import DEEP

    if ctx.config.signature.source == "finetuned":
        return _finetuned(ctx, given)
    features_hash = file_hash(ctx.paths.features)
    return signature_of(ctx, given["features"], given["clinical"], features_hash, DEEP)
