"""Uno's C with the censoring distribution from a training set (``uno_ipcw``) against
scikit-survival's ``concordance_index_ipcw`` (installed beside sigkit), plus a case
worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.stats.concordance import uno, uno_ipcw

C_TOL = 1e-10


def _sksurv(train_time, train_event, time, event, risk, tau=None, tied_tol=1e-8):
    from sksurv.metrics import concordance_index_ipcw
    from sksurv.util import Surv

    train = Surv.from_arrays(np.asarray(train_event) == 1, np.asarray(train_time, float))
    test = Surv.from_arrays(np.asarray(event) == 1, np.asarray(time, float))
    return concordance_index_ipcw(train, test, np.asarray(risk, float), tau, tied_tol)


def _assert_equals_sksurv(ours, ref) -> None:
    assert abs(ours.c - ref[0]) <= C_TOL
    assert (ours.concordant, ours.discordant, ours.tied_risk, ours.tied_time) == tuple(ref[1:])


# ----------------------------------------------------------------------------- by hand

# Training rows (time, event): (1, 0) (2, 1) (3, 0) (4, 1) (5, 0). The censoring's
# Kaplan-Meier, events first at a tie: G = 4/5 from 1, (4/5)(2/3) = 8/15 from 3, 0 at 5.
_TRAIN_TIME, _TRAIN_EVENT = [1, 2, 3, 4, 5], [0, 1, 0, 1, 0]
# Test rows (time, event, risk): A (1.5, 1, .3), B (2, 1, .2), C (3, 0, .2 + 5e-9),
# D (3.5, 1, .05), E (4.5, 0, .4).
_TIME = [1.5, 2.0, 3.0, 3.5, 4.5]
_EVENT = [1, 1, 0, 1, 0]
_RISK = [0.3, 0.2, 0.2 + 5e-9, 0.05, 0.4]


def test_hand_worked_training_censoring_tau_and_tolerance():
    """Weights 1/G(t)^2: A (G(1.5) = 4/5) and B (G(2) = 4/5) 25/16, D (G(3.5) = 8/15)
    225/64. A is above B, C, D and below E (3 of 4); B ties C within 1e-8, is above D
    and below E; D is below E. C = (25/16)(3 + 1 + 1/2) / ((25/16)(4 + 3) + 225/64)
    = 18/37. tau = 3 drops D's weight: 450/700 = 9/14. tied_tol = 0 makes B-C
    discordant: (25/16)(3 + 1) / (925/64) = 16/37."""
    kwargs = {"train_time": _TRAIN_TIME, "train_event": _TRAIN_EVENT}
    fit = uno_ipcw(_TIME, _EVENT, _RISK, **kwargs)
    assert fit.c == pytest.approx(18 / 37, abs=1e-15)
    assert (fit.concordant, fit.discordant, fit.tied_risk, fit.tied_time) == (4, 3, 1, 0)
    assert uno_ipcw(_TIME, _EVENT, _RISK, 3.0, **kwargs).c == pytest.approx(9 / 14, abs=1e-15)
    exact = uno_ipcw(_TIME, _EVENT, _RISK, tied_tol=0.0, **kwargs)
    assert exact.c == pytest.approx(16 / 37, abs=1e-15)
    assert (exact.concordant, exact.discordant, exact.tied_risk) == (4, 4, 0)


def test_hand_worked_case_equals_sksurv():
    for tau in (None, 3.0, 3.5):
        for tol in (1e-8, 0.0, 0.15):
            ours = uno_ipcw(
                _TIME, _EVENT, _RISK, tau, train_time=_TRAIN_TIME, train_event=_TRAIN_EVENT,
                tied_tol=tol,
            )  # fmt: skip
            ref = _sksurv(_TRAIN_TIME, _TRAIN_EVENT, _TIME, _EVENT, _RISK, tau, tol)
            _assert_equals_sksurv(ours, ref)


# ----------------------------------------------------------------------------- real data


def _data(r, name: str, column: str):
    frame = r.dataset(name)
    if name == "colon":
        frame = frame[frame["etype"] == 2]
    d = frame[["time", "status", column]].dropna().reset_index(drop=True)
    death = {"pbc": 2, "lung": 2, "veteran": 1, "colon": 1}[name]
    risk = d[column].to_numpy(float) * (-1.0 if column == "karno" else 1.0)
    return d["time"].to_numpy(float), (d["status"] == death).to_numpy(float), risk


@pytest.mark.parametrize("tied_tol", [1e-8, 0.0, 0.5])
@pytest.mark.parametrize(
    ("name", "column", "tau"),
    [
        ("pbc", "bili", 3000.0),
        ("pbc", "edema", 3000.0),
        ("lung", "age", 600.0),
        ("lung", "ph.ecog", 500.0),
        ("veteran", "karno", 300.0),
        ("colon", "nodes", 2000.0),
    ],
)
def test_training_censoring_equals_sksurv(r, name, column, tau, tied_tol):
    time, event, risk = _data(r, name, column)
    train = np.random.default_rng(11).uniform(size=time.size) < 0.6
    test = ~train
    ours = uno_ipcw(
        time[test], event[test], risk[test], tau, train_time=time[train],
        train_event=event[train], tied_tol=tied_tol,
    )  # fmt: skip
    ref = _sksurv(time[train], event[train], time[test], event[test], risk[test], tau, tied_tol)
    _assert_equals_sksurv(ours, ref)


@pytest.mark.parametrize("name", ["pbc", "lung", "veteran", "colon"])
def test_own_censoring_equals_sksurv_and_differs_from_r_uno_by_design(r, name):
    column = {"pbc": "bili", "lung": "age", "veteran": "karno", "colon": "nodes"}[name]
    time, event, risk = _data(r, name, column)
    for tau in (None, float(np.quantile(time, 0.8))):
        ours = uno_ipcw(time, event, risk, tau)
        _assert_equals_sksurv(ours, _sksurv(time, event, time, event, risk, tau))
    # R's "n/G2" takes G just before each event time: the two are close, not equal
    assert abs(uno_ipcw(time, event, risk).c - uno(time, event, risk).c) < 0.02


@settings(max_examples=60, deadline=None)
@given(
    st.integers(4, 40),
    st.integers(0, 10_000),
    st.sampled_from([0.0, 1e-8, 2e-8, 0.3]),
    st.sampled_from([None, 5.0, 7.0]),
)
def test_risks_near_the_tolerance_tie_as_in_sksurv(n, seed, tied_tol, tau):
    """Risks a few multiples of 1e-8 apart put |r_j - r_i| right at the tolerance, where
    floating point decides; the interval search must decide as sksurv's test does."""
    rng = np.random.default_rng(seed)
    time = rng.integers(1, 9, n).astype(float)
    event = (rng.uniform(size=n) < 0.6).astype(float)
    event[0] = 1.0
    risk = 0.1 + rng.integers(0, 6, n) * 1e-8 * rng.choice([1.0, 0.5, 1.5], n)
    train_time = np.r_[rng.integers(1, 10, 2 * n).astype(float), 9.0]
    train_event = np.r_[(rng.uniform(size=2 * n) < 0.5).astype(float), 0.0]
    try:
        ref = _sksurv(train_time, train_event, time, event, risk, tau, tied_tol)
    except (ValueError, RuntimeWarning):  # sksurv's refusals: no pair, all weights 0
        return
    if not np.isfinite(ref[0]):
        return
    ours = uno_ipcw(
        time, event, risk, tau, train_time=train_time, train_event=train_event,
        tied_tol=tied_tol,
    )  # fmt: skip
    _assert_equals_sksurv(ours, ref)


# ----------------------------------------------------------------------------- bad input


def test_event_after_the_training_data_is_an_error_naming_rows():
    with pytest.raises(ValueError, match=r"1 event times of the test data \(rows 1\).*tau"):
        uno_ipcw([1.0, 6.0, 2.0], [1, 1, 0], [0.3, 0.2, 0.1], train_time=[1, 2, 5],
                 train_event=[0, 0, 1])  # fmt: skip
    with pytest.raises(ValueError, match=r"censoring distribution is 0.*rows 1"):
        uno_ipcw([1.0, 6.0, 7.0], [1, 1, 0], [0.3, 0.2, 0.1], train_time=_TRAIN_TIME,
                 train_event=_TRAIN_EVENT)  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train_time": [1.0, 2.0]}, "both train_time and train_event"),
        ({"train_time": [1.0, -2.0], "train_event": [1, 0]}, r"train_time has 1 negative"),
        ({"tied_tol": -1.0}, "tied_tol must be a finite number >= 0"),
        ({"tau": 1.0}, "no comparable pairs with a positive weight"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        uno_ipcw(_TIME, _EVENT, _RISK, **kwargs)
