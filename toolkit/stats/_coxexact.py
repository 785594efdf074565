"""The exact partial likelihood of tied event times (``coxph(ties = "exact")``, survival 3.5-3).

At an event time with d tied events among the n rows at risk, the exact (discrete,
conditional-logistic) contribution is

.. math::

    \\ell_k = \\sum_{i \\in D_k} \\eta_i - \\log \\sum_{S \\subseteq R_k, |S| = d} e^{\\eta_S},
    \\qquad \\eta_S = \\sum_{i \\in S} \\eta_i,

the probability that exactly the d rows that died are the ones chosen from the risk
set. The sum over the :math:`\\binom{n}{d}` subsets is the elementary symmetric
polynomial :math:`e_d(r_1, \\dots, r_n)` of the risk scores :math:`r_i = e^{\\eta_i}`,
computed by coxexact.c's recursion :math:`e_d(m) = e_d(m-1) + r_m e_{d-1}(m-1)`, with its
first and second derivatives in beta by the same recursion (coxd0, coxd1, coxd2). Here
each level of the recursion is one cumulative sum over the risk set,
:math:`e_d(m) = \\sum_{j \\le m} r_j e_{d-1}(j-1)`, and each level is divided by its
largest value (its log kept), so that neither :math:`\\binom{n}{d}` nor the scores can
overflow; coxexact.c works unscaled. A single event at a time gives Breslow's term, so
only the times with tied events take the recursion.

Its table is d levels by n rows, each entry holding :math:`1 + p + p^2` numbers; an
event time with ``d * n > MAX_TABLE`` tied events times rows at risk is refused
(coxexact.c would allocate ``maxdeath * nrisk`` doubles per derivative as well).
"""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_TABLE = 10_000_000  # d * n per event time: memory and time of the recursion


def _cumulate(values: np.ndarray) -> np.ndarray:
    """Cumulative sums over the rows with a leading zero row: entry m sums rows < m."""
    return np.concatenate([np.zeros((1, *values.shape[1:])), np.cumsum(values, axis=0)])


def exact_terms(r: np.ndarray, x: np.ndarray, d: int) -> tuple[float, np.ndarray, np.ndarray]:
    """``log e_d``, and the derivatives of ``e_d`` in beta divided by it, of one risk set.

    ``r`` are the risk scores (rows), ``x`` the covariates (rows x p), d the number of
    tied events. Returns :math:`\\log e_d`, the mean :math:`e_d' / e_d` (p) and the
    second moment :math:`e_d'' / e_d` (p x p), where :math:`e_d'` is
    :math:`\\sum_S e^{\\eta_S} x_S` and :math:`e_d''` is :math:`\\sum_S e^{\\eta_S} x_S x_S^\\top`.
    """
    n, p = x.shape
    e, b1, b2 = np.ones(n + 1), np.zeros((n + 1, p)), np.zeros((n + 1, p, p))
    xx = x[:, :, None] * x[:, None, :]
    log_scale = 0.0
    for _ in range(d):
        e0, e1, e2 = e[:-1], b1[:-1], b2[:-1]  # level d - 1 at row j - 1, for j = 1..n
        cross = x[:, :, None] * e1[:, None, :]
        term2 = e2 + cross + cross.transpose(0, 2, 1) + xx * e0[:, None, None]
        e = _cumulate(r * e0)
        b1 = _cumulate(r[:, None] * (e1 + x * e0[:, None]))
        b2 = _cumulate(r[:, None, None] * term2)
        scale = e[-1]
        e, b1, b2 = e / scale, b1 / scale, b2 / scale
        log_scale += np.log(scale)
    return float(log_scale), b1[-1], b2[-1]


def check_tractable(risk: Any) -> None:
    """Refuse an event time whose recursion table (tied events x rows at risk) is too big."""
    d = risk.group_size
    n = risk.group_end - risk.group_first
    big = d * n > MAX_TABLE
    if big.any():
        k = int(np.flatnonzero(big)[0])
        t = risk.time[risk.death_rows[risk.group_start[k]]]
        raise ValueError(
            f"ties='exact' is intractable here: {int(d[k])} tied events at time {t:g} with "
            f"{int(n[k])} rows at risk (and {int(big.sum()) - 1} more such times). The exact "
            f"likelihood sums over all C(n, d) subsets of the risk set, by a recursion whose "
            f"table has d x n = {int(d[k] * n[k])} entries, each 1 + p + p^2 numbers; the "
            f"limit is {MAX_TABLE:,}. Use ties='efron' (its approximation of the same sum)."
        )


def tied_corrections(risk: Any, eta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Exact minus Breslow contributions (loglik, score, information), summed over the
    event times with tied events (unit weights: R refuses case weights here)."""
    p = risk.x.shape[1]
    loglik, score, information = 0.0, np.zeros(p), np.zeros((p, p))
    for k in np.flatnonzero(risk.group_size > 1):
        d = int(risk.group_size[k])
        rows = slice(risk.group_first[k], risk.group_end[k])
        x, here = risk.x[rows], eta[rows]
        shift = here.max()
        r = np.exp(here - shift)
        log_e, mean, second = exact_terms(r, x, d)
        s0 = r.sum()
        mu = r @ x / s0
        second_b = (x.T * r) @ x / s0
        loglik += d * np.log(s0) - log_e  # the death sums cancel, and so does d * shift
        score += d * mu - mean
        information += (second - np.outer(mean, mean)) - d * (second_b - np.outer(mu, mu))
    return loglik, score, information
