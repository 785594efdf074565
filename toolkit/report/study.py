"""What templates/study.qmd shows: study results read from ``results/``, never recomputed.

Each function returns an HTML fragment (tables, figure panels) or Markdown text
that a report cell displays. A missing artifact gives a visible note naming
the file, not a crash, so a partial run still renders.
"""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from toolkit.config import load_study, study_from_mapping
from toolkit.contracts import InternalValidation, Metrics, NomogramSpec, RCheck, SignatureSpec
from toolkit.study.bundle import BundleError, ModelBundle
from toolkit.study.nomograms import SCORE_LABELS, STUDY_MODELS

# the study's sets and models, named once (by the stage that computes them)
from toolkit.study.validate import MODELS as MODELS
from toolkit.study.validate import SETS as SETS

MODEL_LABELS = {spec.name: spec.label for spec in STUDY_MODELS}
SET_LABELS = {"train": "Training", "validation": "Validation"}

_Record = TypeVar("_Record", RCheck, SignatureSpec, InternalValidation)


@dataclass
class StudyResults:
    """The contents of STUDY_DIR/results, read through toolkit.contracts, and the study's
    settings: study.toml as written, validated by :func:`toolkit.config.load_study`.
    ``r_check``, ``signature`` and ``internal_validation`` are None when the run did not
    write them; ``nomograms`` has the validated models whose nomogram_<model>.json exists
    (in ``MODELS`` order); ``bundle`` is
    STUDY_DIR/model/ (the locked model bundle), None with ``bundle_note`` saying why when it
    is absent or unreadable."""

    study_dir: Path
    results: Path
    metrics: Metrics
    settings: dict[str, Any]
    r_check: RCheck | None = None
    signature: SignatureSpec | None = None
    nomograms: dict[str, NomogramSpec] = field(default_factory=dict)
    internal_validation: InternalValidation | None = None
    bundle: ModelBundle | None = None
    bundle_note: str = ""

    def table(self, name: str) -> pd.DataFrame | None:
        path = self.results / "tables" / f"{name}.parquet"
        return pd.read_parquet(path) if path.is_file() else None

    def figure(self, name: str) -> Path | None:
        path = self.results / "figures" / f"{name}.png"
        return path if path.is_file() else None

    @property
    def time_unit(self) -> str:
        return str(self.settings.get("study", {}).get("time_unit", "months"))

    @property
    def synthetic(self) -> bool:
        declared = self.settings.get("study", {}).get("synthetic")
        return bool(self.metrics.provenance.get("synthetic", declared))

    @property
    def weights(self) -> str:
        return str(self.metrics.provenance.get("weights", "unknown"))

    def variable_label(self, name: str) -> str:
        for variable in self.settings.get("variables", []):
            if variable.get("name") == name:
                return str(variable.get("label", name))
        return SCORE_LABELS.get(name, name)


