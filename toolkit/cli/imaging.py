"""`sigkit preprocess`: run :func:`toolkit.imaging.preprocess.preprocess_cohort` and report.

Exit status: 0 every patient done, 3 partial (some patients failed; they are
listed in crops/failures.csv), 2 the manifest or the settings are unusable.
"""

from __future__ import annotations

from pathlib import Path

import typer

from toolkit.cli._exit import fail

EXIT_PARTIAL = 3
EXIT_BAD_INPUT = 2


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
    from toolkit.imaging.manifest import ManifestError
    from toolkit.imaging.preprocess import PreprocessSettings, preprocess_cohort

    try:
        settings = PreprocessSettings.from_study_toml(study) if study else None
        summary = preprocess_cohort(
            manifest,
            out,
            workers=workers,
            scheduler=scheduler,
            progress=progress,
            settings=settings,
        )
    except (ManifestError, ValueError, OSError) as exc:
        raise fail(str(exc), EXIT_BAD_INPUT) from None
    for row in summary.warnings.itertuples(index=False):
        typer.echo(f"warning: {row.patient}: {row.warning}", err=True)
    for row in summary.failures.itertuples(index=False):
        typer.echo(f"failed: {row.patient} ({row.stage}): {row.reason}", err=True)
    typer.echo(str(summary))
    if summary.partial:
        typer.echo(f"PARTIAL run: {summary.n_failed} patient(s) failed, see {out}/failures.csv")
        raise typer.Exit(EXIT_PARTIAL)
