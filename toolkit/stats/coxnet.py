"""Elastic-net Cox regression: penalty path, k-fold cross-validation, prediction.

The objective is glmnet 4.1-6's ``family="cox"`` (Breslow ties), minimised over
the coefficients ``b`` at each penalty ``lambda``::

    -loglik(b) / n  +  lambda * sum_j v_j * ((1 - a) / 2 * b_j**2 + a * |b_j|)

    loglik(b) = sum_i w_i d_i eta_i - sum_k D_k log( sum_{j: t_j >= t_k} w_j exp(eta_j) )

with ``eta = X b``, observation weights ``w`` scaled to sum to n, ``D_k`` the
weighted number of deaths at the k-th distinct death time, ``a = l1_ratio``
(glmnet's ``alpha``), ``lambda = penalty`` and penalty factors ``v`` scaled to
sum to p (the number of columns given, as glmnet's ``vp * ni / sum(vp)``).
With ``standardize=True`` the columns are scaled by their weighted 1/n
standard deviation before fitting and the coefficients are returned on the
original scale (glmnet's ``standardize=TRUE``).

Default penalty sequence (glmnet's Fortran ``coxnet1`` and R's ``fix.lam``):
``lambda_max = max_j |x_j' r| / v_j / max(a, 1e-3)`` where ``r`` is the
gradient of the log partial likelihood in ``eta`` at ``b = 0`` (standardised
columns, weights summing to 1, only columns with ``v_j > 0``), then
``n_penalties`` values decreasing geometrically down to
``min_ratio * lambda_max`` (``min_ratio`` 1e-4 if n > p else 1e-2). Like glmnet,
the path stops early when the deviance ratio exceeds 0.99 or changed by less
than 0.1 % (relative) over the last 5 penalties; a user-given sequence is
never cut short. ``CoxnetPath.penalties`` has the penalties actually fitted.

Algorithms (ours, not glmnet's; all converge to the minimiser glmnet's
coordinate descent approaches, to ~1e-10 on the standardised scale, and the
whole path is one ``jax.jit`` program, a ``lax.scan`` over penalties with warm
starts; the cross-validation folds are that program mapped over folds with
``lax.map``, one compiled program):

- **p > n** (more columns than rows, up to 2000 rows, ``0 < l1_ratio < 1``,
  every penalty factor positive; the image signature's case): a semismooth
  Newton method in the n-vector ``eta = X b`` (see :func:`_eta_path`). At the
  optimum each coefficient is a soft-thresholded function of the gradient in
  ``eta``, so the path solves n equations instead of p; each step checks every
  column's KKT condition, the n x n Jacobian goes through a Gram matrix of the
  active columns kept up to date column by column and an LU factorisation that
  is reused while the active set holds (in float32: it only steers the
  iteration, whose residual is float64). A penalty that does not converge
  sends the path to the second solver.
- **n > p** (more rows than columns, up to 4096 columns, ``0 < l1_ratio <= 1``,
  every penalty factor positive: the nomograms' and the study's CV, and large
  cohorts): preconditioned steps with a reused Hessian (see
  :func:`_dense_path`). The Hessian of all p columns is computed only when
  the steps stop converging fast and reused across steps and penalties as a
  preconditioner (nonlinear conjugate gradients, Newton step lengths from the
  exact curvature); each step solves the active block, by Cholesky when at
  most half the columns are active and otherwise through the Schur
  complement of the stored inverse, so no system exceeds p / 2; the
  gradient, the line search and the KKT test (largest violation <= 1e-11)
  are float64. A penalty that does not converge sends the path to the
  active-set solver.
- **otherwise**: proximal Newton with the exact Hessian of the partial
  likelihood on the active columns, with a backtracking line search and a KKT
  check over all columns at each penalty (columns enter when ``|x_j' r| >
  lambda a v_j``). Each Newton step runs on the smallest active-column buffer
  (64, 128, 256, ... columns) that holds the active set, and when that buffer
  has more columns than there are rows the fixed-sign Newton system goes
  through the n x n Hessian in the linear predictor (Woodbury), O(n^2 K)
  instead of O(K^3). The non-zero set and signs of a Newton step are guessed
  (current signs plus KKT violators, then up to ``_SIGN_TRIES`` corrections);
  coordinate descent runs only when those fail.

Deliberate differences from R:

- Tied censored and death times: a censored time equal to a death time is in
  that death's risk set (Breslow, as survival::coxph). glmnet means the same
  (it adds ``100 * .Machine$double.eps`` to censored times) but for times above
  about 100 (days, say) the addition is lost in rounding and glmnet's unstable
  sort decides; on pbc in days its coefficients then move by up to 2e-4. With
  times in months or years glmnet and this module agree to 1e-6.
- Constant columns are dropped with a warning (glmnet drops them silently);
  duplicated columns are also dropped with a warning, keeping the first copy
  (glmnet keeps both and splits the coefficient). Dropped columns get
  coefficient 0. Missing values raise an error naming rows and columns.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from toolkit._jax import jax
from toolkit.stats._checks import drop_redundant, listed
from toolkit.stats._rows import row_products

jnp = jax.numpy
lax = jax.lax

_FDEV = 1e-3  # glmnet: fdev (1e-5) * 100 in coxnet1
_DEVMAX = 0.99  # glmnet: devmax (0.999) * 0.99 / 0.999 in coxnet1
_MNLAM = 5
_EPS_RATIO = 1e-6  # glmnet: eps, smallest min_ratio
_INNER_TOL = 1e-26  # coordinate descent: max_j H_jj * step_j**2
_NEWTON_TOL = 1e-18
_SIGN_TRIES = 2  # fixed-sign solves before falling back to coordinate descent
_CD_TOL_MAX = 1e-10  # loosest coordinate descent (a looser one gets signs wrong more often)
_MAX_SWEEPS = 20000
_MAX_NEWTON = 60
_MAX_KKT = 200
_SINGLE_HESSIAN_WORK = 2e9  # n K^2 above which the active-set Hessian is float32
_ETA_TOL = 1e-10  # semismooth Newton: max|F| relative to max(1, max|eta|)
_ETA_MAX_STEPS = 60
_ETA_CHUNK = 16  # columns added to or removed from the Gram matrix at a time
_ETA_MAX_ROWS = 2000  # above this an n x n factorisation costs more than the active-set solver
_DENSE_MAX_COLS = 4096  # its p x p matrices
_DENSE_TOL = 1e-11  # largest KKT violation (gradient scale) at convergence
_DENSE_POOR = 0.5  # a step reducing the violation less than this-fold refreshes the matrix
_DENSE_MAX_STEPS = 100
_DENSE_JITTER = 1e-6  # relative diagonal shift of the steering matrices (the lasso has mu2 = 0)
_DENSE_STEP_TOL = 1e-9  # and the last step at most this in the Hessian's metric (ill-conditioning)
_BIG = 9.9e35  # glmnet's "big": the first penalty of a default path, all penalised b = 0


class CoxnetWarning(UserWarning):
    """Input or result of the elastic-net Cox model that the user should know about."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CoxnetPath:
    """Coefficients along a penalty path (``glmnet(family="cox")``).

    ``coef`` is ``(n_penalties, p)`` on the scale of the columns given;
    columns dropped as constant or duplicated have coefficient 0.
    ``deviance_ratio`` is glmnet's ``dev.ratio`` (fraction of the null
    deviance explained; saturated log-likelihood ``-sum_k D_k log D_k``), and
    ``null_deviance`` glmnet's ``nulldev``.
    """

    penalties: np.ndarray
    coef: np.ndarray
    n_nonzero: np.ndarray
    deviance_ratio: np.ndarray
    null_deviance: float
    l1_ratio: float
    feature_names: tuple[str, ...]
    dropped: tuple[str, ...] = ()
    standardize: bool = True
    stopped_early: bool = False


