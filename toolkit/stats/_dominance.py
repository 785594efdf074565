"""The dominance sums under the C-index: for every row at once, the weight of the rows
swept before (after) it with a higher, equal or any risk, in O(n log n).

``stats.concordance`` builds Harrell's and Uno's C, their infinitesimal-jackknife
variance and the bootstrap on these sums. Rows are swept in R's order
(:class:`Sweep`: decreasing time, censorings before events at a tied time) and the
"how many earlier rows have a higher risk" questions are answered for all rows at
once by a wavelet decomposition of the risk ranks (one bit of the rank per level,
one stable partition per level, prefix sums within each group), vectorised with
numpy. This plays the role of the balanced tree in survival's ``concordance3.c``.
Unweighted Harrell's C (the common case) takes a leaner path with both counts
packed in one int64 (:func:`dominance_unit`); Uno's C, case weights and the
bootstrap take the general floating-point path (:func:`dominance`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


def changes(values: np.ndarray) -> np.ndarray:
    """True where a sorted array starts a new run of equal values."""
    new = np.empty(values.shape[0], dtype=bool)
    if values.shape[0]:
        new[0] = True
        np.not_equal(values[1:], values[:-1], out=new[1:])
    return new


@dataclass(frozen=True)
class Sweep:
    """R's sweep over the rows: decreasing time, censorings before events at a tie.

    ``key`` is an integer per row, ``2 * (number of later unique times) + event``, so
    that smaller keys are swept first; :attr:`order` sorts it.
    """

    key: np.ndarray
    by_time: np.ndarray
    event: np.ndarray
    time_index: np.ndarray
    unique_times: np.ndarray

    @functools.cached_property
    def order(self) -> np.ndarray:
        descending = self.by_time[::-1]
        # already sorted but for censorings and events within a tie: a cheap stable pass
        return descending[np.argsort(self.key[descending], kind="stable")]


def _exclusive_cumsum(values: np.ndarray, dtype: type = float) -> np.ndarray:
    """Cumulative sums along the last axis, with a leading 0."""
    out = np.zeros((*values.shape[:-1], values.shape[-1] + 1), dtype=dtype)
    np.cumsum(values, axis=-1, out=out[..., 1:])
    return out


def _moved(position: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Scatter along the last axis: ``out[..., position] = values``."""
    out = np.empty_like(values)
    out[..., position] = values
    return out


@dataclass(frozen=True)
class _Level:
    """Runs (equal group and key) and groups (equal rank prefix) of one wavelet level.

    ``run_start``/``run_length`` per run, ``group_start``/``group_end`` per group and
    ``run_group``, the group of each run; rows are sorted by (group, key).
    """

    run_start: np.ndarray
    run_length: np.ndarray
    group_start: np.ndarray
    group_end: np.ndarray
    run_group: np.ndarray

    @classmethod
    def from_changes(cls, run_new: np.ndarray, group_new: np.ndarray) -> _Level:
        """From the flags that start runs and groups (a group start starts a run)."""
        run_start = np.flatnonzero(run_new)
        run_length = np.diff(run_start, append=run_new.size)
        group_start = np.flatnonzero(group_new)
        group_end = np.append(group_start[1:], run_new.size)
        return cls(
            run_start, run_length, group_start, group_end, np.cumsum(group_new[run_start]) - 1
        )

    @classmethod
    def groups_of(cls, group_new: np.ndarray) -> _Level:
        """Groups only: every row its own run, ``run_length`` holding the group sizes."""
        group_start = np.flatnonzero(group_new)
        group_end = np.append(group_start[1:], group_new.size)
        return cls(group_start, group_end - group_start, group_start, group_end, group_start)

    @classmethod
    def of(cls, packed: np.ndarray, key_shift: int, group_mask: int) -> _Level:
        shifted = packed >> key_shift
        run_start = np.flatnonzero(changes(shifted))
        run_length = np.diff(run_start, append=packed.size)
        group_new = changes(shifted[run_start] & group_mask)
        group_start = run_start[group_new]
        group_end = np.append(group_start[1:], packed.size)
        return cls(run_start, run_length, group_start, group_end, np.cumsum(group_new) - 1)

    def shares(self, c: np.ndarray, m: int) -> np.ndarray:
        """Per run: ``c``'s first m rows summed over the earlier runs of its group, the
        other rows over the later runs (``c``: exclusive cumulative sums)."""
        earlier = c[:m, self.run_start] - c[:m, self.group_start][:, self.run_group]
        later = c[m:, self.group_end][:, self.run_group] - c[m:, self.run_start + self.run_length]
        return np.concatenate([earlier, later])

    def run_sums(self, c: np.ndarray) -> np.ndarray:
        """Per row: ``c``'s increase over the row's own run."""
        per_run = c[..., self.run_start + self.run_length] - c[..., self.run_start]
        return np.repeat(per_run, self.run_length, axis=-1)

    def packed_shares(self, c: np.ndarray) -> np.ndarray:
        """As :meth:`shares` for two counts packed in one int64 (earlier: low 32 bits,
        later: high 32 bits). Both fields of a cumulative sum only grow, so the
        differences never borrow across fields."""
        earlier = c[self.run_start] - c[self.group_start][self.run_group]
        later = c[self.group_end][self.run_group] - c[self.run_start + self.run_length]
        return (earlier & _LOW) | (later & _HIGH)

    def partition(self, high: np.ndarray, ones_before: np.ndarray, index: np.ndarray) -> np.ndarray:
        """New positions for a stable partition of each group, bit-0 rows first.

        ``ones_before[i]``: bit-1 rows before position i (length n + 1); ``index``:
        ``arange(n)``. A bit-0 row goes to group start + zeros before it in the group,
        a bit-1 row to group start + zeros in the group + ones before it in the group.
        """
        ones = ones_before[:-1]
        group_ones = ones_before[self.group_start]
        zeros_in_group = (
            self.group_end - self.group_start - (ones_before[self.group_end] - group_ones)
        )
        # per group: offset for bit-0 rows (low 32 bits) and bit-1 rows (high 32 bits)
        offsets = group_ones | ((self.group_start + zeros_in_group - group_ones) << 32)
        offsets = np.repeat(offsets, self.group_end - self.group_start)
        position = offsets & _LOW
        position += index
        position -= ones
        offsets >>= 32
        offsets += ones
        np.copyto(position, offsets, where=high)
        return position


