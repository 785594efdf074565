"""Row-wise products whose value depends only on the row: equal rows give equal results.

BLAS matrix-vector products block and vectorise rows differently by their
position (SIMD tails, alignment), so two identical rows of ``x`` can give
``x @ coef`` values one unit in the last place apart. A risk score is then no
longer tied for two patients with the same covariates: the C-index, its
comparison test and median splits count such pairs as ordered, by the
accident of rounding, and a reference computed another way (R's ``coxph``
centres the linear predictor first) disagrees on them. ``np.einsum`` without
path optimisation sums every row in the same order.
"""

from __future__ import annotations

import numpy as np


def row_products(x: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """``x @ coef`` (coef a vector: (n,)) or ``x @ coef.T`` (coef (k, p): (n, k)), row by row."""
    x = np.asarray(x, dtype=float)
    coef = np.asarray(coef, dtype=float)
    if coef.ndim == 1:
        return np.einsum("ij,j->i", x, coef)
    return np.einsum("ij,kj->ik", x, coef)
