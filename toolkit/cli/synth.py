"""`sigkit synth`: write the built-in SYNTHETIC cohort."""

from __future__ import annotations

from pathlib import Path

import typer


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
