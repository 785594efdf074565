"""Kaplan-Meier survival read at fixed times, for the validation statistics.

``S(t) = prod_{s <= t} (1 - d(s) / n(s))`` (``summary(survfit(Surv(time, event) ~ 1),
times, extend = TRUE)``: after the last observed time the last value is carried
forward). A small private helper so that calibration and decision curves do
not depend on the full Kaplan-Meier module's interface.
"""

from __future__ import annotations

import numpy as np


def km_at(time: np.ndarray, event: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Kaplan-Meier survival at each of ``times``; NaN for an empty group."""
    query = np.atleast_1d(np.asarray(times, dtype=float))
    if len(time) == 0:
        return np.full(query.shape, np.nan)
    order = np.argsort(time, kind="stable")
    t, e = time[order], event[order]
    distinct, first = np.unique(t, return_index=True)
    at_risk = len(t) - first
    deaths = np.add.reduceat(e, first)
    surv = np.cumprod(1.0 - deaths / at_risk)
    idx = np.searchsorted(distinct, query, side="right") - 1
    return np.where(idx >= 0, surv[np.maximum(idx, 0)], 1.0)
