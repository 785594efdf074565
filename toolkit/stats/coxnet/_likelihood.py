"""The objective: Breslow log partial likelihood, its derivatives, the elastic-net penalty.

glmnet 4.1-6's ``family="cox"`` objective at penalty ``lambda``::

    -loglik(b) / n  +  lambda * sum_j v_j * ((1 - a) / 2 * b_j**2 + a * |b_j|)

    loglik(b) = sum_i w_i d_i eta_i - sum_k D_k log( sum_{j: t_j >= t_k} w_j exp(eta_j) )

Here the weights ``q`` sum to 1 (glmnet's sum to n: the same objective up to
a constant) and the rows are sorted by time with deaths before censored rows at a tie:
``start``/``end`` give each row's first and last row of equal time, so a risk
set is a suffix of rows and its sums are reverse cumulative sums. The
functions are jax-traceable, float64 (the Hessians only steer the solvers and
may run in float32 where said); all run inside the solvers' compiled programs.
"""

from __future__ import annotations

from toolkit._jax import jax

jnp = jax.numpy
lax = jax.lax

_SINGLE_HESSIAN_WORK = 2e9  # n K^2 above which the active-set Hessian is float32


def revcumsum(a):
    """Sums from each row to the last along axis 0: the risk-set sums of sorted rows."""
    return jnp.flip(jnp.cumsum(jnp.flip(a, 0), 0), 0)


def breslow(eta, q, death, start, end):
    """Breslow log partial likelihood (weights q) and the pieces of its derivatives.

    Returns ``loglik, residual (d loglik / d eta), e, b, g`` with ``e = q exp(eta - m)``
    (``m`` the largest eta), ``b_i = sum_{deaths k: t_k <= t_i} D_k / u_k`` and
    ``g_i = sqrt(D_i) / u_i`` at deaths (0 elsewhere), ``u`` the risk-set sums of
    ``e``. The Hessians use ``g`` rather than ``D / u^2``: near a saturated fit
    (eta spanning hundreds) late risk sets have ``u`` below 1e-170, whose square
    underflows, while ``g`` times a risk-set sum of ``e`` stays O(1). Beyond a
    span of ~740 ``exp`` itself underflows to 0 in late risk sets; the
    resulting non-finite fit is cut from the path with a warning
    (:func:`toolkit.stats.coxnet._path.finite_prefix`).
    """
    dq = death * q
    m = jnp.max(jnp.where(q > 0, eta, -jnp.inf))
    e = jnp.where(q > 0, q * jnp.exp(eta - m), 0.0)  # weight-0 rows: 0, even if eta >> m
    u = revcumsum(e)[start]
    safe_u = jnp.where(dq > 0, u, 1.0)
    a = jnp.where(dq > 0, dq / safe_u, 0.0)
    loglik = jnp.sum(dq * eta) - jnp.sum(jnp.where(dq > 0, dq * (jnp.log(safe_u) + m), 0.0))
    b = jnp.cumsum(a)[end]
    residual = dq - e * b  # d loglik / d eta
    return loglik, residual, e, b, jnp.sqrt(dq) / safe_u


def log_likelihood(eta, q, death, start, end):
    """The Breslow log partial likelihood alone (see :func:`breslow`)."""
    return breslow(eta, q, death, start, end)[0]


def saturated_loglik(q, death, start):
    """-sum_k D_k log D_k over distinct death times (glmnet's saturated log-likelihood)."""
    dq = death * q
    tied = jnp.zeros_like(dq).at[start].add(dq)
    return -jnp.sum(jnp.where(tied > 0, tied * jnp.log(jnp.where(tied > 0, tied, 1.0)), 0.0))


@jax.jit
def null_gap(q, death, start, end):
    """Saturated minus null (b = 0) log partial likelihood, weights q: half the null deviance."""
    return saturated_loglik(q, death, start) - log_likelihood(
        jnp.zeros_like(q), q, death, start, end
    )


