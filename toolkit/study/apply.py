"""`sigkit apply MODEL_DIR COHORT_DIR --out OUT_DIR`: a locked model scores a new cohort.

Nothing is refitted. In order, each step refusing before any imaging work where it can:

1. the model: ``study.bundle.ModelBundle.load(MODEL_DIR)`` (a study's ``model/``);
2. the cohort: its manifest and clinical table (no study.toml: the model's settings
   apply), read by sigkit's one reader of each (``imaging.manifest.read_manifest`` with
   the primary reader's masks, ``config.read_clinical``, ``config.prepare_cohort``).
   Refused, every problem at once (:class:`ApplyError`): a variable of the nomograms
   absent from the clinical table, a value not among study.toml's levels, a level the
   training set did not have (naming the patients and the level), an empty cohort, a
   cohort whose every patient lacks a model variable. A patient with a missing model
   variable gets no prediction (``exclusions.csv``), unless the model was built under
   multiple imputation: its bundle then completes the patient's missing model values
   ``m`` times (``ModelBundle.complete``) and predictions.csv's ``n_imputed`` counts
   them; the survival's CI pools the imputations (Rubin's rules). Patients who were in the
   training set are named (``bundle.TrainingPatients``: salted hashes of the IDs and
   of the scans' content): the same images as a training patient is a label of every
   output (NOT AN EXTERNAL VALIDATION), a training ID with other images a warning;
   both in apply.json's ``training_overlap`` and predictions.csv's ``in_training``;
3. the weights (``deep.weights.load``: the installed ones, ``--weights FILE`` or
   ``random``): refused when their SHA-256 is not the model's, unless
   ``allow_other_weights``, and then every output says so;
4. preprocessing with the model's settings (``imaging.preprocess.preprocess_cohort``,
   primary reader only) into ``OUT_DIR/crops`` and extraction
   (``deep.extract.extract_crops_dir``) into ``OUT_DIR/features.parquet``; a patient
   whose imaging fails is excluded with the reason;
5. scoring (``ModelBundle.predict``): ``OUT_DIR/predictions.csv``, one row per patient:
   the signature, each nomogram's points, linear predictor and survival at each
   horizon with its 95% CI (``survfit(fit, newdata)``'s log limits), the risk group at
   the training cutoff, and ``labels`` (SYNTHETIC, RANDOM weights, OTHER weights) and
   ``warnings`` (numeric values outside the training range). ``warnings.csv`` lists
   those per patient and variable, ``exclusions.csv`` the patients without a
   prediction, ``apply.json`` what was done (the model's hash, the weights, the counts);
6. with outcomes in the clinical table, the external validation of the frozen models
   (``study.external``): ``OUT_DIR/validation.json`` and ``OUT_DIR/tables/*.parquet``;
   and their transportability (``study.transport``: the linear predictor's case-mix
   and the membership models against the bundle's de-identified training case mix
   (``model/case_mix.parquet``, when the bundle has it), the updates of the baseline
   hazard, the slope and the coefficients, each with its calibration):
   ``OUT_DIR/transport.json`` and ``tables/transport_updates.parquet``. A cohort without
   outcome columns or without events gets predictions only, said in apply.json
   (``predictions_only``), on the console and in apply.html;
7. ``OUT_DIR/report/apply.html`` (``report.api.render_apply_report``, the study report's
   renderer), unless ``report=False`` (``--no-report``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toolkit.artifacts import atomic_path, provenance, read_parquet_provenance, write_json
from toolkit.config import (
    StudyConfig,
    StudyConfigError,
    n_patients,
    prepare_cohort,
    read_clinical,
    study_from_mapping,
)
from toolkit.stats._checks import listed
from toolkit.study.bundle import NOMOGRAMS, ModelBundle

EXCLUSION_COLUMNS = ["patient", "stage", "reason"]


class ApplyError(StudyConfigError):
    """The cohort (or the weights) cannot be scored with the model; ``problems`` says why."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        n = len(self.problems)
        head = f"sigkit apply refused: {n} problem{'' if n == 1 else 's'}:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))

    def __reduce__(self):
        return type(self), (self.problems,)


