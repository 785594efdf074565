"""R references for the univariate Cox screen and stepwise AIC (MASS 7.3-58, survival 3.5-3).

Formulas are built inside R with ``reformulate`` from the variable names passed
as a character vector; the data travel as an R data frame. Its columns go under
safe names (`toolkit.rbridge.SafeNames`), so any column name works, and the
steps, terms and coefficient names come back in the user's names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from toolkit import rbridge

_STEP = r"""
function(d, time, event, start, upper, lower, direction, k) {
  d$.time <- d[[time]]; d$.event <- d[[event]]
  response <- quote(survival::Surv(.time, .event))
  rhs <- function(terms) if (length(terms)) terms else "1"
  fit <- survival::coxph(reformulate(rhs(start), response), data = d, ties = "efron")
  scope <- list(upper = reformulate(rhs(upper), response),
                lower = reformulate(rhs(lower), response))
  res <- MASS::stepAIC(fit, scope = scope, direction = direction, k = k, trace = 0)
  list(step = as.character(res$anova$Step), aic = res$anova$AIC, df = res$anova$Df,
       variables = attr(terms(res), "term.labels"),
       coef = unname(coef(res)), coef_names = names(coef(res)),
       loglik = res$loglik[length(res$loglik)])
}
"""

_UNIVARIATE = r"""
function(d, time, event, candidates) {
  d$.time <- d[[time]]; d$.event <- d[[event]]
  response <- quote(survival::Surv(.time, .event))
  rows <- lapply(candidates, function(v) {
    fit <- survival::coxph(reformulate(v, response), data = d, ties = "efron")
    s <- summary(fit)
    data.frame(variable = v, contrast = rownames(s$coefficients),
               coef = s$coefficients[, "coef"], se = s$coefficients[, "se(coef)"],
               hr = s$conf.int[, "exp(coef)"], lower = s$conf.int[, "lower .95"],
               upper = s$conf.int[, "upper .95"], p = s$coefficients[, "Pr(>|z|)"],
               p_lr = unname(s$logtest["pvalue"]), p_score = unname(s$sctest["pvalue"]),
               stringsAsFactors = FALSE)
  })
  do.call(rbind, rows)
}
"""


def step_aic(
    df: pd.DataFrame,
    time: str,
    event: str,
    start: Sequence[str],
    upper: Sequence[str],
    lower: Sequence[str] = (),
    direction: str = "both",
    k: float = 2.0,
) -> dict[str, Any]:
    """``MASS::stepAIC(coxph(Surv(time, event) ~ start), scope=list(upper=, lower=))``.

    Returns the anova's ``step`` labels and ``aic`` per accepted step, the final
    ``variables``, ``coef`` with ``coef_names`` and the final ``loglik``.
    """
    fn = rbridge.r_function(_STEP, packages=("survival", "MASS"))
    names = rbridge.SafeNames.of(df.columns)
    out = rbridge.call(
        fn,
        names.frame(df),
        names.r(time),
        names.r(event),
        *(np.asarray(names.r_all(list(terms)), dtype=str) for terms in (start, upper, lower)),
        direction,
        float(k),
        computation=f"MASS::stepAIC (coxph, direction {direction!r}, k {k:g})",
        safe_names=names,
    )
    for key in ("step", "variables", "coef_names"):
        out[key] = names.user_all(out[key] or [])
    out["loglik"] = float(np.asarray(out["loglik"]).ravel()[0])
    out["aic"] = np.asarray(out["aic"], dtype=float)
    out["df"] = np.asarray(out["df"], dtype=float)
    out["coef"] = np.asarray(out["coef"] if out["coef"] is not None else [], dtype=float)
    return out


def univariate(df: pd.DataFrame, time: str, event: str, candidates: Sequence[str]) -> pd.DataFrame:
    """One ``summary(coxph(Surv(time, event) ~ x))`` per candidate, stacked."""
    fn = rbridge.r_function(_UNIVARIATE, packages=("survival",))
    names = rbridge.SafeNames.of(df.columns)
    out = rbridge.call(
        fn,
        names.frame(df),
        names.r(time),
        names.r(event),
        np.asarray(names.r_all(list(candidates)), dtype=str),
        computation="survival::coxph (univariate screen)",
        safe_names=names,
    )
    table = pd.DataFrame(out)
    for column in ("variable", "contrast"):
        table[column] = names.user_all(table[column])
    return table
