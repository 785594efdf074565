"""R reference computations for the study's validation statistics.

Each function runs the R package the statistic is checked against (survival,
rms, riskRegression) on data passed as R objects and returns plain numpy /
dicts. Used by the tests, the validation suite and every study run's
``results/r_check.json``.

Data frames of predictors are passed with pandas categoricals for categorical
predictors (first category = reference level, as R's factor); formulas are
built from the column names only, and those go to R as safe names
(`toolkit.rbridge.SafeNames`): coefficient and predictor names come back in the
user's names, whatever characters those hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from toolkit import rbridge

_SCORE_AUC = """
function(time, status, risk, times) {
  suppressMessages({library(prodlim); library(survival)})
  d <- data.frame(time = time, status = status)
  s <- riskRegression::Score(list(model = risk), formula = Hist(time, status) ~ 1,
                             data = d, times = times, metrics = "auc", se.fit = FALSE,
                             null.model = FALSE, cens.model = "km")
  as.numeric(s$AUC$score$AUC)
}
"""

_NET_BENEFIT = """
function(time, event, risk, horizon, thresholds) {
  km <- function(rows) {
    f <- survival::survfit(survival::Surv(time[rows], event[rows]) ~ 1)
    summary(f, times = horizon, extend = TRUE)$surv
  }
  n <- length(time)
  s_all <- km(rep(TRUE, n))
  model <- sapply(thresholds, function(p) {
    rows <- risk > p
    if (!any(rows)) return(0)
    s <- km(rows); share <- mean(rows)
    (1 - s) * share - s * share * p / (1 - p)
  })
  list(model = model, all = (1 - s_all) - s_all * thresholds / (1 - thresholds))
}
"""

_CALIBRATION = """
function(time, event, survival, horizon, group, knots) {
  suppressMessages(library(rms))
  observed <- sapply(sort(unique(group)), function(g) {
    f <- survival::survfit(survival::Surv(time[group == g], event[group == g]) ~ 1)
    summary(f, times = horizon, extend = TRUE)$surv
  })
  predicted <- as.numeric(tapply(survival, group, mean))
  cll <- log(-log(survival))
  d <- data.frame(time = time, event = event, cll = cll)
  fit <- if (length(knots) >= 3) {
    survival::coxph(survival::Surv(time, event) ~ rms::rcs(cll, knots), data = d)
  } else {
    survival::coxph(survival::Surv(time, event) ~ cll, data = d)
  }
  smooth <- summary(survival::survfit(fit, newdata = d), times = horizon, extend = TRUE)$surv
  err <- abs((1 - as.numeric(smooth)) - (1 - survival))
  list(observed = observed, predicted = predicted,
       rmse = sqrt(mean((observed - predicted)^2)),
       ici = mean(err), e50 = median(err), e90 = as.numeric(quantile(err, 0.9)),
       knots = if (length(knots) >= 3) {
         Hmisc::rcspline.eval(cll, nk = 3, knots.only = TRUE)
       } else knots)
}
"""

_COXPH = """
function(d, time, event, newdata, times) {
  suppressMessages(library(survival))
  d$.time <- time; d$.event <- event
  terms <- setdiff(names(d), c(".time", ".event"))
  fit <- coxph(reformulate(terms, quote(Surv(.time, .event))), data = d, ties = "efron")
  curve <- summary(survfit(fit, newdata = newdata), times = times, extend = TRUE)$surv
  base <- summary(survfit(fit), times = times, extend = TRUE)$surv
  list(coef = as.numeric(coef(fit)), names = names(coef(fit)), loglik = fit$loglik,
       survival = t(matrix(curve, nrow = length(times))), baseline = as.numeric(base),
       means = as.numeric(fit$means))
}
"""

_NOMOGRAM = """
function(d, time, event, maxscale) {
  suppressMessages(library(rms))
  d$.time <- time; d$.event <- event
  terms <- setdiff(names(d), c(".time", ".event"))
  assign(".sigkit_datadist", datadist(d[terms]), envir = globalenv())
  old <- options(datadist = ".sigkit_datadist")
  on.exit(options(old))
  form <- reformulate(terms, quote(Surv(.time, .event)))
  # coxph.control defaults (cph: eps 1e-4, tol 1e-9), so cph iterates as coxph and cox.fit
  fit <- cph(form, data = d, x = TRUE, y = TRUE, surv = TRUE, eps = 1e-9,
             tol = .Machine$double.eps^0.75, iter.max = 100)
  nom <- nomogram(fit, maxscale = maxscale)
  out <- lapply(terms, function(v) list(values = as.character(nom[[v]][[v]]),
                                        points = as.numeric(nom[[v]]$points)))
  names(out) <- terms
  list(points_per_lp = attr(nom, "info")$sc, predictors = out,
       coef = as.numeric(coef(fit)))
}
"""

_CONCORDANCE = """
function(time, event, a, b) {
  suppressMessages(library(survival))
  d <- data.frame(time = time, event = event, a = a, b = b)
  fa <- coxph(Surv(time, event) ~ a, data = d, init = 1, control = coxph.control(iter.max = 0))
  fb <- coxph(Surv(time, event) ~ b, data = d, init = 1, control = coxph.control(iter.max = 0))
  cc <- concordance(fa, fb)
  contrast <- c(1, -1)
  diff <- sum(contrast * cc$concordance)
  se <- sqrt(drop(contrast %*% cc$var %*% contrast))
  list(c = as.numeric(cc$concordance), se = sqrt(diag(cc$var)), diff = diff, diff_se = se,
       p = 2 * pnorm(-abs(diff / se)))
}
"""


def score_auc(time: Any, event: Any, risk: np.ndarray, times: Sequence[float]) -> np.ndarray:
    """``riskRegression::Score(..., metrics = "auc", cens.model = "km")``'s AUC per time.

    ``risk`` is an (n, len(times)) matrix of predicted risks.
    """
    fn = rbridge.r_function(_SCORE_AUC, ["riskRegression", "prodlim", "survival"])
    matrix = np.asarray(risk, dtype=float)
    auc = rbridge.call(
        fn,
        _f(time),
        _f(event),
        matrix,
        _f(times),
        computation="riskRegression::Score (time-dependent AUC)",
    )
    return np.asarray(auc, dtype=float)


def net_benefit(time, event, risk, horizon: float, thresholds) -> dict[str, np.ndarray]:
    """Vickers et al.'s KM net benefit computed with ``survival::survfit``."""
    fn = rbridge.r_function(_NET_BENEFIT, ["survival"])
    out = rbridge.call(
        fn,
        _f(time),
        _f(event),
        _f(risk),
        float(horizon),
        _f(thresholds),
        computation="survival::survfit (net benefit)",
    )
    return {"model": np.asarray(out["model"], float), "all": np.asarray(out["all"], float)}


