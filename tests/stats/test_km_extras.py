"""survfit's weighted curves, both hazards, stype=2, every CI and quantile.survfit,
against survival 3.5-3 live through rpy2, and a case worked by hand from the formulas."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from toolkit.stats.survfit import survfit
from toolkit.stats.wald import quantile as z_quantile

_FIELDS = ("n_risk", "n_event", "n_censor", "survival", "std_err", "cumhaz", "std_chaz")
_PROBS = (0.1, 0.25, 0.5, 0.75)


@pytest.fixture(scope="module")
def colon(r):
    frame = r.dataset("colon")
    return frame[frame["etype"] == 2].reset_index(drop=True)  # deaths


def _outcome(frame: pd.DataFrame, name: str):
    code = {"pbc": 2, "lung": 2, "veteran": 1, "colon": 1}[name]
    return frame["time"].to_numpy(float), (frame["status"] == code).to_numpy(float)


def _weights(frame: pd.DataFrame, kind: str | None):
    """None, integer weights (replicates), some zero, or non-integer ones (survfit's robust
    variance)."""
    if kind is None:
        return None
    if kind == "integer":
        return 1.0 + np.arange(len(frame)) % 3
    if kind == "zero":
        return np.where(np.arange(len(frame)) % 4 == 0, 0.0, 1.0)
    return frame["age"].fillna(60).to_numpy(float) / 60


def _assert_same(ours, ref, probs=_PROBS):
    np.testing.assert_array_equal(ours.time, ref["time"])
    for field in _FIELDS:
        np.testing.assert_allclose(getattr(ours, field), ref[field], rtol=0, atol=1e-10)
    for field in ("lower", "upper"):
        np.testing.assert_allclose(getattr(ours, field), ref[field], atol=1e-10, equal_nan=True)
    assert ours.logse == bool(ref["logse"][0])
    q = ours.quantile(probs)
    np.testing.assert_allclose(q.quantile, ref["quantile"], atol=1e-10, equal_nan=True)
    if ours.conf_type != "none":
        np.testing.assert_allclose(q.lower, ref["quantile_lower"], atol=1e-10, equal_nan=True)
        np.testing.assert_allclose(q.upper, ref["quantile_upper"], atol=1e-10, equal_nan=True)


@pytest.mark.parametrize(("stype", "ctype"), list(itertools.product([1, 2], [1, 2])))
@pytest.mark.parametrize("conf_type", ["log", "log-log", "plain", "logit", "arcsin", "none"])
@pytest.mark.parametrize("conf_lower", ["usual", "modified", "peto"])
def test_curve_equals_survfit_on_veteran(r, veteran, stype, ctype, conf_type, conf_lower):
    from toolkit.rbridge.survival import survfit_curve

    time, event = _outcome(veteran, "veteran")
    options = {"stype": stype, "ctype": ctype, "conf_type": conf_type, "conf_lower": conf_lower}
    ours = survfit(time, event, **options)
    _assert_same(ours, survfit_curve(time, event, probs=_PROBS, **options))


@pytest.mark.parametrize(
    ("name", "weights", "options"),
    [
        ("lung", "integer", {"ctype": 2, "conf_type": "log-log"}),
        ("lung", "fraction", {"conf_type": "log-log"}),
        ("pbc", "integer", {"stype": 2, "ctype": 2, "conf_lower": "modified"}),
        ("pbc", "fraction", {"conf_type": "plain", "conf_level": 0.9}),
        ("colon", None, {"ctype": 2, "conf_type": "log-log", "conf_lower": "modified"}),
        ("colon", "fraction", {"conf_type": "plain", "conf_lower": "modified"}),
        ("colon", "integer", {"stype": 2, "conf_type": "log"}),
        ("veteran", "zero", {"stype": 2, "ctype": 2}),
        ("veteran", "zero", {"ctype": 2, "conf_type": "log-log"}),
    ],
)
def test_weighted_curve_equals_survfit(r, name, weights, options, request):
    from toolkit.rbridge.survival import survfit_curve

    frame = request.getfixturevalue(name)
    time, event = _outcome(frame, name)
    w = _weights(frame, weights)
    ours = survfit(time, event, w, **options)
    _assert_same(ours, survfit_curve(time, event, w, probs=_PROBS, **options))
    assert ours.logse == (weights != "fraction")


@pytest.mark.parametrize(("stype", "ctype"), list(itertools.product([1, 2], [1, 2])))
@pytest.mark.parametrize(
    ("name", "weights", "options"),
    [
        ("veteran", None, {"influence": True}),
        ("lung", "fraction", {"conf_type": "log-log"}),
        ("pbc", "integer", {"robust": True, "conf_lower": "modified"}),
        ("colon", "fraction", {"influence": True, "conf_type": "plain"}),
    ],
)
def test_robust_variance_and_influence_equal_survfit(r, name, weights, options, stype, ctype,
                                                     request):  # fmt: skip
    """The infinitesimal jackknife of every stype/ctype, R's logse choice included."""
    from toolkit.rbridge.survival import survfit_curve

    frame = request.getfixturevalue(name)
    time, event = _outcome(frame, name)
    w = _weights(frame, weights)
    ours = survfit(time, event, w, stype=stype, ctype=ctype, **options)
    ref = survfit_curve(time, event, w, stype=stype, ctype=ctype, probs=_PROBS, **options)
    _assert_same(ours, ref)
    assert ours.robust and ours.logse == (ctype == 2)
    if options.get("influence"):
        np.testing.assert_allclose(ours.influence_surv, ref["influence_surv"], atol=1e-10)
        np.testing.assert_allclose(ours.influence_chaz, ref["influence_chaz"], atol=1e-10)
    else:
        assert ours.influence_surv is None and ours.influence_chaz is None


