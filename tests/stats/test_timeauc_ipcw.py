"""Cumulative/dynamic AUC(t) with the censoring distribution from a training set
(``time_auc_ipcw``) against scikit-survival's ``cumulative_dynamic_auc`` (installed
beside sigkit), plus a case worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.stats.timeauc import time_auc_ipcw

AUC_TOL = 1e-10


def _sksurv(train_time, train_event, time, event, risk, times, tied_tol=1e-8):
    from sksurv.metrics import cumulative_dynamic_auc
    from sksurv.util import Surv

    train = Surv.from_arrays(np.asarray(train_event) == 1, np.asarray(train_time, float))
    test = Surv.from_arrays(np.asarray(event) == 1, np.asarray(time, float))
    return cumulative_dynamic_auc(train, test, np.asarray(risk, float), times, tied_tol=tied_tol)


def _assert_equals_sksurv(ours, ref) -> None:
    np.testing.assert_allclose(ours.auc, ref[0], rtol=0, atol=AUC_TOL)
    assert abs(ours.mean_auc - ref[1]) <= AUC_TOL


# ----------------------------------------------------------------------------- by hand

# Training rows (time, event): (1, 0) (2, 1) (3, 0) (4, 1) (5, 0): the censoring's
# Kaplan-Meier is 4/5 from 1 and 8/15 from 3. Test rows (time, event, risk):
# A (1.5, 1, .3), B (2, 1, .2), C (3, 0, .2 + 5e-9), D (3.5, 1, .05), E (4.5, 0, .1).
_TRAIN = ([1, 2, 3, 4, 5], [0, 1, 0, 1, 0])
_TIME = [1.5, 2.0, 3.0, 3.5, 4.5]
_EVENT = [1, 1, 0, 1, 0]
_RISK = [0.3, 0.2, 0.2 + 5e-9, 0.05, 0.1]


def test_hand_worked_auc_and_mean():
    """t = 2.5: cases A, B weigh 1/G = 5/4; controls C, D, E. A is above all three, B ties
    C (within 1e-8) and is above D, E: AUC = (3 + 2.5) / (2 * 3) = 11/12. t = 4: cases
    A, B (5/4) and D (1/G(3.5) = 15/8), control E: AUC = (5/4 + 5/4) / (35/8) = 4/7.
    Test KM: S(2.5) = 3/5, S(4) = 3/10, so mean = (11/12 (2/5) + 4/7 (3/10)) / (7/10)
    = 113/147. tied_tol = 0: B is below C, AUC(2.5) = 5/6."""
    kwargs = {"train_time": _TRAIN[0], "train_event": _TRAIN[1]}
    fit = time_auc_ipcw(_TIME, _EVENT, _RISK, [4.0, 2.5], **kwargs)
    np.testing.assert_array_equal(fit.times, [2.5, 4.0])
    np.testing.assert_allclose(fit.auc, [11 / 12, 4 / 7], rtol=0, atol=1e-15)
    assert fit.mean_auc == pytest.approx(113 / 147, abs=1e-15)
    exact = time_auc_ipcw(_TIME, _EVENT, _RISK, [2.5], tied_tol=0.0, **kwargs)
    assert exact.auc[0] == pytest.approx(5 / 6, abs=1e-15)
    assert exact.mean_auc == exact.auc[0]


def test_hand_worked_case_equals_sksurv():
    for tol in (1e-8, 0.0, 0.15):
        for times in ([2.5], [2.5, 4.0], [1.5, 3.0, 4.0]):
            ours = time_auc_ipcw(
                _TIME, _EVENT, _RISK, times, train_time=_TRAIN[0], train_event=_TRAIN[1],
                tied_tol=tol,
            )  # fmt: skip
            _assert_equals_sksurv(ours, _sksurv(*_TRAIN, _TIME, _EVENT, _RISK, times, tol))


# ----------------------------------------------------------------------------- real data


def _data(r, name: str, columns: list[str]):
    frame = r.dataset(name)
    if name == "colon":
        frame = frame[frame["etype"] == 2]
    d = frame[["time", "status", *columns]].dropna().reset_index(drop=True)
    death = {"pbc": 2, "lung": 2, "veteran": 1, "colon": 1}[name]
    return d["time"].to_numpy(float), (d["status"] == death).to_numpy(float), d


_CASES = [
    ("pbc", ["bili", "edema", "albumin"], [500.0, 1000.0, 2000.0, 3000.0]),
    ("lung", ["ph.ecog", "age", "sex"], [100.0, 200.0, 365.0, 500.0]),
    ("veteran", ["karno", "age", "diagtime"], [30.0, 90.0, 180.0]),
    ("colon", ["nodes", "extent", "age"], [365.0, 1000.0, 2000.0]),
]


@pytest.mark.parametrize("tied_tol", [1e-8, 0.0, 0.5])
@pytest.mark.parametrize(("name", "columns", "times"), _CASES)
def test_training_censoring_equals_sksurv(r, name, columns, times, tied_tol):
    time, event, d = _data(r, name, columns)
    train = np.random.default_rng(5).uniform(size=time.size) < 0.6
    test = ~train
    train_max = time[train].max()
    test &= time <= train_max  # sksurv needs the test events inside the training follow-up
    sign = -1.0 if columns[0] == "karno" else 1.0
    risk = sign * d[columns[0]].to_numpy(float)
    # a predicted-risk matrix: one column per horizon, with its own ties and order
    x = d[columns].to_numpy(float)
    matrix = np.column_stack([x @ np.array([sign, 0.01 * k, 0.001]) for k in range(len(times))])
    for score in (risk, matrix):
        ours = time_auc_ipcw(
            time[test], event[test], score[test], times, train_time=time[train],
            train_event=event[train], tied_tol=tied_tol,
        )  # fmt: skip
        ref = _sksurv(time[train], event[train], time[test], event[test], score[test], times,
                      tied_tol)  # fmt: skip
        _assert_equals_sksurv(ours, ref)


@pytest.mark.parametrize(("name", "columns", "times"), _CASES)
def test_own_censoring_equals_sksurv(r, name, columns, times):
    time, event, d = _data(r, name, columns)
    risk = d[columns[0]].to_numpy(float)
    ours = time_auc_ipcw(time, event, risk, times)
    _assert_equals_sksurv(ours, _sksurv(time, event, time, event, risk, times))


@settings(max_examples=60, deadline=None)
@given(st.integers(6, 40), st.integers(0, 10_000), st.sampled_from([0.0, 1e-8, 2e-8, 0.3]))
def test_risks_near_the_tolerance_tie_as_in_sksurv(n, seed, tied_tol):
    rng = np.random.default_rng(seed)
    time = rng.integers(1, 9, n).astype(float)
    event = (rng.uniform(size=n) < 0.6).astype(float)
    time[:2], event[:2] = [1.0, 9.0], [1.0, 0.0]
    risk = 0.1 + rng.integers(0, 6, n) * 1e-8 * rng.choice([1.0, 0.5, 1.5], n)
    train_time = np.r_[rng.integers(1, 10, 2 * n).astype(float), 10.0]
    train_event = np.r_[(rng.uniform(size=2 * n) < 0.5).astype(float), 0.0]
    times = [2.0, 4.5, 7.0]
    ours = time_auc_ipcw(time, event, risk, times, train_time=train_time,
                         train_event=train_event, tied_tol=tied_tol)  # fmt: skip
    _assert_equals_sksurv(ours, _sksurv(train_time, train_event, time, event, risk, times,
                                        tied_tol))  # fmt: skip


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((_RISK, [4.5]), {}, r"all times must lie in the follow-up of the test data"),
        ((_RISK, [1.0]), {}, r"all times must lie in the follow-up"),
        ((_RISK, [1.6]), {"train_time": [1, 2, 3], "train_event": [0, 1, 1]},
         r"test events after the last training time 3 \(rows 3\)"),
        ((_RISK, [1.6]), {"train_time": [1, 2, 3], "train_event": [0, 1, 0]},
         r"censoring distribution is 0 at the event times of rows 3"),
        ((np.ones((5, 2)), [2.5, 2.0]), {}, r"one column per horizon, horizons strictly"),
        ((_RISK, [2.5]), {"train_time": [1.0]}, "both train_time and train_event"),
        ((_RISK, [2.5]), {"tied_tol": float("nan")}, "tied_tol must be a finite number"),
    ],
)  # fmt: skip
def test_bad_input(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        time_auc_ipcw(_TIME, _EVENT, *args, **kwargs)


def test_a_horizon_without_a_case_is_named():
    with pytest.raises(ValueError, match=r"no event by time 1\.2"):
        time_auc_ipcw([1.0, 2.0, 3.0, 4.0], [0, 1, 1, 0], [0.1, 0.2, 0.3, 0.4], [1.2])
