"""Each worker of a local Dask cluster on its own share of the cores (``toolkit._dask``'s
``local_client(share_cores=True)``): the worker plugin and the move of a process's threads."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

from distributed import WorkerPlugin


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
