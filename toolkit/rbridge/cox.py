"""R references for Cox regression: ``survival::coxph``, ``basehaz``, ``survfit.coxph`` (with
its standard errors and confidence limits)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from toolkit.rbridge import call, r_function

_COXPH = """
function(x, time, event, ties, weights, strata, newx, newstrata, times, eps, iter_max) {
  suppressPackageStartupMessages(library(survival))  # strata() must be found by name
  x <- as.matrix(x)
  if (is.null(strata)) {
    fml <- survival::Surv(time, event) ~ x
    d <- data.frame(time = time, event = event)
  } else {
    fml <- survival::Surv(time, event) ~ x + strata(s)
    d <- data.frame(time = time, event = event, s = strata)
  }
  d$x <- x
  control <- survival::coxph.control(eps = eps, iter.max = iter_max,
                                     toler.chol = min(eps / 10, .Machine$double.eps^0.75))
  fit <- if (is.null(weights)) survival::coxph(fml, data = d, ties = ties, control = control)
         else { d$w <- weights
                survival::coxph(fml, data = d, ties = ties, weights = w, control = control) }
  b <- survival::basehaz(fit, centered = FALSE)
  # non-integer weights make coxph report the robust variance; naive.var is the model's
  v <- if (is.null(fit$naive.var)) fit$var else fit$naive.var
  out <- list(coef = unname(coef(fit)), se = sqrt(diag(as.matrix(fit$var))),
              naive_se = sqrt(diag(as.matrix(v))), var = as.matrix(fit$var),
              loglik = fit$loglik, means = unname(fit$means), iter = fit$iter,
              n = fit$n, nevent = fit$nevent, aic = AIC(fit),
              p = unname(summary(fit)$coefficients[, "Pr(>|z|)"]),
              lower = unname(summary(fit)$conf.int[, "lower .95"]),
              upper = unname(summary(fit)$conf.int[, "upper .95"]),
              base_time = b$time, base_hazard = b$hazard,
              base_strata = if (is.null(b$strata)) NULL else as.character(b$strata))
  if (!is.null(newx)) {
    nd <- data.frame(row = seq_len(nrow(newx)))
    nd$x <- as.matrix(newx)
    if (!is.null(newstrata)) nd$s <- newstrata
    sf <- survival::survfit(fit, newdata = nd, se.fit = FALSE)
    surv <- summary(sf, times = times, extend = TRUE)$surv
    if (!is.null(newstrata)) {
      # one curve per row: summary() returns them stacked per stratum; rebuild
      surv <- t(sapply(seq_len(nrow(newx)), function(i)
        summary(sf[i], times = times, extend = TRUE)$surv))
    } else {
      surv <- t(matrix(surv, nrow = length(times)))
    }
    out$surv <- surv
  }
  out
}
"""


@functools.cache
def _coxph():
    return r_function(_COXPH, ["survival"])


def coxph(
    x: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    *,
    ties: str = "efron",
    weights: np.ndarray | None = None,
    strata: Any = None,
    newx: np.ndarray | None = None,
    newstrata: Any = None,
    times: np.ndarray | None = None,
    eps: float = 1e-9,
    iter_max: int = 20,
) -> dict[str, Any]:
    """``coxph`` on a numeric matrix; with ``newx``, ``survfit(fit, newdata)`` at ``times``.

    Returns coef, se (as coxph reports it: robust for non-integer weights), naive_se
    (model-based), var (``fit$var``), loglik (null, fitted), means, iter, n, nevent, aic, p,
    lower/upper (95% hazard-ratio CI), base_time/base_hazard/base_strata
    (``basehaz(fit, centered=FALSE)``) and surv (rows x times) when asked.
    """
    strata_r = None if strata is None else np.asarray(strata).astype(str)
    newstrata_r = None if newstrata is None else np.asarray(newstrata).astype(str)
    return call(
        _coxph(),
        np.asarray(x, dtype=float),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        ties,
        None if weights is None else np.asarray(weights, dtype=float),
        strata_r,
        None if newx is None else np.asarray(newx, dtype=float),
        newstrata_r,
        None if times is None else np.asarray(times, dtype=float),
        float(eps),
        int(iter_max),
        computation=f"survival::coxph (ties {ties!r})",
    )


_SURVFIT = """
function(x, time, event, ties, weights, strata, newx, newstrata, times, conf_type, conf_int) {
  suppressPackageStartupMessages(library(survival))  # strata() must be found by name
  d <- data.frame(time = time, event = event)
  d$x <- as.matrix(x)
  fml <- survival::Surv(time, event) ~ x
  if (!is.null(strata)) { d$s <- strata; fml <- survival::Surv(time, event) ~ x + strata(s) }
  fit <- if (is.null(weights)) survival::coxph(fml, data = d, ties = ties)
         else { d$w <- weights; survival::coxph(fml, data = d, ties = ties, weights = w) }
  nd <- data.frame(row = seq_len(nrow(newx)))
  nd$x <- as.matrix(newx)
  if (!is.null(newstrata)) nd$s <- newstrata
  sf <- survival::survfit(fit, newdata = nd, conf.type = conf_type, conf.int = conf_int)
  # one curve per new row, each summarised at the times (rows x times)
  curves <- lapply(seq_len(nrow(newx)), function(i) summary(sf[i], times = times, extend = TRUE))
  pick <- function(name) do.call(rbind, lapply(curves, function(s) s[[name]]))
  list(surv = pick("surv"), std_err = pick("std.err"), std_chaz = pick("std.chaz"),
       lower = pick("lower"), upper = pick("upper"), cumhaz = pick("cumhaz"),
       logse = sf$logse, chaz_is_std_err = identical(sf$std.chaz, sf$std.err))
}
"""


@functools.cache
def _survfit():
    return r_function(_SURVFIT, ["survival"])


def survfit_coxph(
    x: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    newx: np.ndarray,
    times: np.ndarray,
    *,
    ties: str = "efron",
    weights: np.ndarray | None = None,
    strata: Any = None,
    newstrata: Any = None,
    conf_type: str = "log",
    conf_int: float = 0.95,
) -> dict[str, Any]:
    """``summary(survfit(coxph(...), newdata, conf.type, conf.int), times, extend=TRUE)``.

    Each value is a (rows of ``newx``, times) matrix: surv, std_err (summary's:
    on the survival scale, ``S * survfit$std.err``), std_chaz, lower, upper,
    cumhaz; also survfit's ``logse`` (its std.err is that of the cumulative
    hazard) and ``chaz_is_std_err`` (whether its std.chaz is the same numbers).
    ``times`` must be sorted (summary.survfit sorts them).
    """
    return call(
        _survfit(),
        np.asarray(x, dtype=float),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        ties,
        None if weights is None else np.asarray(weights, dtype=float),
        None if strata is None else np.asarray(strata).astype(str),
        np.asarray(newx, dtype=float),
        None if newstrata is None else np.asarray(newstrata).astype(str),
        np.asarray(times, dtype=float),
        conf_type,
        float(conf_int),
        computation=f"survival::survfit.coxph (ties {ties!r}, conf.type {conf_type!r})",
    )


_OFFSET_LOGLIK = """
function(eta, time, event, ties, weights) {
  d <- data.frame(time = time, event = event, eta = eta)
  fml <- survival::Surv(time, event) ~ offset(eta)
  fit <- if (is.null(weights)) survival::coxph(fml, data = d, ties = ties)
         else { d$w <- weights; survival::coxph(fml, data = d, ties = ties, weights = w) }
  # a model with no coefficients: coxph.null, whose loglik is the one value at the offset;
  # the same number as a one-coefficient model held at beta = 1 by iter.max = 0
  held <- if (is.null(weights)) survival::coxph(survival::Surv(time, event) ~ eta, data = d,
                                                ties = ties, init = 1, iter.max = 0)
          else survival::coxph(survival::Surv(time, event) ~ eta, data = d, ties = ties,
                               weights = w, init = 1, iter.max = 0)
  list(loglik = fit$loglik, class = class(fit), held = held$loglik)
}
"""


@functools.cache
def _offset_loglik():
    return r_function(_OFFSET_LOGLIK, ["survival"])


def offset_loglik(
    eta: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    *,
    ties: str = "efron",
    weights: np.ndarray | None = None,
) -> dict[str, Any]:
    """``coxph(Surv(time, event) ~ offset(eta), ties, weights)$loglik``: the partial
    log-likelihood of a fixed linear predictor.

    Returns loglik (one value: coxph fits a ``coxph.null``), class, and held: the
    (initial, final) loglik of ``~ eta`` with ``init = 1, iter.max = 0``, the same quantity.
    """
    return call(
        _offset_loglik(),
        np.asarray(eta, dtype=float),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        ties,
        None if weights is None else np.asarray(weights, dtype=float),
        computation=f"survival::coxph with an offset only (ties {ties!r})",
    )