@dataclass(frozen=True)
class ApplyOutcome:
    """What ``apply_model`` wrote: the tables as in OUT_DIR, and the labels of every output."""

    out_dir: Path
    predictions: pd.DataFrame
    exclusions: pd.DataFrame
    warnings: pd.DataFrame
    labels: tuple[str, ...]


def cohort_config(bundle: ModelBundle, manifest: str, clinical: str) -> StudyConfig:
    """The model's study.toml for reading a new cohort: its file names, and only the
    variables the nomograms use (a candidate the models left out need not be there)."""
    raw = dict(bundle.study_toml)
    used = set(bundle.variables)
    raw["study"] = {**raw["study"], "manifest": manifest, "clinical": clinical}
    raw["variables"] = [v for v in raw.get("variables", []) if v["name"] in used]
    raw["outcome"] = {k: v for k, v in raw["outcome"].items() if k != "secondary"}
    return study_from_mapping(raw, "model.json's study_toml")


def _needed_columns(bundle: ModelBundle) -> dict[str, str]:
    """Each model variable -> the nomograms that use it (what a missing column's message says)."""
    users = {
        v: [m for m in NOMOGRAMS if v in bundle.models[m].model.variables] for v in bundle.variables
    }
    return {
        v: f"used by the {' and '.join(ms)} nomogram{'s' if len(ms) > 1 else ''}"
        for v, ms in users.items()
    }


def read_cohort(bundle: ModelBundle, cohort: Path, manifest: str, clinical: str):
    """The cohort's manifest and ``config.ClinicalData`` of the model's variables (and of the
    outcome, ``time`` and ``event``, when the table has both columns); refuses
    (``ApplyError``) what the model cannot score."""
    from toolkit.imaging.manifest import ManifestError, read_manifest

    config = cohort_config(bundle, manifest, clinical)
    primary = config.imaging.primary_reader
    try:
        table_of_images = read_manifest(cohort / manifest, (primary,), name=manifest)
        outcome = (config.outcome.time, config.outcome.event)
        table = read_clinical(
            config, cohort, table_of_images, _needed_columns(bundle), optional=outcome
        )
        data = prepare_cohort(
            config,
            table,
            outcomes=set(outcome) <= set(table.columns),
            keep_missing=bundle.imputation is not None,  # the model imputes them
        )
    except ManifestError as error:
        raise ApplyError(error.problems) from None
    except StudyConfigError as error:
        raise ApplyError(getattr(error, "problems", [str(error)])) from None
    if table.empty:
        raise ApplyError(
            [f"{cohort}: an empty cohort ({manifest} and {clinical} list no patient); "
             "nothing to score"]
        )  # fmt: skip
    problems = unseen_levels(bundle, data.frame, clinical)
    if data.frame.empty:
        reasons = ", ".join(f"{r.patient} ({r.reason})" for r in data.exclusions.itertuples())
        problems.append(f"{cohort}: every patient lacks a model variable: {reasons}")
    if problems:
        raise ApplyError(problems)
    return table_of_images, data


def training_overlap(bundle: ModelBundle, manifest, patients: Sequence[str]):
    """The cohort's patients matching a training patient of the model, with what matched
    (``bundle.TrainingPatients.matches``: ``images``, ``images and ID`` or ``ID``), in the
    cohort's order; ``None`` for a bundle that keeps no training patients."""
    from toolkit.study.bundle import scan_digests

    if bundle.training_patients is None:
        return None
    return bundle.training_patients.matches(patients, scan_digests(manifest, patients))


