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


_SURVFIT_CURVE = """
function(time, event, weights, stype, ctype, conf_type, conf_lower, conf_level, probs,
         robust, influence) {
  fit <- survival::survfit(survival::Surv(time, event) ~ 1, weights = weights, stype = stype,
                           ctype = ctype, conf.type = conf_type, conf.lower = conf_lower,
                           conf.int = conf_level, robust = robust, influence = influence)
  q <- quantile(fit, probs = probs, conf.int = conf_type != "none")
  if (conf_type == "none") q <- list(quantile = q, lower = NULL, upper = NULL)
  na <- function(x) if (is.null(x)) rep(NA_real_, length(fit$time)) else as.numeric(x)
  list(time = fit$time, n_risk = fit$n.risk, n_event = fit$n.event, n_censor = fit$n.censor,
       survival = fit$surv, std_err = fit$std.err, cumhaz = fit$cumhaz,
       std_chaz = fit$std.chaz, lower = na(fit$lower), upper = na(fit$upper),
       logse = fit$logse, quantile = as.numeric(q$quantile),
       quantile_lower = if (is.null(q$lower)) NULL else as.numeric(q$lower),
       quantile_upper = if (is.null(q$upper)) NULL else as.numeric(q$upper),
       influence_surv = unname(fit$influence.surv), influence_chaz = unname(fit$influence.chaz))
}
"""


@functools.cache
def _survfit_curve():
    return r_function(_SURVFIT_CURVE, ["survival"])


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


def survfit_curve(
    time: Any,
    event: Any,
    weights: Any = None,
    *,
    stype: int = 1,
    ctype: int = 1,
    conf_type: str = "log",
    conf_lower: str = "usual",
    conf_level: float = 0.95,
    probs: Any = (0.25, 0.5, 0.75),
    robust: bool | None = None,
    influence: bool = False,
) -> dict[str, Any]:
    """``survfit(Surv(time, event) ~ 1, weights, stype, ctype, conf.type, conf.lower,
    robust, influence)`` components (lower/upper NA for "none", the influence matrices
    NULL unless asked) and ``quantile(fit, probs)`` with its CI."""
    n = len(np.asarray(time))
    return call(
        _survfit_curve(),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        np.ones(n) if weights is None else np.asarray(weights, dtype=float),
        int(stype),
        int(ctype),
        conf_type,
        conf_lower,
        float(conf_level),
        np.atleast_1d(np.asarray(probs, dtype=float)),
        robust,
        bool(influence),
        computation="survival::survfit (weighted curve)",
    )
