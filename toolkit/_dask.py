"""The one way sigkit starts a local Dask cluster (preprocessing, radiomics, the internal
validation), or connects to a running one, and fans patients out over it."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

# Dask's nanny starts every worker with MALLOC_TRIM_THRESHOLD_=65536 (its config
# "distributed.nanny.pre-spawn-environ"), so that a long-lived worker hands freed memory
# back to the operating system. Setting that variable also turns glibc's dynamic mmap
# threshold off: every array over 128 KiB is then mapped and zero-filled anew and unmapped
# when freed. On PyRadiomics' and the registration's arrays that made a patient 26 % slower
# (radiomics: 0.68 s in a plain process, 0.86 s with the variable set; demo cohort, one
# process each). sigkit's local workers live for one stage, so they start with glibc's own
# defaults. Only Dask's own setting is dropped: a MALLOC_TRIM_THRESHOLD_ in the user's
# environment still reaches the workers, which inherit this process's environment as
# they are spawned (Dask's config for this one key, though, is overridden).
_NANNY_UNSET = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


@contextlib.contextmanager
def local_client(workers: int, share_cores: bool = False) -> Iterator[Any]:
    """A ``distributed.Client`` of a ``LocalCluster`` of ``workers`` single-threaded
    processes, closed (client, then cluster) on exit. The workers start without Dask's
    ``MALLOC_TRIM_THRESHOLD_`` (see :data:`_NANNY_UNSET`), with glibc's allocator defaults.

    ``share_cores``: each worker process is given its own share of this process's cores
    (``toolkit._dask_cores.pin_workers``) before it runs a task."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set(_NANNY_UNSET):  # the nannies read it as the cluster starts them
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: never collide with a running dashboard
            silence_logs=logging.ERROR,
        )
    client = Client(cluster)
    try:
        if share_cores:
            from toolkit._dask_cores import pin_workers

            pin_workers(client, workers)
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


def _worker_failure(patient: str, exc: Exception) -> dict[str, Any]:
    return {
        "patient": patient,
        "status": "failed",
        "stage": "worker",
        "reason": f"{type(exc).__name__}: {exc}",
        "warnings": [],
    }


def map_patients(
    function: Callable[..., dict[str, Any]],
    patients: Sequence[str],
    args: Sequence[Sequence[Any]],
    kwargs: dict[str, Any],
    *,
    workers: int | str,
    scheduler: str | None,
    progress: bool,
    description: str,
) -> list[dict[str, Any]]:
    """``function(*args[i], **kwargs)`` for each patient, as records, with a progress bar.

    ``workers`` 0 (or "sync") without a ``scheduler``: in this process, in order.
    Otherwise over :func:`dask_client` (``threads`` added to ``kwargs``: the cores a
    local worker may use), in completion order; a patient whose worker died or raised
    gets a failed record (stage "worker", the exception as its reason), so one patient
    never stops the others.
    """
    from toolkit._progress import progress_bar

    bar = progress_bar(len(patients), enabled=progress, description=description, unit="patients")
    if workers in (0, "0", "sync") and not scheduler:
        with bar as advance:
            out = []
            for each in args:
                out.append(function(*each, **kwargs))
                advance()
            return out
    from distributed import as_completed

    workers = int(workers)
    threads = None if scheduler else max(1, (os.cpu_count() or 1) // workers)
    out = []
    with dask_client(workers, scheduler) as client:
        columns = [list(column) for column in zip(*args, strict=True)] if args else []
        futures = client.map(function, *columns, **kwargs, threads=threads, pure=False)
        patient_of = {f.key: p for f, p in zip(futures, patients, strict=True)}
        with bar as advance:
            for future in as_completed(futures):
                try:
                    out.append(future.result())
                except Exception as exc:  # a dead worker fails its patient
                    out.append(_worker_failure(patient_of[future.key], exc))
                advance()
    return out
