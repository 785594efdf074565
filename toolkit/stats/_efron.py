"""A lean Cox fit (Efron ties) for the bootstrap loops of the validation statistics.

``toolkit.stats.cox``'s public core (``risk_sets``, ``partial_likelihood``, ``newton``:
the likelihood and Newton-Raphson of ``survival::coxph``; ``hazard_increments``:
its baseline hazard), without
weights, strata, input checks or result tables: the calibration smoother and
the optimism bootstrap fit thousands of small models, where ``cox.fit``'s
generality costs more than the arithmetic. Tests hold it equal to ``cox.fit``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolkit.stats import cox

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

    ``cox.newton`` run to a relative log-likelihood change of 1e-13 (not coxph's
    1e-9), so that the smoother's fit is the maximum to rounding error.
    """
    X = np.asarray(X, dtype=float)
    time, event = np.asarray(time, dtype=float), np.asarray(event, dtype=float)
    n, p = X.shape
    centre = X.mean(axis=0)
    no_strata = np.zeros(n, dtype=np.int64)
    risk, _ = cox.risk_sets(X - centre, time, event, np.ones(n), no_strata, "efron")
    start = cox.partial_likelihood(risk, np.zeros(p))
    # A singular information (e.g. a covariate constant in a bootstrap resample) has
    # no unique maximum: keep beta = 0, not converged, rather than cox.newton's
    # least-squares steps.
    if _invertible(start[2]):
        newton = cox.newton(risk, start, _EPS, max_iter)
        beta, step = newton.beta, newton.step
        small_step = np.all(np.abs(step) <= 1e-6 * np.maximum(1.0, np.abs(beta)))
        converged = newton.converged and small_step and _invertible(newton.information)
    else:
        beta, converged = np.zeros(p), False
    cumhaz = np.cumsum(cox.hazard_increments(risk, beta))
    return EfronFit(beta, centre, risk.time[risk.group_first], cumhaz, bool(converged))
