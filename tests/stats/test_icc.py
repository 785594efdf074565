"""ICC against psych::ICC(x, lmer=FALSE) on real repeated ratings, live through rpy2."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit.stats.icc import KINDS, icc, icc_many

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges (psych::ICC's example).
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]],
    dtype=float,
)


@pytest.fixture(scope="module")
def karnofsky(lung):
    """Karnofsky score of each lung-cancer patient rated by the physician and the patient."""
    return lung[["ph.karno", "pat.karno"]].dropna()


@pytest.fixture(scope="module")
def judges(r):
    """USJudgeRatings: 43 judges scored by lawyers on 12 scales (treated as raters)."""
    return r.dataset("USJudgeRatings", package="datasets")


def _assert_equals_psych(ours: pd.DataFrame, ratings) -> None:
    from toolkit.rbridge.icc import psych_icc

    ref = psych_icc(ratings)
    assert list(ours.index) == ref["type"] == list(KINDS)
    np.testing.assert_allclose(ours["ICC"], ref["ICC"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours["F"], ref["F"], rtol=1e-10)
    np.testing.assert_array_equal(ours["df1"], ref["df1"])
    np.testing.assert_array_equal(ours["df2"], ref["df2"])
    np.testing.assert_allclose(ours["p"], ref["p"], rtol=1e-8, atol=1e-300)
    np.testing.assert_allclose(ours["lower"], ref["lower"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(ours["upper"], ref["upper"], rtol=0, atol=1e-8)


def test_icc_equals_psych_on_shrout_fleiss(r):
    _assert_equals_psych(icc(SHROUT_FLEISS), SHROUT_FLEISS)


def test_icc_equals_psych_on_lung_karnofsky(r, karnofsky):
    ours = icc(karnofsky)
    _assert_equals_psych(ours, karnofsky.to_numpy())


def test_icc_equals_psych_on_judge_ratings(r, judges):
    _assert_equals_psych(icc(judges), judges.to_numpy())


def test_icc_many_equals_icc_feature_by_feature(karnofsky):
    base = karnofsky.to_numpy()
    rng = np.random.default_rng(0)
    noise = rng.normal(scale=np.linspace(0.0, 30.0, 40), size=(*base.shape, 40))
    stack = base[:, :, None] * np.linspace(0.5, 2.0, 40) + noise
    for kind in KINDS:
        many = icc_many(stack, kind=kind)
        single = [icc(stack[:, :, j]).loc[kind, "ICC"] for j in range(stack.shape[2])]
        np.testing.assert_allclose(many, single, rtol=0, atol=1e-13)


def test_bad_ratings_name_subjects():
    ratings = pd.DataFrame(
        {"a": [1.0, 2.0, np.nan], "b": [1.0, 3.0, 2.0]}, index=["P1", "P2", "P3"]
    )
    with pytest.raises(ValueError, match=r"missing or infinite values for 1 subjects \(P3\)"):
        icc(ratings)
    with pytest.raises(ValueError, match="at least 2 subjects and 2 raters"):
        icc(np.ones((5, 1)))
    with pytest.raises(ValueError, match="kind must be one of"):
        icc_many(np.ones((3, 2, 4)), kind="ICC4")
    with pytest.raises(ValueError, match=r"\(subjects, raters, features\)"):
        icc_many(np.ones((3, 2)))
