"""R references for the Cox model's extensions: ``coxph`` with ``cluster =``, ``id =``,
``offset()``, ``(start, stop]`` data and ``ties = "exact"``."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from toolkit.rbridge import call, r_function

_COXPH = """
function(x, stop, event, entry, offset, cluster, id, strata, ties, weights) {
  suppressPackageStartupMessages(library(survival))  # strata(), offset() found by name
  d <- data.frame(stop = stop, event = event)
  d$x <- as.matrix(x)
  lhs <- if (is.null(entry)) "Surv(stop, event)" else { d$entry <- entry
                                                        "Surv(entry, stop, event)" }
  rhs <- "x"
  if (!is.null(strata)) { d$s <- strata; rhs <- paste(rhs, "+ strata(s)") }
  if (!is.null(offset)) { d$off <- offset; rhs <- paste(rhs, "+ offset(off)") }
  cl <- call("coxph", as.formula(paste(lhs, "~", rhs)), data = quote(d), ties = ties)
  if (!is.null(weights)) { d$w <- weights; cl$weights <- quote(w) }
  if (!is.null(cluster)) { d$cl <- cluster; cl$cluster <- quote(cl) }
  if (!is.null(id)) { d$id <- id; cl$id <- quote(id) }
  fit <- eval(cl)
  s <- summary(fit)
  b <- survival::basehaz(fit, centered = FALSE)
  naive <- if (is.null(fit$naive.var)) fit$var else fit$naive.var
  list(coef = unname(coef(fit)), var = unname(as.matrix(fit$var)),
       naive_var = unname(as.matrix(naive)), robust = !is.null(fit$naive.var),
       loglik = fit$loglik, iter = fit$iter, means = unname(fit$means),
       table = unname(s$coefficients), logtest = unname(s$logtest),
       sctest = unname(s$sctest), waldtest = unname(s$waldtest),
       wald_test = unname(fit$wald.test),
       robscore = if (is.null(s$robscore)) NULL else unname(s$robscore),
       base_time = b$time, base_hazard = b$hazard,
       martingale = unname(residuals(fit, "martingale")),
       # coxph has no score (nor dfbeta) residuals for the exact method
       score = if (ties == "exact") NULL else unname(as.matrix(residuals(fit, "score"))),
       dfbeta = if (ties == "exact") NULL else unname(as.matrix(residuals(fit, "dfbeta"))))
}
"""


@functools.cache
def _coxph():
    return r_function(_COXPH, ["survival"])


def _labels(values: Any) -> np.ndarray | None:
    return None if values is None else np.asarray(values).astype(str)


def _numbers(values: Any) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype=float)


def coxph(
    x: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    *,
    entry: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    cluster: Any = None,
    id: Any = None,
    strata: Any = None,
    ties: str = "efron",
    weights: np.ndarray | None = None,
) -> dict[str, Any]:
    """``coxph(Surv([entry,] time, event) ~ x [+ strata(s)] [+ offset(o)], cluster =, id =)``.

    Returns coef, var (``fit$var``: robust with a cluster), naive_var, robust, loglik
    (null, fitted), iter, means, table (``summary(fit)$coefficients``: with a robust
    variance its columns are coef, exp(coef), se(coef), robust se, z, p), logtest,
    sctest, waldtest (rounded, as summary), wald_test (unrounded), robscore (or None),
    base_time/base_hazard (``basehaz(fit, centered = FALSE)``) and the martingale,
    score and dfbeta residuals (input order; score and dfbeta None for ties "exact",
    which R does not give). Cluster and id labels are passed as text.
    """
    return call(
        _coxph(),
        np.asarray(x, dtype=float),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        _numbers(entry),
        _numbers(offset),
        _labels(cluster),
        _labels(id),
        _labels(strata),
        ties,
        _numbers(weights),
        computation=f"survival::coxph (ties {ties!r}, extensions)",
    )
