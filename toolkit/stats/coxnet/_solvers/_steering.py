"""The n > p solver's steering matrices: the Hessian, its float32 inverse, the block solves.

The dense solver (:mod:`~toolkit.stats.coxnet._solvers.dense`) steers its
steps with the Hessian ``H`` of all p columns, recomputed only when the steps
stop converging fast, and with a float32 inverse of ``H + diag(mu2)``; a step
solves the active block of ``H + diag(mu2)`` (:func:`block_solve`), never a
system larger than p / 2. All of it only steers the iteration: the
gradient, the objective and the KKT test stay float64.
"""

from __future__ import annotations

from functools import partial

from toolkit._jax import jax
from toolkit.stats.coxnet._likelihood import coef_hessian

jnp = jax.numpy
lax = jax.lax

DENSE_JITTER = 1e-6  # relative diagonal shift of the steering matrices (the lasso has mu2 = 0)


def block_solve(hess, inv, active, rhs, mu2, sizes, cache):
    """``x`` with ``M_AA x_A = rhs_A``, ``x = 0`` off the active set A, ``M = hess + diag(mu2)``.

    (``M`` plus the tiny diagonal shift of :func:`_jitter`, in the Cholesky way.)

    ``hess`` (p x p, symmetric positive semi-definite) is a Hessian and ``inv``
    (float32) the inverse of ``hess + diag(mu2_ref)`` for the ``mu2`` of some
    earlier penalty. With K active columns the cheaper of two ways is taken,
    each on a buffer of the smallest of ``sizes`` that holds min(K, p - K)
    indices: a Cholesky factorisation of ``M_AA`` when K <= p / 2, else the
    Schur complement ``x = y - inv_:I (inv_II)^-1 y_I`` with ``y = inv rhs_A``
    and I the p - K inactive columns (a block of the inverse of a matrix is
    the inverse of the complementary block's Schur complement), which solves
    the system with ``mu2_ref`` in place of ``mu2`` (late on a path, where
    most columns are active, both are small). So no system is ever larger
    than p / 2. ``cache`` holds the last factorisation (padded to the largest
    size), its active set and whether it may be reused; ``(x, cache)`` is
    returned, and a factorisation is reused while A is unchanged and
    ``cache[2]`` holds (the caller clears it for a new matrix or penalty).
    """
    p = active.shape[0]
    cho_factor, cho_solve = jax.scipy.linalg.cho_factor, jax.scipy.linalg.cho_solve
    factor_buf, cached_active, valid = cache
    reuse = valid & jnp.all(active == cached_active)

    def factor(m, idx, shift):
        """Cholesky factor of ``m_II + diag(shift_I)`` (I = idx, padding: identity), padded."""
        s = idx.shape[0]

        def fresh():
            ok = idx < p
            ii = jnp.minimum(idx, p - 1)
            block = m[ii][:, ii].astype(factor_buf.dtype) + jnp.diag(jnp.where(ok, shift[ii], 0.0))
            block = jnp.where(ok[:, None] & ok[None, :], block, jnp.eye(s, dtype=block.dtype))
            return jnp.zeros_like(factor_buf).at[:s, :s].set(cho_factor(block)[0])

        buf = lax.cond(reuse, lambda: factor_buf, fresh)
        return buf, (buf[:s, :s], False)

    def direct(size):
        idx = jnp.nonzero(active, size=size, fill_value=p)[0]
        buf, f = factor(hess, idx, mu2 + _jitter(hess))
        xa = cho_solve(f, jnp.where(idx < p, rhs[jnp.minimum(idx, p - 1)], 0.0))
        return jnp.zeros_like(rhs).at[idx].set(xa, mode="drop"), buf

    def schur(size):
        idx = jnp.nonzero(~active, size=size, fill_value=p)[0]
        buf, f = factor(inv, idx, jnp.zeros_like(mu2))
        y = (inv @ jnp.where(active, rhs, 0.0).astype(inv.dtype)).astype(rhs.dtype)
        c = cho_solve(f, jnp.where(idx < p, y[jnp.minimum(idx, p - 1)], 0.0))
        back = inv @ jnp.zeros(p, inv.dtype).at[idx].set(c.astype(inv.dtype), mode="drop")
        return jnp.where(active, y - back.astype(rhs.dtype), 0.0), buf

    k = jnp.sum(active)
    bucket = jnp.minimum(
        jnp.searchsorted(jnp.asarray(sizes), jnp.minimum(k, p - k)), len(sizes) - 1
    )
    branch = jnp.where(k <= p - k, bucket, len(sizes) + bucket)
    branches = [partial(direct, s) for s in sizes] + [partial(schur, s) for s in sizes]
    x, factor_buf = lax.switch(branch, branches)
    return x, (factor_buf, active, jnp.array(True))


def stale_cache(cache):
    """The block solve's cache with its factorisation marked not reusable (a new matrix or mu2)."""
    return cache[0], cache[1], jnp.array(False)


def _jitter(hess):
    """A diagonal shift for the steering matrices, ``DENSE_JITTER`` times H's largest diagonal.

    With ``mu2 = 0`` (the lasso) ``H + diag(mu2)`` is singular where columns
    are collinear; the shift keeps the factorisations defined. It changes only
    how the iteration is steered, not the objective or its KKT test.
    """
    return DENSE_JITTER * jnp.maximum(jnp.max(jnp.diagonal(hess)), 1e-300)


def steering(z, z32, pieces, start, mu2):
    """The Hessian ``H`` in b at the current eta and the inverse of ``H + diag(mu2)`` (float32).

    H's products are float32 for large problems (:func:`coef_hessian`) and the
    inverse comes from a float32 Cholesky factorisation, redone in float64
    when that one breaks down: both only steer the iteration.
    """
    p = z.shape[1]
    hess = coef_hessian(z, *pieces, start, z32=z32)
    mat = hess.at[jnp.diag_indices(p)].add(mu2 + _jitter(hess))  # (Cholesky symmetrises)

    def inverse(dtype):
        factor = jax.scipy.linalg.cho_factor(mat.astype(dtype))
        return jax.scipy.linalg.cho_solve(factor, jnp.eye(p, dtype=dtype)).astype(jnp.float32)

    inv = inverse(jnp.float32)
    inv = lax.cond(jnp.all(jnp.isfinite(inv)), lambda: inv, lambda: inverse(mat.dtype))
    return hess, inv
