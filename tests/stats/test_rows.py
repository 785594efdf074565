"""Risk scores of identical rows are identical (no last-bit differences from BLAS blocking)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from toolkit.stats import cox, coxnet
from toolkit.stats._rows import row_products


def _repeated_rows(p: int, n: int = 301, seed: int = 0):
    rng = np.random.default_rng(seed)
    row = rng.standard_normal(p)
    return np.tile(row, (n, 1)), rng


def test_row_products_equal_for_equal_rows_and_equal_to_the_matrix_product():
    for p in (3, 30, 2048):
        x, rng = _repeated_rows(p)
        coef = rng.standard_normal(p)
        many = rng.standard_normal((4, p))
        one = row_products(x, coef)
        assert np.unique(one).size == 1
        np.testing.assert_allclose(one, x @ coef, rtol=1e-13)
        both = row_products(x, many)
        assert both.shape == (x.shape[0], 4)
        assert all(np.unique(col).size == 1 for col in both.T)
        np.testing.assert_allclose(both, x @ many.T, rtol=1e-12, atol=1e-12)


def test_coxnet_predictions_and_cox_linear_predictors_tie_for_equal_rows(pbc):
    frame = pbc.dropna()
    columns = ["age", "bili", "albumin", "copper", "protime", "alk.phos", "ast", "chol"]
    x = frame[columns].to_numpy(float)
    time, event = frame["time"].to_numpy(float), (frame["status"] == 2).to_numpy(float)
    fit = coxnet.path(x, time, event, 0.5)
    fitted = cox.fit(pd.DataFrame(x, columns=columns), time, event)
    repeated = np.tile(x[7], (301, 1))
    lp = coxnet.predict(fit, repeated, fit.penalties[-1])
    assert np.unique(lp).size == 1
    assert np.unique(fitted.predict_linear(pd.DataFrame(repeated, columns=columns))).size == 1
