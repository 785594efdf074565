"""K-fold cross-validation of the penalty, as ``cv.glmnet(family="cox")``.

The path is fitted on all rows, then every fold's path on its training rows
(all folds as one compiled program, :func:`toolkit.stats.coxnet._solvers.fit_folds`),
interpolated at the full path's penalties. A fold's held-out rows are scored
by cv.glmnet's grouped deviance or by Harrell's C
(:func:`toolkit.stats.concordance.harrell_columns`, survival::concordance as
glmnet's ``Cindex``). The folds differ from cv.glmnet's: drawn by numpy and
stratified by event status (pass ``fold_id`` to reproduce cv.glmnet).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from toolkit._jax import jax
from toolkit.stats._checks import listed
from toolkit.stats._rows import row_products
from toolkit.stats.concordance import harrell_columns
from toolkit.stats.coxnet._data import Data, check_l1_ratio, column_scales, prepare
from toolkit.stats.coxnet._likelihood import log_likelihood, saturated_loglik
from toolkit.stats.coxnet._path import finite_prefix, interpolate, path_from_data, stop_index
from toolkit.stats.coxnet._results import CoxnetCV
from toolkit.stats.coxnet._sequence import penalties_for
from toolkit.stats.coxnet._solvers import fit_folds


def _fold_labels(fold_id: Any, n_folds: int, event: np.ndarray, seed: int) -> np.ndarray:
    """Fold label per row (1..K): given, or random folds stratified by event status.

    cv.glmnet draws ``sample(rep(seq(K), length=n))``; we deal the events and
    the censored rows out separately (each as ``rep(seq(K))`` shuffled), so
    that every fold of a small cohort (40 patients) gets its share of events.
    """
    n = len(event)
    if fold_id is None:
        if n_folds < 3:
            raise ValueError(f"n_folds must be at least 3 (as cv.glmnet), got {n_folds}")
        rng = np.random.default_rng(seed)
        folds = np.empty(n, dtype=int)
        offset = 0
        for group in (event == 1, event == 0):
            labels = np.roll(np.arange(1, n_folds + 1), -offset)
            folds[group] = rng.permutation(np.resize(labels, int(group.sum())))
            offset = int(group.sum()) % n_folds
        return folds
    folds = np.asarray(fold_id).ravel()
    if len(folds) != n or not np.issubdtype(folds.dtype, np.integer):
        raise ValueError(f"fold_id must hold one integer fold label per row ({n})")
    labels = np.unique(folds)
    if labels[0] < 1 or not np.array_equal(labels, np.arange(1, labels[-1] + 1)):
        raise ValueError(f"fold_id must use every label 1..K, got {listed(labels)}")
    if labels.size < 3:
        raise ValueError(f"cross-validation needs at least 3 folds, fold_id has {labels.size}")
    return folds


def _check_fold_events(folds: np.ndarray, death: np.ndarray) -> None:
    labels = np.arange(1, folds.max() + 1)
    events = np.array([death[folds == f].sum() for f in labels])
    empty = labels[events == 0]
    if empty.size:
        raise ValueError(
            f"fold(s) {listed(empty)} have no events: the partial-likelihood deviance of "
            f"a fold without events is undefined; use other fold_id or fewer folds"
        )
    short = labels[death.sum() - events < 2]
    if short.size:
        raise ValueError(f"training rows of fold(s) {listed(short)} have fewer than 2 events")


def _fold_inputs(data: Data, folds, alpha, penalties, n_penalties, min_ratio, standardize):
    """Per-fold weights, scales, usable columns and penalty sequences (stacked)."""
    qs, scales, alloweds, solves, lams, earlies = [], [], [], [], [], []
    for f in range(1, folds.max() + 1):
        w = np.where(folds == f, 0.0, data.weights)
        q = w / w.sum()
        train = data.x[folds != f]
        allowed = ~np.all(train == train[:1], axis=0)
        scale = column_scales(data.x, q, standardize)
        scale = np.where(allowed, scale, 1.0)
        lam, solve, early = penalties_for(
            data, q, scale, allowed, alpha, penalties, n_penalties, min_ratio, train.shape[0]
        )
        for store, value in zip(
            (qs, scales, alloweds, solves, lams, earlies),
            (q, scale, allowed, solve, lam, early),
            strict=True,
        ):
            store.append(value)
    return tuple(np.stack(v) for v in (qs, scales, alloweds, solves, lams, earlies))


@jax.jit
def _grouped_deviance(x, death, start, end, w_full, w_train, coef):
    """cv.glmnet's grouped deviance: 2(lsat - loglik) on all rows minus on training rows."""

    def deviance(w, eta):
        return 2 * (saturated_loglik(w, death, start) - log_likelihood(eta, w, death, start, end))

    eta = x @ coef.T
    full = jax.vmap(lambda e: deviance(w_full, e), in_axes=1)(eta)
    train = jax.vmap(lambda e: deviance(w_train, e), in_axes=1)(eta)
    return full - train


_PAD = 32


def _padded(coef: np.ndarray) -> np.ndarray:
    """``coef`` (penalties x p) with rows of zeros up to a multiple of 32 penalties.

    The path's length varies from fit to fit (glmnet's early stop); jax compiles
    :func:`_grouped_deviance` once per shape, so padded lengths share at most four
    programs for the default 100 penalties instead of one program per length.
    """
    pad = -len(coef) % _PAD
    return np.concatenate([coef, np.zeros((pad, coef.shape[1]))]) if pad else coef


