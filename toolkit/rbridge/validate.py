"""R reference for bootstrap validation: ``rms::validate`` of a ``cph`` fit (rms 6.5-0).

``validate`` takes no resamples: ``predab.resample`` draws resample ``i`` as
``sample(n, replace = TRUE)``, one call per resample and nothing else random in
between. So after ``set.seed(seed)`` (Mersenne-Twister, Inversion, Rejection:
R's defaults, set explicitly) the same calls reproduce its resamples; they are
returned beside the table, so that sigkit can be run on exactly R's resamples.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from toolkit.rbridge import call, r_function

_VALIDATE = """
function(x, time, event, B, seed) {
  suppressPackageStartupMessages(library(rms))
  x <- as.matrix(x)
  n <- nrow(x)
  RNGkind("Mersenne-Twister", "Inversion", "Rejection")
  set.seed(seed)
  draws <- vapply(seq_len(B), function(i) sample(n, replace = TRUE), integer(n))
  fit <- cph(Surv(time, event) ~ x, x = TRUE, y = TRUE, surv = TRUE)
  set.seed(seed)
  said <- capture.output(v <- validate(fit, B = B))
  table <- unclass(v)
  attributes(table) <- list(dim = dim(v))
  list(table = table, rows = rownames(v), columns = colnames(v),
       coef = unname(coef(fit)), draws = matrix(draws, nrow = n), said = said)
}
"""


@functools.cache
def _validate():
    return r_function(_VALIDATE, ["rms", "survival"])


def rms_validate(
    x: np.ndarray, time: np.ndarray, event: np.ndarray, B: int, seed: int
) -> dict[str, Any]:
    """``set.seed(seed); validate(cph(Surv(time, event) ~ x, x=, y=, surv=TRUE), B = B)``.

    Returns ``table`` (a DataFrame: rows Dxy, R2, Slope, D, U, Q, g; columns
    index.orig, training, test, optimism, index.corrected, n), ``coef`` (cph's),
    ``resamples`` (the B x n 0-based row numbers R drew, one resample per row) and
    ``said`` (what validate printed, e.g. R's count of failed resamples).
    """
    out = call(
        _validate(),
        np.asarray(x, dtype=float),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        int(B),
        int(seed),
        computation="rms::validate(cph(...))",
    )
    table = pd.DataFrame(out["table"], index=out["rows"], columns=out["columns"])
    resamples = np.asarray(out["draws"], dtype=np.int64).T - 1
    said = out["said"] if isinstance(out["said"], list) else []
    return {"table": table, "coef": np.asarray(out["coef"]), "resamples": resamples, "said": said}
