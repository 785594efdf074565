"""Harrell's C with its standard error at n = 1e5 and 1e6: sigkit vs
survival::concordance (through rpy2; only the R call is timed, the data are R
objects already) vs lifelines.utils.concordance_index (C only, no SE), in one run.

Run: ``.venv/bin/pytest benchmarks/test_bench_concordance.py --benchmark-only
--benchmark-columns=median,iqr,rounds`` (add ``--benchmark-timer time.process_time``
on a shared machine: R runs inside this process through rpy2, so CPU time is
comparable across the three); medians and ratios go to benchmarks/README.md
(## Concordance).
"""

from __future__ import annotations

import numpy as np
import pytest

SIZES = [100_000, 1_000_000]
ROUNDS = {"ours": 7, "r": 5, "lifelines": 1}


def _data(n: int):
    rng = np.random.default_rng(n)
    risk = rng.normal(size=n)
    time = rng.exponential(np.exp(-risk))
    censor = rng.exponential(2.0, size=n)
    event = (time <= censor).astype(float)
    # continuous times and risk scores (a Cox linear predictor), as in a large registry
    return np.minimum(time, censor), event, risk


@pytest.fixture(scope="module", params=SIZES, ids=lambda n: f"n={n:.0e}")
def data(request):
    return _data(request.param)


def test_ours(benchmark, data):
    from toolkit.stats.concordance import harrell

    time, event, risk = data
    benchmark.group = f"Harrell C + SE, n={time.size:.0e}"
    fit = benchmark.pedantic(harrell, (time, event, risk), rounds=ROUNDS["ours"], iterations=1)
    assert 0.5 < fit.c < 1 and fit.se > 0


def test_survival_concordance(benchmark, data):
    from toolkit import rbridge
    from toolkit.stats.concordance import harrell

    time, event, risk = data
    benchmark.group = f"Harrell C + SE, n={time.size:.0e}"
    fn = rbridge.r_function(
        "function(t, e, x) { f <- survival::concordance(survival::Surv(t, e) ~ x,"
        " reverse = TRUE); c(f$concordance, f$var) }",
        ["survival"],
    )
    args = [rbridge.to_r(a) for a in (time, event, risk)]
    out = benchmark.pedantic(fn, args, rounds=ROUNDS["r"], iterations=1)
    ours = harrell(time, event, risk)
    assert abs(ours.c - out[0]) < 1e-10 and abs(ours.variance - out[1]) < 1e-14


def test_lifelines(benchmark, data):
    from lifelines.utils import concordance_index

    time, event, risk = data
    benchmark.group = f"Harrell C + SE, n={time.size:.0e}"
    c = benchmark.pedantic(
        concordance_index, (time, -risk, event), rounds=ROUNDS["lifelines"], iterations=1
    )
    assert 0.5 < c < 1
