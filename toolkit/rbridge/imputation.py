"""R references for multiple imputation: ``mice::pool`` over ``coxph`` fits of completed
data sets, and survival's Nelson-Aalen estimate (``survfit(...)$cumhaz``)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from toolkit.rbridge import call, r_function

_POOL_COXPH = """
function(x, n, m, time, event, ties) {
  fits <- lapply(seq_len(m), function(j) {
    d <- data.frame(time = time, event = event)
    d$x <- x[((j - 1) * n + 1):(j * n), , drop = FALSE]
    survival::coxph(survival::Surv(time, event) ~ x, data = d, ties = ties)
  })
  pooled <- mice::pool(mice::as.mira(fits))
  p <- pooled$pooled
  s <- summary(pooled)
  list(estimate = p$estimate, ubar = p$ubar, b = p$b, t = p$t, dfcom = p$dfcom,
       df = p$df, riv = p$riv, lambda = p$lambda, fmi = p$fmi,
       std_error = s$std.error, statistic = s$statistic, p_value = s$p.value,
       coef = t(sapply(fits, coef)))
}
"""

_CUMHAZ = """
function(time, event) {
  f <- survival::survfit(survival::Surv(time, event) ~ 1)
  list(time = f$time, cumhaz = f$cumhaz)
}
"""


@functools.cache
def _pool_coxph():
    return r_function(_POOL_COXPH, ["survival", "mice"])


@functools.cache
def _cumhaz():
    return r_function(_CUMHAZ, ["survival"])


def pool_coxph(
    completed: np.ndarray, time: np.ndarray, event: np.ndarray, *, ties: str = "efron"
) -> dict[str, Any]:
    """``pool(as.mira(fits))`` of ``coxph`` on each design ``completed[j]`` (m x n x p).

    Returns the columns of ``pool(...)$pooled`` (estimate, ubar, b, t, dfcom, df, riv,
    lambda, fmi), ``summary(pool)``'s std_error, statistic and p_value, and each fit's
    coefficients (coef, m x p).
    """
    x = np.asarray(completed, dtype=float)
    m, n, p = x.shape
    return call(
        _pool_coxph(),
        x.reshape(m * n, p),
        int(n),
        int(m),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        ties,
        computation="mice::pool of survival::coxph fits",
    )


def nelson_aalen(time: np.ndarray, event: np.ndarray) -> dict[str, Any]:
    """``survfit(Surv(time, event) ~ 1)``'s time and cumhaz (the Nelson-Aalen estimate)."""
    return call(
        _cumhaz(),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        computation="survival::survfit (Nelson-Aalen)",
    )