def test_hand_worked_influence(r):
    """Times 1, 2, 3+: the jackknife influences worked by hand.

    t=1 (h = 1/3, S(t-) = 1): every row gets (1/3)/3 = 1/9, the death -1/3 more:
    (-2/9, 1/9, 1/9). t=2 (h = 1/2, S(t-) = 2/3): halved, plus (2/3)(1/2)/2 = 1/6 for
    rows 2 and 3, the death -(2/3)/2: (-1/9, -1/9, 2/9); both have variance 6/81,
    Greenwood's here. Nelson-Aalen: (2/9, -1/9, -1/9), then -1/4 at risk and +1/2 for
    the death: (2/9, 5/36, -13/36).
    """
    from toolkit.rbridge.survival import survfit_curve

    time, event = [1.0, 2.0, 3.0], [1, 1, 0]
    curve = survfit(time, event, influence=True)
    surv = np.array([[-2, -1, -1], [1, -1, -1], [1, 2, 2]]) / 9
    np.testing.assert_allclose(curve.influence_surv, surv, rtol=0, atol=1e-15)
    chaz = np.array([[8, 8, 8], [-4, 5, 5], [-4, -13, -13]]) / 36
    np.testing.assert_allclose(curve.influence_chaz, chaz, rtol=0, atol=1e-15)
    np.testing.assert_allclose(curve.std_err**2, 6 / 81, rtol=1e-14)
    assert not curve.logse
    ref = survfit_curve(time, event, influence=True, probs=_PROBS)
    _assert_same(curve, ref)
    np.testing.assert_allclose(curve.influence_surv, ref["influence_surv"], atol=1e-15)


def test_default_curve_is_kaplan_meier(lung):
    """The defaults give kaplan_meier's curve, SE and log-scale limits."""
    from toolkit.stats.survival import kaplan_meier

    time, event = _outcome(lung, "lung")
    ours, km = survfit(time, event), kaplan_meier(time, event)
    for field in ("time", "n_risk", "n_event", "n_censor", "survival", "std_err"):
        np.testing.assert_allclose(getattr(ours, field), getattr(km, field), rtol=1e-13)
    np.testing.assert_allclose(ours.lower, km.lower, rtol=1e-12, equal_nan=True)
    assert ours.quantile([0.5]).quantile[0] == km.median


def test_integer_weights_are_replicated_rows(veteran):
    """Kaplan-Meier and Nelson-Aalen with weight k equal the data with the row k times."""
    time, event = _outcome(veteran, "veteran")
    w = 1 + np.arange(len(time)) % 3
    weighted = survfit(time, event, w)
    copies = survfit(np.repeat(time, w), np.repeat(event, w))
    for field in (*_FIELDS, "lower", "upper"):
        np.testing.assert_allclose(getattr(weighted, field), getattr(copies, field), rtol=1e-12)


