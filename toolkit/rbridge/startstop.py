"""R references on counting-process (start, stop] data: ``survfit`` and ``concordance``."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from toolkit.rbridge import call, r_function

_SURVFIT = """
function(start, stop, event, weights, stype, ctype, conf_type, conf_lower, conf_level,
         influence) {
  y <- survival::Surv(start, stop, event)
  args <- list(y ~ 1, stype = stype, ctype = ctype, conf.type = conf_type,
               conf.lower = conf_lower, conf.int = conf_level, influence = influence)
  if (!is.null(weights)) args$weights <- weights
  fit <- do.call(survival::survfit, args)
  na <- function(x) if (is.null(x)) rep(NA_real_, length(fit$time)) else as.numeric(x)
  list(time = fit$time, n_risk = fit$n.risk, n_event = fit$n.event, n_censor = fit$n.censor,
       survival = fit$surv, std_err = fit$std.err, cumhaz = fit$cumhaz,
       std_chaz = fit$std.chaz, lower = na(fit$lower), upper = na(fit$upper),
       logse = fit$logse, influence_surv = unname(fit$influence.surv),
       influence_chaz = unname(fit$influence.chaz))
}
"""

_CONCORDANCE = """
function(start, stop, event, risk, layer, weights, ymax, group) {
  strata <- survival::strata  # concordance finds the special by its bare name
  d <- data.frame(risk = risk)
  d$y <- survival::Surv(start, stop, event)
  form <- if (is.null(layer)) y ~ risk else y ~ risk + strata(layer)
  if (!is.null(layer)) d$layer <- layer
  args <- list(form, data = d, reverse = TRUE, keepstrata = TRUE)
  if (!is.null(weights)) { d$w <- weights; args$data <- d; args$weights <- quote(w) }
  if (!is.null(ymax)) args$ymax <- ymax
  if (!is.null(group)) { args$data$g <- group; args$cluster <- quote(g) }
  fit <- do.call(survival::concordance, args)
  count <- fit$count
  if (!is.matrix(count)) count <- matrix(count, nrow = 1)
  list(c = unname(fit$concordance), var = unname(fit$var), cvar = unname(fit$cvar),
       count = unname(count), n = fit$n)
}
"""


@functools.cache
def _function(code: str):
    return r_function(code, ["survival"])


def _floats(values: Any) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype=float)


def survfit_counting(
    start: Any,
    stop: Any,
    event: Any,
    weights: Any = None,
    *,
    stype: int = 1,
    ctype: int = 1,
    conf_type: str = "log",
    conf_lower: str = "usual",
    conf_level: float = 0.95,
    influence: bool = False,
) -> dict[str, Any]:
    """``survfit(Surv(start, stop, event) ~ 1, weights, stype, ctype, conf.type, ...)``.

    The components as :func:`toolkit.rbridge.survival.survfit_curve` returns them
    (lower/upper NA for "none"; the influence matrices NULL unless asked).
    """
    return call(
        _function(_SURVFIT),
        _floats(start),
        _floats(stop),
        _floats(event),
        _floats(weights),
        int(stype),
        int(ctype),
        conf_type,
        conf_lower,
        float(conf_level),
        bool(influence),
        computation="survival::survfit on (start, stop] data",
    )


def concordance_counting(
    start: Any,
    stop: Any,
    event: Any,
    risk: Any,
    *,
    strata: Any = None,
    weights: Any = None,
    ymax: float | None = None,
    cluster: Any = None,
) -> dict[str, Any]:
    """``concordance(Surv(start, stop, event) ~ risk [+ strata(strata)], reverse=TRUE)``.

    c, var, cvar, n and ``count`` (one row per stratum, ``keepstrata=TRUE``);
    ``cluster`` as R's ``cluster`` (a factor).
    """
    out = call(
        _function(_CONCORDANCE),
        _floats(start),
        _floats(stop),
        _floats(event),
        _floats(risk),
        None if strata is None else pd.Categorical(strata),
        _floats(weights),
        None if ymax is None else float(ymax),
        None if cluster is None else pd.Categorical(cluster),
        computation="survival::concordance on (start, stop] data",
    )
    return {
        "c": float(out["c"][0]),
        "var": float(out["var"][0]),
        "cvar": float(out["cvar"][0]),
        "count": np.asarray(out["count"], dtype=float),
        "n": int(out["n"][0]),
    }
