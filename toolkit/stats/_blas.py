"""One BLAS thread for the small products of the Cox fits, without rescanning the process.

``threadpoolctl.threadpool_limits`` finds the process's BLAS libraries anew on every call
(it reads ``/proc/self/maps`` and opens each library): about 5 ms, which costs more than a
Cox fit of the nomograms' size and was a fifth of each resample of the whole-procedure
bootstrap. A ``ThreadpoolController`` made once scans once; its ``limit`` then only sets and
restores the thread counts. The controller is made on first use, after numpy (and so its
BLAS) is loaded, which is every library these products use.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

from threadpoolctl import ThreadpoolController


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with BLAS limited to one thread, the previous limits restored after."""
    with _controller().limit(limits=1, user_api="blas"):
        yield
