"""Concordance (C-index): Harrell's and Uno's C, the infinitesimal-jackknife variance,
the comparison of two risk scores on the same patients, a bootstrap interval,
(:func:`concordance_fit`) the stratified, time-weighted C with R's Cox-model ``cvar``
(also on counting-process (start, stop] data, ``entry=``),
and (:func:`uno_ipcw`) scikit-survival's Uno's C with the censoring distribution
estimated on a training set and a tolerance for tied risks.

Everything here reproduces ``survival::concordance`` (survival 3.5-3) with
``reverse=TRUE``: a higher risk score means a worse prognosis, as everywhere in
sigkit. The definitions, following Therneau's "Concordance" vignette:

* A pair (i, j) is *comparable* when i has an event at time t_i and j is still at
  risk after it: t_j > t_i, or j is censored at t_j = t_i (a censoring tied with an
  event counts as later). Two events at the same time are *tied on time*.
* A comparable pair is *concordant* when the earlier failure has the higher risk,
  *discordant* when it has the lower risk and *tied on risk* otherwise. With case
  weights w and a time weight W(t_i) (1 for Harrell, 1/G(t_i-)^2 for Uno) a pair
  counts w_i * w_j * W(t_i).
* C = (concordant + tied_risk / 2) / (concordant + discordant + tied_risk).
* Its variance is the infinitesimal jackknife (IJ) one that R reports: with
  npair = concordant + discordant + tied_risk and Somers' d = 2C - 1, each row's
  influence on d is ``w_i * ((c_i - d_i) - d * (c_i + d_i + t_i)) / npair`` where
  c_i, d_i, t_i are the (weighted) numbers of concordant, discordant and risk-tied
  pairs that row i belongs to, and var(C) = sum(influence^2) / 4.

The pair counts and the per-row counts c_i, d_i, t_i are computed in O(n log n)
by the dominance sums of ``stats._dominance`` (rows swept in R's order, a wavelet
decomposition of the risk ranks in the role of the balanced tree of survival's
``concordance3.c``). Unweighted Harrell's C (the common case) takes a leaner path
with both counts packed in one int64; at n = 1e6 it takes about 0.7 s of CPU,
about 5x less than ``survival::concordance`` (benchmarks/README.md, "Concordance").
Uno's C, case weights and the bootstrap take the general floating-point path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from toolkit.stats._checks import check_survival, listed
from toolkit.stats._concordance_counting import counting_rows
from toolkit.stats._coxinput import entry_times, row_labels
from toolkit.stats._dominance import Sums, Sweep, changes, dominance, dominance_unit
from toolkit.stats._ipcw import km_steps, step_at

__all__ = [
    "TIME_WEIGHTS",
    "Comparison",
    "Concordance",
    "ConcordanceFit",
    "IPCWConcordance",
    "StratumCounts",
    "bootstrap_ci",
    "compare",
    "concordance_fit",
    "harrell",
    "harrell_columns",
    "timefix",
    "uno",
    "uno_ipcw",
]

# survival::aeqSurv's default tolerance, sqrt(.Machine$double.eps).
_TIMEFIX_TOLERANCE = float(np.sqrt(np.finfo(float).eps))
# Bootstrap replicates are processed in blocks of about this many cells (rows x replicates).
_BOOTSTRAP_BLOCK_CELLS = 4_000_000


@dataclass(frozen=True)
class Concordance:
    """A C-index with its pair counts and infinitesimal-jackknife standard error.

    ``concordant``, ``discordant``, ``tied_risk``, ``tied_time`` and ``tied_both``
    are R's ``count`` vector (concordant, discordant, tied.x, tied.y, tied.xy) of
    ``concordance(..., reverse=TRUE)``: weighted pair counts, each pair weighted by
    the product of the case weights and, for Uno's C, the time weight.
    ``variance`` is R's ``var``; ``se = sqrt(variance)``.
    """

    c: float
    se: float
    concordant: float
    discordant: float
    tied_risk: float
    tied_time: float
    tied_both: float
    variance: float
    n: int


@dataclass(frozen=True)
class Comparison:
    """The difference between two C-indices on the same patients, with its IJ test."""

    c_a: float
    c_b: float
    diff: float
    se_diff: float
    z: float
    p: float


@dataclass(frozen=True)
class _Fit:
    """A concordance with the per-row influence on C (R's ``dfbeta / 2``, reversed)."""

    result: Concordance
    influence: np.ndarray


# --------------------------------------------------------------------------- inputs


def _timefix_sorted(sorted_time: np.ndarray) -> np.ndarray:
    """One ``aeqSurv`` pass over sorted times."""
    new = changes(sorted_time)
    unique = sorted_time[new]
    if unique.size < 2:
        return sorted_time
    gaps = np.diff(unique)
    tied = gaps <= _TIMEFIX_TOLERANCE
    scale = float(np.mean(np.abs(unique)))
    if scale > 0:
        tied |= gaps / scale <= _TIMEFIX_TOLERANCE
    if not tied.any():
        return sorted_time
    keep = np.concatenate(([True], ~tied))
    cuts = unique[keep]
    return cuts[np.cumsum(keep)[np.cumsum(new) - 1] - 1]


def timefix(time: Any) -> np.ndarray:
    """Merge nearly equal times as R's ``concordance`` does (``survival::aeqSurv``, twice).

    Sorted unique times whose gap is at most sqrt(machine epsilon), absolutely or
    relative to the mean absolute unique time, are moved onto the first time of
    their run. ``survival::concordance`` (formula and ``coxph`` methods) applies
    ``aeqSurv`` itself and ``concordancefit`` applies it again, so the pass runs
    twice here. In survival 3.5-3 ``concordance(..., timefix=FALSE)`` skips only the
    first pass (the option is not passed on to ``concordancefit``), so R always
    merges nearly equal times; sigkit matches that and offers no switch.
    """
    t = np.asarray(time, dtype=float)
    order = np.argsort(t, kind="stable")
    fixed = np.empty_like(t)
    fixed[order] = _timefix_sorted(_timefix_sorted(t[order]))
    return fixed


def _sweep(time: np.ndarray, event: np.ndarray) -> Sweep:
    by_time = np.argsort(time)  # the order within a tie never matters
    return _sweep_sorted(by_time, _timefix_sorted(_timefix_sorted(time[by_time])), event)


def _sweep_sorted(by_time: np.ndarray, fixed: np.ndarray, event: np.ndarray) -> Sweep:
    """The sweep of rows whose merged times, in the order ``by_time``, are ``fixed``."""
    new = changes(fixed)
    index_sorted = np.cumsum(new) - 1
    n_times = int(index_sorted[-1]) + 1
    time_index = np.empty(fixed.size, dtype=np.int64)
    time_index[by_time] = index_sorted
    ev = event.astype(np.int64)
    key = 2 * (n_times - 1 - time_index) + ev
    return Sweep(key, by_time, ev.astype(bool), time_index, fixed[new])


def _validated(
    time: Any, event: Any, risks: list[Any], names: list[str], weights: Any = None
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], np.ndarray | None]:
    arrays = [*risks] if weights is None else [*risks, weights]
    labels = ["time", "event", *names] + ([] if weights is None else ["weights"])
    checked = check_survival(time, event, *arrays, names=labels)
    t, e = checked[0], checked[1]
    risk_arrays = list(checked[2 : 2 + len(risks)])
    for a, name in zip(risk_arrays, names, strict=True):
        if a.ndim != 1:
            raise ValueError(f"{name} must be one risk score per row, got shape {a.shape}")
    w = None
    if weights is not None:
        w = checked[-1]
        if w.ndim != 1:
            raise ValueError(f"weights must be one weight per row, got shape {w.shape}")
        bad = ~(w > 0)
        if bad.any():
            rows = listed(np.flatnonzero(bad))
            raise ValueError(f"weights must be positive, one per row; not so at rows {rows}")
    return t, e, risk_arrays, w