@dataclass(frozen=True)
class Sums:
    """Per-row weighted sums over the other rows (arrays k x n, input order).

    ``earlier_*``: rows swept strictly before, weighted by ``w``; ``later_*``: rows
    swept strictly after, weighted by ``v``; ``*_higher`` / ``*_equal`` / ``*_total``:
    risk rank greater / equal / any. ``same_key`` / ``same_key_rank``: ``w`` summed over
    the rows (the row included) with the same key / the same key and risk rank.
    """

    earlier_higher: np.ndarray
    earlier_equal: np.ndarray
    earlier_total: np.ndarray
    later_higher: np.ndarray
    later_equal: np.ndarray
    later_total: np.ndarray
    same_key: np.ndarray
    same_key_rank: np.ndarray


def _packed_start(sweep: Sweep, rank: np.ndarray) -> tuple[np.ndarray, int]:
    bits = max(1, int(rank.max()).bit_length())
    if int(sweep.key.max()).bit_length() + bits > 62:
        raise ValueError("too many distinct times and risk values for 64-bit sort keys")
    return (sweep.key[sweep.order] << bits) | rank[sweep.order], bits


def dominance(sweep: Sweep, rank: np.ndarray, w: np.ndarray, v: np.ndarray) -> Sums:
    """Weighted 2-D dominance sums for every row at once, in O(n log n).

    For each row i: the weight (``w``, m x n) of the rows swept strictly before i
    with a higher / equal / any risk rank, and the weight (``v``, k x n) of the rows
    swept strictly after it.

    Level b of the wavelet holds the rows sorted by (rank >> b, key). Within a group
    of equal ``rank >> (b + 1)``, each row whose bit b is 0 ranks below each row
    whose bit b is 1, so prefix (suffix) sums of the bit-1 rows' weights give that
    level's share of "earlier (later) and higher"; a stable partition on bit b
    gives the next level. Rows travel in the current order (the partitions move
    them only locally at the deep levels, which keeps memory access cache-friendly).
    """
    m = w.shape[0]
    packed, bits = _packed_start(sweep, rank)
    order = sweep.order
    weights = np.concatenate([w, v])[:, order]
    level = _Level.of(packed, bits, 0)
    c = _exclusive_cumsum(weights)
    totals = _moved(order, np.repeat(level.shares(c, m), level.run_length, axis=1))
    same_key = _moved(order, level.run_sums(c[:m]))
    higher = np.zeros(weights.shape)
    index = np.arange(rank.size)
    for b in range(bits - 1, -1, -1):
        level = _Level.of(packed, b + 1, (1 << (bits - b - 1)) - 1)
        high = ((packed >> b) & 1).astype(bool)
        c = _exclusive_cumsum(weights * high)
        share = np.repeat(level.shares(c, m), level.run_length, axis=1)
        higher += np.where(high, 0.0, share)
        position = level.partition(high, _exclusive_cumsum(high, np.int64), index)
        packed, order = _moved(position, packed), _moved(position, order)
        weights, higher = _moved(position, weights), _moved(position, higher)
    # now sorted by (rank, key): equal-rank sums come from the runs within each rank
    level = _Level.of(packed, 0, (1 << bits) - 1)
    c = _exclusive_cumsum(weights)
    equal = _moved(order, np.repeat(level.shares(c, m), level.run_length, axis=1))
    same_key_rank = _moved(order, level.run_sums(c[:m]))
    higher = _moved(order, higher)
    low, high = slice(None, m), slice(m, None)
    return Sums(
        higher[low], equal[low], totals[low], higher[high], equal[high], totals[high],
        same_key, same_key_rank,
    )  # fmt: skip


