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
function(time, event, group, layer, rho) {
  strata <- survival::strata  # survdiff finds the special by its bare name
  fit <- if (is.null(layer)) {
    survival::survdiff(survival::Surv(time, event) ~ group, rho = rho)
  } else {
    survival::survdiff(survival::Surv(time, event) ~ group + strata(layer), rho = rho)
  }
  observed <- as.matrix(fit$obs)
  expected <- as.matrix(fit$exp)
  total <- rowSums(expected)
  list(chisq = fit$chisq, p = fit$pvalue, observed = rowSums(observed), expected = total,
       observed_strata = observed, expected_strata = expected,
       variance = fit$var, n = as.numeric(fit$n),
       n_strata = if (is.null(fit$strata)) length(time) else as.numeric(fit$strata),
       df = sum(total > 0) - 1)
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


def survdiff(time: Any, event: Any, group: Any, strata: Any = None, rho: float = 0.0) -> dict:
    """``survdiff(Surv(time, event) ~ group [+ strata(strata)], rho=)`` components.

    chisq, p, observed and expected (summed over strata, as print.survdiff),
    the group-by-stratum ``observed_strata``/``expected_strata`` matrices,
    variance, n, n_strata and df. `group` and `strata` travel as R factors (a
    pandas categorical keeps its level order).
    """
    return call(
        _survdiff(),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        pd.Categorical(group),
        None if strata is None else pd.Categorical(strata),
        float(rho),
        computation="survival::survdiff (log-rank)",
    )
