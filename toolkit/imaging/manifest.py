"""Read and check manifest.csv, the imaging table of a cohort (docs/contracts.md).

Columns: ``patient, centre, set, arterial, portal`` and one ``mask_<reader>``
column per reader; paths are relative to the manifest's folder (absolute paths
are kept). A missing column stops everything (:class:`ManifestError`); problems
of single rows (a duplicated patient id, an empty path) are returned as
per-patient problems so that every other patient is still processed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

REQUIRED_COLUMNS = ("patient", "centre", "set", "arterial", "portal")
PHASES = ("arterial", "portal")


class ManifestError(ValueError):
    """The manifest as a whole cannot be used (unreadable, a required column missing)."""


@dataclass(frozen=True)
class Manifest:
    """A checked manifest: one row per patient, paths made absolute."""

    path: Path
    frame: pd.DataFrame  # patient, centre, set, arterial, portal, mask_<reader>…
    readers: tuple[str, ...]
    problems: dict[str, str] = field(default_factory=dict)  # patient -> reason (row-level)

    def rows(self) -> list[dict]:
        """The usable rows (patients without a row-level problem), as dicts.

        Each also holds ``folder``, the manifest's folder, so that messages
        can name a file as the manifest gives it (relative to that folder).
        """
        keep = ~self.frame["patient"].isin(list(self.problems)) & (self.frame["patient"] != "")
        folder = str(self.path.parent)
        return [record | {"folder": folder} for record in self.frame[keep].to_dict("records")]


def _resolve(folder: Path, value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or str(value).strip() == "":
        return ""
    path = Path(str(value).strip())
    return str(path if path.is_absolute() else folder / path)


def read_manifest(
    path: str | os.PathLike[str], readers: tuple[str, ...] | list[str] | None = None
) -> Manifest:
    """Read `path`, check its columns and rows, and resolve the image paths.

    Parameters
    ----------
    path: manifest.csv.
    readers: reader names in study order (primary first); each needs a
        ``mask_<reader>`` column. Default: the manifest's mask columns in order.

    Raises :class:`ManifestError` naming the missing columns or the file.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise ManifestError(f"{path}: manifest not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot parse the manifest ({exc})") from None
    frame.columns = [c.strip() for c in frame.columns]
    mask_columns = [c for c in frame.columns if c.startswith("mask_")]
    if readers is None:
        readers = tuple(c[len("mask_") :] for c in mask_columns)
    readers = tuple(readers)
    wanted = [*REQUIRED_COLUMNS, *(f"mask_{r}" for r in readers)]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise ManifestError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"found {', '.join(frame.columns) or 'none'}"
        )
    if not readers:
        raise ManifestError(f"{path}: no mask_<reader> column; at least one reader is needed")
    frame = frame.copy()
    frame["patient"] = frame["patient"].str.strip()
    frame["row"] = range(2, len(frame) + 2)  # line number in the file (header is line 1)
    for column in [*PHASES, *(f"mask_{r}" for r in readers)]:
        frame[column] = [_resolve(path.parent, v) for v in frame[column]]
    return Manifest(path, frame, readers, _row_problems(frame, readers))


def _row_problems(frame: pd.DataFrame, readers: tuple[str, ...]) -> dict[str, str]:
    problems: dict[str, str] = {}
    for patient, rows in frame.groupby("patient", sort=False)["row"]:
        if not patient:
            problems[f"(row {', '.join(map(str, rows))})"] = "empty patient id"
        elif len(rows) > 1:
            problems[patient] = (
                f"duplicate patient id {patient!r} on manifest rows {', '.join(map(str, rows))}"
            )
    for record in frame.to_dict("records"):
        if record["patient"] in problems or not record["patient"]:
            continue
        empty = [c for c in (*PHASES, *(f"mask_{r}" for r in readers)) if not record[c]]
        if empty:
            problems[record["patient"]] = f"no path given for {', '.join(empty)}"
    return problems
