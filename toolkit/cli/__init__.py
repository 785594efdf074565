"""The `sigkit` command line: one Typer app, a module per command group.

    validate.py   sigkit validate              (the Python-vs-R suite)
    synth.py      sigkit synth                 (the built-in synthetic cohort)
    imaging.py    sigkit preprocess
    deep.py       sigkit extract, sigkit weights import|fetch|info
    report.py     sigkit report
    study.py      sigkit study run|demo
    apply.py      sigkit apply                 (a locked model scores a new cohort)

The modules import only typer and rich at the top; JAX, SimpleITK and rpy2 are
imported inside the commands, so that `sigkit --version` and `--help` stay instant.
"""

from __future__ import annotations

import typer

from toolkit._version import __version__
from toolkit.cli import apply, deep, imaging, report, study, synth, validate

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


# The order here is the order `sigkit --help` lists them in.
app.command("validate")(validate.validate)
app.command("synth")(synth.synth)
app.command("preprocess")(imaging.preprocess)
app.command("report")(report.report)
app.command("extract")(deep.extract)
app.command("apply")(apply.apply)
app.add_typer(deep.weights_app, name="weights")
app.add_typer(study.study_app, name="study")

__all__ = ["app"]
