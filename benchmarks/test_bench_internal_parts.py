"""Where a resample of the whole-procedure bootstrap spends its time, and what 2 workers give.

``benchmarks/test_bench_internal.py`` times B = 1000 resamples of the stage against a plain
loop. This file measures the parts a bound on that ratio is made of, on the same seeded
synthetic training set (``test_bench_study.synthetic_study(201)``: 120 training patients,
3 readers, 2048 deep features) and the same resamples, in one run:

* ``24 resamples: the plain loop, the stage in this process and on 1 and 2 workers``: the
  same 24 resamples
  - as the plain loop runs them (``test_plain_loop``: ``test_bench_internal.plain_replicate``,
    which builds each resample's tables and calls sigkit's public functions), in this warm
    process;
  - as the stage runs them, by ``study.internal.run_replicates``: without a client in this
    process (``test_stage[this process]``), and on a Dask LocalCluster of 1 and of 2
    single-threaded worker processes, each on its own share of the cores, as the stage
    starts it (``test_stage[1 worker]``, ``test_stage[2 workers]``), and of 2 workers that
    each may use every core, as the stage did before (``test_stage[2 workers, every
    core]``). Each cluster is started and warmed outside the clock (the data's scatter to
    the workers is inside it, as in the stage).
* ``8 resamples: the procedure and its elastic-net CVs``: 8 resamples by ``run_replicates``
  in this process (``test_procedure``) and their 24 ``coxnet.cv`` calls alone
  (``test_cv_calls``: each call's arguments recorded while the resamples ran untimed, then
  the calls replayed).

Each test checks its records: every arm's C-indexes equal the stage's one-process ones, and
the replayed CV calls choose the same penalties. The 1-minute load average is in
``extra_info``, and for the 24-resample group the CPU seconds its working processes spent
per wall-clock second (this process's, or the workers' summed; XLA runs a program on a pool
of threads, so one process can use more than one core). Wall-clock timer only (the workers'
time is in other processes); run:
``.venv/bin/pytest benchmarks/test_bench_internal_parts.py --benchmark-only
--benchmark-columns=median,iqr,rounds``; the medians go to benchmarks/README.md
("Whole-procedure bootstrap").
"""

from __future__ import annotations

import os
import time

import pytest

SPLIT = "8 resamples: the procedure and its elastic-net CVs"
WORKERS = "24 resamples: the plain loop, the stage in this process and on 1 and 2 workers"
SPLIT_NUMBERS = range(8)
WORKER_NUMBERS = range(100, 124)
ROUNDS = 3


@pytest.fixture(scope="module")
def study(request):
    from test_bench_internal import study_inputs

    return study_inputs(request, range(1000, 1004))


def _load(benchmark) -> None:
    benchmark.extra_info["load_average_1min"] = os.getloadavg()[0]


def _cores_used(benchmark, run, cpu_seconds):
    """``benchmark.pedantic(run)``, recording in ``extra_info`` the CPU seconds that the
    processes doing the work spent per wall-clock second over its rounds (their threads
    together: XLA runs a program's operations on a pool of threads). ``cpu_seconds()`` is
    those processes' CPU time so far."""
    cpu, wall = cpu_seconds(), time.perf_counter()
    out = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    used = (cpu_seconds() - cpu) / (time.perf_counter() - wall)
    benchmark.extra_info["cpu_seconds_per_wall_second"] = round(used, 3)
    return out


def _c_indexes(records) -> list[dict[str, float]]:
    return [
        {v.model: (v.apparent, v.test) for v in r.values if v.metric == "c_index"} for r in records
    ]


@pytest.fixture(scope="module")
def reference(study):
    """The stage's records of every resample here, in this process (untimed)."""
    from toolkit.study import internal

    config, _, _, data = study
    numbers = [*SPLIT_NUMBERS, *WORKER_NUMBERS]
    return dict(zip(numbers, internal.run_replicates(data, numbers, config), strict=True))


def test_plain_loop(benchmark, study, reference):
    from test_bench_internal import assert_same_c_indexes, plain_replicate

    config, features, clinical, _ = study
    benchmark.group = WORKERS

    def run():
        return [plain_replicate(features, clinical, config, b) for b in WORKER_NUMBERS]

    results = _cores_used(benchmark, run, time.process_time)
    _load(benchmark)
    assert_same_c_indexes([reference[b] for b in WORKER_NUMBERS], results)


def test_procedure(benchmark, study, reference):
    from toolkit.study import internal

    config, _, _, data = study
    benchmark.group = SPLIT
    records = benchmark.pedantic(
        internal.run_replicates, (data, SPLIT_NUMBERS, config), rounds=ROUNDS, iterations=1
    )
    _load(benchmark)
    assert _c_indexes(records) == _c_indexes([reference[b] for b in SPLIT_NUMBERS])


@pytest.fixture(scope="module")
def cv_calls(study):
    """Every ``coxnet.cv`` call of the split's resamples: (args, kwargs, chosen penalty)."""
    from toolkit.stats import coxnet
    from toolkit.study import internal

    config, _, _, data = study
    calls, original = [], coxnet.cv

    def recording(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append((args, kwargs, float(out.penalty_min)))
        return out

    coxnet.cv = recording  # fit_signature looks coxnet.cv up at each call
    try:
        internal.run_replicates(data, SPLIT_NUMBERS, config)
    finally:
        coxnet.cv = original
    return calls


def test_cv_calls(benchmark, cv_calls):
    from toolkit.stats import coxnet

    benchmark.group = SPLIT

    def run():
        return [float(coxnet.cv(*a, **k).penalty_min) for a, k, _ in cv_calls]

    chosen = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    benchmark.extra_info["cv_calls"] = len(cv_calls)
    _load(benchmark)
    assert chosen == [c for _, _, c in cv_calls]
    assert len(cv_calls) == 3 * len(SPLIT_NUMBERS)


@pytest.mark.parametrize(
    ("workers", "share"),
    [(0, False), (1, True), (2, True), (2, False)],
    ids=["this process", "1 worker", "2 workers", "2 workers, every core"],
)
def test_stage(benchmark, study, reference, workers, share):
    from toolkit._dask import local_client
    from toolkit.study import internal

    config, _, _, data = study
    benchmark.group = WORKERS

    def timed(client, cpu_seconds):
        def run():
            return internal.run_replicates(data, WORKER_NUMBERS, config, client)

        return _cores_used(benchmark, run, cpu_seconds)

    if workers == 0:
        records = timed(None, time.process_time)
    else:
        with local_client(workers, share_cores=share) as client:
            # every worker compiles (or reads the persistent cache) outside the clock
            internal.run_replicates(data, range(2000, 2000 + 2 * workers), config, client)
            records = timed(client, lambda: sum(client.run(time.process_time).values()))
    benchmark.extra_info.update(workers=workers, share_cores=share)
    _load(benchmark)
    assert _c_indexes(records) == _c_indexes([reference[b] for b in WORKER_NUMBERS])
