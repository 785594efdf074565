"""Run a parsed .qmd's Python cells in a Jupyter kernel (nbclient)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat

from toolkit.report._qmd import Cell


class CellError(RuntimeError):
    """A report cell raised; the message names the cell (label and file:line) and the error."""


def _evaluated(cell: Cell) -> bool:
    return cell.options.get("eval", True) is not False


def execute(
    cells: list[Cell],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: int = 600,
) -> dict[int, list[dict[str, Any]]]:
    """Execute `cells` in order in one fresh kernel; map each cell's index to its outputs.

    Cells with ``eval: false`` are not run. The kernel starts in `cwd` with the
    current environment plus `env` (how the cells learn the results folder). The
    first failing cell stops the run and raises :class:`CellError`.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    run = [(index, cell) for index, cell in enumerate(cells) if _evaluated(cell)]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(cell.source) for _, cell in run]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
    )
    # The kernel's own log (e.g. ipykernel's warning about unencrypted local TCP) goes to a
    # file rather than the user's terminal; it is shown only if the kernel fails to run.
    with tempfile.TemporaryFile(mode="w+") as kernel_log:
        try:
            client.execute(env={**os.environ, **env}, stderr=kernel_log)
        except CellExecutionError as exc:
            raise CellError(_describe_failure(notebook, run, exc)) from None
        except Exception as exc:
            kernel_log.seek(0)
            raise CellError(
                f"the Jupyter kernel failed: {exc}\n{kernel_log.read()[-4000:]}"
            ) from exc
    return {
        index: list(nb_cell.outputs)
        for (index, _), nb_cell in zip(run, notebook.cells, strict=True)
    }


def _describe_failure(notebook, run, exc) -> str:
    for (_, cell), nb_cell in zip(run, notebook.cells, strict=True):
        for output in nb_cell.get("outputs", []):
            if output.get("output_type") == "error":
                where = f"cell {cell.label!r} at {cell.origin}" if cell.label else cell.origin
                trace = "\n".join(output.get("traceback", []))
                return f"{where} raised {output['ename']}: {output['evalue']}\n{_strip_ansi(trace)}"
    return str(exc)


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def nbclient_version() -> str:
    import nbclient

    return nbclient.__version__
