import subprocess
import sys

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
