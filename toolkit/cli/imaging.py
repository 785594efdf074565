"""`sigkit preprocess`: run :func:`toolkit.imaging.preprocess.preprocess_cohort` and report.

The settings are the [imaging] of study.toml (``--study``, default: the study.toml
beside the manifest, if there is one; else the defaults), validated by
:func:`toolkit.config.load_study`. Exit status: 0 every patient done, 3 partial (some
patients failed; they are listed in crops/failures.csv), 2 the manifest or the
settings are unusable.
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
    study: Path = typer.Option(
        None, "--study", help="study.toml (default: the one beside the manifest, if any)."
    ),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Register, crop and z-score every patient; exit 3 when some patients failed."""
    from toolkit.config import load_study
    from toolkit.imaging.manifest import ManifestError
    from toolkit.imaging.preprocess import PreprocessSettings, preprocess_cohort

    if study is None and (manifest.parent / "study.toml").is_file():
        study = manifest.parent / "study.toml"
    try:
        settings = PreprocessSettings.from_config(load_study(study)) if study else None
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