@dataclass(frozen=True)
class CoxnetCV:
    """K-fold cross-validation of the penalty (``cv.glmnet(family="cox")``).

    ``cv_mean``/``cv_se`` are cv.glmnet's ``cvm``/``cvsd``; ``penalty_min`` the
    penalty with the best mean (largest penalty among ties) and
    ``penalty_1se`` the largest penalty within one standard error of it.
    """

    penalties: np.ndarray
    cv_mean: np.ndarray
    cv_se: np.ndarray
    penalty_min: float
    penalty_1se: float
    path: CoxnetPath
    measure: str
    fold_id: np.ndarray
    fold_values: np.ndarray = field(repr=False)

    @property
    def index_min(self) -> int:
        return int(np.flatnonzero(self.penalties == self.penalty_min)[0])

    @property
    def index_1se(self) -> int:
        return int(np.flatnonzero(self.penalties == self.penalty_1se)[0])


# --------------------------------------------------------------------------- input


def _names(X: Any, p: int) -> tuple[str, ...]:
    columns = getattr(X, "columns", None)
    if columns is not None:
        return tuple(str(c) for c in columns)
    return tuple(f"x{j}" for j in range(p))


def _row_labels(obj: Any, n: int) -> np.ndarray:
    """A pandas object's row labels, else positions (a list's ``.index`` is a method)."""
    index = obj.index if isinstance(obj, pd.Series | pd.DataFrame) else None
    return np.asarray(index) if index is not None and len(index) == n else np.arange(n)


def _check_matrix(X: Any) -> tuple[np.ndarray, tuple[str, ...]]:
    x = np.asarray(X, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"X must be a 2-D matrix (patients x features), got shape {x.shape}")
    names = _names(X, x.shape[1])
    bad = ~np.isfinite(x)
    if bad.any():
        rows = _row_labels(X, x.shape[0])[bad.any(axis=1)]
        cols = np.asarray(names)[bad.any(axis=0)]
        raise ValueError(
            f"X has {int(bad.sum())} missing or infinite values in rows {listed(rows)} "
            f"and columns {listed(cols)}; impute or remove them first"
        )
    return x, names


