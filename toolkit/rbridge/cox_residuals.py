"""R references for a Cox fit's residuals and tests: ``residuals.coxph``, ``summary(coxph)``."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from toolkit.rbridge import call, r_function

_RESIDUALS = """
function(x, time, event, ties, weights, strata, iter_max, weighted) {
  suppressPackageStartupMessages(library(survival))  # strata() must be found by name
  x <- as.matrix(x)
  d <- data.frame(time = time, event = event)
  d$x <- x
  fml <- if (is.null(strata)) survival::Surv(time, event) ~ x
         else { d$s <- strata; survival::Surv(time, event) ~ x + strata(s) }
  control <- survival::coxph.control(iter.max = iter_max)
  fit <- if (is.null(weights)) survival::coxph(fml, data = d, ties = ties, control = control)
         else { d$w <- weights
                survival::coxph(fml, data = d, ties = ties, weights = w, control = control) }
  s <- summary(fit)
  types <- c("martingale", "deviance", "score", "schoenfeld", "scaledsch",
             "dfbeta", "dfbetas")
  if (isTRUE(weighted)) types <- setdiff(types, "deviance")  # NaN once w * M >= 1
  out <- lapply(types, function(type) {
    r <- if (is.null(weighted)) residuals(fit, type = type)
         else residuals(fit, type = type, weighted = weighted)
    unname(as.matrix(r))
  })
  names(out) <- types
  sch <- residuals(fit, type = "schoenfeld")
  out$schoenfeld_time <- as.numeric(rownames(as.matrix(sch)))
  out$schoenfeld_strata <- if (is.null(strata)) NULL
                           else as.integer(attr(sch, "strata"))
  out$coef <- unname(coef(fit))
  out$logtest <- unname(s$logtest)
  out$sctest <- unname(s$sctest)
  out$waldtest <- unname(s$waldtest)
  out$wald_test <- unname(fit$wald.test)
  out$robscore <- if (is.null(s$robscore)) NULL else unname(s$robscore)
  out
}
"""


@functools.cache
def _residuals():
    return r_function(_RESIDUALS, ["survival"])


def residuals(
    x: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    *,
    ties: str = "efron",
    weights: np.ndarray | None = None,
    strata: Any = None,
    iter_max: int = 20,
    weighted: bool | None = None,
) -> dict[str, Any]:
    """``coxph`` on a numeric matrix, then ``residuals(fit, type)`` for every type.

    Returns each type's residuals as a matrix (rows x 1 for martingale and
    deviance; Schoenfeld rows in R's event order), ``schoenfeld_time`` (their
    times), ``schoenfeld_strata`` (events per stratum, for a stratified fit),
    ``coef``, and ``summary(fit)``'s ``logtest``, ``sctest``, ``waldtest`` (statistic
    rounded by summary), ``robscore`` (test, df, p) and the unrounded ``wald_test``.
    ``weighted=None`` is R's default per type; ``weighted=True`` leaves out deviance.
    """
    return call(
        _residuals(),
        np.asarray(x, dtype=float),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        ties,
        None if weights is None else np.asarray(weights, dtype=float),
        None if strata is None else np.asarray(strata).astype(str),
        int(iter_max),
        weighted,
        computation=f"survival::residuals.coxph (ties {ties!r})",
    )


_ZPH = """
function(x, time, event, ties, weights, strata, term, transform) {
  suppressPackageStartupMessages(library(survival))
  x <- as.matrix(x)
  d <- data.frame(time = time, event = event)
  labels <- paste0("term", sort(unique(term)))
  for (k in sort(unique(term))) d[[labels[k]]] <- x[, term == k, drop = FALSE]
  rhs <- paste(labels, collapse = " + ")
  if (!is.null(strata)) { d$s <- strata; rhs <- paste(rhs, "+ strata(s)") }
  fml <- stats::as.formula(paste("survival::Surv(time, event) ~", rhs))
  fit <- if (is.null(weights)) survival::coxph(fml, data = d, ties = ties)
         else { d$w <- weights; survival::coxph(fml, data = d, ties = ties, weights = w) }
  z <- survival::cox.zph(fit, transform = transform)
  list(table = unname(z$table), coef = unname(coef(fit)), x = unname(z$x),
       time = unname(z$time), y = unname(z$y), var = unname(z$var))
}
"""


@functools.cache
def _zph():
    return r_function(_ZPH, ["survival"])


def cox_zph(
    x: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    term: np.ndarray,
    *,
    transform: str = "km",
    ties: str = "efron",
    weights: np.ndarray | None = None,
    strata: Any = None,
) -> dict[str, Any]:
    """``cox.zph(coxph(...), transform)``; ``term`` numbers each column's term 1, 2, ...

    The columns of one term enter the model as one matrix term (tested on its df,
    as a factor is); terms must be numbered in column order. Returns ``table``
    (terms + GLOBAL x chisq, df, p), ``coef``, ``x``, ``time``, ``y``, ``var``.
    """
    return call(
        _zph(),
        np.asarray(x, dtype=float),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        ties,
        None if weights is None else np.asarray(weights, dtype=float),
        None if strata is None else np.asarray(strata).astype(str),
        np.asarray(term, dtype=int),
        transform,
        computation=f"survival::cox.zph (transform {transform!r})",
    )
