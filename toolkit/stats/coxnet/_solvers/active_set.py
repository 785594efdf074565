"""The active-set solver: proximal Newton steps on the active columns (every problem).

At each penalty (warm-started from the last) the columns that break their
KKT condition (``|x_j' r| > lambda a v_j``, ``r`` the gradient of the log
partial likelihood in the linear predictor) join the active set, and
proximal Newton steps with the exact Hessian of the partial likelihood on
the active columns and a backtracking line search minimise the objective
there; the KKT check over all columns repeats until no column breaks it.
Each Newton step runs on the smallest active-column buffer (64, 128, 256,
... columns, :func:`~toolkit.stats.coxnet._solvers._buffers.bucket_sizes`)
that holds the active set, and when that buffer has more columns than there
are rows the fixed-sign Newton system goes through the n x n Hessian in the
linear predictor (Woodbury), O(n^2 K) instead of O(K^3). The subproblem of a
step is solved by guessing its signs, coordinate descent only when that
fails (:mod:`~toolkit.stats.coxnet._solvers._quadratic`). The path is one
``jax.jit`` program, a ``lax.scan`` over penalties; the CV folds are that
program mapped over folds (``lax.map``) on all rows, the held-out ones with
weight 0.

It applies to every problem (any ``l1_ratio``, unpenalised columns) and
always converges, so it is the solver of last resort: the choice in
:mod:`toolkit.stats.coxnet._solvers` refits with it the paths the faster
solvers fail on. glmnet runs coordinate descent on the same objective; the
minimiser is the same (to ~1e-10 on the standardised scale).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from toolkit._jax import jax
from toolkit.stats.coxnet._data import Data
from toolkit.stats.coxnet._likelihood import (
    breslow,
    coef_hessian,
    coef_hessian_diagonal,
    elastic_net_penalty,
    eta_hessian,
    log_likelihood,
    saturated_loglik,
)
from toolkit.stats.coxnet._solvers._buffers import BUFFERS, bucket_sizes
from toolkit.stats.coxnet._solvers._quadratic import (
    cd_quadratic,
    fixed_signs,
    fixed_signs_eta,
    retry_signs,
)
from toolkit.stats.coxnet._solvers._stop import MNLAM, deviance_stop

jnp = jax.numpy
lax = jax.lax

_INNER_TOL = 1e-26  # coordinate descent: max_j H_jj * step_j**2
_NEWTON_TOL = 1e-18
_CD_TOL_MAX = 1e-10  # loosest coordinate descent (a looser one gets signs wrong more often)
_MAX_NEWTON = 60
_MAX_KKT = 200


def _newton_step(prob, lam, state):
    """One proximal Newton step on the columns in the buffer ``idx``."""
    beta, eta, idx, last_change, it = state
    x, inv_scale, vp, alpha, q, death, start, end = prob
    z = x[:, idx] * inv_scale[idx]
    loglik, residual, e, b, root = breslow(eta, q, death, start, end)
    g = z.T @ residual
    vpi = vp[idx]
    b0 = beta[idx]
    # inexact Newton: solve the quadratic model only as well as the last step warrants
    tol = jnp.clip(1e-3 * last_change, _INNER_TOL, _CD_TOL_MAX)
    mu1, mu2 = lam * alpha * vpi, lam * (1 - alpha) * vpi

    def hessian():
        return coef_hessian(z, e, b, root, start)

    if z.shape[1] > z.shape[0]:
        # more buffer columns than rows: the K x K system goes through the n x n one
        hmat = eta_hessian(e, b, death * q, start)

        def signs(guess):
            return lax.cond(
                jnp.all((guess == 0) | (mu2 > 0)),
                lambda: fixed_signs_eta(z, hmat, g, b0, mu1, mu2, guess),
                lambda: fixed_signs(hessian(), g, b0, mu1, mu2, guess),
            )
    else:
        h = hessian()

        def signs(guess):
            return fixed_signs(h, g, b0, mu1, mu2, guess)

    # first guess: the current signs, plus the zero coordinates whose gradient
    # breaks the KKT condition, with the sign that decreases the model
    violating = (b0 == 0) & (jnp.abs(g) > mu1 * (1 + 1e-9) + 1e-15)
    guess = jnp.where(violating, jnp.sign(g), b0)
    exact, ok, gradient = signs(guess)

    guess, exact, ok = retry_signs(signs, mu1, guess, exact, ok, gradient)

    # otherwise coordinate descent finds the non-zero set and signs (loosely),
    # and the fixed-sign solve on that set gives the exact minimiser if it is right
    def fallback():
        # from the fixed-sign solution with the coordinates that changed sign at zero
        start = jnp.where(jnp.sign(exact) == jnp.sign(guess), exact, 0.0)
        start = jnp.where(jnp.isfinite(start), start, b0)
        rough = cd_quadratic(hessian(), g, b0, mu1, mu2, jnp.maximum(tol, 1e-12), ok, start)
        polished, fine, _ = signs(rough)
        return jnp.where(fine, polished, rough)

    target = lax.cond(ok, lambda: exact, fallback)
    direction = target - b0
    dz = z @ direction
    f0 = -loglik + elastic_net_penalty(b0, lam, alpha, vpi)
    decrease = -g @ direction + elastic_net_penalty(target, lam, alpha, vpi) - f0 - loglik
    slack = 1e-13 * (1 + jnp.abs(f0))

    def objective(t):
        return -log_likelihood(eta + t * dz, q, death, start, end) + elastic_net_penalty(
            b0 + t * direction, lam, alpha, vpi
        )

    def shrink(t):
        return t * 0.5

    def too_big(t):
        return (objective(t) > f0 + 1e-4 * t * decrease + slack) & (t > 1e-12)

    t = lax.while_loop(too_big, shrink, jnp.ones((), eta.dtype))
    change = jnp.max((coef_hessian_diagonal(z, e, b, root, start) + 1e-300) * (t * direction) ** 2)
    beta = beta.at[idx].set(b0 + t * direction)
    return beta, eta + t * dz, idx, change, it + 1


def _gradient(prob, eta):
    x, inv_scale, _, _, q, death, start, end = prob
    residual = breslow(eta, q, death, start, end)[1]
    return (x.T @ residual) * inv_scale[: x.shape[1]]


def _solve_penalty(prob, allowed, k, lam, state, skip):
    """Minimise the objective at one penalty from a warm start; KKT over all columns."""
    p = allowed.shape[0]
    vp, alpha = prob[2][:p], prob[3]

    def cond(st):
        return ~st[3] & ~st[4] & (st[5] < _MAX_KKT)

    sizes = bucket_sizes(k)

    def newton(size, beta, eta, mask, stop):
        """Newton steps on a buffer of ``size`` columns holding the active set."""
        idx = jnp.nonzero(mask, size=size, fill_value=p)[0]

        def newton_cond(ns):
            return (ns[3] > _NEWTON_TOL) & (ns[4] < _MAX_NEWTON) & ~stop

        padded = jnp.append(beta, 0.0)
        ns = (padded, eta, idx, jnp.inf, 0)
        padded, eta, _, _, _ = lax.while_loop(newton_cond, partial(_newton_step, prob, lam), ns)
        return padded[:p], eta

    def body(st):
        beta, eta, mask, _, _, rounds = st
        grad = _gradient(prob, eta)
        violators = allowed & ~mask & (jnp.abs(grad) > lam * alpha * vp * (1 + 1e-9) + 1e-15)
        mask = mask | violators
        count = jnp.sum(mask)
        overflow = count > k
        done = (rounds > 0) & ~jnp.any(violators)
        # the smallest buffer that holds the active set: a Newton step costs O(n K^2 + K^3)
        branch = jnp.minimum(jnp.searchsorted(jnp.asarray(sizes), count), len(sizes) - 1)
        branches = [partial(newton, size) for size in sizes]
        beta, eta = lax.switch(branch, branches, beta, eta, mask, done | overflow)
        return beta, eta, mask, done, overflow, rounds + 1

    beta, eta, mask = state
    init = (beta, eta, mask, skip, jnp.array(False), 0)
    beta, eta, mask, _, overflow, _ = lax.while_loop(cond, body, init)
    return beta, eta, mask, overflow


def _path_scan(prob, allowed, k, penalties, early_stop, ll0, span):
    """Fit every penalty in turn (warm starts); glmnet's early stop when asked."""
    n, p = prob[0].shape
    n_pen = penalties.shape[0]
    mnl = min(MNLAM, n_pen)
    inv_scale = prob[1]

    def step(carry, inputs):
        beta, eta, mask, devs, stopped, overflow = carry
        i, lam = inputs
        b2, e2, m2, over = _solve_penalty(prob, allowed, k, lam, (beta, eta, mask), stopped)
        dev = (log_likelihood(e2, *prob[4:]) - ll0) / span
        devs, stop_now = deviance_stop(devs, i, dev, early_stop, mnl)
        out = (b2 * inv_scale[:p], dev, stopped)
        carry = (b2, e2, m2, devs, stopped | stop_now, overflow | over)
        return carry, out

    init = (
        jnp.zeros(p),
        jnp.zeros(n),
        jnp.zeros(p, dtype=bool),
        jnp.zeros(n_pen),
        jnp.array(False),
        jnp.array(False),
    )
    carry, (coef, dev, stopped) = lax.scan(step, init, (jnp.arange(n_pen), penalties))
    return coef, dev, stopped, carry[5]


