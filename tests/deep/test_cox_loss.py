"""The Cox loss (toolkit/deep/cox_loss.py) against survival::coxph with an offset, by hand,
and its gradient against central finite differences."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toolkit.deep.cox_loss import cox_loss, negative_partial_loglik, risk_sets
from toolkit.stats import cox

COLON_COVARIATES = ["sex", "age", "obstruct", "nodes", "differ"]
VETERAN_COVARIATES = ["trt", "karno", "diagtime", "age", "prior"]


def _weights(n: int) -> np.ndarray:
    """Non-integer, unequal case weights (0.5, 1.25, 2.0, 0.75 repeated)."""
    return np.array([0.5, 1.25, 2.0, 0.75])[np.arange(n) % 4]


@pytest.fixture(scope="module")
def colon_deaths(r):
    """survival's colon, the death records (etype 2): 929 patients, heavily tied times (days);
    eta the linear predictor of a Cox fit on sex, age, obstruction, nodes, differentiation."""
    d = r.dataset("colon")
    d = d[d["etype"] == 2].dropna(subset=COLON_COVARIATES)
    x = d[COLON_COVARIATES].to_numpy()
    time, event = d["time"].to_numpy(), d["status"].to_numpy()
    fit = cox.fit(x, time, event)
    return x @ fit.coef, time, event


@pytest.fixture(scope="module")
def veteran_data(veteran):
    """survival's veteran (137 patients, tied times), eta a fixed vector from its covariates."""
    x = veteran[VETERAN_COVARIATES].to_numpy()
    eta = x @ np.array([0.3, -0.03, 0.01, -0.01, 0.02])
    return eta, veteran["time"].to_numpy(), veteran["status"].to_numpy()


def test_the_data_have_tied_event_times(colon_deaths, veteran_data):
    for _, time, event in (colon_deaths, veteran_data):
        _, counts = np.unique(time[event == 1], return_counts=True)
        assert counts.max() >= 3


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("data", ["colon_deaths", "veteran_data"])
def test_loss_equals_minus_coxph_offset_loglik(request, data, ties, weighted):
    from toolkit.rbridge.cox import offset_loglik

    eta, time, event = request.getfixturevalue(data)
    weights = _weights(len(time)) if weighted else None
    ref = offset_loglik(eta, time, event, ties=ties, weights=weights)
    assert list(ref["class"]) == ["coxph.null", "coxph"]
    assert len(ref["loglik"]) == 1  # the loglik at the offset, nothing fitted
    # the same number as a model held at beta = 1 (iter.max = 0) reports
    np.testing.assert_allclose(ref["held"], ref["loglik"][0], rtol=1e-13)
    ours = float(cox_loss(eta, time, event, weights, ties=ties))
    assert abs(ours + ref["loglik"][0]) < 1e-10  # absolute, on a loss of ~5e2 to 3e3


def test_loss_at_a_fitted_linear_predictor_is_minus_the_fitted_loglik(colon_deaths):
    """The loss at X beta-hat is -CoxFit.loglik (toolkit's coxph, itself equal to R's)."""
    eta, time, event = colon_deaths
    x_fit = cox.fit(eta[:, None], time, event)  # refit on eta alone: coefficient 1
    np.testing.assert_allclose(x_fit.coef, [1.0], rtol=1e-8)
    assert abs(float(cox_loss(eta, time, event)) + x_fit.loglik) < 1e-8


def _hand_case():
    """Four patients: an event at t=1, two tied events at t=2, a censoring at t=3."""
    time = np.array([2.0, 1.0, 3.0, 2.0])  # not in time order on purpose
    event = np.array([1.0, 1.0, 0.0, 1.0])
    eta = np.array([-0.2, 0.5, 1.0, 0.3])
    weights = np.array([2.0, 1.0, 1.5, 1.0])
    return time, event, eta, weights


def test_hand_worked_case_efron_and_breslow_unweighted():
    time, event, eta, _ = _hand_case()
    e = np.exp(eta)  # patients 0 (t=2), 1 (t=1), 2 (t=3, censored), 3 (t=2)
    s1 = e.sum()  # all four at risk at t=1
    s2 = e[0] + e[2] + e[3]  # at risk at t=2
    e2 = e[0] + e[3]  # the two tied events
    loglik_t1 = eta[1] - math.log(s1)
    breslow = loglik_t1 + eta[0] + eta[3] - 2 * math.log(s2)
    efron = loglik_t1 + eta[0] + eta[3] - math.log(s2) - math.log(s2 - e2 / 2)
    assert float(cox_loss(eta, time, event, ties="breslow")) == pytest.approx(-breslow, abs=1e-14)
    assert float(cox_loss(eta, time, event)) == pytest.approx(-efron, abs=1e-14)
    assert efron != pytest.approx(breslow)