def overlap_messages(matched: Mapping[str, str], n_cohort: int) -> tuple[str | None, str | None]:
    """The label every output carries when patients have a training patient's images (they
    were in the training set), and the warning for those with only a training ID."""
    scans = [p for p, what in matched.items() if what != "ID"]
    ids = [p for p, what in matched.items() if what == "ID"]
    label = warning = None
    if scans:
        label = (
            f"NOT AN EXTERNAL VALIDATION: {n_patients(len(scans))} of the cohort's {n_cohort} "
            f"{'has' if len(scans) == 1 else 'have'} the images of a training patient of the "
            f"model ({listed(scans)})"
        )
    if ids:
        warning = (
            f"{n_patients(len(ids))} of the cohort's {n_cohort} "
            f"{'carries' if len(ids) == 1 else 'carry'} the ID of a training patient of the "
            f"model, with other images ({listed(ids)}): IDs reused by another site, or the "
            "patients re-imaged (then this is not an external validation)"
        )
    return label, warning


def unseen_levels(bundle: ModelBundle, frame: pd.DataFrame, source: str) -> list[str]:
    """One problem per level of a model variable that the training set did not have,
    naming the patients (the design of a Cox model has no coefficient for it)."""
    problems = []
    for variable in bundle.variables:
        levels = bundle.training_levels(variable)
        if levels is None:
            continue
        values = frame[variable].astype(object)
        for level in sorted({str(v) for v in values.dropna()} - set(levels)):
            who = frame.index[(values == level).to_numpy()]
            problems.append(
                f"{source}: {variable} = {level!r} was not seen in the training set (the model "
                f"knows {list(levels)}), in {n_patients(len(who))} ({listed(list(who))})"
            )
    return problems


def check_weights(bundle: ModelBundle, weights, allow_other: bool) -> list[str]:
    """The labels the weights give every output; refuses weights that are not the model's
    unless ``allow_other``."""
    expected = bundle.weights.get("sha256", "")
    labels = []
    if weights.origin == "random":
        labels.append("RANDOM weights")
    if weights.sha256 != expected:
        message = (
            f"the network weights ({weights.origin}, SHA-256 {weights.sha256[:16]}...) are not "
            f"the model's ({bundle.weights.get('origin')}, SHA-256 {expected[:16]}...): features "
            "of other weights do not fit the signature"
        )
        if not allow_other:
            raise ApplyError(
                [
                    f"{message}; pass the model's weights with --weights FILE (or 'random' "
                    "for a model built with random weights), or --allow-other-weights to "
                    "score anyway, every output labelled so"
                ]
            )
        labels.append(f"OTHER weights than the model's (SHA-256 {weights.sha256[:16]}...)")
    return labels


def _imaging(bundle, cohort, manifest_name, out_dir, weights, workers, batch_size):
    """Crops and features of the cohort (primary reader); the features table and the
    patients whose imaging failed, with the reason."""
    from toolkit.deep.extract import extract_crops_dir
    from toolkit.imaging.preprocess import preprocess_cohort

    imaging = bundle.config.imaging
    primary = imaging.primary_reader
    settings = bundle.preprocess_settings(readers=(primary,))
    pooling = None if imaging.slices == 1 else imaging.pooling  # as the extract stage
    crops = out_dir / "crops"
    preprocess_cohort(
        cohort / manifest_name, crops, workers=workers, progress=False, settings=settings
    )
    failures = pd.read_csv(crops / "failures.csv", dtype=str)
    failed = pd.DataFrame(
        {
            "patient": failures["patient"],
            "stage": "imaging",
            "reason": failures["stage"] + ": " + failures["reason"],
        },
        columns=EXCLUSION_COLUMNS,
    )
    if not any(crops.glob("*.npz")):
        raise ApplyError([f"{cohort}: no patient could be preprocessed (see {crops}/failures.csv)"])
    features_path = out_dir / "features.parquet"
    table = extract_crops_dir(
        crops, features_path, params=weights, batch_size=batch_size, pooling=pooling
    )
    table["patient"] = table["patient"].astype(str)
    primary_rows = table[table["reader"].astype(str) == primary].set_index("patient")
    synthetic = bool(read_parquet_provenance(features_path).get("synthetic"))
    return primary_rows, failed, synthetic


