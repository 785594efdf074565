"""`sigkit study run STUDY_DIR`: the whole study, stage by stage, into STUDY_DIR/results.

First a pre-flight check of study.toml, the manifest and the clinical table,
which reports all their problems at once (``toolkit.config.StudyInputError``)
before any imaging work. Then the stages (each skipped when its inputs and
settings are unchanged, see ``_stages``): preprocess -> extract -> signature ->
models -> validate -> r_check -> cam, then the report. STUDY_DIR holds
study.toml (or a ``cohort/`` folder that does); crops go to ``STUDY_DIR/crops``,
features to ``STUDY_DIR/features/features.parquet``, results to
``STUDY_DIR/results`` and the report to ``STUDY_DIR/report``. A failed stage
raises and leaves the results of earlier stages as they were; an R cross-check
mismatch is raised (``RCheckFailed``) only after every output has been written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from toolkit.artifacts import (
    file_hash,
    provenance,
    read_json,
    save_figure,
    write_json,
    write_parquet,
)
from toolkit.config import (
    StudyConfig,
    check_inputs,
    load_study,
    prepare_clinical,
    read_clinical,
)
from toolkit.imaging.manifest import study_manifest
from toolkit.study._stages import StageLog, StudyInUseError, study_lock


class RCheckFailed(RuntimeError):
    """The R cross-check found a number that differs from R beyond its tolerance."""


@dataclass
class StudyPaths:
    study_dir: Path
    cohort: Path

    @property
    def crops(self) -> Path:
        return self.study_dir / "crops"

    @property
    def features(self) -> Path:
        return self.study_dir / "features" / "features.parquet"

    @property
    def results(self) -> Path:
        return self.study_dir / "results"

    @property
    def tables(self) -> Path:
        return self.results / "tables"

    @property
    def figures(self) -> Path:
        return self.results / "figures"


def resolve(study_dir: str | os.PathLike[str]) -> StudyPaths:
    """STUDY_DIR with study.toml, or with a cohort/ folder holding it."""
    study_dir = Path(study_dir)
    for cohort in (study_dir, study_dir / "cohort"):
        if (cohort / "study.toml").is_file():
            return StudyPaths(study_dir, cohort)
    raise FileNotFoundError(f"no study.toml in {study_dir} or {study_dir / 'cohort'}")


@dataclass
class Context:
    """What the stages share within one run."""

    paths: StudyPaths
    config: StudyConfig
    raw_settings: dict[str, Any]
    weights_source: str | None
    workers: int | None
    batch_size: int
    echo: Callable[[str], None]
    log: StageLog
    weights_origin: str = "unknown"
    weights_sha256: str = ""
    exclusions: list[pd.DataFrame] = field(default_factory=list)

    @property
    def synthetic(self) -> bool:
        return bool(self.config.study.synthetic)

    def prov(self, key: str, inputs: dict[str, str] | None = None) -> dict[str, Any]:
        block = provenance(
            inputs=inputs or {},
            settings={"stage_key": key, "study_toml": self.raw_settings},
            weights=self.weights_origin,
            synthetic=self.synthetic,
        )
        block["weights_sha256"] = self.weights_sha256
        return block

    def stamp(self, network: bool = True):
        """The figure stamp; ``network=False`` for figures the network played no part in."""
        from toolkit.plots._stamp import Stamp

        return Stamp(synthetic=self.synthetic, weights=self.weights_origin if network else None)


def _image_fingerprint(ctx: Context) -> str:
    """Manifest hash plus every image's size and mtime (hashing gigabytes each run is slow)."""
    manifest_path = ctx.paths.cohort / ctx.config.study.manifest
    manifest = study_manifest(ctx.config, ctx.paths.cohort).frame
    columns = [*ctx.config.imaging.phases, *(f"mask_{r}" for r in ctx.config.imaging.reader_order)]
    parts = [file_hash(manifest_path)]
    for column in columns:
        for rel in manifest[column].astype(str):
            path = manifest_path.parent / rel
            stat = path.stat() if path.exists() else None
            parts.append(f"{rel}:{stat.st_size}:{stat.st_mtime_ns}" if stat else f"{rel}:absent")
    from toolkit.artifacts import settings_hash

    return settings_hash({"files": parts})