def test_hand_worked_case_efron_and_breslow_weighted():
    time, event, eta, w = _hand_case()
    we = w * np.exp(eta)
    s1, s2, e2 = we.sum(), we[0] + we[2] + we[3], we[0] + we[3]
    loglik_t1 = w[1] * (eta[1] - math.log(s1))
    own_t2 = w[0] * eta[0] + w[3] * eta[3]
    breslow = loglik_t1 + own_t2 - (w[0] + w[3]) * math.log(s2)
    mean_weight = (w[0] + w[3]) / 2  # Efron: each tied event takes the mean weight
    efron = loglik_t1 + own_t2 - mean_weight * (math.log(s2) + math.log(s2 - e2 / 2))
    breslow_loss = cox_loss(eta, time, event, w, ties="breslow")
    assert float(breslow_loss) == pytest.approx(-breslow, abs=1e-14)
    assert float(cox_loss(eta, time, event, w)) == pytest.approx(-efron, abs=1e-14)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_gradient_equals_central_finite_differences(veteran_data, ties):
    eta, time, event = veteran_data
    weights = _weights(len(time))
    risk = risk_sets(time, event, weights, ties=ties)
    loss = jax.jit(negative_partial_loglik)
    grad = np.asarray(jax.jit(jax.grad(negative_partial_loglik))(jnp.asarray(eta), risk))
    h = 1e-5
    step = np.eye(len(eta)) * h
    numeric = np.array(
        [(float(loss(eta + s, risk)) - float(loss(eta - s, risk))) / (2 * h) for s in step]
    )
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    assert np.abs(grad).max() > 0.1  # not a vanishing gradient passing trivially
    # the score of a shift of eta is zero: the partial likelihood ignores a constant
    assert abs(grad.sum()) < 1e-10


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_gradient_is_the_weighted_martingale_residual_on_the_hand_case(ties):
    """d loglik / d eta_i = w_i (d_i - exp(eta_i) sum_{tau_j <= t_i} dLambda_j), by hand."""
    time, event, eta, w = _hand_case()
    we = w * np.exp(eta)
    s1, s2, e2 = we.sum(), we[0] + we[2] + we[3], we[0] + we[3]
    if ties == "breslow":
        dl1, dl2_all, dl2_tied = 1 / s1, 3 / s2, 3 / s2  # hazard increments W_j / S_j
    else:
        # Efron: the tied events see s2 then s2 - e2/2 with mean weight 3/2; a tied event
        # is at risk for the whole first term and half of the second
        dl2_all = 1.5 / s2 + 1.5 / (s2 - e2 / 2)
        dl2_tied = 1.5 / s2 + 0.5 * 1.5 / (s2 - e2 / 2)
        dl1 = 1 / s1
    cumulative = np.array([dl1 + dl2_tied, dl1, dl1 + dl2_all, dl1 + dl2_tied])
    expected = w * event - we * cumulative
    grad = -np.asarray(jax.grad(negative_partial_loglik)(jnp.asarray(eta), risk_sets(
        time, event, w, ties=ties)))  # fmt: skip
    np.testing.assert_allclose(grad, expected, rtol=1e-13, atol=1e-15)


def test_loss_is_stable_for_extreme_linear_predictors(veteran_data):
    """No exp(eta) is formed: a shift by 1000 changes nothing and a spread of 2000 stays finite."""
    eta, time, event = veteran_data
    base = float(cox_loss(eta, time, event))
    assert float(cox_loss(eta + 1000.0, time, event)) == pytest.approx(base, rel=1e-12)
    assert float(cox_loss(eta - 1000.0, time, event)) == pytest.approx(base, rel=1e-12)
    wide = (eta - eta.mean()) / eta.std() * 700.0
    risk = risk_sets(time, event)
    value, grad = jax.value_and_grad(negative_partial_loglik)(jnp.asarray(wide), risk)
    assert np.isfinite(float(value)) and np.isfinite(np.asarray(grad)).all()


def test_jit_compiles_once_per_cohort_size_and_serves_both_tie_methods(veteran_data):
    eta, time, event = veteran_data
    traces = []

    def counted(eta, risk):
        traces.append(1)
        return negative_partial_loglik(eta, risk)

    loss = jax.jit(counted)
    for ties in ("efron", "breslow"):
        risk = risk_sets(time, event, ties=ties)
        assert float(loss(jnp.asarray(eta), risk)) == pytest.approx(
            float(negative_partial_loglik(jnp.asarray(eta), risk)), rel=1e-14
        )
    assert len(traces) == 1


def test_float32_linear_predictor_gives_a_float32_loss(veteran_data):
    eta, time, event = veteran_data
    risk = risk_sets(time, event)
    value = negative_partial_loglik(jnp.asarray(eta, dtype=jnp.float32), risk)
    assert value.dtype == jnp.float32
    assert float(value) == pytest.approx(float(cox_loss(eta, time, event)), rel=1e-5)


def test_bad_input_is_refused_naming_the_rows():
    time, event, eta, _ = _hand_case()
    with pytest.raises(ValueError, match=r"weights must be positive; 1 are not \(rows 2\)"):
        risk_sets(time, event, np.array([1.0, 1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match=r"P3"):
        risk_sets(time, event, np.array([1.0, 1.0, 1.0, -1.0]), rows=["P0", "P1", "P2", "P3"])
    with pytest.raises(ValueError, match=r"time has 1 missing or infinite values \(rows 1\)"):
        risk_sets(np.array([2.0, np.nan, 3.0, 2.0]), event)
    with pytest.raises(ValueError, match="coded 0"):
        risk_sets(time, np.array([1.0, 2.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="no events"):
        risk_sets(time, np.zeros(4))
    with pytest.raises(ValueError, match="ties must be one of"):
        risk_sets(time, event, ties="exact")
    with pytest.raises(ValueError, match=r"eta has shape \(3,\), expected \(4,\)"):
        cox_loss(eta[:3], time, event)
