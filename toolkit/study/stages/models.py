"""models: clinical + signature scores -> the signature, clinical and integrated Cox models.

``study.nomograms`` does the work: the univariate screen and stepwise AIC
(``select``), the final Efron fits (``fit_model``) on the training set, and
each nomogram's points (``nomogram_for``). Writes ``results/models.json``,
``results/nomogram_{clinical,integrated}.json``, the tables ``univariate``,
``multivariable_{clinical,integrated}`` and ``ph_test`` (``cox.zph`` of both
nomograms, ``nomograms.ph_test``), and the nomogram, forest and
``schoenfeld_<model>`` figures; with ``study.centre``, the table ``clustered_se``
(the nomograms' SEs clustered by centre beside the model-based ones).

Under multiple imputation (``clinical.imputed``) ``study.imputed.study_models`` makes
the three models: majority-rule selection over the ``m`` completed sets and the Cox
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

NOMOGRAMS = ("clinical", "integrated")


def model_frame(clinical, scores: pd.DataFrame) -> pd.DataFrame:
    """The clinical frame with each patient's ``signature`` score: what the models take."""
    return _with_signature(clinical.frame, scores)


def model_frames(clinical, scores: pd.DataFrame) -> list[pd.DataFrame]:
    """The model frame of each completed set under multiple imputation, else the one frame."""
    if not clinical.imputed:
        return [model_frame(clinical, scores)]
    return [_with_signature(c, scores) for c in clinical.completed]


def _with_signature(frame: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["signature"] = scores.loc[frame.index, "signature"].to_numpy(float)
    return frame


def _nomogram_figure(ctx: Context, nomo, name: str) -> None:
    from toolkit.plots._stamp import close
    from toolkit.plots.nomogram import nomogram_figure

    title = f"{name.capitalize()} nomogram"
    fig = nomogram_figure(nomo, title=title, stamp=ctx.stamp(network=name != "clinical"))
    save_figure(fig, ctx.paths.figures / f"nomogram_{name}")
    close(fig)


def _forest(ctx: Context, models) -> None:
    from toolkit.plots._stamp import close
    from toolkit.plots.forest import forest_figure
    from toolkit.study.nomograms import coefficient_table

    tables = {
        "Clinical model": coefficient_table(models["clinical"]),
        "Integrated model": coefficient_table(models["integrated"]),
    }
    labels = {"signature": "DL signature"}
    for v in ctx.config.variables:
        labels[v.name] = v.label or v.name
        for level in v.category_labels():
            labels[f"{v.name}[{level}]"] = f"{v.label or v.name}: {level}"
    fig = forest_figure(tables, labels=labels, stamp=ctx.stamp())
    save_figure(fig, ctx.paths.figures / "forest")
    close(fig)


def _ph_tests(ctx: Context, models, train: pd.DataFrame, prov: dict[str, Any]) -> None:
    """The proportional-hazards test of both nomograms: table ph_test, Schoenfeld figures."""
    from toolkit.plots._stamp import close
    from toolkit.plots.schoenfeld import schoenfeld_figure
    from toolkit.study.nomograms import PH_TRANSFORM, ph_test

    labels = {
        "signature": "DL signature",
        **{v.name: v.label or v.name for v in ctx.config.variables},
    }
    tables = []
    for name in NOMOGRAMS:
        result = ph_test(models[name], train)
        table = result.table.rename_axis("term").reset_index()
        tables.append(table.assign(model=name, transform=PH_TRANSFORM))
        fig = schoenfeld_figure(
            result,
            labels,
            title=f"{name.capitalize()} nomogram: scaled Schoenfeld residuals",
            time_label="Time (Kaplan–Meier scale)" if PH_TRANSFORM == "km" else "Time",
            stamp=ctx.stamp(network=name != "clinical"),
        )
        save_figure(fig, ctx.paths.figures / f"schoenfeld_{name}")
        close(fig)
    columns = ["model", "term", "chisq", "df", "p", "transform"]
    ph = pd.concat(tables, ignore_index=True)[columns]
    write_parquet(ctx.paths.tables / "ph_test.parquet", ph, prov)


def load_models(ctx: Context) -> dict[str, Any]:
    """The stage's results read back from models.json and the nomogram files."""
    from toolkit.stats.nomogram import Nomogram
    from toolkit.study.nomograms import FittedModel

    saved = StudyModels.read(ctx.paths.results / "models.json", model=FittedModel)
    return {
        "models": dict(saved.models),
        "nomograms": {
            m: Nomogram.from_spec(NomogramSpec.read(_nomogram_path(ctx, m))) for m in NOMOGRAMS
        },
        "selection_notes": list(saved.selection_notes),
    }


def _nomogram_path(ctx: Context, name: str):
    return ctx.paths.results / f"nomogram_{name}.json"


def _fit(ctx: Context, clinical, scores: pd.DataFrame, prov: dict[str, Any]) -> dict[str, Any]:
    from toolkit.study import nomograms as nm

    frames = model_frames(clinical, scores)
    train = frames[0][frames[0]["set"].isin(ctx.config.study.train_sets)]
    chosen = nm.select(frames[0], ctx.config)
    if clinical.imputed:
        models, notes = _pooled(ctx, frames, prov)
    else:
        times = ctx.config.validation.times
        levels = chosen.levels
        models = {
            "signature": nm.fit_model("signature", train, ["signature"], levels, times),
            "clinical": nm.fit_model("clinical", train, chosen.clinical, levels, times),
            "integrated": nm.fit_model("integrated", train, chosen.integrated, levels, times),
        }
        notes = chosen.notes
    write_parquet(ctx.paths.tables / "univariate.parquet", chosen.univariate, prov)
    nomograms = {}
    for name in NOMOGRAMS:
        table = nm.coefficient_table(models[name])
        write_parquet(ctx.paths.tables / f"multivariable_{name}.parquet", table, prov)
        nomograms[name] = nm.nomogram_for(models[name], train, ctx.config)
        nomograms[name].spec(provenance=prov).write(_nomogram_path(ctx, name))
        _nomogram_figure(ctx, nomograms[name], name)
    _ph_tests(ctx, models, train, prov)
    if ctx.config.study.centre:
        clustered = [nm.clustered_table(models[n], train).assign(model=n) for n in NOMOGRAMS]
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
    clinical, scores = given["clinical"], given["scores"]
    files = (
        ctx.paths.results / "models.json",
        *(_nomogram_path(ctx, m) for m in NOMOGRAMS),
    )
    inputs = {
        "scores": file_hash(ctx.paths.tables / "scores.parquet"),
        "clinical": ctx.clinical_hash(),
    }

    def compute(key: str) -> dict[str, Any]:
        prov = ctx.prov(key, inputs)
        fitted = _fit(ctx, clinical, scores, prov)
        models = fitted["models"]
        StudyModels(models, tuple(fitted["selection_notes"]), prov).write(files[0])
        _forest(ctx, models)
        return fitted

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
