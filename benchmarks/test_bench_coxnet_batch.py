"""Batching the elastic-net CV over bootstrap resamples: what it could gain at the study's size.

The whole-procedure bootstrap (``benchmarks/test_bench_internal.py``) spends most of a
resample in its three elastic-net CVs: 3 l1_ratios x (1 full path + 5 fold paths) of the
dense solver (``toolkit.stats.coxnet._solvers.dense``) on 120 x 30 (folds: 96 x 30), some
500 to 800 chord steps a path. sigkit fits each path alone (a CV's folds one after another,
as one ``lax.map`` program). Three groups measure whether running many resamples' paths as
one batched program could make that much cheaper:

* ``coxnet dense paths, 16 problems of 96 x 30``: the solver's jitted path program called
  on each problem in turn (``test_ours_one_at_a_time``) against the same path function
  ``jax.vmap``-ed over the 16 problems in one program (``test_vmapped``). Batched, the
  path's nested ``while`` loops and ``cond`` branches all run, and every loop runs until
  its slowest problem is done. Each test checks that every path converged, and the
  vmapped one that its coefficients equal the one-at-a-time ones (1e-12).
* ``chord step core, 96 x 30, 1000 steps x 120 problems``: a synthetic kernel, not sigkit's
  code: the smallest core of a chord step (two matrix-vector products with the 96 x 30
  design, exp, two cumulative sums over the risk sets, the log-likelihood's log and an
  update; no control flow) as one ``lax.scan`` of 1000 steps, for 120 problems, called per
  problem (``test_core_one_at_a_time``) or batched over the 120 in one program
  (``test_core_batched``, checked equal to the former). Its ratio is an upper bound on what
  batching the step's arithmetic alone gains on this CPU.
* ``dense solver, one path (100 penalties) at four sizes``: one path at 12 x 4, 96 x 30,
  384 x 120 and 960 x 300, its chord steps and Hessian refreshes in ``extra_info``. The
  path's time over its steps (which also carries the scan over 100 penalties and the
  refreshes) bounds what a step costs at each size.

The problems are seeded and synthetic (8 latent factors, like mRMR's correlated top
features). Each test records the 1-minute load average. Run:
``.venv/bin/pytest benchmarks/test_bench_coxnet_batch.py --benchmark-only
--benchmark-columns=median,iqr,rounds``; the medians go to benchmarks/README.md
("Whole-procedure bootstrap").
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from toolkit._jax import jax

jnp = jax.numpy
lax = jax.lax

N, P = 96, 30
PROBLEMS = 16
LANES = 120
STEPS = 1000
ROUNDS = 5
PATHS = f"coxnet dense paths, {PROBLEMS} problems of {N} x {P}"
CORE = f"chord step core, {N} x {P}, {STEPS} steps x {LANES} problems"


def _problem(seed: int, n: int = N, p: int = P):
    """One path problem in the dense solver's arguments (sorted, centred, default sequence)."""
    from toolkit.stats.coxnet._data import column_scales, prepare
    from toolkit.stats.coxnet._sequence import penalties_for

    rng = np.random.default_rng([20261207, seed])
    latent = rng.normal(size=(n, min(8, p)))
    x = latent @ rng.normal(size=(latent.shape[1], p)) + rng.normal(size=(n, p))
    time = rng.exponential(size=n) * np.exp(-0.6 * latent[:, 0])
    event = (rng.random(n) < 0.6).astype(float)
    data = prepare(x, time, event, None, None)
    q = data.weights / data.weights.sum()
    scale = column_scales(data.x, q, True)
    allowed = np.ones(p, dtype=bool)
    _, solve, early = penalties_for(data, q, scale, allowed, 0.5, None, 100, None, n)
    return (data.x, data.death, data.start, data.end, data.penalty_factor, 0.5, q, scale,
            allowed, solve, early)  # fmt: skip


@pytest.fixture(scope="module")
def problems():
    return [_problem(s) for s in range(PROBLEMS)]


def _load(benchmark) -> None:
    benchmark.extra_info["load_average_1min"] = os.getloadavg()[0]


