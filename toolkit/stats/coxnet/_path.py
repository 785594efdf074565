"""The penalty path (``glmnet``), its penalty sequence alone, and prediction from it."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from toolkit.stats._rows import row_products
from toolkit.stats.coxnet._data import Data, check_l1_ratio, check_matrix, column_scales, prepare
from toolkit.stats.coxnet._likelihood import null_gap
from toolkit.stats.coxnet._results import CoxnetCV, CoxnetPath, CoxnetWarning
from toolkit.stats.coxnet._sequence import max_penalty, penalties_for
from toolkit.stats.coxnet._solvers import fit_path


def path(
    X: Any,
    time: Any,
    event: Any,
    l1_ratio: float = 0.5,
    penalties: Any = None,
    n_penalties: int = 100,
    min_ratio: float | None = None,
    standardize: bool = True,
    weights: Any = None,
    penalty_factor: Any = None,
) -> CoxnetPath:
    """Elastic-net Cox coefficients along a penalty path, as ``glmnet(family="cox")``.

    R: ``glmnet(x, Surv(time, event), family="cox", alpha=l1_ratio,
    lambda=penalties, nlambda=n_penalties, lambda.min.ratio=min_ratio,
    standardize=, weights=, penalty.factor=)`` (glmnet 4.1-6). See :mod:`toolkit.stats.coxnet`
    for the objective, the default sequence and where we differ.

    Parameters: ``X`` (n x p; a DataFrame gives feature names), ``time``
    (positive), ``event`` (0/1), ``l1_ratio`` (alpha: 1 lasso, 0 ridge),
    ``penalties`` (fitted in decreasing order; default glmnet's sequence),
    ``n_penalties``, ``min_ratio``, ``standardize``, ``weights`` (per row),
    ``penalty_factor`` (per column; 0 leaves a column unpenalised).
    """
    alpha = check_l1_ratio(l1_ratio)
    data = prepare(X, time, event, weights, penalty_factor)
    return path_from_data(data, alpha, penalties, n_penalties, min_ratio, standardize)


def path_from_data(
    data: Data, alpha: float, penalties, n_penalties, min_ratio, standardize
) -> CoxnetPath:
    """:func:`path` on checked data (also the full-data path of cross-validation)."""
    q = data.weights / data.weights.sum()
    scale = column_scales(data.x, q, standardize)
    allowed = np.ones(data.x.shape[1], dtype=bool)
    n = data.x.shape[0]
    lam, solve, early = penalties_for(
        data, q, scale, allowed, alpha, penalties, n_penalties, min_ratio, n
    )
    coef, dev, stopped = fit_path(data, alpha, q, scale, allowed, solve, early)
    keep = finite_prefix(coef, dev, stop_index(stopped), lam, "")
    full = np.zeros((keep, data.p))
    full[:, data.kept] = coef[:keep]
    n_nonzero = np.count_nonzero(full, axis=1)
    if not n_nonzero.any():
        warnings.warn(
            f"every model on the penalty path is empty (no non-zero coefficient): the "
            f"smallest penalty {lam[keep - 1]:.4g} is too large; lambda_max here is "
            f"{max_penalty(data, q, scale, allowed, alpha):.4g}",
            CoxnetWarning,
            stacklevel=3,
        )
    null_dev = 2 * data.weights.sum() * float(null_gap(q, data.death, data.start, data.end))
    return CoxnetPath(
        penalties=lam[:keep],
        coef=full,
        n_nonzero=n_nonzero,
        deviance_ratio=dev[:keep],
        null_deviance=null_dev,
        l1_ratio=alpha,
        feature_names=data.names,
        dropped=data.dropped,
        standardize=standardize,
        stopped_early=keep < len(lam),
    )


def penalty_sequence(
    X: Any,
    time: Any,
    event: Any,
    l1_ratio: float = 0.5,
    n_penalties: int = 100,
    min_ratio: float | None = None,
    standardize: bool = True,
    weights: Any = None,
    penalty_factor: Any = None,
) -> np.ndarray:
    """glmnet's default penalty sequence for these data, without fitting.

    Equal to ``glmnet(...)$lambda`` before glmnet's early stop shortens it
    (the sequence: :mod:`toolkit.stats.coxnet._sequence`).
    """
    alpha = check_l1_ratio(l1_ratio)
    data = prepare(X, time, event, weights, penalty_factor)
    q = data.weights / data.weights.sum()
    scale = column_scales(data.x, q, standardize)
    allowed = np.ones(data.x.shape[1], dtype=bool)
    n = data.x.shape[0]
    return penalties_for(data, q, scale, allowed, alpha, None, n_penalties, min_ratio, n)[0]


def finite_prefix(coef, dev, keep: int, lam: np.ndarray, where: str) -> int:
    """Penalties up to the first non-finite fit (a safety net: warns, as glmnet's ``jerr``).

    The solvers are built to stay finite up to a saturated fit; should one
    still produce a non-finite coefficient, the path is cut before that penalty
    with a warning instead of returning NaN (glmnet likewise returns the
    penalties before one whose iterations ran out).
    """
    bad = ~np.isfinite(coef[:keep]).all(axis=1)
    if dev is not None:
        bad |= ~np.isfinite(dev[:keep])
    if not bad.any():
        return keep
    first = int(np.flatnonzero(bad)[0])
    if first == 0:
        raise FloatingPointError(
            f"{where}the fit at the first penalty ({lam[0]:.4g}) is not finite"
        )
    warnings.warn(
        f"{where}the fit at penalty {lam[first]:.4g} (number {first + 1}) is not finite; the path "
        f"stops at the {first} penalties before it (as glmnet does when its iterations run out)",
        CoxnetWarning,
        stacklevel=4,
    )
    return first


def stop_index(stopped: np.ndarray) -> int:
    """Number of penalties glmnet keeps: up to and including the one that stopped it."""
    hit = np.flatnonzero(stopped)
    return int(hit[0]) if hit.size else len(stopped)


def interpolate(penalties: np.ndarray, coef: np.ndarray, at: Any) -> np.ndarray:
    """Coefficients at penalties ``at`` by glmnet's ``lambda.interp`` (exact=FALSE).

    Linear in the penalty between the two neighbouring fitted penalties;
    penalties outside the fitted range take the nearest end's coefficients.
    """
    at = np.atleast_1d(np.asarray(at, dtype=float))
    lam = np.asarray(penalties, dtype=float)
    if lam.size == 1:
        return np.repeat(coef[:1], at.size, axis=0)
    s = np.clip(at, lam[-1], lam[0])
    right = np.clip(np.searchsorted(-lam, -s, side="left"), 0, lam.size - 1)
    left = np.maximum(right - 1, 0)
    exact = lam[right] == s
    left = np.where(exact, right, left)
    gap = lam[left] - lam[right]
    frac = np.where(gap > 0, (s - lam[right]) / np.where(gap > 0, gap, 1.0), 1.0)
    return frac[:, None] * coef[left] + (1 - frac[:, None]) * coef[right]


def predict(model: CoxnetPath | CoxnetCV, X: Any, penalty: Any = "min") -> np.ndarray:
    """Linear predictor ``X b(penalty)`` (higher = worse prognosis), as glmnet's ``predict``.

    ``penalty`` is a number (or array), or ``"min"``/``"1se"`` for a
    :class:`CoxnetCV`. Between fitted penalties the coefficients are
    interpolated linearly in the penalty, as glmnet's ``predict(exact=FALSE)``
    (no refit); outside the fitted range the nearest end is used. Not centred
    (glmnet's link is not either). Returns ``(n,)`` for a scalar penalty,
    else ``(n, len(penalty))``.
    """
    fit = model.path if isinstance(model, CoxnetCV) else model
    if isinstance(penalty, str):
        if not isinstance(model, CoxnetCV):
            raise ValueError('penalty "min"/"1se" needs a CoxnetCV; give a number for a path')
        penalty = {"min": model.penalty_min, "1se": model.penalty_1se}[penalty]
    x, _ = check_matrix(X)
    if x.shape[1] != fit.coef.shape[1]:
        raise ValueError(f"X has {x.shape[1]} columns, the model {fit.coef.shape[1]}")
    coef = interpolate(fit.penalties, fit.coef, penalty)
    out = row_products(x, coef)
    return out[:, 0] if np.ndim(penalty) == 0 else out
