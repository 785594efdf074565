"""Bootstrap validation of a Cox model against rms::validate 6.5-0 (live through rpy2),
on R's resamples, plus the indexes worked by hand and the batched fits against cox.newton."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit.stats import _resampled_cox, cox
from toolkit.stats.validate import (
    COLUMNS,
    INDEXES,
    gini_mean_difference,
    somers_dxy,
    validate_cox,
)

TOL = 1e-8
GOLDEN = (1 + np.sqrt(5)) / 2


def _pbc(pbc):
    d = pbc.dropna(subset=["age", "bili", "albumin", "edema", "protime"]).reset_index(drop=True)
    x = np.column_stack([d["age"], np.log(d["bili"]), d["albumin"], d["edema"], d["protime"]])
    return x, d["time"].to_numpy(), (d["status"] == 2).astype(float).to_numpy()


def _lung(lung):
    columns = ["age", "sex", "ph.ecog", "wt.loss"]
    d = lung.dropna(subset=columns).reset_index(drop=True)
    return d[columns].to_numpy(float), d["time"].to_numpy(), (d["status"] == 2).astype(float)


def _assert_equal_to_rms(ours, ref):
    table, expected = ours.table, ref["table"]
    assert list(table.index) == list(INDEXES) == list(expected.index)
    assert list(table.columns) == list(COLUMNS) == list(expected.columns)
    values = [c for c in COLUMNS if c != "n"]
    np.testing.assert_allclose(table[values], expected[values], rtol=0, atol=TOL)
    np.testing.assert_array_equal(table["n"], expected["n"])
    np.testing.assert_allclose(ours.coef, ref["coef"], rtol=1e-10)


@pytest.mark.parametrize("data", ["pbc", "lung"])
def test_validate_equals_rms_on_r_resamples(r, pbc, lung, data):
    """index.orig and every averaged column equal rms::validate's at 1e-8, for the
    resamples that validate itself draws after set.seed (R draws them, we reuse them)."""
    from toolkit.rbridge.validate import rms_validate

    x, time, event = _pbc(pbc) if data == "pbc" else _lung(lung)
    ref = rms_validate(x, time, event, B=200, seed=20261204)
    ours = validate_cox(x, time, event, resamples=ref["resamples"])
    _assert_equal_to_rms(ours, ref)
    assert ours.failed == () and ref["said"] == []
    assert ours.n_resamples == 200


def test_failed_resamples_are_left_out_as_rms_does(r, pbc):
    """A covariate non-zero in 3 patients is constant in some resamples: coxph's
    information is singular there, rms leaves them out; so do we, and name them."""
    from toolkit.rbridge.validate import rms_validate

    x, time, event = _pbc(pbc)
    rare = np.zeros(len(time))
    rare[[np.flatnonzero(event == 1)[5], *np.flatnonzero(event == 0)[[5, 40]]]] = 1
    x = np.column_stack([x[:, 1:3], rare])
    ref = rms_validate(x, time, event, B=100, seed=3)
    ours = validate_cox(x, time, event, resamples=ref["resamples"])
    _assert_equal_to_rms(ours, ref)
    assert ref["said"][-1] == f"Divergence or singularity in {len(ours.failed)} samples"
    assert len(ours.failed) == 2
    for failure in ours.failed:
        assert failure.reason.endswith("(x3 constant in the resample)")
        assert rare[ref["resamples"][failure.resample]].max() == 0


# --------------------------------------------------------------------------- by hand

# Four patients: events at t = 1 (x = 2) and t = 2 (x = 0); x = 1 censored at 3 and 3.5.
# L(b) = e^{2b} / (e^{2b} + 2 e^b + 1) * 1 / (1 + 2 e^b); with u = e^b the score is
# 2 / (u + 1) - 2u / (1 + 2u) = 0, so u^2 = u + 1: u = golden ratio, and
# log L = 2 ln u - 2 ln(u + 1) - ln(1 + 2u) = 2 ln u - 4 ln u - 3 ln u = -5 ln u
# (u + 1 = u^2, 1 + 2u = u^3). At b = 0: L = 1/4 * 1/3.
HAND_X = np.array([[2.0], [0.0], [1.0], [1.0]])
HAND_TIME = np.array([1.0, 2.0, 3.0, 3.5])
HAND_EVENT = np.array([1.0, 1.0, 0.0, 0.0])


def test_index_orig_worked_by_hand():
    n, beta = 4, np.log(GOLDEN)
    loglik, null = -5 * np.log(GOLDEN), -np.log(12.0)
    lr, l0 = 2 * (loglik - null), -2 * null
    d, u = (lr - 1) / l0, -2 / l0
    # Dxy: patient 1 vs 2, 3, 4 concordant (3 pairs), patient 2 vs 3, 4 discordant (2)
    # g: Gini's mean difference of beta * (2, 0, 1, 1) = beta * (2+1+1+1+1+0) / 6
    expected = {
        "Dxy": (3 - 2) / 5,
        "R2": (1 - np.exp(-lr / n)) / (1 - np.exp(-l0 / n)),
        "Slope": 1.0,
        "D": d,
        "U": u,
        "Q": d - u,
        "g": beta * 6 / 6,
    }
    # coxphFit stops at a relative log-likelihood change of 1e-4: its coefficient is
    # 6e-5 short of ln(golden ratio), its log-likelihood about 1e-9 short of -5 ln u
    same = np.tile(np.arange(4), (20, 1))  # 20 resamples that are the data itself
    out = validate_cox(HAND_X, HAND_TIME, HAND_EVENT, resamples=same)
    assert out.coef[0] == pytest.approx(beta, abs=1e-4)
    table = out.table
    for index, value in expected.items():
        tolerance = 1e-4 if index == "g" else 1e-8
        assert table.loc[index, "index.orig"] == pytest.approx(value, abs=tolerance), index
    assert table.loc["g", "index.orig"] == pytest.approx(out.coef[0], abs=1e-15)
    # each resample is the data: training = apparent; the refit's slope is 1 and its
    # U = 0 (training's U is -2 / L0 by definition), so only U and Q carry optimism
    np.testing.assert_allclose(table["training"], table["index.orig"], atol=1e-12)
    assert table.loc["Slope", "test"] == pytest.approx(1.0, abs=1e-12)
    assert table.loc["U", "test"] == pytest.approx(0.0, abs=1e-12)
    optimism = table["optimism"]
    np.testing.assert_allclose(optimism.drop(["U", "Q"]), 0.0, atol=1e-12)
    assert optimism["U"] == pytest.approx(u, abs=1e-12)
    assert optimism["Q"] == pytest.approx(-u, abs=1e-12)
    assert list(table["n"]) == [20] * 7


def test_dxy_and_gini_of_copied_rows_worked_by_hand():
    time = np.array([1.0, 2.0, 2.0, 3.0, 4.0])
    event = np.array([1.0, 1.0, 0.0, 1.0, 0.0])
    risk = np.array([[3.0, 1.0, 2.0, 1.0, 0.0]])
    # row 1 vs 2..5: 4 concordant; row 2 vs 3 (censored at its time): discordant, vs 4: tied
    # risk, vs 5: concordant; row 4 vs 5: concordant -> (6 - 1) / 8
    assert somers_dxy(time, event, risk)[0] == pytest.approx(5 / 8, abs=1e-15)
    # row 2 drawn twice: its copies tie in time (no pair); row 1 vs 5 copies: 5 concordant,
    # each copy of row 2: 1 discordant, 1 tied, 1 concordant; row 4 vs 5: concordant
    counts = np.array([[1.0, 2.0, 1.0, 1.0, 1.0]])
    assert somers_dxy(time, event, risk, counts)[0] == pytest.approx((8 - 2) / 12, abs=1e-15)
    # mean |v_i - v_j| over the 6 pairs of (2, 0, 1, 1) is 6 / 6; of (3, 0, 0): 6 / 3
    assert gini_mean_difference(np.array([[2.0, 0.0, 1.0, 1.0]]))[0] == pytest.approx(1.0)
    copies = gini_mean_difference(np.array([[3.0, 0.0]]), np.array([[1.0, 2.0]]))
    assert copies[0] == pytest.approx(2.0, abs=1e-15)


def test_resampled_fits_equal_cox_newton_on_the_copied_rows():
    """The batched fits are cox.newton's on the copied rows (tied copies: Efron steps)."""
    rng = np.random.default_rng(7)
    n = 60
    x = rng.normal(size=(n, 3))
    time = np.ceil(rng.exponential(np.exp(-x @ [0.6, -0.4, 0.2])) * 6)  # many tied times
    event = (rng.random(n) < 0.7).astype(float)
    draws = rng.integers(0, n, size=(8, n))
    centred = x - x.mean(axis=0)
    risk, order = cox.risk_sets(centred, time, event, np.ones(n), np.zeros(n, int), "efron")
    counts = np.stack([np.bincount(d, minlength=n) for d in draws]).astype(float)
    fits = _resampled_cox.newton(risk, risk.x, counts[:, order], 1e-9, 20)
    for b, rows in enumerate(draws):
        xb = x[rows] - x[rows].mean(axis=0)
        copied, _ = cox.risk_sets(
            xb, time[rows], event[rows], np.ones(n), np.zeros(n, int), "efron"
        )
        start = cox.partial_likelihood(copied, np.zeros(3))
        one = cox.newton(copied, start, 1e-9, 20)
        np.testing.assert_allclose(fits.beta[b], one.beta, rtol=1e-10, atol=1e-12)
        assert fits.loglik[b] == pytest.approx(one.loglik, rel=1e-12)
        assert fits.loglik_null[b] == pytest.approx(start[0], rel=1e-12)
        np.testing.assert_allclose(fits.information[b], one.information, rtol=1e-9)
        assert fits.iterations[b] == one.iterations and fits.converged[b] == one.converged


