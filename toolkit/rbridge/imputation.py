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

_POOL_SURVFIT = """
function(x, n, m, time, event, newx, times) {
  p <- ncol(x)
  names <- paste0("x", seq_len(p))
  k <- nrow(newx) / m
  cells <- lapply(seq_len(m), function(j) {
    newdata <- as.data.frame(newx[((j - 1) * k + 1):(j * k), , drop = FALSE])
    colnames(newdata) <- names
    d <- as.data.frame(x[((j - 1) * n + 1):(j * n), , drop = FALSE])
    colnames(d) <- names
    d$time <- time
    d$event <- event
    fit <- survival::coxph(survival::Surv(time, event) ~ ., data = d, ties = "efron")
    s <- summary(survival::survfit(fit, newdata = newdata), times = times, extend = TRUE)
    # summary's std.err is on the survival scale: std.err / surv is the SE of H
    list(q = log(s$cumhaz), u = (s$std.err / s$surv / s$cumhaz)^2)
  })
  q <- sapply(cells, function(c) as.vector(c$q))
  u <- sapply(cells, function(c) as.vector(c$u))
  pooled <- lapply(seq_len(nrow(q)), function(i) mice::pool.scalar(q[i, ], u[i, ]))
  qbar <- sapply(pooled, `[[`, "qbar")
  total <- sapply(pooled, `[[`, "t")
  df <- sapply(pooled, `[[`, "df")
  half <- qt(0.975, df) * sqrt(total)
  list(qbar = qbar, ubar = sapply(pooled, `[[`, "ubar"), b = sapply(pooled, `[[`, "b"),
       t = total, df = df, surv = exp(-exp(qbar)), lower = exp(-exp(qbar + half)),
       upper = exp(-exp(qbar - half)), rows = k, times = length(times))
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
def _pool_survfit():
    return r_function(_POOL_SURVFIT, ["survival", "mice"])


@functools.cache
def _cumhaz():
    return r_function(_CUMHAZ, ["survival"])


def _stacked(completed, time, event) -> tuple:
    """The m designs (m x n x p) stacked as R's functions take them: x, n, m, time, event."""
    x = np.asarray(completed, dtype=float)
    m, n, p = x.shape
    return (
        x.reshape(m * n, p),
        int(n),
        int(m),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
    )


def pool_coxph(
    completed: np.ndarray, time: np.ndarray, event: np.ndarray, *, ties: str = "efron"
) -> dict[str, Any]:
    """``pool(as.mira(fits))`` of ``coxph`` on each design ``completed[j]`` (m x n x p).

    Returns the columns of ``pool(...)$pooled`` (estimate, ubar, b, t, dfcom, df, riv,
    lambda, fmi), ``summary(pool)``'s std_error, statistic and p_value, and each fit's
    coefficients (coef, m x p).
    """
    return call(
        _pool_coxph(),
        *_stacked(completed, time, event),
        ties,
        computation="mice::pool of survival::coxph fits",
    )


def pool_survfit(
    completed: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    newdata: np.ndarray,
    times: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per cell of ``survfit(coxph(completed[j]), newdata[j])`` at ``times``,
    ``mice::pool.scalar`` of Q = log(cumhaz) with U = (se(cumhaz) / cumhaz)^2 over the m
    designs (m x n x p). ``newdata`` is one design for every imputation (k x p) or one per
    imputation (m x k x p: a new cohort's completions).

    Returns qbar, ubar, b, t and df, and the pooled survival ``exp(-exp(qbar))`` with its
    limits at ``qbar -/+ qt(0.975, df) sqrt(t)`` (surv, lower, upper), each (k, times).
    """
    m, _, p = np.shape(completed)
    new = np.asarray(newdata, dtype=float)
    new = np.broadcast_to(new, (m, *new.shape[-2:])) if new.ndim == 2 else new
    k = new.shape[1]
    new = new.reshape(m * k, p)
    ref = call(
        _pool_survfit(),
        *_stacked(completed, time, event),
        new,
        np.asarray(times, dtype=float),
        computation="mice::pool.scalar of survival::survfit(coxph) curves",
    )
    # survfit's summary is times x curves, flattened column by column: curve-major
    shape = (k, len(np.asarray(times)))
    keys = ("qbar", "ubar", "b", "t", "df", "surv", "lower", "upper")
    return {key: np.asarray(ref[key], dtype=float).reshape(shape) for key in keys}


def nelson_aalen(time: np.ndarray, event: np.ndarray) -> dict[str, Any]:
    """``survfit(Surv(time, event) ~ 1)``'s time and cumhaz (the Nelson-Aalen estimate)."""
    return call(
        _cumhaz(),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        computation="survival::survfit (Nelson-Aalen)",
    )
