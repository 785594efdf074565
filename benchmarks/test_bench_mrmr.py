"""mRMR top-50 of 2048 features at n=200 (ours vs mrmr_selection), and stepwise AIC
(ours vs MASS::stepAIC through rpy2), side by side in one run.

Run: ``.venv/bin/pytest benchmarks/test_bench_mrmr.py --benchmark-only
--benchmark-columns=median,iqr,rounds``; medians and ratios go to benchmarks/README.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from validation import datasets

N, P, K = 200, 2048, 50


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(2026)
    x = rng.normal(size=(N, P))
    x[:, 1:] += 0.6 * x[:, :-1]  # neighbouring features correlate, as CNN channels do
    lp = x[:, :10] @ rng.normal(scale=0.3, size=10)
    time = rng.exponential(size=N) * np.exp(-lp)
    event = (rng.uniform(size=N) < 0.7).astype(float)
    names = [f"f{j}" for j in range(P)]
    return pd.DataFrame(x, columns=names), time, event, lp


@pytest.mark.benchmark(group="mrmr top-50 of 2048, n=200")
def test_ours_classic_survival(benchmark, features):
    from toolkit.stats import mrmr

    X, time, event, _ = features
    res = benchmark(mrmr.rank, X, (time, event), K)
    assert len(res.indices) == K


@pytest.mark.benchmark(group="mrmr top-50 of 2048, n=200")
def test_ours_classic_numeric_target(benchmark, features):
    from toolkit.stats import mrmr

    X, _, _, lp = features
    res = benchmark(mrmr.rank, X, lp, K)
    assert len(res.indices) == K


@pytest.mark.benchmark(group="mrmr top-50 of 2048, n=200")
def test_mrmr_selection_regression(benchmark, features):
    import mrmr as mrmr_selection

    X, _, _, lp = features
    y = pd.Series(lp)
    chosen = benchmark.pedantic(
        mrmr_selection.mrmr_regression,
        kwargs={"X": X, "y": y, "K": K, "show_progress": False, "n_jobs": 1},
        rounds=3,
        iterations=1,
    )
    assert len(chosen) == K


LUNG, PBC = datasets.STEPWISE_LUNG, datasets.STEPWISE_PBC


@pytest.fixture(scope="module")
def lung_cc():
    from toolkit import rbridge

    return datasets.stepwise_lung(rbridge.dataset("lung"))


@pytest.mark.benchmark(group="stepwise AIC both, lung (7 terms)")
def test_ours_stepwise(benchmark, lung_cc):
    from toolkit.stats import stepwise

    res = benchmark.pedantic(
        stepwise.aic, args=(lung_cc, "time", "event", LUNG), rounds=5, iterations=1
    )
    assert res.variables


@pytest.mark.benchmark(group="stepwise AIC both, lung (7 terms)")
def test_mass_stepaic(benchmark, lung_cc):
    from toolkit.rbridge import stepwise as r_stepwise

    res = benchmark.pedantic(
        r_stepwise.step_aic,
        args=(lung_cc, "time", "event", LUNG, LUNG),
        rounds=5,
        iterations=1,
    )
    assert res["variables"]


@pytest.fixture(scope="module")
def pbc_cc():
    from toolkit import rbridge

    return datasets.stepwise_pbc(rbridge.dataset("pbc"))


@pytest.mark.benchmark(group="stepwise AIC both, pbc (16 terms)")
def test_ours_stepwise_pbc(benchmark, pbc_cc):
    from toolkit.stats import stepwise

    res = benchmark.pedantic(
        stepwise.aic, args=(pbc_cc, "time", "event", PBC), rounds=3, iterations=1
    )
    assert res.variables


@pytest.mark.benchmark(group="stepwise AIC both, pbc (16 terms)")
def test_mass_stepaic_pbc(benchmark, pbc_cc):
    from toolkit.rbridge import stepwise as r_stepwise

    res = benchmark.pedantic(
        r_stepwise.step_aic, args=(pbc_cc, "time", "event", PBC, PBC), rounds=3, iterations=1
    )
    assert res["variables"]
