"""The benchmark records: pytest-benchmark's JSON files in ``benchmarks/results/``.

`make bench` runs ``pytest benchmarks --benchmark-json=benchmarks/results/<time>_<host>.json``.
Each file is one run: for every benchmark its module, group, test name and timing
statistics (seconds). Within a group, sigkit's tests are those whose name says
``ours`` or ``sigkit``; every other test of the group is a reference tool measured in
the same run, and the comparison is the speed-up ``reference median / sigkit median``
(> 1: sigkit faster). The validation report and benchmarks/README.md's measured tables
(`benchmarks/write_readme.py`) are both written from these records.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SIGKIT = re.compile(r"(?:^|_)(ours|sigkit)(?:_|$)")


@dataclass(frozen=True)
class Timing:
    """One benchmark of a run: where it lives, its group and its median time in seconds."""

    area: str
    group: str
    test: str
    median_s: float
    rounds: int

    @property
    def is_sigkit(self) -> bool:
        """sigkit's own test: its function name has an ``ours`` or ``sigkit`` word."""
        return bool(_SIGKIT.search(self.test.split("[", 1)[0].removeprefix("test_")))


@dataclass(frozen=True)
class Comparison:
    """sigkit against one reference tool in the same group of the same run."""

    sigkit: Timing
    reference: Timing

    @property
    def speedup(self) -> float:
        return self.reference.median_s / self.sigkit.median_s


@dataclass(frozen=True)
class Run:
    """One ``--benchmark-json`` file."""

    source: str
    datetime: str
    machine: str
    timer: str
    timings: tuple[Timing, ...]

    def comparisons(self) -> list[Comparison]:
        """Every sigkit test against every reference test of its group, in file order."""
        out = []
        for ours in (t for t in self.timings if t.is_sigkit):
            same = (t for t in self.timings if t.group == ours.group and t.area == ours.area)
            out += [Comparison(ours, other) for other in same if not other.is_sigkit]
        return out

    def unpaired(self) -> list[Timing]:
        """Timings in a group with no reference tool (sigkit alone: a time, no ratio)."""
        paired = {(c.sigkit.area, c.sigkit.group) for c in self.comparisons()}
        return [t for t in self.timings if (t.area, t.group) not in paired]


def _area(fullname: str) -> str:
    """``benchmarks/test_bench_cox.py::test_ours`` → ``cox``."""
    module = Path(fullname.split("::", 1)[0]).stem
    return module.removeprefix("test_bench_").removeprefix("test_")


def _timing(record: dict[str, Any]) -> Timing:
    stats = record["stats"]
    return Timing(
        area=_area(str(record.get("fullname", record["name"]))),
        group=str(record.get("group") or record["name"]),
        test=str(record["name"]),
        median_s=float(stats["median"]),
        rounds=int(stats.get("rounds", 0)),
    )


def _machine(info: dict[str, Any]) -> str:
    cpu = (info.get("cpu") or {}).get("brand_raw") or info.get("processor") or "unknown CPU"
    cores = (info.get("cpu") or {}).get("count")
    return f"{cpu}, {cores} cores" if cores else str(cpu)


def read_run(path: str | Path) -> Run | None:
    """One pytest-benchmark JSON file; None (with a warning) when it is not one."""
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    records = data.get("benchmarks") if isinstance(data, dict) else None
    if not isinstance(records, list) or not all(
        isinstance(r, dict) and "stats" in r for r in records
    ):
        warnings.warn(
            f"{path} is not a pytest-benchmark record (no 'benchmarks' with 'stats'): skipped",
            UserWarning,
            stacklevel=2,
        )
        return None
    timer = str(((records[0].get("options") or {}).get("timer")) if records else "")
    return Run(
        source=path.name,
        datetime=str(data.get("datetime", "")),
        machine=_machine(data.get("machine_info") or {}),
        timer=timer,
        timings=tuple(_timing(r) for r in records),
    )


def read_runs(folder: str | Path) -> list[Run]:
    """Every run in `folder` (``benchmarks/results``), oldest file name first."""
    runs = [read_run(p) for p in sorted(Path(folder).glob("*.json"))]
    return [run for run in runs if run is not None]


def seconds(value: float) -> str:
    """A median as a person reads it: 72.1 ms, 1.43 s, 85 µs."""
    if value >= 1:
        return f"{value:.3g} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"


def comparison_rows(run: Run) -> list[list[str]]:
    """One row per comparison: area, group, sigkit test and time, reference and time, speed-up."""
    rows = [
        [c.sigkit.area, c.sigkit.group, c.sigkit.test, seconds(c.sigkit.median_s),
         c.reference.test, seconds(c.reference.median_s), f"{c.speedup:.3g}x"]
        for c in run.comparisons()
    ]  # fmt: skip
    rows += [[t.area, t.group, t.test, seconds(t.median_s), "", "", ""] for t in run.unpaired()]
    return rows


HEADER = ["area", "group", "sigkit test", "median", "reference test", "median", "speed-up"]


def run_title(run: Run) -> str:
    return f"`{run.source}`: {run.datetime}, {run.machine}, timer {run.timer}"


def markdown(runs: list[Run]) -> str:
    """benchmarks/README.md's measured section: one table per run, from its JSON only."""
    if not runs:
        return "No benchmark JSON in `benchmarks/results/` yet: run `make bench`.\n"
    parts = []
    for run in runs:
        lines = [f"### {run_title(run)}", "", "| " + " | ".join(HEADER) + " |"]
        lines.append("|" + "---|" * len(HEADER))
        lines += ["| " + " | ".join(row) + " |" for row in comparison_rows(run)]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)
