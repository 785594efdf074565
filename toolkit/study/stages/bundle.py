"""bundle: the final models, locked -> ``STUDY_DIR/model/`` (``study.bundle.ModelBundle``).

Everything ``sigkit apply`` needs to score a new cohort, in one folder that needs no
other file of the study: the study.toml as written, the preprocessing settings, the
weights' origin and SHA-256, the signature, the three Cox models with their covariance
and baseline hazard, both nomograms, the risk groups' training cutoff (metrics.json's
``risk_groups.cutoff``), the horizons, the training data's hashes, the training
patients' salted ID hashes, (unless ``[bundle] case_mix = false``) their de-identified
case mix, and the model card (MODEL_CARD.md, ``report.model_card``, from the results of
the validate and internal_validation stages, which run before this one). Keyed on the
files it is made of and those two stages (metrics.json gains the stage timings at the
end of every run). A fine-tuned signature's network (results/finetuned.safetensors) is
copied in beside them and named with its SHA-256 in model.json's ``weights.finetuned``.

Under multiple imputation (``clinical.imputed``) the bundle also carries what scoring a
new cohort then needs: each model's per-imputation Cox fits (each completed training
set's, with its covariance and baseline hazard) beside the pooled model of models.json
(``bundle.PooledCox``), and ``imputation.json``, the covariate-only imputer of the
model's variables and the signature fitted on the training rows
(``bundle.deployment_imputation``), which completes a new cohort ``m`` times.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from toolkit.artifacts import file_hash
from toolkit.imaging.manifest import study_manifest
from toolkit.study._stages import Cached
from toolkit.study.context import Context
from toolkit.study.stages.models import model_frame


def _training(ctx: Context, train, inputs: Mapping[str, str]) -> dict[str, Any]:
    """The training data's hashes (the files, and the model frame's training rows)."""
    from toolkit.study.bundle import frame_hash

    return {
        "sets": list(ctx.config.study.train_sets),
        "n_patients": len(train),
        "n_events": int(train["event"].sum()),
        "clinical_sha256": inputs["clinical"],
        "manifest_sha256": file_hash(ctx.paths.cohort / ctx.config.study.manifest),
        "features_sha256": inputs["features"],
        "model_frame_sha256": frame_hash(train),
    }


def _weights(ctx: Context, directory) -> dict[str, Any]:
    """model.json's ``weights``: the extraction weights' origin and SHA-256, and for a
    fine-tuned signature ``finetuned``, the network copied into the bundle, which
    ``sigkit apply`` scores with (``study.finetuned.bundle_entry``)."""
    weights: dict[str, Any] = {"origin": ctx.weights_origin, "sha256": ctx.weights_sha256}
    if ctx.config.signature.source == "finetuned":
        from toolkit.study.finetuned import bundle_entry

        weights["finetuned"] = bundle_entry(ctx.paths.results, directory)
    return weights


def _completed_training(ctx: Context, given: Mapping[str, Any]) -> list:
    """The completed training model frames under multiple imputation, else none."""
    from toolkit.study.stages.models import model_frames

    clinical = given["clinical"]
    if not clinical.imputed:
        return []
    sets = ctx.config.study.train_sets
    return [f[f["set"].isin(sets)] for f in model_frames(clinical, given["scores"])]


def run(ctx: Context, given: Mapping[str, Any]) -> Cached | dict[str, Any]:
    """Hands on ``bundle``: the ``ModelBundle`` as ``ModelBundle.load`` reads it back."""
    from toolkit.report import model_card
    from toolkit.study import bundle as locked

    directory = ctx.paths.model
    results = ctx.paths.results
    inputs = {
        "signature": file_hash(results / "signature.json"),
        "models": file_hash(results / "models.json"),
        **{f"nomogram_{m}": file_hash(results / f"nomogram_{m}.json") for m in locked.NOMOGRAMS},
        "validate": ctx.log.key_of("validate"),
        "internal_validation": ctx.log.key_of("internal_validation"),
        "features": file_hash(ctx.paths.features),
        "clinical": ctx.clinical_hash(),
    }
    if ctx.config.signature.source == "finetuned":
        from toolkit.study.finetuned import WEIGHTS_FILE

        inputs["finetuned"] = file_hash(results / WEIGHTS_FILE)
    names = ["signature", *(f"cox_{m}" for m in locked.MODELS)]
    names += [*(f"nomogram_{m}" for m in locked.NOMOGRAMS), locked.PATIENTS]
    files = (directory / locked.MANIFEST, *(directory / f"{n}.json" for n in names))
    files += (directory / locked.MODEL_CARD_FILE,)
    case_mix = ctx.config.bundle.case_mix
    files += (directory / f"{locked.CASE_MIX}.parquet",) if case_mix else ()
    files += (directory / f"{locked.IMPUTATION}.json",) if given["clinical"].imputed else ()

    def compute(key: str) -> dict[str, Any]:
        frame = model_frame(given["clinical"], given["scores"])
        train = frame[frame["set"].isin(ctx.config.study.train_sets)]
        made = locked.from_study(
            ctx.config,
            given["models"],
            given["nomograms"],
            given["signature"],
            train,
            cutoff=given["metrics"].risk_groups["cutoff"],
            weights=_weights(ctx, directory),
            training=_training(ctx, train, inputs),
            scans=locked.scan_digests(study_manifest(ctx.config, ctx.paths.cohort), train.index),
            completed=_completed_training(ctx, given),
        )
        card = model_card.for_study(ctx.paths.study_dir, made, frame)
        replace(made, provenance=ctx.prov(key, inputs), model_card=card).save(directory)
        return {"bundle": locked.ModelBundle.load(directory)}

    return Cached(
        inputs={**inputs, "weights": ctx.weights_sha256},
        settings={"bundle_version": locked.VERSION, "case_mix": case_mix},
        files=files,
        compute=compute,
        load=lambda: {"bundle": locked.ModelBundle.load(directory)},
    )
