"""`sigkit preprocess`: run :func:`toolkit.imaging.preprocess.preprocess_cohort` and report.

Exit status: 0 every patient done, 3 partial (some patients failed; they are
listed in crops/failures.csv), 2 the manifest or the settings are unusable.
"""

from __future__ import annotations

from pathlib import Path

import typer

EXIT_PARTIAL = 3
EXIT_BAD_INPUT = 2


def run_preprocess(
    manifest: Path,
    out: Path,
    workers: int,
    scheduler: str | None,
    study: Path | None,
    progress: bool,
) -> int:
    """Preprocess, print the summary, failures and warnings; return the exit status."""
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
        typer.echo(f"error: {exc}", err=True)
        return EXIT_BAD_INPUT
    for row in summary.warnings.itertuples(index=False):
        typer.echo(f"warning: {row.patient}: {row.warning}", err=True)
    for row in summary.failures.itertuples(index=False):
        typer.echo(f"failed: {row.patient} ({row.stage}): {row.reason}", err=True)
    typer.echo(str(summary))
    if summary.partial:
        typer.echo(f"PARTIAL run: {summary.n_failed} patient(s) failed, see {out}/failures.csv")
        return EXIT_PARTIAL
    return 0
