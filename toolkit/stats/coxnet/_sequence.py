"""The penalty sequence: glmnet's default, from the largest penalty that matters.

glmnet's Fortran ``coxnet1`` and R's ``fix.lam``: ``lambda_max = max_j
|x_j' r| / v_j / max(a, 1e-3)`` where ``r`` is the gradient of the log partial
likelihood in ``eta`` at ``b = 0`` (standardised columns, weights summing to
1, only columns with ``v_j > 0``; with unpenalised columns, at their fit
alone), then ``n_penalties`` values decreasing geometrically down to
``min_ratio * lambda_max`` (``min_ratio`` 1e-4 if n > p else 1e-2), the first
replaced by ``exp(2 log lambda_2 - log lambda_3)`` as ``fix.lam`` does. The
first penalty is fitted as glmnet's "big" (every penalised coefficient 0).
A user-given sequence is fitted as given, in decreasing order.
"""

from __future__ import annotations

import numpy as np

from toolkit._jax import jax
from toolkit.stats.coxnet._data import Data
from toolkit.stats.coxnet._likelihood import breslow
from toolkit.stats.coxnet._solvers import fit_path

_EPS_RATIO = 1e-6  # glmnet: eps, smallest min_ratio
BIG = 9.9e35  # glmnet's "big": the first penalty of a default path, all penalised b = 0


_residual = jax.jit(lambda eta, q, death, start, end: breslow(eta, q, death, start, end)[1])


def _max_gradient(x, death, start, end, vp, q, scale, allowed, eta) -> float:
    """``max_j |x_j' r| / (scale_j v_j)`` over usable penalised columns.

    ``r`` is the gradient of the log partial likelihood in ``eta`` (an
    n-vector from :func:`breslow`); the product with ``x`` is numpy's, so that
    ``x`` is not copied to the device once more for one product per path.
    """
    residual = np.asarray(_residual(eta, q, death, start, end))
    use = allowed & (vp > 0)
    grad = np.abs(residual @ x[:, use]) if not use.all() else np.abs(residual @ x)
    return float(np.max(grad / (scale[use] * vp[use]))) if use.any() else 0.0


def default_penalties(lambda_max: float, n_penalties: int, min_ratio: float) -> np.ndarray:
    """glmnet's default sequence: geometric from lambda_max, first value as ``fix.lam``."""
    ratio = max(_EPS_RATIO, min_ratio)
    if n_penalties == 1:
        return np.array([lambda_max])
    alf = ratio ** (1.0 / (n_penalties - 1))
    lam = np.empty(n_penalties)
    al = lambda_max * alf
    lam[1] = al
    for i in range(2, n_penalties):
        al = al * alf
        lam[i] = al
    if n_penalties > 2:
        lam[0] = np.exp(2 * np.log(lam[1]) - np.log(lam[2]))
    else:
        lam[0] = lambda_max
    return lam


def max_penalty(data: Data, q, scale, allowed, alpha) -> float:
    """Smallest penalty with no penalised column in the model (glmnet's ``al0``).

    The gradient is taken at b = 0, or, when some columns are unpenalised
    (penalty factor 0), at their fit alone, as glmnet's first (infinite) step.
    """
    eta = np.zeros(data.x.shape[0])
    if np.any(allowed & (data.penalty_factor == 0)):
        coef = fit_path(data, alpha, q, scale, allowed, np.array([BIG]), False)[0]
        eta = data.x @ np.asarray(coef)[0]
    gmax = _max_gradient(
        data.x, data.death, data.start, data.end, data.penalty_factor, q, scale, allowed, eta
    )
    return float(gmax) / max(alpha, 1e-3)


def penalties_for(
    data: Data, q, scale, allowed, l1_ratio, penalties, n_penalties, min_ratio, n_obs
):
    """The sequence to fit (solve values: the first of a default sequence is +inf) and its flag."""
    if penalties is not None:
        lam = np.asarray(penalties, dtype=float).ravel()
        if lam.size < 1 or not np.isfinite(lam).all() or (lam < 0).any():
            raise ValueError("penalties must be finite non-negative numbers")
        lam = np.sort(lam)[::-1]
        return lam, lam, False
    if min_ratio is None:
        min_ratio = 1e-4 if n_obs > data.p else 1e-2
    if not 0 < min_ratio < 1:
        raise ValueError(f"min_ratio must be in (0, 1), got {min_ratio}")
    lam = default_penalties(max_penalty(data, q, scale, allowed, l1_ratio), n_penalties, min_ratio)
    solve = lam.copy()
    solve[0] = BIG if n_penalties > 1 else lam[0]
    return lam, solve, True
