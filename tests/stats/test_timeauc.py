"""Time-dependent AUC against riskRegression::Score on veteran, lung and pbc."""

import numpy as np
import pytest

from toolkit.rbridge import study as rstudy
from toolkit.stats.timeauc import censoring_survival, time_auc


def _cases(veteran, lung, pbc):
    lung = lung.dropna(subset=["ph.ecog"])
    pbc = pbc.dropna(subset=["bili"])
    yield "veteran", veteran["time"], veteran["status"], -veteran["karno"].to_numpy(float)
    yield "lung", lung["time"], (lung["status"] == 2), lung["age"] * 0.01 + lung["ph.ecog"] * 0.3
    yield "pbc", pbc["time"], (pbc["status"] == 2), np.log(pbc["bili"].to_numpy(float))


def test_auc_equals_score_on_r_datasets(veteran, lung, pbc):
    for name, time, event, lp in _cases(veteran, lung, pbc):
        t = np.asarray(time, float)
        e = np.asarray(event, float)
        times = np.quantile(t[e == 1], [0.25, 0.5, 0.75])
        risk = np.repeat((1 / (1 + np.exp(-np.asarray(lp, float))))[:, None], 3, axis=1)
        ours = time_auc(t, e, risk, times).auc
        theirs = rstudy.score_auc(t, e, risk, times)
        np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=0, err_msg=name)


def test_linear_predictor_gives_the_same_auc_as_risks(veteran):
    t = veteran["time"].to_numpy(float)
    e = veteran["status"].to_numpy(float)
    lp = -veteran["karno"].to_numpy(float) / 10
    risk = np.column_stack([1 - 0.7 ** np.exp(lp), 1 - 0.4 ** np.exp(lp)])
    a = time_auc(t, e, lp, [30, 90]).auc
    b = time_auc(t, e, risk, [30, 90]).auc
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_censoring_survival_removes_deaths_first():
    # time 2 has a death and a censoring: prodlim's reverse KM gives 1 - 1/(3 - 1)
    distinct, g = censoring_survival(np.array([1.0, 2, 2, 3]), np.array([1.0, 1, 0, 1]))
    assert distinct.tolist() == [1, 2, 3]
    assert g.tolist() == pytest.approx([1.0, 0.5, 0.5])


def test_auc_is_nan_without_controls():
    out = time_auc([1.0, 2.0, 3.0], [1, 1, 1], [3.0, 2.0, 1.0], [10.0])
    assert np.isnan(out.auc[0]) and out.n_controls[0] == 0
