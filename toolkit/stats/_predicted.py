"""Checks of horizons and predicted-survival matrices, shared by ``brier`` and ``calibration``.

A horizon beyond the last follow-up has no observed data to compare a
prediction with (``riskRegression::Score`` drops it with a message; the
Kaplan-Meier would only carry its last value forward), so it is refused. A
predicted survival must be a probability and cannot increase with time; the
rows that break either rule are named.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from toolkit.stats._checks import listed


def row_names(values: Any, n: int) -> np.ndarray:
    """A pandas argument's index (the patients), else 0-based row positions."""
    index = getattr(values, "index", None)
    return np.asarray(index) if index is not None and len(index) == n else np.arange(n)


def check_horizons(times: Sequence[float], time: np.ndarray, what: str) -> np.ndarray:
    """Finite, strictly increasing horizons, none beyond the last follow-up."""
    horizons = np.atleast_1d(np.asarray(times, dtype=float))
    if horizons.ndim != 1 or not len(horizons) or not np.isfinite(horizons).all():
        raise ValueError(f"times must be finite horizons, got {times!r}")
    if np.any(np.diff(horizons) <= 0):
        raise ValueError(f"times must be strictly increasing, got {listed(horizons)}")
    beyond = horizons[horizons > time.max()]
    if len(beyond):
        raise ValueError(
            f"horizon {listed(f'{h:g}' for h in beyond)} is beyond the last follow-up "
            f"({time.max():g}): no {what} there"
        )
    return horizons


def check_survival_matrix(survival: np.ndarray, names: np.ndarray, name: str, k: int) -> np.ndarray:
    """An (n, k) matrix of predicted survival (a vector when k = 1), in [0, 1], non-increasing."""
    matrix = survival[:, None] if survival.ndim == 1 else survival
    if matrix.shape != (len(names), k):
        raise ValueError(f"{name} has shape {survival.shape}; expected ({len(names)}, {k})")
    outside = ((matrix < 0) | (matrix > 1)).any(axis=1)
    if outside.any():
        raise ValueError(
            f"{name} has predicted survival outside [0, 1] in rows {listed(names[outside])}"
        )
    rising = (np.diff(matrix, axis=1) > 0).any(axis=1)
    if rising.any():
        raise ValueError(
            f"{name} increases with time (predicted survival must be non-increasing "
            f"across the horizons) in rows {listed(names[rising])}"
        )
    return matrix