def _check_outcome(time: Any, event: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(time, dtype=float).ravel()
    d = np.asarray(event, dtype=float).ravel()
    if len(t) != n or len(d) != n:
        raise ValueError(
            f"time ({len(t)}) and event ({len(d)}) must have one value per row of X ({n})"
        )
    labels = _row_labels(time, n)
    if not np.isfinite(t).all() or (t <= 0).any():
        bad = ~np.isfinite(t) | ~(t > 0)
        raise ValueError(
            f"time must be positive and finite (glmnet's Cox model refuses others): "
            f"rows {listed(labels[bad])}"
        )
    if not np.isin(d, (0.0, 1.0)).all():
        raise ValueError(f"event must be 0/1: rows {listed(labels[~np.isin(d, (0.0, 1.0))])}")
    if d.sum() < 2:
        raise ValueError(f"the elastic-net Cox model needs at least 2 events, got {int(d.sum())}")
    return t, d


def _check_weights(weights: Any, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=float).ravel()
    if len(w) != n or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be n finite non-negative values with a positive sum")
    return w


def _check_penalty_factor(penalty_factor: Any, p: int) -> np.ndarray:
    if penalty_factor is None:
        return np.ones(p)
    v = np.asarray(penalty_factor, dtype=float).ravel()
    if len(v) != p or not np.isfinite(v).all() or (v < 0).any() or v.max() <= 0:
        raise ValueError(
            "penalty_factor must be p finite non-negative values, at least one positive"
        )
    return v


def _redundant_columns(x: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Boolean mask of constant and duplicated columns, warning with their names."""
    found = drop_redundant(x)
    constant = found.constant
    duplicate_of = [f"{names[j]} (= {names[i]})" for j, i in found.copy_of.items()]
    if constant.any():
        warnings.warn(
            f"dropped {int(constant.sum())} constant column(s): "
            f"{listed(np.asarray(names)[constant])}",
            CoxnetWarning,
            stacklevel=3,
        )
    if duplicate_of:
        warnings.warn(
            f"dropped {len(duplicate_of)} duplicated column(s): {listed(duplicate_of)}",
            CoxnetWarning,
            stacklevel=3,
        )
    return found.dropped


@dataclass(frozen=True)
class _Data:
    """Validated data, rows sorted by time (deaths before censored at ties)."""

    x: np.ndarray  # (n, p_kept), centred, sorted rows
    time: np.ndarray
    death: np.ndarray
    weights: np.ndarray  # raw weights, sorted
    start: np.ndarray  # first row with the same time
    end: np.ndarray  # last row with the same time
    order: np.ndarray
    penalty_factor: np.ndarray  # (p_kept,), scaled to sum to p (all columns)
    kept: np.ndarray  # indices of kept columns
    p: int
    names: tuple[str, ...]
    dropped: tuple[str, ...]


def _first_tied(sorted_times: np.ndarray) -> np.ndarray:
    """Per row, the first row with the same time (times sorted)."""
    return np.searchsorted(sorted_times, sorted_times, side="left")


def _last_tied(sorted_times: np.ndarray) -> np.ndarray:
    """Per row, the last row with the same time (times sorted)."""
    return np.searchsorted(sorted_times, sorted_times, side="right") - 1


def _prepare(X, time, event, weights, penalty_factor) -> _Data:
    x, names = _check_matrix(X)
    n, p = x.shape
    t, d = _check_outcome(time, event, n)
    w = _check_weights(weights, n)
    v = _check_penalty_factor(penalty_factor, p)
    drop = _redundant_columns(x, names)
    kept = np.flatnonzero(~drop)
    if kept.size == 0:
        raise ValueError("no columns left: every column of X is constant or duplicated")
    v = v * p / v.sum()
    if v[kept].max() <= 0:
        raise ValueError("every remaining column has penalty_factor 0 (an unpenalised model)")
    order = np.lexsort((-d, t))
    ts = t[order]
    xs = x[order] if kept.size == p else x[np.ix_(order, kept)]  # a copy: centred in place
    xs -= np.average(xs, axis=0, weights=w[order])
    return _Data(
        x=xs,
        time=ts,
        death=d[order],
        weights=w[order],
        start=_first_tied(ts),
        end=_last_tied(ts),
        order=order,
        penalty_factor=v[kept],
        kept=kept,
        p=p,
        names=names,
        dropped=tuple(np.asarray(names)[drop]),
    )


def _scales(x: np.ndarray, q: np.ndarray, standardize: bool) -> np.ndarray:
    """Weighted (weights summing to 1) 1/n standard deviations, glmnet's cstandard."""
    if not standardize:
        return np.ones(x.shape[1])
    mean = q @ x
    sd = np.sqrt(q @ (x - mean) ** 2)
    return np.where(sd > 0, sd, 1.0)


# --------------------------------------------------------------------------- likelihood


def _revcumsum(a):
    return jnp.flip(jnp.cumsum(jnp.flip(a, 0), 0), 0)


def _risk(eta, q, death, start, end):
    """Breslow log partial likelihood (weights q) and the pieces of its derivatives.

    Returns ``loglik, residual (d loglik / d eta), e, b, g`` with ``e = q exp(eta - m)``
    (``m`` the largest eta), ``b_i = sum_{deaths k: t_k <= t_i} D_k / u_k`` and
    ``g_i = sqrt(D_i) / u_i`` at deaths (0 elsewhere), ``u`` the risk-set sums of
    ``e``. The Hessians use ``g`` rather than ``D / u^2``: near a saturated fit
    (eta spanning hundreds) late risk sets have ``u`` below 1e-170, whose square
    underflows, while ``g`` times a risk-set sum of ``e`` stays O(1). Beyond a
    span of ~740 ``exp`` itself underflows to 0 in late risk sets; the
    resulting non-finite fit is cut from the path with a warning
    (:func:`_finite_prefix`).
    """
    dq = death * q
    m = jnp.max(jnp.where(q > 0, eta, -jnp.inf))
    e = jnp.where(q > 0, q * jnp.exp(eta - m), 0.0)  # weight-0 rows: 0, even if eta >> m
    u = _revcumsum(e)[start]
    safe_u = jnp.where(dq > 0, u, 1.0)
    a = jnp.where(dq > 0, dq / safe_u, 0.0)
    loglik = jnp.sum(dq * eta) - jnp.sum(jnp.where(dq > 0, dq * (jnp.log(safe_u) + m), 0.0))
    b = jnp.cumsum(a)[end]
    residual = dq - e * b  # d loglik / d eta
    return loglik, residual, e, b, jnp.sqrt(dq) / safe_u


def _loglik(eta, q, death, start, end):
    return _risk(eta, q, death, start, end)[0]


def _saturated(q, death, start):
    """-sum_k D_k log D_k over distinct death times (glmnet's saturated log-likelihood)."""
    dq = death * q
    tied = jnp.zeros_like(dq).at[start].add(dq)
    return -jnp.sum(jnp.where(tied > 0, tied * jnp.log(jnp.where(tied > 0, tied, 1.0)), 0.0))


@jax.jit
def _null_gap(q, death, start, end):
    """Saturated minus null (b = 0) log partial likelihood, weights q: half the null deviance."""
    return _saturated(q, death, start) - _loglik(jnp.zeros_like(q), q, death, start, end)


def _hessian(z, e, b, g, start, z32=None):
    """Hessian of -loglik in the coefficients of columns z (n x K).

    Its two n x K x K products run in float32 when they are large (n K^2 of
    at least ``_SINGLE_HESSIAN_WORK``: K ~ 630 columns at n = 5000; ``z32``, a
    float32 copy of z, saves converting z each time). The Hessian only shapes
    the Newton direction; the gradient, the objective of the line search and
    the KKT checks stay float64, so the solution is the same and only the
    convergence rate changes (by ~1e-7 per step).
    """
    if not _single_hessian(*z.shape):
        m = _revcumsum(e[:, None] * z)[start] * g[:, None]
        return z.T @ ((e * b)[:, None] * z) - m.T @ m
    single = jnp.float32
    z32 = z.astype(single) if z32 is None else z32
    # the risk-set sums in float64: near a saturated fit e underflows and g overflows
    # in float32 (0 * inf); their product m is O(1) and is cast afterwards
    m32 = (_revcumsum_blocked(e[:, None] * z)[start] * g[:, None]).astype(single)
    w32 = (e * b).astype(single)[:, None]
    return (z32.T @ (w32 * z32) - m32.T @ m32).astype(z.dtype)


def _single_hessian(n: int, k: int) -> bool:
    """Whether :func:`_hessian` of n rows and k columns runs its products in float32."""
    return n * k * k >= _SINGLE_HESSIAN_WORK


def _revcumsum_blocked(a, block=64):
    """Reverse cumulative sum over the rows of a matrix by blocks of rows (matrix products).

    Equal to :func:`_revcumsum` up to rounding; several times faster for large
    matrices on CPU, where XLA's cumulative sum over the rows is slow.
    """
    n, k = a.shape
    nb = -(-n // block)
    blocks = jnp.concatenate([a, jnp.zeros((nb * block - n, k), a.dtype)]).reshape(nb, block, k)
    upper = jnp.triu(jnp.ones((block, block), a.dtype))  # row i sums rows i.. of its block
    inside = jnp.einsum("ij,bjk->bik", upper, blocks)
    totals = inside[:, 0, :]
    after = jnp.concatenate([_revcumsum(totals)[1:], jnp.zeros((1, k), a.dtype)])  # later blocks
    return (inside + after[:, None, :]).reshape(nb * block, k)[:n]


def _hessian_diagonal(z, e, b, g, start):
    """Diagonal of :func:`_hessian` in O(nK)."""
    m = _revcumsum(e[:, None] * z)[start] * g[:, None]
    return (e * b) @ (z * z) - jnp.sum(m * m, axis=0)


def _eta_hessian(e, b, dq, start):
    """Hessian of -loglik in the linear predictor (n x n): ``_hessian = z' H z``.

    ``H = diag(e b) - e_l e_m C[min(l, m)]`` with ``C_j = sum_{k: start_k <= j} D_k / u_k^2``.
    Each entry is formed as ``(e_l s_l)(e_m s_l)`` (``s = sqrt(C)``, l the
    earlier row), two factors of at most sqrt(D) each, so ``e e'`` need not be
    representable; ``C`` is accumulated in logs when a risk-set sum ``u`` is
    below 1e-100 (its square would underflow: a near-saturated fit).
    """
    n = e.shape[0]
    deaths = jnp.zeros(n, e.dtype).at[start].add(dq)  # deaths whose risk set starts here
    u = _revcumsum(e)
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


# --------------------------------------------------------------------------- solver


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


def _cd_quadratic(h, g, beta, mu1, mu2, tol, skip, start):
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


def _fixed_signs(h, g, beta, mu1, mu2, guess):
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


def _fixed_signs_eta(z, hmat, g, beta, mu1, mu2, guess):
    """:func:`_fixed_signs` through the n x n Hessian in eta (Woodbury), for K > n.

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


def _retry_signs(signs, mu1, guess, x, ok, gradient):
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


def _penalty(beta, lam, alpha, vp):
    return lam * jnp.sum(vp * (alpha * jnp.abs(beta) + 0.5 * (1 - alpha) * beta * beta))


def _newton_step(prob, lam, state):
    """One proximal Newton step on the columns in the buffer ``idx``."""
    beta, eta, idx, last_change, it = state
    x, inv_scale, vp, alpha, q, death, start, end = prob
    z = x[:, idx] * inv_scale[idx]
    loglik, residual, e, b, root = _risk(eta, q, death, start, end)
    g = z.T @ residual
    vpi = vp[idx]
    b0 = beta[idx]
    # inexact Newton: solve the quadratic model only as well as the last step warrants
    tol = jnp.clip(1e-3 * last_change, _INNER_TOL, _CD_TOL_MAX)
    mu1, mu2 = lam * alpha * vpi, lam * (1 - alpha) * vpi

    def hessian():
        return _hessian(z, e, b, root, start)

    if z.shape[1] > z.shape[0]:
        # more buffer columns than rows: the K x K system goes through the n x n one
        hmat = _eta_hessian(e, b, death * q, start)

        def signs(guess):
            return lax.cond(
                jnp.all((guess == 0) | (mu2 > 0)),
                lambda: _fixed_signs_eta(z, hmat, g, b0, mu1, mu2, guess),
                lambda: _fixed_signs(hessian(), g, b0, mu1, mu2, guess),
            )
    else:
        h = hessian()

        def signs(guess):
            return _fixed_signs(h, g, b0, mu1, mu2, guess)

    # first guess: the current signs, plus the zero coordinates whose gradient
    # breaks the KKT condition, with the sign that decreases the model
    violating = (b0 == 0) & (jnp.abs(g) > mu1 * (1 + 1e-9) + 1e-15)
    guess = jnp.where(violating, jnp.sign(g), b0)
    exact, ok, gradient = signs(guess)

    guess, exact, ok = _retry_signs(signs, mu1, guess, exact, ok, gradient)

    # otherwise coordinate descent finds the non-zero set and signs (loosely),
    # and the fixed-sign solve on that set gives the exact minimiser if it is right
    def fallback():
        # from the fixed-sign solution with the coordinates that changed sign at zero
        start = jnp.where(jnp.sign(exact) == jnp.sign(guess), exact, 0.0)
        start = jnp.where(jnp.isfinite(start), start, b0)
        rough = _cd_quadratic(hessian(), g, b0, mu1, mu2, jnp.maximum(tol, 1e-12), ok, start)
        polished, fine, _ = signs(rough)
        return jnp.where(fine, polished, rough)

    target = lax.cond(ok, lambda: exact, fallback)
    direction = target - b0
    dz = z @ direction
    f0 = -loglik + _penalty(b0, lam, alpha, vpi)
    decrease = -g @ direction + _penalty(target, lam, alpha, vpi) - f0 - loglik
    slack = 1e-13 * (1 + jnp.abs(f0))

    def objective(t):
        return -_loglik(eta + t * dz, q, death, start, end) + _penalty(
            b0 + t * direction, lam, alpha, vpi
        )

    def shrink(t):
        return t * 0.5

    def too_big(t):
        return (objective(t) > f0 + 1e-4 * t * decrease + slack) & (t > 1e-12)

    t = lax.while_loop(too_big, shrink, jnp.ones((), eta.dtype))
    change = jnp.max((_hessian_diagonal(z, e, b, root, start) + 1e-300) * (t * direction) ** 2)
    beta = beta.at[idx].set(b0 + t * direction)
    return beta, eta + t * dz, idx, change, it + 1


def _gradient(prob, eta):
    x, inv_scale, _, _, q, death, start, end = prob
    residual = _risk(eta, q, death, start, end)[1]
    return (x.T @ residual) * inv_scale[: x.shape[1]]


def _solve_penalty(prob, allowed, k, lam, state, skip):
    """Minimise the objective at one penalty from a warm start; KKT over all columns."""
    p = allowed.shape[0]
    vp, alpha = prob[2][:p], prob[3]

    def cond(st):
        return ~st[3] & ~st[4] & (st[5] < _MAX_KKT)

    sizes = _bucket_sizes(k)

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


def _bucket_sizes(k: int) -> tuple[int, ...]:
    """Active-set buffer sizes tried in turn: 64, 128, 256, 384, 512, 768, ... up to ``k``.

    Fewer, larger sizes trace and compile faster; below 64 columns a Newton
    step costs little whatever the buffer; above 256 (where a step costs
    O(n^2 K) or more) the sizes grow by 1.5 and 4/3 to pad less.
    """
    sizes = []
    size = 64
    while size < k:
        sizes.append(size)
        if size < 256:
            size *= 2
        else:
            size = size * 4 // 3 if size % 3 == 0 else size * 3 // 2
    return (*sizes, k)


def _early_stop(devs, i, dev, early_stop, mnl):
    """Record penalty i's deviance ratio; glmnet's stop: flat over ``mnl`` penalties or > 0.99."""
    devs = devs.at[i].set(dev)
    back = devs[jnp.maximum(i - mnl + 1, 0)]
    stop_now = early_stop & (i + 1 >= mnl) & (((dev - back) / dev < _FDEV) | (dev > _DEVMAX))
    return devs, stop_now


def _path_scan(prob, allowed, k, penalties, early_stop, ll0, span):
    """Fit every penalty in turn (warm starts); glmnet's early stop when asked."""
    n, p = prob[0].shape
    n_pen = penalties.shape[0]
    mnl = min(_MNLAM, n_pen)
    inv_scale = prob[1]

    def step(carry, inputs):
        beta, eta, mask, devs, stopped, overflow = carry
        i, lam = inputs
        b2, e2, m2, over = _solve_penalty(prob, allowed, k, lam, (beta, eta, mask), stopped)
        dev = (_loglik(e2, *prob[4:]) - ll0) / span
        devs, stop_now = _early_stop(devs, i, dev, early_stop, mnl)
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
    ll0 = _loglik(jnp.zeros_like(q), q, death, start, end)
    span = _saturated(q, death, start) - ll0
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


_residual = jax.jit(lambda eta, q, death, start, end: _risk(eta, q, death, start, end)[1])


def _max_gradient(x, death, start, end, vp, q, scale, allowed, eta) -> float:
    """``max_j |x_j' r| / (scale_j v_j)`` over usable penalised columns.

    ``r`` is the gradient of the log partial likelihood in ``eta`` (an
    n-vector from :func:`_risk`); the product with ``x`` is numpy's, so that
    ``x`` is not copied to the device once more for one product per path.
    """
    residual = np.asarray(_residual(eta, q, death, start, end))
    use = allowed & (vp > 0)
    grad = np.abs(residual @ x[:, use]) if not use.all() else np.abs(residual @ x)
    return float(np.max(grad / (scale[use] * vp[use]))) if use.any() else 0.0


# --------------------------------------------------------------------------- solver for p > n


def _eta_eligible(shape: tuple[int, int], alpha: float, vp: np.ndarray, solve: np.ndarray) -> bool:
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
    ll0 = _loglik(jnp.zeros(n), q, death, start, end)
    span = _saturated(q, death, start) - ll0
    logs = jnp.log(penalties)
    n_pen = penalties.shape[0]
    ahead = jnp.concatenate([jnp.zeros(2), logs[:-2] - logs[1:-1]])[:n_pen]
    step_now = jnp.concatenate([jnp.zeros(1), logs[:-1] - logs[1:]])[:n_pen]
    extrapolate = jnp.clip(
        jnp.where(ahead > 0, step_now / jnp.where(ahead > 0, ahead, 1.0), 0.0), 0.0, 2.0
    )
    mnl = min(_MNLAM, penalties.shape[0])

    def evaluate(eta, mu1, mu2):
        loglik, residual, e, b, _ = _risk(eta, q, death, start, end)
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
                hessian = _eta_hessian(e, b, dq, start) / (lam * (1 - alpha))
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
        devs, stop_now = _early_stop(devs, i, (ev[5] - ll0) / span, early_stop, mnl)
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


_eta_fit_path = jax.jit(_eta_path)


def _on_fold_rows(solver):
    """``solver`` (a path function) for each fold's training rows in turn, jitted.

    The result takes ``rows`` (folds x m), each fold's training rows of ``x``
    (index n: a row of zeros, the padding), and per-fold outcome, weights,
    scales, columns and penalties; one fold's rows are gathered at a time and
    the folds run as one ``lax.map`` program.
    """

    def folds(
        x, rows, death, start, end, vp, alpha, q, scale, allowed, penalties, early_stop, max_steps
    ):
        padded = jnp.concatenate([x, jnp.zeros((1, x.shape[1]), x.dtype)])

        def one(args):
            rf, df, sf, ef, qf, scf, af, pf, esf = args
            return solver(padded[rf], df, sf, ef, vp, alpha, qf, scf, af, pf, esf, max_steps)

        return lax.map(one, (rows, death, start, end, q, scale, allowed, penalties, early_stop))

    return jax.jit(folds)


_eta_fit_folds = _on_fold_rows(_eta_path)


# --------------------------------------------------------------------------- n > p, dense


def _dense_eligible(
    shape: tuple[int, int], alpha: float, vp: np.ndarray, solve: np.ndarray
) -> bool:
    """Whether :func:`_dense_path` fits this problem (else the active-set solver)."""
    n, p = shape
    return (
        n > p
        and p <= _DENSE_MAX_COLS
        and 0 < alpha <= 1
        and bool(np.min(vp) > 0)
        and bool(np.min(solve) > 0)
    )


def _block_solve(hess, inv, active, rhs, mu2, sizes, cache):
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


def _stale(cache):
    """The block solve's cache with its factorisation marked not reusable (a new matrix or mu2)."""
    return cache[0], cache[1], jnp.array(False)


def _curvature(dz, pieces, start):
    """``dz' H dz``, H the Hessian of -loglik in eta (``e, b, g`` from :func:`_risk`): O(n)."""
    e, b, g = pieces
    m = _revcumsum(e * dz)[start] * g
    return (e * b) @ (dz * dz) - m @ m


def _jitter(hess):
    """A diagonal shift for the steering matrices, ``_DENSE_JITTER`` times H's largest diagonal.

    With ``mu2 = 0`` (the lasso) ``H + diag(mu2)`` is singular where columns
    are collinear; the shift keeps the factorisations defined. It changes only
    how the iteration is steered, not the objective or its KKT test.
    """
    return _DENSE_JITTER * jnp.maximum(jnp.max(jnp.diagonal(hess)), 1e-300)


def _steering(z, z32, pieces, start, mu2):
    """The Hessian ``H`` in b at the current eta and the inverse of ``H + diag(mu2)`` (float32).

    H's products are float32 for large problems (:func:`_hessian`) and the
    inverse comes from a float32 Cholesky factorisation, redone in float64
    when that one breaks down: both only steer the iteration.
    """
    p = z.shape[1]
    hess = _hessian(z, *pieces, start, z32=z32)
    mat = hess.at[jnp.diag_indices(p)].add(mu2 + _jitter(hess))  # (Cholesky symmetrises)

    def inverse(dtype):
        factor = jax.scipy.linalg.cho_factor(mat.astype(dtype))
        return jax.scipy.linalg.cho_solve(factor, jnp.eye(p, dtype=dtype)).astype(jnp.float32)

    inv = inverse(jnp.float32)
    inv = lax.cond(jnp.all(jnp.isfinite(inv)), lambda: inv, lambda: inverse(mat.dtype))
    return hess, inv


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
    mu1 s_A`` (:func:`_block_solve`); while A stays the same and steps are
    full, it is combined with the previous direction (nonlinear conjugate
    gradients, Polak-Ribiere), and the step length along the direction is
    Newton's, from the exact curvature ``dz' H_eta dz + sum mu2 d^2`` (O(n),
    :func:`_curvature`). Coordinates whose sign would flip stop at zero, and a
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
    z32 = z.astype(jnp.float32) if _single_hessian(n, p) else None
    sizes = _bucket_sizes(max(p // 2, 1))
    mnl = min(_MNLAM, penalties.shape[0])

    def evaluate(eta):
        loglik, residual, e, b, root = _risk(eta, q, death, start, end)
        return loglik, residual @ z, (e, b, root)

    eta0 = jnp.zeros(n)
    ev0 = evaluate(eta0)
    ll0 = ev0[0]  # b = 0
    span = _saturated(q, death, start) - ll0

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
            pr, cache = _block_solve(hess, inv, active, rhs, mu2, sizes, cache)
            rr = rhs @ pr
            # preconditioned conjugate gradients on the active set (Polak-Ribiere, >= 0)
            # while it stays the same and the steps are full; else the plain chord step
            conj = jnp.where(cg_ok, jnp.maximum(rhs @ (pr - pr_prev) / rr_prev, 0.0), 0.0)
            conj = jnp.where(jnp.isfinite(conj), conj, 0.0)
            way = pr + conj * dir_prev
            way = jnp.where(rhs @ way > 0, way, pr)  # not a descent direction: no momentum
            dz = z @ way
            curvature = _curvature(dz, pieces, start) + jnp.sum(mu2 * way * way)
            length = (rhs @ way) / curvature  # Newton's step along the way
            length = jnp.where((length > 0) & jnp.isfinite(length), length, 1.0)
            full = beta + length * way

            before = beta
            beta, eta, t, crossed = _sign_safe_step(
                lambda e: _loglik(e, q, death, start, end),
                lambda b: _penalty(b, lam, alpha, vp),
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
                return (*_steering(z, z32, ev[2], start, mu2), _stale(steer[2]))

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
        steer = (steer[0], steer[1], _stale(steer[2]))  # a new mu2
        st = (beta, eta, ev, steer, need, progress, 0, counts)
        # after glmnet's early stop the remaining penalties are not fitted (they are dropped)
        st = lax.while_loop(lambda s: going(s[6], s[5]), with_matrix, st)
        beta, eta, ev, steer, need, progress, _, counts = st
        finite = jnp.all(jnp.isfinite(beta))
        failed = failed | ((unconverged(progress) | ~finite) & ~stopped)
        devs, stop_now = _early_stop(devs, i, (ev[0] - ll0) / span, early_stop, mnl)
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


_dense_fit_path = jax.jit(_dense_path)
_dense_fit_folds = _on_fold_rows(_dense_path)


def _fast_solver(shapes, alpha: float, vp: np.ndarray, solves, folds: bool):
    """The compiled fast solver for problems of these ``(rows, columns)`` shapes, or None.

    One shape and penalty mask (``solves``) per problem: the whole data, or each
    CV fold's training rows, all of which the solver must fit. Tried in order:
    p > n (:func:`_eta_path`), then n > p (:func:`_dense_path`); None means the
    active-set solver. Returns ``(program, max_steps)``, the path program or,
    with ``folds``, the one mapped over folds.
    """
    for eligible, path_fit, folds_fit, max_steps in (
        (_eta_eligible, _eta_fit_path, _eta_fit_folds, _ETA_MAX_STEPS),
        (_dense_eligible, _dense_fit_path, _dense_fit_folds, _DENSE_MAX_STEPS),
    ):
        if all(eligible(s, alpha, vp, m) for s, m in zip(shapes, solves, strict=True)):
            return (folds_fit if folds else path_fit), max_steps
    return None


# --------------------------------------------------------------------------- sequence


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


def _finite_prefix(coef, dev, keep: int, lam: np.ndarray, where: str) -> int:
    """Penalties up to the first non-finite fit (a safety net: warns, as glmnet's ``jerr``).

    Both solvers are built to stay finite up to a saturated fit; should one
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


def _stop_index(stopped: np.ndarray) -> int:
    """Number of penalties glmnet keeps: up to and including the one that stopped it."""
    hit = np.flatnonzero(stopped)
    return int(hit[0]) if hit.size else len(stopped)


# --------------------------------------------------------------------------- public API


def _initial_buffer(p: int, n: int) -> int:
    # generous: each Newton step runs on the smallest of the buffer sizes 64, 128, ...
    # that holds the active set, so a large buffer costs compile time, not run time
    return int(min(p, max(64, 4 * n)))


_BUFFERS: dict[tuple, int] = {}


def _run(fit, data: _Data, k: int, *args):
    """Run a fit, doubling the active-column buffer when it overflows.

    The buffer that sufficed is remembered per problem shape, so that a
    repeated fit (CV, benchmarks, several l1_ratios) runs once, compiled once.
    """
    p = data.x.shape[1]
    key = (fit.__name__, *data.x.shape, np.shape(args[-2]))
    k = max(k, _BUFFERS.get(key, 0))
    while True:
        out = fit(*args, k=k)
        if not bool(np.any(np.asarray(out[3]))) or k >= p:
            _BUFFERS[key] = k
            return out
        k = min(p, 2 * k)


def _penalties_for(data, q, scale, allowed, l1_ratio, penalties, n_penalties, min_ratio, n_obs):
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
    lam = default_penalties(_lambda_max(data, q, scale, allowed, l1_ratio), n_penalties, min_ratio)
    solve = lam.copy()
    solve[0] = _BIG if n_penalties > 1 else lam[0]
    return lam, solve, True


def _check_l1_ratio(l1_ratio: float) -> float:
    a = float(l1_ratio)
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"l1_ratio must be in [0, 1], got {l1_ratio}")
    return a


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
    standardize=, weights=, penalty.factor=)`` (glmnet 4.1-6). See the module
    docstring for the objective, the default sequence and where we differ.

    Parameters: ``X`` (n x p; a DataFrame gives feature names), ``time``
    (positive), ``event`` (0/1), ``l1_ratio`` (alpha: 1 lasso, 0 ridge),
    ``penalties`` (fitted in decreasing order; default glmnet's sequence),
    ``n_penalties``, ``min_ratio``, ``standardize``, ``weights`` (per row),
    ``penalty_factor`` (per column; 0 leaves a column unpenalised).
    """
    alpha = _check_l1_ratio(l1_ratio)
    data = _prepare(X, time, event, weights, penalty_factor)
    return _path_from_data(data, alpha, penalties, n_penalties, min_ratio, standardize)


def _path_from_data(data, alpha, penalties, n_penalties, min_ratio, standardize) -> CoxnetPath:
    q = data.weights / data.weights.sum()
    scale = _scales(data.x, q, standardize)
    allowed = np.ones(data.x.shape[1], dtype=bool)
    n = data.x.shape[0]
    lam, solve, early = _penalties_for(
        data, q, scale, allowed, alpha, penalties, n_penalties, min_ratio, n
    )
    args = (data.x, data.death, data.start, data.end, data.penalty_factor, alpha)
    out = None
    fast = _fast_solver([data.x.shape], alpha, data.penalty_factor, [solve], folds=False)
    if fast is not None:
        fit, max_steps = fast
        out = fit(*args, q, scale, allowed, solve, early, max_steps)
    if out is None or bool(out[3]):  # a penalty did not converge: the active-set solver
        k = _initial_buffer(data.x.shape[1], n)
        out = _run(_fit_path, data, k, *args, q, scale, allowed, solve, early)
    coef, dev, stopped = (np.asarray(v) for v in out[:3])
    keep = _finite_prefix(coef, dev, _stop_index(stopped), lam, "")
    full = np.zeros((keep, data.p))
    full[:, data.kept] = coef[:keep]
    n_nonzero = np.count_nonzero(full, axis=1)
    if not n_nonzero.any():
        warnings.warn(
            f"every model on the penalty path is empty (no non-zero coefficient): the "
            f"smallest penalty {lam[keep - 1]:.4g} is too large; lambda_max here is "
            f"{_lambda_max(data, q, scale, allowed, alpha):.4g}",
            CoxnetWarning,
            stacklevel=3,
        )
    null_dev = 2 * data.weights.sum() * float(_null_gap(q, data.death, data.start, data.end))
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
    """glmnet's default penalty sequence for these data, without fitting (see the module doc).

    Equal to ``glmnet(...)$lambda`` before glmnet's early stop shortens it.
    """
    alpha = _check_l1_ratio(l1_ratio)
    data = _prepare(X, time, event, weights, penalty_factor)
    q = data.weights / data.weights.sum()
    scale = _scales(data.x, q, standardize)
    allowed = np.ones(data.x.shape[1], dtype=bool)
    n = data.x.shape[0]
    return _penalties_for(data, q, scale, allowed, alpha, None, n_penalties, min_ratio, n)[0]


def _lambda_max(data, q, scale, allowed, alpha) -> float:
    """Smallest penalty with no penalised column in the model (glmnet's ``al0``).

    The gradient is taken at b = 0, or, when some columns are unpenalised
    (penalty factor 0), at their fit alone, as glmnet's first (infinite) step.
    """
    eta = np.zeros(data.x.shape[0])
    if np.any(allowed & (data.penalty_factor == 0)):
        k = _initial_buffer(data.x.shape[1], data.x.shape[0])
        args = (data.x, data.death, data.start, data.end, data.penalty_factor, alpha, q, scale)
        coef = _run(_fit_path, data, k, *args, allowed, np.array([_BIG]), False)[0]
        eta = data.x @ np.asarray(coef)[0]
    gmax = _max_gradient(
        data.x, data.death, data.start, data.end, data.penalty_factor, q, scale, allowed, eta
    )
    return float(gmax) / max(alpha, 1e-3)


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
    x, _ = _check_matrix(X)
    if x.shape[1] != fit.coef.shape[1]:
        raise ValueError(f"X has {x.shape[1]} columns, the model {fit.coef.shape[1]}")
    coef = interpolate(fit.penalties, fit.coef, penalty)
    out = row_products(x, coef)
    return out[:, 0] if np.ndim(penalty) == 0 else out


# --------------------------------------------------------------------------- cross-validation


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


def _fold_inputs(data, folds, alpha, penalties, n_penalties, min_ratio, standardize):
    """Per-fold weights, scales, usable columns and penalty sequences (stacked)."""
    qs, scales, alloweds, solves, lams, earlies = [], [], [], [], [], []
    for f in range(1, folds.max() + 1):
        w = np.where(folds == f, 0.0, data.weights)
        q = w / w.sum()
        train = data.x[folds != f]
        allowed = ~np.all(train == train[:1], axis=0)
        scale = _scales(data.x, q, standardize)
        scale = np.where(allowed, scale, 1.0)
        lam, solve, early = _penalties_for(
            data, q, scale, allowed, alpha, penalties, n_penalties, min_ratio, train.shape[0]
        )
        for store, value in zip(
            (qs, scales, alloweds, solves, lams, earlies),
            (q, scale, allowed, solve, lam, early),
            strict=True,
        ):
            store.append(value)
    return tuple(np.stack(v) for v in (qs, scales, alloweds, solves, lams, earlies))


def _training_rows(data: _Data, folds: np.ndarray, q: np.ndarray):
    """Each fold's training rows in time order, padded to one length with weight-0 rows.

    Returns stacked ``rows, death, start, end, q`` for the fold programs of
    :func:`_on_fold_rows` (row indices into ``data.x``, the padding index n standing for a row of
    zeros); the padding rows come last (time +inf, no death, weight 0), so
    they are in no risk set that matters.
    """
    n = data.x.shape[0]
    chosen = [np.flatnonzero(folds != f) for f in range(1, folds.max() + 1)]
    m = max(len(r) for r in chosen)
    out: list[list[np.ndarray]] = [[], [], [], [], []]
    for f, r in enumerate(chosen):
        pad = m - len(r)
        t = np.append(data.time[r], np.full(pad, np.inf))
        values = (
            np.append(r, np.full(pad, n)),
            np.append(data.death[r], np.zeros(pad)),
            _first_tied(t),
            _last_tied(t),
            np.append(q[f][r], np.zeros(pad)),
        )
        for store, value in zip(out, values, strict=True):
            store.append(value)
    return tuple(np.stack(v) for v in out)


def _fit_all_folds(data, folds, alpha, q, scale, allowed, solve, early):
    """Coefficient paths of every fold (one compiled program): coef (K, L, p), stopped (K, L)."""
    vp = data.penalty_factor
    p = data.x.shape[1]
    shapes = [(int((folds != f).sum()), p) for f in range(1, folds.max() + 1)]
    fast = _fast_solver(shapes, alpha, vp, solve, folds=True)
    if fast is not None:
        fit, max_steps = fast
        rows, death, start, end, qf = _training_rows(data, folds, q)
        coef, _, stopped, failed, _ = fit(
            data.x, rows, death, start, end, vp, alpha, qf, scale, allowed, solve, early, max_steps
        )
        if not np.asarray(failed).any():
            return np.asarray(coef), np.asarray(stopped)
    args = (data.x, data.death, data.start, data.end, vp, alpha)
    k = _initial_buffer(data.x.shape[1], data.x.shape[0])
    coef, _, stopped, _ = _run(_fit_folds, data, k, *args, q, scale, allowed, solve, early)
    return np.asarray(coef), np.asarray(stopped)


@jax.jit
def _grouped_deviance(x, death, start, end, w_full, w_train, coef):
    """cv.glmnet's grouped deviance: 2(lsat - loglik) on all rows minus on training rows."""

    def deviance(w, eta):
        return 2 * (_saturated(w, death, start) - _loglik(eta, w, death, start, end))

    eta = x @ coef.T
    full = jax.vmap(lambda e: deviance(w_full, e), in_axes=1)(eta)
    train = jax.vmap(lambda e: deviance(w_train, e), in_axes=1)(eta)
    return full - train


def _concordance(eta: np.ndarray, time: np.ndarray, death: np.ndarray, w: np.ndarray):
    """Harrell's C per column of ``eta`` (glmnet's ``Cindex``: survival::concordance).

    Pairs (i, j) with a death at t_i < t_j, or t_i = t_j with j censored, are
    comparable; weight w_i w_j; ties in the predictor count one half.
    """
    earlier = (time[:, None] < time[None, :]) | (
        (time[:, None] == time[None, :]) & (death[None, :] == 0)
    )
    comparable = earlier & (death[:, None] == 1)
    pw = (w[:, None] * w[None, :]) * comparable
    diff = eta[:, None, :] - eta[None, :, :]
    score = (diff > 0) + 0.5 * (diff == 0)
    return np.einsum("ij,ijl->l", pw, score) / pw.sum()


def _fold_values(data, folds, measure, coefs):
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
                _grouped_deviance(data.x, data.death, data.start, data.end, w_full, w_train, coef)
            )
            events = float((data.weights * data.death)[held].sum())
            values.append(dev / events)
            fold_weights.append(events)
        else:
            eta = row_products(data.x[held], coef)
            values.append(_concordance(eta, data.time[held], data.death[held], data.weights[held]))
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
    glmnet's ``Cindex``), weighted by the fold's total weight, maximised.

    All folds are fitted by one compiled program (the path mapped over
    folds with ``lax.map``). ``fold_id`` gives a fold label 1..K per row; else ``n_folds``
    random folds from ``seed``, stratified by event status (numpy's
    generator, not R's ``sample``: pass ``fold_id`` to reproduce cv.glmnet).
    A fold without events is an error naming the fold.
    """
    if measure not in ("deviance", "cindex"):
        raise ValueError(f'measure must be "deviance" or "cindex", got {measure!r}')
    alpha = _check_l1_ratio(l1_ratio)
    data = _prepare(X, time, event, weights, penalty_factor)
    folds_given = _fold_labels(fold_id, n_folds, data.death[np.argsort(data.order)], seed)
    folds = folds_given[data.order]
    _check_fold_events(folds, data.death)
    full = _path_from_data(data, alpha, penalties, n_penalties, min_ratio, standardize)
    fold_pen = full.penalties if penalties is not None else None
    q, scale, allowed, solve, lams, early = _fold_inputs(
        data, folds, alpha, fold_pen, n_penalties, min_ratio, standardize
    )
    coef, stopped = _fit_all_folds(data, folds, alpha, q, scale, allowed, solve, early)
    coefs = []
    for f in range(coef.shape[0]):
        keep = _finite_prefix(coef[f], None, _stop_index(stopped[f]), lams[f], f"fold {f + 1}: ")
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
