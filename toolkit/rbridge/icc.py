"""R reference for intraclass correlations: ``psych::ICC(x, lmer=FALSE)``."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from toolkit.rbridge import call, r_function

_ICC = """
function(x, alpha) {
  res <- psych::ICC(x, lmer = FALSE, alpha = alpha)$results
  list(type = res$type, ICC = res$ICC, F = res$F, df1 = res$df1, df2 = res$df2, p = res$p,
       lower = res[["lower bound"]], upper = res[["upper bound"]])
}
"""


@functools.cache
def _icc():
    return r_function(_ICC, ["psych"])


def psych_icc(ratings: Any, alpha: float = 0.05) -> dict[str, Any]:
    """``psych::ICC(ratings, lmer=FALSE)$results`` as a dict of columns (rows ICC1..ICC3k)."""
    return call(_icc(), np.asarray(ratings, dtype=float), float(alpha), computation="psych::ICC")
