"""`sigkit study run STUDY_DIR`: the whole study, stage by stage, into STUDY_DIR/results.

First a pre-flight check of study.toml, the manifest and the clinical table,
which reports all their problems at once (``toolkit.config.StudyInputError``)
before any imaging work. Then the stages of ``pipeline.PIPELINE`` (each skipped
when its inputs and settings are unchanged, see ``_stages``): preprocess ->
extract -> clinical -> signature -> models -> validate -> internal_validation ->
bundle -> r_check -> cam, then the report. STUDY_DIR holds study.toml (or a ``cohort/``
folder that does); crops go to ``STUDY_DIR/crops``, features to
``STUDY_DIR/features/features.parquet``, results to ``STUDY_DIR/results`` and
the report to ``STUDY_DIR/report``. A failed stage raises and leaves the
results of earlier stages as they were; an R cross-check mismatch is raised
(``RCheckFailed``) only after every output has been written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from toolkit.config import StudyConfig, check_inputs, load_study
from toolkit.contracts import Metrics, RCheck
from toolkit.study._stages import StageLog, StudyInUseError, study_lock
from toolkit.study.context import Context, StudyPaths, resolve
from toolkit.study.pipeline import run_pipeline, stages_for


class RCheckFailed(RuntimeError):
    """The R cross-check found a number that differs from R beyond its tolerance."""


@dataclass(frozen=True)
class StudyOutcome:
    """What a run leaves: metrics.json and r_check.json as written, and the report's path
    (None when it was not asked for or could not be rendered)."""

    metrics: Metrics
    r_check: RCheck
    report: Path | None = None

    @classmethod
    def read(cls, results: Path) -> StudyOutcome:
        """The outcome recorded in a results folder (no report)."""
        return cls(Metrics.read(results / "metrics.json"), RCheck.read(results / "r_check.json"))


def study_context(
    paths: StudyPaths,
    config: StudyConfig,
    *,
    weights: str | None = None,
    workers: int | None = None,
    batch_size: int = 16,
    echo: Callable[[str], None] = print,
) -> Context:
    """The Context of a run over ``paths`` whose inputs passed the pre-flight check."""
    log = StageLog(paths.study_dir, echo=echo)
    return Context(paths, config, config.as_written(), weights, workers, batch_size, echo, log)


def run_study(
    study_dir: str | os.PathLike[str],
    *,
    weights: str | None = None,
    workers: int | None = None,
    batch_size: int = 16,
    report: bool = True,
    wait: bool = False,
    echo: Callable[[str], None] = print,
) -> StudyOutcome:
    """Run every stage; returns the ``StudyOutcome``. Raises RCheckFailed last.

    One run at a time per study folder: while another run holds the folder this
    raises ``StudyInUseError`` at once, or with ``wait`` waits for it to finish.
    study.toml, the manifest and the clinical table are checked first, before any
    stage runs: every problem found is raised at once in a ``StudyInputError``.
    """
    paths = resolve(study_dir)
    with study_lock(paths.study_dir, wait=wait, echo=echo):
        config = load_study(paths.cohort)
        check_inputs(config, paths.cohort)
        ctx = study_context(
            paths, config, weights=weights, workers=workers, batch_size=batch_size, echo=echo
        )
        echo(f"sigkit study: {config.study.name} ({paths.study_dir})")
        if config.study.synthetic:
            echo("  SYNTHETIC cohort: every output is labelled so")
        metrics, r_check = _run_stages(ctx)
        outcome = StudyOutcome(metrics, r_check, _report(ctx) if report else None)
    if not r_check.passed:
        failed = [c.name for c in r_check.failed]
        raise RCheckFailed(
            f"R cross-check FAILED for {len(failed)} statistic(s): {'; '.join(failed[:10])} "
            f"(see {paths.results / 'r_check.json'})"
        )
    return outcome


def _run_stages(ctx: Context) -> tuple[Metrics, RCheck]:
    """Every stage of the pipeline; metrics.json gains the stage timings and the R check's
    verdict."""
    results = run_pipeline(ctx, stages_for(ctx.config))
    r_check: RCheck = results["r_check"]
    metrics = replace(results["metrics"], stages=ctx.log.timings(), r_check_passed=r_check.passed)
    metrics.write(ctx.paths.results / "metrics.json")
    return metrics, r_check


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


def summary_text(outcome: StudyOutcome) -> str:
    """A readable summary: C-index table, comparisons, calibration RMSE, R check status."""
    from toolkit.study.validate import comparisons_of, models_of

    metrics, r_check = outcome.metrics, outcome.r_check
    prov = metrics.provenance
    lines = ["", "Results" + (" (SYNTHETIC cohort)" if prov.get("synthetic") else "")]
    if prov.get("weights") == "random":
        lines.append("DenseNet-121 weights: RANDOM (no ImageNet weights installed)")
    models = models_of(metrics.cindex["train"])
    pairs = [f"{a}_vs_{b}" for a, b in comparisons_of(models)]
    width = max(22, *(len(p.replace("_vs_", " vs ")) for p in pairs))
    lines.append(f"{'C-index (95% CI)':<{width}}{'training':>24}{'validation':>24}")
    for model in models:
        cells = []
        for s in ("train", "validation"):
            e = metrics.cindex[s][model]
            cells.append(f"{e['c']:.3f} ({e['lower']:.3f}-{e['upper']:.3f})")
        lines.append(f"{model:<{width}}{cells[0]:>24}{cells[1]:>24}")
    for name in pairs:
        cells = []
        for s in ("train", "validation"):
            e = metrics.comparisons[s][name]
            cells.append(f"{e['diff']:+.3f}, P={e['p']:.3g}")
        lines.append(f"{name.replace('_vs_', ' vs '):<{width}}{cells[0]:>24}{cells[1]:>24}")
    lines.append("Calibration RMSE (clinical / integrated):")
    for s in ("train", "validation"):
        cal = metrics.calibration[s]
        times = list(cal["integrated"])
        text = ", ".join(
            f"{t}: {cal['clinical'][t]['rmse']:.3f} / {cal['integrated'][t]['rmse']:.3f}"
            for t in times
        )
        lines.append(f"  {s:<11} {text}")
    groups = metrics.risk_groups
    for s in ("train", "validation"):
        if s in groups:
            lines.append(f"Risk groups, {s}: log-rank P = {groups[s]['p']:.3g}")
    n_checks, failed = len(r_check.checks), len(r_check.failed)
    status = "PASSED" if r_check.passed else f"FAILED ({failed} of {n_checks})"
    lines.append(f"R cross-check: {status} ({n_checks} checks)")
    return "\n".join(lines)


__all__ = [
    "Context",
    "RCheckFailed",
    "StudyInUseError",
    "StudyOutcome",
    "StudyPaths",
    "resolve",
    "run_study",
    "study_context",
    "summary_text",
]
