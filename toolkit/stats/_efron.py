"""A lean Cox fit (Efron ties) for the bootstrap loops of the validation statistics.

``toolkit.stats.cox.fit``'s own core (``_prepare``, ``_terms``, ``_newton``: the
likelihood and Newton-Raphson of ``survival::coxph``) and baseline hazard, without
weights, strata, input checks or result tables: the calibration smoother and
the optimism bootstrap fit thousands of small models, where ``cox.fit``'s
generality costs more than the arithmetic. Tests hold it equal to ``cox.fit``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolkit.stats.cox import _newton, _prepare, _range_sums, _terms

_EPS = 1e-13  # relative log-likelihood change at which the smoother's fit stops


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


def _invertible(info: np.ndarray) -> bool:
    try:
        np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return False
    return True


def efron_fit(X, time, event, max_iter: int = 50) -> EfronFit:
    """Maximise the Efron partial likelihood from beta = 0 with ``cox.fit``'s core.

    ``cox._newton`` run to a relative log-likelihood change of 1e-13 (not coxph's
    1e-9), so that the smoother's fit is the maximum to rounding error.
    """
    X = np.asarray(X, dtype=float)
    time, event = np.asarray(time, dtype=float), np.asarray(event, dtype=float)
    n, p = X.shape
    centre = X.mean(axis=0)
    risk, _ = _prepare(X - centre, time, event, np.ones(n), np.zeros(n, dtype=np.int64), "efron")
    start = _terms(risk, np.zeros(p))
    # A singular information (e.g. a covariate constant in a bootstrap resample) has
    # no unique maximum: keep beta = 0, not converged, rather than cox._newton's
    # least-squares steps.
    if _invertible(start[2]):
        newton = _newton(risk, start, _EPS, max_iter)
        beta, step = newton.beta, newton.step
        small_step = np.all(np.abs(step) <= 1e-6 * np.maximum(1.0, np.abs(beta)))
        converged = newton.converged and small_step and _invertible(newton.information)
    else:
        beta, converged = np.zeros(p), False
    r = np.exp(risk.x @ beta)
    s0 = _range_sums(r, risk.group_first, risk.group_end)
    d0 = np.bincount(risk.group, weights=r[risk.death_rows], minlength=len(s0))
    denom = s0[risk.group] - risk.efron_fraction * d0[risk.group]
    increment = np.bincount(risk.group, weights=1.0 / denom, minlength=len(s0))
    times = risk.time[risk.group_first]
    return EfronFit(beta, centre, times, np.cumsum(increment), bool(converged))
