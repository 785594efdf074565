"""R references for the elastic-net Cox model: glmnet 4.1-6 ``family="cox"``.

Data travel to R as R objects (see `toolkit.rbridge`); the R code strings below
are fixed function bodies. Used by tests/stats/test_coxnet.py,
validation/suite_coxnet.py and benchmarks/test_bench_coxnet.py.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from toolkit import rbridge

_PATH = """
function(x, time, event, alpha, lambda, standardize, weights, penalty_factor, thresh) {
  y <- survival::Surv(time, event)
  args <- list(x = x, y = y, family = "cox", alpha = alpha, standardize = standardize,
               thresh = thresh)
  if (!is.null(lambda)) args$lambda <- lambda
  if (!is.null(weights)) args$weights <- weights
  if (!is.null(penalty_factor)) args$penalty.factor <- penalty_factor
  fit <- do.call(glmnet::glmnet, args)
  list(lambda = fit$lambda, beta = as.matrix(fit$beta), dev_ratio = fit$dev.ratio,
       nulldev = fit$nulldev, jerr = fit$jerr)
}
"""

_CV = """
function(x, time, event, alpha, lambda, foldid, standardize, thresh, measure) {
  y <- survival::Surv(time, event)
  args <- list(x = x, y = y, family = "cox", alpha = alpha, standardize = standardize,
               thresh = thresh, foldid = foldid, type.measure = measure, grouped = TRUE)
  if (!is.null(lambda)) args$lambda <- lambda
  fit <- do.call(glmnet::cv.glmnet, args)
  list(lambda = fit$lambda, cvm = fit$cvm, cvsd = fit$cvsd, lambda_min = fit$lambda.min,
       lambda_1se = fit$lambda.1se, nzero = as.numeric(fit$nzero))
}
"""

_TIMED = """
function(x, y, alpha, foldid, repeats, what) {
  out <- numeric(repeats)
  for (i in seq_len(repeats)) {
    t0 <- proc.time()[["elapsed"]]
    if (what == "path") {
      glmnet::glmnet(x, y, family = "cox", alpha = alpha)
    } else {
      glmnet::cv.glmnet(x, y, family = "cox", alpha = alpha, foldid = foldid)
    }
    out[i] <- proc.time()[["elapsed"]] - t0
  }
  out
}
"""


@functools.cache
def _functions() -> dict[str, Any]:
    packages = ("survival", "glmnet")
    return {
        "path": rbridge.r_function(_PATH, packages),
        "cv": rbridge.r_function(_CV, packages),
        "timed": rbridge.r_function(_TIMED, packages),
    }


def glmnet_version() -> str:
    """The installed glmnet version, e.g. ``"4.1.6"``."""
    ro = rbridge._robjects()
    rbridge.require("glmnet")
    return str(ro.r('as.character(packageVersion("glmnet"))')[0])


def _floats(values: Any) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype=float)


def _model_args(x, time, event, l1_ratio, penalties) -> tuple:
    """The leading arguments shared by the path and CV R functions, as R-convertible values."""
    return (_floats(x), _floats(time), _floats(event), float(l1_ratio), _floats(penalties))


def glmnet_path(
    x: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    l1_ratio: float,
    penalties: np.ndarray | None = None,
    *,
    standardize: bool = True,
    weights: np.ndarray | None = None,
    penalty_factor: np.ndarray | None = None,
    thresh: float = 1e-12,
) -> dict[str, np.ndarray]:
    """``glmnet(x, Surv(time, event), family="cox", ...)``: lambda, beta (p x L), dev_ratio."""
    fn = _functions()["path"]
    out = rbridge.call(
        fn,
        *_model_args(x, time, event, l1_ratio, penalties),
        bool(standardize),
        _floats(weights),
        _floats(penalty_factor),
        float(thresh),
        computation=f"glmnet::glmnet (coxnet path, l1_ratio {l1_ratio:g})",
    )
    out["beta"] = np.asarray(out["beta"]).reshape(x.shape[1], -1)
    return out


def cv_glmnet(
    x: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    l1_ratio: float,
    fold_id: np.ndarray,
    penalties: np.ndarray | None = None,
    *,
    standardize: bool = True,
    thresh: float = 1e-12,
    measure: str = "deviance",
) -> dict[str, Any]:
    """``cv.glmnet(..., family="cox", foldid=, type.measure=, grouped=TRUE)``."""
    fn = _functions()["cv"]
    return rbridge.call(
        fn,
        *_model_args(x, time, event, l1_ratio, penalties),
        np.asarray(fold_id, dtype=int),
        bool(standardize),
        float(thresh),
        {"deviance": "deviance", "cindex": "C"}[measure],
        computation=f"glmnet::cv.glmnet (coxnet CV, l1_ratio {l1_ratio:g}, {measure})",
    )


def timed_glmnet(
    x: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    l1_ratio: float,
    *,
    what: str = "path",
    fold_id: np.ndarray | None = None,
    repeats: int = 3,
) -> np.ndarray:
    """Elapsed seconds of ``glmnet`` (``what="path"``) or ``cv.glmnet`` (``"cv"``), in R.

    The data are converted to R objects once, before timing, so only R's work
    is measured (default thresh, default penalty sequence).
    """
    ro = rbridge._robjects()
    fn = _functions()["timed"]
    surv = ro.r("survival::Surv")(
        rbridge.to_r(np.asarray(time, float)), rbridge.to_r(np.asarray(event, float))
    )
    folds = rbridge.to_r(np.asarray(fold_id if fold_id is not None else [1], dtype=int))
    result = rbridge.call(
        fn,
        rbridge.to_r(np.asarray(x, float)),
        surv,
        float(l1_ratio),
        folds,
        int(repeats),
        what,
        computation=f"glmnet::{'glmnet' if what == 'path' else 'cv.glmnet'} (timed, l1_ratio "
        f"{l1_ratio:g})",
    )
    return np.asarray(result, dtype=float)
