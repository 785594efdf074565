"""The report sources ship in the wheel, so an installed sigkit renders reports."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from toolkit.report._render import RenderError, report_sources

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "toolkit" / "report" / "templates"


def test_sources_are_found_through_the_package():
    with report_sources() as folder:
        assert folder.resolve() == TEMPLATES.resolve()
        assert (folder / "study.qmd").is_file() and (folder / "validation.qmd").is_file()


def test_override_without_sources_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("SIGKIT_REPORTS", str(tmp_path))
    with pytest.raises(RenderError, match="report sources not found"), report_sources():
        pass


@pytest.mark.slow
def test_wheel_holds_every_report_source(tmp_path):
    """Build the wheel (offline: no isolation, no dependencies) from a copy of the tree."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    code = shutil.ignore_patterns("__pycache__", "*.pyc")
    outputs = shutil.ignore_patterns("__pycache__", "*.pyc", "results", "report")
    shutil.copytree(ROOT / "toolkit", tree / "toolkit", ignore=code)
    shutil.copytree(ROOT / "validation", tree / "validation", ignore=outputs)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
               "-q", "-w", str(tmp_path / "dist"), str(tree)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, cwd=tree)
    (wheel,) = (tmp_path / "dist").glob("sigkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = sorted(p.name for p in TEMPLATES.iterdir() if p.suffix in (".qmd", ".css", ".yml"))
    assert len(sources) == 7  # study, validation, apply, _setup, _footer, css, _quarto.yml
    missing = [s for s in sources if f"toolkit/report/templates/{s}" not in names]
    assert not missing, f"not in {wheel.name}: {missing}"
