"""sigkit's local Dask cluster: its workers' allocator environment and their cores."""

from __future__ import annotations

import os

import pytest

from toolkit._dask import local_client

TRIM = "MALLOC_TRIM_THRESHOLD_"


def _workers_value(client) -> set:
    # a lambda, so that cloudpickle sends it by value (the workers cannot import this file)
    return set(client.run(lambda: __import__("os").environ.get("MALLOC_TRIM_THRESHOLD_")).values())


def test_local_workers_start_without_dasks_trim_threshold(monkeypatch):
    # Dask's nanny would start them with MALLOC_TRIM_THRESHOLD_=65536, which turns glibc's
    # dynamic mmap threshold off (every large array mapped and zero-filled anew)
    monkeypatch.delenv(TRIM, raising=False)
    with local_client(1) as client:
        assert _workers_value(client) == {None}
        client.restart()  # a worker the nanny starts again, after the cluster's start
        assert _workers_value(client) == {None}
    assert TRIM not in os.environ  # nor is this process's environment changed for later ones


def test_a_trim_threshold_the_user_set_reaches_the_workers(monkeypatch):
    monkeypatch.setenv(TRIM, "131072")
    with local_client(1) as client:
        assert _workers_value(client) == {"131072"}


def test_core_shares_by_hand():
    from toolkit._dask_cores import core_shares

    assert core_shares([0, 1], 2) == [[0], [1]]
    assert core_shares([0, 1, 2, 3], 2) == [[0, 2], [1, 3]]
    assert core_shares([0, 1, 2, 3, 4], 2) == [[0, 2, 4], [1, 3]]
    assert core_shares([0, 1], 3) == [[0], [1], [0]]  # more workers than cores: in turn
    assert core_shares([5], 2) == [[5], [5]]
    assert core_shares([0, 1], 1) == [[0, 1]]


LINUX_2_CORES = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="core shares are set on Linux only, and differ only with 2 or more cores",
)


def _affinities(client) -> dict[str, set[tuple[int, ...]]]:
    """Per worker, the distinct cores of its threads."""

    def threads():
        import os

        tasks = os.listdir("/proc/self/task")
        return {tuple(sorted(os.sched_getaffinity(int(t)))) for t in tasks}

    return client.run(threads)


def _in_tasks(client) -> set[tuple[int, ...]]:
    """The cores a task sees on each worker (tasks run on the worker's executor thread,
    which the worker starts at its first task)."""
    futures = [
        client.submit(
            lambda: tuple(sorted(__import__("os").sched_getaffinity(0))), workers=[a], pure=False
        )
        for a in sorted(client.run(os.getpid))
    ]
    return {f.result() for f in futures}


def _assert_shared(client, cores) -> None:
    from toolkit._dask_cores import core_shares

    shares = {tuple(s) for s in core_shares(cores, 2)}
    assert len(shares) == 2 and set().union(*shares) == set(cores)  # disjoint, every core
    seen = _affinities(client)
    assert all(len(v) == 1 for v in seen.values()), seen  # every thread moved
    assert set().union(*seen.values()) == shares, seen
    assert _in_tasks(client) == shares


@LINUX_2_CORES
def test_shared_cores_move_every_thread_of_each_worker_to_its_own_share():
    cores = sorted(os.sched_getaffinity(0))
    with local_client(2, share_cores=True) as client:
        _assert_shared(client, cores)
        client.restart()  # workers started again take their share again
        _assert_shared(client, cores)
    assert sorted(os.sched_getaffinity(0)) == cores  # this process keeps its cores


@LINUX_2_CORES
def test_the_internal_validation_stage_shares_the_cores():
    from toolkit.study.stages.internal_validation import _client

    cores = sorted(os.sched_getaffinity(0))
    with _client(2) as client:
        _assert_shared(client, cores)


@LINUX_2_CORES
def test_without_shared_cores_the_workers_keep_every_core():
    cores = tuple(sorted(os.sched_getaffinity(0)))
    with local_client(1) as client:
        assert list(_affinities(client).values()) == [{cores}]
        assert _in_tasks(client) == {cores}
