"""The `sigkit` command line: one sub-command per stage, plus `study run`.

Heavy imports (JAX, SimpleITK, rpy2) happen inside the commands so that
`sigkit --version` and `--help` stay instant.
"""

from __future__ import annotations

from pathlib import Path

import typer

from toolkit._version import __version__

app = typer.Typer(
    name="sigkit",
    help="CT deep-learning signatures and nomograms for survival studies, checked against R.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sigkit {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """sigkit command line."""


@app.command()
def validate(
    fast: bool = typer.Option(False, "--fast", help="Only the quick subset the tests run."),
    only: list[str] = typer.Option(None, "--only", help="Run only these suites."),
    out: Path = typer.Option(Path("validation/results"), help="Where the JSON results go."),
    report: bool = typer.Option(True, help="Render validation/report/validation.html."),
) -> None:
    """Cross-check every statistic against R on datasets that ship with R."""
    from toolkit.validate_cli import run_validation

    raise typer.Exit(run_validation(fast=fast, only=only, out=out, report=report))


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", help="Cohort folder to write."),
    patients: int = typer.Option(
        201, "--patients", help="Number of patients (A+B train, C validation)."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same cohort."),
    workers: int = typer.Option(
        None, "--workers", help="Rendering processes (default: CPUs, max 4)."
    ),
) -> None:
    """Write the built-in SYNTHETIC CECT cohort (images, masks, clinical, outcomes, truth)."""
    from toolkit.synth import generate_cohort

    summary = generate_cohort(out, patients, seed, workers=workers)
    counts = ", ".join(f"{c}: {n}" for c, n in summary.centres.items())
    typer.echo(
        f"SYNTHETIC cohort of {summary.n_patients} patients ({counts}) written to {summary.out} "
        f"in {summary.seconds:.1f} s"
    )


@app.command()
def preprocess(
    manifest: Path = typer.Argument(..., help="manifest.csv of the cohort."),
    out: Path = typer.Option(..., "--out", help="Crops folder to write."),
    workers: int = typer.Option(2, "--workers", help="Dask worker processes; 0 runs in-process."),
    scheduler: str = typer.Option(
        None, "--scheduler", help="Existing Dask scheduler tcp://HOST:PORT."
    ),
    study: Path = typer.Option(None, "--study", help="study.toml (default: beside the manifest)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Register, crop and z-score every patient; exit 3 when some patients failed."""
    from toolkit.imaging.cli import run_preprocess

    raise typer.Exit(run_preprocess(manifest, out, workers, scheduler, study, progress))


@app.command()
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
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"report: {path}")


from toolkit.deep._cli import extract_command, weights_app  # noqa: E402  (typer only)

app.add_typer(weights_app, name="weights")
app.command("extract")(extract_command)

from toolkit.study._cli import study_app  # noqa: E402  (typer only)

app.add_typer(study_app, name="study")


if __name__ == "__main__":  # pragma: no cover
    app()
