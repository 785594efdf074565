"""Concordance pair counts on counting-process (start, stop] data, as ``concordance4``.

survival 3.5-3's ``concordancefit`` on ``Surv(start, stop, event)`` data sweeps the
rows backwards in time and drops a row from the risk tree once the sweep passes
its start (``concordance4`` in concordance3.c). The pairs that result: an event of
row i at time t is compared with every row j at risk at t, that is with
``start_j < t`` and either ``stop_j > t`` or ``stop_j = t`` with j censored (a
censoring tied with an event counts as later, as for right-censored data). Events
tied at t are tied on time, not compared. A row that starts exactly at an event
time t is not at risk at t. The rows of one subject are separate rows, as in R.

Here each event time's risk set is formed directly, so the cost is
O(n x event times) rather than R's O(n log n); the counts are the same. Only
``timewt = "n"`` is offered: survival 3.5-3 refuses "S/G" and "n/G2" for (start,
stop] data and crashes (a segfault) on "S" and "I", even on ``heart``, so those have
no reference to match.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CountingRows:
    """One stratum's pair counts and per-row shares, the fields of ``concordance._Rows``.

    ``counts`` are R's native (concordant, discordant, tied on risk); the per-row
    arrays exclude the row's own case weight, as R's influence matrix does.
    """

    counts: tuple[float, float, float]
    concordant: np.ndarray
    discordant: np.ndarray
    tied: np.ndarray
    w: np.ndarray
    tied_time: float
    tied_both: float
    cox: float


def _rank_sums(rank: np.ndarray, weight: np.ndarray, size: int):
    """Per rank: the weight strictly below, tied with and strictly above it."""
    at = np.bincount(rank, weights=weight, minlength=size)
    cumulative = np.cumsum(at)
    return cumulative - at, at, cumulative[-1] - cumulative


def _event_time(rank, w, at_risk, dying, weight_t, size):
    """One event time's pair counts, per-row shares, time ties and Cox-variance term."""
    below, tied, above = _rank_sums(rank[at_risk], w[at_risk], size)
    d_below, d_tied, d_above = _rank_sums(rank[dying], w[dying], size)
    r_dead, w_dead = rank[dying], w[dying]
    counts = np.array(
        [w_dead @ above[r_dead], w_dead @ below[r_dead], w_dead @ tied[r_dead]]
    )  # native: the later row with the larger risk is concordant
    rows = np.zeros((3, rank.size))
    rows[:, dying] = weight_t * np.vstack([above[r_dead], below[r_dead], tied[r_dead]])
    r_risk = rank[at_risk]
    rows[:, at_risk] = weight_t * np.vstack([d_below[r_risk], d_above[r_risk], d_tied[r_risk]])
    dead_total = float(w_dead.sum())
    tied_time = (dead_total**2 - float(w_dead @ w_dead)) / 2
    tied_both = weight_t * float(d_tied @ d_tied - w_dead @ w_dead) / 2
    # the Cox variance's rank spread over the whole risk set, deaths included
    everyone = at_risk | dying
    b, _, a = _rank_sums(rank[everyone], w[everyone], size)
    spread = (b - a)[rank[everyone]]
    cox = dead_total * weight_t * float(w[everyone] @ spread**2) / float(w[everyone].sum())
    return weight_t * counts, rows, tied_time, tied_both, cox


def counting_rows(
    start: np.ndarray,
    stop: np.ndarray,
    event: np.ndarray,
    rank: np.ndarray,
    w: np.ndarray,
    ymax: float | None,
) -> CountingRows:
    """The pair counts, per-row shares and Cox variance of one stratum of (start, stop] rows.

    ``rank`` is the 0-based dense rank of the risk score, ``w`` the case weights.
    R's tied-on-time count of ``concordance4`` carries no time weight (its tied on
    both does); with ``timewt = "n"`` that is immaterial except for ``ymax``, and
    we keep R's form.
    """
    size = int(rank.max()) + 1 if rank.size else 0
    counts = np.zeros(3)
    rows = np.zeros((3, rank.size))
    tied_time = tied_both = cox = 0.0
    for t in np.unique(stop[event == 1]):
        dying = (stop == t) & (event == 1)
        at_risk = (start < t) & ((stop > t) | ((stop == t) & (event == 0)))
        weight_t = 0.0 if ymax is not None and t > ymax else 1.0
        c, r, tt, tb, v = _event_time(rank, w, at_risk, dying, weight_t, size)
        counts += c
        rows += r
        tied_time += tt
        tied_both += tb
        cox += v
    return CountingRows(
        counts=(float(counts[0]), float(counts[1]), float(counts[2])),
        concordant=rows[0],
        discordant=rows[1],
        tied=rows[2],
        w=w,
        tied_time=tied_time - tied_both,
        tied_both=tied_both,
        cox=cox,
    )