def _one_at_a_time(problems):
    """Each problem's path by the solver's own program: (coefficients, failed) stacked."""
    from toolkit.stats.coxnet._solvers import dense

    outs = [dense.fit_path(*p) for p in problems]
    return np.stack([np.asarray(o[0]) for o in outs]), np.array([bool(o[3]) for o in outs])


def test_ours_one_at_a_time(benchmark, problems):
    benchmark.group = PATHS
    _one_at_a_time(problems)  # compiled outside the clock
    _, failed = benchmark.pedantic(_one_at_a_time, (problems,), rounds=ROUNDS, iterations=1)
    _load(benchmark)
    assert not failed.any(), "a path did not converge: its time is not a whole fit"


def test_vmapped(benchmark, problems):
    from toolkit.stats.coxnet._solvers.dense import _DENSE_MAX_STEPS, _dense_path

    benchmark.group = PATHS
    program = jax.jit(jax.vmap(lambda *a: _dense_path(*a, _DENSE_MAX_STEPS)))
    stacked = [np.stack(v) for v in zip(*problems, strict=True)]

    def run():
        out = program(*stacked)
        return np.asarray(out[0]), np.asarray(out[3])

    run()
    coef, failed = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    _load(benchmark)
    assert not failed.any(), "a path did not converge: its time is not a whole fit"
    np.testing.assert_allclose(coef, _one_at_a_time(problems)[0], rtol=0, atol=1e-12)


def _core_step(carry, _):
    z, beta, w, d = carry
    way = 0.5 * beta + 0.01
    eta = 0.1 * jnp.einsum("lnp,lp->ln", z, way)
    e = jnp.exp(eta - eta.max(axis=1, keepdims=True)) * w
    risk = jnp.cumsum(e[:, ::-1], axis=1)[:, ::-1]
    residual = d - e * jnp.cumsum(d / risk, axis=1)
    g = jnp.einsum("lnp,ln->lp", z, residual)
    loglik = jnp.sum(d * (eta - jnp.log(risk)), axis=1)
    beta = jnp.where(jnp.abs(g) > 0.1, beta + 1e-3 * g, 0.999 * beta) + 1e-6 * loglik[:, None]
    return (z, beta, w, d), None


@jax.jit
def _core(z, beta, w, d):
    return lax.scan(_core_step, (z, beta, w, d), None, length=STEPS)[0][1]


@pytest.fixture(scope="module")
def lanes():
    rng = np.random.default_rng(20261207)
    z = rng.normal(size=(LANES, N, P))
    death = (rng.random((LANES, N)) < 0.6).astype(float)
    return z, np.zeros((LANES, P)), np.full((LANES, N), 1 / N), death


def _core_one_at_a_time(z, beta, w, d):
    """The kernel on each problem alone (a batch of one), stacked."""
    one = [_core(z[i : i + 1], beta[i : i + 1], w[i : i + 1], d[i : i + 1]) for i in range(LANES)]
    return np.concatenate([np.asarray(b) for b in one])


def test_core_one_at_a_time(benchmark, lanes):
    benchmark.group = CORE
    _core_one_at_a_time(*lanes)
    out = benchmark.pedantic(_core_one_at_a_time, lanes, rounds=ROUNDS, iterations=1)
    _load(benchmark)
    assert np.all(np.isfinite(out)) and np.any(out != 0)


def test_core_batched(benchmark, lanes):
    benchmark.group = CORE

    def run():
        return np.asarray(_core(*lanes))

    run()
    out = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    _load(benchmark)
    np.testing.assert_allclose(out, _core_one_at_a_time(*lanes), rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "shape", [(12, 4), (96, 30), (384, 120), (960, 300)], ids="{0[0]}x{0[1]}".format
)
def test_step_cost_ours(benchmark, shape):
    """One path of the dense solver at ``shape``; its chord steps in ``extra_info``."""
    from toolkit.stats.coxnet._solvers import dense

    benchmark.group = "dense solver, one path (100 penalties) at four sizes"
    problem = _problem(0, *shape)

    def run():
        out = dense.fit_path(*problem)
        return np.asarray(out[4]), bool(out[3])

    run()
    counts, failed = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update(
        chord_steps=int(counts[-1, 0]), hessian_refreshes=int(counts[-1, 1])
    )
    _load(benchmark)
    assert not failed, f"the {shape} path did not converge: its time is not a whole fit"
