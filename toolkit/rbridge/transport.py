"""R references for transportability: the membership model (``glm``, ``pROC``) and the
updates of a Cox model on a new cohort (``coxph`` with an offset, ``survfit``)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from toolkit.rbridge import call, r_function

_MEMBERSHIP = """
function(z, new) {
  fit <- glm(new ~ z, family = binomial, control = glm.control(epsilon = 1e-14, maxit = 100))
  p <- unname(fitted(fit))
  curve <- pROC::roc(new, p, levels = c(0, 1), direction = "<", quiet = TRUE)
  ci <- pROC::ci.auc(curve, method = "delong")
  list(coef = unname(coef(fit)), se = unname(sqrt(diag(vcov(fit)))), fitted = p,
       auc = as.numeric(pROC::auc(curve)), se_auc = sqrt(pROC::var(curve, method = "delong")),
       lower = ci[1], upper = ci[3])
}
"""

_UPDATES = """
function(time, event, lp, x, times) {
  offset_fit <- survival::coxph(survival::Surv(time, event) ~ offset(lp))
  fixed <- survival::coxph(survival::Surv(time, event) ~ lp, init = 1, iter.max = 0)
  at <- function(fit, newdata) {
    t(summary(survival::survfit(fit, newdata = newdata), times = times, extend = TRUE)$surv)
  }
  slope <- survival::coxph(survival::Surv(time, event) ~ lp)
  refit <- survival::coxph(survival::Surv(time, event) ~ x)
  list(offset_loglik = offset_fit$loglik[1],
       offset_hazard = survival::basehaz(offset_fit, centered = FALSE)$hazard,
       baseline = at(fixed, data.frame(lp = lp)),
       slope = unname(coef(slope)), slope_ci = unname(confint(slope)[1, ]),
       slope_survival = at(slope, data.frame(lp = lp)),
       refit_coef = unname(coef(refit)),
       refit_survival = t(summary(survival::survfit(refit, newdata = list(x = x)),
                                  times = times, extend = TRUE)$surv))
}
"""


@functools.cache
def _membership():
    return r_function(_MEMBERSHIP, ["pROC"])


@functools.cache
def _updates():
    return r_function(_UPDATES, ["survival"])


def membership(z: np.ndarray, new: np.ndarray) -> dict[str, Any]:
    """``glm(new ~ z, binomial)``'s coefficients, SEs and fitted values; pROC's DeLong AUC,
    its SE and ``ci.auc``."""
    matrix = np.asarray(z, dtype=float)
    return call(
        _membership(),
        matrix[:, None] if matrix.ndim == 1 else matrix,
        np.asarray(new, dtype=float),
        computation="glm (membership model) and pROC::ci.auc",
    )


def updates(
    time: Any, event: Any, linear_predictor: Any, x: np.ndarray, times: Sequence[float]
) -> dict[str, Any]:
    """The offset fit (log-likelihood, ``basehaz(centered = FALSE)``), the survival of the
    baseline update (``coxph(~ lp, init = 1, iter.max = 0)``), of the slope update
    (``coxph(~ lp)``: slope and ``confint``) and of the refit (``coxph(~ x)``) at ``times``,
    patients x times."""
    return call(
        _updates(),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        np.asarray(linear_predictor, dtype=float),
        np.asarray(x, dtype=float),
        np.asarray(times, dtype=float),
        computation="survival::coxph updates and survfit",
    )