def stage_preprocess(ctx: Context) -> None:
    from toolkit.imaging.preprocess import PreprocessSettings, preprocess_cohort

    manifest_path = ctx.paths.cohort / ctx.config.study.manifest
    settings = ctx.config.imaging.model_dump(by_alias=True)

    def work(key: str) -> None:
        workers = ctx.workers if ctx.workers is not None else 2
        summary = preprocess_cohort(
            manifest_path,
            ctx.paths.crops,
            workers=workers,
            progress=False,
            settings=PreprocessSettings.from_config(ctx.config),
        )
        ctx.echo(f"    {summary}")

    ctx.log.run(
        "preprocess",
        inputs={"images": _image_fingerprint(ctx)},
        settings=settings,
        outputs=[ctx.paths.crops / "manifest.json"],
        work=work,
    )


def _weights(ctx: Context):
    from toolkit.deep.weights import load

    loaded = load(ctx.weights_source)
    ctx.weights_origin = loaded.origin
    ctx.weights_sha256 = getattr(loaded, "sha256", "")
    return loaded


def stage_extract(ctx: Context) -> None:
    from toolkit.deep.extract import extract_crops_dir

    loaded = _weights(ctx)
    if loaded.origin == "random":
        ctx.echo("    DenseNet-121 with RANDOM weights: every output is labelled so")
    crops_hash = file_hash(ctx.paths.crops / "manifest.json")

    def work(key: str) -> None:
        extract_crops_dir(
            ctx.paths.crops, ctx.paths.features, params=loaded, batch_size=ctx.batch_size
        )

    ctx.log.run(
        "extract",
        inputs={"crops": crops_hash, "weights": ctx.weights_sha256 or loaded.origin},
        settings={"batch_size": ctx.batch_size, "dtype": "float32"},
        outputs=[ctx.paths.features],
        work=work,
    )


def load_features(ctx: Context) -> pd.DataFrame:
    from toolkit.artifacts import read_parquet_provenance

    prov = read_parquet_provenance(ctx.paths.features)
    ctx.weights_origin = str(prov.get("weights", ctx.weights_origin))
    ctx.weights_sha256 = str(prov.get("sha256", prov.get("weights_sha256", ctx.weights_sha256)))
    table = pd.read_parquet(ctx.paths.features)
    table["patient"] = table["patient"].astype(str)
    table["reader"] = table["reader"].astype(str)
    return table


def clinical_data(ctx: Context, features: pd.DataFrame):
    """The clinical frame restricted to patients with features; exclusions listed."""
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
    return data, exclusions


def _preprocess_failures(ctx: Context) -> dict[str, str]:
    path = ctx.paths.crops / "failures.csv"
    if not path.is_file():
        return {}
    frame = pd.read_csv(path, dtype=str)
    if frame.empty:
        return {}
    return {str(r.patient): f"{r.stage}: {r.reason}" for r in frame.itertuples(index=False)}


def _clinical_hash(ctx: Context) -> str:
    return file_hash(ctx.paths.cohort / ctx.config.study.clinical)


def stage_signature(ctx: Context, features: pd.DataFrame, clinical) -> None:
    from toolkit.study import signature as sig

    settings = ctx.config.signature.model_dump()
    outputs = [ctx.paths.results / "signature.json", ctx.paths.tables / "scores.parquet"]
    inputs = {"features": file_hash(ctx.paths.features), "clinical": _clinical_hash(ctx)}

    def work(key: str) -> None:
        built = sig.build(features, clinical.frame, ctx.config)
        prov = ctx.prov(key, inputs)
        icc_block = {
            "n_features": len(built.feature_names),
            "n_kept": len(built.kept) + built.n_copies,
            "n_degenerate_removed": built.n_copies,
            "threshold": ctx.config.signature.icc_threshold,
            "type": ctx.config.signature.icc_type,
        }
        write_parquet(
            ctx.paths.tables / "signature_features.parquet", sig.feature_table(built), prov
        )
        write_parquet(ctx.paths.tables / "signature_cv.parquet", built.cv, prov)
        write_parquet(ctx.paths.tables / "mrmr_ranking.parquet", built.ranking, prov)
        icc_table = pd.DataFrame({"feature": built.feature_names, "icc": built.icc})
        write_parquet(ctx.paths.tables / "icc.parquet", icc_table, prov)
        primary = features[features["reader"] == ctx.config.imaging.primary_reader]
        primary = primary.set_index("patient").loc[clinical.frame.index]
        scores = pd.DataFrame(
            {"set": clinical.frame["set"], "signature": built.signature.score(primary)},
            index=clinical.frame.index.rename("patient"),
        )
        write_parquet(ctx.paths.tables / "scores.parquet", scores, prov)
        write_json(
            ctx.paths.results / "signature.json",
            {**built.signature.to_json(), "icc": icc_block, "provenance": prov},
        )

    ctx.log.run("signature", inputs=inputs, settings=settings, outputs=outputs, work=work)


