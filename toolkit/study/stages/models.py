"""models: clinical + signature scores -> the study's Cox models (``nomograms.STUDY_MODELS``).

``study.nomograms`` does the work: the univariate screen and stepwise AIC
(``select``), the final Efron fits (``fit_model``) on the training set, and
each nomogram's points (``nomogram_for``). The models are the signature, clinical and
integrated ones, and, when the radiomics signature exists (``scores_radiomics``), the
radiomics signature, integrated radiomics (clinical + radiomics) and combined (clinical
+ both signatures) ones: every model with clinical variables has a nomogram. Writes
``results/models.json``, ``results/nomogram_<model>.json`` per nomogram, the tables
``univariate``, ``multivariable_<model>`` per nomogram and ``ph_test`` (``cox.zph`` of
every nomogram, ``nomograms.ph_test``), and the nomogram, forest and
``schoenfeld_<model>`` figures; with ``study.centre``, the table ``clustered_se``
(the nomograms' SEs clustered by centre beside the model-based ones).

Under multiple imputation (``clinical.imputed``) ``study.imputed.study_models`` makes
the three models without radiomics (the radiomics models are not made there: a note in
models.json says so): majority-rule selection over the ``m`` completed sets and the Cox
fits pooled by Rubin's rules, written as models.json's ``FittedModel`` s (the same
contract) and the tables ``pooled_estimates`` (estimate, within, between, SE, df,
FMI, P per model and term) and ``majority_selection`` (how often each variable was
chosen). What needs one data set (the ``univariate`` table, the nomograms' axis
ranges, the PH test, the clustered SEs) uses the first completed set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from toolkit.artifacts import file_hash, save_figure, write_parquet
from toolkit.contracts import NomogramSpec, StudyModels
from toolkit.study._stages import Cached
from toolkit.study.context import Context


def model_frame(clinical, scores: pd.DataFrame, scores_radiomics=None) -> pd.DataFrame:
    """The clinical frame with each patient's ``signature`` score (and its
    ``signature_radiomics`` score when ``scores_radiomics`` is given): what the models
    take."""
    return _with_scores(clinical.frame, scores, scores_radiomics)


def model_frames(clinical, scores: pd.DataFrame, scores_radiomics=None) -> list[pd.DataFrame]:
    """The model frame of each completed set under multiple imputation, else the one frame."""
    if not clinical.imputed:
        return [model_frame(clinical, scores, scores_radiomics)]
    return [_with_scores(c, scores, scores_radiomics) for c in clinical.completed]


def _with_scores(frame: pd.DataFrame, scores: pd.DataFrame, scores_radiomics) -> pd.DataFrame:
    from toolkit.study.nomograms import RADIOMICS

    frame = frame.copy()
    frame["signature"] = scores.loc[frame.index, "signature"].to_numpy(float)
    if scores_radiomics is not None:
        frame[RADIOMICS] = scores_radiomics.loc[frame.index, RADIOMICS].to_numpy(float)
    return frame


def model_names(clinical, scores_radiomics) -> list[str]:
    """The models this stage makes: every one of ``STUDY_MODELS`` whose scores exist (the
    three without radiomics under multiple imputation)."""
    from toolkit.study.nomograms import DEEP, RADIOMICS, specs_for

    columns = [DEEP] if scores_radiomics is None or clinical.imputed else [DEEP, RADIOMICS]
    return [spec.name for spec in specs_for(columns)]


def _nomogram_figure(ctx: Context, nomo, name: str) -> None:
    from toolkit.plots._stamp import close
    from toolkit.plots.nomogram import nomogram_figure
    from toolkit.study.nomograms import DEEP, MODEL_SPECS

    spec = MODEL_SPECS[name]
    stamp = ctx.stamp(network=DEEP in spec.scores)
    fig = nomogram_figure(nomo, title=spec.label, stamp=stamp)
    save_figure(fig, ctx.paths.figures / f"nomogram_{name}")
    close(fig)


def _forest(ctx: Context, models) -> None:
    from toolkit.plots._stamp import close
    from toolkit.plots.forest import forest_figure
    from toolkit.study.nomograms import MODEL_SPECS, SCORE_LABELS, coefficient_table, nomogram_names

    tables = {
        f"{MODEL_SPECS[m].label.removesuffix(' nomogram')} model": coefficient_table(models[m])
        for m in nomogram_names(models)
    }
    labels = dict(SCORE_LABELS)
    for v in ctx.config.variables:
        labels[v.name] = v.label or v.name
        for level in v.category_labels():
            labels[f"{v.name}[{level}]"] = f"{v.label or v.name}: {level}"
    fig = forest_figure(tables, labels=labels, stamp=ctx.stamp())
    save_figure(fig, ctx.paths.figures / "forest")
    close(fig)


def _ph_tests(ctx: Context, models, train: pd.DataFrame, prov: dict[str, Any]) -> None:
    """The proportional-hazards test of every nomogram: table ph_test, Schoenfeld figures."""
    from toolkit.plots._stamp import close
    from toolkit.plots.schoenfeld import schoenfeld_figure
    from toolkit.study.nomograms import (
        DEEP,
        MODEL_SPECS,
        PH_TRANSFORM,
        SCORE_LABELS,
        nomogram_names,
        ph_test,
    )

    labels = {**SCORE_LABELS, **{v.name: v.label or v.name for v in ctx.config.variables}}
    tables = []
    for name in nomogram_names(models):
        result = ph_test(models[name], train)
        table = result.table.rename_axis("term").reset_index()
        tables.append(table.assign(model=name, transform=PH_TRANSFORM))
        fig = schoenfeld_figure(
            result,
            labels,
            title=f"{MODEL_SPECS[name].label}: scaled Schoenfeld residuals",
            time_label="Time (Kaplan–Meier scale)" if PH_TRANSFORM == "km" else "Time",
            stamp=ctx.stamp(network=DEEP in MODEL_SPECS[name].scores),
        )
        save_figure(fig, ctx.paths.figures / f"schoenfeld_{name}")
        close(fig)
    columns = ["model", "term", "chisq", "df", "p", "transform"]
    ph = pd.concat(tables, ignore_index=True)[columns]
    write_parquet(ctx.paths.tables / "ph_test.parquet", ph, prov)


def load_models(ctx: Context) -> dict[str, Any]:
    """The stage's results read back from models.json and the nomogram files."""
    from toolkit.stats.nomogram import Nomogram
    from toolkit.study.nomograms import FittedModel, nomogram_names

    saved = StudyModels.read(ctx.paths.results / "models.json", model=FittedModel)
    return {
        "models": dict(saved.models),
        "nomograms": {
            m: Nomogram.from_spec(NomogramSpec.read(_nomogram_path(ctx, m)))
            for m in nomogram_names(saved.models)
        },
        "selection_notes": list(saved.selection_notes),
    }