def _fit_one(x, death, start, end, vp, alpha, k, q, scale, allowed, penalties, early_stop):
    """One path on standardised columns: coefficients on the given scale, deviance ratios."""
    inv_scale = jnp.where(allowed, 1.0 / scale, 0.0)
    prob = (x, jnp.append(inv_scale, 0.0), jnp.append(vp, 1.0), alpha, q, death, start, end)
    ll0 = log_likelihood(jnp.zeros_like(q), q, death, start, end)
    span = saturated_loglik(q, death, start) - ll0
    return _path_scan(prob, allowed, k, penalties, early_stop, ll0, span)


@partial(jax.jit, static_argnames=("k",))
def _fit_path(x, death, start, end, vp, alpha, q, scale, allowed, penalties, early_stop, k):
    return _fit_one(x, death, start, end, vp, alpha, k, q, scale, allowed, penalties, early_stop)


@partial(jax.jit, static_argnames=("k",))
def _fit_folds(x, death, start, end, vp, alpha, q, scale, allowed, penalties, early_stop, k):
    def one(qf, sf, af, pf, ef):
        return _fit_one(x, death, start, end, vp, alpha, k, qf, sf, af, pf, ef)

    # folds in turn (lax.map), not vmap: under vmap the buffer-size switch and the
    # while loops would run every branch and every fold to the slowest fold's count
    return lax.map(lambda a: one(*a), (q, scale, allowed, penalties, early_stop))


