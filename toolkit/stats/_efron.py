"""A lean Cox fit (Efron ties) for the bootstrap loops of the validation statistics.

The same likelihood, Newton-Raphson with step halving and baseline hazard as
``toolkit.stats.cox.fit`` (= ``survival::coxph`` / ``survfit.coxph``), without
weights, strata, input checks or result tables: the calibration smoother and
the optimism bootstrap fit thousands of small models, where ``cox.fit``'s
generality costs more than the arithmetic. Tests hold it equal to ``cox.fit``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EfronFit:
    coef: np.ndarray
    centre: np.ndarray  # column means the cumulative hazard refers to
    times: np.ndarray  # distinct event times
    cumhaz: np.ndarray  # baseline cumulative hazard at ``centre``, at each event time
    converged: bool

    def survival(self, X: np.ndarray, horizons) -> np.ndarray:
        """S(t | x) = exp(-H0(t) exp((x - centre) beta)), shape (rows, horizons)."""
        h = np.atleast_1d(np.asarray(horizons, dtype=float))
        idx = np.searchsorted(self.times, h, side="right") - 1
        base = np.where(idx >= 0, self.cumhaz[np.maximum(idx, 0)], 0.0)
        risk = np.exp((np.asarray(X, dtype=float) - self.centre) @ self.coef)
        return np.exp(-np.outer(risk, base))


class _Prepared:
    """Sorted data, event groups and risk-set starts."""

    def __init__(self, X: np.ndarray, time: np.ndarray, event: np.ndarray):
        order = np.argsort(time, kind="stable")
        self.x = X[order]
        t, e = time[order], event[order]
        dead = np.flatnonzero(e == 1)
        self.dead = dead
        self.times, group = np.unique(t[dead], return_inverse=True)
        self.group = group
        self.first = np.searchsorted(t, self.times, side="left")  # risk set: rows >= first
        self.m = np.bincount(group, minlength=len(self.times)).astype(float)
        position = np.arange(len(dead)) - np.searchsorted(group, group, side="left")
        self.fraction = position / self.m[group]


def _terms(p: _Prepared, beta: np.ndarray):
    eta = p.x @ beta
    r = np.exp(eta)
    xr = p.x * r[:, None]
    s0 = np.cumsum(r[::-1])[::-1][p.first]
    s1 = np.cumsum(xr[::-1], axis=0)[::-1][p.first]
    s2 = np.cumsum((xr[:, :, None] * p.x[:, None, :])[::-1], axis=0)[::-1][p.first]
    rd, xd = r[p.dead], xr[p.dead]
    d0 = np.bincount(p.group, weights=rd, minlength=len(p.times))
    d1 = np.stack(
        [
            np.bincount(p.group, weights=xd[:, j], minlength=len(p.times))
            for j in range(p.x.shape[1])
        ],
        axis=1,
    )
    xx = xd[:, :, None] * p.x[p.dead][:, None, :]
    d2 = np.zeros((len(p.times), *xx.shape[1:]))
    np.add.at(d2, p.group, xx)
    f, g = p.fraction, p.group
    den = s0[g] - f * d0[g]
    a = (s1[g] - f[:, None] * d1[g]) / den[:, None]
    b = (s2[g] - f[:, None, None] * d2[g]) / den[:, None, None]
    loglik = eta[p.dead].sum() - np.log(den).sum()
    score = p.x[p.dead].sum(axis=0) - a.sum(axis=0)
    info = (b - a[:, :, None] * a[:, None, :]).sum(axis=0)
    return loglik, score, info, den


def _small_step(info: np.ndarray, score: np.ndarray, beta: np.ndarray) -> bool:
    """The next Newton step is negligible (a finite maximum was reached)."""
    try:
        step = np.linalg.solve(info, score)
    except np.linalg.LinAlgError:
        return False
    return bool(np.all(np.abs(step) <= 1e-6 * np.maximum(1.0, np.abs(beta))))


def efron_fit(X, time, event, max_iter: int = 50) -> EfronFit:
    """Maximise the Efron partial likelihood from beta = 0 (as coxph)."""
    X = np.asarray(X, dtype=float)
    centre = X.mean(axis=0)
    p = _Prepared(X - centre, np.asarray(time, float), np.asarray(event, float))
    beta = np.zeros(X.shape[1])
    loglik, score, info, den = _terms(p, beta)
    converged = False
    for _ in range(max_iter):
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            break
        for _halving in range(30):
            new = beta + step
            new_ll, new_score, new_info, new_den = _terms(p, new)
            if np.isfinite(new_ll) and new_ll >= loglik - 1e-12:
                break
            step = step / 2
        done = abs(new_ll - loglik) <= 1e-13 * max(1.0, abs(loglik))
        beta, loglik, score, info, den = new, new_ll, new_score, new_info, new_den
        if done:
            converged = _small_step(info, score, beta)
            break
    increment = np.bincount(p.group, weights=1.0 / den, minlength=len(p.times))
    return EfronFit(beta, centre, p.times, np.cumsum(increment), converged)
