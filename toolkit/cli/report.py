"""`sigkit report`: render the study report from STUDY_DIR/results."""

from __future__ import annotations

from pathlib import Path

import typer

from toolkit.cli._exit import fail


def report(
    study_dir: Path = typer.Argument(..., help="Study folder holding results/ (and study.toml)."),
    out: Path = typer.Option(
        None, "--out", help="HTML file (default STUDY_DIR/report/study.html)."
    ),
    renderer: str = typer.Option(
        "auto", "--renderer", help="auto (Quarto if installed, else Jupyter), quarto or jupyter."
    ),
) -> None:
    """Render the study report (self-contained HTML) from STUDY_DIR/results."""
    from toolkit.report import RenderError, render_study_report

    if renderer not in ("auto", "quarto", "jupyter"):
        raise typer.BadParameter(f"--renderer must be auto, quarto or jupyter, not {renderer!r}")
    try:
        path = render_study_report(study_dir, out=out, renderer=renderer)  # type: ignore[arg-type]
    except RenderError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"report: {path}")
