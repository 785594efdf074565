"""The model card: ``STUDY_DIR/model/MODEL_CARD.md`` and the study report's section.

One function, :func:`document`, writes the card's Markdown; the bundle stage stores its
text in the locked bundle (``ModelBundle.model_card``, MODEL_CARD.md, hashed in
model.json) and the report's model-card section shows that stored text
(:func:`section`), so the file and the report cannot diverge. Following Mitchell et al.
(FAT* 2019, "Model cards for model reporting") as TRIPOD+AI asks for one (Collins et
al., BMJ 2024): intended and not-intended use, the training data and centres, the
predictors, the performance with 95% CIs in each set, the internal validation, the
known limitations and the TRIPOD+AI items the card answers (:data:`TRIPOD_ITEMS`, linked
from the report's checklist).

Nothing is recomputed: the performance comes from results/metrics.json and the
internal validation from tables/internal_validation.parquet, as the report's tables
read them, formatted by the same ``formatting`` helpers; the predictors from the bundle.
The only numbers the card derives are the cohort's counts per set and centre and the
median follow-up (reverse Kaplan-Meier, ``survfit(Surv(time, 1 - event) ~ 1)``), from
the model frame the bundle stage hands it (:func:`cohort_table`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toolkit.contracts import FeatureName
from toolkit.report import formatting as fmt
from toolkit.report.study import MODEL_LABELS, SET_LABELS, SETS, StudyResults
from toolkit.report.study_tables import FEW_CENTRES, internal_validation_cells, term_label
from toolkit.study.bundle import MODEL_CARD_FILE, ModelBundle

SECTION = "sec-model-card"

# TRIPOD+AI item -> what of it the card answers (the checklist's note where the item was
# not answered elsewhere in the report)
TRIPOD_ITEMS: dict[str, str] = {
    "3b": "the model card's intended and not-intended use; the care pathway is the authors'",
    "5a": "the model card's training data: sets, centres and the data's SHA-256",
    "20a": "the model card's patients, events and median follow-up per set and centre",
    "21": "the model card's patients and events per set",
    "22": "the model card's predictors and coefficients; model/ holds the full model",
    "23a": "the model card's performance with 95% CIs in each set",
    "26": "the model card's known limitations of this run; their discussion is the authors'",
    "27a": "the model card: what sigkit apply refuses or warns of in new input data",
}
_TRIPOD_TOPICS = {
    "3b": "intended use",
    "5a": "data sources",
    "20a": "participants and follow-up",
    "21": "participants and events",
    "22": "model specification",
    "23a": "performance",
    "26": "limitations",
    "27a": "poor or missing input data",
}

COHORT_COLUMNS = ["set", "centre", "patients", "events", "median_follow_up"]


# ---------------------------------------------------------------- the cohort


def median_follow_up(time: Any, event: Any) -> float:
    """Median follow-up by the reverse Kaplan-Meier method (the censoring times' KM median,
    ``survfit(Surv(time, 1 - event) ~ 1)``); NaN when not reached."""
    from toolkit.stats.survival import kaplan_meier

    event = np.asarray(event, dtype=float)
    return float(kaplan_meier(np.asarray(time, dtype=float), 1.0 - event).median)


def cohort_table(frame: pd.DataFrame, train_sets: Iterable[str]) -> pd.DataFrame:
    """Patients, events and median follow-up of the model frame (columns ``set``, ``time``,
    ``event``, optional ``centre``) per analysis set (``train``/``validation``), then per
    centre within it (``centre`` "" on a set's own row)."""
    train = set(train_sets)
    role = np.where(frame["set"].isin(train), "train", "validation")
    rows = []
    for name in SETS:
        part = frame[role == name]
        if part.empty:
            continue
        rows.append(_counts(name, "", part))
        if "centre" in part.columns:
            for centre, group in part.groupby(part["centre"].astype(str), sort=True):
                rows.append(_counts(name, str(centre), group))
    return pd.DataFrame(rows, columns=COHORT_COLUMNS)


def _counts(name: str, centre: str, part: pd.DataFrame) -> dict[str, Any]:
    return {
        "set": name,
        "centre": centre,
        "patients": len(part),
        "events": int(part["event"].sum()),
        "median_follow_up": median_follow_up(part["time"], part["event"]),
    }


# ---------------------------------------------------------------- the card


def document(results: StudyResults, bundle: ModelBundle, cohort: pd.DataFrame) -> str:
    """MODEL_CARD.md's text: a title, then :func:`markdown` with its sections at level 2."""
    return f"# Model card: {bundle.study}\n\n" + markdown(results, bundle, cohort, level=2)


def markdown(
    results: StudyResults, bundle: ModelBundle, cohort: pd.DataFrame, level: int = 2
) -> str:
    """The card's sections as Markdown, headings at ``level``; ``cohort`` is
    :func:`cohort_table`'s."""
    head = "#" * level
    parts = [
        _labels(results, bundle),
        _overview(results, bundle),
        f"{head} Intended use\n\n{_intended_use(results, bundle)}",
        f"{head} Training data and centres\n\n{_training(results, bundle, cohort)}",
        f"{head} Predictors\n\n{_predictors(results, bundle)}",
        f"{head} Performance\n\n{_performance(results)}",
        f"{head} Internal validation\n\n{_internal(results)}",
        f"{head} Known limitations\n\n{_limitations(results, bundle)}",
        f"{head} TRIPOD+AI items answered\n\n{_tripod()}",
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def random_weights(bundle: ModelBundle) -> bool:
    return str(bundle.weights.get("origin")) == "random"


def _labels(results: StudyResults, bundle: ModelBundle) -> str:
    """The warnings the report's banner gives, first and in capitals."""
    lines = []
    if bundle.synthetic or results.synthetic:
        lines.append(
            "> **SYNTHETIC COHORT.** The data are sigkit's built-in phantom cohort (`sigkit "
            "synth`): no patient contributed data. Every number in this card demonstrates the "
            "pipeline; none is a clinical finding, and the model must not be used on patients."
        )
    if random_weights(bundle):
        lines.append(
            "> **RANDOM WEIGHTS.** The DenseNet-121 weights are random (no ImageNet weights "
            "were installed): the deep features and the signature built on them carry no "
            "learned image knowledge."
        )
    return "\n>\n".join(lines)


def _overview(results: StudyResults, bundle: ModelBundle) -> str:
    outcome = bundle.config.outcome
    horizons = ", ".join(f"{t:g}" for t in bundle.horizons)
    models = ", ".join(MODEL_LABELS.get(m, m) for m in bundle.models)
    return "\n".join(
        [
            f"- **Study:** {bundle.study}.",
            f"- **Outcome:** {outcome.label} (`{outcome.time}`, event `{outcome.event}`), "
            f"predicted at {horizons} {bundle.time_unit}.",
            f"- **Models locked in `model/`:** {models}; risk groups split at the training "
            f"median of the {bundle.risk_groups.model} nomogram's linear predictor "
            f"({fmt.number(bundle.risk_groups.cutoff)}).",
            f"- **sigkit:** {bundle.sigkit_version}; the card is `model/{MODEL_CARD_FILE}`, "
            "named with its SHA-256 in `model/model.json`.",
        ]
    )


def _intended_use(results: StudyResults, bundle: ModelBundle) -> str:
    config = bundle.config
    horizons = ", ".join(f"{t:g}" for t in bundle.horizons)
    train = ", ".join(config.study.train_sets)
    text = (
        f"**Intended:** research estimation of {config.outcome.label.lower()} at {horizons} "
        f"{bundle.time_unit} (survival with its 95% CI, nomogram points, a high/low risk "
        f"group) for patients like those of the training set(s) {train}, whose CT was "
        "acquired, delineated and preprocessed as in training (the settings in "
        "`model/model.json`), used by clinicians or researchers beside clinical judgement. "
        "New patients are scored with `sigkit apply model/ COHORT_DIR`, which refuses other "
        "network weights (unless `--allow-other-weights`, labelled) and a categorical "
        "level not seen in training, excludes a patient missing a model variable (unless "
        "the model carries its imputation), and warns of each value outside the training "
        "range."
    )
    text += (
        "\n\n**Not intended:** treatment decisions without a clinician; patients, "
        "treatments, scanners or imaging protocols unlike the training data; predictions "
        "beyond the last horizon; use before an external validation in the target setting."
    )
    reasons = ["a synthetic cohort"] if bundle.synthetic or results.synthetic else []
    reasons += ["random network weights"] if random_weights(bundle) else []
    if reasons:
        text += f" Any clinical use at all: this model comes from {' and '.join(reasons)}."
    return text


def _training(results: StudyResults, bundle: ModelBundle, cohort: pd.DataFrame) -> str:
    unit = bundle.time_unit
    rows = []
    for record in cohort.to_dict("records"):
        label = SET_LABELS.get(record["set"], record["set"])
        name = f"{label}, centre {record['centre']}" if record["centre"] else f"**{label}**"
        follow = record["median_follow_up"]
        shown = "not reached" if follow != follow else f"{fmt.number(follow, 1)} {unit}"
        rows.append([name, str(record["patients"]), str(record["events"]), shown])
    table = _table(["Set", "Patients", "Events", "Median follow-up (reverse KM)"], rows)
    config = bundle.config
    training = bundle.training
    sets = ", ".join(config.study.train_sets)
    validation = ", ".join(config.study.validation_sets)
    text = (
        f"Training set: set(s) {sets} of the clinical table; validation set: set(s) "
        f"{validation}, used only to evaluate the frozen models.\n\n{table}\n\n"
    )
    if config.study.centre:
        text += f"Centres from the clinical table's `{config.study.centre}` column. "
    text += (
        f"The models were fitted on {training.get('n_patients')} training patients "
        f"({training.get('n_events')} events). Data hashes (SHA-256) recorded in the bundle:\n\n"
    )
    hashes = [
        ("clinical table", "clinical_sha256"),
        ("manifest", "manifest_sha256"),
        ("features", "features_sha256"),
        ("training model frame", "model_frame_sha256"),
    ]
    text += "\n".join(f"- {what}: `{training.get(key, '?')}`" for what, key in hashes)
    return text


def _predictors(results: StudyResults, bundle: ModelBundle) -> str:
    rows = []
    for name, bundled in bundle.models.items():
        model = bundled.model
        for term, coef, p in zip(model.terms, model.coef, model.p, strict=True):
            hr = fmt.ratio(float(np.exp(coef)))
            label = term_label(results, term)
            rows.append([MODEL_LABELS.get(name, name), label, f"{coef:.4f}", hr, fmt.pvalue(p)])
    table = _table(["Model", "Term", "Coefficient", "HR", "Wald P"], rows)
    text = (
        "Each locked Cox model's terms, as `model/cox_<model>.json` holds them (coefficients "
        f"per unit; categorical terms against their reference level):\n\n{table}\n\n"
    )
    text += _signature_text(bundle)
    others = _unlocked_models(results, bundle)
    if others:
        text += (
            "\n\nAlso evaluated in the study but not locked in `model/`: "
            + ", ".join(MODEL_LABELS.get(m, m) for m in others)
            + "."
        )
    return text


def _signature_text(bundle: ModelBundle) -> str:
    signature = bundle.signature
    by_phase: dict[str, list[str]] = {}
    for feature, coef in zip(signature.features, signature.coefficients, strict=True):
        key = feature.phase if isinstance(feature, FeatureName) else "radiomics"
        by_phase.setdefault(key, []).append(f"`{feature.format()}` ({coef:+.4f})")
    listed = "; ".join(f"{phase}: {', '.join(items)}" for phase, items in by_phase.items())
    origin = str(bundle.weights.get("origin"))
    weights = "**RANDOM WEIGHTS** (not ImageNet-trained)" if origin == "random" else origin
    sha256 = bundle.weights.get("sha256")
    return (
        f"The deep-learning signature is the linear predictor of {len(signature.features)} "
        "DenseNet-121 features, each standardised by its training mean and SD (weight in "
        f"brackets; `model/signature.json`): {listed}. Their source: DenseNet-121 without "
        f"its classifier on the CT crops, network weights {weights}, SHA-256 `{sha256}`."
    )


def _unlocked_models(results: StudyResults, bundle: ModelBundle) -> list[str]:
    seen = dict.fromkeys(m for s in SETS for m in results.metrics.cindex.get(s, {}))
    return [m for m in seen if m not in bundle.models]


def _models_in(block: Mapping[str, Any]) -> list[str]:
    """The models a metrics block holds, in its order, over both sets (data-driven)."""
    return list(dict.fromkeys(m for s in SETS for m in block.get(s, {})))


def _performance(results: StudyResults) -> str:
    """C-index and calibration slope per set and model, then AUC, Brier, IPA per horizon."""
    metrics = results.metrics
    accuracy = metrics.accuracy or {}
    rows = []
    for s in SETS:
        for model in _models_in(metrics.cindex):
            entry = metrics.cindex.get(s, {}).get(model)
            if entry is None:
                continue
            slope = accuracy.get(s, {}).get(model, {}).get("calibration_slope") or {}
            rows.append(
                [
                    SET_LABELS[s],
                    MODEL_LABELS.get(model, model),
                    fmt.with_ci(entry.get("c"), entry.get("lower"), entry.get("upper")),
                    fmt.with_ci(slope.get("slope"), slope.get("lower"), slope.get("upper")),
                ]
            )
    header = ["Set", "Model", "C-index (95% CI)", "Calibration slope (95% CI)"]
    text = (
        "From `results/metrics.json`, as the study report's tables show them: Harrell's "
        "C-index (infinitesimal-jackknife CI, as `survival::concordance`), calibration slope "
        "(the linear predictor refitted on the set), and at each horizon the time-dependent "
        "AUC and the Brier score (influence-function CIs, as `riskRegression::Score`), the "
        "IPA and, for the nomograms, the calibration RMSE.\n\n" + _table(header, rows)
    )
    return text + "\n\n" + _accuracy(results)


def _accuracy(results: StudyResults) -> str:
    metrics = results.metrics
    accuracy = metrics.accuracy or {}
    rows = []
    for s in SETS:
        for model in _models_in(accuracy):
            entry = accuracy.get(s, {}).get(model)
            if not entry:
                continue
            calibration = metrics.calibration.get(s, {}).get(model, {})
            for time in sorted(entry["brier"], key=float):
                rows.append(_accuracy_row(results, s, model, time, entry, calibration))
    if not rows:
        return "The run wrote no accuracy block (AUC, Brier, IPA)."
    header = ["Set", "Model", "Time", "AUC (95% CI)", "Brier (95% CI)", "IPA", "Calibration RMSE"]
    text = _table(header, rows)
    for s in SETS:
        beyond = accuracy.get(s, {}).get("beyond_follow_up")
        if beyond:
            times = ", ".join(f"{float(t):g}" for t in beyond)
            text += f"\n\n{SET_LABELS[s]}: no value at {times} {results.time_unit} "
            text += "(beyond the set's last follow-up)."
    return text


def _accuracy_row(results, s, model, time, entry, calibration) -> list[str]:
    brier, auc = entry["brier"][time], entry["auc"].get(time, {})
    rmse = calibration.get(time, {}).get("rmse")
    return [
        SET_LABELS[s],
        MODEL_LABELS.get(model, model),
        f"{float(time):g} {results.time_unit}",
        fmt.with_ci(auc.get("auc"), auc.get("lower"), auc.get("upper")),
        fmt.with_ci(brier["brier"], brier["lower"], brier["upper"]),
        fmt.number(brier["ipa"]),
        fmt.number(rmse),
    ]


def _internal(results: StudyResults) -> str:
    record = results.internal_validation
    table = results.table("internal_validation")
    if record is None or table is None or table.empty:
        return "Not run: this study wrote no whole-procedure internal validation."
    rows = [
        [MODEL_LABELS.get(r.model, r.model), *internal_validation_cells(r, results.time_unit)]
        for r in table.itertuples(index=False)
    ]
    header = ["Model", "Statistic", "Time", "Apparent", "Optimism", "Optimism-corrected"]
    header.append("Resamples")
    return (
        f"Whole-procedure bootstrap of the training set ({record.B} resamples, seed "
        f"{record.seed}, {record.n_used} used): the ICC filter, mRMR, the elastic-net "
        "signature and both nomograms' selection re-run in each resample "
        "(`results/tables/internal_validation.parquet`).\n\n" + _table(header, rows)
    )


def _limitations(results: StudyResults, bundle: ModelBundle) -> str:
    items = [
        *_label_limitations(results, bundle),
        _slices(bundle),
        "The tumour ROI is delineated by a reader on the CT before scoring: the procedure is "
        "not fully automatic, and the signature depends on the delineation.",
        "The design reproduced is the reference study's: a retrospective multicentre "
        "cohort, with the selection bias that brings; no prospective validation.",
        _missing_data(results, bundle),
        _sample_size(results),
        *_report_caveats(results),
        "The models are frozen: they were not updated or recalibrated on the validation "
        "set, and a new setting may need recalibration (`sigkit apply` reports it).",
    ]
    return "\n".join(f"- {item}" for item in items if item)


def _label_limitations(results: StudyResults, bundle: ModelBundle) -> list[str]:
    items = []
    if bundle.synthetic or results.synthetic:
        items.append("**Synthetic cohort**: no patient data; no clinical validity is claimed.")
    if random_weights(bundle):
        items.append("**Random weights**: the deep features are untrained image projections.")
    return items


def _slices(bundle: ModelBundle) -> str:
    slices = bundle.config.imaging.slices
    if slices == 1:
        return (
            "Image features come from a single axial slice (the largest tumour ROI) per phase: "
            "the rest of the tumour's volume is not seen."
        )
    pooling = bundle.config.imaging.pooling
    return f"Image features are pooled ({pooling}) over {slices} axial slice(s) per phase."


def _missing_data(results: StudyResults, bundle: ModelBundle) -> str:
    rule = results.settings.get("validation", {}).get("missing", "complete-case")
    exclusions = results.table("exclusions")
    n = 0 if exclusions is None else len(exclusions)
    text = f"Missing data: `{rule}`; {n} patient(s) excluded during processing. At scoring, "
    if bundle.imputation is None:
        return text + "a patient missing a model variable gets no prediction (no imputation)."
    return text + (
        f"a missing model value is imputed {bundle.imputation.m} times by the bundle's "
        "covariate-only imputer (`model/imputation.json`, fitted on the training set "
        "without the outcome) and the predictions pooled by Rubin's rules; an imputed "
        "value is a training patient's observed value, so a patient missing most "
        "predictors gets a wide, population-like prediction."
    )


def _sample_size(results: StudyResults) -> str:
    events = results.metrics.cohort.get("train", {}).get("events")
    icc = results.metrics.icc
    candidates = f" for {icc.n_features} candidate image features" if icc is not None else ""
    return f"Small development sample: {events} training events{candidates}."


def _report_caveats(results: StudyResults) -> list[str]:
    """What the study report states as caveats: PH doubts, few centres, selection notes."""
    items = []
    ph = results.table("ph_test")
    if ph is not None:
        doubtful = ph[(ph["term"] != "GLOBAL") & (ph["p"] < 0.05)]
        for row in doubtful.itertuples(index=False):
            items.append(
                f"Proportional hazards in doubt for {results.variable_label(row.term)} in the "
                f"{row.model} model (`cox.zph` P {fmt.pvalue(row.p)})."
            )
    clustered = results.table("clustered_se")
    if clustered is not None and int(clustered["n_centres"].min()) < FEW_CENTRES:
        n = int(clustered["n_centres"].min())
        items.append(f"Only {n} training centres: the SE clustered by centre is imprecise.")
    items += [f"Model selection: {note}" for note in dict.fromkeys(results.metrics.selection_notes)]
    return items


def _tripod() -> str:
    return "\n".join(f"- {item}: {_TRIPOD_TOPICS[item]}" for item in TRIPOD_ITEMS)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- writing and showing


def for_study(study_dir: str | Path, bundle: ModelBundle, frame: pd.DataFrame) -> str:
    """MODEL_CARD.md's text for the bundle stage: the study's results as the report reads
    them (``report.study.load``), ``bundle`` and the model frame's cohort counts."""
    from toolkit.report.study import load

    results = load(study_dir, Path(study_dir) / "results")
    cohort = cohort_table(frame, bundle.config.study.train_sets)
    return document(results, bundle, cohort)


_HEADING = re.compile(r"^(#+) ", re.M)


def section(results: StudyResults) -> str:
    """The report's model-card section: the bundle's MODEL_CARD.md as written, below the
    report's own heading (its title dropped, its headings one level down), or why none."""
    bundle = results.bundle
    if bundle is None:
        return f"No model card: {results.bundle_note}."
    if not bundle.model_card:
        return "No model card: this model bundle was written without one."
    body = bundle.model_card.split("\n", 1)[1].lstrip("\n")
    return (
        f"The text of `model/{MODEL_CARD_FILE}`, written with the locked model bundle "
        f"(model.json SHA-256 `{bundle.sha256}`).\n\n" + _HEADING.sub(r"#\1 ", body)
    )