def _initial_buffer(p: int, n: int) -> int:
    # generous: each Newton step runs on the smallest of the buffer sizes 64, 128, ...
    # that holds the active set, so a large buffer costs compile time, not run time
    return int(min(p, max(64, 4 * n)))


def _run(program, *args):
    """Run ``program`` on ``args``, doubling the active-column buffer while it overflows.

    The buffer starts at the size that sufficed for this program and these
    shapes before (:data:`~toolkit.stats.coxnet._solvers._buffers.BUFFERS`),
    or at :func:`_initial_buffer`.
    """
    n, p = args[0].shape
    key = (program.__name__, n, p, np.shape(args[-2]))
    k = BUFFERS.start(key, _initial_buffer(p, n))
    while True:
        out = program(*args, k=k)
        if not bool(np.any(np.asarray(out[3]))) or k >= p:
            BUFFERS.sufficed(key, k)
            return out
        k = min(p, 2 * k)


def applies(shape: tuple[int, int], alpha: float, vp: np.ndarray, solve: np.ndarray) -> bool:
    """The active-set solver fits every problem."""
    return True


def fit_path(x, death, start, end, vp, alpha, q, scale, allowed, penalties, early_stop):
    """One path on standardised columns: coefficients (given scale), deviance ratios, stops.

    Returns ``coef, deviance_ratio, stopped, failed``; ``failed`` (the active
    set outgrew the largest buffer) is always false, the buffer having grown
    to every column.
    """
    return _run(
        _fit_path, x, death, start, end, vp, alpha, q, scale, allowed, penalties, early_stop
    )


def fit_folds(data: Data, folds, alpha, q, scale, allowed, penalties, early_stop):
    """Every fold's path in one program: all rows, each fold's held-out rows with weight 0.

    ``q``, ``scale``, ``allowed``, ``penalties`` and ``early_stop`` are stacked
    per fold (``folds`` itself is not needed: the weights say it).
    """
    args = (data.x, data.death, data.start, data.end, data.penalty_factor, alpha)
    return _run(_fit_folds, *args, q, scale, allowed, penalties, early_stop)
