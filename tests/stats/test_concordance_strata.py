"""Stratified and time-weighted C-index with R's var and cvar (``concordance_fit``)
against survival::concordance 3.5-3 live through rpy2, plus a case worked by hand."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.stats.concordance import concordance_fit, harrell, uno

C_TOL, VAR_TOL = 1e-10, 1e-8
TIME_WEIGHTS = ["n", "S", "S/G", "n/G2", "I"]


def _data(r, name: str, columns: list[str]):
    """Complete cases of a survival dataset: time, event (death), the frame."""
    frame = r.dataset(name)
    if name == "colon":
        frame = frame[frame["etype"] == 2]
    d = frame[["time", "status", *columns]].dropna().reset_index(drop=True)
    death = {"pbc": 2, "lung": 2, "veteran": 1, "colon": 1}[name]
    return d["time"].to_numpy(float), (d["status"] == death).to_numpy(float), d


def _count_rows(fit) -> np.ndarray:
    return np.array(
        [[s.concordant, s.discordant, s.tied_risk, s.tied_time, s.tied_both] for s in fit.strata]
    )


def _assert_equals_r(fit, ref, per_stratum: bool = True) -> None:
    assert abs(fit.concordance.c - ref["c"]) <= C_TOL
    assert abs(fit.concordance.variance - ref["var"]) <= VAR_TOL
    assert abs(fit.cvar - ref["cvar"]) <= VAR_TOL
    if per_stratum:
        np.testing.assert_allclose(_count_rows(fit), ref["count"], rtol=1e-10, atol=1e-9)
    else:
        np.testing.assert_allclose(
            _count_rows(fit).sum(axis=0), ref["count"].ravel(), rtol=1e-10, atol=1e-9
        )


# ----------------------------------------------------------------------------- by hand

# Two strata of four rows, (time, event, risk):
#   a: (1, 1, 3) (2, 1, 1) (2, 0, 2) (3, 1, 2)      b: (1, 0, 5) (2, 1, 4) (3, 1, 4) (4, 0, 1)
# Pairs form within a stratum only. a: the death at 1 (risk 3) outranks all three later
# rows (3 concordant); the death at 2 (risk 1) is below the censoring at 2 and the row at 3
# (2 discordant). b: the death at 2 (risk 4) ties the death at 3 on risk and outranks the
# censoring at 4; the death at 3 outranks it too (2 concordant, 1 tied).
_TIME = [1, 2, 2, 3, 1, 2, 3, 4]
_EVENT = [1, 1, 0, 1, 0, 1, 1, 0]
_RISK = [3, 1, 2, 2, 5, 4, 4, 1]
_STRATA = ["a"] * 4 + ["b"] * 4


def test_hand_worked_stratified_counts_c_variance_and_cvar():
    """timewt "n". C = (5 + 1/2) / 8. IJ: with R's native counts (2, 5, 1), Somers'
    d = -3/8 and each row's (c, d, t) native pair counts, dfbeta_i = ((c - d) + 3/8 (c + d
    + t)) / 8 = (-15, 17, 6, 6, 0, -2, -2, -10) / 64, so var = 694 / 64^2 / 4. cvar: the
    squared risk-set ranks z_i = sum_j sign(x_i - x_j) give z2 / N = 18/4 and 6/3 at a's
    deaths (0 at the last), 6/3 and 2/2 at b's, so cvar = 9.5 / (4 * 8^2)."""
    fit = concordance_fit(_TIME, _EVENT, _RISK, strata=_STRATA)
    assert [s.stratum for s in fit.strata] == ["a", "b"]
    assert [s.n for s in fit.strata] == [4, 4]
    np.testing.assert_array_equal(_count_rows(fit), [[3, 2, 0, 0, 0], [2, 0, 1, 0, 0]])
    assert fit.concordance.c == 11 / 16
    assert fit.concordance.variance == pytest.approx(694 / 64**2 / 4, abs=1e-15)
    assert fit.cvar == pytest.approx(9.5 / 256, abs=1e-15)
    assert (fit.concordance.concordant, fit.concordance.discordant) == (5, 2)


