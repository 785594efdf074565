"""C-index against survival::concordance 3.5-3 (live through rpy2), plus exact
brute-force counts and hypothesis properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.stats import concordance
from toolkit.stats.concordance import bootstrap_ci, compare, harrell, timefix, uno

C_TOL, SE_TOL, TEST_TOL = 1e-10, 1e-8, 1e-6


def _outcome(frame: pd.DataFrame, name: str, columns: list[str]):
    death = {"pbc": 2, "lung": 2, "veteran": 1}[name]
    d = frame[["time", "status", *columns]].dropna().reset_index(drop=True)
    return d["time"].to_numpy(), (d["status"] == death).astype(float).to_numpy(), d


def _counts(fit) -> np.ndarray:
    return np.array([fit.concordant, fit.discordant, fit.tied_risk, fit.tied_time, fit.tied_both])


def _assert_equals_r(ours, ref) -> None:
    assert abs(ours.c - ref["c"]) <= C_TOL
    assert abs(ours.se - np.sqrt(ref["var"])) <= SE_TOL
    assert abs(ours.variance - ref["var"]) <= SE_TOL**2
    np.testing.assert_allclose(_counts(ours), ref["count"], rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize(
    ("name", "column"),
    [
        ("pbc", "bili"),
        ("pbc", "edema"),  # three values: most pairs tied on risk
        ("pbc", "stage"),
        ("lung", "ph.ecog"),
        ("lung", "age"),
        ("veteran", "karno"),
        ("veteran", "diagtime"),
    ],
)
def test_harrell_equals_r_concordance(r, name, column, request):
    from toolkit.rbridge.concordance import concordance as r_concordance

    time, event, d = _outcome(request.getfixturevalue(name), name, [column])
    risk = d[column].to_numpy()
    ours = harrell(time, event, risk)
    _assert_equals_r(ours, r_concordance(time, event, risk))
    assert ours.n == time.size


def test_harrell_with_case_weights_equals_r(r, pbc):
    from toolkit.rbridge.concordance import concordance as r_concordance

    time, event, d = _outcome(pbc, "pbc", ["bili"])
    weights = np.random.default_rng(7).uniform(0.2, 3.0, time.size)
    ours = harrell(time, event, d["bili"], weights=weights)
    _assert_equals_r(ours, r_concordance(time, event, d["bili"], weights=weights))


def test_harrell_equals_r_on_ten_thousand_rows_with_ties(r):
    """Many wavelet levels, tied times and tied risks at once."""
    from toolkit.rbridge.concordance import concordance as r_concordance

    rng = np.random.default_rng(11)
    n = 10_000
    risk = np.round(rng.normal(size=n), 2)
    time = np.ceil(rng.exponential(np.exp(-risk)) * 50)
    event = (rng.uniform(size=n) < 0.7).astype(float)
    _assert_equals_r(harrell(time, event, risk), r_concordance(time, event, risk))


@pytest.mark.parametrize("tau", [None, 1000.0, 2500.0])
def test_uno_equals_r_n_over_g2(r, pbc, tau):
    from toolkit.rbridge.concordance import concordance as r_concordance

    time, event, d = _outcome(pbc, "pbc", ["bili", "stage"])
    for column in ("bili", "stage"):
        ours = uno(time, event, d[column], tau)
        ref = r_concordance(time, event, d[column], timewt="n/G2", ymax=tau)
        _assert_equals_r(ours, ref)


def test_uno_equals_r_on_veteran(r, veteran):
    from toolkit.rbridge.concordance import concordance as r_concordance

    time, event, d = _outcome(veteran, "veteran", ["karno"])
    ref = r_concordance(time, event, -d["karno"], timewt="n/G2", ymax=300.0)
    _assert_equals_r(uno(time, event, -d["karno"], 300.0), ref)


@pytest.mark.parametrize("name", ["pbc", "lung"])
def test_compare_equals_contrast_of_concordance_of_two_coxph_fits(r, name, request):
    from toolkit.rbridge.concordance import compare_coxph

    columns = {"pbc": ["age", "edema", "bili", "albumin"], "lung": ["age", "sex", "ph.ecog"]}
    time, event, d = _outcome(request.getfixturevalue(name), name, columns[name])
    xa = d[columns[name][:2]].to_numpy()
    xb = d[columns[name]].to_numpy()
    ref = compare_coxph(time, event, xa, xb)
    ours = compare(time, event, ref["lp_a"], ref["lp_b"])
    np.testing.assert_allclose([ours.c_a, ours.c_b], ref["c"], rtol=0, atol=C_TOL)
    assert ours.diff == pytest.approx(ref["diff"], abs=C_TOL)
    assert ours.se_diff == pytest.approx(ref["se"], abs=SE_TOL)
    assert ours.z == pytest.approx(ref["z"], abs=TEST_TOL)
    assert ours.p == pytest.approx(ref["p"], abs=TEST_TOL)


def test_nearly_equal_times_are_merged_as_r_does(r, pbc):
    """1e-10-relative jitter is undone by aeqSurv (R cannot switch it off in 3.5-3)."""
    from toolkit.rbridge.concordance import aeqsurv_twice
    from toolkit.rbridge.concordance import concordance as r_concordance

    time, event, d = _outcome(pbc, "pbc", ["stage"])
    jittered = time + np.where(np.arange(time.size) % 2 == 0, 0.0, 1e-10 * time)
    ours = harrell(jittered, event, d["stage"])
    _assert_equals_r(ours, r_concordance(jittered, event, d["stage"]))
    plain = harrell(time, event, d["stage"])
    assert (ours.c, ours.tied_time) == (plain.c, plain.tied_time)
    np.testing.assert_array_equal(timefix(jittered), aeqsurv_twice(jittered, event))


def _brute_force(time, event, risk, weights):
    """O(n^2) counts and IJ variance straight from the definitions (reverse=TRUE)."""
    ti, tj = time[:, None], time[None, :]
    comparable = (event[:, None] == 1) & ((tj > ti) | ((tj == ti) & (event[None, :] == 0)))
    tied_t = (event[:, None] == 1) & (event[None, :] == 1) & (tj == ti)
    np.fill_diagonal(tied_t, False)
    pair = weights[:, None] * weights[None, :]
    higher_first = risk[:, None] > risk[None, :]
    same = risk[:, None] == risk[None, :]
    conc = comparable & higher_first
    disc = comparable & ~higher_first & ~same
    tied = comparable & same
    counts = [
        (pair * conc).sum(),
        (pair * disc).sum(),
        (pair * tied).sum(),
        (pair * (tied_t & ~same)).sum() / 2,
        (pair * (tied_t & same)).sum() / 2,
    ]
    npair = counts[0] + counts[1] + counts[2]
    somers = (counts[0] - counts[1]) / npair
    per_row = [(weights[None, :] * (a + a.T)).sum(axis=1) for a in (conc, disc, tied)]
    influence = weights * ((per_row[0] - per_row[1]) - somers * sum(per_row)) / npair
    c = (counts[0] + counts[2] / 2) / npair
    return np.array(counts), c, influence @ influence / 4


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=3, max_value=60).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(0, 8), min_size=n, max_size=n),
            st.lists(st.integers(0, 1), min_size=n, max_size=n),
            st.lists(st.integers(-4, 4), min_size=n, max_size=n),
            st.lists(st.integers(1, 3), min_size=n, max_size=n),
        )
    )
)
def test_counts_and_variance_equal_brute_force(data):
    time, event, risk, weights = (np.asarray(v, dtype=float) for v in data)
    event[0] = 1.0
    time[0] = 0.0
    time[1:] += 1.0  # at least one comparable pair
    counts, c, variance = _brute_force(time, event, risk, weights)
    ours = harrell(time, event, risk, weights=weights)
    np.testing.assert_allclose(_counts(ours), counts, rtol=1e-12, atol=1e-9)
    assert ours.c == pytest.approx(c, abs=1e-12)
    assert ours.variance == pytest.approx(variance, abs=1e-14)
    unit = harrell(time, event, risk)
    counts1, c1, variance1 = _brute_force(time, event, risk, np.ones_like(time))
    np.testing.assert_allclose(_counts(unit), counts1, rtol=0, atol=1e-9)
    assert (unit.c, unit.variance) == (pytest.approx(c1, abs=1e-12), pytest.approx(variance1))


def _survival_data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    risk = rng.integers(0, 15, n).astype(float)
    time = rng.integers(1, 20, n).astype(float)
    event = (rng.uniform(size=n) < 0.6).astype(float)
    event[0] = 1.0
    time[0] = 0.5
    return time, event, risk


@settings(max_examples=40, deadline=None)
@given(st.integers(5, 200), st.integers(0, 10_000), st.sampled_from(["affine", "cube", "exp"]))
def test_c_is_invariant_to_monotone_transforms_of_risk(n, seed, transform):
    time, event, risk = _survival_data(n, seed)
    moved = {"affine": 3 * risk - 7, "cube": risk**3, "exp": np.exp(risk / 4)}[transform]
    a, b = harrell(time, event, risk), harrell(time, event, moved)
    assert (a.c, a.concordant, a.tied_risk) == (b.c, b.concordant, b.tied_risk)
    assert a.se == pytest.approx(b.se, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(5, 200), st.integers(0, 10_000))
def test_c_is_invariant_to_row_order(n, seed):
    time, event, risk = _survival_data(n, seed)
    order = np.random.default_rng(seed + 1).permutation(n)
    a, b = harrell(time, event, risk), harrell(time[order], event[order], risk[order])
    np.testing.assert_allclose(_counts(a), _counts(b), rtol=0, atol=0)
    assert a.c == pytest.approx(b.c, abs=1e-14)
    assert a.se == pytest.approx(b.se, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(5, 200), st.integers(0, 10_000))
def test_reversed_risk_gives_one_minus_c_without_tied_risks(n, seed):
    time, event, _ = _survival_data(n, seed)
    risk = np.random.default_rng(seed).permutation(n).astype(float)
    a, b = harrell(time, event, risk), harrell(time, event, -risk)
    assert a.c + b.c == pytest.approx(1.0, abs=1e-14)
    assert (a.concordant, a.discordant) == (b.discordant, b.concordant)
    assert a.se == pytest.approx(b.se, rel=1e-12)


def test_bootstrap_replicates_are_harrell_on_the_resampled_rows(pbc):
    time, event, d = _outcome(pbc, "pbc", ["bili"])
    risk = d["bili"].to_numpy()
    lower, upper, samples = bootstrap_ci(time, event, risk, n_boot=50, seed=3)
    draws = np.random.default_rng(3).integers(0, time.size, size=(50, time.size))
    for k in (0, 17, 49):
        rows = draws[k]
        assert samples[k] == pytest.approx(
            harrell(time[rows], event[rows], risk[rows]).c, abs=1e-12
        )
    assert (lower, upper) == tuple(np.quantile(samples, [0.025, 0.975]))
    again = bootstrap_ci(time, event, risk, n_boot=50, seed=3)
    np.testing.assert_array_equal(again[2], samples)
    assert lower < harrell(time, event, risk).c < upper


def test_bootstrap_blocks_do_not_change_the_replicates(monkeypatch, pbc):
    time, event, d = _outcome(pbc, "pbc", ["bili"])
    one_block = bootstrap_ci(time, event, d["bili"], n_boot=30, seed=5)[2]
    monkeypatch.setattr(concordance, "_BOOTSTRAP_BLOCK_CELLS", 7 * time.size)
    np.testing.assert_array_equal(
        bootstrap_ci(time, event, d["bili"], n_boot=30, seed=5)[2], one_block
    )


@pytest.mark.parametrize(
    ("time", "event", "risk", "message"),
    [
        ([1.0, 2.0, 3.0], [1, 0, 1], [0.1, np.nan, 0.3], r"risk has 1 missing.*rows 1"),
        ([1.0, -2.0, 3.0], [1, 0, 1], [0.1, 0.2, 0.3], r"time has 1 negative.*rows 1"),
        ([1.0, 2.0, 3.0], [1, 2, 1], [0.1, 0.2, 0.3], r"event must be coded 0.*rows 1"),
        ([1.0, 2.0, 3.0], [1, 0], [0.1, 0.2, 0.3], r"length mismatch"),
        ([1.0, 2.0, 3.0], [0, 0, 0], [0.1, 0.2, 0.3], r"no events"),
        ([1.0, np.inf, 3.0], [1, 0, 1], [0.1, 0.2, 0.3], r"time has 1 missing or infinite.*rows 1"),
        ([2.0, 2.0, 2.0], [1, 1, 1], [0.1, 0.2, 0.3], r"no comparable pairs"),
    ],
)
def test_bad_input_raises_naming_rows(time, event, risk, message):
    for function in (harrell, uno, bootstrap_ci):
        with pytest.raises(ValueError, match=message):
            function(np.array(time), np.array(event), np.array(risk))
    with pytest.raises(ValueError, match=message.replace("risk has", "risk_a has")):
        compare(np.array(time), np.array(event), np.array(risk), np.array(risk))


def test_bad_weights_name_rows():
    with pytest.raises(ValueError, match=r"weights must be positive.*rows 2"):
        harrell([1.0, 2.0, 3.0], [1, 0, 1], [0.3, 0.2, 0.1], weights=[1.0, 2.0, 0.0])


def test_pandas_labels_name_patients():
    time = pd.Series([1.0, 2.0, -3.0], index=["P001", "P002", "P003"])
    with pytest.raises(ValueError, match="P003"):
        harrell(time, [1, 0, 1], [0.3, 0.2, 0.1])


def test_harrell_columns_are_harrell_bit_for_bit_and_nan_without_comparable_pairs(pbc):
    """One C per risk column, as :func:`harrell` (weighted or not); NaN, not an error,
    where no pair is comparable; a zero weight leaves its row out of every pair."""
    time, event, d = _outcome(pbc, "pbc", ["bili", "albumin", "edema"])
    risks = d[["bili", "albumin", "edema"]].to_numpy() * [1.0, -1.0, 1.0]
    weights = 1.0 + np.arange(len(time)) % 3
    for w in (None, weights):
        got = concordance.harrell_columns(time, event, risks, w)
        expected = [harrell(time, event, column, w).c for column in risks.T]
        assert got.tolist() == expected
    zero = weights.copy()
    zero[:40] = 0.0
    kept = concordance.harrell_columns(time[40:], event[40:], risks[40:], weights[40:])
    np.testing.assert_array_equal(concordance.harrell_columns(time, event, risks, zero), kept)
    # the only event is the last time: nothing after it to compare with
    alone = concordance.harrell_columns([1.0, 2.0, 3.0], [0.0, 0.0, 1.0], np.eye(3))
    assert np.isnan(alone).all()
