"""The active-set solver's subproblem: the quadratic model plus the elastic-net penalty.

Each proximal Newton step minimises, over the coefficients ``x`` of the
active-column buffer (``b`` the current ones, ``g`` the gradient of the log
partial likelihood and ``h`` the Hessian of its negative, in ``b``)::

    -g'(x - b) + (x - b)' h (x - b) / 2 + sum_j mu1_j |x_j| + sum_j mu2_j x_j^2 / 2

The non-zero set and signs of the minimiser are guessed and the then smooth
model solved exactly (:func:`fixed_signs`, or through the n x n Hessian in the
linear predictor when the buffer has more columns than rows,
:func:`fixed_signs_eta`); wrong guesses are corrected a few times
(:func:`retry_signs`) before coordinate descent (:func:`cd_quadratic`) finds
the set. glmnet runs coordinate descent throughout.
"""

from __future__ import annotations

from toolkit._jax import jax

jnp = jax.numpy
lax = jax.lax

_SIGN_TRIES = 2  # fixed-sign solves before falling back to coordinate descent
_MAX_SWEEPS = 20000


def _soft(z, t):
    return jnp.sign(z) * jnp.maximum(jnp.abs(z) - t, 0.0)


def _cd_sweep(order, count, h, den, mu1, state):
    def step(i, st):
        x, s, dmax = st
        j = order[i]
        old = x[j]
        new = _soft(s[j] + h[j, j] * old, mu1[j]) / den[j]
        delta = new - old
        s = s - h[j] * delta  # h is symmetric: its row j is contiguous
        return x.at[j].set(new), s, jnp.maximum(dmax, den[j] * delta * delta)

    x, s, _ = state
    return lax.fori_loop(0, count, step, (x, s, jnp.zeros((), x.dtype)))


def cd_quadratic(h, g, beta, mu1, mu2, tol, skip, start):
    """Coordinate descent for argmin_x -g'(x-b) + (x-b)'h(x-b)/2 + sum mu1|x| + sum mu2 x^2/2.

    Starts from ``start`` (b = ``beta``); sweeps over the non-zero coordinates
    until they settle, then one sweep over all; stops when a full sweep changes
    nothing beyond the tolerance.
    """
    k = beta.shape[0]
    den = jnp.maximum(jnp.diagonal(h) + mu2, 1e-300)
    everything = jnp.arange(k)

    def body(st):
        x, s, full, _, sweeps = st
        nonzero_first = jnp.argsort(x == 0, stable=True)
        order = jnp.where(full, everything, nonzero_first)
        count = jnp.where(full, k, jnp.sum(x != 0))
        x, s, dmax = _cd_sweep(order, count, h, den, mu1, (x, s, 0.0))
        settled = dmax < tol
        return x, s, settled, full & settled, sweeps + 1

    def cond(st):
        return ~st[3] & (st[4] < _MAX_SWEEPS)

    init = (start, g - h @ (start - beta), jnp.array(True), skip, 0)
    return lax.while_loop(cond, body, init)[0]


def fixed_signs(h, g, beta, mu1, mu2, guess):
    """Minimiser of the quadratic model if the non-zero set and signs of ``guess`` are right.

    On the non-zero set A with signs s the model is smooth:
    ``(h_AA + diag(mu2_A)) x_A = g_A + (h beta)_A - mu1_A s_A``. Returns the
    solution and whether it is the true minimiser (signs kept, and
    ``|g_j - (h (x - beta))_j| <= mu1_j`` off A).
    """
    active = guess != 0
    sign = jnp.sign(guess)
    both = active[:, None] & active[None, :]
    m = jnp.where(both, h, 0.0) + jnp.diag(jnp.where(active, mu2, 1.0))
    rhs = jnp.where(active, g + h @ beta - mu1 * sign, 0.0)
    x = jnp.linalg.solve(m, rhs)
    gradient = g - h @ (x - beta)
    return x, _signs_fine(x, gradient, active, sign, mu1), gradient


def _signs_fine(x, gradient, active, sign, mu1):
    fine = jnp.where(active, jnp.sign(x) == sign, jnp.abs(gradient) <= mu1 * (1 + 1e-9) + 1e-15)
    return jnp.all(fine) & jnp.all(jnp.isfinite(x))


def fixed_signs_eta(z, hmat, g, beta, mu1, mu2, guess):
    """:func:`fixed_signs` through the n x n Hessian in eta (Woodbury), for K > n.

    With ``h = z' H z``, ``D = diag(mu2)`` on the non-zero set (all ``mu2 > 0``)
    and ``Z`` the columns of that set: ``(Z' H Z + D) x = r`` is solved as
    ``(I + Z D^-1 Z' H) v = Z D^-1 r``, ``x = D^-1 (r - Z' H v)``: O(n^2 K + n^3)
    instead of O(n K^2 + K^3).
    """
    active = guess != 0
    sign = jnp.sign(guess)
    zm = jnp.where(active[None, :], z, 0.0)
    d = jnp.where(active, mu2, 1.0)
    rhs = jnp.where(active, g + z.T @ (hmat @ (z @ beta)) - mu1 * sign, 0.0)
    y = rhs / d
    n = z.shape[0]
    v = jnp.linalg.solve(jnp.eye(n, dtype=z.dtype) + ((zm / d) @ zm.T) @ hmat, zm @ y)
    x = y - (zm.T @ (hmat @ v)) / d
    gradient = g - z.T @ (hmat @ (z @ (x - beta)))
    return x, _signs_fine(x, gradient, active, sign, mu1), gradient


def retry_signs(signs, mu1, guess, x, ok, gradient):
    """More fixed-sign solves while the signs are wrong (at most ``_SIGN_TRIES``).

    Each drops the coordinates that changed sign and adds those that break the
    KKT condition (``|gradient_j| > mu1_j`` at zero) with the gradient's sign.
    """

    def retry(st):
        guess, x, _, gradient, i = st
        kept = jnp.where((jnp.sign(x) == jnp.sign(guess)) & jnp.isfinite(x), x, 0.0)
        breaks = (guess == 0) & (jnp.abs(gradient) > mu1 * (1 + 1e-9) + 1e-15)
        guess = jnp.where(breaks & jnp.isfinite(gradient), jnp.sign(gradient), kept)
        return (guess, *signs(guess), i + 1)

    def retry_cond(st):
        return ~st[2] & (st[4] < _SIGN_TRIES)

    guess, x, ok, _, _ = lax.while_loop(retry_cond, retry, (guess, x, ok, gradient, 0))
    return guess, x, ok
