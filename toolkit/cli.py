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


if __name__ == "__main__":  # pragma: no cover
    app()