def model_frame(ctx: Context, clinical) -> pd.DataFrame:
    scores = pd.read_parquet(ctx.paths.tables / "scores.parquet")
    frame = clinical.frame.copy()
    frame["signature"] = scores.loc[frame.index, "signature"].to_numpy(float)
    return frame


def stage_models(ctx: Context, clinical) -> None:
    from toolkit.study import nomograms as nm

    outputs = [ctx.paths.results / "models.json"]
    outputs += [ctx.paths.results / f"nomogram_{m}.json" for m in ("clinical", "integrated")]
    inputs = {
        "scores": file_hash(ctx.paths.tables / "scores.parquet"),
        "clinical": _clinical_hash(ctx),
    }
    settings = {
        "validation": ctx.config.validation.model_dump(),
        "variables": [v.model_dump() for v in ctx.config.variables],
    }

    def work(key: str) -> None:
        frame = model_frame(ctx, clinical)
        train = frame[frame["set"].isin(ctx.config.study.train_sets)]
        chosen = nm.select(frame, ctx.config)
        times = ctx.config.validation.times
        levels = chosen.levels
        models = {
            "signature": nm.fit_model("signature", train, ["signature"], levels, times),
            "clinical": nm.fit_model("clinical", train, chosen.clinical, levels, times),
            "integrated": nm.fit_model("integrated", train, chosen.integrated, levels, times),
        }
        prov = ctx.prov(key, inputs)
        write_parquet(ctx.paths.tables / "univariate.parquet", chosen.univariate, prov)
        for name in ("clinical", "integrated"):
            table = nm.coefficient_table(models[name])
            write_parquet(ctx.paths.tables / f"multivariable_{name}.parquet", table, prov)
            nomo = nm.nomogram_for(models[name], train, ctx.config)
            write_json(
                ctx.paths.results / f"nomogram_{name}.json",
                {**nomo.to_json(), "provenance": prov},
            )
            _nomogram_figure(ctx, nomo, name)
        write_json(
            ctx.paths.results / "models.json",
            {
                "models": {k: m.to_json() for k, m in models.items()},
                "selection_notes": chosen.notes,
                "provenance": prov,
            },
        )
        _forest(ctx, models)

    ctx.log.run("models", inputs=inputs, settings=settings, outputs=outputs, work=work)


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


def load_models(ctx: Context):
    from toolkit.stats.nomogram import Nomogram
    from toolkit.study.nomograms import FittedModel

    data = read_json(ctx.paths.results / "models.json")
    models = {k: FittedModel.from_json(v) for k, v in data["models"].items()}
    nomograms = {
        m: Nomogram.from_json(read_json(ctx.paths.results / f"nomogram_{m}.json"))
        for m in ("clinical", "integrated")
    }
    return models, nomograms