def test_hand_worked_time_weights():
    """ "S": W S(t-) / N(t) with W = 4 per stratum: a's deaths at 1, 2 weigh 4 (1) / 4 and
    4 (3/4) / 3, i.e. 1 and 1; b's at 2, 3 weigh 4 (1) / 3 and 4 (2/3) / 2, i.e. 4/3
    both, so concordant = 3 + 2 (4/3), tied = 4/3, npair = 9, C = 19/27 and cvar =
    (18/4 + 6/3 + (4/3)(6/3 + 2/2)) / (4 * 81). "n/G2": G(t-) of a is 1 at its first
    two deaths, b's censoring at 1 (4 at risk) gives G = 3/4 at both of b's deaths, so
    b's pairs weigh 16/9 and C = (3 + 32/9 + 8/9) / (3 + 32/9 + 2 + 16/9) = 67/93."""
    s = concordance_fit(_TIME, _EVENT, _RISK, strata=_STRATA, timewt="S")
    np.testing.assert_allclose(
        _count_rows(s), [[3, 2, 0, 0, 0], [8 / 3, 0, 4 / 3, 0, 0]], rtol=0, atol=1e-14
    )
    assert s.concordance.c == pytest.approx(19 / 27, abs=1e-15)
    assert s.cvar == pytest.approx(float(Fraction(21, 2) / 324), abs=1e-15)
    g2 = concordance_fit(_TIME, _EVENT, _RISK, strata=_STRATA, timewt="n/G2")
    np.testing.assert_allclose(
        _count_rows(g2), [[3, 2, 0, 0, 0], [32 / 9, 0, 16 / 9, 0, 0]], rtol=0, atol=1e-14
    )
    assert g2.concordance.c == pytest.approx(67 / 93, abs=1e-15)
    # "I": 1 / N(t), i.e. 1/4, 1/3 at a's deaths, 1/3, 1/2 at b's: C = (19/12 + 2/12) / (31/12)
    i = concordance_fit(_TIME, _EVENT, _RISK, strata=_STRATA, timewt="I")
    np.testing.assert_allclose(
        _count_rows(i), [[3 / 4, 2 / 3, 0, 0, 0], [5 / 6, 0, 1 / 3, 0, 0]], rtol=0, atol=1e-15
    )
    assert i.concordance.c == pytest.approx(21 / 31, abs=1e-15)


def test_hand_worked_cluster_sums_influence_before_squaring():
    """Clusters {a1, b1}, {a2, b2}, {a3, b3}, {a4, b4}: the influences above sum to
    (-15, 15, 4, -4) / 64, so var = 482 / 64^2 / 4; C and cvar do not move."""
    fit = concordance_fit(_TIME, _EVENT, _RISK, strata=_STRATA, cluster=[1, 2, 3, 4] * 2)
    assert fit.concordance.variance == pytest.approx(482 / 64**2 / 4, abs=1e-15)
    assert (fit.concordance.c, fit.cvar) == (11 / 16, pytest.approx(9.5 / 256, abs=1e-15))


def test_hand_worked_case_equals_r(r):
    from toolkit.rbridge.concordance import concordance_strata

    for timewt in TIME_WEIGHTS:
        fit = concordance_fit(_TIME, _EVENT, _RISK, strata=_STRATA, timewt=timewt)
        _assert_equals_r(fit, concordance_strata(_TIME, _EVENT, _RISK, _STRATA, timewt=timewt))


# ----------------------------------------------------------------------------- against R

_CASES = [
    ("lung", "age", "sex"),
    ("lung", "ph.ecog", "inst"),  # 18 strata, heavily tied risk
    ("veteran", "karno", "celltype"),
    ("pbc", "bili", "edema"),
    ("pbc", "albumin", "stage"),
    ("colon", "nodes", "rx"),
]


@pytest.mark.parametrize("timewt", TIME_WEIGHTS)
@pytest.mark.parametrize(("name", "column", "stratum"), _CASES)
def test_stratified_time_weighted_equals_r(r, name, column, stratum, timewt):
    from toolkit.rbridge.concordance import concordance_strata

    time, event, d = _data(r, name, [column, stratum])
    risk = d[column].to_numpy(float)
    fit = concordance_fit(time, event, risk, strata=d[stratum], timewt=timewt)
    _assert_equals_r(fit, concordance_strata(time, event, risk, d[stratum], timewt=timewt))
    assert fit.timewt == timewt
    assert sum(s.n for s in fit.strata) == fit.concordance.n == time.size


@pytest.mark.parametrize("timewt", TIME_WEIGHTS)
@pytest.mark.parametrize(("name", "column", "stratum", "ymax"), [
    ("pbc", "bili", "sex", 3000.0),
    ("lung", "age", "sex", 500.0),
    ("veteran", "karno", "trt", None),
    ("colon", "nodes", "sex", 2000.0),
])  # fmt: skip
def test_weighted_and_truncated_equals_r(r, name, column, stratum, ymax, timewt):
    from toolkit.rbridge.concordance import concordance_strata

    time, event, d = _data(r, name, [column, stratum])
    risk = d[column].to_numpy(float)
    weights = np.random.default_rng(15).uniform(0.3, 3.0, time.size)
    fit = concordance_fit(
        time, event, risk, strata=d[stratum], weights=weights, timewt=timewt, ymax=ymax
    )
    ref = concordance_strata(
        time, event, risk, d[stratum], weights=weights, timewt=timewt, ymax=ymax
    )
    _assert_equals_r(fit, ref)