def _nomogram_path(ctx: Context, name: str):
    return ctx.paths.results / f"nomogram_{name}.json"


def _fit(ctx: Context, clinical, frames: list[pd.DataFrame], prov: dict[str, Any]):
    from toolkit.study import nomograms as nm

    train = frames[0][frames[0]["set"].isin(ctx.config.study.train_sets)]
    chosen = nm.select(frames[0], ctx.config)
    if clinical.imputed:
        models, notes = _pooled(ctx, frames, prov)
    else:
        times = ctx.config.validation.times
        models = {
            name: nm.fit_model(name, train, variables, chosen.levels, times)
            for name, variables in chosen.variables.items()
        }
        notes = chosen.notes
    write_parquet(ctx.paths.tables / "univariate.parquet", chosen.univariate, prov)
    nomograms = {}
    for name in nm.nomogram_names(models):
        table = nm.coefficient_table(models[name])
        write_parquet(ctx.paths.tables / f"multivariable_{name}.parquet", table, prov)
        nomograms[name] = nm.nomogram_for(models[name], train, ctx.config)
        nomograms[name].spec(provenance=prov).write(_nomogram_path(ctx, name))
        _nomogram_figure(ctx, nomograms[name], name)
    _ph_tests(ctx, models, train, prov)
    if ctx.config.study.centre:
        clustered = [
            nm.clustered_table(models[n], train).assign(model=n) for n in nm.nomogram_names(models)
        ]
        table = pd.concat(clustered, ignore_index=True)
        write_parquet(ctx.paths.tables / "clustered_se.parquet", table, prov)
    return {"models": models, "nomograms": nomograms, "selection_notes": notes}