def stage_validate(ctx: Context, clinical) -> None:
    from toolkit.study import figures
    from toolkit.study import validate as val

    outputs = [ctx.paths.results / "metrics.json"]
    inputs = {
        "models": file_hash(ctx.paths.results / "models.json"),
        "scores": file_hash(ctx.paths.tables / "scores.parquet"),
        "clinical": _clinical_hash(ctx),
    }
    settings = {"validation": ctx.config.validation.model_dump()}

    def work(key: str) -> None:
        frame = model_frame(ctx, clinical)
        models, _ = load_models(ctx)
        sets = val.set_rows(frame, ctx.config)
        prov = ctx.prov(key, inputs)
        cindex, comparisons = val.cindex(sets, models, ctx.config)
        calibration, calibration_table = val.calibration(sets, models, ctx.config)
        td_auc, auc_table = val.td_auc(sets, models, ctx.config)
        decision = val.decision(sets, models, ctx.config)
        groups, high = val.risk_groups(sets, models)
        signature = read_json(ctx.paths.results / "signature.json")
        metrics = {
            "provenance": prov,
            "cohort": val.cohort_counts(sets),
            "icc": signature.get("icc", {}),
            "cindex": cindex,
            "comparisons": comparisons,
            "calibration": calibration,
            "risk_groups": groups,
            "td_auc": td_auc,
            "median_survival": val.median_survival(sets, ctx.config),
            "selection_notes": read_json(ctx.paths.results / "models.json").get("selection_notes"),
        }
        write_parquet(ctx.paths.tables / "calibration.parquet", calibration_table, prov)
        write_parquet(ctx.paths.tables / "td_auc.parquet", auc_table, prov)
        decision_all = pd.concat([d.assign(set=s) for s, d in decision.items()], ignore_index=True)
        write_parquet(ctx.paths.tables / "decision.parquet", decision_all, prov)
        write_parquet(ctx.paths.tables / "cindex.parquet", _cindex_table(cindex), prov)
        write_parquet(ctx.paths.tables / "exclusions.parquet", _exclusions(ctx), prov)
        imputed = clinical.imputations.astype(str)
        write_parquet(ctx.paths.tables / "imputations.parquet", imputed, prov)
        _baseline(ctx, clinical, prov)
        figures.all_figures(ctx, sets, models, calibration_table, decision, td_auc, groups, high)
        write_json(ctx.paths.results / "metrics.json", metrics)

    ctx.log.run("validate", inputs=inputs, settings=settings, outputs=outputs, work=work)


def _cindex_table(cindex: dict[str, Any]) -> pd.DataFrame:
    rows = [
        {"set": s, "model": m, **entry}
        for s, models in cindex.items()
        for m, entry in models.items()
    ]
    return pd.DataFrame(rows)


def _exclusions(ctx: Context) -> pd.DataFrame:
    frames = [f for f in ctx.exclusions if not f.empty]
    if not frames:
        return pd.DataFrame({"patient": [], "stage": [], "reason": []}, dtype=str)
    return pd.concat(frames, ignore_index=True).astype(str)


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


def stage_r_check(ctx: Context, clinical) -> dict[str, Any]:
    from toolkit.study import validate as val
    from toolkit.study.rcheck import run_checks

    path = ctx.paths.results / "r_check.json"
    # metrics.json gains the stage timings at the end of every run: key on the validate stage
    inputs = {
        "validate": ctx.log.key_of("validate"),
        "models": file_hash(ctx.paths.results / "models.json"),
    }

    def work(key: str) -> None:
        frame = model_frame(ctx, clinical)
        models, nomograms = load_models(ctx)
        metrics = read_json(ctx.paths.results / "metrics.json")
        sets = val.set_rows(frame, ctx.config)
        result = run_checks(models, nomograms, metrics, sets, ctx.config.validation.times)
        write_json(path, {**result, "provenance": ctx.prov(key, inputs)})

    ctx.log.run("r_check", inputs=inputs, settings={}, outputs=[path], work=work)
    return read_json(path)


def stage_cam(ctx: Context, clinical, n_patients: int = 2) -> None:
    from toolkit.study.figures import cam_figures

    inputs = {
        "signature": file_hash(ctx.paths.results / "signature.json"),
        "crops": file_hash(ctx.paths.crops / "manifest.json"),
    }
    outputs = [ctx.paths.results / ".cam_done.json"]

    def work(key: str) -> None:
        written = cam_figures(ctx, clinical, n_patients)
        write_json(outputs[0], {"figures": written, "provenance": ctx.prov(key, inputs)})

    ctx.log.run(
        "cam",
        inputs=inputs,
        settings={"n": n_patients, "weights": ctx.weights_origin},
        outputs=outputs,
        work=work,
    )


