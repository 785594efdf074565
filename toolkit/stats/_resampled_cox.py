"""Cox fits of many bootstrap resamples at once: coxfit6's Newton-Raphson, batched.

A bootstrap resample draws rows of one data set with replacement, so its rows are
copies of the original rows: resample ``b`` is described by how often each
original row was drawn, ``counts[b, i]``. ``survival::coxph`` (through
``rms::validate``) fits the copied rows; its Efron likelihood is, at each
distinct event time :math:`t_k` of the original data (risk set :math:`R_k`, its
event rows :math:`E_k`), with :math:`r_i = e^{\\eta_i}`,

.. math::

    m_k = \\sum_{E_k} c_i,\\quad S_0 = \\sum_{R_k} c_i r_i,\\quad D_0 = \\sum_{E_k} c_i r_i,
    \\qquad \\ell = \\sum_i c_i \\delta_i \\eta_i
        - \\sum_k \\sum_{j=0}^{m_k - 1} \\log\\big(S_0 - \\tfrac{j}{m_k} D_0\\big)

(every copy of an event row is one of the :math:`m_k` tied events: the counts are
*not* case weights, whose Efron term would have one sub-step per original row).
Score and information follow as in ``toolkit.stats.cox.partial_likelihood``,
with the sums over Efron's sub-steps :math:`f_j = j / m_k` collected per
distinct event time into :math:`\\sum_j 1/d_j`, :math:`\\sum_j f_j/d_j`,
:math:`\\sum_j f_j^a/d_j^2` (:math:`d_j = S_0 - f_j D_0`), so that every term is
an array over (resample, event time) or (resample, row) and all resamples are
evaluated together. The risk sets and their order are the original data's
(``toolkit.stats.cox.risk_sets``): copies of a row sort next to it.

The iteration is ``toolkit.stats.cox.newton``'s (coxfit6 of survival 3.5-3, step
halving included) run for every resample side by side, each with its own
state; tests hold the result equal to ``cox.newton`` on the copied rows.
Covariates are either shared, ``(n, p)`` (refitting one model on each
resample), or per resample, ``(B, n, p)`` (a calibration fit of each resample's
linear predictor on the original rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolkit.stats.cox import RiskSets


@dataclass(frozen=True)
class ResampledFits:
    """Where each resample's iteration stopped (per resample, as ``cox.Newton``)."""

    beta: np.ndarray  # (B, p): the converged point, else the best one reached
    loglik: np.ndarray  # (B,) at beta
    loglik_null: np.ndarray  # (B,) at beta = 0
    information: np.ndarray  # (B, p, p) at beta
    iterations: np.ndarray  # (B,) coxph's fit$iter (max_iter + 1 when they ran out)
    converged: np.ndarray  # (B,) bool


