"""Elastic-net Cox path and 5-fold CV: sigkit (JAX) vs glmnet 4.1-6 vs scikit-survival.

n patients x 2048 features (seeded Gaussian, 10 true signals), l1_ratio 0.5,
default sequence (100 penalties; glmnet's early stop applies to both). glmnet
runs through rpy2 and only the R call is timed (data already R objects).
"cold" clears JAX's in-memory caches first, so it includes loading the
compiled program from the persistent compilation cache (on, in a folder
under the system temp dir) or compiling it; "warm" reuses the compiled
program.

Run: ``.venv/bin/pytest benchmarks/test_bench_coxnet.py --benchmark-only
--benchmark-columns=median,iqr,rounds``; medians and ratios go to
benchmarks/README.md (## Elastic-net Cox). ``SIGKIT_BENCH_COXNET_N`` and
``SIGKIT_BENCH_COXNET_P`` change the size (the study's CV: N=120, P=30).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

from toolkit._jax import jax

N = int(os.environ.get("SIGKIT_BENCH_COXNET_N", "200"))
P = int(os.environ.get("SIGKIT_BENCH_COXNET_P", "2048"))
L1_RATIO = 0.5
ROUNDS = 3

jax.config.update(
    "jax_compilation_cache_dir", os.path.join(tempfile.gettempdir(), "sigkit-jax-cache")
)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(20261127)
    x = rng.standard_normal((N, P))
    beta = np.zeros(P)
    beta[: min(10, P)] = np.linspace(0.8, 0.3, min(10, P)) * np.where(
        np.arange(min(10, P)) % 2, -1.0, 1.0
    )
    true_time = rng.exponential(np.exp(-(x @ beta))) * 12
    censor = rng.exponential(24, N)
    time = np.minimum(true_time, censor)
    return x, time, (true_time <= censor).astype(float)


@pytest.fixture(scope="module")
def fold_id():
    return np.random.default_rng(5).permutation(np.resize(np.arange(1, 6), N))


def _cold(function):
    def run(*args, **kwargs):
        from toolkit.stats.coxnet._solvers._buffers import BUFFERS

        jax.clear_caches()
        BUFFERS.clear()  # the active-set solver's memo of buffer sizes, as in a new process
        return function(*args, **kwargs)

    return run


def test_path_ours_cold(benchmark, data):
    from toolkit.stats import coxnet

    benchmark.group = f"coxnet path, n={N}, p={P}"
    coxnet.path(*data, L1_RATIO)  # fills the persistent cache
    benchmark.pedantic(_cold(coxnet.path), (*data, L1_RATIO), rounds=ROUNDS, iterations=1)


def test_path_ours_warm(benchmark, data):
    from toolkit.stats import coxnet

    benchmark.group = f"coxnet path, n={N}, p={P}"
    coxnet.path(*data, L1_RATIO)
    fit = benchmark.pedantic(coxnet.path, (*data, L1_RATIO), rounds=ROUNDS, iterations=1)
    assert fit.n_nonzero.max() > 5


def _r_args(data):
    from toolkit import rbridge

    rbridge.require("glmnet")
    x, time, event = data
    surv = rbridge.r_function("function(t, e) survival::Surv(t, e)", ["survival"])(
        rbridge.to_r(time), rbridge.to_r(event)
    )
    return rbridge.to_r(x), surv


def test_path_glmnet(benchmark, data):
    from toolkit import rbridge
    from toolkit.stats import coxnet

    benchmark.group = f"coxnet path, n={N}, p={P}"
    fn = rbridge.r_function(
        "function(x, y, a) glmnet::glmnet(x, y, family = 'cox', alpha = a)$lambda", ["glmnet"]
    )
    x_r, y_r = _r_args(data)
    lam = benchmark.pedantic(fn, (x_r, y_r, L1_RATIO), rounds=ROUNDS, iterations=1)
    ours = coxnet.penalty_sequence(*data, L1_RATIO)
    np.testing.assert_allclose(np.asarray(lam), ours[: len(lam)], rtol=1e-8)


def test_path_sksurv(benchmark, data):
    from sksurv.linear_model import CoxnetSurvivalAnalysis
    from sksurv.util import Surv

    benchmark.group = f"coxnet path, n={N}, p={P}"
    x, time, event = data
    y = Surv.from_arrays(event.astype(bool), time)

    def fit():
        model = CoxnetSurvivalAnalysis(l1_ratio=L1_RATIO, n_alphas=100, normalize=True)
        return model.fit(x, y)

    benchmark.pedantic(fit, rounds=ROUNDS, iterations=1)


def test_cv_ours_warm(benchmark, data, fold_id):
    from toolkit.stats import coxnet

    benchmark.group = f"coxnet 5-fold CV, n={N}, p={P}"
    coxnet.cv(*data, L1_RATIO, fold_id=fold_id)
    benchmark.pedantic(
        coxnet.cv, (*data, L1_RATIO), {"fold_id": fold_id}, rounds=ROUNDS, iterations=1
    )


def test_cv_ours_cold(benchmark, data, fold_id):
    from toolkit.stats import coxnet

    benchmark.group = f"coxnet 5-fold CV, n={N}, p={P}"
    coxnet.cv(*data, L1_RATIO, fold_id=fold_id)
    benchmark.pedantic(
        _cold(coxnet.cv), (*data, L1_RATIO), {"fold_id": fold_id}, rounds=1, iterations=1
    )


def test_cv_glmnet(benchmark, data, fold_id):
    from toolkit import rbridge

    benchmark.group = f"coxnet 5-fold CV, n={N}, p={P}"
    fn = rbridge.r_function(
        "function(x, y, a, f) glmnet::cv.glmnet(x, y, family = 'cox', alpha = a, foldid = f)"
        "$lambda.min",
        ["glmnet"],
    )
    x_r, y_r = _r_args(data)
    folds = rbridge.to_r(fold_id)
    benchmark.pedantic(fn, (x_r, y_r, L1_RATIO, folds), rounds=ROUNDS, iterations=1)
