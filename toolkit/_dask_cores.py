"""Each worker of a local Dask cluster on its own share of the cores (``toolkit._dask``'s
``local_client(share_cores=True)`` calls :func:`pin_workers`): the worker plugin and the
move of a process's threads."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

from distributed import WorkerPlugin


def pin_workers(client, workers: int) -> None:
    """Give each of the ``workers`` worker processes of ``client``'s local cluster its own
    share of this process's cores, also when its nanny starts it again.

    XLA's CPU client sizes the thread pool that runs a compiled program by the cores the
    process may use (``sched_getaffinity``), and the pool's idle threads spin, waiting for
    work. The elastic-net CV's programs are sequential (a scan over the penalties, small
    matrix products), so a second thread in the pool mostly spins: a bootstrap resample in
    one process used 1.35 CPU seconds per wall-clock second on 2 cores
    (``benchmarks/results/20261207T1414_vm.json``), and pinned to one core it ran no
    slower (measured outside the benchmarks, no JSON). Two workers that each may use both
    cores therefore took each other's cycles. Worker ``i`` of ``n`` (its name in the local
    cluster) gets cores ``i, i + n, ...`` of this process's affinity (one core, in turn,
    when there are more workers than cores), by a worker plugin, which Dask also runs in a
    worker started again after a crash or ``client.restart()``. Every thread of the worker
    is moved there before it runs a task, so the pool it makes at its first JAX program has
    that many threads. Linux only (``os.sched_setaffinity``); elsewhere nothing changes.
    Only where the computation runs changes; the bootstrap's C-indexes were identical with
    and without it on every resample benchmarked (1024), though a different pool size is
    not guaranteed to give bit-identical results in every program.
    """
    if not hasattr(os, "sched_setaffinity"):
        return
    shares = core_shares(sorted(os.sched_getaffinity(0)), workers)
    client.register_plugin(CoreShare(shares), name="sigkit-core-share")


class CoreShare(WorkerPlugin):
    """A Dask worker plugin: the worker named ``i`` moves to ``shares[i]``."""

    def __init__(self, shares: list[list[int]]):
        self.shares = shares

    def setup(self, worker) -> None:
        name = worker.name
        if isinstance(name, int) and 0 <= name < len(self.shares):  # a local cluster's
            _take_cores(self.shares[name])


def core_shares(cores: Sequence[int], workers: int) -> list[list[int]]:
    """Worker ``i``'s cores of ``cores``: ``cores[i::workers]``, or the single core
    ``cores[i % len(cores)]`` when there are more workers than cores."""
    return [list(cores[i::workers]) or [cores[i % len(cores)]] for i in range(workers)]


def _take_cores(cores: Sequence[int]) -> None:
    """Move every thread of this process to ``cores``; threads started later inherit the
    affinity of the thread that starts them. Threads are listed again until no new one
    appears (one not yet moved may have started another meanwhile). Without
    ``/proc/self/task``, only the calling thread is moved."""
    moved: set[str] = set()
    while True:
        try:
            threads = set(os.listdir("/proc/self/task")) - moved
        except FileNotFoundError:
            os.sched_setaffinity(0, cores)
            return
        if not threads:
            return
        for thread in threads:
            with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
                os.sched_setaffinity(int(thread), cores)
        moved |= threads