def run_study(
    study_dir: str | os.PathLike[str],
    *,
    weights: str | None = None,
    workers: int | None = None,
    batch_size: int = 16,
    report: bool = True,
    wait: bool = False,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every stage; returns {"metrics", "r_check", "report"}. Raises RCheckFailed last.

    One run at a time per study folder: while another run holds the folder this
    raises ``StudyInUseError`` at once, or with ``wait`` waits for it to finish.
    study.toml, the manifest and the clinical table are checked first, before any
    stage runs: every problem found is raised at once in a ``StudyInputError``.
    """
    paths = resolve(study_dir)
    with study_lock(paths.study_dir, wait=wait, echo=echo):
        config = load_study(paths.cohort)
        check_inputs(config, paths.cohort)
        log = StageLog(paths.study_dir, echo=echo)
        ctx = Context(paths, config, config.as_written(), weights, workers, batch_size, echo, log)
        echo(f"sigkit study: {config.study.name} ({paths.study_dir})")
        if config.study.synthetic:
            echo("  SYNTHETIC cohort: every output is labelled so")
        r_check = _run_stages(ctx)
        outcome = {
            "metrics": read_json(paths.results / "metrics.json"),
            "r_check": r_check,
            "report": _report(ctx) if report else None,
        }
    if not r_check.get("passed"):
        failed = [c["name"] for c in r_check["checks"] if not c["passed"]]
        raise RCheckFailed(
            f"R cross-check FAILED for {len(failed)} statistic(s): {'; '.join(failed[:10])} "
            f"(see {paths.results / 'r_check.json'})"
        )
    return outcome


def _run_stages(ctx: Context) -> dict[str, Any]:
    """Every stage in order; metrics.json gains the stage timings. Returns the R check."""
    stage_preprocess(ctx)
    stage_extract(ctx)
    features = load_features(ctx)
    clinical, exclusions = clinical_data(ctx, features)
    ctx.exclusions.append(exclusions)
    stage_signature(ctx, features, clinical)
    stage_models(ctx, clinical)
    stage_validate(ctx, clinical)
    r_check = stage_r_check(ctx, clinical)
    stage_cam(ctx, clinical)
    metrics = read_json(ctx.paths.results / "metrics.json")
    metrics["stages"] = ctx.log.as_json()
    metrics["r_check_passed"] = bool(r_check.get("passed"))
    write_json(ctx.paths.results / "metrics.json", metrics)
    return r_check


def _report(ctx: Context) -> Path | None:
    """Render the report; a rendering failure is reported, not fatal (every result is
    already written)."""
    from toolkit.report import RenderError, render_study_report

    try:
        path = render_study_report(ctx.paths.study_dir)
    except RenderError as exc:
        ctx.echo(f"  report: could not be rendered: {exc}")
        return None
    ctx.echo(f"  report: {path}")
    return path


def summary_text(outcome: dict[str, Any]) -> str:
    """A readable summary: C-index table, comparisons, calibration RMSE, R check status."""
    metrics, r_check = outcome["metrics"], outcome["r_check"]
    prov = metrics.get("provenance", {})
    lines = ["", "Results" + (" (SYNTHETIC cohort)" if prov.get("synthetic") else "")]
    if prov.get("weights") == "random":
        lines.append("DenseNet-121 weights: RANDOM (no ImageNet weights installed)")
    lines.append(f"{'C-index (95% CI)':<22}{'training':>24}{'validation':>24}")
    for model in ("signature", "clinical", "integrated"):
        cells = []
        for s in ("train", "validation"):
            e = metrics["cindex"][s][model]
            cells.append(f"{e['c']:.3f} ({e['lower']:.3f}-{e['upper']:.3f})")
        lines.append(f"{model:<22}{cells[0]:>24}{cells[1]:>24}")
    for name in ("integrated_vs_clinical", "signature_vs_clinical"):
        cells = []
        for s in ("train", "validation"):
            e = metrics["comparisons"][s][name]
            cells.append(f"{e['diff']:+.3f}, P={e['p']:.3g}")
        lines.append(f"{name.replace('_', ' '):<22}{cells[0]:>24}{cells[1]:>24}")
    lines.append("Calibration RMSE (clinical / integrated):")
    for s in ("train", "validation"):
        cal = metrics["calibration"][s]
        times = list(cal["integrated"])
        text = ", ".join(
            f"{t}: {cal['clinical'][t]['rmse']:.3f} / {cal['integrated'][t]['rmse']:.3f}"
            for t in times
        )
        lines.append(f"  {s:<11} {text}")
    groups = metrics.get("risk_groups", {})
    for s in ("train", "validation"):
        if s in groups:
            lines.append(f"Risk groups, {s}: log-rank P = {groups[s]['p']:.3g}")
    n_checks = len(r_check.get("checks", []))
    failed = sum(not c["passed"] for c in r_check.get("checks", []))
    status = "PASSED" if r_check.get("passed") else f"FAILED ({failed} of {n_checks})"
    lines.append(f"R cross-check: {status} ({n_checks} checks)")
    return "\n".join(lines)


__all__ = ["RCheckFailed", "StudyInUseError", "resolve", "run_study", "summary_text"]
