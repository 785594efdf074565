"""The progress bar of sigkit's long loops (patients preprocessed, batches extracted): rich's.

It goes to stderr, as progress is not output: stdout keeps only what a command reports.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress_bar(
    total: int, *, enabled: bool, description: str, unit: str
) -> Iterator[Callable[[], None]]:
    """Show `description`, a bar and "done/total unit" while the block runs; yield `advance()`,
    which counts one `unit` done. Disabled, it shows nothing and `advance()` does nothing."""
    if not enabled:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)
