"""Input validation shared by the statistics (Cox, KM, log-rank, C-index, coxnet, mRMR, stepwise).

Every public statistic validates its inputs once, here, and raises a
``ValueError`` that names the problem, the variable and the offending rows
(by the row labels of a pandas input, else by 0-based position), so that a
user can find the patients concerned. Nothing is silently dropped: R's
``na.omit`` behaviour is deliberately not reproduced.

``negative_times`` and ``event_coding`` return the problem as text instead of
raising, for the study's pre-flight check (toolkit/config.py), which reports
every problem of the clinical table at once.

``drop_redundant`` finds the constant and duplicated columns that the model
fitters (coxnet, mRMR, stepwise AIC) and the signature drop before fitting;
``listed`` writes the first values of a long list in an error message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
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


def listed(values: Iterable[Any], sep: str = ", ", limit: int = _MAX_LISTED) -> str:
    """The first ``limit`` values of a list for a message: "P003, P007, ... (12 more)"."""
    if not isinstance(values, Sequence | np.ndarray | pd.Index | pd.Series):
        values = list(values)
    shown = sep.join(str(v) for v in values[:limit])
    return shown + (f"{sep}... ({len(values) - limit} more)" if len(values) > limit else "")


def _rows(labels: np.ndarray, bad: np.ndarray, noun: str = "rows") -> str:
    """The first labels of the ``bad`` rows: "rows 1, 4" (``noun="rows"``) or "P002, P005"."""
    shown = listed(labels[np.flatnonzero(bad)])
    return f"rows {shown}" if noun == "rows" else shown


def _count(n: int, noun: str) -> str:
    """A count with its noun: "1 row", "3 rows", "1 patient", "14 patients"."""
    return f"{n} {noun.removesuffix('s') if n == 1 else noun}"


def _as_float(values: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None


def check_finite(array: np.ndarray, labels: np.ndarray, name: str) -> None:
    """Refuse rows of ``array`` holding a missing or infinite value, naming them by ``labels``."""
    flat = array.reshape(array.shape[0], -1) if array.ndim > 1 else array[:, None]
    bad = ~np.isfinite(flat).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{name} has {int(bad.sum())} missing or infinite values ({_rows(labels, bad)})"
        )


def _vector(values: Any, name: str, rows: Any, problem: Callable[..., str]) -> np.ndarray:
    """``values`` as 1-D float64, finite and free of ``problem`` (negative_times, event_coding)."""
    a = _as_float(values, name)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    labels = _labels(values, len(a), rows)
    check_finite(a, labels, name)
    message = problem(a, labels, name)
    if message:
        raise ValueError(message)
    return a


def check_time(time: Any, name: str = "time", rows: Any = None) -> np.ndarray:
    """Validate a vector of follow-up times: 1-D, finite, non-negative."""
    return _vector(time, name, rows, negative_times)


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
    values = listed(f"{v:g}" for v in np.unique(e[bad]))
    return (
        f"{name} must be coded 0 (censored) or 1 (event); found {values} in "
        f"{_count(int(bad.sum()), noun)} ({_rows(labels, bad, noun)})"
    )


def check_event(
    event: Any, name: str = "event", *, require_events: bool = True, rows: Any = None
) -> np.ndarray:
    """Validate an event indicator: 1-D, coded 0 (censored) / 1 (event), float64 out."""
    e = _vector(event, name, rows, event_coding)
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
        check_finite(a, rows, name)
        out.append(a)
    return tuple(out)


# --------------------------------------------------------------------------- redundant columns


@dataclass(frozen=True)
class Redundant:
    """The columns (or blocks of columns) of a design that carry nothing of their own.

    ``constant`` marks the columns with fewer than ``min_distinct`` distinct
    values; ``copy_of`` maps each column that repeats an earlier, non-constant
    one onto the first such column (its "original"), in column order.
    """

    constant: np.ndarray
    copy_of: dict[int, int]

    @property
    def dropped(self) -> np.ndarray:
        """Mask of the columns to drop: constant or a copy."""
        drop = self.constant.copy()
        drop[list(self.copy_of)] = True
        return drop

    @property
    def kept(self) -> np.ndarray:
        """Indices of the columns to keep, in order."""
        return np.flatnonzero(~self.dropped)


def drop_redundant(
    x: np.ndarray | Sequence[np.ndarray], *, min_distinct: int = 2, affine: bool = False
) -> Redundant:
    """Constant and duplicated columns of ``x``, the first copy being the one kept.

    ``x`` is an (n, p) matrix of finite values, or a sequence of (n, w) blocks
    (the dummy columns of one categorical variable each; a block with no
    columns is constant). Two columns (blocks) are copies when their float64
    values are equal byte for byte; with ``affine`` (matrices only) when their
    z-scores are equal to 10 decimals up to sign (|r| = 1). A column is
    constant when it has fewer than ``min_distinct`` distinct values; only
    columns with a single value are left out of the search for copies.

    The callers differ on purpose: coxnet, mRMR and stepwise AIC drop exact
    constants and exact copies (glmnet would split a coefficient between
    copies, mRMR's redundancy would be infinite, ``coxph`` aliases them); the
    signature also drops affine copies (infinite mutual information in mRMR
    whatever the scale) and near-constant columns (``min_distinct`` = max(5,
    10 % of n): sparse ReLU features whose Somers' D is +-1 by chance).
    """
    if not isinstance(x, np.ndarray):
        return _redundant_blocks(x)
    single = np.all(x == x[:1], axis=0)
    keys = _affine_form(x) if affine else x
    constant = single if min_distinct <= 2 else _distinct_below(x, min_distinct)
    # only columns that share their first rows with another can be copies
    candidates = np.flatnonzero(~single)
    head = keys[: min(4, keys.shape[0])][:, candidates].T
    _, group, counts = np.unique(head, axis=0, return_inverse=True, return_counts=True)
    candidates = candidates[counts[group.ravel()] > 1]
    return Redundant(constant, _copies((j, keys[:, j]) for j in candidates))


def _distinct_below(x: np.ndarray, k: int) -> np.ndarray:
    ordered = np.sort(x, axis=0)
    return 1 + np.count_nonzero(np.diff(ordered, axis=0), axis=0) < k


def _affine_form(x: np.ndarray) -> np.ndarray:
    """Z-scores with the sign that makes each column's first non-zero entry positive, rounded."""
    sd = x.std(axis=0)
    z = np.divide(x - x.mean(axis=0), sd, out=np.zeros_like(x), where=sd > 0)
    first = np.argmax(np.abs(z) > 1e-8, axis=0)
    z = z * np.sign(z[first, np.arange(z.shape[1])] + (sd == 0))
    return np.round(z, 10)


def _redundant_blocks(blocks: Sequence[np.ndarray]) -> Redundant:
    arrays = [np.asarray(b, dtype=float) for b in blocks]
    constant = np.array([bool(np.all(b == b[:1])) for b in arrays], dtype=bool)
    return Redundant(constant, _copies((j, arrays[j]) for j in np.flatnonzero(~constant)))


def _copies(columns: Iterable[tuple[int, np.ndarray]]) -> dict[int, int]:
    """Map each (index, values) equal byte for byte (and in shape) to an earlier one onto it."""
    first: dict[bytes, int] = {}
    out: dict[int, int] = {}
    for j, values in columns:
        key = np.ascontiguousarray(values).tobytes() + str(values.shape).encode()
        if key in first:
            out[int(j)] = first[key]
        else:
            first[key] = int(j)
    return out
