"""Harrell's optimism-corrected bootstrap validation of a Cox model, as ``rms::validate``.

For a pre-specified Cox model (the same covariates in every resample; nothing is
re-selected) this is ``validate(cph(Surv(time, event) ~ X, x = TRUE, y = TRUE,
surv = TRUE), B = B, method = "boot")`` of rms 6.5-0 (``validate.cph`` through
``predab.resample``). With the full-data fit's linear predictor :math:`\\eta`,
``n`` rows, ``LR`` the likelihood-ratio statistic :math:`2(\\ell(\\hat\\beta) - \\ell(0))`
and :math:`L_0 = -2 \\ell(0)`, the indexes are

- ``Dxy``: Somers' rank correlation of :math:`\\eta` with survival,
  :math:`2(C - 1/2)`, :math:`C` Harrell's C-index (pairs whose shorter time is an
  event; an event and a censoring at the same time are comparable, two tied
  events are not; tied risks count 1/2). rms takes the counts from
  ``survival::survConcordance.fit``, which, unlike ``concordance``, does not merge
  nearly equal times; neither do we.
- ``R2``: Nagelkerke's :math:`(1 - e^{-LR/n}) / (1 - e^{-L_0/n})`.
- ``Slope``: the calibration slope, the coefficient :math:`\\gamma` of
  :math:`\\eta` refitted by ``coxph`` (1 on the data the model was fitted on).
- ``D``: discrimination, :math:`(LR - 1) / L_0`; ``U``: unreliability,
  :math:`2(\\ell(\\hat\\gamma) - \\ell(1)) / L_0` of the refit (:math:`-2 / L_0` where
  the slope is 1 by construction); ``Q = D - U``.
- ``g``: Gini's mean difference of :math:`\\gamma\\eta`, ``Hmisc::GiniMd``.

``index.orig`` is each index of the model on the data it was fitted on. For each
bootstrap resample (``n`` rows drawn with replacement) the model is refitted; its
linear predictor gives the ``training`` indexes on the resample (slope 1, its
own likelihoods) and the ``test`` indexes on the original rows (slope, ``D``,
``U`` and ``R2`` from a Cox fit of the predictor there). ``training`` and
``test`` are their means over the resamples that fitted, ``optimism`` their
difference and ``index.corrected = index.orig - optimism``; ``n`` is the number
of resamples averaged (per index, leaving out those where it is undefined).

Unstratified models only (with strata, validate.cph computes Dxy from survival
estimates at a time ``u``; not offered here). Every Cox fit is
``rms::coxphFit``'s: Efron ties, Newton-Raphson from 0 to a relative
log-likelihood change of 1e-4 in at most 10 iterations (cph's and validate.cph's
``eps = 1e-4, iter.max = 10``), a pivot of the information below 1e-9 of its
largest diagonal singular (``toler.chol``); a fit that needed 10 or more
iterations, or whose information is singular, failed. So the coefficients are
those of R's iteration, not the exact maximum (up to about 1e-4 apart), and all
indexes are taken at R's points. Deliberate differences from R: a resample whose
refitted model fails is left out and named in ``failed`` (R leaves it out and
prints a count); one whose calibration-slope fit on the original rows fails is
also left out and named (there R stops with an error). Resamples come from
``numpy.random.default_rng(seed)``, or are given; R's come from ``sample``
(``tests/stats/test_validate.py`` passes R's to us).

The resamples are refitted all at once (``toolkit.stats._resampled_cox``:
coxfit6's iteration over (resample, row) arrays), the slope fits likewise, and
``Dxy`` and ``g`` of every resample come from array passes, not a loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from toolkit.stats import _resampled_cox, cox
from toolkit.stats._blas import one_blas_thread
from toolkit.stats._checks import check_survival, listed
from toolkit.stats._rows import row_products

INDEXES = ("Dxy", "R2", "Slope", "D", "U", "Q", "g")
COLUMNS = ("index.orig", "training", "test", "optimism", "index.corrected", "n")
MIN_RESAMPLES = 20

_EPS, _MAX_ITER, _TOLER_CHOL = 1e-4, 10, 1e-9  # rms::coxphFit as cph and validate.cph call it
_PAIR_BLOCK = 4_000_000  # (resample, event, row) cells per block of the Dxy pass


@dataclass(frozen=True)
class FailedResample:
    """A resample left out of the averages: its 0-based number and why."""

    resample: int
    reason: str


@dataclass(frozen=True)
class CoxValidation:
    """``rms::validate``'s table for a Cox model, with the fit and the resamples' fate.

    ``table`` has the rows :data:`INDEXES` and the columns :data:`COLUMNS` of
    ``print(validate(...))`` (``n`` as an integer column). ``coef`` is the
    full-data fit (cph's, at ``eps = 1e-4``), ``n_resamples`` the number drawn or
    given, ``failed`` the resamples left out.
    """

    table: pd.DataFrame
    coef: np.ndarray
    names: tuple[str, ...]
    n_resamples: int
    failed: tuple[FailedResample, ...]


@dataclass(frozen=True)
class _Data:
    x: np.ndarray  # covariates, original row order
    time: np.ndarray
    event: np.ndarray
    names: tuple[str, ...]
    risk: cox.RiskSets  # centred covariates sorted for the fits
    order: np.ndarray  # the sort that gave ``risk``


def _design(X: Any) -> tuple[np.ndarray, tuple[str, ...]]:
    if isinstance(X, pd.DataFrame):
        bad = [str(c) for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
        if bad:
            raise ValueError(f"covariates must be numeric (dummy-code them first): {bad}")
        return X.to_numpy(dtype=float), tuple(str(c) for c in X.columns)
    x = np.asarray(X, dtype=float)
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2:
        raise ValueError(f"X must be 2-D (rows x covariates), got shape {x.shape}")
    return x, tuple(f"x{i + 1}" for i in range(x.shape[1]))


def _data(X: Any, time: Any, event: Any) -> _Data:
    x, names = _design(X)
    if x.shape[1] == 0:
        raise ValueError("X has no covariates: there is no model to validate")
    rows = X.index if isinstance(X, pd.DataFrame) else None
    t, e, x = check_survival(time, event, x, names=("time", "event", "X"), rows=rows)
    n = len(t)
    centred = x - x.mean(axis=0)
    risk, order = cox.risk_sets(centred, t, e, np.ones(n), np.zeros(n, dtype=np.int64), "efron")
    return _Data(x, t, e, names, risk, order)


def _resamples(resamples: Any, B: int, seed: int, n: int) -> np.ndarray:
    """The (B, n) 0-based row numbers of each resample, drawn or checked."""
    if resamples is None:
        if isinstance(B, bool) or not isinstance(B, int | np.integer):
            raise ValueError(f"B must be a whole number, got {B!r}")
        draws = np.random.default_rng(seed).integers(0, n, size=(max(int(B), 0), n))
    else:
        draws = np.asarray(resamples)
        if draws.ndim != 2 or draws.shape[1] != n:
            raise ValueError(
                f"resamples must be B x n = B x {n} row numbers (one resample per row; "
                f"R's n x B matrix is its transpose), got shape {draws.shape}"
            )
        if draws.dtype.kind not in "iu":
            raise ValueError(f"resamples must be integer row numbers, got dtype {draws.dtype}")
        bad = np.flatnonzero(((draws < 0) | (draws >= n)).any(axis=1))
        if bad.size:
            raise ValueError(
                f"resamples hold row numbers outside 0..{n - 1} (0-based; R's are 1-based) "
                f"in resamples {listed(bad)}"
            )
    if len(draws) < MIN_RESAMPLES:
        raise ValueError(
            f"{len(draws)} bootstrap resamples are too few for a stable optimism estimate: "
            f"use at least {MIN_RESAMPLES} (rms's default is 40, 200 is usual)"
        )
    return draws.astype(np.int64)


def _counts(draws: np.ndarray, n: int) -> np.ndarray:
    """How often each row was drawn, per resample: (B, n) floats."""
    flat = (draws + n * np.arange(len(draws))[:, None]).ravel()
    return np.bincount(flat, minlength=draws.size).reshape(draws.shape).astype(float)


def _fitted(fits: _resampled_cox.ResampledFits) -> np.ndarray:
    """coxphFit's success: converged in fewer than iter.max steps, information of full rank."""
    fast = fits.converged & (fits.iterations < _MAX_ITER)
    return fast & _resampled_cox.full_rank(fits.information, _TOLER_CHOL)


def _full_fit(data: _Data) -> np.ndarray:
    """cph's coefficients: ``cox.newton`` at eps 1e-4, at most 10 steps."""
    p = data.x.shape[1]
    start = cox.partial_likelihood(data.risk, np.zeros(p))
    result = cox.newton(data.risk, start, _EPS, _MAX_ITER)
    full = _resampled_cox.full_rank(result.information[None], _TOLER_CHOL)[0]
    if not (result.converged and result.iterations < _MAX_ITER and full):
        why = (
            "its information is singular (constant or collinear covariates)"
            if not full
            else f"it does not converge in fewer than {_MAX_ITER} Newton steps"
        )
        raise ValueError(
            f"the Cox model of {list(data.names)} cannot be fitted on the full data as "
            f"rms::cph fits it (eps={_EPS}): {why}"
        )
    return result.beta


# --------------------------------------------------------------------------- the indexes


def _comparable(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The event rows and, for each, the rows it is comparable with (survConcordance's pairs)."""
    dead = np.flatnonzero(event == 1)
    later = time[None, :] > time[dead, None]
    censored_with = (time[None, :] == time[dead, None]) & (event[None, :] == 0)
    return dead, later | censored_with


def somers_dxy(
    time: np.ndarray, event: np.ndarray, risk: np.ndarray, counts: np.ndarray | None = None
) -> np.ndarray:
    """Somers' Dxy of each row of ``risk`` (B, n; higher = worse), ``2 (C - 1/2)``.

    ``counts`` (B, n) are copies of each row (a bootstrap resample): a pair of rows
    counts ``counts_i * counts_j`` times, copies of one row never form a pair (they
    tie in time and are both events or both censored). NaN where no pair is
    comparable. ``rms::dxy.cens(risk, Surv(time, event), type = "hazard")["Dxy"]``
    of the copied rows. The pass compares all (event, row) pairs of every
    resample at once, in blocks of resamples: O(B x events x n) work (survival's
    tree is O(n log n) per resample), cheap at a nomogram's few hundred patients.
    """
    dead, pairs = _comparable(time, event)
    n_dead, n = pairs.shape
    out = np.empty(len(risk))
    block = max(1, _PAIR_BLOCK // max(n_dead * n, 1))
    for lo in range(0, len(risk), block):
        r = risk[lo : lo + block]
        sign = np.sign(r[:, dead, None] - r[:, None, :])
        sign *= pairs
        if counts is None:
            concordance = sign.sum(axis=(1, 2))
            total = np.full(len(r), float(pairs.sum()))
        else:
            c = counts[lo : lo + block]
            concordance = np.einsum("bi,bi->b", np.matmul(sign, c[:, :, None])[..., 0], c[:, dead])
            total = np.einsum("bi,ij,bj->b", c[:, dead], pairs.astype(float), c)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[lo : lo + block] = np.where(total > 0, concordance / total, np.nan)
    return out


def gini_mean_difference(values: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
    """Gini's mean difference of each row of ``values`` (B, n), ``Hmisc::GiniMd``.

    :math:`\\frac{1}{N(N-1)} \\sum_{i \\ne j} |v_i - v_j|`, computed as GiniMd does:
    :math:`\\sum_k w_k (v_{(k)} - \\bar v)` over the sorted values with
    :math:`w_k = 4 (k - (N-1)/2) / (N(N-1))`. With ``counts`` (copies of each value,
    summing to N), the copies' weights are summed in closed form.
    """
    counts = np.ones_like(values) if counts is None else counts
    order = np.argsort(values, axis=1, kind="stable")
    v = np.take_along_axis(values, order, axis=1)
    c = np.take_along_axis(counts, order, axis=1)
    size = c.sum(axis=1, keepdims=True)
    mean = (c * v).sum(axis=1, keepdims=True) / size
    before = np.cumsum(c, axis=1) - c
    # sum over a value's copies at 1-based positions before+1 .. before+c of (k - (N-1)/2)
    weight = c * before + c * (c + 1) / 2 - c * (size - 1) / 2
    return 4 * (weight * (v - mean)).sum(axis=1) / (size[:, 0] * (size[:, 0] - 1))


def _table(loglik, loglik_null, n, slope, unreliability, g, dxy) -> np.ndarray:
    """(B, 7) indexes from the likelihoods (validate.cph's ``discrim``)."""
    lr = -2 * (loglik_null - loglik)
    l0 = -2 * loglik_null
    r2 = (1 - np.exp(-lr / n)) / (1 - np.exp(-l0 / n))
    d = (lr - 1) / l0
    columns = [dxy, r2, slope, d, unreliability, d - unreliability, g]
    return np.column_stack(np.broadcast_arrays(*columns))


def _original(data: _Data, beta: np.ndarray) -> np.ndarray:
    p = len(beta)
    n = len(data.time)
    loglik = cox.partial_likelihood(data.risk, beta, derivatives=False)[0]
    null = cox.partial_likelihood(data.risk, np.zeros(p), derivatives=False)[0]
    lp = row_products(data.x, beta)[None, :]
    g = gini_mean_difference(lp)
    dxy = somers_dxy(data.time, data.event, lp)
    return _table(loglik, null, n, 1.0, -2 / (-2 * null), g, dxy)[0]


def _training(data: _Data, loglik, loglik_null, lp, counts) -> np.ndarray:
    """On each resample itself: its own fit's likelihoods, slope 1, U = -2 / L0."""
    g = gini_mean_difference(lp, counts)
    dxy = somers_dxy(data.time, data.event, lp, counts)
    unreliability = -2 / (-2 * loglik_null)
    return _table(loglik, loglik_null, len(data.time), 1.0, unreliability, g, dxy)


def _slope_fits(data: _Data, lp: np.ndarray):
    """coxphFit of each resample's linear predictor on the original rows, and l(gamma = 1)."""
    ordered = lp[:, data.order]
    x = (ordered - ordered.mean(axis=1, keepdims=True))[:, :, None]
    ones = np.ones(ordered.shape)
    fits = _resampled_cox.newton(data.risk, x, ones, _EPS, _MAX_ITER)
    frozen = _resampled_cox.likelihood(data.risk, x, ones, np.ones((len(lp), 1)))[0]
    return fits, frozen


def _test(data: _Data, slope, loglik, loglik_null, frozen, lp) -> np.ndarray:
    """On the original rows: the slope refit's likelihoods and l(1) (``frozen``)."""
    unreliability = -2 * (frozen - loglik) / (-2 * loglik_null)
    g = gini_mean_difference(slope[:, None] * lp)
    dxy = somers_dxy(data.time, data.event, lp)
    return _table(loglik, loglik_null, len(data.time), slope, unreliability, g, dxy)


def _constant(x: np.ndarray, counts: np.ndarray, names: tuple[str, ...]) -> list[str]:
    drawn = x[counts > 0]
    return [names[j] for j in np.flatnonzero(drawn.min(axis=0) == drawn.max(axis=0))]


def _training_failure(data: _Data, counts: np.ndarray, fits, b: int) -> str:
    if counts @ data.event == 0:
        return "no events in the resample"
    if fits.converged[b] and fits.iterations[b] < _MAX_ITER:
        constant = _constant(data.x, counts, data.names)
        return "the refitted Cox model's information is singular" + (
            f" ({', '.join(constant)} constant in the resample)" if constant else ""
        )
    return f"the refitted Cox model did not converge in fewer than {_MAX_ITER} Newton steps"


def _failures(data, counts, fits, fitted, kept, slope_fitted) -> tuple[FailedResample, ...]:
    reasons = {int(b): _training_failure(data, counts[b], fits, b) for b in np.flatnonzero(~fitted)}
    for b in kept[~slope_fitted]:
        reasons[int(b)] = (
            "the Cox fit of its linear predictor on the original rows (the calibration "
            f"slope) did not converge in fewer than {_MAX_ITER} Newton steps or is singular"
        )
    return tuple(FailedResample(b, reasons[b]) for b in sorted(reasons))


def _summary(original: np.ndarray, training: np.ndarray, test: np.ndarray) -> pd.DataFrame:
    """predab.resample's averages: indexes undefined in a resample are left out of theirs."""
    defined = np.isfinite(training + test)
    used = defined.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        train = np.where(defined, training, 0).sum(axis=0) / used
        tested = np.where(defined, test, 0).sum(axis=0) / used
    optimism = train - tested
    table = pd.DataFrame(
        {
            "index.orig": original,
            "training": train,
            "test": tested,
            "optimism": optimism,
            "index.corrected": original - optimism,
            "n": used,
        },
        index=pd.Index(INDEXES, name="index"),
    )
    return table


def validate_cox(
    X: Any,
    time: Any,
    event: Any,
    B: int = 200,
    resamples: Any = None,
    seed: int = 0,
) -> CoxValidation:
    """Optimism-corrected bootstrap validation of the Cox model ``Surv(time, event) ~ X``.

    ``rms::validate(cph(..., x = TRUE, y = TRUE, surv = TRUE), B = B)`` of rms 6.5-0
    for the same resamples (module docstring: the indexes, the fits, and where we
    deliberately differ).

    Parameters
    ----------
    X
        Covariates, rows x columns: a numeric array or DataFrame (categorical
        variables dummy-coded beforehand); the model is fixed, so every resample
        refits these columns.
    time, event
        Follow-up time and event indicator (1 = event, 0 = censored).
    B
        Number of bootstrap resamples to draw (at least 20); ignored when
        ``resamples`` is given.
    resamples
        Optional ``(B, n)`` integer array: row ``b`` holds the 0-based row numbers
        of resample ``b`` (R's ``sample(n, replace = TRUE)`` minus 1, one resample
        per row).
    seed
        Seed of ``numpy.random.default_rng`` when the resamples are drawn here.

    Returns
    -------
    CoxValidation
        ``table``: rows ``Dxy, R2, Slope, D, U, Q, g``; columns ``index.orig,
        training, test, optimism, index.corrected, n``.

    Raises
    ------
    ValueError
        Bad data (named rows), fewer than 20 resamples, resamples of the wrong
        shape or with row numbers out of range, or a model that cannot be fitted
        on the full data.
    """
    data = _data(X, time, event)
    n = len(data.time)
    draws = _resamples(resamples, B, seed, n)
    counts = _counts(draws, n)
    with one_blas_thread():
        beta = _full_fit(data)
        original = _original(data, beta)
        fits = _resampled_cox.newton(data.risk, data.risk.x, counts[:, data.order], _EPS, _MAX_ITER)
        fitted = _fitted(fits)
        kept = np.flatnonzero(fitted)
        lp = row_products(data.x, fits.beta[kept]).T
        slopes, frozen = _slope_fits(data, lp)
        sloped = _fitted(slopes)
        used, lp = kept[sloped], lp[sloped]
        training = _training(data, fits.loglik[used], fits.loglik_null[used], lp, counts[used])
        test = _test(
            data, slopes.beta[sloped, 0], slopes.loglik[sloped], slopes.loglik_null[sloped],
            frozen[sloped], lp,
        )  # fmt: skip
    return CoxValidation(
        table=_summary(original, training, test),
        coef=beta,
        names=data.names,
        n_resamples=len(draws),
        failed=_failures(data, counts, fits, fitted, kept, sloped),
    )