# --------------------------------------------------------------------------- bad input


def test_resamples_drawn_here_are_reproducible():
    a = validate_cox(HAND_X * [1], HAND_TIME, HAND_EVENT, B=25, seed=1)
    b = validate_cox(HAND_X, HAND_TIME, HAND_EVENT, B=25, seed=1)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.n_resamples == 25


def test_a_resample_without_events_is_named_and_left_out():
    resamples = np.vstack([np.tile(np.arange(4), (19, 1)), [[2, 3, 3, 2]]])
    out = validate_cox(HAND_X, HAND_TIME, HAND_EVENT, resamples=resamples)
    assert [(f.resample, f.reason) for f in out.failed] == [(19, "no events in the resample")]
    assert list(out.table["n"]) == [19] * 7


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"B": 19}, "19 bootstrap resamples are too few"),
        ({"resamples": np.zeros((4, 25), dtype=int)}, r"B x n = B x 4 .* got shape \(4, 25\)"),
        ({"resamples": np.full((20, 4), 4)}, r"outside 0..3 .* in resamples 0, 1, 2"),
        ({"resamples": np.zeros((20, 4))}, "must be integer row numbers"),
    ],
)
def test_bad_resamples_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        validate_cox(HAND_X, HAND_TIME, HAND_EVENT, **kwargs)


def test_bad_data_names_the_rows():
    x = pd.DataFrame({"score": [2.0, np.nan, 1.0, 1.0]}, index=["P1", "P2", "P3", "P4"])
    with pytest.raises(ValueError, match=r"X has 1 missing or infinite values \(rows P2\)"):
        validate_cox(x, HAND_TIME, HAND_EVENT)
