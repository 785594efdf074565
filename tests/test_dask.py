"""sigkit's local Dask cluster: its workers' allocator environment."""

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
