"""Batching the elastic-net CV over bootstrap resamples: what it could gain at the study's size.

The whole-procedure bootstrap (``benchmarks/test_bench_internal.py``) spends most of a
resample in its three elastic-net CVs: 3 l1_ratios x (1 full path + 5 fold paths) of the
dense solver (``toolkit.stats.coxnet._solvers.dense``) on 120 x 30 (folds: 96 x 30), about
490 chord steps a path. Two groups measure whether running many resamples' paths as one
batched program could make that much cheaper:

* ``coxnet dense paths, 16 problems of 96 x 30``: the solver's jitted path program called
  on each problem in turn (``test_ours_one_at_a_time``, what sigkit runs) against the same
  path function ``jax.vmap``-ed over the 16 problems in one program
  (``test_vmapped``). The path's nested ``while`` loops and ``cond`` s become
  batched: every branch runs, and every loop runs until its slowest problem is done.
  Both give the same coefficients (asserted to 1e-12).
* ``chord step core, 96 x 30, 1000 steps``: the smallest core of a chord step (two
  matrix-vector products with the 96 x 30 design, exp, two cumulative sums over the
  risk sets, the log-likelihood's log and an update; no control flow) as one ``lax.scan``
  of 1000 steps, for 120 problems: called per problem (``test_ours_one_at_a_time``) or
  batched over the 120 in one program (``test_batched``). This is the upper bound on what
  batching the arithmetic alone gains on this CPU.

A third group, ``dense solver, one path (100 penalties) at four sizes``, times one path at
12 x 4, 96 x 30, 384 x 120 and 960 x 300 and records its chord steps (``extra_info``), so
that the cost of a step can be read off at each size.

The problems are seeded and synthetic (8 latent factors, like mRMR's correlated top
features). Run: ``.venv/bin/pytest benchmarks/test_bench_coxnet_batch.py --benchmark-only
--benchmark-columns=median,iqr,rounds``; the medians go to benchmarks/README.md
("Whole-procedure bootstrap").
"""

from __future__ import annotations

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
_RUNS: dict[str, object] = {}


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
    return (
        data.x,
        data.death,
        data.start,
        data.end,
        data.penalty_factor,
        0.5,
        q,
        scale,
        allowed,
        solve,
        early,
    )


@pytest.fixture(scope="module")
def problems():
    return [_problem(s) for s in range(PROBLEMS)]


def _one_at_a_time(problems):
    from toolkit.stats.coxnet._solvers import dense

    return [np.asarray(dense.fit_path(*p)[0]) for p in problems]


def test_ours_one_at_a_time(benchmark, problems):
    benchmark.group = PATHS
    _one_at_a_time(problems)  # compiled outside the clock
    coefs = benchmark.pedantic(_one_at_a_time, (problems,), rounds=ROUNDS, iterations=1)
    _RUNS["ours"] = np.stack(coefs)


def test_vmapped(benchmark, problems):
    from toolkit.stats.coxnet._solvers.dense import _DENSE_MAX_STEPS, _dense_path

    benchmark.group = PATHS
    program = jax.jit(jax.vmap(lambda *a: _dense_path(*a, _DENSE_MAX_STEPS)))
    stacked = [np.stack(v) for v in zip(*problems, strict=True)]

    def run():
        return np.asarray(program(*stacked)[0])

    run()
    coef = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    if "ours" in _RUNS:
        np.testing.assert_allclose(coef, _RUNS["ours"], rtol=0, atol=1e-12)


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


def test_core_ours_one_at_a_time(benchmark, lanes):
    benchmark.group = CORE
    z, beta, w, d = lanes

    def run():
        return [
            np.asarray(_core(z[i : i + 1], beta[:1], w[:1], d[i : i + 1])) for i in range(LANES)
        ]

    run()
    out = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    _RUNS["core"] = np.concatenate(out)


def test_core_batched(benchmark, lanes):
    benchmark.group = CORE

    def run():
        return np.asarray(_core(*lanes))

    run()
    out = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    if "core" in _RUNS:
        np.testing.assert_allclose(out, _RUNS["core"], rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize(
    "shape", [(12, 4), (96, 30), (384, 120), (960, 300)], ids="{0[0]}x{0[1]}".format
)
def test_step_cost_ours(benchmark, shape):
    """One path of the dense solver at four sizes; its chord steps in ``extra_info``.

    The time a step costs (median / steps) separates what a step costs at any size (the
    12 x 4 problem: nearly no arithmetic) from the work that grows with the problem.
    """
    from toolkit.stats.coxnet._solvers import dense

    benchmark.group = "dense solver, one path (100 penalties) at four sizes"
    problem = _problem(0, *shape)

    def run():
        out = dense.fit_path(*problem)
        return np.asarray(out[4])

    run()
    counts = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    steps = int(counts[-1, 0])
    benchmark.extra_info.update(chord_steps=steps, hessian_refreshes=int(counts[-1, 1]))
    assert steps > 0
