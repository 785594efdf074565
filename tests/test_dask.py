"""sigkit's local Dask cluster: its workers' allocator environment and their cores."""

from __future__ import annotations

import os

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
    from toolkit._dask import core_shares

    assert core_shares([0, 1], 2) == [[0], [1]]
    assert core_shares([0, 1, 2, 3], 2) == [[0, 2], [1, 3]]
    assert core_shares([0, 1, 2, 3, 4], 2) == [[0, 2, 4], [1, 3]]
    assert core_shares([0, 1], 3) == [[0], [1], [0]]  # more workers than cores: in turn
    assert core_shares([5], 2) == [[5], [5]]
    assert core_shares([0, 1], 1) == [[0, 1]]


def _affinities(client) -> dict[str, dict[str, list[int]]]:
    """Per worker, each of its threads' cores (by thread id)."""

    def threads():
        import os

        return {t: sorted(os.sched_getaffinity(int(t))) for t in os.listdir("/proc/self/task")}

    return client.run(threads)


def test_shared_cores_move_every_thread_of_each_worker_to_its_own_share():
    from toolkit._dask import core_shares

    cores = sorted(os.sched_getaffinity(0))
    with local_client(2, share_cores=True) as client:
        addresses = sorted(client.run(os.getpid))
        by_worker = _affinities(client)
        # a task runs on the worker's executor thread, started before the move
        tasks = {
            a: client.submit(
                lambda: sorted(__import__("os").sched_getaffinity(0)), workers=[a], pure=False
            )
            for a in addresses
        }
        in_task = {a: f.result() for a, f in tasks.items()}
    shares = core_shares(cores, 2)
    for address, share in zip(addresses, shares, strict=True):
        assert {tuple(c) for c in by_worker[address].values()} == {tuple(share)}, address
        assert in_task[address] == share
    if len(cores) >= 2:
        assert not set(shares[0]) & set(shares[1]) and set(shares[0]) | set(shares[1]) == set(cores)
    assert sorted(os.sched_getaffinity(0)) == cores  # this process keeps its cores


def test_without_shared_cores_the_workers_keep_every_core():
    cores = sorted(os.sched_getaffinity(0))
    with local_client(1) as client:
        (threads,) = _affinities(client).values()
    assert {tuple(c) for c in threads.values()} == {tuple(cores)}
