"""The p > n solver: a semismooth Newton method in the n-vector ``eta = X b``.

For more columns than rows (up to 2000 rows), ``0 < l1_ratio < 1`` and every
penalty factor positive (the image signature's case). At the optimum each
coefficient is a soft-thresholded function of the gradient in ``eta``, so
the path solves n equations instead of p (see :func:`_eta_path`); each step
checks every column's KKT condition, the n x n Jacobian goes through a Gram
matrix of the active columns kept up to date column by column and an LU
factorisation that is reused while the active set holds (in float32: it only
steers the iteration, whose residual is float64). The path is one
``jax.jit`` program, a ``lax.scan`` over penalties with warm starts; the CV
folds run on their training rows (:mod:`~toolkit.stats.coxnet._solvers._fold_rows`).
A penalty that does not converge in ``max_steps`` Newton steps flags the
path as failed, and :mod:`toolkit.stats.coxnet._solvers` refits it with the
active-set solver. glmnet runs coordinate descent in the p coefficients; the
minimiser is the same (to ~1e-10 on the standardised scale).
"""

from __future__ import annotations

import numpy as np

from toolkit._jax import jax
from toolkit.stats.coxnet._likelihood import (
    breslow,
    eta_hessian,
    log_likelihood,
    saturated_loglik,
)
from toolkit.stats.coxnet._solvers._fold_rows import entry_points
from toolkit.stats.coxnet._solvers._stop import MNLAM, deviance_stop

jnp = jax.numpy
lax = jax.lax

_ETA_TOL = 1e-10  # semismooth Newton: max|F| relative to max(1, max|eta|)
_ETA_MAX_STEPS = 60
_ETA_CHUNK = 16  # columns added to or removed from the Gram matrix at a time
_ETA_MAX_ROWS = 2000  # above this an n x n factorisation costs more than the active-set solver


def applies(shape: tuple[int, int], alpha: float, vp: np.ndarray, solve: np.ndarray) -> bool:
    """Whether :func:`_eta_path` applies: fewer rows than columns, a ridge part, no free column."""
    n, p = shape
    return (
        n < p
        and n <= _ETA_MAX_ROWS
        and 0.0 < alpha < 1.0
        and bool(np.all(vp > 0))
        and bool(np.all(np.asarray(solve) > 0))
    )


def _gram_update(gram, zt, inside, active, vp):
    """Bring ``gram = sum_{j inside} z_j z_j' / v_j`` to the columns in ``active``.

    Columns that entered or left since the last call are added or removed,
    ``_ETA_CHUNK`` at a time (O(n^2) per column), so the n x n matrix is never
    rebuilt from all K active columns.
    """
    p = active.shape[0]
    active_pad = jnp.append(active, False)
    vp_pad = jnp.append(vp, 1.0)

    def body(st):
        gram, inside = st
        idx = jnp.nonzero(inside != active, size=_ETA_CHUNK, fill_value=p)[0]
        rows = zt[jnp.minimum(idx, p - 1)]  # fill entries (idx == p) get weight 0
        w = jnp.where(idx < p, jnp.where(active_pad[idx], 1.0, -1.0) / vp_pad[idx], 0.0)
        gram = gram + rows.T @ (w[:, None] * rows)
        return gram, inside.at[idx].set(active_pad[idx], mode="drop")

    return lax.while_loop(lambda st: jnp.any(st[1] != active), body, (gram, inside))


def _jacobian_factors(gram, hessian, precise):
    """LU factors of ``I + gram @ hessian``: float32 (stored as float64), or float64."""
    n = gram.shape[0]

    def single():
        g32, h32 = gram.astype(jnp.float32), hessian.astype(jnp.float32)
        lu, piv = jax.scipy.linalg.lu_factor(jnp.eye(n, dtype=jnp.float32) + g32 @ h32)
        return lu.astype(jnp.float64), piv

    def double():
        return jax.scipy.linalg.lu_factor(jnp.eye(n) + gram @ hessian)

    return lax.cond(precise, double, single)