_LOW = (1 << 32) - 1
_HIGH = ~_LOW


def dominance_unit(sweep: Sweep, rank: np.ndarray) -> Sums:
    """:func:`dominance` for unit weights and ``v`` = the event indicator.

    Faster than the general sweep in two ways. Both counts travel in one int64
    (rows before: low 32 bits, events after: high 32 bits), so each level needs one
    cumulative sum. And rows with tied keys are put in decreasing risk order and
    then treated as distinct, so the levels need no runs of tied keys: a row's
    tied-key partners of higher risk then all precede it (counted as "earlier and
    higher" by mistake, subtracted at the end) and none of higher risk follows it.
    """
    n = rank.size
    bits = max(1, int(rank.max()).bit_length())
    if n >= 1 << 31 or int(sweep.key.max()).bit_length() + bits > 62:
        raise ValueError(f"{n} rows are too many for the packed 64-bit counts")
    top = (1 << bits) - 1
    composite = (sweep.key << bits) | (top - rank)
    order = np.argsort(composite)
    composite = composite[order]
    event = ((composite >> bits) & 1).astype(np.int64)
    c = _int_cumsum(1 + (event << 32))
    # tied keys: runs of equal (key, rank) inside groups of equal key
    level = _Level.from_changes(changes(composite), changes(composite >> bits))
    key_size = level.group_end - level.group_start
    # rows before the row's key, events after it
    totals = (c[level.group_start] & _LOW) | ((c[n] - c[level.group_end]) & _HIGH)
    totals = _moved(order, np.repeat(totals, key_size))
    before_run = c[level.run_start] - c[level.group_start][level.run_group]
    tied_higher = _moved(order, np.repeat(before_run & _LOW, level.run_length))
    same_key = _moved(order, np.repeat(key_size, key_size))
    # rank in the low bits, event at bit 32
    carried = (top - (composite & top)) | (event << 32)
    acc = np.zeros(n, dtype=np.int64)
    index = np.arange(n)
    for b in range(bits - 1, -1, -1):
        groups = _Level.groups_of(changes((carried >> (b + 1)) & ((1 << (bits - b - 1)) - 1)))
        high = carried >> b
        high &= 1
        # in-place arithmetic below: fewer 8-byte-per-row temporaries at 1e6 rows
        weight = carried & _HIGH
        weight |= 1
        weight &= -high
        c = _int_cumsum(weight)
        share = np.repeat(c[groups.group_start], groups.run_length)
        np.subtract(c[:-1], share, out=share)
        share &= _LOW
        later = np.repeat(c[groups.group_end], groups.run_length)
        later -= c[1:]
        later &= _HIGH
        share |= later
        position = groups.partition(high.astype(bool), c & _LOW, index)
        high -= 1  # all ones for bit-0 rows, zero for bit-1 rows
        share &= high
        acc += share
        carried, order, acc = (
            _moved(position, carried),
            _moved(position, order),
            _moved(position, acc),
        )
    # sorted by (rank, key): equal-rank sums over strictly earlier / later keys
    final = (carried & top) << (63 - bits) | sweep.key[order]
    level = _Level.from_changes(changes(final), changes(carried & top))
    equal = np.repeat(level.packed_shares(_int_cumsum((carried & _HIGH) | 1)), level.run_length)
    same_key_rank = _moved(order, np.repeat(level.run_length, level.run_length))
    equal, acc = _moved(order, equal), _moved(order, acc)

    def fields(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (packed & _LOW).astype(float)[None], (packed >> 32).astype(float)[None]

    earlier_higher = ((acc & _LOW) - tied_higher).astype(float)[None]
    (ee, le), (et, lt) = fields(equal), fields(totals)
    return Sums(
        earlier_higher, ee, et, (acc >> 32).astype(float)[None], le, lt,
        same_key.astype(float)[None], same_key_rank.astype(float)[None],
    )  # fmt: skip


def _int_cumsum(values: np.ndarray) -> np.ndarray:
    return _exclusive_cumsum(values, np.int64)
