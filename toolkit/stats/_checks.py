"""Input validation shared by the survival statistics (Cox, KM, log-rank, C-index).

Every public statistic validates its inputs once, here, and raises a
``ValueError`` that names the problem, the variable and the offending rows
(by the row labels of a pandas input, else by 0-based position), so that a
user can find the patients concerned. Nothing is silently dropped: R's
``na.omit`` behaviour is deliberately not reproduced.

``negative_times`` and ``event_coding`` return the problem as text instead of
raising, for the study's pre-flight check (toolkit/config.py), which reports
every problem of the clinical table at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

_MAX_LISTED = 10


def _labels(data: Any, n: int, rows: Any = None) -> np.ndarray:
    """Row labels: explicit `rows`, else a pandas argument's index, else 0-based positions."""
    if rows is not None:
        labels = np.asarray(rows.index if isinstance(rows, (pd.Series, pd.DataFrame)) else rows)
    elif isinstance(data, (pd.Series, pd.DataFrame)):
        labels = np.asarray(data.index)
    else:
        return np.arange(n)
    return labels if labels.ndim == 1 and len(labels) == n else np.arange(n)


def _rows(labels: np.ndarray, bad: np.ndarray, noun: str = "rows") -> str:
    """The first labels of the ``bad`` rows: "rows 1, 4" (``noun="rows"``) or "P002, P005"."""
    where = labels[np.flatnonzero(bad)]
    shown = ", ".join(str(v) for v in where[:_MAX_LISTED])
    more = f", ... ({len(where) - _MAX_LISTED} more)" if len(where) > _MAX_LISTED else ""
    return f"rows {shown}{more}" if noun == "rows" else f"{shown}{more}"


def _count(n: int, noun: str) -> str:
    """A count with its noun: "1 row", "3 rows", "1 patient", "14 patients"."""
    return f"{n} {noun.removesuffix('s') if n == 1 else noun}"


def _as_float(values: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None


def _finite(array: np.ndarray, labels: np.ndarray, name: str) -> None:
    flat = array.reshape(array.shape[0], -1) if array.ndim > 1 else array[:, None]
    bad = ~np.isfinite(flat).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{name} has {int(bad.sum())} missing or infinite values ({_rows(labels, bad)})"
        )


def check_time(time: Any, name: str = "time", rows: Any = None) -> np.ndarray:
    """Validate a vector of follow-up times: 1-D, finite, non-negative."""
    t = _as_float(time, name)
    if t.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {t.shape}")
    labels = _labels(time, len(t), rows)
    _finite(t, labels, name)
    problem = negative_times(t, labels, name)
    if problem:
        raise ValueError(problem)
    return t


def negative_times(time: np.ndarray, labels: np.ndarray, name: str, noun: str = "rows") -> str:
    """The problem of negative follow-up times, or "" when there is none (NaN is not negative).

    ``noun`` says what the labels are ("rows", "patients"): "os_months has 1 negative
    value (P017)". For callers that collect every problem before raising.
    """
    negative = np.asarray(time, dtype=float) < 0
    if not negative.any():
        return ""
    values = _count(int(negative.sum()), "negative values")
    return f"{name} has {values} ({_rows(labels, negative, noun)})"


def event_coding(event: np.ndarray, labels: np.ndarray, name: str, noun: str = "rows") -> str:
    """The problem of an event indicator not coded 0/1, or "" when there is none (NaN aside).

    "os_event must be coded 0 (censored) or 1 (event); found 2 in 14 patients (P003, ...)".
    """
    e = np.asarray(event, dtype=float)
    bad = np.isfinite(e) & (e != 0) & (e != 1)
    if not bad.any():
        return ""
    values = ", ".join(f"{v:g}" for v in np.unique(e[bad])[:_MAX_LISTED])
    return (
        f"{name} must be coded 0 (censored) or 1 (event); found {values} in "
        f"{_count(int(bad.sum()), noun)} ({_rows(labels, bad, noun)})"
    )


def check_event(
    event: Any, name: str = "event", *, require_events: bool = True, rows: Any = None
) -> np.ndarray:
    """Validate an event indicator: 1-D, coded 0 (censored) / 1 (event), float64 out."""
    e = _as_float(event, name)
    if e.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {e.shape}")
    labels = _labels(event, len(e), rows)
    _finite(e, labels, name)
    problem = event_coding(e, labels, name)
    if problem:
        raise ValueError(problem)
    if require_events and not e.any():
        raise ValueError(f"{name} has no events (all {len(e)} observations censored)")
    return e


def check_survival(
    time: Any,
    event: Any,
    *arrays: Any,
    names: Sequence[str] | None = None,
    require_events: bool = True,
    rows: Any = None,
) -> tuple[np.ndarray, ...]:
    """Validate right-censored survival data and companion arrays; return float64 arrays.

    Checks, in order: equal lengths; no NaN/inf in any array (2-D arrays row-wise);
    no negative times; event coded 0/1; at least one event (``require_events``).

    Parameters
    ----------
    time, event
        Follow-up time and event indicator (1 = event, 0 = censored).
    *arrays
        Further per-row arrays (risk scores, covariate matrices); rows on axis 0.
    names
        Names for the error messages, in order: time, event, then each array.
        Defaults to ``"time"``, ``"event"``, ``"array 1"``, ...
    rows
        Row labels for the messages (patient identifiers). Default: the index of
        the first pandas argument, else 0-based positions.

    Returns
    -------
    ``(time, event, *arrays)`` as float64 numpy arrays.

    Raises
    ------
    ValueError
        Naming the problem, the variable and the offending row labels.
    """
    default = ["time", "event", *(f"array {i + 1}" for i in range(len(arrays)))]
    labels_ = list(names) if names is not None else default
    if len(labels_) != 2 + len(arrays):
        raise ValueError(f"names must name time, event and {len(arrays)} arrays")
    lengths = [len(np.asarray(v)) if np.ndim(v) else -1 for v in (time, event, *arrays)]
    if len(set(lengths)) != 1:
        detail = ", ".join(f"{n}={k}" for n, k in zip(labels_, lengths, strict=True))
        raise ValueError(f"length mismatch: {detail}")
    if rows is None:
        pandas = (v for v in (time, event, *arrays) if isinstance(v, (pd.Series, pd.DataFrame)))
        rows = next(pandas, None)
    rows = _labels(None, lengths[0], rows)
    t = check_time(time, labels_[0], rows=rows)
    e = check_event(event, labels_[1], require_events=require_events, rows=rows)
    out = [t, e]
    for values, name in zip(arrays, labels_[2:], strict=True):
        a = _as_float(values, name)
        _finite(a, rows, name)
        out.append(a)
    return tuple(out)
