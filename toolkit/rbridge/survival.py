"""R references for Kaplan-Meier curves and the log-rank test (``survfit``, ``survdiff``)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from toolkit.rbridge import call, r_function

_SURVFIT = """
function(time, event, conf_level) {
  fit <- survival::survfit(survival::Surv(time, event) ~ 1, conf.int = conf_level)
  table <- summary(fit)$table
  level <- paste0(conf_level, c("LCL", "UCL"))
  list(time = fit$time, n_risk = fit$n.risk, n_event = fit$n.event, n_censor = fit$n.censor,
       survival = fit$surv, std_err = fit$std.err, lower = fit$lower, upper = fit$upper,
       median = unname(table["median"]), median_lower = unname(table[level[1]]),
       median_upper = unname(table[level[2]]))
}
"""

_SURVDIFF = """
function(time, event, group) {
  fit <- survival::survdiff(survival::Surv(time, event) ~ group)
  list(chisq = fit$chisq, p = fit$pvalue, observed = fit$obs, expected = fit$exp,
       variance = fit$var, n = as.numeric(fit$n),
       df = sum(fit$exp > 0) - 1)
}
"""


@functools.cache
def _survfit():
    return r_function(_SURVFIT, ["survival"])


@functools.cache
def _survdiff():
    return r_function(_SURVDIFF, ["survival"])


def survfit_km(time: Any, event: Any, conf_level: float = 0.95) -> dict[str, Any]:
    """``survfit(Surv(time, event) ~ 1)`` components and ``print(fit)``'s median and CI."""
    return call(
        _survfit(),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        conf_level,
        computation="survival::survfit (Kaplan-Meier)",
    )


def survdiff(time: Any, event: Any, group: Any) -> dict[str, Any]:
    """``survdiff(Surv(time, event) ~ group)``: chisq, p, observed, expected, variance, n, df.

    `group` travels as an R factor (a pandas categorical keeps its level order).
    """
    return call(
        _survdiff(),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        pd.Categorical(group),
        computation="survival::survdiff (log-rank)",
    )
