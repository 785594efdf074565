"""Kaplan-Meier and concordance on counting-process (start, stop] data (``entry=``)
against survival 3.5-3's ``survfit`` and ``concordance`` live through rpy2, on the
``heart`` (jasa1) and ``cgd`` data, plus a case worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.stats.concordance import concordance_fit
from toolkit.stats.survfit import survfit

TOL = 1e-10
_CURVE = ("time", "n_risk", "n_event", "n_censor", "survival", "std_err", "cumhaz", "std_chaz")

# ----------------------------------------------------------------------------- by hand

# Five rows (start, stop, event, risk):
#   a (0, 2, 1, 5)   b (0, 3, 0, 1)   c (2, 4, 1, 3)   d (1, 5, 0, 2)   e (3, 6, 1, 4)
# c starts at a's event time 2 and e at b's censoring time 3: neither is at risk there.
_START = [0, 0, 2, 1, 3]
_STOP = [2, 3, 4, 5, 6]
_EVENT = [1, 0, 1, 0, 1]
_RISK = [5, 1, 3, 2, 4]


def test_hand_worked_curve_on_start_stop_rows():
    """At risk (start < t <= stop) at 2, 3, 4, 5, 6: {a, b, d}, {b, c, d}, {c, d, e},
    {d, e}, {e}. KM: 2/3 at 2, (2/3)(2/3) = 4/9 at 4, 0 at 6; Greenwood's var of
    -log S: 1/6, then 1/6 + 1/6 = 1/3; Nelson-Aalen 1/3, 2/3, 2/3 + 1 = 5/3 with
    variance 1/9, 2/9, 11/9. Ignoring the starts, a would face all five rows."""
    fit = survfit(_STOP, _EVENT, entry=_START)
    np.testing.assert_array_equal(fit.time, [2, 3, 4, 5, 6])
    np.testing.assert_array_equal(fit.n_risk, [3, 3, 3, 2, 1])
    np.testing.assert_array_equal(fit.n_event, [1, 0, 1, 0, 1])
    np.testing.assert_array_equal(fit.n_censor, [0, 1, 0, 1, 0])
    np.testing.assert_allclose(fit.survival, [2 / 3, 2 / 3, 4 / 9, 4 / 9, 0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(
        fit.std_err[:4] ** 2, [1 / 6, 1 / 6, 1 / 3, 1 / 3], rtol=0, atol=1e-15
    )
    assert np.isinf(fit.std_err[4])
    np.testing.assert_allclose(fit.cumhaz, [1 / 3, 1 / 3, 2 / 3, 2 / 3, 5 / 3], atol=1e-15)
    np.testing.assert_allclose(9 * fit.std_chaz**2, [1, 1, 2, 2, 11], rtol=0, atol=1e-14)
    assert survfit(_STOP, _EVENT).n_risk[0] == 5


def test_hand_worked_concordance_on_start_stop_rows():
    """Comparable pairs: a's event at 2 with b and d (risk 5 above both: 2 concordant;
    c is not yet at risk), c's at 4 with d (concordant) and e (risk 4 > 3: discordant),
    none at e's at 6. C = 3/4. R's native counts (1, 3, 0), Somers' d = -1/2; rows'
    native (concordant, discordant) a (0, 2), b (0, 1), c (1, 1), d (0, 2), e (1, 0)
    give dfbeta = ((c - d) + (c + d) / 2) / 4 = (-2, -1, 2, -2, 3) / 8, var =
    22 / 64 / 4. cvar: squared rank sums over {a, b, d} and {c, d, e} are 8 each (N = 3),
    so cvar = (16/3) / (4 * 4^2) = 1/12."""
    fit = concordance_fit(_STOP, _EVENT, _RISK, entry=_START)
    c = fit.concordance
    assert (c.concordant, c.discordant, c.tied_risk, c.tied_time, c.tied_both) == (3, 1, 0, 0, 0)
    assert c.c == 3 / 4
    assert c.variance == pytest.approx(22 / 256, abs=1e-15)
    assert fit.cvar == pytest.approx(1 / 12, abs=1e-15)
    plain = concordance_fit(_STOP, _EVENT, _RISK).concordance
    assert (plain.concordant, plain.discordant) == (5, 1)  # a also outranks c and e


def test_hand_worked_cases_equal_r(r):
    from toolkit.rbridge.startstop import concordance_counting, survfit_counting

    ref = survfit_counting(_START, _STOP, _EVENT)
    fit = survfit(_STOP, _EVENT, entry=_START)
    for name in _CURVE:
        np.testing.assert_allclose(getattr(fit, name), ref[name], rtol=TOL, atol=0)
    ref = concordance_counting(_START, _STOP, _EVENT, _RISK)
    fit = concordance_fit(_STOP, _EVENT, _RISK, entry=_START)
    assert (fit.concordance.c, fit.concordance.variance, fit.cvar) == pytest.approx(
        (ref["c"], ref["var"], ref["cvar"]), abs=1e-15
    )


# ----------------------------------------------------------------------------- bad input


def test_start_at_or_after_stop_names_the_rows():
    with pytest.raises(ValueError, match=r"start >= stop in 2 rows \(rows 1, 3\)"):
        survfit(_STOP, _EVENT, entry=[0, 3, 2, 5, 3])
    with pytest.raises(ValueError, match=r"start >= stop in 2 rows \(rows 1, 3\)"):
        concordance_fit(_STOP, _EVENT, _RISK, entry=[0, 3, 2, 5, 3])


def test_missing_start_names_the_rows():
    with pytest.raises(ValueError, match=r"entry has 1 missing or infinite values \(rows 2\)"):
        survfit(_STOP, _EVENT, entry=[0, 0, np.nan, 1, 3])
    with pytest.raises(ValueError, match=r"entry has 1 missing or infinite values \(rows 2\)"):
        concordance_fit(_STOP, _EVENT, _RISK, entry=[0, 0, np.nan, 1, 3])


def test_start_stop_concordance_refuses_time_weights():
    with pytest.raises(ValueError, match="timewt 'S' is not offered with entry="):
        concordance_fit(_STOP, _EVENT, _RISK, entry=_START, timewt="S")


def test_interval_merged_to_length_zero_is_refused():
    with pytest.raises(ValueError, match=r"timefix tolerance in 1 rows \(rows 0\)"):
        concordance_fit([1e-12, 3, 4], [1, 0, 1], [1, 2, 3], entry=[0, 0, 1])


# ----------------------------------------------------------------------------- against R


def _heart(r):
    heart = r.dataset("heart")  # jasa1: one row per (start, stop] interval of a patient
    transplant = heart["transplant"].astype(str).astype(float).to_numpy()
    columns = {"age": heart["age"].to_numpy(float), "transplant": transplant}
    return (
        heart["start"].to_numpy(),
        heart["stop"].to_numpy(),
        heart["event"].to_numpy(),
        {
            **columns,
            "id": heart["id"].to_numpy(),
            "strata": heart["surgery"].to_numpy(),
        },
    )


def _cgd(r):
    cgd = r.dataset("cgd")  # recurrent infections
    columns = {
        "age": cgd["age"].to_numpy(float),
        "treat": (cgd["treat"].astype(str) == "rIFN-g").to_numpy(float),
        "id": cgd["id"].to_numpy(),
        "strata": cgd["center"].astype(str).to_numpy(),
    }
    start, stop = cgd["tstart"].to_numpy(float), cgd["tstop"].to_numpy(float)
    return start, stop, cgd["status"].to_numpy(float), columns


_DATA = {"heart": _heart, "cgd": _cgd}
_SURVFIT_OPTIONS = [
    {},
    {"stype": 2, "ctype": 2, "conf_type": "log-log"},
    {"ctype": 2, "conf_type": "plain", "conf_lower": "modified"},
    {"influence": True},
    {"influence": True, "stype": 2, "ctype": 2},
    {"case_weights": True},
    {"case_weights": True, "ctype": 2, "conf_lower": "peto"},
]


@pytest.mark.parametrize("options", _SURVFIT_OPTIONS, ids=str)
@pytest.mark.parametrize("name", sorted(_DATA))
def test_start_stop_curve_equals_r(r, name, options):
    """survfit(Surv(start, stop, event) ~ 1, ...): every component at 1e-10 (relative);
    case weights non-integer, so the robust variance with each row its own cluster."""
    from toolkit.rbridge.startstop import survfit_counting

    start, stop, event, _ = _DATA[name](r)
    options = dict(options)
    weights = None
    if options.pop("case_weights", False):
        weights = np.random.default_rng(15).uniform(0.5, 2.0, stop.size)
    fit = survfit(stop, event, weights, entry=start, **options)
    ref = survfit_counting(start, stop, event, weights, **options)
    for field in (*_CURVE, "lower", "upper"):
        np.testing.assert_allclose(getattr(fit, field), ref[field], rtol=TOL, atol=1e-13)
    assert fit.logse == bool(ref["logse"][0])
    if options.get("influence"):
        np.testing.assert_allclose(fit.influence_surv, ref["influence_surv"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(fit.influence_chaz, ref["influence_chaz"], rtol=0, atol=1e-12)


_CONCORDANCE_OPTIONS = [
    {},
    {"cluster": "id"},
    {"strata": "strata"},
    {"strata": "strata", "cluster": "id", "ymax": 300.0},
    {"case_weights": True},
]


_COLUMNS = [("heart", "age"), ("heart", "transplant"), ("cgd", "age"), ("cgd", "treat")]


@pytest.mark.parametrize("options", _CONCORDANCE_OPTIONS, ids=str)
@pytest.mark.parametrize(("name", "column"), _COLUMNS)
def test_start_stop_concordance_equals_r(r, name, column, options):
    """concordance(Surv(start, stop, event) ~ x [+ strata], cluster, weights, ymax,
    reverse=TRUE): C, the counts (per stratum: heart's surgery, cgd's centre), var and
    cvar at 1e-10. transplant is the time-varying covariate, heavily tied."""
    from toolkit.rbridge.startstop import concordance_counting

    start, stop, event, columns = _DATA[name](r)
    options = dict(options)
    kwargs = {key: columns[options[key]] for key in ("strata", "cluster") if key in options}
    if "ymax" in options:
        kwargs["ymax"] = options["ymax"]
    if options.get("case_weights"):
        kwargs["weights"] = np.random.default_rng(6).uniform(0.5, 2.0, stop.size)
    x = columns[column]
    fit = concordance_fit(stop, event, x, entry=start, **kwargs)
    ref = concordance_counting(start, stop, event, x, **kwargs)
    assert abs(fit.concordance.c - ref["c"]) <= TOL
    assert abs(fit.concordance.variance - ref["var"]) <= TOL
    assert abs(fit.cvar - ref["cvar"]) <= TOL
    counts = [
        [s.concordant, s.discordant, s.tied_risk, s.tied_time, s.tied_both] for s in fit.strata
    ]
    np.testing.assert_allclose(counts, ref["count"], rtol=TOL, atol=1e-9)
