"""R references for the C-index: ``survival::concordance`` (3.5-3) and ``aeqSurv``.

Data go to R as vectors/matrices (never pasted into R source); the R code strings
are fixed function bodies.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from toolkit.rbridge import call, r_function

_CONCORDANCE = """
function(time, event, risk, weights, timewt, ymax) {
  y <- survival::Surv(time, event)
  d <- data.frame(risk = risk)
  d$y <- y
  args <- list(y ~ risk, data = d, reverse = TRUE, timewt = timewt)
  if (!is.null(weights)) { d$w <- weights; args$data <- d; args$weights <- quote(w) }
  if (!is.null(ymax)) args$ymax <- ymax
  fit <- do.call(survival::concordance, args)
  list(c = unname(fit$concordance), var = unname(fit$var),
       count = unname(fit$count), n = fit$n)
}
"""

_COMPARE = """
function(time, event, xa, xb) {
  d <- data.frame(time = time, event = event)
  d$xa <- as.matrix(xa)
  d$xb <- as.matrix(xb)
  fa <- survival::coxph(survival::Surv(time, event) ~ xa, data = d)
  fb <- survival::coxph(survival::Surv(time, event) ~ xb, data = d)
  ct <- survival::concordance(fa, fb)
  contr <- c(1, -1)
  diff <- sum(contr * ct$concordance)
  se <- sqrt(drop(contr %*% ct$var %*% contr))
  z <- diff / se
  list(c = unname(ct$concordance), var = unname(ct$var), diff = diff, se = se, z = z,
       p = 2 * pnorm(-abs(z)), lp_a = unname(fa$linear.predictors),
       lp_b = unname(fb$linear.predictors))
}
"""

_CONCORDANCE_STRATA = """
function(time, event, risk, layer, weights, timewt, ymax, keepstrata, group) {
  strata <- survival::strata  # concordance finds the special by its bare name
  d <- data.frame(risk = risk)
  d$y <- survival::Surv(time, event)
  d$layer <- layer
  args <- list(y ~ risk + strata(layer), data = d, reverse = TRUE, timewt = timewt,
               keepstrata = keepstrata)
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

_CONCORDANCE_COXPH = """
function(time, event, x, layer, timewt) {
  strata <- survival::strata
  d <- data.frame(time = time, event = event)
  d$x <- as.matrix(x)
  fit <- if (is.null(layer)) {
    survival::coxph(survival::Surv(time, event) ~ x, data = d)
  } else {
    d$layer <- layer
    survival::coxph(survival::Surv(time, event) ~ x + strata(layer), data = d)
  }
  ct <- survival::concordance(fit, timewt = timewt, keepstrata = TRUE)
  count <- ct$count
  if (!is.matrix(count)) count <- matrix(count, nrow = 1)
  list(c = unname(ct$concordance), var = unname(ct$var), cvar = unname(ct$cvar),
       count = unname(count), lp = unname(fit$linear.predictors))
}
"""

_AEQSURV = """
function(time, event) {
  y <- survival::aeqSurv(survival::aeqSurv(survival::Surv(time, event)))
  as.numeric(y[, 1])
}
"""


@functools.cache
def _function(code: str):
    return r_function(code, ["survival"])


def concordance(
    time: Any,
    event: Any,
    risk: Any,
    *,
    weights: Any = None,
    timewt: str = "n",
    ymax: float | None = None,
) -> dict[str, Any]:
    """``concordance(Surv(time, event) ~ risk, reverse=TRUE, ...)``: c, var, count, n."""
    out = call(
        _function(_CONCORDANCE),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        np.asarray(risk, dtype=float),
        None if weights is None else np.asarray(weights, dtype=float),
        timewt,
        None if ymax is None else float(ymax),
        computation=f"survival::concordance (timewt {timewt!r})",
    )
    return {
        "c": float(out["c"][0]),
        "var": float(out["var"][0]),
        "count": np.asarray(out["count"], dtype=float),
        "n": int(out["n"][0]),
    }


def concordance_strata(
    time: Any,
    event: Any,
    risk: Any,
    strata: Any,
    *,
    weights: Any = None,
    timewt: str = "n",
    ymax: float | None = None,
    keepstrata: bool | int = True,
    cluster: Any = None,
) -> dict[str, Any]:
    """``concordance(Surv(time, event) ~ risk + strata(strata), reverse=TRUE, ...)``.

    c, var, cvar, n and ``count``: one row per stratum (R's level order; a pandas
    categorical keeps its order) with ``keepstrata=True``, else R's default rule
    (``keepstrata=10``: pooled counts, one row, past ten strata); ``cluster`` as
    R's ``cluster`` (a factor).
    """
    out = call(
        _function(_CONCORDANCE_STRATA),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        np.asarray(risk, dtype=float),
        pd.Categorical(strata),
        None if weights is None else np.asarray(weights, dtype=float),
        timewt,
        None if ymax is None else float(ymax),
        keepstrata,
        None if cluster is None else pd.Categorical(cluster),
        computation=f"survival::concordance with strata (timewt {timewt!r})",
    )
    return {
        "c": float(out["c"][0]),
        "var": float(out["var"][0]),
        "cvar": float(out["cvar"][0]),
        "count": np.asarray(out["count"], dtype=float),
        "n": int(out["n"][0]),
    }


def concordance_coxph(
    time: Any, event: Any, x: Any, strata: Any = None, *, timewt: str = "n"
) -> dict[str, Any]:
    """``concordance(coxph(Surv(time, event) ~ x [+ strata(strata)]), timewt=)``.

    c, var (the infinitesimal-jackknife variance that ``print`` shows as se),
    cvar (the Cox-model variance, kept in the object but not printed), the
    per-stratum ``count`` rows and the fit's linear predictor ``lp``.
    """
    out = call(
        _function(_CONCORDANCE_COXPH),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        np.asarray(x, dtype=float),
        None if strata is None else pd.Categorical(strata),
        timewt,
        computation=f"survival::concordance of a coxph fit (timewt {timewt!r})",
    )
    return {
        "c": float(out["c"][0]),
        "var": float(out["var"][0]),
        "cvar": float(out["cvar"][0]),
        "count": np.asarray(out["count"], dtype=float),
        "lp": np.asarray(out["lp"], dtype=float),
    }


def compare_coxph(time: Any, event: Any, xa: Any, xb: Any) -> dict[str, Any]:
    """Fit ``coxph`` on covariates ``xa`` and on ``xb``; contrast ``concordance(fa, fb)``.

    Returns both C-indices, their joint variance, the difference, its SE, z and
    two-sided p, and the two fits' linear predictors (the risk scores R ranked).
    """
    out = call(
        _function(_COMPARE),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        np.asarray(xa, dtype=float),
        np.asarray(xb, dtype=float),
        computation="survival::concordance (two coxph fits)",
    )
    return {
        "c": np.asarray(out["c"], dtype=float),
        "var": np.asarray(out["var"], dtype=float),
        "diff": float(out["diff"][0]),
        "se": float(out["se"][0]),
        "z": float(out["z"][0]),
        "p": float(out["p"][0]),
        "lp_a": np.asarray(out["lp_a"], dtype=float),
        "lp_b": np.asarray(out["lp_b"], dtype=float),
    }


def aeqsurv_twice(time: Any, event: Any) -> np.ndarray:
    """Times after ``aeqSurv`` applied twice, as ``concordance()`` does in 3.5-3."""
    return np.asarray(
        call(
            _function(_AEQSURV),
            np.asarray(time, dtype=float),
            np.asarray(event, dtype=float),
            computation="survival::aeqSurv",
        ),
        dtype=float,
    )
