"""Elastic-net Cox (toolkit.stats.coxnet) against glmnet 4.1-6, computed live in R.

Times go to both sides in years (pbc) or months (veteran): glmnet puts a
censored time tied with a death time in that death's risk set only when its
``100 * .Machine$double.eps`` shift survives rounding (times below ~100); see
the module docstring. Coefficients are compared with ``thresh=1e-20``: at
glmnet's ``thresh=1e-12`` its own iterates stop up to 5e-6 from its optimum
(ours has the lower objective there), which is above the 1e-6 we promise.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
import pandas as pd
import pytest

from toolkit._jax import jax
from toolkit.rbridge import RWarning
from toolkit.stats import coxnet
from toolkit.stats.coxnet import _data, _likelihood, _solvers
from toolkit.stats.coxnet._solvers import _buffers, _steering
from toolkit.stats.coxnet._solvers import eta as eta_solver

jnp = jax.numpy

THRESH = 1e-20
# glmnet's own words when coordinate descent exhausts maxit and returns the path so far
OUT_OF_ITERATIONS = (
    r"^R glmnet::(cv\.)?glmnet \(.*\): .*Convergence for \d+th lambda value not reached"
)


def _patch_solvers(monkeypatch, change):
    """Patch the solvers coxnet tries, in order: the one seam, ``_solvers.SOLVERS``.

    ``change`` maps each :class:`~toolkit.stats.coxnet._solvers.Solver` to its
    replacement, or to None to leave it out (the last, the active-set solver,
    must stay: it refits what the others fail on).
    """
    changed = (change(solver) for solver in _solvers.SOLVERS)
    monkeypatch.setattr(_solvers, "SOLVERS", tuple(s for s in changed if s is not None))


def _without(*names):
    """Leave out the solvers so named (``"eta"``, ``"dense"``)."""
    return lambda solver: None if solver.name in names else solver


def _giving_up(name):
    """The solver so named, allowed one step per penalty: none converges, the path fails."""

    def change(solver):
        if solver.name != name:
            return solver
        return replace(
            solver,
            path=partial(solver.path, max_steps=1),
            folds=partial(solver.folds, max_steps=1),
        )

    return change


def _spying(record, label=lambda solver, kind: solver.name):
    """Each solver, appending ``label(solver, "path" | "folds")`` to ``record`` when it runs."""

    def change(solver):
        def spy(fit, kind):
            def run(*args, **kwargs):
                record.append(label(solver, kind))
                return fit(*args, **kwargs)

            return run

        return replace(solver, path=spy(solver.path, "path"), folds=spy(solver.folds, "folds"))

    return change


@pytest.fixture(scope="module")
def rc(r):
    from toolkit.rbridge import coxnet as rcoxnet

    return rcoxnet


@pytest.fixture(scope="module")
def pbc_data(pbc):
    frame = pbc.copy()
    frame["sex"] = (frame["sex"] == "f").astype(float)
    frame = frame.dropna()
    columns = [c for c in frame.columns if c not in ("id", "time", "status")]
    x = frame[columns].to_numpy(float)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    time = frame["time"].to_numpy() / 365.25
    event = (frame["status"] == 2).to_numpy(float)
    return pd.DataFrame(x, columns=columns), time, event


@pytest.fixture(scope="module")
def veteran_data(veteran):
    dummies = pd.get_dummies(veteran["celltype"], prefix="celltype", drop_first=True, dtype=float)
    x = pd.concat([veteran[["trt", "karno", "diagtime", "age", "prior"]], dummies], axis=1)
    return x.astype(float), veteran["time"].to_numpy() / 30.4375, veteran["status"].to_numpy()


def _simulated(n: int, p: int, strongest: float):
    """Gaussian columns, 10 true signals (``strongest`` down to 0.3), exponential times."""
    rng = np.random.default_rng(20261127)
    x = rng.standard_normal((n, p))
    beta = np.zeros(p)
    beta[:10] = np.linspace(strongest, 0.3, 10) * np.where(np.arange(10) % 2, -1.0, 1.0)
    true_time = rng.exponential(np.exp(-(x @ beta))) * 12
    censor = rng.exponential(24, n)
    return x, np.minimum(true_time, censor), (true_time <= censor).astype(float)


@pytest.fixture(scope="module")
def wide_data():
    """n=120, p=2048 with 10 true signals (the study's shape before mRMR)."""
    return _simulated(120, 2048, 1.0)


@pytest.mark.parametrize("name", ["pbc_data", "veteran_data", "wide_data"])
def test_default_penalty_sequence_equals_glmnet(request, rc, name):
    x, time, event = request.getfixturevalue(name)
    x = np.asarray(x)
    ref = rc.glmnet_path(x, time, event, 0.5, thresh=1e-7)
    ours = coxnet.penalty_sequence(x, time, event, 0.5)
    assert len(ours) == 100
    k = len(ref["lambda"])
    np.testing.assert_allclose(ours[:k], ref["lambda"], rtol=1e-8, atol=0)


@pytest.mark.parametrize("solver", ["dense", "active-set"])
def test_path_equals_glmnet_on_pbc(rc, pbc_data, monkeypatch, solver):
    x, time, event = pbc_data
    ref = rc.glmnet_path(x.to_numpy(), time, event, 0.5, thresh=THRESH)
    if solver == "active-set":  # n > p goes to the dense solver unless p > 4096
        _patch_solvers(monkeypatch, _without("dense"))
    ours = coxnet.path(x, time, event, l1_ratio=0.5)
    # glmnet stops this default path early (deviance ratio flat): the same length here
    assert ours.stopped_early
    assert len(ours.penalties) == len(ref["lambda"]) == 50
    np.testing.assert_allclose(ours.penalties, ref["lambda"], rtol=1e-8)
    np.testing.assert_allclose(ours.coef, ref["beta"].T, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.deviance_ratio, ref["dev_ratio"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(ours.null_deviance, ref["nulldev"][0], rtol=1e-10)
    np.testing.assert_array_equal(ours.n_nonzero, (ref["beta"] != 0).sum(axis=0))
    assert ours.feature_names == tuple(x.columns)


@pytest.mark.parametrize("solver", ["dense", "active-set"])
def test_path_equals_glmnet_on_veteran_lasso(rc, veteran_data, monkeypatch, dense, solver):
    x, time, event = veteran_data
    if solver == "active-set":
        _patch_solvers(monkeypatch, _without("dense"))
    ref = rc.glmnet_path(x.to_numpy(), time, event, 1.0, thresh=THRESH)
    ours = coxnet.path(x, time, event, l1_ratio=1.0)
    assert dense == [solver]
    assert len(ours.penalties) == len(ref["lambda"])
    np.testing.assert_allclose(ours.penalties, ref["lambda"], rtol=1e-8)
    np.testing.assert_allclose(ours.coef, ref["beta"].T, rtol=0, atol=1e-6)


def test_path_with_weights_and_penalty_factor_equals_glmnet(rc, veteran_data):
    x, time, event = veteran_data
    rng = np.random.default_rng(3)
    weights = rng.uniform(0.5, 2.0, len(time))
    factor = np.array([1.0, 0.5, 1.0, 2.0, 1.0, 0.0, 1.0, 1.0])
    ref = rc.glmnet_path(
        x.to_numpy(), time, event, 0.5, weights=weights, penalty_factor=factor, thresh=THRESH
    )
    ours = coxnet.path(x, time, event, 0.5, weights=weights, penalty_factor=factor)
    assert len(ours.penalties) == len(ref["lambda"])
    np.testing.assert_allclose(ours.penalties, ref["lambda"], rtol=1e-8)
    np.testing.assert_allclose(ours.coef, ref["beta"].T, rtol=0, atol=1e-6)


def test_path_equals_glmnet_when_p_is_much_larger_than_n(rc, wide_data):
    x, time, event = wide_data
    penalties = coxnet.penalty_sequence(x, time, event, 0.5)[:20]
    ref = rc.glmnet_path(x, time, event, 0.5, penalties=penalties, thresh=THRESH)
    ours = coxnet.path(x, time, event, 0.5, penalties=penalties)
    assert ours.n_nonzero[-1] > 30
    np.testing.assert_allclose(ours.coef, ref["beta"].T, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.deviance_ratio, ref["dev_ratio"], rtol=0, atol=1e-8)


def test_wide_path_with_weights_ties_and_penalty_factors_equals_glmnet(rc, wide_data):
    """p >> n (the semismooth Newton solver in eta) with weights, tied times, penalty factors."""
    x, time, event = wide_data
    time = np.ceil(time * 2) / 2  # half-month grid: tied death and censored times
    rng = np.random.default_rng(8)
    weights = rng.uniform(0.5, 2.0, len(time))
    factor = rng.uniform(0.5, 2.0, x.shape[1])
    kwargs = {"weights": weights, "penalty_factor": factor}
    penalties = coxnet.penalty_sequence(x, time, event, 0.3, **kwargs)[:20]
    assert eta_solver.applies(x.shape, 0.3, factor, penalties)
    ref = rc.glmnet_path(x, time, event, 0.3, penalties=penalties, thresh=THRESH, **kwargs)
    ours = coxnet.path(x, time, event, 0.3, penalties=penalties, **kwargs)
    assert ours.n_nonzero[-1] > 20
    np.testing.assert_allclose(ours.coef, ref["beta"].T, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.deviance_ratio, ref["dev_ratio"], rtol=0, atol=1e-8)


def test_wide_path_refits_with_the_active_set_solver_when_newton_stalls(monkeypatch, wide_data):
    x, time, event = wide_data
    penalties = coxnet.penalty_sequence(x, time, event, 0.5)[:12]
    newton = coxnet.path(x, time, event, 0.5, penalties=penalties)
    calls = []
    _patch_solvers(monkeypatch, _giving_up("eta"))  # no penalty can converge in one step
    _patch_solvers(monkeypatch, _spying(calls, lambda solver, kind: f"{solver.name} {kind}"))
    refit = coxnet.path(x, time, event, 0.5, penalties=penalties)
    assert calls == ["eta path", "active-set path"]
    assert newton.n_nonzero[-1] > 20
    np.testing.assert_allclose(refit.coef, newton.coef, rtol=0, atol=1e-9)


def test_wide_path_on_near_copies_near_the_lasso(rc, monkeypatch):
    """Ill-conditioned Newton systems: 20 near-copies of each of 20 columns, l1_ratio 0.95.

    The float32 factorisation of the Jacobian stalls there and the solver
    switches to float64 (counted in its last output). glmnet's coordinate
    descent exhausts ``maxit`` after the first penalties on such data (it
    returns those), so the whole path is also checked against our other
    solver.
    """
    rng = np.random.default_rng(3)
    base = rng.standard_normal((100, 20))
    x = np.repeat(base, 20, axis=1) + 1e-3 * rng.standard_normal((100, 400))
    true_time = rng.exponential(np.exp(-base.sum(axis=1) / 8))
    censor = rng.exponential(2, 100)
    time, event = np.minimum(true_time, censor), (true_time <= censor).astype(float)
    penalties = coxnet.penalty_sequence(x, time, event, 0.95)[:40]
    data = _data.prepare(x, time, event, None, None)
    q = data.weights / data.weights.sum()
    scale = _data.column_scales(data.x, q, True)
    args = (data.x, data.death, data.start, data.end, data.penalty_factor, 0.95, q, scale)
    counts = eta_solver.fit_path(*args, np.ones(400, bool), penalties, False)[4]
    assert counts[2] > 0  # float64 factorisations
    ours = coxnet.path(x, time, event, 0.95, penalties=penalties)
    assert ours.n_nonzero[-1] > 50

    with pytest.warns(RWarning, match=OUT_OF_ITERATIONS):
        ref = rc.glmnet_path(x, time, event, 0.95, penalties=penalties, thresh=THRESH)
    k = ref["beta"].shape[1]
    assert k >= 8 and ours.n_nonzero[k - 1] >= 10
    np.testing.assert_allclose(ours.coef[:k], ref["beta"].T, rtol=0, atol=1e-6)

    _patch_solvers(monkeypatch, _without("eta"))  # the active-set solver
    other = coxnet.path(x, time, event, 0.95, penalties=penalties)
    np.testing.assert_allclose(ours.coef, other.coef, rtol=0, atol=1e-7)


def test_a_single_penalty_fits_on_either_solver(wide_data):
    x, time, event = wide_data
    penalties = coxnet.penalty_sequence(x, time, event, 0.5)[:15]
    longer = coxnet.path(x, time, event, 0.5, penalties=penalties)
    alone = coxnet.path(x, time, event, 0.5, penalties=penalties[-1:])
    np.testing.assert_allclose(alone.coef[0], longer.coef[-1], rtol=0, atol=1e-9)
    assert len(coxnet.path(x, time, event, 0.5, n_penalties=1).penalties) == 1
    narrow = coxnet.path(x[:, :30], time, event, 0.5, penalties=[0.05])
    assert narrow.coef.shape == (1, 30) and narrow.n_nonzero[0] > 0


def test_wide_cv_equals_cv_glmnet(rc, wide_data):
    x, time, event = wide_data
    folds = np.random.default_rng(2).permutation(np.resize(np.arange(1, 6), len(time)))
    penalties = coxnet.penalty_sequence(x, time, event, 0.5)[:25]
    ref = rc.cv_glmnet(x, time, event, 0.5, folds, penalties=penalties, thresh=THRESH)
    ours = coxnet.cv(x, time, event, 0.5, penalties=penalties, fold_id=folds)
    np.testing.assert_allclose(ours.cv_mean, ref["cvm"], rtol=1e-4)
    np.testing.assert_allclose(ours.cv_se, ref["cvsd"], rtol=1e-4)
    assert ours.penalty_min == pytest.approx(ref["lambda_min"][0], rel=1e-12)
    assert ours.index_min > 0


@pytest.mark.parametrize("solver", ["dense", "active-set"])
def test_cv_equals_cv_glmnet_on_pbc(rc, pbc_data, monkeypatch, solver):
    x, time, event = pbc_data
    if solver == "active-set":
        _patch_solvers(monkeypatch, _without("dense"))
    folds = np.random.default_rng(1).permutation(np.resize(np.arange(1, 6), len(time)))
    ref = rc.cv_glmnet(x.to_numpy(), time, event, 0.5, folds, thresh=THRESH)
    ours = coxnet.cv(x, time, event, 0.5, fold_id=folds)
    np.testing.assert_allclose(ours.penalties, ref["lambda"], rtol=1e-8)
    np.testing.assert_allclose(ours.cv_mean, ref["cvm"], rtol=1e-4)
    np.testing.assert_allclose(ours.cv_se, ref["cvsd"], rtol=1e-4)
    assert ours.index_min == int(np.argmin(np.abs(ref["lambda"] - ref["lambda_min"][0])))
    assert ours.index_1se == int(np.argmin(np.abs(ref["lambda"] - ref["lambda_1se"][0])))


def test_cv_by_c_index_equals_cv_glmnet(rc, pbc_data):
    """type.measure="C": Harrell's C of each fold's held-out rows, weighted by the fold's weight."""
    x, time, event = pbc_data
    folds = np.random.default_rng(1).permutation(np.resize(np.arange(1, 6), len(time)))
    ref = rc.cv_glmnet(x.to_numpy(), time, event, 0.5, folds, thresh=THRESH, measure="cindex")
    ours = coxnet.cv(x, time, event, 0.5, fold_id=folds, measure="cindex")
    np.testing.assert_allclose(ours.cv_mean, ref["cvm"], rtol=1e-10)
    np.testing.assert_allclose(ours.cv_se, ref["cvsd"], rtol=1e-8)
    np.testing.assert_allclose(ours.penalties, ref["lambda"], rtol=1e-8)
    assert ours.index_min == int(np.argmin(np.abs(ref["lambda"] - ref["lambda_min"][0])))
    assert ours.index_1se == int(np.argmin(np.abs(ref["lambda"] - ref["lambda_1se"][0])))


def test_cv_on_a_small_cohort_equals_cv_glmnet(rc):
    """The study's case: ~30 selected features, 40 patients, 5 folds."""
    rng = np.random.default_rng(40)
    x = rng.standard_normal((40, 30))
    time = rng.exponential(np.exp(-(x[:, 0] - x[:, 1]))) * 10
    event = (rng.uniform(size=40) < 0.75).astype(float)
    folds = np.resize(np.arange(1, 6), 40)
    folds = folds[np.argsort(np.argsort(time))]  # events spread over folds
    # thresh=1e-20 would exhaust glmnet's maxit near saturation at n=40
    with pytest.warns(RWarning, match=OUT_OF_ITERATIONS):  # in the saturated fold paths
        ref = rc.cv_glmnet(x, time, event, 0.5, folds, thresh=1e-12)
    ours = coxnet.cv(x, time, event, 0.5, fold_id=folds)
    np.testing.assert_allclose(ours.penalties, ref["lambda"], rtol=1e-8)
    # beyond ~50 penalties the fold models saturate (training deviance ratio
    # near 1) and glmnet's fold paths end where its iterations run out
    np.testing.assert_allclose(ours.cv_mean[:50], ref["cvm"][:50], rtol=1e-4)
    assert ours.penalty_min == pytest.approx(ref["lambda_min"][0], rel=1e-8)


def test_near_saturated_path_stays_finite_and_equals_glmnet(rc):
    """A covariate that almost orders the deaths: the linear predictor spans hundreds.

    Late risk sets then sum to below 1e-170, whose square underflowed in the
    Hessian (NaN coefficients before); glmnet converges at thresh=1e-20 on
    the first penalties only.
    """
    rng = np.random.default_rng(0)
    time = np.arange(1.0, 31.0)
    x = np.c_[-time + rng.normal(0, 0.5, 30), rng.standard_normal(30)]
    rows = np.arange(30) % 5 != 0
    x, time, event = x[rows], time[rows], np.ones(24)
    penalties = np.geomspace(0.5, 1e-6, 30)
    ours = coxnet.path(x, time, event, 0.5, penalties=penalties)
    assert np.isfinite(ours.coef).all() and len(ours.penalties) == 30
    assert np.all(np.diff(ours.deviance_ratio) > 0) and ours.deviance_ratio[-1] > 0.998
    assert np.ptp(x @ ours.coef[-1]) > 300
    with pytest.warns(RWarning, match=OUT_OF_ITERATIONS):
        ref = rc.glmnet_path(x, time, event, 0.5, penalties=penalties, thresh=THRESH)
    k = ref["beta"].shape[1]
    assert k >= 15
    np.testing.assert_allclose(ours.coef[:k], ref["beta"].T, rtol=0, atol=1e-6)


@pytest.mark.parametrize("spread", [3.0, 600.0])
def test_hessian_in_the_linear_predictor_equals_the_risk_set_sum(spread):
    """H = sum_k D_k (diag(pi_k) - pi_k pi_k'), pi_k the risk-set probabilities, by hand.

    Tied times, weights, and a linear predictor spanning 600 (late risk sets
    summing to ~1e-260 of the first: the log-accumulated branch; beyond ~740
    exp underflows to 0 and the fit is cut as not finite).
    """
    rng = np.random.default_rng(6)
    n = 40
    time = np.sort(rng.integers(1, 15, n)).astype(float)
    death = (rng.uniform(size=n) < 0.7).astype(float)
    order = np.lexsort((-death, time))
    time, death = time[order], death[order]
    q = rng.uniform(0.5, 2.0, n)
    q /= q.sum()
    eta = -spread * (time - time.min()) / np.ptp(time) + rng.normal(0, 0.3, n)
    start = np.searchsorted(time, time, side="left")
    end = np.searchsorted(time, time, side="right") - 1
    _, _, e, b, _ = _likelihood.breslow(eta, q, death, start, end)
    ours = np.asarray(_likelihood.eta_hessian(e, b, death * q, start))
    expected = np.zeros((n, n))
    for s in np.unique(start[death == 1]):
        pi = np.zeros(n)
        pi[s:] = q[s:] * np.exp(eta[s:] - eta[s:].max())  # the risk set of the deaths at s
        pi /= pi.sum()
        expected += (death * q)[start == s].sum() * (np.diag(pi) - np.outer(pi, pi))
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())


def test_a_non_finite_fit_cuts_the_path_with_a_warning(monkeypatch, pbc_data):
    x, time, event = pbc_data

    def broken(run):
        def fit(*args, **kwargs):
            coef, dev, stopped, failed = run(*args, **kwargs)
            nan_at_8 = np.where(np.arange(len(dev)) == 7, np.nan, 1.0)[:, None]
            return np.asarray(coef).copy() * nan_at_8, dev, stopped, failed

        return fit

    def change(solver):
        return replace(solver, path=broken(solver.path)) if solver.name == "active-set" else solver

    _patch_solvers(monkeypatch, _without("dense"))  # the active-set solver
    _patch_solvers(monkeypatch, change)
    with pytest.warns(coxnet.CoxnetWarning, match=r"penalty .* \(number 8\) is not finite"):
        fit = coxnet.path(x, time, event, 0.5)
    assert len(fit.penalties) == 7 and np.isfinite(fit.coef).all()


def test_predict_interpolates_linearly_in_the_penalty(pbc_data):
    x, time, event = pbc_data
    fit = coxnet.path(x, time, event, l1_ratio=0.5)
    lam = fit.penalties
    np.testing.assert_allclose(coxnet.predict(fit, x, lam[10]), x.to_numpy() @ fit.coef[10])
    middle = 0.25 * lam[10] + 0.75 * lam[11]
    expected = x.to_numpy() @ (0.25 * fit.coef[10] + 0.75 * fit.coef[11])
    np.testing.assert_allclose(coxnet.predict(fit, x, middle), expected, rtol=1e-12)
    below = coxnet.predict(fit, x, lam[-1] / 10)
    np.testing.assert_allclose(below, x.to_numpy() @ fit.coef[-1])


def test_constant_and_duplicated_columns_are_dropped_with_a_warning(pbc_data):
    x, time, event = pbc_data
    noisy = x.copy()
    noisy["flat"] = 1.0
    noisy["bili_again"] = x["bili"]
    with pytest.warns(coxnet.CoxnetWarning) as record:
        fit = coxnet.path(noisy, time, event, 0.5)
    messages = [str(w.message) for w in record]
    assert any("constant column(s): flat" in m for m in messages)
    assert any("duplicated column(s): bili_again (= bili)" in m for m in messages)
    assert fit.dropped == ("flat", "bili_again")
    assert not fit.coef[:, -2:].any()


def test_missing_values_name_rows_and_columns(pbc_data):
    x, time, event = pbc_data
    broken = x.copy()
    broken.iloc[[3, 7], 2] = np.nan
    label3, label7 = broken.index[3], broken.index[7]
    with pytest.raises(ValueError, match=rf"rows {label3}, {label7} and columns {x.columns[2]}"):
        coxnet.path(broken, time, event)


def test_penalties_giving_only_empty_models_warn(pbc_data):
    x, time, event = pbc_data
    lam_max = coxnet.penalty_sequence(x, time, event, 0.5)[0]
    with pytest.warns(coxnet.CoxnetWarning, match="every model on the penalty path is empty"):
        fit = coxnet.path(x, time, event, 0.5, penalties=lam_max * np.geomspace(10, 1.01, 100))
    assert not fit.n_nonzero.any()


def test_fold_without_events_is_named(pbc_data):
    x, time, event = pbc_data
    folds = np.resize(np.arange(1, 6), len(time))
    folds[event == 0] = np.resize(np.arange(1, 6), int((event == 0).sum()))
    folds[event == 1] = np.resize([1, 2, 3, 5], int(event.sum()))
    with pytest.raises(ValueError, match=r"fold\(s\) 4 have no events"):
        coxnet.cv(x, time, event, 0.5, fold_id=folds)


def test_bad_outcome_is_refused():
    x = np.random.default_rng(0).standard_normal((10, 3))
    with pytest.raises(ValueError, match="time must be positive"):
        coxnet.path(x, np.r_[0.0, np.ones(9)], np.ones(10))
    with pytest.raises(ValueError, match="event must be coded 0"):
        coxnet.path(x, np.ones(10), np.r_[2.0, np.ones(9)])


def test_default_folds_spread_events_over_a_40_patient_cohort():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((40, 30))
    time = rng.exponential(10, 40)
    event = np.zeros(40)
    event[rng.choice(40, 9, replace=False)] = 1.0
    fit = coxnet.cv(x, time, event, 0.5, n_folds=5, seed=2)
    per_fold = np.bincount(fit.fold_id, weights=event)[1:]
    assert per_fold.min() >= 1 and per_fold.max() <= 2
    assert np.bincount(fit.fold_id)[1:].tolist() == [8] * 5
    assert np.isfinite(fit.cv_mean).all()


# ------------------------------------------------------------------ the dense solver (n > p)


@pytest.fixture
def dense(monkeypatch):
    """Records the solvers that ran (path or CV folds): "eta", "dense", "active-set"."""
    ran: list[str] = []
    _patch_solvers(monkeypatch, _spying(ran))
    return ran


def test_dense_solver_equals_glmnet_on_pbc(rc, pbc_data, dense):
    x, time, event = pbc_data
    ref = rc.glmnet_path(x.to_numpy(), time, event, 0.5, thresh=THRESH)
    ours = coxnet.path(x, time, event, l1_ratio=0.5)
    assert dense == ["dense"]
    assert len(ours.penalties) == len(ref["lambda"]) == 50
    np.testing.assert_allclose(ours.coef, ref["beta"].T, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.deviance_ratio, ref["dev_ratio"], rtol=0, atol=1e-8)
    np.testing.assert_array_equal(ours.n_nonzero, (ref["beta"] != 0).sum(axis=0))


def test_dense_solver_with_weights_ties_and_penalty_factors_equals_glmnet(rc, veteran_data, dense):
    x, time, event = veteran_data
    time = np.ceil(time)  # whole months: many tied death and censored times
    rng = np.random.default_rng(11)
    kwargs = {
        "weights": rng.uniform(0.5, 2.0, len(time)),
        "penalty_factor": rng.uniform(0.5, 2.0, x.shape[1]),
    }
    ref = rc.glmnet_path(x.to_numpy(), time, event, 0.7, thresh=THRESH, **kwargs)
    ours = coxnet.path(x, time, event, 0.7, **kwargs)
    assert dense == ["dense"]
    assert len(ours.penalties) == len(ref["lambda"])
    np.testing.assert_allclose(ours.coef, ref["beta"].T, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.deviance_ratio, ref["dev_ratio"], rtol=0, atol=1e-8)


@pytest.fixture(scope="module")
def tall_data():
    """n=400, p=60 in correlated pairs (r ~ 0.9), times on a grid (ties): most columns enter."""
    rng = np.random.default_rng(60)
    n, p = 400, 60
    base = rng.standard_normal((n, p // 2))
    x = np.repeat(base, 2, axis=1) + 0.45 * rng.standard_normal((n, p))
    beta = rng.normal(0, 0.3, p)
    true_time = rng.exponential(np.exp(-(x @ beta) / 3)) * 12
    censor = rng.exponential(20, n)
    time = np.ceil(np.minimum(true_time, censor) * 4) / 4
    return x, time, (true_time <= censor).astype(float)


def test_dense_solver_on_correlated_columns_equals_glmnet(rc, tall_data, dense):
    """Past p / 2 active columns the steps go through the Schur complement of the inverse."""
    x, time, event = tall_data
    ref = rc.glmnet_path(x, time, event, 0.5, thresh=THRESH)
    ours = coxnet.path(x, time, event, 0.5)
    assert dense == ["dense"]
    assert ours.n_nonzero.max() > 45  # both ways of solving were used
    assert len(ours.penalties) == len(ref["lambda"])
    np.testing.assert_allclose(ours.coef, ref["beta"].T, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.deviance_ratio, ref["dev_ratio"], rtol=0, atol=1e-8)


def test_dense_lasso_on_correlated_columns_equals_glmnet(rc, tall_data, dense):
    """l1_ratio = 1 (no ridge term: the steering matrices get a tiny diagonal shift)."""
    x, time, event = tall_data
    ref = rc.glmnet_path(x, time, event, 1.0, thresh=THRESH)
    ours = coxnet.path(x, time, event, 1.0)
    assert dense == ["dense"]
    assert ours.n_nonzero.max() > 45
    assert len(ours.penalties) == len(ref["lambda"])
    np.testing.assert_allclose(ours.coef, ref["beta"].T, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.deviance_ratio, ref["dev_ratio"], rtol=0, atol=1e-8)


def test_dense_cv_equals_cv_glmnet(rc, tall_data, dense):
    x, time, event = tall_data
    folds = np.random.default_rng(4).permutation(np.resize(np.arange(1, 6), len(time)))
    ref = rc.cv_glmnet(x, time, event, 0.5, folds, thresh=THRESH)
    ours = coxnet.cv(x, time, event, 0.5, fold_id=folds)
    assert dense == ["dense", "dense"]  # the full path, then the folds as one program
    np.testing.assert_allclose(ours.penalties, ref["lambda"], rtol=1e-8)
    np.testing.assert_allclose(ours.cv_mean, ref["cvm"], rtol=1e-4)
    np.testing.assert_allclose(ours.cv_se, ref["cvsd"], rtol=1e-4)
    assert ours.index_min == int(np.argmin(np.abs(ref["lambda"] - ref["lambda_min"][0])))


def test_dense_solver_falls_back_to_the_active_set_solver(monkeypatch, tall_data, dense):
    x, time, event = tall_data
    expected = coxnet.path(x, time, event, 0.5)
    _patch_solvers(monkeypatch, _giving_up("dense"))  # no penalty converges in one step
    dense.clear()
    refit = coxnet.path(x, time, event, 0.5)
    assert dense == ["dense", "active-set"]
    np.testing.assert_allclose(refit.coef, expected.coef, rtol=0, atol=1e-8)


@pytest.mark.parametrize("k", [0, 3, 9, 10, 17, 20])
def test_block_solve_equals_a_direct_solve(k):
    """Both ways (Cholesky of the active block, Schur complement of the inverse), cached or not."""
    rng = np.random.default_rng(k)
    p = 20
    a = rng.standard_normal((30, p))
    hess = a.T @ a / 30
    mu2 = rng.uniform(0.01, 0.1, p)
    inv = np.linalg.inv(hess + np.diag(mu2)).astype(np.float32)
    active = np.zeros(p, dtype=bool)
    active[rng.permutation(p)[:k]] = True
    rhs = rng.standard_normal(p)
    sizes = _buffers.bucket_sizes(p // 2)
    cache = (jnp.zeros((sizes[-1], sizes[-1])), jnp.zeros(p, bool), False)
    expected = np.zeros(p)
    shift = _steering.DENSE_JITTER * hess.diagonal().max()  # keeps a lasso's blocks definite
    block = (hess + np.diag(mu2 + shift))[np.ix_(active, active)]
    expected[active] = np.linalg.solve(block, rhs[active]) if k else []
    args = [jnp.asarray(v) for v in (hess, inv, active, rhs, mu2)]
    x, cache = _steering.block_solve(*args, sizes, cache)
    again, _ = _steering.block_solve(*args, sizes, cache)  # the factorisation reused
    assert bool(cache[2]) and np.array_equal(np.asarray(cache[1]), active)
    # the Schur way inverts a float32 inverse: float32 accuracy, relative to the solution
    tol = 1e-12 if k <= p // 2 else 1e-4
    scale = max(1.0, np.abs(expected).max())
    np.testing.assert_allclose(np.asarray(x), expected, rtol=0, atol=tol * scale)
    np.testing.assert_allclose(np.asarray(again), np.asarray(x), rtol=0, atol=1e-15 * scale)
    assert np.all(np.asarray(x)[~active] == 0)


def test_blocked_reverse_cumulative_sum_equals_the_plain_one():
    a = np.random.default_rng(5).standard_normal((1000, 7))  # not a multiple of the block
    expected = np.cumsum(a[::-1], axis=0)[::-1]
    got = np.asarray(_likelihood.revcumsum_blocked(jnp.asarray(a), block=64))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_dense_cv_does_not_stall_where_coordinates_keep_crossing_zero(monkeypatch, dense):
    """Late on the folds' paths (160 training rows, 100 columns, near saturation) a few
    coordinates cross zero at every step and stopping them all at zero is no descent step;
    the step then goes to the first sign change (before: every fold stalled and refitted
    with the active-set solver)."""
    x, time, event = _simulated(200, 100, 0.8)
    folds = np.random.default_rng(5).permutation(np.resize(np.arange(1, 6), 200))
    ours = coxnet.cv(x, time, event, 0.5, fold_id=folds)
    assert dense == ["dense", "dense"]
    _patch_solvers(monkeypatch, _without("dense"))  # the active-set solver
    ref = coxnet.cv(x, time, event, 0.5, fold_id=folds)
    np.testing.assert_allclose(ours.path.coef, ref.path.coef, rtol=0, atol=1e-8)
    np.testing.assert_allclose(ours.cv_mean, ref.cv_mean, rtol=1e-8)
    np.testing.assert_allclose(ours.cv_se, ref.cv_se, rtol=1e-6)


def test_block_solve_refactorises_for_a_new_active_set_or_a_cleared_cache():
    rng = np.random.default_rng(3)
    p = 12
    a = rng.standard_normal((40, p))
    hess = a.T @ a / 40
    sizes = _buffers.bucket_sizes(p // 2)
    shift = _steering.DENSE_JITTER * hess.diagonal().max()

    def solve(active, mu2, cache):
        inv = np.linalg.inv(hess + np.diag(mu2)).astype(np.float32)
        args = [jnp.asarray(v) for v in (hess, inv, active, np.ones(p), mu2)]
        x, cache = _steering.block_solve(*args, sizes, cache)
        block = (hess + np.diag(mu2 + shift))[np.ix_(active, active)]
        np.testing.assert_allclose(
            np.asarray(x)[active], np.linalg.solve(block, np.ones(active.sum())), rtol=1e-10
        )
        return cache

    first = np.arange(p) < 4
    cache = (jnp.zeros((sizes[-1], sizes[-1])), jnp.zeros(p, bool), False)
    cache = solve(first, np.full(p, 0.1), cache)
    cache = solve(np.arange(p) < 5, np.full(p, 0.1), cache)  # another active set, cache valid
    cache = (cache[0], cache[1], False)  # as after a new penalty: the factor must be redone
    solve(np.arange(p) < 5, np.full(p, 0.3), cache)


def test_float32_hessian_stays_finite_near_a_saturated_fit(monkeypatch):
    """Linear predictor spans of 10-200: late risk-set sums underflow in float32."""
    rng = np.random.default_rng(0)
    n, p = 400, 20
    x = jnp.asarray(rng.standard_normal((n, p)))
    time = np.sort(rng.exponential(1, n))
    death = (rng.uniform(size=n) < 0.7).astype(float)
    start, end = _data.first_tied(time), _data.last_tied(time)
    for span in (10.0, 90.0, 200.0):
        pieces = _likelihood.breslow(
            jnp.asarray(-np.linspace(0, span, n)), np.full(n, 1 / n), death, start, end
        )[2:]
        monkeypatch.setattr(_likelihood, "_SINGLE_HESSIAN_WORK", 1e30)
        h64 = np.asarray(_likelihood.coef_hessian(x, *pieces, start))
        monkeypatch.setattr(_likelihood, "_SINGLE_HESSIAN_WORK", 0)
        h32 = np.asarray(_likelihood.coef_hessian(x, *pieces, start))
        assert np.isfinite(h32).all()
        np.testing.assert_allclose(h32, h64, rtol=0, atol=1e-5 * np.abs(h64).max())


def test_dense_lasso_with_near_collinear_columns_converges(dense):
    """Columns x2 = x0 + x1 + 1e-5 noise: near-singular blocks (the lasso has no ridge term)."""
    rng = np.random.default_rng(0)
    n, p = 400, 150
    x = rng.standard_normal((n, p))
    for j in range(0, 30, 3):
        x[:, j + 2] = x[:, j] + x[:, j + 1] + 1e-5 * rng.standard_normal(n)
    beta = np.zeros(p)
    beta[:5] = 0.7
    true_time = rng.exponential(np.exp(-x @ beta))
    censor = rng.exponential(2, n)
    time, event = np.minimum(true_time, censor), (true_time <= censor).astype(float)
    penalties = np.geomspace(0.3, 1e-3, 30)
    ours = coxnet.path(x, time, event, 1.0, penalties=penalties)
    assert dense == ["dense"]  # converged at every penalty: no refit
    assert np.isfinite(ours.coef).all() and ours.n_nonzero[-1] > 20


def test_plain_python_lists_are_accepted_everywhere(veteran_data):
    """Public functions take lists as they take arrays (a list's ``.index`` is a method,
    which once made the row labels raise TypeError)."""
    x, time, event = veteran_data
    x = x.to_numpy()
    weights = 1.0 + np.arange(len(time)) % 2
    factor = np.r_[0.5, np.ones(x.shape[1] - 1)]
    arrays = coxnet.path(x, time, event, weights=weights, penalty_factor=factor, n_penalties=20)
    lists = coxnet.path(
        x.tolist(), time.tolist(), event.tolist(), weights=weights.tolist(),
        penalty_factor=factor.tolist(), penalties=arrays.penalties.tolist(),
    )  # fmt: skip
    np.testing.assert_array_equal(lists.coef, arrays.coef)
    folds = (np.arange(len(time)) % 4 + 1).tolist()
    fitted = coxnet.cv(x.tolist(), time.tolist(), event.tolist(), fold_id=folds, n_penalties=20)
    reference = coxnet.cv(x, time, event, fold_id=np.asarray(folds), n_penalties=20)
    np.testing.assert_array_equal(fitted.cv_mean, reference.cv_mean)
    np.testing.assert_array_equal(
        coxnet.predict(fitted, x[:5].tolist()), coxnet.predict(reference, x[:5])
    )
    with pytest.raises(ValueError, match="rows 2"):
        coxnet.path(x.tolist(), [*time[:2].tolist(), -1.0, *time[3:].tolist()], event.tolist())
