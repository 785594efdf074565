"""Brier score, IPA, IBS and Brier contrasts against riskRegression::Score, and worked by hand."""

import numpy as np
import pandas as pd
import pytest

from toolkit.rbridge import score as rscore
from toolkit.stats import brier, cox


def _cases(r, pbc, lung, veteran):
    """Real data with two nested Cox models' predicted survival at four horizons."""
    pbc = pbc.dropna(subset=["bili", "albumin", "age"]).reset_index(drop=True)
    yield (
        "pbc",
        pbc["time"],
        pbc["status"] == 2,
        np.column_stack([np.log(pbc["bili"]), pbc["albumin"], pbc["age"]]),
    )
    lung = lung.dropna(subset=["ph.ecog"]).reset_index(drop=True)
    yield "lung", lung["time"], lung["status"] == 2, lung[["ph.ecog", "age", "sex"]].to_numpy()
    yield "veteran", veteran["time"], veteran["status"], veteran[["karno", "age"]].to_numpy()
    colon = r.dataset("colon")
    colon = colon[colon["etype"] == 2].dropna(subset=["nodes"]).reset_index(drop=True)
    yield "colon", colon["time"], colon["status"], colon[["nodes", "extent", "age"]].to_numpy()


def _predictions(time, event, x):
    t, e, x = np.asarray(time, float), np.asarray(event, float), np.asarray(x, float)
    times = np.quantile(t[e == 1], [0.2, 0.4, 0.6, 0.8])
    full = cox.fit(x, t, e).predict_survival(x, times)
    first = cox.fit(x[:, :1], t, e).predict_survival(x[:, :1], times)
    return t, e, times, full, first


def test_brier_ipa_ibs_and_contrast_equal_score_on_r_datasets(r, pbc, lung, veteran):
    for name, time, event, x in _cases(r, pbc, lung, veteran):
        t, e, times, s_a, s_b = _predictions(time, event, x)
        ref = rscore.score(t, e, 1 - s_a, 1 - s_b, times, "brier")
        ours = brier.brier_score(t, e, s_a, times)
        ibs = brier.integrated_brier(t, e, s_a, times)
        diff = brier.compare(t, e, s_a, s_b, times)
        model, null, contrast = ref["a"], ref["null"], ref["b vs a"]
        for got, want, tol, what in [
            (ours.brier, model["Brier"], 1e-8, "Brier"),
            (ours.ipa, model["IPA"], 1e-8, "IPA"),
            (ours.null_brier, null["Brier"], 1e-8, "null Brier"),
            (ibs.ibs, model["IBS"], 1e-8, "IBS"),
            (ibs.null_ibs, null["IBS"], 1e-8, "null IBS"),
            (ours.se, model["se"], 1e-6, "SE"),
            (ours.null_se, null["se"], 1e-6, "null SE"),
            (ours.lower, model["lower"], 1e-6, "lower"),
            (ours.upper, model["upper"], 1e-6, "upper"),
            (-diff.diff, contrast["delta.Brier"], 1e-6, "delta"),
            (diff.se, contrast["se"], 1e-6, "delta SE"),
            (diff.p, contrast["p"], 1e-6, "delta P"),
        ]:
            np.testing.assert_allclose(got, want, atol=tol, rtol=0, err_msg=f"{name}: {what}")


def test_brier_by_hand_with_censoring():
    # G: one censoring at 2 among 4 at risk -> 3/4 from 2 on (and 0 at 5).
    time = [1.0, 2, 3, 4, 5]
    event = [1, 0, 1, 1, 0]
    survival = np.array([[0.3, 0.2], [0.6, 0.5], [0.7, 0.6], [0.8, 0.7], [0.95, 0.9]])
    out = brier.brier_score(time, event, survival, [2.5, 3.5])
    # t = 2.5: case 1 (G(1-) = 1); controls 3, 4, 5 (G(2.5) = 3/4)
    # t = 3.5: cases 1 and 3 (G(3-) = 3/4); controls 4, 5; patient 2 censored, weight 0
    assert out.brier == pytest.approx([(0.09 + (0.09 + 0.04 + 0.0025) * 4 / 3) / 5, 49 / 375])
    # null model: KM(2.5) = 4/5, KM(3.5) = 4/5 * 2/3 = 8/15
    null_35 = ((8 / 15) ** 2 * (1 + 4 / 3) + (7 / 15) ** 2 * 4 / 3 * 2) / 5
    assert out.null_brier[1] == pytest.approx(null_35) and null_35 == pytest.approx(56 / 225)
    assert out.ipa[1] == pytest.approx(1 - (49 / 375) / (56 / 225)) == 0.475
    assert out.n_cases.tolist() == [1, 2] and out.n_controls.tolist() == [3, 2]
    assert out.n_censored.tolist() == [1, 1]
    # IBS(3.5) = BS(2.5) * (3.5 - 2.5) / 3.5; IBS at the first horizon is 0
    ibs = brier.integrated_brier(time, event, survival, [2.5, 3.5])
    assert ibs.ibs == pytest.approx([0.0, (4 / 75) / 3.5])


def test_brier_se_without_censoring_is_that_of_the_squared_errors():
    # no censoring: G = 1 and no censoring term, so SE = sd((Y - F)^2) / sqrt(n)
    time = np.array([1.0, 2, 3, 4, 5, 6])
    survival = np.array([0.2, 0.5, 0.4, 0.7, 0.6, 0.9])
    out = brier.brier_score(time, np.ones(6), survival, [3.5])
    squared = np.where(time <= 3.5, survival**2, (1 - survival) ** 2)
    assert out.brier[0] == pytest.approx(squared.mean())
    assert out.se[0] == pytest.approx(squared.std(ddof=1) / np.sqrt(6))


def test_a_horizon_beyond_the_last_follow_up_is_refused():
    with pytest.raises(ValueError, match=r"horizon 9 is beyond the last follow-up \(5\)"):
        brier.brier_score([1.0, 2, 3, 4, 5], [1, 0, 1, 1, 0], np.full((5, 2), 0.5), [3, 9])


def test_survival_outside_0_1_names_the_patients():
    s = pd.DataFrame({"t1": [0.9, 1.2, 0.5], "t2": [0.8, 0.7, -0.1]}, index=["P1", "P2", "P3"])
    with pytest.raises(ValueError, match=r"outside \[0, 1\] in rows P2, P3"):
        brier.brier_score([1.0, 2, 3], [1, 0, 1], s, [1.5, 2.5])


def test_survival_increasing_in_time_names_the_rows():
    s = np.array([[0.9, 0.8], [0.6, 0.7], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"increases with time .* in rows 1$"):
        brier.brier_score([1.0, 2, 3], [1, 0, 1], s, [1.5, 2.5])


def test_horizons_must_increase():
    with pytest.raises(ValueError, match="strictly increasing"):
        brier.brier_score([1.0, 2, 3], [1, 0, 1], np.full((3, 2), 0.5), [2.5, 1.5])
