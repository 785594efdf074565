"""Time-dependent AUC, its SE and contrasts against riskRegression::Score (veteran, lung, pbc)."""

import numpy as np
import pytest

from toolkit.rbridge import score as rscore
from toolkit.rbridge import study as rstudy
from toolkit.stats import cox
from toolkit.stats.timeauc import censoring_survival, compare, time_auc


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


def _cox_risks(veteran, lung, pbc):
    """Predicted risks 1 - S(t) of a Cox model and of a one-covariate one, four horizons."""
    pbc = pbc.dropna(subset=["bili", "albumin"]).reset_index(drop=True)
    lung = lung.dropna(subset=["ph.ecog"]).reset_index(drop=True)
    for name, time, event, x in [
        ("veteran", veteran["time"], veteran["status"], veteran[["karno", "age", "diagtime"]]),
        ("lung", lung["time"], lung["status"] == 2, lung[["ph.ecog", "sex", "age"]]),
        (
            "pbc",
            pbc["time"],
            pbc["status"] == 2,
            pbc[["bili", "albumin", "age"]].assign(bili=np.log(pbc["bili"])),
        ),
    ]:
        t, e, x = np.asarray(time, float), np.asarray(event, float), np.asarray(x, float)
        times = np.quantile(t[e == 1], [0.2, 0.4, 0.6, 0.8])
        full = 1 - cox.fit(x, t, e).predict_survival(x, times)
        # one discrete covariate for lung (ph.ecog): many tied risks
        first = 1 - cox.fit(x[:, :1], t, e).predict_survival(x[:, :1], times)
        yield name, t, e, times, full, first


def test_auc_se_ci_and_contrast_equal_score(veteran, lung, pbc):
    for name, t, e, times, risk_a, risk_b in _cox_risks(veteran, lung, pbc):
        ref = rscore.score(t, e, risk_a, risk_b, times, "auc")
        ours = time_auc(t, e, risk_a, times)
        diff = compare(t, e, risk_a, risk_b, times)
        for got, want, what in [
            (ours.auc, ref["a"]["AUC"], "AUC"),
            (ours.se, ref["a"]["se"], "SE"),
            (ours.lower, ref["a"]["lower"], "lower"),
            (ours.upper, ref["a"]["upper"], "upper"),
            (time_auc(t, e, risk_b, times).se, ref["b"]["se"], "SE of the tied model"),
            (-diff.diff, ref["b vs a"]["delta.AUC"], "delta"),
            (diff.se, ref["b vs a"]["se"], "delta SE"),
            (-diff.upper, ref["b vs a"]["lower"], "delta lower"),
            (diff.p, ref["b vs a"]["p"], "delta P"),
        ]:
            np.testing.assert_allclose(got, want, atol=1e-6, rtol=0, err_msg=f"{name}: {what}")


def test_auc_se_by_hand_without_censoring():
    # no censoring, horizon 2.5: cases 1, 2 and controls 3, 4, 5; AUC = 5/6.
    # G = 1 and no censoring term: IF = n/n1 (V10 - AUC) for a case, n/n0 (V01 - AUC)
    # for a control (DeLong's placements V10 = [1, 2/3], V01 = [1/2, 1, 1]), so
    # IF = [5/12, -5/12, -5/9, 5/18, 5/18], var = 175/864 and SE^2 = var / 5 = 35/864.
    out = time_auc([1.0, 2, 3, 4, 5], [1, 1, 1, 1, 1], [0.9, 0.4, 0.5, 0.3, 0.1], [2.5])
    assert out.auc[0] == pytest.approx(5 / 6)
    assert out.se[0] == pytest.approx(np.sqrt(35 / 864))
    assert out.upper[0] == 1.0  # 5/6 + 1.96 SE, clipped as Score clips it


def test_compare_of_a_score_with_itself_is_zero_with_zero_se(veteran):
    t = veteran["time"].to_numpy(float)
    e = veteran["status"].to_numpy(float)
    out = compare(t, e, -veteran["karno"], -veteran["karno"], [30.0, 90.0])
    assert out.diff.tolist() == [0.0, 0.0] and out.se.tolist() == [0.0, 0.0]
    assert np.isnan(out.p).all()
