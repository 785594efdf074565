"""The one way sigkit starts a local Dask cluster (preprocessing, radiomics, the internal
validation), or connects to a running one."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def local_client(workers: int) -> Iterator[Any]:
    """A ``distributed.Client`` of a ``LocalCluster`` of ``workers`` single-threaded
    processes, closed (client, then cluster) on exit."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # a free port: never collide with a running dashboard
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@contextlib.contextmanager
def dask_client(workers: int, scheduler: str | None = None) -> Iterator[Any]:
    """The client of the scheduler at ``scheduler`` ("tcp://host:port"), else of a local
    cluster of ``workers`` (:func:`local_client`); closed on exit."""
    from distributed import Client

    if not scheduler:
        with local_client(workers) as client:
            yield client
        return
    client = Client(scheduler)
    try:
        yield client
    finally:
        client.close()
