"""mRMR ranking: mRMRe's classic survival scheme (against an R re-implementation) and
Peng's MID/MIQ (against pymrmr)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit.stats import mrmr
from validation import datasets

PBC_FEATURES = datasets.MRMR_PBC


@pytest.fixture(scope="module")
def pbc_complete(pbc):
    return datasets.mrmr_pbc(pbc)


@pytest.fixture(scope="module")
def colon_deaths(r):
    return datasets.mrmr_colon(r.dataset("colon"))


def test_somers_d_follows_mrmre_pair_rules_by_hand():
    # Relevant pairs (earlier time is an event): (0,1) (0,2) (0,3) (1,3); the pair
    # (1,2) is tied on time and is not relevant in mRMRe. The pair (0,2) is tied on
    # x: relevant, not concordant. C = 3/4, D = 0.5 (Harrell's rules would give 0.4).
    time = np.array([1.0, 2.0, 2.0, 4.0])
    event = np.array([1.0, 1.0, 0.0, 0.0])
    x = np.array([[5.0], [3.0], [5.0], [1.0]])
    assert mrmr.somers_d(x, time, event)[0] == pytest.approx(0.5, abs=1e-15)
    # Reversing x leaves the tie out of the concordant count again: C = 0, D = -1,
    # so mRMRe's D is not antisymmetric when there are ties on x.
    assert mrmr.somers_d(-x, time, event)[0] == pytest.approx(-1.0, abs=1e-15)


def test_classic_scores_are_mrmre_level_averages_by_hand():
    # Two features: level 2 score = I(x;y) - (I(x;y) + I(x;x1)) / 2 (target in the average).
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 2))
    y = x[:, 0] + 0.5 * x[:, 1] + rng.normal(size=40)
    res = mrmr.rank(x, y, 2)
    r_y = np.array([np.corrcoef(x[:, j], y)[0, 1] for j in range(2)])
    mi_y = -0.5 * np.log(1 - r_y**2)
    mi_12 = -0.5 * np.log(1 - np.corrcoef(x.T)[0, 1] ** 2)
    first = int(np.argmax(mi_y))
    second = 1 - first
    assert list(res.indices) == [first, second]
    np.testing.assert_allclose(res.scores, [mi_y[first], mi_y[second] - (mi_y[second] + mi_12) / 2])
    np.testing.assert_allclose(res.target_association, r_y[[first, second]])


@pytest.mark.parametrize("dataset", ["pbc", "colon"])
def test_classic_selection_equals_mrmre_rules_in_r(dataset, pbc_complete, colon_deaths):
    from toolkit.rbridge import mrmr as r_mrmr

    X, time, event = pbc_complete if dataset == "pbc" else colon_deaths
    k = X.shape[1] - 2
    ours = mrmr.rank(X, (time, event), k)
    ref = r_mrmr.mrmr_classic(X.to_numpy(float), time, event, k)
    np.testing.assert_array_equal(ours.indices, ref["indices"])
    np.testing.assert_allclose(ours.scores, ref["scores"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        mrmr.somers_d(X.to_numpy(float), time, event), ref["somers_d"], rtol=0, atol=1e-14
    )
    assert ours.names == tuple(X.columns[ref["indices"]])


def test_forced_clinical_variables_come_first_and_count_as_chosen(pbc_complete):
    from toolkit.rbridge import mrmr as r_mrmr

    X, time, event = pbc_complete
    force = ["stage", "age"]
    ours = mrmr.rank(X, (time, event), 8, force=force)
    forced_idx = [PBC_FEATURES.index(f) for f in force]
    ref = r_mrmr.mrmr_classic(X.to_numpy(float), time, event, 8, forced=forced_idx)
    assert ours.names[:2] == ("stage", "age")
    assert ours.forced == 2
    np.testing.assert_array_equal(ours.indices, ref["indices"])
    np.testing.assert_allclose(ours.scores, ref["scores"], rtol=1e-12)
    assert list(ours.indices) != list(mrmr.rank(X, (time, event), 8).indices)


def _discretise(x: np.ndarray) -> np.ndarray:
    # Peng's convention: mean +/- sd/2 gives states -1, 0, 1.
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    return np.where(z > 0.5, 1, np.where(z < -0.5, -1, 0))


def _pymrmr(codes: np.ndarray, target: np.ndarray, names: list[str], method: str, k: int):
    import pymrmr

    frame = pd.DataFrame(np.column_stack([target, codes]).astype(int), columns=["y", *names])
    return pymrmr.mRMR(frame, method, k)


@pytest.mark.parametrize("method", ["MID", "MIQ"])
def test_mid_miq_equal_pymrmr_on_discretised_pbc(method, pbc_complete, capfd):
    X, time, event = pbc_complete
    codes = _discretise(X.to_numpy(float))
    target = ((event == 1) & (time < 2000)).astype(int)
    ours = mrmr.rank(codes, target, 8, names=PBC_FEATURES, method=method)
    assert list(ours.names) == _pymrmr(codes, target, PBC_FEATURES, method, 8)
    capfd.readouterr()  # pymrmr prints its tables from C


@pytest.mark.parametrize("method", ["MID", "MIQ"])
def test_mid_miq_equal_pymrmr_on_wide_matrix(method, capfd):
    rng = np.random.default_rng(11)
    n, p = 150, 300
    latent = rng.normal(size=(n, p))
    latent[:, 1:] += 0.7 * latent[:, :-1]
    codes = _discretise(latent)
    target = (latent[:, 0] + latent[:, 10] + rng.normal(size=n) > 0).astype(int)
    names = [f"f{j}" for j in range(p)]
    ours = mrmr.rank(codes, target, 10, names=names, method=method)
    assert list(ours.names) == _pymrmr(codes, target, names, method, 10)
    capfd.readouterr()


def test_constant_and_duplicated_columns_dropped_with_warning():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(30, 3)), columns=["a", "b", "c"])
    X["flat"] = 1.0
    X["b_copy"] = X["b"]
    time = rng.exponential(size=30)
    event = np.ones(30)
    with pytest.warns(UserWarning, match=r"constant: flat; duplicated: b_copy \(= b\)"):
        res = mrmr.rank(X, (time, event), 3)
    assert res.dropped == ("flat", "b_copy")
    assert set(res.names) == {"a", "b", "c"}


def test_perfect_features_are_named_and_never_scored_nan():
    """|Somers' D| = 1 and affine copies give infinite MI: named in warnings, not chosen twice."""
    rng = np.random.default_rng(4)
    time = np.arange(1.0, 41.0)
    event = np.ones(40)
    X = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    X["oracle"] = -time  # the earlier death has the larger value in every pair: D = 1
    X["oracle_too"] = -np.sqrt(time)
    X["a_scaled"] = 2.0 * X["a"] + 3.0  # an affine copy, not a duplicate
    with pytest.warns(UserWarning) as record:
        res = mrmr.rank(X, (time, event), 4)
    messages = " | ".join(str(w.message) for w in record)
    assert "order the outcome perfectly" in messages and "oracle, oracle_too" in messages
    assert res.names[0] == "oracle"
    assert "oracle_too" not in res.names  # NaN score (inf - inf), skipped as mRMRe does
    assert np.isinf(res.scores[0]) and np.isfinite(res.scores[1:]).all()
    assert not {"a", "a_scaled"} <= set(res.names)
    if "a" in res.names or "a_scaled" in res.names:
        assert "perfectly correlated with a chosen one" in messages


