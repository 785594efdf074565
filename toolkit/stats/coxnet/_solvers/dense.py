"""The n > p solver: preconditioned steps with a reused Hessian (see :func:`_dense_path`).

For more rows than columns (up to 4096 columns), ``0 < l1_ratio <= 1`` and
every penalty factor positive: the nomograms' and the study's CV, and large
cohorts. The Hessian of all p columns is computed only when the steps stop
converging fast and reused across steps and penalties as a preconditioner
(nonlinear conjugate gradients, Newton step lengths from the exact
curvature); each step solves the active block, by Cholesky when at most
half the columns are active and otherwise through the Schur complement of
the stored inverse (:mod:`~toolkit.stats.coxnet._solvers._steering`), so no
system exceeds p / 2; the gradient, the line search and the KKT test
(largest violation <= 1e-11) are float64. The path is one ``jax.jit``
program, a ``lax.scan`` over penalties with warm starts; the CV folds run on
their training rows (:mod:`~toolkit.stats.coxnet._solvers._fold_rows`). A
penalty that does not converge in ``max_steps`` steps flags the path as
failed, and :mod:`toolkit.stats.coxnet._solvers` refits it with the
active-set solver. glmnet runs coordinate descent; the minimiser is the same
(to ~1e-10 on the standardised scale).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from toolkit._jax import jax
from toolkit.stats.coxnet._likelihood import (
    breslow,
    elastic_net_penalty,
    eta_curvature,
    float32_hessian,
    log_likelihood,
    saturated_loglik,
)
from toolkit.stats.coxnet._solvers._buffers import bucket_sizes
from toolkit.stats.coxnet._solvers._fold_rows import entry_points
from toolkit.stats.coxnet._solvers._steering import block_solve, stale_cache, steering
from toolkit.stats.coxnet._solvers._stop import MNLAM, deviance_stop

jnp = jax.numpy
lax = jax.lax

_DENSE_MAX_COLS = 4096  # its p x p matrices
_DENSE_TOL = 1e-11  # largest KKT violation (gradient scale) at convergence
_DENSE_POOR = 0.5  # a step reducing the violation less than this-fold refreshes the matrix
_DENSE_MAX_STEPS = 100
_DENSE_STEP_TOL = 1e-9  # and the last step at most this in the Hessian's metric (ill-conditioning)


def applies(shape: tuple[int, int], alpha: float, vp: np.ndarray, solve: np.ndarray) -> bool:
    """Whether :func:`_dense_path` fits this problem (else the active-set solver)."""
    n, p = shape
    return (
        n > p
        and p <= _DENSE_MAX_COLS
        and 0 < alpha <= 1
        and bool(np.min(vp) > 0)
        and bool(np.min(solve) > 0)
    )


def _sign_safe_step(loglik_at, pen, z, beta, eta, loglik, g, rhs, active, sign, full, dz_full):
    """A descent step from ``beta`` towards ``full`` that changes no sign on the active set.

    ``full`` is a Newton-type point for the smooth objective with the signs
    ``sign`` fixed on the active set (``rhs``: minus its gradient there;
    ``dz_full = Z (full - beta)``). Coordinates whose sign would flip stop at
    zero and a backtracking line search on the objective ``pen(b) -
    loglik_at(eta)`` (``loglik``: its log-likelihood at ``eta``) accepts the
    step. When that is not a descent step (the line search shrinks it), the
    step goes along the unclipped direction only to the first sign change,
    where that coordinate becomes exactly zero (the ratio test of active-set
    methods; entering coordinates of the wrong sign stay at zero), so that
    the iteration never stalls on coordinates that keep crossing. Returns the
    new ``beta`` and ``eta``, the step length (0 after a ratio-test step) and
    the crossing coordinates.
    """
    crossed = active & (jnp.sign(full) != sign)
    target = jnp.where(active & ~crossed, full, 0.0)
    direction = target - beta
    dz = lax.cond(jnp.any(crossed), lambda: z @ direction, lambda: dz_full)
    pen0 = pen(beta)
    f0 = -loglik + pen0
    slack = 1e-13 * (1 + jnp.abs(f0))

    def search(direction, dz, decrease):
        """Backtracking (Armijo) from a full step to ``beta + direction``; 0 if none is accepted.

        Only a finite objective that does not increase is accepted (a non-finite
        one, e.g. -inf when the risk-set sums underflow, never is).
        """
        decrease = jnp.minimum(decrease, 0.0)

        def fine(t):
            value = pen(beta + t * direction) - loglik_at(eta + t * dz)
            return jnp.isfinite(value) & (value <= f0 + 1e-4 * t * decrease + slack)

        t = lax.while_loop(lambda t: ~fine(t) & (t > 1e-12), lambda t: 0.5 * t, jnp.ones(()))
        return jnp.where(fine(t), t, 0.0).astype(eta.dtype)

    decrease = -g @ direction + pen(target) - pen0
    t = search(direction, dz, decrease)
    stepped = (jnp.where(t == 1, target, beta + t * direction), eta + t * dz, t)  # t = 0: none

    def to_breakpoint():
        move = jnp.where(crossed & (beta == 0), 0.0, full - beta)
        frac = jnp.where(crossed & (beta != 0), beta / (beta - full), jnp.inf)
        reach = jnp.clip(jnp.min(frac), 0.0, 1.0)
        dz_move = z @ move
        u = search(reach * move, reach * dz_move, -reach * (rhs @ move))
        b = beta + u * reach * move
        b = jnp.where((u == 1) & crossed & (beta != 0) & (frac <= reach), 0.0, b)
        return b, eta + u * reach * dz_move, jnp.zeros((), eta.dtype)

    jammed = (t < 1) & jnp.any(crossed & (beta != 0))
    beta, eta, t = lax.cond(jammed, to_breakpoint, lambda: stepped)
    return beta, eta, t, crossed


def _dense_path(
    x, death, start, end, vp, alpha, q, scale, allowed, penalties, early_stop, max_steps
):
    """The path by preconditioned steps with a reused Hessian (n > p).

    For n > p the active-set solver rebuilds the Hessian on the active columns
    at every Newton step (O(n K^2): 0.3 s at n = 5000, K = 2000, a few hundred
    times along the path). Here the Hessian ``H`` of all p columns is computed
    only when the iteration stops converging fast and reused across steps and
    penalties while it steers well: along a path the Hessian changes slowly
    (at n = 5000, p = 2048 one penalty's step changes it by 3-6 %). Each step,
    on the current coefficients ``b`` and the float64 gradient ``g = Z' r`` of
    the log partial likelihood: the active set A is the non-zero coefficients
    plus the zero ones that break their KKT condition (``|g_j| > mu1_j``), with
    signs ``s`` (of ``b_j``, or of ``g_j`` for those entering); the
    preconditioned residual solves ``(H + diag(mu2))_AA d_A = g_A - mu2 b_A -
    mu1 s_A`` (:func:`block_solve`); while A stays the same and steps are
    full, it is combined with the previous direction (nonlinear conjugate
    gradients, Polak-Ribiere), and the step length along the direction is
    Newton's, from the exact curvature ``dz' H_eta dz + sum mu2 d^2`` (O(n),
    :func:`eta_curvature`). Coordinates whose sign would flip stop at zero, and a
    backtracking line search on the objective accepts the step. The matrix is
    recomputed at the current point when a step reduced the largest KKT
    violation less than ``_DENSE_POOR``-fold with A unchanged (and was not
    itself taken with a fresh matrix). Converged when the largest KKT
    violation (gradient scale: weights summing to 1, standardised columns) is
    at most ``_DENSE_TOL`` and the last step at most ``_DENSE_STEP_TOL`` in the
    Hessian's metric (``max_j sqrt(H_jj + mu2_j) |d_j|``, the active-set
    solver's test): a small violation alone can leave an ill-conditioned
    problem far from its minimiser. A penalty that does not converge in
    ``max_steps`` steps flags the path as failed, the later penalties are
    skipped, and the caller refits the path with the active-set solver.
    Only a finite, non-increasing objective ends a line search. Needs
    ``0 < a <= 1`` and all ``v_j > 0`` (every coefficient has a kink at zero;
    ``diag(mu2)``, plus a tiny shift for the lasso, keeps the matrices
    positive definite).

    Returns coefficients (on the given scale), deviance ratios, the early-stop
    flags, whether a penalty failed, and running counts of steps and matrix
    refreshes after each penalty.
    """
    n, p = x.shape
    inv_scale = jnp.where(allowed, 1.0 / scale, 0.0)
    z = x * inv_scale
    z32 = z.astype(jnp.float32) if float32_hessian(n, p) else None
    sizes = bucket_sizes(max(p // 2, 1))
    mnl = min(MNLAM, penalties.shape[0])

    def evaluate(eta):
        loglik, residual, e, b, root = breslow(eta, q, death, start, end)
        return loglik, residual @ z, (e, b, root)

    eta0 = jnp.zeros(n)
    ev0 = evaluate(eta0)
    ll0 = ev0[0]  # b = 0
    span = saturated_loglik(q, death, start) - ll0

    def working(beta, g, mu1):
        """The active set: non-zero coefficients and zero ones breaking their KKT condition."""
        return allowed & ((beta != 0) | (jnp.abs(g) > mu1))

    def violation(beta, g, mu1, mu2):
        kkt = jnp.where(
            beta != 0,
            jnp.abs(g - mu2 * beta - mu1 * jnp.sign(beta)),
            jnp.maximum(jnp.abs(g) - mu1, 0.0),
        )
        return jnp.max(jnp.where(allowed, kkt, 0.0))

    def penalty_step(carry, inputs):
        beta, eta, ev, steer, need, devs, stopped, failed, counts = carry
        i, lam = inputs
        mu1, mu2 = lam * alpha * vp, lam * (1 - alpha) * vp

        def unconverged(progress):
            """Largest KKT violation above the tolerance, or the last step not small (NaN: true)."""
            return ~((progress[0] <= _DENSE_TOL) & (progress[1] <= _DENSE_STEP_TOL))

        def chord(hess, inv, st):
            beta, eta, ev, cache, cg, _, fresh, progress, steps, counts = st
            viol = progress[0]
            loglik, g, pieces = ev
            dir_prev, pr_prev, rr_prev, cg_ok = cg
            sign = jnp.where(beta != 0, jnp.sign(beta), jnp.sign(g))
            active = working(beta, g, mu1)
            rhs = jnp.where(active, g - mu2 * beta - mu1 * sign, 0.0)
            pr, cache = block_solve(hess, inv, active, rhs, mu2, sizes, cache)
            rr = rhs @ pr
            # preconditioned conjugate gradients on the active set (Polak-Ribiere, >= 0)
            # while it stays the same and the steps are full; else the plain chord step
            conj = jnp.where(cg_ok, jnp.maximum(rhs @ (pr - pr_prev) / rr_prev, 0.0), 0.0)
            conj = jnp.where(jnp.isfinite(conj), conj, 0.0)
            way = pr + conj * dir_prev
            way = jnp.where(rhs @ way > 0, way, pr)  # not a descent direction: no momentum
            dz = z @ way
            curvature = eta_curvature(dz, pieces, start) + jnp.sum(mu2 * way * way)
            length = (rhs @ way) / curvature  # Newton's step along the way
            length = jnp.where((length > 0) & jnp.isfinite(length), length, 1.0)
            full = beta + length * way

            before = beta
            beta, eta, t, crossed = _sign_safe_step(
                lambda e: log_likelihood(e, q, death, start, end),
                lambda b: elastic_net_penalty(b, lam, alpha, vp),
                z, beta, eta, loglik, g, rhs, active, sign, full, length * dz,
            )  # fmt: skip
            # the step's size in the Hessian's metric, as the active-set solver's test
            change = jnp.max(jnp.abs(beta - before) * jnp.sqrt(jnp.diagonal(hess) + mu2))
            ev = evaluate(eta)
            new = violation(beta, ev[1], mu1, mu2)
            # slow progress with the active set settled: the matrix no longer steers well
            settled = jnp.all(active == working(beta, ev[1], mu1))
            poor = ~(new <= _DENSE_POOR * viol) & ~fresh & settled
            cg = (way, pr, rr, settled & ~jnp.any(crossed) & (t == 1))
            counts = counts + jnp.array([1, 0])
            progress = jnp.stack([new, change])
            return beta, eta, ev, cache, cg, poor, False, progress, steps + 1, counts

        def going(steps, progress):
            # nothing more once glmnet's early stop came or a penalty failed (all is refitted)
            return unconverged(progress) & (steps < max_steps) & ~stopped & ~failed

        def with_matrix(st):
            """Chord steps with one matrix, (re)computed first if asked, until it steers poorly."""
            beta, eta, ev, steer, need, progress, steps, counts = st

            def refresh():
                return (*steering(z, z32, ev[2], start, mu2), stale_cache(steer[2]))

            hess, inv, cache = lax.cond(need, refresh, lambda: steer)
            cg = (jnp.zeros_like(beta), jnp.zeros_like(beta), jnp.ones(()), jnp.array(False))
            counts = counts + jnp.array([0, need])
            inner = (beta, eta, ev, cache, cg, False, need, progress, steps, counts)
            inner = lax.while_loop(
                lambda s: going(s[8], s[7]) & ~s[5], partial(chord, hess, inv), inner
            )
            beta, eta, ev, cache, _, poor, _, progress, steps, counts = inner
            return beta, eta, ev, (hess, inv, cache), poor, progress, steps, counts

        progress = jnp.stack([violation(beta, ev[1], mu1, mu2), jnp.inf])
        steer = (steer[0], steer[1], stale_cache(steer[2]))  # a new mu2
        st = (beta, eta, ev, steer, need, progress, 0, counts)
        # after glmnet's early stop the remaining penalties are not fitted (they are dropped)
        st = lax.while_loop(lambda s: going(s[6], s[5]), with_matrix, st)
        beta, eta, ev, steer, need, progress, _, counts = st
        finite = jnp.all(jnp.isfinite(beta))
        failed = failed | ((unconverged(progress) | ~finite) & ~stopped)
        devs, stop_now = deviance_stop(devs, i, (ev[0] - ll0) / span, early_stop, mnl)
        out = (beta * inv_scale, devs[i], stopped, counts)
        carry = (beta, eta, ev, steer, need, devs, stopped | stop_now, failed, counts)
        return carry, out

    init = (
        jnp.zeros(p),
        eta0,
        ev0,
        (
            jnp.zeros((p, p)),
            jnp.zeros((p, p), jnp.float32),
            (jnp.zeros((sizes[-1], sizes[-1])), jnp.zeros(p, dtype=bool), jnp.array(False)),
        ),
        jnp.array(True),
        jnp.zeros(penalties.shape[0]),
        jnp.array(False),
        jnp.array(False),
        jnp.zeros(2, int),
    )
    steps = (jnp.arange(penalties.shape[0]), penalties)
    carry, (coef, dev, stopped, counts) = lax.scan(penalty_step, init, steps)
    return coef, dev, stopped, carry[7], counts


# One path (see :func:`_dense_path`): ``coef, deviance_ratio, stopped, failed, counts``; every
# fold's path on its training rows, in one program, outputs stacked per fold.
fit_path, fit_folds = entry_points(_dense_path, _DENSE_MAX_STEPS)
