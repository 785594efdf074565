"""Read and check manifest.csv, the imaging table of a cohort (docs/contracts.md).

Columns: ``patient, centre, set``, one column per phase (:data:`toolkit.config.PHASES`:
``arterial, portal``) and one ``mask_<reader>`` column per reader; paths are relative
to the manifest's folder (absolute paths are kept). This is sigkit's one reader of
the manifest, with one rule for every caller (``sigkit preprocess``, and the study
through :func:`study_manifest`, which adds the study's checks): the manifest as a whole is
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
from typing import TYPE_CHECKING

import pandas as pd

from toolkit.config import (
    PHASES,
    StudyInputError,
    absent_columns,
    duplicate_patients,
    n_patients,
)
from toolkit.stats._checks import listed

if TYPE_CHECKING:
    from toolkit.config import StudyConfig

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

    def sets(self) -> pd.Series:
        """Each named patient's set (patient -> set), in the manifest's order."""
        return self.frame[self.frame["patient"] != ""].set_index("patient")["set"]


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


def study_manifest(config: StudyConfig, study_dir: Path) -> Manifest:
    """The study's manifest (``study.manifest`` in `study_dir`), read with the study's
    readers, every row named and every set a training or validation set of the study.

    Raises :class:`toolkit.config.StudyInputError` listing every problem found.
    """
    problems: list[str] = []
    manifest = check_study_manifest(config, study_dir, problems)
    if problems or manifest is None:
        raise StudyInputError(problems)
    return manifest


def check_study_manifest(
    config: StudyConfig, study_dir: Path, problems: list[str]
) -> Manifest | None:
    """The checks of :func:`study_manifest`, appending to ``problems`` (the study's
    pre-flight check gathers them with the clinical table's); None when the manifest
    has no patients and sets to check the clinical table against."""
    name = config.study.manifest
    path = study_dir / name
    if not path.is_file():
        problems.append(f"{name}: not found in {study_dir} (study.manifest in study.toml)")
        return None
    manifest, found = check_manifest(path, config.imaging.readers, name=name)
    problems += found
    if manifest is None or "set" not in manifest.frame.columns:
        return None
    unnamed = manifest.frame.loc[manifest.frame["patient"] == "", "row"]
    if len(unnamed):
        rows = "row" if len(unnamed) == 1 else "rows"
        problems.append(f"{name}: no patient id on {rows} {listed(list(unnamed))}")
    problems += _stray_sets(config, manifest.sets())
    return manifest


def _stray_sets(config: StudyConfig, sets: pd.Series) -> list[str]:
    """Patients whose set is empty, or neither a training nor a validation set."""
    name, study = config.study.manifest, config.study
    problems = []
    if (sets == "").any():
        empty = list(sets.index[sets == ""])
        problems.append(f"{name}: set is empty in {n_patients(len(empty))} ({listed(empty)})")
    known = {"", *study.train_sets, *study.validation_sets}
    for value in sorted(set(sets) - known):
        who = list(sets.index[sets == value])
        problems.append(
            f"{name}: set {value!r} is in neither study.train_sets {study.train_sets} nor "
            f"study.validation_sets {study.validation_sets} ({n_patients(len(who))}: "
            f"{listed(who)})"
        )
    return problems