def _pooled(ctx: Context, frames: list[pd.DataFrame], prov: dict[str, Any]):
    """The three pooled models (``imputed.study_models``) and their two tables."""
    from toolkit.study import imputed

    out = imputed.study_models(frames, ctx.config)
    table = imputed.pooled_table(out.pooled)
    write_parquet(ctx.paths.tables / "pooled_estimates.parquet", table, prov)
    counts = out.selection.counts.assign(m=out.selection.m)
    write_parquet(ctx.paths.tables / "majority_selection.parquet", counts, prov)
    return out.models, out.selection.notes


def run(ctx: Context, given: Mapping[str, Any]) -> Cached:
    """Hands on ``models`` (name -> ``FittedModel``), ``nomograms`` (name -> ``Nomogram``)
    and ``selection_notes`` (what the screen and stepwise AIC reported)."""
    from toolkit.study.nomograms import nomogram_names

    clinical, scores = given["clinical"], given["scores"]
    names = model_names(clinical, given["scores_radiomics"])
    radiomics = given["scores_radiomics"] if "radiomics" in names else None
    files = (
        ctx.paths.results / "models.json",
        *(_nomogram_path(ctx, m) for m in nomogram_names(names)),
    )
    inputs = {
        "scores": file_hash(ctx.paths.tables / "scores.parquet"),
        "clinical": ctx.clinical_hash(),
    }
    if given["scores_radiomics"] is not None:  # its models, or the note that none is made
        inputs["scores_radiomics"] = file_hash(ctx.paths.tables / "scores_radiomics.parquet")

    def compute(key: str) -> dict[str, Any]:
        prov = ctx.prov(key, inputs)
        _remove_others(ctx, names)
        fitted = _fit(ctx, clinical, model_frames(clinical, scores, radiomics), prov)
        models = fitted["models"]
        notes = list(fitted["selection_notes"])
        if clinical.imputed and given["scores_radiomics"] is not None:
            notes.append(NOT_IMPUTED)
        StudyModels(models, tuple(notes), prov).write(files[0])
        _forest(ctx, models)
        return fitted | {"selection_notes": notes}

    return Cached(
        inputs=inputs,
        settings={
            "validation": ctx.config.validation.model_dump(),
            "variables": [v.model_dump() for v in ctx.config.variables],
        },
        files=files,
        compute=compute,
        load=lambda: load_models(ctx),
    )


def _remove_others(ctx: Context, names: list[str]) -> None:
    """The files of a nomogram this run does not make (an earlier run with radiomics made
    it) are removed, so that no reader takes a stale model for one of this run's."""
    from toolkit.study.nomograms import STUDY_MODELS

    for spec in STUDY_MODELS:
        if spec.clinical and spec.name not in names:
            name = spec.name
            for path in (
                _nomogram_path(ctx, name),
                ctx.paths.tables / f"multivariable_{name}.parquet",
                *(
                    ctx.paths.figures / f"{kind}_{name}.{suffix}"
                    for kind in FIGURE_KINDS
                    for suffix in ("png", "svg")
                ),
            ):
                path.unlink(missing_ok=True)


# the figures the models stage (nomogram, schoenfeld) and the validate stage (calibration per
# set) draw per nomogram
FIGURE_KINDS = ("nomogram", "schoenfeld", "calibration_train", "calibration_validation")

NOT_IMPUTED = (
    "radiomics models: not made under multiple imputation (the pooled models are the "
    "signature, clinical and integrated ones)"
)