def calibration(time, event, survival, horizon: float, group, knots) -> dict[str, Any]:
    """Grouped KM calibration and Austin's Cox-RCS ICI/E50/E90 in R (rms::rcs, coxph)."""
    fn = rbridge.r_function(_CALIBRATION, ["survival", "rms"])
    out = rbridge.call(
        fn,
        _f(time),
        _f(event),
        _f(survival),
        float(horizon),
        np.asarray(group, dtype=int),
        _f(knots),
        computation="survival::coxph with rms::rcs (calibration)",
    )
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def coxph(frame: pd.DataFrame, time, event, newdata: pd.DataFrame, times) -> dict[str, Any]:
    """``coxph`` (Efron) refit and ``survfit.coxph`` survival at ``times`` for ``newdata``."""
    fn = rbridge.r_function(_COXPH, ["survival"])
    names = rbridge.SafeNames.of(frame.columns)
    out = rbridge.call(
        fn,
        names.frame(frame),
        _f(time),
        _f(event),
        names.frame(newdata[list(frame.columns)]),
        _f(times),
        computation="survival::coxph and survfit.coxph (model refit)",
        safe_names=names,
    )
    return {
        "coef": np.asarray(out["coef"], float),
        "names": names.user_all(out["names"]),
        "loglik": np.asarray(out["loglik"], float),
        "survival": np.asarray(out["survival"], float),
        "baseline": np.asarray(out["baseline"], float),
        "means": np.asarray(out["means"], float),
    }


def nomogram(frame: pd.DataFrame, time, event, maxscale: float = 100.0) -> dict[str, Any]:
    """``rms::nomogram(cph(...))``: points per lp and each predictor's axis and points."""
    fn = rbridge.r_function(_NOMOGRAM, ["rms", "survival"])
    names = rbridge.SafeNames.of(frame.columns)
    out = rbridge.call(
        fn,
        names.frame(frame),
        _f(time),
        _f(event),
        float(maxscale),
        computation="rms::nomogram (cph)",
        safe_names=names,
    )
    predictors = {
        names.user(name): {"values": list(v["values"]), "points": np.asarray(v["points"], float)}
        for name, v in out["predictors"].items()
    }
    return {
        "points_per_lp": float(np.asarray(out["points_per_lp"])[0]),
        "predictors": predictors,
        "coef": np.asarray(out["coef"], float),
    }


def concordance_pair(time, event, a, b) -> dict[str, float | np.ndarray]:
    """``survival::concordance`` of two risk scores and their difference's test."""
    fn = rbridge.r_function(_CONCORDANCE, ["survival"])
    out = rbridge.call(
        fn, _f(time), _f(event), _f(a), _f(b), computation="survival::concordance (two scores)"
    )
    return {
        "c": np.asarray(out["c"], float),
        "se": np.asarray(out["se"], float),
        "diff": float(np.asarray(out["diff"])[0]),
        "diff_se": float(np.asarray(out["diff_se"])[0]),
        "p": float(np.asarray(out["p"])[0]),
    }


def _f(values) -> np.ndarray:
    return np.asarray(values, dtype=float)
