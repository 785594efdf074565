"""Read and check manifest.csv, the imaging table of a cohort (docs/contracts.md).

Columns: ``patient, centre, set``, one column per phase (:data:`toolkit.config.PHASES`:
``arterial, portal``) and one ``mask_<reader>`` column per reader; paths are relative
to the manifest's folder (absolute paths are kept). This is sigkit's one reader of
the manifest, with one rule for every caller (``sigkit preprocess`` and the study's
pre-flight check, :func:`toolkit.config.study_manifest`): the manifest as a whole is
unusable, and every such problem is reported at once (:class:`ManifestError`), when
it cannot be read, lacks a column or lists a patient more than once (which of the
rows is meant cannot be guessed). Problems of single rows (an empty patient id, an
empty path) are per-patient problems, so that every other patient is still processed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from toolkit.config import PHASES, absent_columns, duplicate_patients

COLUMNS = ("patient", "centre", "set")


class ManifestError(ValueError):
    """The manifest as a whole cannot be used; ``problems`` lists why, one a line."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __reduce__(self):
        return type(self), (self.problems,)


@dataclass(frozen=True)
class Manifest:
    """A checked manifest: one row per patient.

    ``frame`` holds the table as written (text, stripped; image paths as the file
    gives them) and ``row``, each row's line in the file (the header is line 1);
    :meth:`rows` resolves the paths. ``problems`` maps a patient (or ``"(row N)"``
    for a row without an id) to its row-level problem.
    """

    path: Path
    frame: pd.DataFrame  # patient, centre, set, arterial, portal, mask_<reader>…, row
    readers: tuple[str, ...]
    problems: dict[str, str] = field(default_factory=dict)

    def rows(self) -> list[dict]:
        """The usable rows (patients without a row-level problem), as dicts, with the
        image paths made absolute.

        Each also holds ``folder``, the manifest's folder, so that messages
        can name a file as the manifest gives it (relative to that folder).
        """
        keep = ~self.frame["patient"].isin(list(self.problems)) & (self.frame["patient"] != "")
        folder = self.path.parent
        images = _image_columns(self.readers)
        return [
            record | {c: _resolve(folder, record[c]) for c in images} | {"folder": str(folder)}
            for record in self.frame[keep].to_dict("records")
        ]


def _image_columns(readers: Sequence[str]) -> list[str]:
    return [*PHASES, *(f"mask_{r}" for r in readers)]


def _resolve(folder: Path, value: str) -> str:
    if not value:
        return ""
    path = Path(value)
    return str(path if path.is_absolute() else folder / path)


def read_manifest(
    path: str | os.PathLike[str],
    readers: Sequence[str] | None = None,
    *,
    name: str | None = None,
) -> Manifest:
    """Read `path` and check its columns and rows.

    Parameters
    ----------
    path: manifest.csv.
    readers: reader names in study order (primary first); each needs a
        ``mask_<reader>`` column. Default: the manifest's mask columns in order.
    name: how messages name the file (default: `path`).

    Raises :class:`ManifestError` listing every problem of the file as a whole
    (see :func:`check_manifest`).
    """
    manifest, problems = check_manifest(path, readers, name=name)
    if problems or manifest is None:
        raise ManifestError(problems)
    return manifest


def check_manifest(
    path: str | os.PathLike[str],
    readers: Sequence[str] | None = None,
    *,
    name: str | None = None,
) -> tuple[Manifest | None, list[str]]:
    """The manifest at `path` and every problem that makes it unusable as a whole:
    not found or not parsable, a column absent, a patient listed more than once.

    The manifest is None when the file cannot be read or has no patient column.
    Despite problems it can serve to check the rest of a study's inputs (the
    repeats of a patient are dropped, absent columns are absent from its frame).
    Arguments as :func:`read_manifest`.
    """
    path = Path(path)
    name = name or str(path)
    frame, problem = _read(path, name)
    if frame is None:
        return None, [problem]
    if readers is None:
        readers = [c.removeprefix("mask_") for c in frame.columns if c.startswith("mask_")]
    readers = tuple(readers)
    needed = dict.fromkeys(COLUMNS, "every manifest needs it")
    needed |= dict.fromkeys(PHASES, "imaging.phases in study.toml")
    needed |= {f"mask_{r}": "imaging.readers in study.toml" for r in readers}
    problems = absent_columns(name, list(frame.columns), needed)
    if not readers:
        problems.append(f"{name}: no mask_<reader> column; at least one reader is needed")
    if "patient" not in frame.columns:
        return None, problems
    for column in ["patient", *(c for c in _image_columns(readers) if c in frame.columns)]:
        frame[column] = frame[column].str.strip()
    frame["row"] = range(2, len(frame) + 2)
    named = frame["patient"] != ""
    problems += duplicate_patients(name, frame.loc[named, "patient"])
    frame = frame[~(named & frame["patient"].duplicated())].reset_index(drop=True)
    return Manifest(path, frame, readers, _row_problems(frame, readers)), problems


def _read(path: Path, name: str) -> tuple[pd.DataFrame | None, str]:
    """The manifest's cells as text (an empty cell is ""), or None and why not."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except FileNotFoundError:
        return None, f"{name}: manifest not found"
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        return None, f"{name}: cannot parse the manifest ({exc})"
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, ""


def _row_problems(frame: pd.DataFrame, readers: tuple[str, ...]) -> dict[str, str]:
    """Rows without a patient id, and patients with an empty image path."""
    problems: dict[str, str] = {}
    unnamed = frame.loc[frame["patient"] == "", "row"]
    if len(unnamed):
        problems[f"(row {', '.join(map(str, unnamed))})"] = "empty patient id"
    images = [c for c in _image_columns(readers) if c in frame.columns]
    for record in frame[frame["patient"] != ""].to_dict("records"):
        empty = [c for c in images if not record[c]]
        if empty:
            problems[record["patient"]] = f"no path given for {', '.join(empty)}"
    return problems
