"""Render a .qmd to one self-contained HTML file: with Quarto when installed, else Jupyter."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from toolkit.artifacts import atomic_path
from toolkit.report import _execute, _html, _qmd

Renderer = Literal["auto", "quarto", "jupyter"]


class RenderError(RuntimeError):
    """The report could not be rendered (missing inputs, a failing cell, Quarto's error)."""


@contextlib.contextmanager
def report_sources() -> Iterator[Path]:
    """The folder holding study.qmd and validation.qmd: $SIGKIT_REPORTS, else the package data.

    The sources ship inside the package (toolkit/report/templates/, declared as package
    data), so an installed wheel renders as a checkout does; importlib.resources finds them.
    """
    override = os.environ.get("SIGKIT_REPORTS")
    source = Path(override) if override else resources.files("toolkit.report") / "templates"
    with resources.as_file(source) as path:
        if not (path / "study.qmd").is_file():
            raise RenderError(
                f"report sources not found in {path}: set SIGKIT_REPORTS to the folder holding "
                "study.qmd and validation.qmd"
            )
        yield path


def find_quarto() -> Path | None:
    """The Quarto binary: `quarto` on PATH, else the quarto-cli package's binary, else None."""
    on_path = shutil.which("quarto")
    if on_path:
        return Path(on_path)
    beside = Path(sys.executable).with_name("quarto")
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    try:
        import quarto_cli  # type: ignore[import-not-found]
    except ImportError:
        return None
    for candidate in Path(quarto_cli.__file__).parent.glob("**/bin/quarto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _quarto_version(quarto: Path) -> str:
    done = subprocess.run([str(quarto), "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown version"


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def load_document(qmd: Path) -> _qmd.Document:
    """Parse `qmd` and merge its folder's _quarto.yml under the front matter, as Quarto does."""
    document = _qmd.parse(qmd)
    project = qmd.parent / "_quarto.yml"
    if project.is_file():
        shared = yaml.safe_load(project.read_text(encoding="utf-8")) or {}
        shared.pop("project", None)
        document.meta = _deep_merge(shared, document.meta)
    return document


def render_with_jupyter(qmd: Path, out: Path, env: Mapping[str, str]) -> Path:
    """Execute the .qmd's cells with nbclient and write the page (the sigkit Jupyter renderer)."""
    document = load_document(qmd)
    generator = f"sigkit Jupyter renderer (nbclient {_execute.nbclient_version()})"
    # Figures display inline (image/png outputs) even when the caller runs with MPLBACKEND=Agg.
    inline = "module://matplotlib_inline.backend_inline"
    env = {**env, "SIGKIT_RENDERER": generator, "MPLBACKEND": inline}
    try:
        outputs = _execute.execute(document.cells(), cwd=qmd.parent, env=env)
    except _execute.CellError as exc:
        raise RenderError(f"{qmd.name}: {exc}") from None
    body, headings = _html.render_body(document, outputs)
    text = _html.page(document, body, headings, generator=generator, css=_html.read_css(document))
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return out


def _copy_ignore(source: Path, output: Path):
    """Skip Quarto's caches, rendered pages and the output folder when copying the sources."""
    skip = shutil.ignore_patterns("_freeze", ".quarto", "*.html", "*_files")

    def ignore(folder: str, names: list[str]) -> set[str]:
        ignored = set(skip(folder, names))
        return ignored | {n for n in names if Path(folder, n).resolve() == output.resolve()}

    return ignore


def render_with_quarto(quarto: Path, qmd: Path, out: Path, env: Mapping[str, str]) -> Path:
    """`quarto render` a copy of the reports folder with embedded resources; move the HTML to `out`.

    The copy keeps Quarto's working files out of the source tree. Cells run in
    the Python that runs sigkit (QUARTO_PYTHON), so they can import toolkit.
    """
    env = {
        **os.environ,
        **env,
        "QUARTO_PYTHON": sys.executable,
        "SIGKIT_RENDERER": f"Quarto {_quarto_version(quarto)}",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    # Outside the sources' folder: the output may well lie inside it.
    with tempfile.TemporaryDirectory(prefix="sigkit-quarto-") as build:
        source = Path(build) / "reports"
        shutil.copytree(qmd.parent, source, ignore=_copy_ignore(qmd.parent, out.parent))
        command = [
            str(quarto), "render", qmd.name, "--to", "html",
            "-M", "embed-resources:true", "--output", "report.html",
        ]  # fmt: skip
        done = subprocess.run(command, cwd=source, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RenderError(f"quarto render {qmd.name} failed:\n{done.stderr[-4000:]}")
        produced = next(iter(source.rglob("report.html")), None)
        if produced is None:
            raise RenderError(f"quarto render {qmd.name} wrote no report.html in {source}")
        with atomic_path(out) as tmp:
            shutil.copyfile(produced, tmp)
    return out


def render(qmd: Path, out: Path, env: Mapping[str, str], renderer: Renderer = "auto") -> Path:
    """Render `qmd` to `out` with Quarto if found (or asked for), else with the Jupyter renderer.

    With ``renderer="auto"`` a Quarto failure falls back to the Jupyter renderer with a
    RuntimeWarning (the page's footer names the renderer that made it).
    """
    quarto = find_quarto() if renderer in ("auto", "quarto") else None
    if renderer == "quarto" and quarto is None:
        raise RenderError("renderer='quarto' but no Quarto binary was found (PATH, quarto-cli)")
    if quarto is not None:
        try:
            return render_with_quarto(quarto, qmd, out, env)
        except RenderError as exc:
            if renderer == "quarto":
                raise
            # A broken Quarto install must not cost the user the report of a finished study.
            warnings.warn(
                f"{exc}\nfalling back to the sigkit Jupyter renderer", RuntimeWarning, stacklevel=2
            )
    return render_with_jupyter(qmd, out, env)