@pytest.mark.parametrize("timewt", TIME_WEIGHTS)
@pytest.mark.parametrize("name", ["lung", "veteran", "pbc", "colon"])
def test_unstratified_time_weights_and_cvar_equal_r(r, name, timewt):
    from toolkit.rbridge.concordance import concordance_strata

    column = {"lung": "age", "veteran": "karno", "pbc": "bili", "colon": "nodes"}[name]
    time, event, d = _data(r, name, [column])
    risk = d[column].to_numpy(float)
    fit = concordance_fit(time, event, risk, timewt=timewt)
    ref = concordance_strata(time, event, risk, np.zeros(time.size), timewt=timewt)
    _assert_equals_r(fit, ref)
    assert [s.stratum for s in fit.strata] == ["all"]


@pytest.mark.parametrize("timewt", ["n", "S/G"])
def test_cluster_equals_r(r, timewt):
    """The centre (lung's inst) as cluster, with and without strata and weights; and
    colon's two rows per patient (recurrence, death) clustered by patient."""
    from toolkit.rbridge.concordance import concordance_strata

    time, event, d = _data(r, "lung", ["age", "sex", "inst"])
    risk = d["age"].to_numpy(float)
    weights = np.random.default_rng(3).uniform(0.5, 2.0, time.size)
    for strata, w in [(d["sex"], None), (d["sex"], weights), (None, None)]:
        fit = concordance_fit(time, event, risk, strata=strata, weights=w, timewt=timewt,
                              cluster=d["inst"])  # fmt: skip
        layer = np.zeros(time.size) if strata is None else strata
        ref = concordance_strata(time, event, risk, layer, weights=w, timewt=timewt,
                                 cluster=d["inst"])  # fmt: skip
        _assert_equals_r(fit, ref)
    colon = r.dataset("colon").dropna(subset=["nodes"]).reset_index(drop=True)
    time, event = colon["time"].to_numpy(float), colon["status"].to_numpy(float)
    risk = colon["nodes"].to_numpy(float)
    fit = concordance_fit(time, event, risk, strata=colon["etype"], timewt=timewt,
                          cluster=colon["id"])  # fmt: skip
    ref = concordance_strata(time, event, risk, colon["etype"], timewt=timewt,
                             cluster=colon["id"])  # fmt: skip
    _assert_equals_r(fit, ref)


def test_more_than_ten_strata_equal_r_default_pooling(r):
    """Past ten strata R's default (keepstrata = 10) reruns timewt "n" as one stratum of
    shifted (start, stop] data; the pooled numbers are the same."""
    from toolkit.rbridge.concordance import concordance_strata

    time, event, d = _data(r, "lung", ["age", "inst"])
    risk = d["age"].to_numpy(float)
    fit = concordance_fit(time, event, risk, strata=d["inst"])
    ref = concordance_strata(time, event, risk, d["inst"], keepstrata=10)
    assert ref["count"].shape == (1, 5)
    _assert_equals_r(fit, ref, per_stratum=False)


_MODELS = [
    ("pbc", ["age", "edema", "bili", "albumin"], None),
    ("pbc", ["age", "bili", "albumin"], "edema"),
    ("lung", ["age", "ph.ecog"], "sex"),
    ("veteran", ["karno", "age", "diagtime"], "celltype"),
    ("colon", ["age", "nodes", "extent"], "rx"),
]


@pytest.mark.parametrize("timewt", ["n", "n/G2"])
@pytest.mark.parametrize(("name", "columns", "stratum"), _MODELS)
def test_concordance_of_a_coxph_fit_var_and_cvar_equal_r(r, name, columns, stratum, timewt):
    """``concordance(coxph_fit)``: C of the linear predictor within the model's strata;
    its var (the printed se) and cvar (kept, not printed) are the formula's on the
    linear predictor, and differ: cvar assumes no association."""
    from toolkit.rbridge.concordance import concordance_coxph

    time, event, d = _data(r, name, columns + ([stratum] if stratum else []))
    layer = None if stratum is None else d[stratum]
    ref = concordance_coxph(time, event, d[columns].to_numpy(float), layer, timewt=timewt)
    fit = concordance_fit(time, event, ref["lp"], strata=layer, timewt=timewt)
    _assert_equals_r(fit, ref)
    assert abs(fit.cvar - fit.concordance.variance) > 1e-6


# ----------------------------------------------------------------------------- consistency


