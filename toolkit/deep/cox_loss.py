"""The Cox negative partial log-likelihood of a linear predictor, in JAX, for training networks.

For subjects i = 1..n with follow-up time t_i, event indicator d_i, case weight
w_i > 0 and linear predictor eta_i, write D_j for the set of events at the j-th
distinct event time tau_j, m_j = |D_j| for their number, W_j = sum_{i in D_j} w_i
for their weight, and

    S_j = sum_{k: t_k >= tau_j} w_k exp(eta_k),    E_j = sum_{i in D_j} w_i exp(eta_i)

for the weighted risk of the risk set and of the events. The loss is

    loss(eta) = -sum_i d_i w_i eta_i + sum_j sum_{r=0}^{m_j - 1} c_jr log(S_j - (r / m_j) E_j)

**Ties.** Efron (default): c_jr = W_j / m_j for r = 0..m_j-1, the m_j events
leaving the risk set a fraction 1/m_j at a time, each taking the mean weight of
the tied events (Therneau and Grambsch 2000, sec. 3.3; survival's ``coxfit6.c``
does the same). Breslow: every tied event sees the whole risk set, so the sum
over r is W_j log S_j. With no tied events the two are equal.

**Weights.** Case weights multiply each subject's contribution to the risk sets
and its own event term, as ``coxph(..., weights = w)`` does (frequency weights:
an integer weight k is the subject repeated k times, under Breslow). They must
be positive: ``coxph`` refuses negative weights, and a zero weight would put a
log 0 in the stable computation below; leave such subjects out instead.

The loss equals ``-coxph(Surv(time, status) ~ offset(eta), ties = ...)$loglik``
(survival 3.x: a model with no coefficients reports the one log-likelihood at the
offset), which tests/deep/test_cox_loss.py checks on survival's colon and
veteran to 1e-10. It is the sum over the whole data, not the mean per event that
pycox and torchsurv report; a trainer that wants a scale-free loss divides by
``sum_i d_i w_i`` (``RiskSets.event_weight``) itself.

**Computation.** The subjects are sorted by time once, in numpy, by `risk_sets`;
the differentiated function `negative_partial_loglik` only gathers, takes a
reverse cumulative log-sum-exp (``jax.lax.cumlogsumexp``) over the sorted
log w_k + eta_k, and reads log S_j at the first subject of each tied time: no
exp(eta) is formed, so it neither overflows nor underflows however large the
linear predictor. Efron's terms are log S_j + log1p(-(r / m_j) E_j / S_j), where
E_j / S_j = sum_{i in D_j} exp(log w_i + eta_i - log S_j) <= 1 and r / m_j < 1.
All arrays have the length n, so the function compiles once per cohort size
(``jax.jit``) and ``jax.grad`` differentiates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from toolkit import _jax  # noqa: F401  (x64 on before any array is made)
from toolkit.stats._checks import check_finite, check_survival, listed

TIES = ("efron", "breslow")


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class RiskSets:
    """The time-ordering of a cohort that the loss needs, computed once by `risk_sets`.

    Every array has one entry per subject in time order (subject ``order[s]`` at
    position s); the tie method is carried by ``event_share`` and
    ``efron_fraction`` (Breslow: the subject's own weight and 0), so that one
    compiled loss serves both.

    Attributes
    ----------
    order
        Permutation sorting the subjects by time (stable: tied subjects keep their order).
    log_weight
        log w of each sorted subject.
    event
        d of each sorted subject (1.0 event, 0.0 censored).
    group
        Position of the first sorted subject with the same time: the start of its risk set.
    event_share
        c of each sorted event: W_j / m_j (Efron) or w_i (Breslow); 0 for a censored subject.
    efron_fraction
        r / m_j for the r-th event (0-based) of its tied time (Efron), 0 under Breslow.
    """

    order: jax.Array
    log_weight: jax.Array
    event: jax.Array
    group: jax.Array
    event_share: jax.Array
    efron_fraction: jax.Array

    @property
    def event_weight(self) -> jax.Array:
        """sum_i d_i w_i: the weighted number of events."""
        return jnp.sum(self.event * jnp.exp(self.log_weight))


def risk_sets(
    time: Any,
    event: Any,
    weights: Any = None,
    *,
    ties: str = "efron",
    rows: Any = None,
) -> RiskSets:
    """Sort a cohort by time and lay out its risk sets and tied events for the loss.

    Parameters
    ----------
    time, event
        Follow-up time (finite, non-negative) and event indicator (1 event, 0 censored).
    weights
        Positive case weights, one per subject; default all 1.
    ties
        ``"efron"`` (default, as ``coxph``) or ``"breslow"``.
    rows
        Patient identifiers for the error messages (default: pandas index or positions).

    Raises
    ------
    ValueError
        Mismatched lengths, missing or negative times, events not coded 0/1, no event,
        non-positive or missing weights (each naming the rows), an unknown ``ties``.
    """
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    arrays = () if weights is None else (weights,)
    names = ["time", "event", *(["weights"] if weights is not None else [])]
    checked = check_survival(time, event, *arrays, names=names, rows=rows)
    t, d = checked[0], checked[1]
    w = np.ones_like(t) if weights is None else _positive(checked[2], t, rows, weights)
    order = np.argsort(t, kind="stable")
    t, d, w = t[order], d[order], w[order]
    starts = np.flatnonzero(np.r_[True, t[1:] != t[:-1]])
    group = np.repeat(starts, np.diff(np.r_[starts, len(t)]))
    m = np.bincount(group, weights=d, minlength=len(t))[group]
    if ties == "efron":
        share = d * (np.bincount(group, weights=d * w, minlength=len(t))[group] / np.maximum(m, 1))
        rank = np.cumsum(d) - np.cumsum(d)[group] + d[group] - d  # events before it at its time
        fraction = d * rank / np.maximum(m, 1)
    else:
        share, fraction = d * w, np.zeros_like(t)
    return RiskSets(
        order=jnp.asarray(order),
        log_weight=jnp.asarray(np.log(w)),
        event=jnp.asarray(d),
        group=jnp.asarray(group),
        event_share=jnp.asarray(share),
        efron_fraction=jnp.asarray(fraction),
    )


def _positive(w: np.ndarray, time: np.ndarray, rows: Any, original: Any) -> np.ndarray:
    if w.ndim != 1:
        raise ValueError(f"weights must be one-dimensional, got shape {w.shape}")
    labels = np.asarray(getattr(original, "index", rows) if rows is None else rows)
    labels = labels if labels.ndim == 1 and len(labels) == len(time) else np.arange(len(time))
    check_finite(w, labels, "weights")
    bad = w <= 0
    if bad.any():
        raise ValueError(
            f"weights must be positive; {int(bad.sum())} are not "
            f"(rows {listed(labels[np.flatnonzero(bad)])})"
        )
    return w


def negative_partial_loglik(eta: jax.Array, risk: RiskSets) -> jax.Array:
    """The loss of the module docstring at the linear predictor ``eta`` (subjects in input order).

    Differentiable in ``eta`` and jit-able (``risk`` is a pytree of arrays of length n);
    evaluated in ``eta``'s dtype (float64 when checked against R).
    """
    dtype = eta.dtype
    event, log_weight = risk.event.astype(dtype), risk.log_weight.astype(dtype)
    x = eta[risk.order] + log_weight
    log_risk = jax.lax.cumlogsumexp(x, reverse=True)[risk.group]  # log S_j of each subject's time
    # E_j / S_j over the events of each tied time (<= 1), gathered back to its subjects
    ratio = jax.ops.segment_sum(event * jnp.exp(x - log_risk), risk.group, num_segments=x.shape[0])
    log_denominator = log_risk + jnp.log1p(-risk.efron_fraction.astype(dtype) * ratio[risk.group])
    own = jnp.sum(event * jnp.exp(log_weight) * eta[risk.order])
    return jnp.sum(risk.event_share.astype(dtype) * log_denominator) - own


def cox_loss(
    eta: Any,
    time: Any,
    event: Any,
    weights: Any = None,
    *,
    ties: str = "efron",
    rows: Any = None,
) -> jax.Array:
    """`negative_partial_loglik` of ``eta`` in one call (sorts the times each call).

    For training, call `risk_sets` once and differentiate `negative_partial_loglik`.
    """
    risk = risk_sets(time, event, weights, ties=ties, rows=rows)
    eta = jnp.asarray(eta)
    if eta.shape != risk.order.shape:
        raise ValueError(f"eta has shape {eta.shape}, expected ({risk.order.shape[0]},)")
    return negative_partial_loglik(eta, risk)
