"""Stratified and weighted log-rank tests against survival::survdiff (rho=), live through rpy2,
and cases worked by hand from the formula (Klein & Moeschberger 7.3 for the weights R lacks)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from toolkit.stats.survival import logrank

# Two strata of the hand-worked case: (time, event, group).
_STRATUM_X = [(1, 1, "a"), (2, 1, "b"), (3, 0, "a"), (4, 1, "b")]
_STRATUM_Y = [(2, 1, "a"), (2, 1, "b"), (3, 1, "a")]


@pytest.fixture(scope="module")
def colon(r):
    frame = r.dataset("colon")
    return frame[frame["etype"] == 2].reset_index(drop=True)  # deaths


def _tiny(rows=_STRATUM_X + _STRATUM_Y):
    time = np.array([t for t, _, _ in rows], dtype=float)
    event = np.array([e for _, e, _ in rows], dtype=float)
    group = np.array([g for _, _, g in rows])
    strata = np.array(["x"] * len(_STRATUM_X) + ["y"] * len(_STRATUM_Y))[: len(rows)]
    return time, event, group, strata


def _data(frame: pd.DataFrame, name: str, group: str, strata: str | None):
    frame = frame.dropna(subset=[group] if strata is None else [group, strata])
    code = {"pbc": 2, "lung": 2, "veteran": 1, "colon": 1}[name]
    labels = frame[group]
    labels = labels if isinstance(labels.dtype, pd.CategoricalDtype) else labels.astype(str)
    layer = None if strata is None else frame[strata]
    return frame["time"].to_numpy(), (frame["status"] == code).to_numpy(float), labels, layer


def _assert_equals_survdiff(ours, ref):
    assert ours.chisq == pytest.approx(ref["chisq"][0], rel=1e-10)
    assert ours.p == pytest.approx(ref["p"][0], rel=1e-10)
    assert ours.df == ref["df"][0]
    np.testing.assert_allclose(ours.observed, ref["observed"], rtol=1e-10)
    np.testing.assert_allclose(ours.expected, ref["expected"], rtol=1e-10)
    np.testing.assert_allclose(ours.observed_strata, ref["observed_strata"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.expected_strata, ref["expected_strata"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.variance, ref["variance"], rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(ours.n, ref["n"])
    np.testing.assert_array_equal(ours.n_strata, ref["n_strata"])


@pytest.mark.parametrize(
    ("name", "group", "strata", "rho"),
    [
        ("lung", "sex", "inst", 0.0),
        ("lung", "sex", "inst", 1.0),
        ("lung", "ph.ecog", "sex", 0.5),
        ("veteran", "trt", "celltype", 0.0),
        ("veteran", "trt", "celltype", 1.0),
        ("veteran", "celltype", None, 1.0),
        ("pbc", "trt", "stage", 1.0),
        ("pbc", "edema", None, 2.5),
        ("colon", "rx", "differ", 0.0),
        ("colon", "rx", "sex", 1.0),
    ],
)
def test_stratified_g_rho_equals_survdiff(r, name, group, strata, rho, request):
    from toolkit.rbridge.survival import survdiff

    time, event, labels, layer = _data(request.getfixturevalue(name), name, group, strata)
    ours = logrank(time, event, labels, strata=layer, rho=rho)
    _assert_equals_survdiff(ours, survdiff(time, event, labels, strata=layer, rho=rho))
    assert len(ours.strata) == ours.observed_strata.shape[1] == len(ours.n_strata)


def test_hand_worked_stratified_log_rank_and_peto_peto(r):
    """Two strata, ties across groups; O, E, V and chi-square worked by hand.

    rho = 0. Stratum x: t=1 (n=4, 2 in a, a dies): E_a = 1/2, V = 1/4; t=2 (n=3, 1 in a,
    b dies): E_a = 1/3, V = 2/9; t=4: one at risk, no variance. Stratum y: t=2 (n=3,
    2 in a, one death in each group): E_a = 4/3, V = 2/9; t=3: E_a = 1. O_a = 3,
    E_a = 19/6, V = 25/36, chi-square = (1/6)^2 / (25/36) = 1/25.
    rho = 1 (weights S(t-) of the pooled stratum: x 1, 3/4, 1/2; y 1, 1/3): O_a = 7/3,
    E_a = 29/12, V = 3/8 + 2/9 = 43/72, chi-square = (1/12)^2 / (43/72) = 1/86.
    """
    from toolkit.rbridge.survival import survdiff

    time, event, group, strata = _tiny()
    plain = logrank(time, event, group, strata=strata)
    assert plain.observed[0] == pytest.approx(3, abs=1e-14)
    assert plain.expected[0] == pytest.approx(19 / 6, abs=1e-14)
    assert plain.variance[0, 0] == pytest.approx(25 / 36, abs=1e-14)
    assert plain.chisq == pytest.approx(1 / 25, abs=1e-14)
    np.testing.assert_allclose(plain.expected_strata[0], [5 / 6, 7 / 3], atol=1e-14)
    peto = logrank(time, event, group, strata=strata, rho=1)
    np.testing.assert_allclose(peto.observed, [7 / 3, 9 / 4], atol=1e-14)
    np.testing.assert_allclose(peto.expected, [29 / 12, 9 / 4 + 7 / 3 - 29 / 12], atol=1e-14)
    np.testing.assert_allclose(
        peto.variance, [[43 / 72, -43 / 72], [-43 / 72, 43 / 72]], rtol=0, atol=1e-14
    )
    assert peto.chisq == pytest.approx(1 / 86, abs=1e-14)
    for rho, ours in ((0.0, plain), (1.0, peto)):
        _assert_equals_survdiff(ours, survdiff(time, event, group, strata=strata, rho=rho))


def test_hand_worked_tarone_ware_and_fleming_harrington():
    """Weights survdiff lacks (Klein & Moeschberger 2003, 7.3), on stratum x alone.

    Tarone-Ware w = sqrt(n): t=1 w=2, t=2 w=sqrt(3), t=4 w=1: O_a = 2,
    E_a = 1 + sqrt(3)/3, V = 4/4 + 3 (2/9) = 5/3. Fleming-Harrington (p, q) = (0, 1),
    w = 1 - S(t-): 0, 1/4, 1/2: O_a = 0, E_a = 1/12, V = (1/16)(2/9) = 1/72,
    chi-square = 1/2.
    """
    time, event, group, _ = _tiny(_STRATUM_X)
    tarone = logrank(time, event, group, weight="tarone-ware")
    assert tarone.observed[0] == pytest.approx(2, abs=1e-14)
    assert tarone.expected[0] == pytest.approx(1 + np.sqrt(3) / 3, abs=1e-14)
    assert tarone.variance[0, 0] == pytest.approx(5 / 3, abs=1e-14)
    assert tarone.chisq == pytest.approx((1 - 1 / np.sqrt(3)) ** 2 * 3 / 5, abs=1e-14)
    fh = logrank(time, event, group, rho=0, gamma=1)
    assert fh.observed[0] == 0
    assert fh.expected[0] == pytest.approx(1 / 12, abs=1e-14)
    assert fh.variance[0, 0] == pytest.approx(1 / 72, abs=1e-14)
    assert fh.chisq == pytest.approx(1 / 2, abs=1e-14)
    assert fh.p == pytest.approx(math.erfc(0.5), abs=1e-14)  # chi-square 1/2 on 1 df


def test_default_is_the_unstratified_log_rank(veteran):
    """No strata and rho = 0 give the plain test, every number the same."""
    time, event, labels, _ = _data(veteran, "veteran", "celltype", None)
    plain = logrank(time, event, labels)
    one = logrank(time, event, labels, strata=np.ones(len(time)), rho=0)
    for field in ("chisq", "observed", "expected", "variance"):
        np.testing.assert_array_equal(getattr(plain, field), getattr(one, field))
    assert plain.strata == ("all",)
    assert plain.observed_strata.shape == (4, 1)


def test_bad_input_is_named():
    time, event, group, strata = _tiny()
    with pytest.raises(ValueError, match=r"rho must be a finite number >= 0, got -1"):
        logrank(time, event, group, rho=-1)
    with pytest.raises(ValueError, match=r"gamma must be a finite number >= 0, got nan"):
        logrank(time, event, group, gamma=float("nan"))
    labels = pd.Series(strata, index=[f"P{i}" for i in range(len(time))], dtype=object)
    labels.iloc[[2, 5]] = np.nan
    with pytest.raises(ValueError, match=r"strata has 2 missing.*\(rows P2, P5\)"):
        logrank(time, event, group, strata=labels)
    numeric = np.where(strata == "x", 1.0, np.nan)
    with pytest.raises(ValueError, match=r"strata has 3 missing.*rows 4, 5, 6"):
        logrank(time, event, group, strata=numeric)
    with pytest.raises(ValueError, match="length mismatch"):
        logrank(time, event, group, strata=strata[:3])
    with pytest.raises(ValueError, match="weight must be"):
        logrank(time, event, group, weight="gehan")
    with pytest.raises(ValueError, match="Tarone-Ware weight takes no rho"):
        logrank(time, event, group, rho=1, weight="tarone-ware")