def test_an_affine_copy_of_a_numeric_target_has_infinite_relevance_despite_rounding():
    rng = np.random.default_rng(1)
    y = rng.normal(size=37)
    X = pd.DataFrame(rng.normal(size=(37, 3)), columns=["a", "b", "c"])
    X["copy"] = 3.7 * y + 1.3  # r(copy, y) rounds to 1 +- 2e-16
    with pytest.warns(UserWarning, match="order the outcome perfectly.*copy"):
        res = mrmr.rank(X, y, 2)
    assert res.names[0] == "copy" and np.isinf(res.relevance[0])


def test_running_out_of_scorable_features_is_an_error_naming_them():
    rng = np.random.default_rng(5)
    a = rng.normal(size=30)
    X = pd.DataFrame({"a": a, "a2": 2 * a + 1, "a3": 5 - a})
    time = rng.exponential(size=30)
    with pytest.raises(
        ValueError, match=r"cannot choose feature 2 of 2: .*correlated with a chosen"
    ):
        mrmr.rank(X, (time, np.ones(30)), 2)


def test_missing_values_name_column_and_rows():
    X = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0], "b": [1.0, np.nan, 3.0, 5.0]})
    X.index = ["P1", "P2", "P3", "P4"]
    with pytest.raises(ValueError, match=r"a \(rows P3\); b \(rows P2\)"):
        mrmr.rank(X, (np.arange(1.0, 5.0), np.ones(4)), 1)


def test_no_candidates_left_and_bad_k_are_errors():
    X = np.ones((5, 2))
    with (
        pytest.warns(UserWarning, match="constant: x1, x2"),
        pytest.raises(ValueError, match="no candidate features left"),
    ):
        mrmr.rank(X, (np.arange(1.0, 6.0), np.ones(5)), 1)
    Y = np.arange(10.0).reshape(5, 2) ** [1, 2]
    with pytest.raises(ValueError, match="k must be between 1 and 2"):
        mrmr.rank(Y, (np.arange(1.0, 6.0), np.ones(5)), 3)
    with pytest.raises(ValueError, match="forced features not among the columns: z"):
        mrmr.rank(Y, (np.arange(1.0, 6.0), np.ones(5)), 1, force=["z"])


def test_mid_on_undiscretised_data_is_an_error():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"ok": rng.integers(0, 3, 50), "raw": rng.normal(scale=500, size=50)})
    with pytest.raises(ValueError, match="discretise first: raw"):
        mrmr.rank(X, rng.integers(0, 2, 50), 1, method="MID")


def test_forced_perfect_features_score_inf_and_forced_copies_are_refused():
    """A forced feature is scored wherever it comes: infinite relevance with finite
    redundancy is +inf, never mRMRe's inf - inf = NaN; two forced features with
    |r| = 1 have no defined score and are refused by name."""
    rng = np.random.default_rng(7)
    time = rng.exponential(10, 40)
    X = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    X["oracle"] = -time  # D = 1
    X["oracle_scaled"] = 1.0 - 2.0 * time  # an affine copy of oracle
    with pytest.warns(UserWarning) as record:
        res = mrmr.rank(X, (time, np.ones(40)), 4, force=["a", "oracle"])
    messages = " | ".join(str(w.message) for w in record)
    assert "order the outcome perfectly" in messages
    assert "oracle_scaled (~ oracle)" in messages  # infinite redundancy: not eligible
    assert res.names[:2] == ("a", "oracle")
    assert not np.isnan(res.scores).any()
    assert res.scores[1] == np.inf
    with (
        pytest.warns(UserWarning, match="order the outcome perfectly"),
        pytest.raises(ValueError, match="forced features oracle and oracle_scaled are perfectly"),
    ):
        mrmr.rank(X, (time, np.ones(40)), 4, force=["a", "oracle", "oracle_scaled"])
