"""`sigkit apply MODEL_DIR COHORT_DIR --out OUT_DIR`: score a new cohort with a locked model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli._exit import fail


def apply(
    model_dir: Annotated[Path, typer.Argument(help="A study's model/ folder (the locked model).")],
    cohort_dir: Annotated[
        Path, typer.Argument(help="The new cohort: manifest.csv and clinical.csv (no study.toml).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Where predictions.csv and the rest go.")],
    weights: Annotated[
        str | None,
        typer.Option(help="'random', a weights file, or default: the installed weights."),
    ] = None,
    allow_other_weights: Annotated[
        bool,
        typer.Option(
            "--allow-other-weights",
            help="Score even when the weights' SHA-256 is not the model's (labelled so).",
        ),
    ] = False,
    workers: Annotated[int | None, typer.Option(help="Imaging worker processes.")] = None,
    manifest: Annotated[str, typer.Option(help="The cohort's manifest file.")] = "manifest.csv",
    clinical: Annotated[str, typer.Option(help="The cohort's clinical table.")] = "clinical.csv",
) -> None:
    """Preprocess, extract and score a new cohort with the frozen model (nothing refitted)."""
    from toolkit.config import StudyConfigError
    from toolkit.deep.weights import WeightsError, WeightsNotInstalledError
    from toolkit.study.apply import apply_model
    from toolkit.study.bundle import BundleError

    try:
        apply_model(
            model_dir,
            cohort_dir,
            out,
            weights=weights,
            allow_other_weights=allow_other_weights,
            workers=workers,
            manifest=manifest,
            clinical=clinical,
            echo=typer.echo,
        )
    except (
        BundleError,
        StudyConfigError,
        WeightsError,
        WeightsNotInstalledError,
    ) as exc:
        raise fail(str(exc)) from None
