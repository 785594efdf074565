"""The whole-procedure bootstrap at the study's size: sigkit's stage vs a plain Python loop.

Both arms run the same ``B`` resamples (``study.internal.resample_rows``; B = 1000, or
``SIGKIT_BENCH_INTERNAL_B``) of the same seeded synthetic training set
(``test_bench_study.synthetic_study(201)``: 120 training patients, 3 readers, 2048 deep
features, the synthetic study's clinical table and study.toml) through the same
procedure: ICC filter, mRMR, elastic-net CV and the signature, the univariate screen
and stepwise AIC of both nomograms, the three final fits, and every statistic on the
resample and on the training set.

* ``test_ours``: what the internal_validation stage runs, timed whole: a Dask
  LocalCluster of 2 single-threaded worker processes started, each on its own core
  (``toolkit._dask.local_client(share_cores=True)``), the
  training data scattered, ``study.internal.run_replicates`` over it, the cluster
  closed. Start-up, imports and the workers' compilations (read from
  ``JAX_COMPILATION_CACHE_DIR``) are inside the clock.
* ``test_plain_loop``: the same procedure as a user would write it with sigkit's public
  functions, one resample after another in this process: the resample's features table
  (every reader's row of each drawn patient) and clinical table, then
  ``study.signature.build``, ``study.nomograms.select`` / ``fit_model`` and
  ``study.internal.evaluate``. It runs warm: a few resamples run untimed first, so its
  compilations are outside its clock (kind to the reference).

After the timing the two arms' C-indexes are checked equal on every resample both used.
One round each (a B = 1000 round takes minutes). Wall-clock time is the only honest
timer here (the sigkit arm's work is in other processes): run with pytest-benchmark's
default timer, as ``make bench`` does; ``--benchmark-timer time.process_time`` is refused.
"""

from __future__ import annotations

import os

import pandas as pd
import pytest

B = int(os.environ.get("SIGKIT_BENCH_INTERNAL_B", "1000"))
WORKERS = 2
GROUP = f"whole-procedure bootstrap, n=120 x 2048 features, B={B}"
_RUNS: dict[str, object] = {}


def study_inputs(request, warm: range):
    """(config, features table, clinical frame, ``TrainingData``) of the benchmark's study,
    after the resamples ``warm`` ran untimed (this process's compilations, and the
    persistent cache the workers read). Refuses a timer other than the wall clock's."""
    from test_bench_study import _config, synthetic_study

    from toolkit.study import internal

    timer = request.config.getoption("benchmark_timer", None)
    if timer is not None and "perf_counter" not in str(timer):
        pytest.fail(f"this benchmark needs the wall-clock timer (perf_counter), got {timer}")
    config = _config()
    features, clinical = synthetic_study(201)
    data = internal.training_data(features, clinical.frame, config)
    internal.run_replicates(data, warm, config)
    return config, features, clinical.frame, data


@pytest.fixture(scope="module")
def study(request):
    return study_inputs(request, range(B, B + 4))


def plain_replicate(features, clinical, config, number: int):
    """One resample of the procedure as a plain loop over sigkit's public functions.

    None where the procedure cannot run on the resample (as sigkit drops it)."""
    from toolkit.study import internal
    from toolkit.study import nomograms as nm
    from toolkit.study import signature as sig

    train = clinical[clinical["set"].isin(config.study.train_sets)]
    rows = internal.resample_rows(len(train), config.internal_validation.seed, number)
    drawn = train.index[rows]
    labels = pd.Index([f"{p}~{i}" for i, p in enumerate(drawn)], name="patient")
    indexed = features.set_index(["patient", "reader"])
    blocks = []
    for reader in config.imaging.reader_order:
        block = indexed.xs(reader, level="reader").loc[drawn].set_axis(labels)
        blocks.append(block.reset_index().assign(reader=reader))
    boot = train.iloc[rows].set_axis(labels)
    try:
        built = sig.build(pd.concat(blocks, ignore_index=True), boot, config)
        primary = indexed.xs(config.imaging.primary_reader, level="reader")
        original = train.assign(signature=built.signature.score(primary.loc[train.index]))
        boot = boot.assign(signature=original["signature"].to_numpy()[rows])
        chosen = nm.select(boot, config)
        times = config.validation.times
        models = {
            name: nm.fit_model(name, boot, variables, chosen.levels, times)
            for name, variables in (
                ("signature", ["signature"]),
                ("clinical", chosen.clinical),
                ("integrated", chosen.integrated),
            )
        }
    except internal.PROCEDURE_ERRORS:
        return None
    return {
        "apparent": internal.evaluate(models, boot, config),
        "test": internal.evaluate(models, original, config),
    }


def _sigkit(data, config):
    from toolkit._dask import local_client
    from toolkit.study import internal

    with local_client(WORKERS, share_cores=True) as client:  # as the stage starts it
        return internal.run_replicates(data, range(B), config, client)


def _plain(features, clinical, config):
    return [plain_replicate(features, clinical, config, b) for b in range(B)]


def test_ours(benchmark, study):
    config, _, _, data = study
    benchmark.group = GROUP
    replicates = benchmark.pedantic(_sigkit, (data, config), rounds=1, iterations=1)
    benchmark.extra_info.update(
        workers=WORKERS,
        share_cores=True,
        load_average_1min=os.getloadavg()[0],
        n_used=sum(r.used for r in replicates),
    )
    _RUNS["sigkit"] = replicates
    assert len(replicates) == B and sum(r.used for r in replicates) >= 0.9 * B


def _c_indexes(result: dict) -> dict[tuple[str, str], float]:
    """(side, model) -> C-index of a plain-loop result (the C-index's horizon is NaN)."""
    return {
        (side, model): value
        for side in ("apparent", "test")
        for (model, metric, _), value in result[side].items()
        if metric == "c_index"
    }


def assert_same_c_indexes(records, results) -> None:
    """The stage's ``records`` and the plain loop's ``results`` of the same resamples: used
    alike, and every C-index equal on both sides."""
    assert [r.used for r in records] == [x is not None for x in results]
    for record, result in zip(records, results, strict=True):
        if result is None:
            continue
        theirs = _c_indexes(result)
        for v in record.values:
            if v.metric == "c_index":
                assert (v.apparent, v.test) == (
                    theirs["apparent", v.model],
                    theirs["test", v.model],
                ), f"resample {record.number}, {v.model}"


def test_plain_loop(benchmark, study):
    config, features, clinical, data = study
    benchmark.group = GROUP
    results = benchmark.pedantic(_plain, (features, clinical, config), rounds=1, iterations=1)
    benchmark.extra_info.update(load_average_1min=os.getloadavg()[0])
    ours = _RUNS.get("sigkit")
    if ours is None:  # run alone (-k plain): the stage's records, computed here
        from toolkit.study import internal

        ours = internal.run_replicates(data, range(B), config)
    assert_same_c_indexes(ours, results)
