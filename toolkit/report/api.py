"""Public entry points: render the study report and the validation report."""

from __future__ import annotations

from pathlib import Path

from toolkit.report._render import Renderer, RenderError, render, report_sources


def render_study_report(
    study_dir: str | Path,
    *,
    out: str | Path | None = None,
    renderer: Renderer = "auto",
) -> Path:
    """Render templates/study.qmd over ``STUDY_DIR/results`` into ``STUDY_DIR/report/study.html``.

    Parameters
    ----------
    study_dir : the study folder (study.toml beside results/, as `sigkit study run` leaves it).
    out : where the HTML goes; default ``STUDY_DIR/report/study.html``.
    renderer : "auto" (Quarto when installed, else Jupyter), "quarto" or "jupyter".
    """
    study_dir = Path(study_dir).resolve()
    results = study_dir / "results"
    if not (results / "metrics.json").is_file():
        raise RenderError(
            f"{results / 'metrics.json'} not found: run `sigkit study run {study_dir}` first"
        )
    target = Path(out) if out is not None else study_dir / "report" / "study.html"
    env = {"SIGKIT_STUDY_DIR": str(study_dir), "SIGKIT_RESULTS": str(results)}
    with report_sources() as sources:
        return render(sources / "study.qmd", target.resolve(), env, renderer)


def render_validation_report(
    results_dir: str | Path = "validation/results",
    out: str | Path = "validation/report/validation.html",
    *,
    benchmarks: str | Path = "benchmarks",
    renderer: Renderer = "auto",
) -> Path:
    """Render templates/validation.qmd over the cross-check JSON and the benchmark records.

    Parameters
    ----------
    results_dir : the folder of per-suite JSON files written by `sigkit validate`.
    out : the HTML file to write.
    benchmarks : the folder whose results/*.json are the pytest-benchmark records.
    renderer : "auto", "quarto" or "jupyter", as for :func:`render_study_report`.
    """
    results_dir = Path(results_dir).resolve()
    if not results_dir.is_dir():
        raise RenderError(f"{results_dir} not found: run `sigkit validate` first")
    env = {
        "SIGKIT_VALIDATION_RESULTS": str(results_dir),
        "SIGKIT_BENCHMARKS": str(Path(benchmarks).resolve()),
    }
    with report_sources() as sources:
        return render(sources / "validation.qmd", Path(out).resolve(), env, renderer)


def render_apply_report(
    out_dir: str | Path, *, out: str | Path | None = None, renderer: Renderer = "auto"
) -> Path:
    """Render templates/apply.qmd over a ``sigkit apply`` OUT_DIR into
    ``OUT_DIR/report/apply.html`` (or ``out``)."""
    out_dir = Path(out_dir).resolve()
    if not (out_dir / "apply.json").is_file():
        raise RenderError(f"{out_dir / 'apply.json'} not found: run `sigkit apply` first")
    target = Path(out) if out is not None else out_dir / "report" / "apply.html"
    with report_sources() as sources:
        return render(
            sources / "apply.qmd", target.resolve(), {"SIGKIT_APPLY_DIR": str(out_dir)}, renderer
        )
