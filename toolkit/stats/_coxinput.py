"""Checks of ``cox.fit``'s per-row extras: cluster labels, offsets, entry times, subjects.

Each returns the checked array (or None when the argument is None) and raises a
``ValueError`` naming the offending rows (by the covariates' row labels, else by
0-based position), as every public statistic does (``toolkit.stats._checks``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from toolkit.stats._checks import check_finite, listed


def row_labels(rows: Any, n: int) -> np.ndarray:
    """The labels the messages name rows by: ``rows`` (a DataFrame index) or 0..n-1."""
    return np.arange(n) if rows is None else np.asarray(rows)


def labels_of(values: Any, name: str, n: int, labels: np.ndarray) -> pd.Series:
    """One label per row (strata, cluster, id) as a Series; missing ones named by row."""
    series = pd.Series(np.asarray(values, dtype=object))
    if len(series) != n:
        raise ValueError(f"{name} has {len(series)} labels for {n} rows")
    missing = series.isna().to_numpy()
    if missing.any():
        raise ValueError(f"{name} has missing labels (rows {listed(labels[missing])})")
    return series


def cluster_codes(cluster: Any, n: int, labels: np.ndarray) -> np.ndarray | None:
    """Integer codes of the cluster labels (sorted as R's ``sort(unique(cluster))``).

    A single cluster is refused: the collapsed score residuals then sum to the
    score at the maximum, zero, and the robust variance is identically 0.
    """
    if cluster is None:
        return None
    codes, levels = pd.factorize(labels_of(cluster, "cluster", n, labels), sort=True)
    if len(levels) < 2:
        raise ValueError(
            f"cluster has one label ({levels[0]!s}) for all {n} rows: the robust variance "
            "of a single cluster is 0 (its score residuals sum to the score at the maximum)"
        )
    return codes.astype(np.int64)


def subject_codes(subject: Any, n: int, labels: np.ndarray) -> np.ndarray | None:
    """Integer codes of the subject identifiers (``coxph``'s ``id=``)."""
    if subject is None:
        return None
    codes, _ = pd.factorize(labels_of(subject, "id", n, labels), sort=True)
    return codes.astype(np.int64)


def offsets(offset: Any, n: int, labels: np.ndarray) -> np.ndarray | None:
    """The offsets as float64: one finite value per row."""
    if offset is None:
        return None
    values = np.asarray(offset, dtype=float)
    if values.shape != (n,):
        raise ValueError(f"offset has shape {values.shape}, expected ({n},)")
    check_finite(values, labels, "offset")
    return values


def entry_times(entry: Any, stop: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
    """The start times of (start, stop] data: finite, each before its row's stop time."""
    if entry is None:
        return None
    start = np.asarray(entry, dtype=float)
    if start.shape != stop.shape:
        raise ValueError(f"entry has shape {start.shape}, expected {stop.shape}")
    check_finite(start, labels, "entry")
    bad = start >= stop
    if bad.any():
        raise ValueError(
            f"entry (start) must be before time (stop): start >= stop in "
            f"{int(bad.sum())} rows (rows {listed(labels[bad])})"
        )
    return start


def check_overlaps(
    start: np.ndarray | None, stop: np.ndarray, subject: np.ndarray | None, labels: np.ndarray
) -> None:
    """Refuse (start, stop] intervals of one subject that overlap in time.

    A subject is at risk once at any time: two of its rows both at risk at some t
    would count it twice in that risk set.
    """
    if subject is None or start is None:
        return
    order = np.lexsort((stop, start, subject))
    same = subject[order][1:] == subject[order][:-1]
    overlap = same & (start[order][1:] < stop[order][:-1])
    if overlap.any():
        pairs = [
            f"{labels[order][i]!s} and {labels[order][i + 1]!s}" for i in np.flatnonzero(overlap)
        ]
        raise ValueError(
            f"overlapping (start, stop] intervals of one subject (id) in "
            f"{int(overlap.sum())} pairs of rows ({listed(pairs, sep='; ')})"
        )
