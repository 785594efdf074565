"""R references for prediction accuracy: ``riskRegression::Score`` (Brier, IPA, IBS, AUC).

Each model travels to R as an (n, len(times)) matrix of predicted risks
(:math:`1 - S(t)`), which ``Score`` takes as a model. Censoring weights are
the Kaplan-Meier's (``cens.model = "km"``), standard errors ``Score``'s
influence-function ones (``se.fit = TRUE``, its default ``conservative =
FALSE``), on the data as given (no ``split.method``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from toolkit.rbridge import call, r_function

_SCORE = """
function(time, status, a, b, times, metric) {
  suppressMessages({library(prodlim); library(survival)})
  d <- data.frame(time = time, status = status)
  models <- if (is.null(b)) list(a = a) else list(a = a, b = b)
  brier <- metric == "brier"
  s <- riskRegression::Score(models, formula = Hist(time, status) ~ 1, data = d,
                             times = times, metrics = metric,
                             summary = if (brier) c("ibs", "ipa") else NULL,
                             null.model = brier, se.fit = TRUE, contrasts = TRUE,
                             cens.model = "km")
  table <- if (brier) s$Brier else s$AUC
  score <- as.data.frame(table$score)
  score$model <- as.character(score$model)
  out <- list(score = as.list(score))
  if (!is.null(table$contrasts)) {
    contrasts <- as.data.frame(table$contrasts)
    contrasts$model <- as.character(contrasts$model)
    contrasts$reference <- as.character(contrasts$reference)
    out$contrasts <- as.list(contrasts)
  }
  out
}
"""


# our name -> the model column of Score's tables
_MODELS = {"null": "Null model", "a": "a", "b": "b"}


@functools.cache
def _score():
    return r_function(_SCORE, ["riskRegression", "prodlim", "survival"])


def _rows(table: dict[str, Any], column: str, value: str) -> dict[str, np.ndarray]:
    keep = np.asarray(table[column]) == value
    return {k: np.asarray(v)[keep] for k, v in table.items() if k not in ("model", "reference")}


def score(
    time: Any,
    event: Any,
    risk_a: np.ndarray,
    risk_b: np.ndarray | None,
    times: Sequence[float],
    metric: str,
) -> dict[str, Any]:
    """``Score(list(a, b), ..., metrics = metric, se.fit = TRUE, contrasts = TRUE)``.

    ``metric`` is ``"brier"`` (with ``summary = c("ibs", "ipa")`` and the null
    model) or ``"auc"``. Returns per model (``"a"``, ``"b"``, and ``"null"`` for
    the Brier score) the columns of ``$score`` by horizon (``Brier`` or ``AUC``,
    ``se``, ``lower``, ``upper``, and ``IBS``, ``IPA``), and under ``"b vs a"``
    the row of ``$contrasts`` comparing them (``delta.Brier``/``delta.AUC`` =
    b - a, ``se``, ``lower``, ``upper``, ``p``).
    """
    out = call(
        _score(),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        np.asarray(risk_a, dtype=float),
        None if risk_b is None else np.asarray(risk_b, dtype=float),
        np.asarray(times, dtype=float),
        metric,
        computation=f"riskRegression::Score ({metric}, se.fit)",
    )
    result = {name: _rows(out["score"], "model", label) for name, label in _MODELS.items()}
    result = {k: v for k, v in result.items() if len(next(iter(v.values())))}
    if risk_b is not None:
        contrasts = out["contrasts"]
        both = (np.asarray(contrasts["model"]) == "b") & (np.asarray(contrasts["reference"]) == "a")
        result["b vs a"] = {
            k: np.asarray(v)[both] for k, v in contrasts.items() if k not in ("model", "reference")
        }
    return result