def test_unstratified_harrell_and_uno_are_reproduced_bit_for_bit(r):
    time, event, d = _data(r, "pbc", ["bili", "stage"])
    weights = 1.0 + np.arange(time.size) % 4
    for column in ("bili", "stage"):
        risk = d[column].to_numpy(float)
        assert concordance_fit(time, event, risk).concordance == harrell(time, event, risk)
        assert concordance_fit(time, event, risk, weights=weights).concordance == harrell(
            time, event, risk, weights=weights
        )
        for tau in (None, 2500.0):
            assert concordance_fit(time, event, risk, timewt="n/G2", ymax=tau).concordance == (
                uno(time, event, risk, tau)
            )


@settings(max_examples=30, deadline=None)
@given(st.integers(6, 80), st.integers(0, 10_000), st.sampled_from(TIME_WEIGHTS))
def test_strata_counts_are_each_strata_alone_and_labels_can_be_permuted(n, seed, timewt):
    rng = np.random.default_rng(seed)
    time = rng.integers(1, 9, n).astype(float)
    event = (rng.uniform(size=n) < 0.7).astype(float)
    risk = rng.integers(0, 5, n).astype(float)
    strata = rng.choice(["x", "y", "z"], n)
    # a comparable pair in "x": an event at 0.5 while row 1 is still followed (to 0.75)
    event[:2], time[:2], strata[:2] = 1.0, [0.5, 0.75], "x"
    fit = concordance_fit(time, event, risk, strata=strata, timewt=timewt)
    for s in fit.strata:
        rows = strata == s.stratum
        assert s.n == rows.sum()
        if event[rows].sum() and s.concordant + s.discordant + s.tied_risk > 0:
            alone = concordance_fit(time[rows], event[rows], risk[rows], timewt=timewt)
            got = [s.concordant, s.discordant, s.tied_risk, s.tied_time, s.tied_both]
            np.testing.assert_allclose(got, _count_rows(alone)[0], rtol=1e-12, atol=1e-12)
    order = rng.permutation(n)
    moved = concordance_fit(
        time[order], event[order], risk[order], strata=strata[order], timewt=timewt
    )
    assert moved.concordance.c == pytest.approx(fit.concordance.c, abs=1e-13)
    assert moved.concordance.variance == pytest.approx(fit.concordance.variance, rel=1e-10)
    assert moved.cvar == pytest.approx(fit.cvar, rel=1e-10)


def test_a_categorical_keeps_its_level_order():
    strata = pd.Categorical(_STRATA, categories=["b", "a"])
    fit = concordance_fit(_TIME, _EVENT, _RISK, strata=strata)
    assert [s.stratum for s in fit.strata] == ["b", "a"]
    assert fit.concordance.c == 11 / 16


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("strata", "message"),
    [
        (["a", "a", np.nan, "a", "b", "b", "b", "b"], r"strata has 1 missing.*rows 2"),
        ([1.0, 1.0, 1.0, None, 2.0, np.nan, 2.0, 2.0], r"strata has 2 missing.*rows 3, 5"),
        (["a"] * 7, r"strata must be one label per row: 7 labels for 8 rows"),
    ],
)
def test_bad_strata_name_rows(strata, message):
    with pytest.raises(ValueError, match=message):
        concordance_fit(_TIME, _EVENT, _RISK, strata=strata)


def test_bad_cluster_names_rows():
    with pytest.raises(ValueError, match=r"cluster has 1 missing labels.*rows 4"):
        concordance_fit(_TIME, _EVENT, _RISK, cluster=[1, 1, 2, 2, None, 3, 3, 3])
    with pytest.raises(ValueError, match=r"cluster must be one label per row: 3 labels"):
        concordance_fit(_TIME, _EVENT, _RISK, cluster=[1, 2, 3])


def test_missing_stratum_label_names_the_patient():
    strata = pd.Series(_STRATA, index=[f"P{i:03d}" for i in range(8)]).where(
        lambda s: s.index != "P006"
    )
    with pytest.raises(ValueError, match=r"strata has 1 missing.*P006"):
        concordance_fit(_TIME, _EVENT, _RISK, strata=strata)


@pytest.mark.parametrize(
    ("timewt", "message"),
    [
        ("n/G", r"unknown timewt 'n/G'.*has no 'n/G'.*'n/G2'"),
        ("i", r"unknown timewt 'i': use one of 'n', 'S', 'S/G', 'n/G2', 'I'"),
        ("uno", r"unknown timewt 'uno'"),
    ],
)
def test_unknown_timewt_is_named(timewt, message):
    with pytest.raises(ValueError, match=message):
        concordance_fit(_TIME, _EVENT, _RISK, timewt=timewt)


def test_bad_ymax_and_no_pairs():
    with pytest.raises(ValueError, match="ymax must be a finite time"):
        concordance_fit(_TIME, _EVENT, _RISK, ymax=float("nan"))
    with pytest.raises(ValueError, match="no comparable pairs"):
        concordance_fit(_TIME, _EVENT, _RISK, strata=_STRATA, ymax=0.5)
