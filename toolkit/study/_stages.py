"""Stage bookkeeping: skip a stage whose inputs and settings have not changed.

Each stage has a key, the hash of its inputs' hashes and its settings. After a
stage succeeds, ``STUDY_DIR/.sigkit/stages/<name>.json`` records the key and
the outputs; the next run skips the stage when the key is the same and every
output still exists. Outputs carry the same key in their provenance
(``settings_hash``), so a stale file can be recognised by itself too. A stage
that fails records nothing, and the outputs of earlier stages stay as they were.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.artifacts import read_json, settings_hash, write_json


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

    def key_of(self, name: str) -> str:
        """The key a stage last ran with ("" if it never completed)."""
        stamp = self._stamp(name)
        return str(read_json(stamp).get("key", "")) if stamp.is_file() else ""

    def as_json(self) -> list[dict[str, Any]]:
        return [{"name": r.name, "seconds": r.seconds, "skipped": r.skipped} for r in self.records]
