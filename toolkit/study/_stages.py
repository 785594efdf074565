"""Stage bookkeeping: skip a stage whose inputs and settings have not changed.

Each stage has a key, the hash of its inputs' hashes and its settings. After a
stage succeeds, ``STUDY_DIR/.sigkit/stages/<name>.json`` records the key and
the outputs; the next run skips the stage when the key is the same and every
output still exists. Outputs carry the same key in their provenance
(``settings_hash``), so a stale file can be recognised by itself too. A stage
that fails records nothing, and the outputs of earlier stages stay as they were.
A stage hands its results on through :meth:`StageLog.hand_on`: computed when it
runs, read back from its files when it is skipped (a :class:`Cached`).

One run at a time: :func:`study_lock` holds ``STUDY_DIR/.sigkit/lock`` for the
whole run, so a second run on the same folder stops at once (or waits) instead
of running every stage a second time beside the first.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.artifacts import read_json, settings_hash, write_json
from toolkit.contracts import Stage


class StudyInUseError(RuntimeError):
    """Another sigkit run holds the study folder's lock."""


@contextlib.contextmanager
def study_lock(
    study_dir: Path, *, wait: bool = False, echo: Callable[[str], None] = print
) -> Iterator[None]:
    """Hold ``STUDY_DIR/.sigkit/lock`` (an exclusive ``flock``) for the body of the ``with``.

    The lock file holds the holder's pid and start time, for the message the next
    run shows. The lock belongs to the open file, so it is released however the
    run ends, an exception or a killed process included: a lock file left behind
    by a killed run blocks nothing. The file itself is never removed (a run that
    removed it could let two later runs lock two different files).

    Raises ``StudyInUseError`` when another run holds the lock, unless ``wait``:
    then it waits for that run to finish.
    """
    path = Path(study_dir) / ".sigkit" / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, study_dir, wait, echo)
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "started": started}).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def _acquire(fd: int, study_dir: Path, wait: bool, echo: Callable[[str], None]) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        holder = _holder(fd)
    if not wait:
        raise StudyInUseError(
            f"study folder {study_dir} is in use by another sigkit run ({holder}); wait for "
            "it to finish, or run again with --wait to start when it has"
        ) from None
    echo(f"  waiting for the other sigkit run on {study_dir} ({holder}) to finish ...")
    fcntl.flock(fd, fcntl.LOCK_EX)


def _holder(fd: int) -> str:
    """The holder as its lock file says: "pid 4242, started at 2025-01-31T09:12:03+01:00"."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode())
        return f"pid {info['pid']}, started at {info['started']}"
    except (ValueError, KeyError, TypeError):
        # the holder has locked the file but not written it yet
        return "pid unknown"


@dataclass(frozen=True)
class Cached:
    """A stage's work as the stage log runs it, or skips it when it is up to date.

    Attributes
    ----------
    inputs : input name -> hash (a file's content hash, another stage's key): with
        ``settings``, what the stage's key is made of.
    settings : the settings the outputs depend on.
    files : the files ``compute`` writes; the stage is up to date only while all exist.
    compute : ``compute(key)`` writes ``files`` (their provenance carries ``key``) and
        returns the results the stage hands on.
    load : the same results read back from ``files``, for a skipped stage.
    """

    inputs: Mapping[str, str]
    settings: Mapping[str, Any]
    files: tuple[Path, ...]
    compute: Callable[[str], Mapping[str, Any]]
    load: Callable[[], Mapping[str, Any]]


@dataclass
class StageRecord:
    name: str
    seconds: float
    skipped: bool
    key: str


@dataclass
class StageLog:
    """The stages of one run, in order, with their timings."""

    study_dir: Path
    records: list[StageRecord] = field(default_factory=list)
    echo: Callable[[str], None] = print

    def _stamp(self, name: str) -> Path:
        return self.study_dir / ".sigkit" / "stages" / f"{name}.json"

    def up_to_date(self, name: str, key: str, outputs: Sequence[Path]) -> bool:
        return self.key_of(name) == key and all(Path(p).exists() for p in outputs)

    def run(
        self,
        name: str,
        *,
        inputs: Mapping[str, str],
        settings: Mapping[str, Any],
        outputs: Sequence[Path],
        work: Callable[[str], Any],
    ) -> bool:
        """Run ``work(key)`` unless up to date; returns True when the stage was skipped."""
        key = settings_hash({"inputs": dict(inputs), "settings": dict(settings)})
        start = time.perf_counter()
        if self.up_to_date(name, key, outputs):
            self.records.append(StageRecord(name, time.perf_counter() - start, True, key))
            self.echo(f"  {name:<12} up to date, skipped")
            return True
        self.echo(f"  {name:<12} running ...")
        work(key)
        seconds = time.perf_counter() - start
        write_json(
            self._stamp(name),
            {"key": key, "outputs": [str(p) for p in outputs], "seconds": seconds},
        )
        self.records.append(StageRecord(name, seconds, False, key))
        self.echo(f"  {name:<12} done in {seconds:.1f} s")
        return False

    def hand_on(self, name: str, cached: Cached) -> Mapping[str, Any]:
        """Run stage ``name`` as :meth:`run` does; its results, computed or read back."""
        computed: dict[str, Any] = {}

        def work(key: str) -> None:
            computed.update(cached.compute(key))

        skipped = self.run(
            name,
            inputs=cached.inputs,
            settings=cached.settings,
            outputs=cached.files,
            work=work,
        )
        return cached.load() if skipped else computed

    def key_of(self, name: str) -> str:
        """The key a stage last ran with ("" if it never completed)."""
        stamp = self._stamp(name)
        return str(read_json(stamp).get("key", "")) if stamp.is_file() else ""

    def timings(self) -> tuple[Stage, ...]:
        """metrics.json's ``stages``: each stage of this run, its seconds and whether skipped."""
        return tuple(Stage(r.name, r.seconds, r.skipped) for r in self.records)
