"""Cox fit (Efron, 1e5 rows x 10 covariates): sigkit vs survival::coxph, in one run.

coxph runs through rpy2 and only the R call is timed (the matrix and vectors are
R objects already). The data mimic day-resolution follow-up, so event times tie.

Run: ``.venv/bin/pytest benchmarks/test_bench_cox.py --benchmark-only
--benchmark-columns=median,iqr,rounds``; medians and the ratio go to
benchmarks/README.md (## Cox).
"""

from __future__ import annotations

import numpy as np
import pytest

N, P = 100_000, 10
ROUNDS = 5


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(20261127)
    x = rng.normal(size=(N, P))
    beta = np.linspace(-0.5, 0.5, P)
    event_time = np.round(rng.exponential(np.exp(-x @ beta)) * 365)
    censor_time = np.round(rng.exponential(1.5, size=N) * 365)
    time = np.minimum(event_time, censor_time) + 1.0
    event = (event_time <= censor_time).astype(float)
    return x, time, event


def test_ours(benchmark, data):
    from toolkit.stats import cox

    benchmark.group = f"Cox fit, Efron, {N:.0e} x {P}"
    fit = benchmark.pedantic(cox.fit, data, rounds=ROUNDS, iterations=1)
    assert fit.converged


def test_survival_coxph(benchmark, data):
    from toolkit import rbridge
    from toolkit.stats import cox

    benchmark.group = f"Cox fit, Efron, {N:.0e} x {P}"
    fn = rbridge.r_function(
        "function(x, t, e) coef(survival::coxph(survival::Surv(t, e) ~ x))", ["survival"]
    )
    args = [rbridge.to_r(a) for a in data]
    coef = benchmark.pedantic(fn, args, rounds=ROUNDS, iterations=1)
    ours = cox.fit(*data)
    np.testing.assert_allclose(ours.coef, np.asarray(coef), rtol=1e-7)
