"""Fisher's exact test for r x c tables, equal to R's ``fisher.test`` (two-sided).

The p-value is the total probability, under the hypergeometric law with the
observed margins, of every table no more probable than the observed one:
:math:`p = \\sum_{T:\\,P(T) \\le P(T_{obs})(1 + 10^{-7})} P(T)`, with R's relative
tolerance of 1e-7 for ties in probability (``fisher.test``, FEXACT's network
algorithm, Mehta & Patel 1983). We walk the same network: stage j fixes column
j, a node is the vector of row totals still to place, and each node keeps the
distinct partial log-probabilities that reach it (merged when equal to 1e-11),
so tables are never enumerated one by one. Nodes with the same multiset of row
totals are one node, and bounds on the completions settle whole groups of
partial tables at once (FEXACT's two shortcuts). scipy's ``fisher_exact`` covers only
2 x 2 exactly (its r x c version is a Monte-Carlo permutation test), hence ours.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from scipy.special import gammaln

_RELATIVE_TIE = 1e-7  # fisher.test: "relErr <- 1 + 10^(-7)"
_MERGE = 1e11  # partial log-probabilities equal to 1e-11 share a node entry


def _column_fillings(rows: tuple[int, ...], total: int):
    """Every way to split `total` counts of one column over rows with capacities `rows`."""
    if len(rows) == 1:
        if total <= rows[0]:
            yield (total,)
        return
    rest = sum(rows[1:])
    for first in range(max(0, total - rest), min(rows[0], total) + 1):
        for tail in _column_fillings(rows[1:], total - first):
            yield (first, *tail)


def fisher_exact(table: np.ndarray) -> float:
    """Two-sided p-value of Fisher's exact test for an r x c table of counts (R's fisher.test)."""
    counts = np.asarray(table)
    if counts.ndim != 2 or min(counts.shape) < 2:
        raise ValueError(f"Fisher's test needs an r x c table with r, c >= 2, got {counts.shape}")
    if (counts < 0).any() or not np.all(counts == np.round(counts)):
        raise ValueError("Fisher's test needs non-negative integer counts")
    counts = counts.astype(np.int64)
    counts = counts[counts.sum(axis=1) > 0][:, counts.sum(axis=0) > 0]
    if min(counts.shape) < 2:
        return 1.0
    if counts.shape[0] > counts.shape[1]:
        counts = counts.T
    rows = tuple(sorted(int(v) for v in counts.sum(axis=1)))
    columns = sorted((int(v) for v in counts.sum(axis=0)), reverse=True)
    n = sum(columns)
    # log P(T) = constant - sum log(cell!)
    constant = float(
        gammaln(np.array(rows) + 1).sum() + gammaln(np.array(columns) + 1).sum() - gammaln(n + 1)
    )
    observed = constant - float(gammaln(counts + 1).sum())
    threshold = observed + np.log1p(_RELATIVE_TIE)
    return _sum_tail(rows, columns, constant, threshold)


def _even_split(total: int, capacities: np.ndarray) -> float:
    """max of -sum log(t_j!) with sum t_j = total, 0 <= t_j <= capacities (water-filling)."""
    caps = np.sort(capacities)
    left, out = total, 0.0
    for i, cap in enumerate(caps):
        share = left // (len(caps) - i)
        take = min(int(cap), share) if i < len(caps) - 1 else left
        out -= float(gammaln(take + 1))
        left -= take
    return out


def _concentrated(total: int, capacities: np.ndarray) -> float:
    """min of -sum log(t_j!) with sum t_j = total, t_j <= capacities (fill largest first)."""
    left, out = total, 0.0
    for cap in np.sort(capacities)[::-1]:
        take = min(int(cap), left)
        out -= float(gammaln(take + 1))
        left -= take
    return out


def _bounds_two_rows(rows: tuple[int, ...], c: np.ndarray) -> tuple[float, float]:
    """Exact highest, and the concave envelope's lowest, completion value for two rows.

    With first-row counts a_j the value is sum_j f_j(a_j), f_j(a) = -log a! - log(c_j-a)!,
    concave in a: the best split of sum a_j = rows[0] takes the rows[0] largest
    marginal gains log((c_j - a)/(a + 1)) (they decrease in a), so it is exact.
    The lowest is at least sum_j min(f_j) = -sum log c_j!.
    """
    base = -float(gammaln(c + 1).sum())  # every a_j = 0
    take = min(rows)
    if take:
        a = np.concatenate([np.arange(int(cj)) for cj in c])
        cols = np.repeat(c, c)
        gains = np.log(cols - a) - np.log(a + 1)
        best = np.partition(gains, len(gains) - take)[len(gains) - take :]
        high = base + float(best.sum())
    else:
        high = base
    return base, high


def _bounds(rows: tuple[int, ...], columns: list[int]) -> tuple[float, float]:
    """Bounds (lowest, highest) on -sum log(t!) over completions with these margins.

    Each relaxes one set of margins: the highest value is at most the best row-wise
    (or column-wise) even split, the lowest at least the most concentrated one.
    """
    r = np.array(rows)
    c = np.array(columns)
    if len(rows) == 2:
        return _bounds_two_rows(rows, c)
    high = min(sum(_even_split(int(v), c) for v in r), sum(_even_split(int(v), r) for v in c))
    low = max(sum(_concentrated(int(v), c) for v in r), sum(_concentrated(int(v), r) for v in c))
    return low, high


def _sum_tail(rows, columns, constant: float, threshold: float) -> float:
    """Total probability of the tables with log P <= threshold, walking the network.

    A node holds arrays of distinct partial values and the number of partial
    tables reaching each. At each node, bounds on the completions decide whole
    groups at once: partial values whose best completion is already in the tail
    are added in closed form (the completions' weights sum to
    N!/(prod r! prod c!)), those whose worst completion is too probable are
    dropped; only the rest walk on.
    """
    total = 0.0
    nodes: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {rows: (np.zeros(1), np.ones(1))}
    for stage, column in enumerate(columns):
        following: dict[tuple[int, ...], list] = defaultdict(list)
        remaining_columns = columns[stage:]
        for remaining, (values, weights) in nodes.items():
            low, high = _bounds(remaining, remaining_columns)
            log_all = float(
                gammaln(sum(remaining) + 1)
                - gammaln(np.array(remaining) + 1).sum()
                - gammaln(np.array(remaining_columns) + 1).sum()
            )
            done = constant + values + high <= threshold
            total += float(np.sum(weights[done] * np.exp(constant + values[done] + log_all)))
            walk = ~done & (constant + values + low <= threshold)
            if not walk.any():
                continue
            values, weights = values[walk], weights[walk]
            for filling in _column_fillings(remaining, column):
                step = -float(gammaln(np.array(filling) + 1).sum())
                # Completions depend only on the multiset of row totals left.
                child = tuple(sorted(r - f for r, f in zip(remaining, filling, strict=True)))
                following[child].append((values + step, weights))
        nodes = {node: _merge(parts) for node, parts in following.items()}
    values, weights = nodes.get(tuple(0 for _ in rows), (np.zeros(0), np.zeros(0)))
    tail = constant + values <= threshold
    total += float(np.sum(weights[tail] * np.exp(constant + values[tail])))
    return float(min(1.0, total))


def _merge(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Pool partial values arriving at one node; equal values (to 1/_MERGE) add weights."""
    values = np.concatenate([v for v, _ in parts])
    weights = np.concatenate([w for _, w in parts])
    keys = np.round(values * _MERGE).astype(np.int64)
    unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return values[first], np.bincount(inverse, weights=weights, minlength=len(unique))
