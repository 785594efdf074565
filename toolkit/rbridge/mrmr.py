"""R reference for mRMR: mRMRe 2.1.2's ``mRMR.classic`` rules as plain R loops.

mRMRe is not packaged for Debian and CRAN is unreachable here, so this is an
independent re-implementation of the rules read from mRMRe's C++ source
(``Math::computeConcordanceIndex`` with ``outX=TRUE``, ``Math::computeMi``,
``Filter::placeElements``), written pair by pair and candidate by candidate
without sharing anything with ``toolkit.stats.mrmr``. It does not use
``survival::concordance``: that counts pairs tied on the feature as 1/2 and
keeps event/censored pairs tied on time, while mRMRe does neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from toolkit import rbridge

_CLASSIC = r"""
function(X, time, event, k, forced) {
  n <- nrow(X); p <- ncol(X)
  somers <- function(x) {
    concordant <- 0; relevant <- 0
    for (i in seq_len(n)) for (j in seq_len(n)) {
      if (time[i] < time[j] && event[i] == 1) {
        relevant <- relevant + 1
        if (x[i] > x[j]) concordant <- concordant + 1
      } else if (time[i] > time[j] && event[j] == 1) {
        relevant <- relevant + 1
        if (x[i] < x[j]) concordant <- concordant + 1
      }
    }
    2 * (concordant / relevant) - 1
  }
  d <- vapply(seq_len(p), function(f) somers(X[, f]), numeric(1))
  mi <- function(r) -0.5 * log(1 - r^2)
  R <- cor(X)
  chosen <- integer(0); scores <- numeric(0)
  for (level in seq_len(k)) {
    best <- NA; best_score <- -Inf
    pool <- if (level <= length(forced)) forced[level] else setdiff(seq_len(p), chosen)
    for (f in pool) {
      s <- mi(d[f])
      if (level > 1) {
        ancestry <- mi(d[f]) + sum(mi(R[f, chosen]))
        s <- mi(d[f]) - ancestry / level
      }
      if (level <= length(forced) || (!is.na(s) && s > best_score)) { best <- f; best_score <- s }
    }
    chosen <- c(chosen, best); scores <- c(scores, best_score)
  }
  list(indices = chosen - 1L, scores = scores, somers_d = d)
}
"""


def mrmr_classic(
    X: Any, time: Any, event: Any, k: int, forced: Sequence[int] = ()
) -> dict[str, np.ndarray]:
    """mRMRe 2.1.2 ``mRMR.classic`` selection of ``k`` columns, by explicit R loops.

    ``forced`` (0-based columns) are taken first, in order, and then count as
    chosen. Returns 0-based ``indices`` in selection order, mRMRe's ``scores`` and every
    column's Somers' D with ``Surv(time, event)``.
    """
    fn = rbridge.r_function(_CLASSIC)
    forced_r = np.asarray(forced, dtype=int) + 1
    out = rbridge.call(
        fn,
        np.asarray(X, dtype=float),
        time,
        event,
        int(k),
        forced_r,
        computation="mRMR.classic rules (R loops)",
    )
    out["indices"] = np.asarray(out["indices"], dtype=int)
    return out
