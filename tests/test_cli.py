import subprocess
import sys

import click
import typer
from typer.testing import CliRunner

from toolkit import __version__
from toolkit.cli import app


def test_version_prints_package_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"sigkit {__version__}"


def test_module_entry_point_runs():
    out = subprocess.run(
        [sys.executable, "-m", "toolkit", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in out.stdout


def test_every_command_group_is_there_in_the_order_help_lists_them():
    root = typer.main.get_command(app)
    context = click.Context(root)
    commands = ["validate", "synth", "preprocess", "report", "extract", "apply", "weights", "study"]
    assert root.list_commands(context) == commands
    for group, subcommands in (
        ("weights", ["import", "fetch", "info"]),
        ("study", ["run", "demo"]),
    ):
        assert root.get_command(context, group).list_commands(context) == subcommands


def test_unusable_manifest_exits_2_with_the_error_on_stderr(tmp_path):
    missing = tmp_path / "manifest.csv"
    result = CliRunner().invoke(app, ["preprocess", str(missing), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip() == f"error: {missing}: manifest not found"


def test_study_without_study_toml_exits_1_naming_the_folder(tmp_path):
    result = CliRunner().invoke(app, ["study", "run", str(tmp_path), "--no-report"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no study.toml in ") and str(tmp_path) in result.stderr


def test_report_refuses_an_unknown_renderer_as_a_usage_error(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path), "--renderer", "latex"])
    assert result.exit_code == 2
    assert "--renderer must be auto, quarto or jupyter, not 'latex'" in result.output