def _write_csv(path: Path, frame: pd.DataFrame, index: bool = False) -> None:
    """The table as CSV, atomically; floats in their shortest form that reads back to the
    same number (``repr``; pandas' default drops the 17th digit; read them back with
    ``pd.read_csv(..., float_precision="round_trip")``), missing ones empty."""
    shown = frame.copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = [repr(float(v)) if np.isfinite(v) else "" for v in shown[column]]
    with atomic_path(path) as tmp:
        shown.to_csv(tmp, index=index)


def _warning_text(warnings: pd.DataFrame) -> dict[str, str]:
    """Per patient, its out-of-range values: "signature = -0.41 (training -0.35 to 0.31)"."""
    text: dict[str, list[str]] = {}
    for row in warnings.itertuples(index=False):
        text.setdefault(row.patient, []).append(
            f"{row.variable} = {row.value:.6g} outside the training range "
            f"{row.min:.6g} to {row.max:.6g}"
        )
    return {p: "; ".join(parts) for p, parts in text.items()}


def score(
    bundle: ModelBundle, frame: pd.DataFrame, labels: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """predictions.csv's table (index patient) and warnings.csv's, for a model frame with
    the ``signature`` column."""
    warnings = bundle.out_of_range(frame)
    predictions = bundle.predict(frame)
    text = _warning_text(warnings)
    predictions["labels"] = "; ".join(labels)
    predictions["warnings"] = [text.get(p, "") for p in predictions.index]
    predictions.index = predictions.index.rename("patient")
    return predictions, warnings


def apply_model(
    model_dir: str | os.PathLike[str],
    cohort_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    weights: str | None = None,
    allow_other_weights: bool = False,
    workers: int | None = None,
    batch_size: int = 16,
    manifest: str = "manifest.csv",
    clinical: str = "clinical.csv",
    report: bool = True,
    echo: Callable[[str], None] = print,
) -> ApplyOutcome:
    """Score the cohort in ``cohort_dir`` with the model in ``model_dir`` (module docstring).

    ``report=False`` skips the page (``--no-report``). Raises ``ApplyError`` (every
    problem at once) for a cohort or weights the model cannot score,
    ``bundle.BundleError`` for a model folder that is not a bundle.
    """
    from toolkit.deep.weights import load

    bundle = ModelBundle.load(model_dir)
    cohort, out = Path(cohort_dir), Path(out_dir)
    images, data = read_cohort(bundle, cohort, manifest, clinical)
    loaded = load(weights)
    labels = check_weights(bundle, loaded, allow_other_weights)
    echo(f"sigkit apply: model of {bundle.study} ({bundle.sha256[:12]}) on {cohort}")
    overlap, overlap_warning = _overlap(bundle, images, data, labels, echo)
    out.mkdir(parents=True, exist_ok=True)
    features, failed, synthetic = _imaging(
        bundle, cohort, manifest, out, loaded, workers if workers is not None else 2, batch_size
    )
    if bundle.synthetic or synthetic:
        labels.insert(0, "SYNTHETIC")
    frame, exclusions = _to_score(bundle, data, features, failed, cohort, (model_dir, out))
    predictions, warnings = score(bundle, frame, labels)
    if overlap is not None:
        predictions["in_training"] = [overlap.get(p, "") for p in predictions.index]
    _write_csv(out / "predictions.csv", predictions, index=True)
    _write_csv(out / "warnings.csv", warnings)
    _write_csv(out / "exclusions.csv", exclusions)
    facts = {
        "training_overlap": overlap,
        "overlap_warning": overlap_warning,
        "predictions_only": predictions_only(frame),
        "imputation": _imputation_facts(bundle, predictions, echo),
    }
    tables = (predictions, exclusions, warnings)
    _record(out, bundle, model_dir, cohort, loaded, labels, tables, facts)
    _tell(echo, out, labels, *tables)
    _clear_previous(out)
    if "time" in frame.columns:
        _validate(out, bundle, frame, labels, echo)
    if facts["predictions_only"]:
        echo(f"  {facts['predictions_only']}")
    if report:
        from toolkit.report.api import render_apply_report

        echo(f"  report: {render_apply_report(out)}")
    return ApplyOutcome(out, predictions, exclusions, warnings, tuple(labels))


def _imputation_facts(bundle: ModelBundle, predictions: pd.DataFrame, echo):
    """apply.json's ``imputation`` (m, patients and values imputed), told; None for a
    model without imputation."""
    if bundle.imputation is None:
        return None
    counts = predictions["n_imputed"]
    facts = {"m": bundle.imputation.m, "n_patients": int((counts > 0).sum())}
    facts["n_values"] = int(counts.sum())
    echo(
        f"  {facts['n_values']} missing model value(s) of {facts['n_patients']} patient(s) "
        f"imputed {facts['m']} times; survival and CI pooled by Rubin's rules"
    )
    return facts


def _overlap(bundle: ModelBundle, images, data, labels: list[str], echo):
    """The cohort's patients matching training patients (``training_overlap``), labelled
    and told; with the warning for a match on the ID alone."""
    patients = [*data.frame.index, *data.exclusions["patient"]]
    matched = training_overlap(bundle, images, patients)
    if matched is None:
        echo("  the model bundle keeps no training patients' hashes: overlap not checked")
        return None, None
    label, warning = overlap_messages(matched, len(patients))
    if label:
        labels.append(label)
        echo(f"  warning: {label}")
    if warning:
        echo(f"  warning: {warning}")
    return matched, warning


def _to_score(bundle, data, features, failed, cohort, where) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The model frame of the patients with features (with ``signature``), and every
    exclusion: the clinical ones, then imaging failures and patients without features.
    ``where`` is (model_dir, out_dir): a fine-tuned bundle's network scores out_dir's crops."""
    scored = [p for p in data.frame.index if p in features.index]
    lost = [p for p in data.frame.index if p not in features.index]
    missing_features = [p for p in lost if p not in set(failed["patient"])]
    extra = pd.DataFrame(
        {"patient": missing_features, "stage": "imaging", "reason": "no features extracted"},
        columns=EXCLUSION_COLUMNS,
    )
    imaging_lost = failed[failed["patient"].isin(lost)]
    exclusions = pd.concat([data.exclusions, imaging_lost, extra], ignore_index=True)
    if not scored:
        raise ApplyError([f"{cohort}: no patient left to score ({len(exclusions)} excluded)"])
    frame = data.frame.loc[scored].copy()
    if "finetuned" in bundle.weights:  # a fine-tuned signature: its network scores the crops
        from toolkit.study.finetuned import score_with_bundle

        model_dir, out = where
        frame["signature"] = score_with_bundle(bundle, Path(model_dir), out / "crops", scored)
    else:
        frame["signature"] = bundle.score_signature(features.loc[scored])
    return frame, exclusions


def predictions_only(frame: pd.DataFrame) -> str | None:
    """Why the cohort gets predictions only (no outcome columns, no events), else None."""
    if "time" not in frame.columns:
        return "no outcome columns in the clinical table: predictions only"
    if not frame["event"].to_numpy(float).any():
        return "no events in the cohort: predictions only"
    return None


def _clear_previous(out: Path) -> None:
    """A previous run's validation outputs and page in OUT_DIR (they would describe
    another cohort)."""
    import shutil

    for name in ("validation.json", "transport.json", "report/apply.html"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "tables", ignore_errors=True)


def _record(out, bundle, model_dir, cohort, loaded, labels, tables, facts):
    predictions, exclusions, warnings = tables
    block: dict[str, Any] = {
        "model": {
            "path": str(Path(model_dir).resolve()),
            "sha256": bundle.sha256,
            "study": bundle.study,
            "sigkit_version": bundle.sigkit_version,
        },
        "cohort": str(cohort.resolve()),
        "weights": {
            "origin": loaded.origin,
            "sha256": loaded.sha256,
            "model_sha256": bundle.weights.get("sha256", ""),
            "matches_model": loaded.sha256 == bundle.weights.get("sha256", ""),
            # a fine-tuned signature: the bundle's network that scored the crops
            "finetuned": bundle.weights.get("finetuned"),
        },
        "labels": list(labels),
        "n_scored": len(predictions),
        "n_excluded": len(exclusions),
        "n_warnings": len(warnings),
        "horizons": list(bundle.horizons),
        "time_unit": bundle.time_unit,
        "risk_groups": bundle.risk_groups.to_json(),
        "predictions_only": facts["predictions_only"],
        "imputation": facts["imputation"],
        "training_overlap": {
            "checked": facts["training_overlap"] is not None,
            "patients": dict(facts["training_overlap"] or {}),
            "warning": facts["overlap_warning"],
        },
        "provenance": provenance(
            inputs={"model": bundle.sha256},
            weights=loaded.origin,
            synthetic="SYNTHETIC" in labels,
        ),
    }
    write_json(out / "apply.json", block)


def _tell(echo, out, labels, predictions, exclusions, warnings) -> None:
    for label in labels:
        echo(f"  {label}: every output is labelled so")
    for row in warnings.head(10).itertuples(index=False):
        echo(
            f"  warning: {row.patient}: {row.variable} = {row.value:.6g} is outside the "
            f"training range {row.min:.6g} to {row.max:.6g}"
        )
    if len(exclusions):
        listed_ = ", ".join(f"{r.patient} ({r.reason})" for r in exclusions.head(10).itertuples())
        echo(f"  excluded {len(exclusions)} patient(s): {listed_}")
    echo(f"  {len(predictions)} patient(s) scored: {out / 'predictions.csv'}")


def _validate(out: Path, bundle: ModelBundle, frame: pd.DataFrame, labels, echo) -> None:
    """OUT_DIR/validation.json and OUT_DIR/tables/*.parquet (``study.external``)."""
    from toolkit.artifacts import write_parquet
    from toolkit.study.external import external_validation

    block = provenance(inputs={"model": bundle.sha256}, synthetic="SYNTHETIC" in labels)
    block["labels"] = list(labels)
    try:
        result, tables = external_validation(bundle, frame)
    except ValueError as error:  # too few patients for a statistic: the predictions stand
        result = {
            "set": "external",
            "n_patients": len(frame),
            "n_events": int(frame["event"].sum()),
        }
        result["note"] = f"not computed: {error}"
        tables = {}
    write_json(out / "validation.json", {**result, "provenance": block})
    for name, table in tables.items():
        write_parquet(out / "tables" / f"{name}.parquet", table, block)
    if result["n_events"]:
        _transport(out, bundle, frame, block, echo)
    if "note" in result:
        echo(f"  external validation: {result['note']}")
        return
    cindex = result["cindex"]["external"]
    text = ", ".join(f"{m} {e['c']:.3f}" for m, e in cindex.items())
    echo(f"  external validation ({result['n_events']} events): C-index {text}")


def _transport(out: Path, bundle: ModelBundle, frame: pd.DataFrame, block, echo) -> None:
    """OUT_DIR/transport.json and OUT_DIR/tables/transport_updates.parquet
    (``study.transport``; the membership models on the bundle's training case mix, when
    it has one)."""
    from toolkit.artifacts import write_parquet
    from toolkit.study.transport import transportability

    result, table = transportability(bundle, frame, bundle.case_mix)
    write_json(out / "transport.json", {**result, "provenance": block})
    if len(table):
        write_parquet(out / "tables" / "transport_updates.parquet", table, block)
    echo(f"  transportability (case-mix, model updating): {out / 'transport.json'}")
