"""R references for the baseline table: ``wilcox.test``, ``fisher.test``, ``quantile``."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from toolkit.rbridge import call, r_function

_WILCOX = "function(x, g) stats::wilcox.test(x ~ g, exact = FALSE, correct = TRUE)$p.value"
_FISHER = "function(x, g) stats::fisher.test(table(g, x), workspace = 2e7)$p.value"
_FISHER_TABLE = "function(m) stats::fisher.test(m, workspace = 2e7)$p.value"
_QUARTILES = "function(x) unname(stats::quantile(x, c(0.25, 0.5, 0.75), na.rm = TRUE))"


@functools.cache
def _compiled(code: str):
    return r_function(code)


def wilcox_p(x: Any, group: Any) -> float:
    """``wilcox.test(x ~ group, exact=FALSE, correct=TRUE)$p.value`` (NA rows dropped by R)."""
    p = call(
        _compiled(_WILCOX),
        np.asarray(x, dtype=float),
        pd.Categorical(group),
        computation="stats::wilcox.test",
    )
    return float(p[0])


def fisher_p(x: Any, group: Any) -> float:
    """``fisher.test(table(group, x))$p.value`` for two categorical vectors."""
    p = call(
        _compiled(_FISHER),
        pd.Categorical(x),
        pd.Categorical(group),
        computation="stats::fisher.test",
    )
    return float(p[0])


def fisher_table_p(table: Any) -> float:
    """``fisher.test(m)$p.value`` for a matrix of counts."""
    p = call(
        _compiled(_FISHER_TABLE),
        np.asarray(table, dtype=float),
        computation="stats::fisher.test (table)",
    )
    return float(p[0])


def quartiles(x: Any) -> np.ndarray:
    """``quantile(x, c(.25, .5, .75), na.rm=TRUE)`` (type 7)."""
    return call(_compiled(_QUARTILES), np.asarray(x, dtype=float), computation="stats::quantile")