def _eta_path(x, death, start, end, vp, alpha, q, scale, allowed, penalties, early_stop, max_steps):
    """The path by a semismooth Newton method in the linear predictor (n unknowns, p > n).

    At penalty ``lam`` (``mu1 = lam a v``, ``mu2 = lam (1 - a) v``, standardised
    columns ``z_j``) the minimiser satisfies ``b_j = S(z_j' r(eta), mu1_j) / mu2_j``
    with ``r`` the gradient of the log partial likelihood in ``eta = Z b`` and
    ``S`` soft-thresholding, so ``eta`` solves the n equations
    ``F(eta) = eta - Z S(Z' r(eta)) / mu2 = 0``. Newton's method on F: the
    (generalised) Jacobian is ``I + G H / (lam (1 - a))`` with ``H`` the n x n
    Hessian of -loglik in eta and ``G = sum_{j active} z_j z_j' / v_j`` over the
    columns with ``|z_j' r| > mu1_j``, which the current ``eta`` decides (no sign
    guessing, and every column's KKT condition is checked at every step).
    ``G`` is kept up to date column by column; the LU factors of the Jacobian
    are reused (a chord step) while the active set is unchanged and each step
    reduces ``|F|`` at least ten-fold. The factorisation is in float32 (the
    Jacobian only steers the iteration; F and every iterate are float64), and
    in float64 from the step on where a fresh float32 one fails to reduce
    ``|F|`` ten-fold with an unchanged active set (ill-conditioned systems).
    A backtracking line search on ``|F|^2``; warm starts extrapolated from the
    last two penalties (linearly in log penalty). Converged when
    ``max|F| <= _ETA_TOL * max(1, max|eta|)`` (coefficients then within ~1e-10
    of the exact minimiser); a penalty that does not converge in
    ``max_steps`` steps flags the path as failed and the caller refits it
    with the active-set solver. Needs ``0 < a < 1`` and all ``v_j > 0``.

    Returns coefficients (on the given scale), deviance ratios, the early-stop
    flags, whether a penalty failed, and counters (Newton steps,
    factorisations, float64 factorisations).
    """
    n, p = x.shape
    inv_scale = jnp.where(allowed, 1.0 / scale, 0.0)
    z = x * inv_scale
    zt = z.T
    dq = death * q
    ll0 = log_likelihood(jnp.zeros(n), q, death, start, end)
    span = saturated_loglik(q, death, start) - ll0
    logs = jnp.log(penalties)
    n_pen = penalties.shape[0]
    ahead = jnp.concatenate([jnp.zeros(2), logs[:-2] - logs[1:-1]])[:n_pen]
    step_now = jnp.concatenate([jnp.zeros(1), logs[:-1] - logs[1:]])[:n_pen]
    extrapolate = jnp.clip(
        jnp.where(ahead > 0, step_now / jnp.where(ahead > 0, ahead, 1.0), 0.0), 0.0, 2.0
    )
    mnl = min(MNLAM, penalties.shape[0])

    def evaluate(eta, mu1, mu2):
        loglik, residual, e, b, _ = breslow(eta, q, death, start, end)
        t = jnp.where(allowed, residual @ z, 0.0)
        active = jnp.abs(t) > mu1
        coef = jnp.where(active, jnp.sign(t) * (jnp.abs(t) - mu1) / mu2, 0.0)
        return eta - z @ coef, active, coef, e, b, loglik

    def penalty_step(carry, inputs):
        eta, eta_prev, fac, devs, stopped, failed, counts = carry
        i, lam, extra = inputs
        mu1, mu2 = lam * alpha * vp, lam * (1 - alpha) * vp

        def unconverged(st):
            eta, ev = st[0], st[1]
            # written as "not small" so that a NaN residual never counts as converged
            return ~(jnp.max(jnp.abs(ev[0])) <= _ETA_TOL * jnp.maximum(1.0, jnp.max(jnp.abs(eta))))

        def newton(st):
            eta, ev, fac, steps, f_prev, fresh, counts = st
            gram, inside, lu, piv, factored, precise = fac
            f, active, _, e, b, _ = ev
            f0 = f @ f
            poor = f0 > 0.01 * f_prev  # the last step reduced |F| less than ten-fold
            # a fresh float32 factorisation that still steps poorly: factorise in float64
            precise = precise | (fresh & poor & jnp.all(active == factored))

            def factor(gram, inside):
                gram, inside = _gram_update(gram, zt, inside, active, vp)
                hessian = eta_hessian(e, b, dq, start) / (lam * (1 - alpha))
                return gram, inside, *_jacobian_factors(gram, hessian, precise), active

            def keep(gram, inside):
                return gram, inside, lu, piv, factored

            refresh = jnp.any(active != factored) | poor
            gram, inside, lu, piv, factored = lax.cond(refresh, factor, keep, gram, inside)
            direction = -jax.scipy.linalg.lu_solve((lu, piv), f)

            def too_long(ls):
                t, ev = ls
                return ~(ev[0] @ ev[0] <= (1 - 1e-4 * t) * f0) & (t > 1e-6)  # NaN: too long

            def halve(ls):
                t = 0.5 * ls[0]
                return t, evaluate(eta + t * direction, mu1, mu2)

            first = (jnp.ones((), z.dtype), evaluate(eta + direction, mu1, mu2))
            t, ev = lax.while_loop(too_long, halve, first)
            fac = (gram, inside, lu, piv, factored, precise)
            counts = counts + jnp.array([1, refresh, precise & refresh])
            return eta + t * direction, ev, fac, steps + 1, f0, refresh, counts

        guess = eta + extra * (eta - eta_prev)
        st = (guess, evaluate(guess, mu1, mu2), fac, 0, jnp.inf, False, counts)
        # after glmnet's early stop the remaining penalties are not fitted (they are dropped)
        st = lax.while_loop(lambda st: unconverged(st) & (st[3] < max_steps) & ~stopped, newton, st)
        eta_new, ev, fac, counts = st[0], st[1], st[2], st[6]
        finite = jnp.all(jnp.isfinite(eta_new)) & jnp.all(jnp.isfinite(ev[2]))
        not_converged = unconverged(st) | ~finite
        devs, stop_now = deviance_stop(devs, i, (ev[5] - ll0) / span, early_stop, mnl)
        out = (ev[2] * inv_scale, devs[i], stopped)
        failed = failed | (not_converged & ~stopped)
        return (eta_new, eta, fac, devs, stopped | stop_now, failed, counts), out

    fac = (
        jnp.zeros((n, n)),
        jnp.zeros(p, dtype=bool),
        jnp.eye(n),
        jnp.arange(n, dtype=jnp.int32),
        jnp.zeros(p, dtype=bool),
        jnp.array(False),
    )
    init = (jnp.zeros(n), jnp.zeros(n), fac, jnp.zeros(n_pen), False, False, jnp.zeros(3, int))
    steps = (jnp.arange(n_pen), penalties, extrapolate)
    carry, (coef, dev, stopped) = lax.scan(penalty_step, init, steps)
    return coef, dev, stopped, carry[5], carry[6]


# One path (see :func:`_eta_path`): ``coef, deviance_ratio, stopped, failed, counts``; every
# fold's path on its training rows, in one program, outputs stacked per fold.
fit_path, fit_folds = entry_points(_eta_path, _ETA_MAX_STEPS)