def _dense_rank(values: np.ndarray) -> np.ndarray:
    """0-based rank of each value among the distinct values."""
    order = np.argsort(values)
    rank = np.empty(values.size, dtype=np.int64)
    rank[order] = np.cumsum(changes(values[order])) - 1
    return rank


# --------------------------------------------------------------------------- C and its influence


def _time_ties(sums: Sums, pair_weight: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """R's tied.y (events tied on time but not on risk) and tied.xy (tied on both).

    An event row's key is shared only by the events at its time, so the other rows
    with its key (and rank) are exactly its time-tied (and risk-tied) partners.
    """
    aw = pair_weight * w
    tied_time = float(aw @ (sums.same_key[0] - w)) / 2
    tied_both = float(aw @ (sums.same_key_rank[0] - w)) / 2
    return tied_time - tied_both, tied_both


def _pairs(
    sweep: Sweep, risk: np.ndarray, w: np.ndarray | None, time_weight: np.ndarray | None
) -> tuple[Sums, np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Dominance sums, pair weights, case weights and R's native pair counts of one risk score.

    The counts are R's native (concordant, discordant, tied on risk), before
    ``reverse=TRUE`` swaps the first two. ``w=None``: unit case weights;
    ``time_weight`` (per unique time): None for Harrell's 1.
    """
    rank = _dense_rank(risk)
    unit_weights = w is None
    w = np.ones(rank.size) if w is None else w
    if time_weight is None:
        pair_weight = sweep.event.astype(float)
    else:
        pair_weight = np.where(sweep.event, time_weight[sweep.time_index], 0.0)
    if unit_weights and time_weight is None:
        sums = dominance_unit(sweep, rank)
    else:
        sums = dominance(sweep, rank, w[None, :], (pair_weight * w)[None, :])
    g_t, e_t, t_t = sums.earlier_higher[0], sums.earlier_equal[0], sums.earlier_total[0]
    aw = pair_weight * w
    counts = (float(aw @ g_t), float(aw @ (t_t - g_t - e_t)), float(aw @ e_t))
    return sums, pair_weight, w, counts


@dataclass(frozen=True)
class _Rows:
    """One risk score's pair counts over one sweep, and each row's share of them.

    ``counts``: R's native (concordant, discordant, tied on risk), before
    ``reverse=TRUE`` swaps the first two; ``concordant``, ``discordant``, ``tied``:
    per row, the (weighted) pairs it belongs to, in the same orientation;
    ``w``: the case weights (ones for ``None``).
    """

    counts: tuple[float, float, float]
    concordant: np.ndarray
    discordant: np.ndarray
    tied: np.ndarray
    w: np.ndarray
    tied_time: float
    tied_both: float


def _rows(
    sweep: Sweep, risk: np.ndarray, w: np.ndarray | None, time_weight: np.ndarray | None
) -> _Rows:
    sums, pair_weight, w, counts = _pairs(sweep, risk, w, time_weight)
    g_t, e_t, t_t = sums.earlier_higher[0], sums.earlier_equal[0], sums.earlier_total[0]
    g_d, e_d, t_d = sums.later_higher[0], sums.later_equal[0], sums.later_total[0]
    l_t = t_t - g_t - e_t
    # per row, in R's native orientation (a larger x with longer survival is concordant)
    row_concordant = pair_weight * g_t + (t_d - g_d - e_d)
    row_discordant = pair_weight * l_t + g_d
    row_tied = pair_weight * e_t + e_d
    tied_time, tied_both = _time_ties(sums, pair_weight, w)
    return _Rows(counts, row_concordant, row_discordant, row_tied, w, tied_time, tied_both)


def _somers(native_concordant: float, native_discordant: float, tied_risk: float):
    npair = native_concordant + native_discordant + tied_risk
    if npair <= 0:
        raise ValueError(
            "no comparable pairs (every event is tied in time with all later follow-up, "
            "or falls after tau): the C-index is undefined"
        )
    return npair, (native_concordant - native_discordant) / npair


def _dfbeta(rows: _Rows, somers: float, npair: float) -> np.ndarray:
    """R's per-row influence on Somers' d (native orientation)."""
    return (
        rows.w
        * (
            (rows.concordant - rows.discordant)
            - somers * (rows.concordant + rows.discordant + rows.tied)
        )
        / npair
    )


def _concordance(
    sweep: Sweep, risk: np.ndarray, w: np.ndarray | None, time_weight: np.ndarray | None
) -> _Fit:
    """Counts, C, IJ variance and influence. ``w=None``: unit case weights;
    ``time_weight`` (per unique time): None for Harrell's 1."""
    rows = _rows(sweep, risk, w, time_weight)
    # R's native counts; reverse=TRUE swaps concordant and discordant
    native_concordant, native_discordant, tied_risk = rows.counts
    npair, somers = _somers(*rows.counts)
    dfbeta = _dfbeta(rows, somers, npair)
    variance = float(dfbeta @ dfbeta) / 4
    result = Concordance(
        c=(native_discordant + tied_risk / 2) / npair,
        se=float(np.sqrt(variance)),
        concordant=native_discordant,
        discordant=native_concordant,
        tied_risk=tied_risk,
        tied_time=rows.tied_time,
        tied_both=rows.tied_both,
        variance=variance,
        n=rows.w.size,
    )
    # reverse=TRUE flips the influence's sign (covariances are unchanged)
    return _Fit(result, -dfbeta / 2)


def harrell(time: Any, event: Any, risk: Any, weights: Any = None) -> Concordance:
    """Harrell's C-index of a risk score (higher = worse), with R's IJ standard error.

    Equals ``survival::concordance(Surv(time, event) ~ risk, weights = weights,
    reverse = TRUE)`` of survival 3.5-3: ``c``, ``se = sqrt(var)`` and the ``count``
    vector (pair definitions in the module docstring). Nearly equal times are
    merged first exactly as R does (see :func:`timefix`: R cannot switch this off
    in 3.5-3, ``timefix=FALSE`` notwithstanding, so neither can sigkit).
    O(n log n): about a second for a million rows.

    Parameters
    ----------
    time, event
        Follow-up time (>= 0) and event indicator (1 event, 0 censored).
    risk
        Risk score; higher means earlier expected failure.
    weights
        Optional positive case weights, as R's ``weights`` (a pair counts
        ``w_i * w_j``; the variance is R's ``sum((w_i * influence_i)^2) / 4``).

    Returns
    -------
    Concordance
        ``c = (concordant + tied_risk / 2) / (concordant + discordant + tied_risk)``.

    Raises
    ------
    ValueError
        NaN/inf, negative times, events not 0/1, length mismatch, no events or no
        comparable pair; the message names the offending rows.
    """
    t, e, (x,), w = _validated(time, event, [risk], ["risk"], weights)
    return _concordance(_sweep(t, e), x, w, None).result


def harrell_columns(time: Any, event: Any, risks: Any, weights: Any = None) -> np.ndarray:
    """Harrell's C of each column of ``risks`` (higher = worse), NaN where no pair is comparable.

    The ``c`` of :func:`harrell` (``survival::concordance(..., reverse = TRUE)``,
    nearly equal times merged as there) for k risk scores of the same rows,
    without their variance: for scoring a whole penalty path on one
    cross-validation fold, as glmnet's ``Cindex`` does for
    ``cv.glmnet(type.measure = "C")``. Unlike :func:`harrell`, rows with no
    comparable pair (no events, say) give NaN instead of an error, and a case
    weight may be 0 (its row is then in no pair). Where :func:`harrell` is
    defined, column j gives its ``c`` of ``risks[:, j]`` bit for bit.

    Parameters
    ----------
    time, event
        Follow-up time (>= 0) and event indicator (1 event, 0 censored).
    risks
        ``(n, k)``: one risk score per column.
    weights
        Optional non-negative case weights (a pair counts ``w_i * w_j``).

    Returns
    -------
    numpy.ndarray
        ``(k,)``: ``(concordant + tied_risk / 2) / (concordant + discordant + tied_risk)``.
    """
    arrays = [risks] if weights is None else [risks, weights]
    names = ["time", "event", "risks"] + ([] if weights is None else ["weights"])
    checked = check_survival(time, event, *arrays, names=names, require_events=False)
    t, e, x = checked[:3]
    if x.ndim != 2:
        raise ValueError(f"risks must be n x k (one risk score per column), got shape {x.shape}")
    w = None if weights is None else checked[3]
    if w is not None and (w.ndim != 1 or (w < 0).any()):
        raise ValueError("weights must be one non-negative weight per row")
    sweep = _sweep(t, e)
    c = np.full(x.shape[1], np.nan)
    for j in range(x.shape[1]):
        native_concordant, native_discordant, tied_risk = _pairs(sweep, x[:, j], w, None)[3]
        npair = native_concordant + native_discordant + tied_risk
        if npair > 0:
            c[j] = (native_discordant + tied_risk / 2) / npair
    return c


def compare(time: Any, event: Any, risk_a: Any, risk_b: Any) -> Comparison:
    """Compare two risk scores' C-indices on the same patients (IJ z-test).

    Equals the contrast ``c(1, -1)`` applied to ``survival::concordance(fit_a,
    fit_b)`` (survival 3.5-3, ``reverse=TRUE`` as for ``coxph`` fits): ``var`` there
    is the joint infinitesimal-jackknife covariance ``crossprod(dfbeta)`` of the two
    C-indices, so ``se_diff = sqrt(v_aa + v_bb - 2 v_ab)``, ``z = diff / se_diff`` and
    ``p`` is two-sided normal. This is the test the study reports for "integrated
    versus clinical nomogram" (the paper's 0.739 vs 0.664, P = 0.002): it accounts
    for both C-indices coming from the same patients.

    Parameters
    ----------
    time, event
        Follow-up time and event indicator (1 event, 0 censored).
    risk_a, risk_b
        The two risk scores (higher = worse), e.g. two models' linear predictors.

    Returns
    -------
    Comparison
        ``diff = c_a - c_b``.
    """
    t, e, (xa, xb), _ = _validated(time, event, [risk_a, risk_b], ["risk_a", "risk_b"])
    sweep = _sweep(t, e)
    fit_a = _concordance(sweep, xa, None, None)
    fit_b = _concordance(sweep, xb, None, None)
    va = float(fit_a.influence @ fit_a.influence)
    vb = float(fit_b.influence @ fit_b.influence)
    cov = float(fit_a.influence @ fit_b.influence)
    diff = fit_a.result.c - fit_b.result.c
    se = float(np.sqrt(max(va + vb - 2 * cov, 0.0)))
    z = diff / se if se > 0 else float("nan")
    p = float(2 * stats.norm.sf(abs(z))) if se > 0 else float("nan")
    return Comparison(fit_a.result.c, fit_b.result.c, diff, se, z, p)


def _lagged_survival(
    sweep: Sweep, w: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """S(t-), G(t-) and the number at risk at every unique time, as survival's ``fastkm1``.

    S is the (case-weighted) Kaplan-Meier of the events and G that of the censoring,
    both left-continuous. At a time with both events and censorings the events
    leave the risk set first, so the censoring factor is ``1 - C / (N - D)``; the
    number at risk N counts every row followed to the time or beyond.
    """
    n_times = sweep.unique_times.size
    dead = sweep.event if w is None else sweep.event * w
    alive = ~sweep.event if w is None else ~sweep.event * w
    deaths = np.bincount(sweep.time_index, weights=dead, minlength=n_times)
    censored = np.bincount(sweep.time_index, weights=alive, minlength=n_times)
    n_risk = np.cumsum((deaths + censored)[::-1])[::-1]
    at_risk = n_risk - deaths
    factor = np.ones(n_times)
    has = censored > 0
    factor[has] = 1 - censored[has] / at_risk[has]
    g = np.concatenate(([1.0], np.cumprod(factor)[:-1]))
    survival = np.ones(n_times)
    has = deaths > 0
    survival[has] = at_risk[has] / n_risk[has]
    return np.concatenate(([1.0], np.cumprod(survival)[:-1])), g, n_risk


def uno(time: Any, event: Any, risk: Any, tau: float | None = None) -> Concordance:
    """Uno's C-index: pairs weighted by 1/G(t_i-)^2, events restricted to t_i <= tau.

    Equals ``survival::concordance(Surv(time, event) ~ risk, timewt = "n/G2",
    ymax = tau, reverse = TRUE)`` of survival 3.5-3, with its IJ standard error (R
    treats the weights as fixed). G is the censoring distribution's Kaplan-Meier
    estimate just before each event time (ties: events leave before censorings, as
    survival's ``fastkm1``). As in R, ``tau`` only zeroes the weight of events after
    it; rows followed beyond tau still count as "at risk" for earlier events. With
    fewer than two events R falls back to unit weights, and so does this function.
    Times are merged as in :func:`timefix`.

    Parameters
    ----------
    time, event, risk
        As :func:`harrell`.
    tau
        Truncation time; ``None`` for no truncation.
    """
    t, e, (x,), _ = _validated(time, event, [risk], ["risk"])
    sweep = _sweep(t, e)
    if e.sum() >= 2:
        g = _lagged_survival(sweep)[1]
        time_weight = 1.0 / (g * g)
    else:
        time_weight = np.ones(sweep.unique_times.size)
    if tau is not None:
        time_weight = np.where(sweep.unique_times > tau, 0.0, time_weight)
    return _concordance(sweep, x, np.ones(t.size), time_weight).result


@dataclass(frozen=True)
class StratumCounts:
    """One stratum's row of R's ``count`` matrix (``reverse=TRUE``) and its size."""

    stratum: str
    n: int
    concordant: float
    discordant: float
    tied_risk: float
    tied_time: float
    tied_both: float


@dataclass(frozen=True)
class ConcordanceFit:
    """A (stratified, time-weighted) C-index as ``survival::concordance`` reports it.

    ``concordance`` holds the pooled C, its infinitesimal-jackknife ``variance``
    (R's ``var``, the se that ``print.concordance`` shows) and the pair counts
    summed over the strata; ``cvar`` is R's ``cvar``, the variance of C under the
    Cox model (the score-test variance of the risk-set ranks, see
    :func:`concordance_fit`); ``strata`` the per-stratum counts in the order of
    the stratum levels (one row ``"all"`` without strata).
    """

    concordance: Concordance
    cvar: float
    timewt: str
    strata: tuple[StratumCounts, ...]


# survival 3.5-3's concordancefit: timewt = c("n", "S", "S/G", "n/G2", "I").
TIME_WEIGHTS = ("n", "S", "S/G", "n/G2", "I")


def _checked_timewt(timewt: str, ymax: float | None) -> None:
    if timewt not in TIME_WEIGHTS:
        known = ", ".join(repr(v) for v in TIME_WEIGHTS)
        hint = (
            " (survival 3.5-3 has no 'n/G': R's match.arg silently reads it as 'n/G2', "
            "so ask for 'n/G2' if that is meant)"
            if timewt == "n/G"
            else ""
        )
        raise ValueError(f"unknown timewt {timewt!r}: use one of {known}{hint}")
    if ymax is not None and not np.isfinite(ymax):
        raise ValueError(f"ymax must be a finite time, got {ymax!r}")


def _layers(labels: Any, n: int, name: str = "strata") -> pd.Categorical:
    """Labels as R's factor (sorted levels, a categorical keeps its own order)."""
    if isinstance(getattr(labels, "dtype", None), pd.CategoricalDtype):
        layers = pd.Categorical(labels)
    else:
        layers = pd.Categorical(np.asarray(labels, dtype=object).ravel())
    if len(layers) != n:
        raise ValueError(f"{name} must be one label per row: {len(layers)} labels for {n} rows")
    missing = np.flatnonzero(layers.codes < 0)
    if missing.size:
        rows = np.asarray(labels.index) if isinstance(labels, pd.Series) else np.arange(n)
        shown = listed(rows[missing])
        raise ValueError(f"{name} has {missing.size} missing labels (NaN or None), rows {shown}")
    return layers.remove_unused_categories()


def _time_weight(
    sweep: Sweep, w: np.ndarray | None, timewt: str, ymax: float | None
) -> np.ndarray | None:
    """R's ``timewt`` per unique time of one stratum (``None``: all 1, as for "n").

    From ``fastkm1``'s S(t-), G(t-) and number at risk N(t) of the stratum, with
    W the stratum's total case weight: "S" is ``W S / N``, "S/G" ``W S / (G N)``,
    "n/G2" ``1 / G^2`` and "I" ``1 / N``. As in R, a stratum with fewer than two
    events falls back to "n", and events after ``ymax`` get weight 0.
    """
    weight = None
    if timewt != "n" and sweep.event.sum() >= 2:
        survival, g, n_risk = _lagged_survival(sweep, w)
        total = float(sweep.event.size) if w is None else float(w.sum())
        if timewt == "S":
            weight = total * survival / n_risk
        elif timewt == "S/G":
            weight = total * survival / (g * n_risk)
        elif timewt == "I":
            weight = 1.0 / n_risk
        else:
            weight = 1.0 / (g * g)
    if ymax is not None:
        weight = np.where(sweep.unique_times > ymax, 0.0, 1.0 if weight is None else weight)
    return weight


def _cox_variance(
    sweep: Sweep, risk: np.ndarray, w: np.ndarray | None, time_weight: np.ndarray | None
) -> float:
    """R's ``count[6]`` of one stratum (``concordance3.c``'s Cox variance).

    At each event time t with event weight d(t) and time weight W(t) it adds
    ``d(t) W(t) z2(t) / N(t)``: z2 is the weighted sum of squared ranks
    ``z_i = sum_j w_j sign(x_i - x_j)`` over the risk set (rows with time >= t)
    and N its weight, so ``z2 / N`` is the variance of the rank in the risk set.
    z2 grows as the sweep adds row i by ``w_i u_i (u_i + 2 e_i + w_i)``, with
    ``e_i`` and ``u_i`` the weight already in the set tied and not tied with x_i
    (R's update of ``z2``, regrouped).
    """
    order = sweep.order
    wo = np.ones(order.size) if w is None else w[order]
    ranks = _dense_rank(risk)[order]
    before = np.concatenate(([0.0], np.cumsum(wo)[:-1]))
    by_rank = np.argsort(ranks, kind="stable")
    cumulative = np.concatenate(([0.0], np.cumsum(wo[by_rank])[:-1]))
    first = np.maximum.accumulate(np.where(changes(ranks[by_rank]), np.arange(order.size), 0))
    tied = np.empty(order.size)
    tied[by_rank] = cumulative - cumulative[first]
    untied = before - tied
    z2 = np.cumsum(wo * untied * (untied + 2 * tied + wo))
    time_index = sweep.time_index[order]
    ends = np.flatnonzero(np.append(time_index[1:] != time_index[:-1], True))
    dead = sweep.event if w is None else sweep.event * w
    deaths = np.bincount(sweep.time_index, weights=dead, minlength=sweep.unique_times.size)
    at_end = time_index[ends]
    d = deaths[at_end] * (1.0 if time_weight is None else time_weight[at_end])
    keep = d > 0
    return float(np.sum(d[keep] * z2[ends][keep] / (before[ends] + wo[ends])[keep]))


def _no_pairs(w: np.ndarray) -> _Rows:
    zero = np.zeros(w.size)
    return _Rows((0.0, 0.0, 0.0), zero, zero, zero, w, 0.0, 0.0)


def _stratum(
    sweep: Sweep, risk: np.ndarray, w: np.ndarray | None, timewt: str, ymax: float | None
) -> tuple[_Rows, float]:
    """One stratum's pair counts, per-row shares (case weights kept) and Cox variance."""
    if not sweep.event.any():  # R's docount: no events, nothing counted
        return _no_pairs(np.ones(risk.size) if w is None else w), 0.0
    time_weight = _time_weight(sweep, w, timewt, ymax)
    return _rows(sweep, risk, w, time_weight), _cox_variance(sweep, risk, w, time_weight)


def _strata_sweeps(t: np.ndarray, e: np.ndarray, strata: Any):
    """(label, rows, sweep) per stratum; times merged once on all rows, as R does."""
    if strata is None:
        yield "all", np.arange(t.size), _sweep(t, e)
        return
    layers = _layers(strata, t.size)
    fixed = timefix(t)
    for code, label in enumerate(layers.categories):
        rows = np.flatnonzero(layers.codes == code)
        by_time = np.argsort(fixed[rows])
        yield str(label), rows, _sweep_sorted(by_time, fixed[rows][by_time], e[rows])


def _right_censored_parts(t, e, x, w, strata, timewt, ymax):
    """(label, rows, per-row shares, Cox variance) per stratum of right-censored data."""
    for label, rows, sweep in _strata_sweeps(t, e, strata):
        part, vcox = _stratum(sweep, x[rows], None if w is None else w[rows], timewt, ymax)
        yield label, rows, part, vcox


def _entry_fixed(entry: Any, stop: np.ndarray, time: Any, timewt: str):
    """Checked start and stop times of (start, stop] data, merged as ``aeqSurv`` does."""
    if timewt != "n":
        raise ValueError(
            f"timewt {timewt!r} is not offered with entry= ((start, stop] data): only 'n' "
            "(survival 3.5-3 refuses 'S/G' and 'n/G2' there and crashes, a segfault, "
            "on 'S' and 'I', so there is no reference to match)"
        )
    labels = row_labels(time.index if isinstance(time, pd.Series) else None, stop.size)
    start = entry_times(entry, stop, labels)
    fixed = timefix(np.concatenate((start, stop)))
    start, stop = fixed[: stop.size], fixed[stop.size :]
    merged = start >= stop
    if merged.any():
        raise ValueError(
            f"entry (start) and time (stop) differ by less than the timefix tolerance in "
            f"{int(merged.sum())} rows (rows {listed(labels[merged])}): the interval has "
            "length 0 once nearly equal times are merged, as R's aeqSurv refuses"
        )
    return start, stop


def _counting_parts(times, t, e, x, w, strata, ymax):
    """(label, rows, per-row shares, Cox variance) per stratum of (start, stop] data."""
    start, stop = times
    if strata is None:
        groups = [("all", np.arange(t.size))]
    else:
        layers = _layers(strata, t.size)
        groups = [
            (str(label), np.flatnonzero(layers.codes == code))
            for code, label in enumerate(layers.categories)
        ]
    for label, rows in groups:
        weights = np.ones(rows.size) if w is None else w[rows]
        rank = _dense_rank(x[rows])
        part = counting_rows(start[rows], stop[rows], e[rows], rank, weights, ymax)
        yield label, rows, part, part.cox


def concordance_fit(
    time: Any,
    event: Any,
    risk: Any,
    *,
    strata: Any = None,
    weights: Any = None,
    timewt: str = "n",
    ymax: float | None = None,
    cluster: Any = None,
    entry: Any = None,
) -> ConcordanceFit:
    """The C-index with strata and time weights, with both of R's variances.

    Equals ``survival::concordance(Surv(time, event) ~ risk + strata(strata),
    weights = weights, timewt = timewt, ymax = ymax, reverse = TRUE)`` of survival
    3.5-3, and so ``concordance(coxph_fit)`` when ``risk`` is the fit's linear
    predictor and ``strata`` its strata. Pairs are formed only within a stratum;
    each stratum's counts are R's ``count`` row, and the pooled C, as R pools it,
    is ``(sum concordant + sum tied_risk / 2) / sum npair`` over the strata. The
    infinitesimal-jackknife variance uses the pooled npair and Somers' d with each
    row's influence from its own stratum (module docstring). Time weights per
    event time t of a stratum (S, G: the stratum's left-continuous Kaplan-Meier of
    the events and of the censoring, events leaving first at a tie; N(t): the
    weight at risk; W: the stratum's total weight): "n" 1 (Harrell), "S" ``W S / N``
    (Peto-Wilcoxon-like), "S/G" ``W S / (G N)`` (Schemper), "n/G2" ``1 / G^2``
    (Uno; :func:`uno`), "I" ``1 / N``. A stratum with fewer than two events uses
    "n", as R does. Past ten strata R pools timewt "n" and "I" by rerunning them
    as one stratum of shifted (start, stop] data (its default ``keepstrata =
    10``): for "n" the numbers are the same; for "I" survival 3.5-3 crashes there
    (a segfault in ``concordance4``), and sigkit gives what R gives with
    ``keepstrata = TRUE``.

    ``cvar`` is R's ``cvar``: ``sum d(t) W(t) var(rank | risk set at t) / (4
    npair^2)``, the variance of C that the Cox partial-likelihood score test of the
    risk ranks implies (it treats the ranks in each risk set as exchangeable under
    the null). R computes it for formula and ``coxph`` objects alike and prints
    neither: ``print`` shows ``sqrt(var)``. For a ``coxph`` fit R ranks the fit's
    linear predictor within the model's strata, so its ``var`` and ``cvar`` are
    those of the formula on the linear predictor. ``cvar`` is the variance under
    the hypothesis of no association; ``var`` (the IJ variance) holds under any
    association and is the one to use for intervals.

    Parameters
    ----------
    time, event, risk
        As :func:`harrell`.
    strata
        Optional stratum label per row (``strata(centre)``); labels sort as R's
        factor levels (a pandas categorical keeps its level order). Missing labels
        (NaN, None) are an error naming their rows.
    weights
        Optional positive case weights, as :func:`harrell`.
    timewt
        One of "n", "S", "S/G", "n/G2", "I". survival 3.5-3 has no "n/G" (R reads
        it as "n/G2" by partial matching); it is refused here.
    ymax
        Events after ``ymax`` get weight 0 (R's ``ymax``).
    cluster
        Optional cluster label per row (the patient when rows repeat, the centre):
        as R's ``cluster``, the rows' influences are summed within each cluster
        before squaring, so ``variance`` is the grouped (robust) IJ variance. The
        counts, C and ``cvar`` do not change.
    entry
        Optional start time per row for counting-process data: ``time`` is then
        each (start, stop] interval's stop, as ``concordance(Surv(entry, time,
        event) ~ risk)``. An event at t is compared with the rows at risk at t
        (``entry < t``, and ``time > t`` or censored at ``time = t``), so a row
        that starts at t is not; start and stop times are merged together by
        :func:`timefix`, as R's ``aeqSurv`` does. Only ``timewt="n"`` (see
        ``toolkit.stats._concordance_counting``). ``cvar`` then sums the rank
        variance over each event time's (start, stop] risk set. Each row is its
        own subject unless ``cluster`` groups them (R's ``cluster = id``).

    Returns
    -------
    ConcordanceFit
    """
    _checked_timewt(timewt, ymax)
    t, e, (x,), w = _validated(time, event, [risk], ["risk"], weights)
    if entry is None:
        parts_of = _right_censored_parts(t, e, x, w, strata, timewt, ymax)
    else:
        parts_of = _counting_parts(_entry_fixed(entry, t, time, timewt), t, e, x, w, strata, ymax)
    dfbeta_rows, counts, parts, cox = [], [], [], 0.0
    for label, rows, part, vcox in parts_of:
        dfbeta_rows.append(rows)
        parts.append(part)
        cox += vcox
        native_concordant, native_discordant, tied_risk = part.counts
        counts.append(
            StratumCounts(label, rows.size, native_discordant, native_concordant, tied_risk,
                          part.tied_time, part.tied_both)
        )  # fmt: skip
    npair, somers = _somers(*(sum(c) for c in zip(*(p.counts for p in parts), strict=True)))
    dfbeta = np.empty(t.size)
    for rows, part in zip(dfbeta_rows, parts, strict=True):
        dfbeta[rows] = _dfbeta(part, somers, npair)
    if cluster is not None:  # R: tapply(dfbeta, cluster, sum)
        dfbeta = np.bincount(_layers(cluster, t.size, "cluster").codes, weights=dfbeta)
    pooled = _pooled(counts, npair, float(dfbeta @ dfbeta) / 4, t.size)
    return ConcordanceFit(pooled, cox / (4 * npair**2), timewt, tuple(counts))


def _pooled(counts: list[StratumCounts], npair: float, variance: float, n: int) -> Concordance:
    concordant = sum(c.concordant for c in counts)
    tied_risk = sum(c.tied_risk for c in counts)
    return Concordance(
        c=(concordant + tied_risk / 2) / npair,
        se=float(np.sqrt(variance)),
        concordant=concordant,
        discordant=sum(c.discordant for c in counts),
        tied_risk=tied_risk,
        tied_time=sum(c.tied_time for c in counts),
        tied_both=sum(c.tied_both for c in counts),
        variance=variance,
        n=n,
    )


@dataclass(frozen=True)
class IPCWConcordance:
    """Uno's C as ``sksurv.metrics.concordance_index_ipcw`` returns it.

    ``c`` is the IPCW-weighted C; the counts are unweighted numbers of comparable
    pairs (``tied_time``: pairs of an event and a censoring at the same time).
    """

    c: float
    concordant: int
    discordant: int
    tied_risk: int
    tied_time: int


def _censoring_at(times: np.ndarray, grid: np.ndarray, g: np.ndarray, rows: np.ndarray):
    """sksurv's G(t) at the test event ``times``; an error where it is unknown or 0."""
    beyond = times > grid[-1]
    if g[-1] > 0 and beyond.any():
        raise ValueError(
            f"{int(beyond.sum())} event times of the test data (rows "
            f"{listed(rows[beyond])}) are after the last training time {grid[-1]:g}, "
            "where the censoring distribution is unknown; truncate with tau"
        )
    out = np.zeros(times.size)
    out[~beyond] = step_at(grid, g, times[~beyond])
    if (out == 0).any():
        raise ValueError(
            "the training censoring distribution is 0 at the event times of rows "
            f"{listed(rows[out == 0])}; truncate with tau"
        )
    return out


def _tolerance_ranks(values: np.ndarray, risk: np.ndarray, tol: float):
    """Per row, the first and last rank of the distinct ``values`` within ``tol`` of it.

    ``|v - risk| <= tol`` (in floating point, as sksurv tests it) holds on an interval of
    the sorted values, so a search at ``risk -+ tol`` is corrected by a few steps.
    """
    last = values.size - 1

    def near(k):
        return np.abs(values[np.clip(k, 0, last)] - risk) <= tol

    lo = np.clip(np.searchsorted(values, risk - tol, side="left"), 0, last)
    hi = np.clip(np.searchsorted(values, risk + tol, side="right") - 1, 0, last)
    while True:
        step_lo = np.where((lo > 0) & near(lo - 1), -1, np.where(near(lo), 0, 1))
        step_hi = np.where((hi < last) & near(hi + 1), 1, np.where(near(hi), 0, -1))
        if not (step_lo.any() or step_hi.any()):
            return lo, hi
        lo, hi = lo + step_lo, hi + step_hi


def _ipcw_pairs(time: np.ndarray, event: np.ndarray, risk: np.ndarray, tol: float):
    """Per event: its comparable rows that have a lower risk (beyond ``tol``), a risk within
    ``tol`` and any risk. Each event gets two weightless companions with its sweep key and
    the rank at either end of its tolerance interval; their dominance sums count the rows."""
    values = np.unique(risk)
    rank = np.searchsorted(values, risk)
    events = np.flatnonzero(event)
    lo, hi = _tolerance_ranks(values, risk[events], tol)
    m = events.size
    all_time = np.concatenate([time, time[events], time[events]])
    all_event = np.concatenate([event.astype(bool), np.ones(2 * m, dtype=bool)])
    by_time = np.argsort(all_time)
    sweep = _sweep_sorted(by_time, all_time[by_time], all_event)
    w = np.concatenate([np.ones(time.size), np.zeros(2 * m)])
    sums = dominance(sweep, np.concatenate([rank, lo, hi]), w[None, :], np.zeros((0, w.size)))
    at_lo, at_hi = slice(time.size, time.size + m), slice(time.size + m, None)
    total = sums.earlier_total[0, at_lo]
    lower = total - sums.earlier_higher[0, at_lo] - sums.earlier_equal[0, at_lo]
    tied = total - sums.earlier_higher[0, at_hi] - lower
    return events, lower, tied, total


def uno_ipcw(
    time: Any,
    event: Any,
    risk: Any,
    tau: float | None = None,
    *,
    train_time: Any = None,
    train_event: Any = None,
    tied_tol: float = 1e-8,
) -> IPCWConcordance:
    """Uno's C with the censoring distribution from a training set, as scikit-survival.

    Equals ``sksurv.metrics.concordance_index_ipcw(survival_train, survival_test,
    risk, tau, tied_tol)`` (scikit-survival 0.28): ``C = sum_i w_i (lower_i + tied_i /
    2) / sum_i w_i comparable_i`` over the events i of the test data, where the
    comparable rows are those followed beyond t_i (or censored at t_i), ``lower_i``
    those with a risk below ``risk_i - tied_tol``, ``tied_i`` those within
    ``tied_tol`` (``|risk_j - risk_i| <= tied_tol``), and ``w_i = 1 / G(t_i)^2`` for
    ``t_i < tau``, 0 otherwise. G is the Kaplan-Meier of the censoring on the
    training rows (``train_time``/``train_event``; by default the test rows),
    events leaving first at a tie.

    This differs from :func:`uno` (R's ``timewt = "n/G2"``) on purpose, in sksurv's
    three conventions: G is evaluated at t_i, not just before it (a censoring at
    t_i lowers the weight of the events at t_i); ``tau`` excludes events at t_i =
    tau (R's ``ymax`` keeps them); and risks closer than ``tied_tol`` are tied
    (R ties only equal risks). Times are not merged (no ``aeqSurv``). Where sksurv
    returns NaN (every event weighted 0) this raises.

    Parameters
    ----------
    time, event, risk
        The test data and its risk score (higher = worse).
    tau
        Truncation: events at or after tau get weight 0.
    train_time, train_event
        The data the censoring distribution is estimated on (both or neither).
    tied_tol
        Risks closer than this (absolute) are tied.

    Raises
    ------
    ValueError
        Bad input (as :func:`harrell`), a test event time beyond the last training
        time (where G is unknown) or with G = 0: truncate with ``tau``; no pair.
    """
    t, e, (x,), _ = _validated(time, event, [risk], ["risk"])
    if (train_time is None) != (train_event is None):
        raise ValueError("give both train_time and train_event, or neither")
    if train_time is None:
        grid, g = km_steps(t, e.astype(bool), censoring=True)
    else:
        t_train, e_train = check_survival(
            train_time, train_event, names=["train_time", "train_event"], require_events=False
        )
        grid, g = km_steps(t_train, e_train.astype(bool), censoring=True)
    if not (np.isfinite(tied_tol) and tied_tol >= 0):
        raise ValueError(f"tied_tol must be a finite number >= 0, got {tied_tol!r}")
    events, lower, tied, total = _ipcw_pairs(t, e, x, float(tied_tol))
    weighted = events if tau is None else events[t[events] < tau]
    w = np.zeros(t.size)
    w[weighted] = np.square(1.0 / _censoring_at(t[weighted], grid, g, weighted))
    we = w[events]
    denominator = float(we @ total)
    if denominator <= 0:
        raise ValueError("no comparable pairs with a positive weight (before tau)")
    index = np.unique(t, return_inverse=True)[1]
    censored = np.bincount(index, weights=1.0 - e)
    return IPCWConcordance(
        c=float(we @ lower + 0.5 * (we @ tied)) / denominator,
        concordant=int(lower.sum()),
        discordant=int((total - lower - tied).sum()),
        tied_risk=int(tied.sum()),
        tied_time=int(censored[index[events]].sum()),
    )


def bootstrap_ci(
    time: Any,
    event: Any,
    risk: Any,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, np.ndarray]:
    """Percentile bootstrap interval of Harrell's C (rows resampled with replacement).

    Each replicate's C is Harrell's C of the resampled rows, computed as the
    case-weighted C with weights = how often each row was drawn (identical: copies
    of one row are tied on time and risk, so they form no comparable pair). All
    replicates go through one vectorised sweep (in blocks, to bound memory). The
    interval is the (1 - level)/2 and (1 + level)/2 quantiles of the replicates
    (linear interpolation, R's ``quantile`` type 7). Times are merged once on the
    full data (:func:`timefix`).

    Parameters
    ----------
    time, event, risk
        As :func:`harrell`.
    n_boot
        Number of bootstrap replicates.
    level
        Confidence level of the interval.
    seed
        Seed of the ``numpy.random.Generator`` (PCG64) drawing the resamples.

    Returns
    -------
    (lower, upper, samples)
        ``samples`` holds the ``n_boot`` replicate C-indices in draw order.

    Raises
    ------
    ValueError
        Bad input (see :func:`harrell`), or a replicate without a comparable pair.
    """
    if n_boot < 1 or not 0 < level < 1:
        raise ValueError(f"need n_boot >= 1 and 0 < level < 1, got {n_boot} and {level}")
    t, e, (x,), _ = _validated(time, event, [risk], ["risk"])
    sweep = _sweep(t, e)
    _concordance(sweep, x, None, None)  # the full data must have a comparable pair
    rank = _dense_rank(x)
    n = t.size
    rng = np.random.default_rng(seed)
    block = max(1, _BOOTSTRAP_BLOCK_CELLS // n)
    samples = np.empty(n_boot)
    for start in range(0, n_boot, block):
        size = min(block, n_boot - start)
        draws = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        counts = np.bincount(draws.ravel(), minlength=size * n).reshape(size, n).astype(float)
        sums = dominance(sweep, rank, counts, np.zeros((0, n)))
        events = counts * e
        higher = np.einsum("bi,bi->b", events, sums.earlier_higher)
        equal = np.einsum("bi,bi->b", events, sums.earlier_equal)
        total = np.einsum("bi,bi->b", events, sums.earlier_total)
        if np.any(total <= 0):
            raise ValueError("a bootstrap replicate has no comparable pair; the data are too few")
        # higher risk for the earlier failure is concordant (reverse=TRUE)
        samples[start : start + size] = (total - higher - equal + equal / 2) / total
    lower, upper = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2])
    return float(lower), float(upper), samples
