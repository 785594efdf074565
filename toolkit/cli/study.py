"""`sigkit study run STUDY_DIR` and `sigkit study demo --dir DIR` (typer only at import)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli._exit import fail

study_app = typer.Typer(help="Run the whole study: signature, nomograms, validation, R check.")


def _execute(
    study_dir: Path, weights: str | None, workers: int | None, report: bool, wait: bool = False
) -> None:
    from toolkit.config import StudyConfigError
    from toolkit.study.run import (
        RCheckFailed,
        StudyInUseError,
        StudyOutcome,
        run_study,
        summary_text,
    )

    try:
        outcome = run_study(study_dir, weights=weights, workers=workers, report=report, wait=wait)
    except RCheckFailed as exc:
        typer.echo(summary_text(StudyOutcome.read(Path(study_dir) / "results")))
        typer.echo(f"\nERROR: {exc}", err=True)
        raise typer.Exit(2) from None
    except (StudyConfigError, StudyInUseError, FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    typer.echo(summary_text(outcome))
    results = Path(study_dir) / "results"
    typer.echo(f"\nresults: {results}")
    if outcome.report:
        typer.echo(f"report:  {outcome.report}")
    elif report:
        typer.echo("report:  pending (the report module could not render it)")


@study_app.command("run")
def run_command(
    study_dir: Annotated[
        Path, typer.Argument(help="Folder with study.toml (or cohort/study.toml).")
    ],
    weights: Annotated[
        str | None,
        typer.Option(help="'random', a weights file, or default: the installed weights."),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Imaging worker processes.")] = None,
    report: Annotated[bool, typer.Option(help="Render STUDY_DIR/report/study.html.")] = True,
    wait: Annotated[
        bool, typer.Option(help="If another run holds STUDY_DIR, wait for it (default: stop).")
    ] = False,
) -> None:
    """Run every stage of the study (up-to-date stages are skipped); one run per folder."""
    _execute(study_dir, weights, workers, report, wait)


@study_app.command("demo")
def demo_command(
    directory: Annotated[Path, typer.Option("--dir", help="The study folder.")] = Path("runs/demo"),
    patients: Annotated[int, typer.Option(help="Synthetic cohort size.")] = 201,
    seed: Annotated[int, typer.Option(help="Synthetic cohort seed.")] = 0,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    report: Annotated[bool, typer.Option(help="Render the report at the end.")] = True,
) -> None:
    """The study on the built-in SYNTHETIC cohort (generated into DIR/cohort when absent).

    Without installed ImageNet weights the network uses random weights, and says so.
    """
    from toolkit.deep.weights import WeightsNotInstalledError, load

    cohort = directory / "cohort"
    if not (cohort / "study.toml").is_file():
        from toolkit.synth import generate_cohort

        typer.echo(f"generating the SYNTHETIC cohort ({patients} patients) in {cohort} ...")
        generate_cohort(cohort, n_patients=patients, seed=seed, workers=workers)
    weights = None
    try:
        load(None)
    except WeightsNotInstalledError:
        typer.echo(
            "NOTE: no ImageNet DenseNet-121 weights are installed (`sigkit weights import FILE`);"
            " using RANDOM weights (--weights random). Every output is labelled so."
        )
        weights = "random"
    _execute(directory, weights, workers, report)
