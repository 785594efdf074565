"""The elastic-net Cox model's inputs: checked once, sorted by time, centred, scaled.

The outcome goes through :func:`toolkit.stats._checks.check_survival` (finite,
non-negative times, events coded 0/1, the rows named) and constant or
duplicated columns through :func:`toolkit.stats._checks.drop_redundant`; what
is glmnet's own is checked here: times must be positive (``coxnet`` refuses a
time of 0), at least 2 events, and the matrix's missing values are named by
row and column. Standardisation is glmnet's ``standardize=TRUE``: each column
scaled by its weighted 1/n standard deviation (weights summing to 1).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from toolkit.stats._checks import check_survival, drop_redundant, listed
from toolkit.stats.coxnet._results import CoxnetWarning


@dataclass(frozen=True)
class Data:
    """Validated data, rows sorted by time (deaths before censored at ties)."""

    x: np.ndarray  # (n, p_kept), centred, sorted rows
    time: np.ndarray
    death: np.ndarray
    weights: np.ndarray  # raw weights, sorted
    start: np.ndarray  # first row with the same time
    end: np.ndarray  # last row with the same time
    order: np.ndarray
    penalty_factor: np.ndarray  # (p_kept,), scaled to sum to p (all columns)
    kept: np.ndarray  # indices of kept columns
    p: int
    names: tuple[str, ...]
    dropped: tuple[str, ...]


def _names(X: Any, p: int) -> tuple[str, ...]:
    columns = getattr(X, "columns", None)
    if columns is not None:
        return tuple(str(c) for c in columns)
    return tuple(f"x{j}" for j in range(p))


def _row_labels(obj: Any, n: int) -> np.ndarray:
    """A pandas object's row labels, else positions (a list's ``.index`` is a method)."""
    index = obj.index if isinstance(obj, pd.Series | pd.DataFrame) else None
    return np.asarray(index) if index is not None and len(index) == n else np.arange(n)


def check_matrix(X: Any) -> tuple[np.ndarray, tuple[str, ...]]:
    """``X`` as a float matrix and its column names; missing values name rows and columns."""
    x = np.asarray(X, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"X must be a 2-D matrix (patients x features), got shape {x.shape}")
    names = _names(X, x.shape[1])
    bad = ~np.isfinite(x)
    if bad.any():
        rows = _row_labels(X, x.shape[0])[bad.any(axis=1)]
        cols = np.asarray(names)[bad.any(axis=0)]
        raise ValueError(
            f"X has {int(bad.sum())} missing or infinite values in rows {listed(rows)} "
            f"and columns {listed(cols)}; impute or remove them first"
        )
    return x, names


def _check_outcome(time: Any, event: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    t, d = np.ravel(time), np.ravel(event)
    if len(t) != n or len(d) != n:
        raise ValueError(
            f"time ({len(t)}) and event ({len(d)}) must have one value per row of X ({n})"
        )
    labels = _row_labels(time, n)
    t, d = check_survival(t, d, names=("time", "event"), require_events=False, rows=labels)
    if (t <= 0).any():
        raise ValueError(
            f"time must be positive (glmnet's Cox model refuses 0): rows {listed(labels[t <= 0])}"
        )
    if d.sum() < 2:
        raise ValueError(f"the elastic-net Cox model needs at least 2 events, got {int(d.sum())}")
    return t, d


def _check_weights(weights: Any, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=float).ravel()
    if len(w) != n or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be n finite non-negative values with a positive sum")
    return w


def _check_penalty_factor(penalty_factor: Any, p: int) -> np.ndarray:
    if penalty_factor is None:
        return np.ones(p)
    v = np.asarray(penalty_factor, dtype=float).ravel()
    if len(v) != p or not np.isfinite(v).all() or (v < 0).any() or v.max() <= 0:
        raise ValueError(
            "penalty_factor must be p finite non-negative values, at least one positive"
        )
    return v


def check_l1_ratio(l1_ratio: float) -> float:
    """``l1_ratio`` (glmnet's ``alpha``) as a float in [0, 1]."""
    a = float(l1_ratio)
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"l1_ratio must be in [0, 1], got {l1_ratio}")
    return a


def _redundant_columns(x: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Boolean mask of constant and duplicated columns, warning with their names."""
    found = drop_redundant(x)
    constant = found.constant
    duplicate_of = [f"{names[j]} (= {names[i]})" for j, i in found.copy_of.items()]
    if constant.any():
        warnings.warn(
            f"dropped {int(constant.sum())} constant column(s): "
            f"{listed(np.asarray(names)[constant])}",
            CoxnetWarning,
            stacklevel=3,
        )
    if duplicate_of:
        warnings.warn(
            f"dropped {len(duplicate_of)} duplicated column(s): {listed(duplicate_of)}",
            CoxnetWarning,
            stacklevel=3,
        )
    return found.dropped


def first_tied(sorted_times: np.ndarray) -> np.ndarray:
    """Per row, the first row with the same time (times sorted)."""
    return np.searchsorted(sorted_times, sorted_times, side="left")


def last_tied(sorted_times: np.ndarray) -> np.ndarray:
    """Per row, the last row with the same time (times sorted)."""
    return np.searchsorted(sorted_times, sorted_times, side="right") - 1


def prepare(X: Any, time: Any, event: Any, weights: Any, penalty_factor: Any) -> Data:
    """Check the inputs, drop redundant columns, sort the rows by time and centre the columns."""
    x, names = check_matrix(X)
    n, p = x.shape
    t, d = _check_outcome(time, event, n)
    w = _check_weights(weights, n)
    v = _check_penalty_factor(penalty_factor, p)
    drop = _redundant_columns(x, names)
    kept = np.flatnonzero(~drop)
    if kept.size == 0:
        raise ValueError("no columns left: every column of X is constant or duplicated")
    v = v * p / v.sum()
    if v[kept].max() <= 0:
        raise ValueError("every remaining column has penalty_factor 0 (an unpenalised model)")
    order = np.lexsort((-d, t))
    ts = t[order]
    xs = x[order] if kept.size == p else x[np.ix_(order, kept)]  # a copy: centred in place
    xs -= np.average(xs, axis=0, weights=w[order])
    return Data(
        x=xs,
        time=ts,
        death=d[order],
        weights=w[order],
        start=first_tied(ts),
        end=last_tied(ts),
        order=order,
        penalty_factor=v[kept],
        kept=kept,
        p=p,
        names=names,
        dropped=tuple(np.asarray(names)[drop]),
    )


def column_scales(x: np.ndarray, q: np.ndarray, standardize: bool) -> np.ndarray:
    """Weighted (weights summing to 1) 1/n standard deviations, glmnet's cstandard."""
    if not standardize:
        return np.ones(x.shape[1])
    mean = q @ x
    sd = np.sqrt(q @ (x - mean) ** 2)
    return np.where(sd > 0, sd, 1.0)
