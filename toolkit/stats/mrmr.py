"""Minimum-redundancy maximum-relevance (mRMR) feature ranking.

Two schemes, selected with ``method``:

``"classic"`` (default; the survival scheme of mRMRe 2.1.2's ``mRMR.classic``)
    Following mRMRe's C++ (``Math.cpp``, ``Data.cpp``, ``Filter.cpp``) with its
    defaults ``continuous_estimator="pearson"``, ``outX=TRUE``,
    ``bootstrap_count=0``, no strata, unit weights:

    * Relevance of feature :math:`x` to a ``Surv(time, event)`` target. A pair
      :math:`(i, j)` is *relevant* when :math:`t_i < t_j` and :math:`\\delta_i = 1`
      (pairs tied on time are never relevant, even if only one had the event;
      both orders of a pair are visited, which doubles every count). It is
      *concordant* when :math:`x_i > x_j` (the earlier death has the larger
      value); pairs tied on :math:`x` stay in the relevant count but are neither
      concordant nor discordant (``outX=TRUE``). So
      :math:`C = \\#\\text{concordant} / \\#\\text{relevant}` (not Harrell's C:
      ties on x count 0, not 1/2, and time ties are dropped), Somers'
      :math:`D = 2C - 1`, and the relevance is :math:`I(x; y) = -\\tfrac12\\log(1 - D^2)`
      Because of the tie rule, D is not antisymmetric: reversing x does not
      negate it when x has ties. (mRMRe stores D in its "mutual information matrix" and applies
      ``computeMi`` when it scores; the entry is symmetric for a survival target).
      For a numeric target, D is replaced by Pearson's r.
    * Redundancy between features: :math:`I(x_a; x_b) = -\\tfrac12\\log(1 - r_{ab}^2)`
      with Pearson's :math:`r` (symmetric, so mRMRe's ``max(MI_ij, MI_ji)`` is moot).
    * Greedy filter. The first feature maximises :math:`I(x; y)`. At level
      :math:`L \\ge 2`, with :math:`S` the :math:`L-1` features chosen so far,
      mRMRe averages the redundancy over the ancestors of the candidate in its
      tree, and the root of that tree is the *target itself*:

      .. math::

          s_L(x) = I(x; y) - \\frac{I(x; y) + \\sum_{s \\in S} I(x; x_s)}{L}
                 = \\frac{L-1}{L}\\Big(I(x; y) - \\frac{1}{L-1}\\sum_{s\\in S} I(x; x_s)\\Big).

      The factor :math:`(L-1)/L > 0` is common to all candidates at a level, so
      the chosen set and order are exactly those of the textbook
      "relevance minus mean redundancy"; ``scores`` reports mRMRe's
      :math:`s_L` (its ``@scores`` slot). Candidates whose score is NaN are
      skipped, as in mRMRe.

``"MID"`` / ``"MIQ"`` (Peng et al. 2005; the ``pymrmr`` 0.1.11 C++ of Peng's code)
    On discrete data (values are rounded half away from zero, as ``pymrmr``
    does), mutual information from the joint frequency table in bits. The
    first feature maximises :math:`I(x; y)`; then
    :math:`\\text{MID} = I(x; y) - \\bar I(x; S)` and
    :math:`\\text{MIQ} = I(x; y) / (\\bar I(x; S) + 10^{-4})` over a pool of the
    5000 most relevant features, scanned from the most relevant down, the first
    strict maximum winning (Peng's rule).

Cost: Somers' D is computed once per feature (the events at each distinct time
against every later patient, vectorised over the features); the correlations
of every feature with a newly chosen one are one product :math:`Z^\top z_s` of
the standardised matrix (the needed columns of the correlation matrix
:math:`Z^\top Z`), so k of p features cost :math:`O(n^2 p + npk)`.

What was verified (tests/stats/test_mrmr.py): mRMRe itself cannot be
installed here (not in Debian, no CRAN access), so the classic scheme is
checked against an independent R implementation of the rules above written as
explicit loops over pairs (the concordance) and over candidates (the filter),
on the features of survival's ``pbc`` and ``colon``, and on hand-checkable
small examples; MID/MIQ are checked against ``pymrmr`` itself.

Deliberate differences: exact score ties (which mRMRe's unstable
``std::sort`` and Peng's quicksort leave to the implementation) go to the
lowest column index; constant and duplicated columns are dropped with a
warning instead of silently yielding NaN or infinite mutual information;
a correlation within 1e-12 of +-1 counts as +-1 (an affine copy of a chosen
feature, infinite redundancy, never chosen: named in a warning) where
mRMRe's rounding would give a large finite redundancy; features with
|Somers' D| = 1 (infinite relevance) are named in a warning, and running out
of features with a defined score is an error naming them. ``scores`` is never
NaN: a candidate with an undefined score is skipped (as mRMRe), a forced
feature with infinite relevance scores +inf (mRMRe: NaN), and forcing two
perfectly correlated features is an error naming them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from toolkit.stats._checks import check_survival, drop_redundant, listed

Method = Literal["classic", "MID", "MIQ"]

_POOL = 5000  # pymrmr's poolUseFeaLen


@dataclass(frozen=True)
class MrmrResult:
    """An mRMR ranking: the selected columns in order of selection.

    ``indices`` index the columns of the ``X`` passed in; ``relevance`` is
    :math:`I(x; y)` of each selected feature (nats for ``classic``, bits for
    MID/MIQ); ``target_association`` is Somers' D (survival target) or
    Pearson's r (numeric target) for ``classic``, NaN for MID/MIQ; ``forced``
    counts the leading entries that were forced in; ``dropped`` lists the
    constant or duplicated columns removed before ranking.
    """

    indices: np.ndarray
    names: tuple[str, ...]
    scores: np.ndarray
    relevance: np.ndarray
    target_association: np.ndarray
    method: str
    forced: int
    dropped: tuple[str, ...]


def rank(
    X: Any,
    target: Any,
    k: int,
    names: Sequence[str] | None = None,
    method: Method = "classic",
    force: Sequence[str] | None = None,
) -> MrmrResult:
    """Rank features by mRMR (mRMRe 2.1.2 ``mRMR.classic``, or Peng's MID/MIQ).

    Parameters
    ----------
    X
        Features, rows x columns (numpy array or DataFrame; a DataFrame's column
        names are used unless ``names`` is given). Discrete codes for MID/MIQ.
    target
        ``(time, event)`` for a survival target (classic only), or one value per
        row: numeric for ``classic``, discrete codes for MID/MIQ.
    k
        Number of features to select (forced ones included).
    names
        Column names (default: DataFrame columns, else ``x1, x2, ...``).
    method
        ``"classic"``, ``"MID"`` or ``"MIQ"`` (see the module docstring).
    force
        Names of columns selected first, in the given order (e.g. clinical
        variables); they count as already chosen in every later redundancy term.

    Returns
    -------
    MrmrResult

    Raises
    ------
    ValueError
        Missing values (naming the column and rows), an unknown forced name,
        no candidate left after dropping constant/duplicated columns, or ``k``
        larger than the number of usable columns.
    """
    if method not in ("classic", "MID", "MIQ"):
        raise ValueError(f"method must be 'classic', 'MID' or 'MIQ', got {method!r}")
    x, cols = _matrix(X, names)
    y = _target(target, x.shape[0], method)
    if method != "classic":
        x = _round_half_away(x)
    keep, dropped = _usable_columns(x, cols)
    forced = _forced(force, cols, keep)
    if not keep.size:
        raise ValueError("no candidate features left after dropping constant/duplicated columns")
    if not 1 <= k <= keep.size:
        raise ValueError(f"k must be between 1 and {keep.size} (usable columns), got {k}")
    if len(forced) > k:
        raise ValueError(f"{len(forced)} forced features exceed k={k}")
    forced_local = [int(np.searchsorted(keep, f)) for f in forced]
    xs = x[:, keep]
    if method == "classic":
        chosen, scores, relevance, assoc = _classic(xs, y, k, forced_local, [cols[j] for j in keep])
    else:
        chosen, scores, relevance = _peng(xs, y, k, forced_local, method, [cols[j] for j in keep])
        assoc = np.full(len(chosen), np.nan)
    indices = keep[np.asarray(chosen, dtype=int)]
    return MrmrResult(
        indices=indices,
        names=tuple(cols[i] for i in indices),
        scores=np.asarray(scores, dtype=float),
        relevance=np.asarray(relevance, dtype=float),
        target_association=np.asarray(assoc, dtype=float),
        method=method,
        forced=len(forced),
        dropped=dropped,
    )


# --- input handling -------------------------------------------------------------------------


def _matrix(X: Any, names: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    columns = getattr(X, "columns", None)
    row_labels = getattr(X, "index", None)
    try:
        x = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"X must be numeric: {exc}") from None
    if x.ndim != 2:
        raise ValueError(f"X must be two-dimensional (rows x features), got shape {x.shape}")
    if names is not None:
        cols = [str(c) for c in names]
    elif columns is not None:
        cols = [str(c) for c in columns]
    else:
        cols = [f"x{i + 1}" for i in range(x.shape[1])]
    if len(cols) != x.shape[1]:
        raise ValueError(f"{len(cols)} names for {x.shape[1]} columns")
    bad = ~np.isfinite(x)
    if bad.any():
        labels = np.asarray(row_labels) if row_labels is not None else np.arange(x.shape[0])
        columns = np.flatnonzero(bad.any(axis=0))
        detail = listed((f"{cols[j]} (rows {listed(labels[bad[:, j]])})" for j in columns), "; ")
        raise ValueError(f"X has missing or infinite values: {detail}")
    return x, cols


def _target(target: Any, n: int, method: str):
    if isinstance(target, tuple) and len(target) == 2:
        if method != "classic":
            raise ValueError("a (time, event) target needs method='classic'")
        time, event = check_survival(*target, names=("time", "event"))
        if len(time) != n:
            raise ValueError(f"target has {len(time)} rows, X has {n}")
        return time, event
    y = np.asarray(target, dtype=float)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"target must be (time, event) or one value per row of X ({n})")
    if not np.isfinite(y).all():
        raise ValueError(
            f"target has missing values (rows {listed(np.flatnonzero(~np.isfinite(y)))})"
        )
    return y if method == "classic" else _round_half_away(y)


def _round_half_away(values: np.ndarray) -> np.ndarray:
    # pymrmr's copyvecdata: (int)(v + 0.5) for v > 0, (int)(v - 0.5) otherwise.
    return np.where(values > 0, np.trunc(values + 0.5), np.trunc(values - 0.5))


def _usable_columns(x: np.ndarray, cols: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    found = drop_redundant(x)
    messages = []
    if found.constant.any():
        messages.append("constant: " + ", ".join(cols[j] for j in np.flatnonzero(found.constant)))
    if found.copy_of:
        pairs = ", ".join(f"{cols[j]} (= {cols[i]})" for j, i in found.copy_of.items())
        messages.append("duplicated: " + pairs)
    if messages:
        warnings.warn(
            "mRMR dropped columns before ranking; " + "; ".join(messages), UserWarning, stacklevel=3
        )
    return found.kept, tuple(cols[j] for j in np.flatnonzero(found.dropped))


def _forced(force: Sequence[str] | None, cols: list[str], keep: np.ndarray) -> list[int]:
    if not force:
        return []
    position = {c: i for i, c in enumerate(cols)}
    unknown = [f for f in force if f not in position]
    if unknown:
        raise ValueError(f"forced features not among the columns: {', '.join(unknown)}")
    out = [position[f] for f in force]
    gone = [cols[i] for i in out if i not in set(keep.tolist())]
    if gone:
        raise ValueError(f"forced features are constant or duplicated: {', '.join(gone)}")
    if len(set(out)) != len(out):
        raise ValueError("forced features are listed twice")
    return out


# --- classic (mRMRe) ------------------------------------------------------------------------


def somers_d(x: np.ndarray, time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Somers' D of each column of ``x`` with ``Surv(time, event)``, mRMRe's pair rules.

    :math:`D = 2\\,\\#\\text{concordant}/\\#\\text{relevant} - 1` with the pair rules
    of mRMRe 2.1.2's ``Math::computeConcordanceIndex`` (``outX=TRUE``): see the
    module docstring. Computed per distinct event time by comparing the events
    at that time with every later observation, vectorised over the columns.
    """
    x = np.atleast_2d(np.asarray(x, dtype=float).T).T
    order = np.argsort(time, kind="stable")
    t, e, xs = time[order], event[order], x[order]
    concordant = np.zeros(x.shape[1])
    relevant = 0.0
    event_rows = np.flatnonzero(e == 1)
    later_start = np.searchsorted(t, t[event_rows], side="right")
    for start in np.unique(later_start):
        later = xs[start:]
        if not later.shape[0]:
            continue
        rows = event_rows[later_start == start]
        for i in rows:
            concordant += np.count_nonzero(later < xs[i], axis=0)
        relevant += rows.size * later.shape[0]
    if relevant == 0:
        raise ValueError("no relevant pairs: no event is followed by a longer follow-up time")
    return 2.0 * concordant / relevant - 1.0


def _mutual_information_gaussian(r: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):  # |r| = 1 only for a column with itself
        return -0.5 * np.log1p(-np.square(r))


def _standardise(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(axis=0)
    return centred / np.sqrt(np.sum(centred**2, axis=0))


def _classic(x: np.ndarray, y, k: int, forced: list[int], cols: Sequence[str]):
    z = _standardise(x)
    if isinstance(y, tuple):
        assoc = somers_d(x, *y)
    else:
        zy = (y - y.mean()) / np.sqrt(np.sum((y - y.mean()) ** 2))
        assoc = zy @ z
    # within rounding of +-1 (an affine copy of a numeric target): exactly +-1, infinite MI
    assoc = np.where(np.abs(assoc) >= 1.0 - 1e-12, np.sign(assoc), assoc)
    relevance = _mutual_information_gaussian(assoc)
    perfect = np.flatnonzero(np.isinf(relevance))
    if perfect.size:
        warnings.warn(
            f"{perfect.size} feature(s) order the outcome perfectly (|association| = 1, "
            f"infinite relevance): {listed(np.asarray(cols)[perfect])}; the first of them "
            "to be chosen scores +inf and the others then have undefined (NaN) scores, as in "
            "mRMRe",
            UserWarning,
            stacklevel=3,
        )
    p = x.shape[1]
    redundancy_sum = np.zeros(p)
    available = np.ones(p, dtype=bool)
    copies: dict[int, int] = {}  # feature -> chosen feature it is perfectly correlated with
    chosen: list[int] = []
    scores: list[float] = []
    for level in range(1, k + 1):
        with np.errstate(invalid="ignore"):  # inf - inf: NaN, skipped below (as mRMRe)
            score = relevance - (relevance + redundancy_sum) / level if level > 1 else relevance
        if level <= len(forced):
            pick = forced[level - 1]
            score = _forced_score(score, pick, relevance, redundancy_sum, copies, cols)
        else:
            valid = available & ~np.isnan(score)
            if not valid.any() or np.max(score[valid]) == -np.inf:
                raise ValueError(_no_candidate(level, k, cols, available, copies, perfect))
            pick = int(np.argmax(np.where(valid, score, -np.inf)))
        chosen.append(pick)
        scores.append(float(score[pick]))
        available[pick] = False
        r = z.T @ z[:, pick]
        affine = np.abs(r) >= 1.0 - 1e-12  # an affine copy, up to rounding: r = +-1
        redundancy_sum += _mutual_information_gaussian(np.where(affine, np.sign(r), r))
        for j in np.flatnonzero(available & affine):
            copies.setdefault(int(j), pick)
    skipped = {j: i for j, i in copies.items() if j not in chosen}
    if skipped:
        pairs = listed(f"{cols[j]} (~ {cols[i]})" for j, i in skipped.items())
        warnings.warn(
            f"{len(skipped)} feature(s) are perfectly correlated with a chosen one (|r| = 1, "
            f"infinite redundancy) and were not eligible after it: {pairs}",
            UserWarning,
            stacklevel=3,
        )
    return chosen, scores, relevance[chosen], assoc[chosen]


def _forced_score(score, pick, relevance, redundancy_sum, copies, cols) -> np.ndarray:
    """A forced feature's score is never NaN: with infinite relevance and finite
    redundancy it is +inf (the limit of relevance minus mean redundancy; mRMRe's
    ``I - (I + sum) / L`` gives inf - inf); a forced feature perfectly correlated
    with one chosen before it is refused, naming both."""
    if pick in copies:
        raise ValueError(
            f"forced features {cols[copies[pick]]} and {cols[pick]} are perfectly correlated "
            "(|r| = 1: infinite redundancy, undefined mRMR score); force only one of them"
        )
    if np.isinf(relevance[pick]) and np.isfinite(redundancy_sum[pick]):
        score = score.copy()
        score[pick] = np.inf
    return score


def _no_candidate(level, k, cols, available, copies, perfect) -> str:
    left = np.flatnonzero(available)
    reasons = []
    redundant = np.asarray([j for j in left if j in copies], dtype=int)
    if redundant.size:
        reasons.append(
            f"perfectly correlated with a chosen feature: {listed(np.asarray(cols)[redundant])}"
        )
    undefined = np.intersect1d(left, perfect)
    if undefined.size:
        reasons.append(f"infinite relevance (NaN score): {listed(np.asarray(cols)[undefined])}")
    return (
        f"mRMR cannot choose feature {level} of {k}: no remaining feature has a defined score "
        f"({'; '.join(reasons) or 'all scores are NaN or -inf'}); ask for k < {level}"
    )


# --- MID / MIQ (Peng) -----------------------------------------------------------------------


_MAX_STATES = 256


def _codes(x: np.ndarray, cols: Sequence[str] = ()) -> tuple[np.ndarray, int]:
    codes = (x - x.min(axis=0)).astype(np.int64)
    wide = np.flatnonzero(codes.max(axis=0) >= _MAX_STATES)
    if wide.size:
        named = listed(cols[j] if len(cols) else f"column {j}" for j in wide)
        raise ValueError(
            f"MID/MIQ need discretised data (integer codes spanning < {_MAX_STATES} values); "
            f"discretise first: {named}"
        )
    return codes, int(codes.max()) + 1


def _mutual_information_discrete(a: np.ndarray, b: np.ndarray, states: int) -> np.ndarray:
    """I(a; b_j) in bits for a code vector ``a`` and each column of code matrix ``b``."""
    n = a.shape[0]
    a_hot = np.equal.outer(a, np.arange(int(a.max()) + 1)).astype(float)  # n x A
    joint = np.stack([a_hot.T @ (b == s) for s in range(states)], axis=1) / n  # A x S x p
    pa = joint.sum(axis=1, keepdims=True)
    pb = joint.sum(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log(joint / (pa * pb)), 0.0)
    return terms.sum(axis=(0, 1)) / np.log(2.0)


def _peng(x: np.ndarray, y: np.ndarray, k: int, forced: list[int], method: str, cols):
    codes, states = _codes(x, cols)
    target = _codes(y[:, None], ["target"])[0][:, 0]
    relevance = _mutual_information_discrete(target, codes, states)
    # Peng's pool: the most relevant features, scanned from the most relevant down.
    pool = np.argsort(-relevance, kind="stable")[:_POOL]
    available = np.ones(x.shape[1], dtype=bool)
    redundancy_sum = np.zeros(x.shape[1])
    chosen: list[int] = []
    scores: list[float] = []
    for level in range(1, k + 1):
        if level == 1:
            score = relevance
        else:
            mean = redundancy_sum / (level - 1)
            score = relevance - mean if method == "MID" else relevance / (mean + 1e-4)
        if level <= len(forced):
            pick = forced[level - 1]
        else:
            candidates = pool[available[pool]]
            pick = int(candidates[np.argmax(score[candidates])])
        chosen.append(pick)
        scores.append(float(score[pick]))
        available[pick] = False
        redundancy_sum += _mutual_information_discrete(codes[:, pick], codes, states)
    return chosen, scores, relevance[chosen]