def coef_hessian(z, e, b, g, start, z32=None):
    """Hessian of -loglik in the coefficients of columns z (n x K).

    Its two n x K x K products run in float32 when they are large (n K^2 of
    at least ``_SINGLE_HESSIAN_WORK``: K ~ 630 columns at n = 5000; ``z32``, a
    float32 copy of z, saves converting z each time). The Hessian only shapes
    the Newton direction; the gradient, the objective of the line search and
    the KKT checks stay float64, so the solution is the same and only the
    convergence rate changes (by ~1e-7 per step).
    """
    if not float32_hessian(*z.shape):
        m = revcumsum(e[:, None] * z)[start] * g[:, None]
        return z.T @ ((e * b)[:, None] * z) - m.T @ m
    single = jnp.float32
    z32 = z.astype(single) if z32 is None else z32
    # the risk-set sums in float64: near a saturated fit e underflows and g overflows
    # in float32 (0 * inf); their product m is O(1) and is cast afterwards
    m32 = (revcumsum_blocked(e[:, None] * z)[start] * g[:, None]).astype(single)
    w32 = (e * b).astype(single)[:, None]
    return (z32.T @ (w32 * z32) - m32.T @ m32).astype(z.dtype)


def float32_hessian(n: int, k: int) -> bool:
    """Whether :func:`coef_hessian` of n rows and k columns runs its products in float32."""
    return n * k * k >= _SINGLE_HESSIAN_WORK


def revcumsum_blocked(a, block=64):
    """Reverse cumulative sum over the rows of a matrix by blocks of rows (matrix products).

    Equal to :func:`revcumsum` up to rounding; several times faster for large
    matrices on CPU, where XLA's cumulative sum over the rows is slow.
    """
    n, k = a.shape
    nb = -(-n // block)
    blocks = jnp.concatenate([a, jnp.zeros((nb * block - n, k), a.dtype)]).reshape(nb, block, k)
    upper = jnp.triu(jnp.ones((block, block), a.dtype))  # row i sums rows i.. of its block
    inside = jnp.einsum("ij,bjk->bik", upper, blocks)
    totals = inside[:, 0, :]
    after = jnp.concatenate([revcumsum(totals)[1:], jnp.zeros((1, k), a.dtype)])  # later blocks
    return (inside + after[:, None, :]).reshape(nb * block, k)[:n]


def coef_hessian_diagonal(z, e, b, g, start):
    """Diagonal of :func:`coef_hessian` in O(nK)."""
    m = revcumsum(e[:, None] * z)[start] * g[:, None]
    return (e * b) @ (z * z) - jnp.sum(m * m, axis=0)


def eta_hessian(e, b, dq, start):
    """Hessian of -loglik in the linear predictor (n x n): ``coef_hessian = z' H z``.

    ``H = diag(e b) - e_l e_m C[min(l, m)]`` with ``C_j = sum_{k: start_k <= j} D_k / u_k^2``.
    Each entry is formed as ``(e_l s_l)(e_m s_l)`` (``s = sqrt(C)``, l the
    earlier row), two factors of at most sqrt(D) each, so ``e e'`` need not be
    representable; ``C`` is accumulated in logs when a risk-set sum ``u`` is
    below 1e-100 (its square would underflow: a near-saturated fit).
    """
    n = e.shape[0]
    deaths = jnp.zeros(n, e.dtype).at[start].add(dq)  # deaths whose risk set starts here
    u = revcumsum(e)
    has = deaths > 0
    safe_u = jnp.where(has, u, 1.0)

    def plain():
        return jnp.sqrt(jnp.cumsum(deaths / safe_u / safe_u))

    def in_logs():
        term = jnp.where(has, jnp.log(jnp.where(has, deaths, 1.0)) - 2 * jnp.log(safe_u), -jnp.inf)
        return jnp.exp(0.5 * lax.cumlogsumexp(term))

    # 1 / u^2 overflows only below u ~ 1e-154 (a near-saturated fit): logs only then
    s = lax.cond(jnp.min(safe_u) > 1e-100, plain, in_logs)
    cross = e[:, None] * s[None, :]  # e_l s_m, used only where m <= l
    d = e * s
    rows = jnp.arange(n)
    earlier = rows[:, None] <= rows[None, :]
    h2 = jnp.where(earlier, d[:, None] * cross.T, d[None, :] * cross)
    return jnp.diag(e * b) - h2


def eta_curvature(dz, pieces, start):
    """``dz' H dz``, H the Hessian of -loglik in eta (``e, b, g`` from :func:`breslow`): O(n)."""
    e, b, g = pieces
    m = revcumsum(e * dz)[start] * g
    return (e * b) @ (dz * dz) - m @ m


def elastic_net_penalty(beta, lam, alpha, vp):
    """``lam * sum_j vp_j (alpha |b_j| + (1 - alpha) b_j^2 / 2)``, glmnet's penalty."""
    return lam * jnp.sum(vp * (alpha * jnp.abs(beta) + 0.5 * (1 - alpha) * beta * beta))
