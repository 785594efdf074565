"""Bootstrap validation of a Cox model, B = 1000, at the nomogram's size (120 patients,
4 covariates): sigkit's ``validate_cox`` vs ``rms::validate(cph(...))`` 6.5-0 (through
rpy2; only the R call is timed, the data are R objects already), in one run.

The data mimic the study's clinical nomogram: 120 training patients, follow-up in
whole months (so event times tie), about 75 % events. Both draw their own 1,000
resamples (the values are checked equal to 1e-8 on R's resamples after the timing).

Run: ``.venv/bin/pytest benchmarks/test_bench_validate.py --benchmark-only
--benchmark-columns=median,iqr,rounds --benchmark-timer time.process_time`` (R runs
inside this process, so CPU time is comparable on a shared machine); ``make bench``
runs it with the others and benchmarks/README.md's measured tables come from the JSON.
"""

from __future__ import annotations

import numpy as np
import pytest

N, P, B = 120, 4, 1000
ROUNDS = {"ours": 5, "r": 3}
GROUP = f"rms::validate, Cox n={N} x {P}, B={B}"


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(20261204)
    x = rng.normal(size=(N, P))
    event_time = rng.exponential(24 * np.exp(-x @ np.array([0.6, 0.4, -0.3, 0.0])))
    censor_time = rng.exponential(60, size=N)
    time = np.ceil(np.minimum(event_time, censor_time))
    return x, time, (event_time <= censor_time).astype(float)


def test_ours(benchmark, data):
    from toolkit.stats.validate import validate_cox

    benchmark.group = GROUP
    out = benchmark.pedantic(
        validate_cox, data, {"B": B, "seed": 1}, rounds=ROUNDS["ours"], iterations=1
    )
    assert out.table["n"].min() >= B - 10


def test_rms_validate(benchmark, data):
    from toolkit import rbridge
    from toolkit.rbridge.validate import rms_validate
    from toolkit.stats.validate import validate_cox

    benchmark.group = GROUP
    fn = rbridge.r_function(
        "function(x, t, e, B) { suppressPackageStartupMessages(library(rms)); set.seed(1);"
        " f <- cph(Surv(t, e) ~ x, x = TRUE, y = TRUE, surv = TRUE); unclass(validate(f, B = B)) }",
        ["rms"],
    )
    args = [rbridge.to_r(a) for a in data] + [rbridge.to_r(B)]
    benchmark.pedantic(fn, args, rounds=ROUNDS["r"], iterations=1)
    ref = rms_validate(*data, B=B, seed=1)
    ours = validate_cox(*data, resamples=ref["resamples"])
    values = ["index.orig", "training", "test", "optimism", "index.corrected"]
    np.testing.assert_allclose(ours.table[values], ref["table"][values], rtol=0, atol=1e-8)
