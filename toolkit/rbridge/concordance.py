"""R references for the C-index: ``survival::concordance`` (3.5-3) and ``aeqSurv``.

Data go to R as vectors/matrices (never pasted into R source); the R code strings
are fixed function bodies.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

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