def test_flat_stretch_quantile_is_the_midpoint(r):
    """S = 0.5 on [3, 5): the median is (3 + 5) / 2, as quantile.survfit (and print.survfit)."""
    from toolkit.rbridge.survival import survfit_curve

    time = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    event = np.array([1.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    ours = survfit(time, event, conf_type="log-log")
    assert ours.quantile([0.5]).quantile[0] == 4.0
    _assert_same(ours, survfit_curve(time, event, conf_type="log-log", probs=_PROBS), _PROBS)


def test_hand_worked_weighted_curve(r):
    """Times 1, 2, 2, 3+, 4 with weights 1, 2, 1, 1, 1, worked from the formulas.

    At risk 6, 5, 2, 1; weighted deaths 1, 3 (two rows), 0, 1. KM 5/6, (5/6)(2/5) = 1/3,
    1/3, 0; Greenwood 1/30, 1/30 + 3/10 = 1/3, then infinite. Nelson-Aalen 1/6,
    1/6 + 3/5 = 23/30, 53/30, variance 1/36, 1/36 + 3/25, + 1. Fleming-Harrington at t=2
    lets the two rows (weight 3/2 each on average) leave one at a time:
    (3/2)/5 + (3/2)/(7/2) = 51/70, so 94/105 and 199/105, variance
    1/36 + 3/50 + 6/49. Modified lower limit at t=3: n_lag/n = 5/2, so
    (1/3) exp(-z sqrt(1/3) sqrt(5/2)). Quantiles: 1 - S reaches 1/2 at t=2; 2/3 is
    flat from 2 to the end (4), so the 2/3-quantile is 3.
    """
    from toolkit.rbridge.survival import survfit_curve

    time, event, w = [1, 2, 2, 3, 4], [1, 1, 1, 0, 1], [1, 2, 1, 1, 1]
    na = survfit(time, event, w, conf_lower="modified")
    np.testing.assert_allclose(na.n_risk, [6, 5, 2, 1], rtol=0, atol=0)
    np.testing.assert_allclose(na.n_event, [1, 3, 0, 1], rtol=0, atol=0)
    np.testing.assert_allclose(na.survival, [5 / 6, 1 / 3, 1 / 3, 0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(na.std_err**2, [1 / 30, 1 / 3, 1 / 3, np.inf], rtol=1e-14)
    np.testing.assert_allclose(na.cumhaz, [1 / 6, 23 / 30, 23 / 30, 53 / 30], rtol=1e-14)
    var = np.array([1 / 36, 1 / 36 + 3 / 25, 1 / 36 + 3 / 25, 1 + 1 / 36 + 3 / 25])
    np.testing.assert_allclose(na.std_chaz**2, var, rtol=1e-14)
    z = z_quantile(0.95)
    assert na.lower[2] == pytest.approx(np.exp(-z * np.sqrt(5 / 6)) / 3, rel=1e-14)
    np.testing.assert_allclose(na.quantile([0.5, 2 / 3]).quantile, [2, 3], rtol=0, atol=0)
    fh = survfit(time, event, w, ctype=2, stype=2)
    np.testing.assert_allclose(fh.cumhaz, [1 / 6, 94 / 105, 94 / 105, 199 / 105], rtol=1e-14)
    fh_var = 1 / 36 + 3 / 50 + 6 / 49
    np.testing.assert_allclose(fh.std_chaz**2, [1 / 36, fh_var, fh_var, fh_var + 1], rtol=1e-14)
    np.testing.assert_allclose(fh.survival, np.exp(-fh.cumhaz), rtol=0, atol=0)
    for curve, options in ((na, {"conf_lower": "modified"}), (fh, {"ctype": 2, "stype": 2})):
        _assert_same(curve, survfit_curve(time, event, w, probs=[0.5, 2 / 3], **options),
                     [0.5, 2 / 3])  # fmt: skip


def test_bad_input_is_named():
    time, event = [1.0, 2.0, 3.0], [1, 0, 1]
    rows = pd.Series(time, index=["P1", "P2", "P3"])
    with pytest.raises(ValueError, match=r"weights has 1 negative value \(rows P2\); case"):
        survfit(rows, event, [1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match=r"weights has 1 missing or infinite values \(rows 2\)"):
        survfit(time, event, [1.0, 1.0, np.nan])
    with pytest.raises(ValueError, match="length mismatch: time=3, event=3, weights=2"):
        survfit(time, event, [1.0, 1.0])
    curve = survfit(time, event)
    for bad in (0.0, 1.0, 1.5, -0.2):
        with pytest.raises(ValueError, match=r"probs must lie strictly between 0 and 1, got"):
            curve.quantile([0.5, bad])
    with pytest.raises(ValueError, match="conf_type must be one of"):
        survfit(time, event, conf_type="logg")
    with pytest.raises(ValueError, match="conf_lower must be one of"):
        survfit(time, event, conf_lower="dorey")
    with pytest.raises(ValueError, match="stype and ctype"):
        survfit(time, event, stype=3)
    with pytest.raises(ValueError, match="influence=True needs the robust variance"):
        survfit(time, event, influence=True, robust=False)