def _fold_values(data: Data, folds, measure, coefs):
    """Per fold and penalty: deviance per event (or C-index) of the held-out rows."""
    values, fold_weights = [], []
    w_full = data.weights * len(folds) / data.weights.sum()
    for f in range(1, folds.max() + 1):
        held = folds == f
        coef = coefs[f - 1]
        if measure == "deviance":
            w_train = np.where(held, 0.0, data.weights)
            w_train = w_train * (~held).sum() / w_train.sum()
            dev = np.asarray(
                _grouped_deviance(
                    data.x, data.death, data.start, data.end, w_full, w_train, _padded(coef)
                )
            )[: len(coef)]
            events = float((data.weights * data.death)[held].sum())
            values.append(dev / events)
            fold_weights.append(events)
        else:
            eta = row_products(data.x[held], coef)
            values.append(
                harrell_columns(data.time[held], data.death[held], eta, data.weights[held])
            )
            fold_weights.append(float(data.weights[held].sum()))
    return np.stack(values), np.asarray(fold_weights)


def _choose(penalties, cv_mean, cv_se, measure):
    """cv.glmnet's lambda.min and lambda.1se (largest penalty among ties)."""
    score = -cv_mean if measure == "cindex" else cv_mean
    best = np.nanmin(score)
    penalty_min = float(np.max(penalties[score <= best]))
    i = int(np.flatnonzero(penalties == penalty_min)[0])
    bound = score[i] + cv_se[i]
    penalty_1se = float(np.max(penalties[score <= bound]))
    return penalty_min, penalty_1se


def cv(
    X: Any,
    time: Any,
    event: Any,
    l1_ratio: float = 0.5,
    penalties: Any = None,
    n_folds: int = 5,
    fold_id: Any = None,
    seed: int = 0,
    measure: str = "deviance",
    n_penalties: int = 100,
    min_ratio: float | None = None,
    standardize: bool = True,
    weights: Any = None,
    penalty_factor: Any = None,
) -> CoxnetCV:
    """K-fold cross-validation of the elastic-net Cox penalty, as ``cv.glmnet(family="cox")``.

    R: ``cv.glmnet(x, Surv(time, event), family="cox", alpha=l1_ratio,
    foldid=fold_id, type.measure="deviance" | "C", grouped=TRUE)`` (glmnet
    4.1-6). The path is fitted on all rows; each fold's path on its training
    rows (with its own default sequence when ``penalties`` is None, as
    cv.glmnet does, interpolated at the full path's penalties as
    ``predict(s=lambda)``). Deviance (grouped): for fold k,
    ``dev_k = [D_all(b_-k) - D_train(b_-k)] / E_k`` with ``D = 2(lsat - loglik)``
    (weights scaled to the number of rows) and ``E_k`` the weighted events in
    fold k; ``cv_mean = sum_k E_k dev_k / sum_k E_k`` and ``cv_se = sqrt(
    sum_k E_k (dev_k - cv_mean)^2 / sum_k E_k / (K - 1))``. ``measure="cindex"``:
    Harrell's C of each fold's held-out rows (survival::concordance, as
    glmnet's ``Cindex``, nearly equal times merged as there; NaN for a fold
    with no comparable pair), weighted by the fold's total weight, maximised.

    All folds are fitted by one compiled program (the path mapped over
    folds with ``lax.map``). ``fold_id`` gives a fold label 1..K per row; else
    ``n_folds`` random folds from ``seed``, stratified by event status (numpy's
    generator, not R's ``sample``: pass ``fold_id`` to reproduce cv.glmnet).
    A fold without events is an error naming the fold.
    """
    if measure not in ("deviance", "cindex"):
        raise ValueError(f'measure must be "deviance" or "cindex", got {measure!r}')
    alpha = check_l1_ratio(l1_ratio)
    data = prepare(X, time, event, weights, penalty_factor)
    folds_given = _fold_labels(fold_id, n_folds, data.death[np.argsort(data.order)], seed)
    folds = folds_given[data.order]
    _check_fold_events(folds, data.death)
    full = path_from_data(data, alpha, penalties, n_penalties, min_ratio, standardize)
    fold_pen = full.penalties if penalties is not None else None
    q, scale, allowed, solve, lams, early = _fold_inputs(
        data, folds, alpha, fold_pen, n_penalties, min_ratio, standardize
    )
    coef, stopped = fit_folds(data, folds, alpha, q, scale, allowed, solve, early)
    coefs = []
    for f in range(coef.shape[0]):
        keep = finite_prefix(coef[f], None, stop_index(stopped[f]), lams[f], f"fold {f + 1}: ")
        coefs.append(interpolate(lams[f][:keep], coef[f][:keep], full.penalties))
    values, fold_weights = _fold_values(data, folds, measure, np.stack(coefs))
    cv_mean = fold_weights @ values / fold_weights.sum()
    spread = fold_weights @ (values - cv_mean) ** 2 / fold_weights.sum()
    cv_se = np.sqrt(spread / (values.shape[0] - 1))
    penalty_min, penalty_1se = _choose(full.penalties, cv_mean, cv_se, measure)
    return CoxnetCV(
        penalties=full.penalties,
        cv_mean=cv_mean,
        cv_se=cv_se,
        penalty_min=penalty_min,
        penalty_1se=penalty_1se,
        path=full,
        measure=measure,
        fold_id=folds_given,
        fold_values=values,
    )