def _suffix_sums(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Sums of ``values`` (B, n, ...) over rows ``at[k]:n`` (axis 1), for each ``k``."""
    return np.cumsum(values[:, ::-1], axis=1)[:, ::-1][:, at]


def _covariates_of(x: np.ndarray, which: np.ndarray | slice) -> np.ndarray:
    """The covariates of some resamples: shared covariates are everyone's."""
    return x if x.ndim == 2 else x[which]


def _linear(x: np.ndarray, beta: np.ndarray) -> np.ndarray:
    if x.ndim == 2:
        return beta @ x.T
    return np.einsum("bnp,bp->bn", x, beta)


def _weighted_cross(weight: np.ndarray, x: np.ndarray) -> np.ndarray:
    """sum_i weight[b, i] x_i x_i^T for each resample: (B, p, p)."""
    if x.ndim == 2:
        outer = (x[:, :, None] * x[:, None, :]).reshape(x.shape[0], -1)
        return (weight @ outer).reshape(weight.shape[0], x.shape[1], x.shape[1])
    return np.einsum("bn,bnp,bnq->bpq", weight, x, x)


def _efron_sums(m: np.ndarray, s0: np.ndarray, d0: np.ndarray) -> dict[str, np.ndarray]:
    """Per (resample, event time): the sums over Efron's sub-steps j < m of 1/d_j, ...

    Returned scaled as the (shifted) risk scores are; ``log`` is sum_j log d_j. The
    sub-steps of all (resample, time) cells are laid out one after the other (as
    many as the resamples' events), not padded to the largest m.
    """
    size = m.astype(np.int64).ravel()
    cell = np.repeat(np.arange(size.size), size)
    first = np.cumsum(size) - size
    fraction = (np.arange(cell.size) - first[cell]) / size[cell]
    denom = s0.ravel()[cell] - fraction * d0.ravel()[cell]
    inv = 1 / denom
    inv2 = inv * inv

    def per_cell(values: np.ndarray) -> np.ndarray:
        return np.bincount(cell, weights=values, minlength=size.size).reshape(m.shape)

    return {
        "log": per_cell(np.log(denom)),
        "a0": per_cell(inv),
        "a1": per_cell(inv * fraction),
        "b0": per_cell(inv2),
        "b1": per_cell(inv2 * fraction),
        "b2": per_cell(inv2 * fraction * fraction),
    }


def likelihood(risk: RiskSets, x: np.ndarray, counts: np.ndarray, beta: np.ndarray):
    """Log-likelihood (B,), score (B, p) and information (B, p, p) of each resample.

    ``x``: covariates sorted as ``risk`` (shared ``(n, p)`` or ``(B, n, p)``);
    ``counts``: (B, n) copies of each sorted row; ``beta``: (B, p).
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _likelihood(risk, x, counts, beta)


def _likelihood(risk: RiskSets, x, counts, beta):
    eta = _linear(x, beta)
    shift = eta.max(axis=1, keepdims=True)
    r = counts * np.exp(eta - shift)
    dead, start, first = risk.death_rows, risk.group_start, risk.group_first
    s0 = _suffix_sums(r, first)
    rd = r[:, dead]
    d0 = np.add.reduceat(rd, start, axis=1)
    m = np.add.reduceat(counts[:, dead], start, axis=1)
    efron = _efron_sums(m, s0, d0)
    event_counts = counts * risk.event
    loglik = np.einsum("bn,bn->b", event_counts, eta) - efron["log"].sum(axis=1)
    loglik -= m.sum(axis=1) * shift[:, 0]
    rx = r[:, :, None] * x
    s1 = _suffix_sums(rx, first)
    d1 = np.add.reduceat(rx[:, dead], start, axis=1)
    a0, a1 = efron["a0"], efron["a1"]
    observed = event_counts @ x if x.ndim == 2 else np.einsum("bn,bnp->bp", event_counts, x)
    score = observed - np.matmul(a0[:, None, :], s1)[:, 0] + np.matmul(a1[:, None, :], d1)[:, 0]
    # sum_k a0_k S2_k - a1_k D2_k as one weighted cross-product over the rows
    placed = np.zeros_like(r)
    placed[:, first] = a0
    row_weight = r * np.cumsum(placed, axis=1)
    row_weight[:, dead] -= rd * a1[:, risk.group]
    information = _weighted_cross(row_weight, x)
    s1_t = s1.transpose(0, 2, 1)
    cross = np.matmul(s1_t * efron["b1"][:, None, :], d1)
    information += cross + cross.transpose(0, 2, 1)
    information -= np.matmul(s1_t * efron["b0"][:, None, :], s1)
    information -= np.matmul(d1.transpose(0, 2, 1) * efron["b2"][:, None, :], d1)
    return loglik, score, information


def _solve(information: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Newton steps I^{-1} U; a singular information gets ``cox._solve``'s least squares."""
    try:
        return np.linalg.solve(information, score[..., None])[..., 0]
    except np.linalg.LinAlgError:
        out = np.empty_like(score)
        for b in range(len(score)):
            try:
                out[b] = np.linalg.solve(information[b], score[b])
            except np.linalg.LinAlgError:
                out[b] = np.linalg.lstsq(information[b], score[b], rcond=None)[0]
        return out


def _finite(loglik, score, information) -> np.ndarray:
    return (
        np.isfinite(loglik)
        & np.isfinite(score).all(axis=1)
        & np.isfinite(information).all(axis=(1, 2))
    )


class _State:
    """One Newton iteration per resample (cox.newton's variables, one row each)."""

    def __init__(self, start, eps: float) -> None:
        loglik, score, information = start
        b, p = score.shape
        self.eps = eps
        self.beta = np.zeros((b, p))
        self.loglik = loglik.copy()
        self.candidate = _solve(information, score)
        self.halving = np.zeros(b)
        self.done = np.zeros(b, dtype=bool)
        self.out_beta, self.out_loglik = self.beta.copy(), loglik.copy()
        self.out_information = information.copy()
        self.iterations = np.zeros(b, dtype=np.int64)

    def step(self, active: np.ndarray, iteration: int, terms) -> None:
        loglik, score, information = terms
        best = self.loglik[active]
        with np.errstate(divide="ignore", invalid="ignore"):
            change = np.abs(1 - best / loglik)
        finite = _finite(loglik, score, information)
        converged = finite & (change <= self.eps)
        stop = active[converged]
        self.done[stop] = True
        self.iterations[stop] = iteration
        self.out_beta[stop] = self.candidate[stop]
        self.out_loglik[stop] = loglik[converged]
        self.out_information[stop] = information[converged]
        worse = ~converged & (~finite | (loglik < best))
        halve = active[worse]
        self.halving[halve] += 1
        k = self.halving[halve][:, None]
        self.candidate[halve] = (self.candidate[halve] + k * self.beta[halve]) / (k + 1)
        better = ~converged & ~worse
        move = active[better]
        self.halving[move] = 0
        self.loglik[move] = loglik[better]
        self.beta[move] = self.candidate[move]
        self.candidate[move] += _solve(information[better], score[better])


def newton(
    risk: RiskSets, x: np.ndarray, counts: np.ndarray, eps: float, max_iter: int
) -> ResampledFits:
    """``cox.newton`` for every resample at once (from beta = 0; ``max_iter >= 1``).

    Resamples that have not converged after ``max_iter`` iterations keep their best
    point and its terms, with ``iterations = max_iter + 1`` (coxfit6's count).
    """
    start = likelihood(risk, x, counts, np.zeros((counts.shape[0], x.shape[-1])))
    state = _State(start, eps)
    for iteration in range(1, max_iter + 1):
        active = np.flatnonzero(~state.done)
        if not active.size:
            break
        terms = likelihood(risk, _covariates_of(x, active), counts[active], state.candidate[active])
        state.step(active, iteration, terms)
    left = np.flatnonzero(~state.done)
    if left.size:
        terms = likelihood(risk, _covariates_of(x, left), counts[left], state.beta[left])
        state.out_beta[left] = state.beta[left]
        state.out_loglik[left], _, state.out_information[left] = terms
        state.iterations[left] = max_iter + 1
    return ResampledFits(
        beta=state.out_beta,
        loglik=state.out_loglik,
        loglik_null=start[0],
        information=state.out_information,
        iterations=state.iterations,
        converged=state.done.copy(),
    )


def full_rank(information: np.ndarray, toler: float) -> np.ndarray:
    """Whether survival's ``cholesky2`` finds each (B, p, p) information of full rank.

    cholesky2 factors without pivoting and calls a pivot singular when it is not
    finite or below ``toler`` times the largest positive diagonal element; coxph
    then reports that coefficient as NA (``rms`` counts the fit as failed).
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _full_rank(np.array(information, dtype=float), toler)


def _full_rank(a: np.ndarray, toler: float) -> np.ndarray:
    diagonal = np.diagonal(a, axis1=1, axis2=2)
    largest = np.max(np.where(diagonal > 0, diagonal, 0.0), axis=1)
    eps = np.where(largest > 0, largest * toler, toler)
    ok = np.ones(len(a), dtype=bool)
    for i in range(a.shape[1]):
        pivot = a[:, i, i]
        singular = ~np.isfinite(pivot) | (pivot < eps)
        ok &= ~singular
        safe = np.where(singular, 1.0, pivot)[:, None]
        column = np.where(singular[:, None], 0.0, a[:, i + 1 :, i] / safe)
        a[:, i + 1 :, i + 1 :] -= column[:, :, None] * a[:, i, i + 1 :][:, None, :]
    return ok