def _settings(study_dir: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """study.toml from STUDY_DIR or STUDY_DIR/cohort, else the copy metrics.json recorded
    (``provenance.settings.study_toml``); either validated as the study validates it."""
    for toml in (study_dir / "study.toml", study_dir / "cohort" / "study.toml"):
        if toml.is_file():
            return load_study(toml).as_written()
    recorded = metrics.get("provenance", {}).get("settings", {})
    written = recorded.get("study_toml") if isinstance(recorded, dict) else None
    if not isinstance(written, dict):
        return {}
    return study_from_mapping(written, "metrics.json's study_toml").as_written()


def load(study_dir: str | Path | None = None, results: str | Path | None = None) -> StudyResults:
    """Read STUDY_DIR/results (default: $SIGKIT_STUDY_DIR, set by the renderer; ``results``
    default: $SIGKIT_RESULTS, else STUDY_DIR/results)."""
    if study_dir is None:
        study_dir = os.environ.get("SIGKIT_STUDY_DIR")
        if not study_dir:
            raise RuntimeError(
                "SIGKIT_STUDY_DIR is not set: render with `sigkit report STUDY_DIR`, or set it "
                "to the study folder before `quarto render toolkit/report/templates/study.qmd`"
            )
    study_dir = Path(study_dir)
    if results is None:
        results = os.environ.get("SIGKIT_RESULTS", study_dir / "results")
    results = Path(results)
    if not (results / "metrics.json").is_file():
        raise FileNotFoundError(f"{results / 'metrics.json'} is missing")
    metrics = Metrics.read(results / "metrics.json")
    bundle, bundle_note = _bundle(study_dir / "model")
    return StudyResults(
        study_dir=study_dir,
        results=results,
        metrics=metrics,
        settings=_settings(study_dir, metrics.to_json()),
        r_check=_read(RCheck, results / "r_check.json"),
        signature=_read(SignatureSpec, results / "signature.json"),
        nomograms={
            model: NomogramSpec.read(results / f"nomogram_{model}.json")
            for model in MODELS
            if model in _validated(metrics) and (results / f"nomogram_{model}.json").is_file()
        },
        internal_validation=_read(InternalValidation, results / "internal_validation.json"),
        bundle=bundle,
        bundle_note=bundle_note,
    )


def _validated(metrics: Metrics) -> set[str]:
    """The models the run validated: metrics.json's ``cindex`` (a nomogram file of another
    model is not this run's)."""
    return {m for per_set in metrics.cindex.values() for m in per_set}


def _bundle(model_dir: Path) -> tuple[ModelBundle | None, str]:
    """The locked model bundle of ``model_dir``, or None and why (absent, or refused by
    ``ModelBundle.load``: a changed file, another format)."""
    if not model_dir.is_dir():
        return None, f"{model_dir.name}/ (the locked model bundle) was not produced by this run"
    try:
        return ModelBundle.load(model_dir), ""
    except BundleError as error:
        return None, str(error)


def sections(results: StudyResults) -> frozenset[str]:
    """The report's sections that depend on the run: ``sec-internal`` when it has results,
    ``sec-model-card`` when the model bundle has a model card."""
    present = {"sec-internal"} if results.internal_validation is not None else set()
    if results.bundle is not None and results.bundle.model_card:
        present.add("sec-model-card")
    return frozenset(present)


def _read(record: type[_Record], path: Path) -> _Record | None:
    """The record of ``path``, or None when this run did not write it."""
    return record.read(path) if path.is_file() else None


def missing(what: str) -> str:
    """A visible note for an artifact this run did not produce."""
    return f'<p class="missing">Not produced by this run: <code>{html.escape(what)}</code>.</p>'


def image(path: Path | None, alt: str, *, width: str | None = None) -> str:
    """A PNG as an inline data URI (no file beside the page, no network)."""
    if path is None:
        return missing(f"results/figures/{alt}.png")
    data = base64.b64encode(path.read_bytes()).decode()
    style = f' style="width:{width}"' if width else ""
    return f'<img class="figure-img" src="data:image/png;base64,{data}" alt="{alt}"{style}>'


def panels(
    results: StudyResults, items: list[tuple[str, str]], columns: int = 2, first: str = "A"
) -> str:
    """Figures side by side with panel letters (A), (B), … and a short title each."""
    letters = "ABCDEFGHIJKLMNOP"
    cells = []
    for letter, (name, title) in zip(letters[letters.index(first) :], items, strict=False):
        mark = f"<b>({letter})</b> " if len(items) > 1 else ""
        cells.append(
            f'<div class="panel"><div class="panel-title">{mark}'
            f"{html.escape(title)}</div>{image(results.figure(name), name)}</div>"
        )
    return f'<div class="panel-grid cols-{columns}">{"".join(cells)}</div>'


def best_model(results: StudyResults) -> str | None:
    """The nomogram of the lowest training AIC (table ``models_compared``'s ``best_aic``),
    None when the table is absent."""
    table = results.table("models_compared")
    if table is None or not table["best_aic"].any():
        return None
    return str(table.loc[table["best_aic"], "model"].iloc[0])


def best_nomogram_panel(results: StudyResults) -> str:
    """The nomogram figure of :func:`best_model`."""
    best = best_model(results)
    if best is None:
        return missing("results/tables/models_compared.parquet")
    return panels(results, [(f"nomogram_{best}", MODEL_LABELS[best])], columns=1)


# ---------------------------------------------------------------- banners and text


def provenance_banner(results: StudyResults) -> str:
    """A warning callout when the cohort is synthetic or the network weights are random."""
    notes = []
    if results.synthetic:
        notes.append(
            "The cohort is <b>synthetic</b> (sigkit's built-in phantom cohort): no patient "
            "data. Its numbers demonstrate the pipeline and must not be read as clinical findings."
        )
    if results.weights == "random":
        notes.append(
            "The DenseNet-121 weights are <b>random</b> (no ImageNet weights were installed): "
            "the deep features, the signature built on them and the CAM heat maps carry no "
            "learned image knowledge."
        )
    if not notes:
        return ""
    items = "".join(f"<li>{n}</li>" for n in notes)
    return f'<div class="callout callout-warning" id="provenance-warning"><ul>{items}</ul></div>'


def cohort_sentence(results: StudyResults) -> str:
    cohort = results.metrics.cohort
    parts = [
        f"{SET_LABELS[s].lower()} n = {cohort[s]['n']} ({cohort[s]['events']} events)"
        for s in SETS
        if s in cohort
    ]
    return "; ".join(parts)


def km_panels(results: StudyResults) -> str:
    """Figure 2: each outcome's training-vs-validation KM, then the risk groups per set."""
    items = [("km_train_vs_validation", f"{_outcome_label(results)}, training vs validation")]
    suffix = "_train_vs_validation"
    for path in sorted((results.results / "figures").glob(f"km_*{suffix}.png")):
        key = path.stem[len("km_") : -len(suffix)]
        if key:
            items.append((path.stem, f"{key.upper()}, training vs validation"))
    items += [
        ("km_risk_train", "Risk groups, training set"),
        ("km_risk_validation", "Risk groups, validation set"),
    ]
    return panels(results, items, columns=2)


def _outcome_label(results: StudyResults) -> str:
    return str(results.settings.get("outcome", {}).get("label", "Overall survival"))


def cam_panels(results: StudyResults, limit: int = 4) -> str:
    """Figure 3: the CAM overlays the study wrote (cam_<patient>.png), two per row."""
    names = sorted(p.stem for p in (results.results / "figures").glob("cam_*.png"))[:limit]
    if not names:
        return missing("results/figures/cam_<patient>.png")
    return panels(results, [(n, f"Patient {n[len('cam_') :]}") for n in names], columns=2)
