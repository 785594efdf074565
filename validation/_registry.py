"""Registry and runner of the cross-check suites."""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.artifacts import provenance, write_json


@dataclass(frozen=True)
class Comparison:
    """One statistic on one dataset: ours against R's (``toolkit.rbridge.compare``).

    ``diff`` is the largest absolute difference over all elements; with
    ``relative=True`` it is divided elementwise by ``max(|R|, floor)``. ``ours``
    and ``r`` are the values at that worst element.
    ``notes`` are what R said while its side was computed (its warnings, e.g.
    glmnet stopping a path early), each naming the R computation.
    """

    statistic: str
    dataset: str
    ours: float
    r: float
    diff: float
    tolerance: float
    relative: bool
    reference: str
    n_values: int = 1
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.diff) and self.diff <= self.tolerance)


def compare(
    statistic: str,
    dataset: str,
    ours: Any,
    r: Any,
    tolerance: float,
    *,
    relative: bool = False,
    reference: str = "",
    floor: float = 1e-300,
) -> Comparison:
    """Build a :class:`Comparison` from arrays (or scalars) of ours and R's values."""
    from toolkit.rbridge.compare import compare as worst

    d = worst(ours, r, tolerance, relative=relative, floor=floor)
    return Comparison(
        statistic=statistic,
        dataset=dataset,
        ours=float("nan") if d.ours is None else d.ours,
        r=float("nan") if d.r is None else d.r,
        diff=d.diff,
        tolerance=tolerance,
        relative=relative,
        reference=reference,
        n_values=d.n_values,
    )


CheckFunction = Callable[[], Iterable[Comparison]]


@dataclass
class _Registered:
    suite: str
    name: str
    function: CheckFunction
    fast: bool


_REGISTRY: list[_Registered] = []


def check(suite: str, *, fast: bool = False) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check function under `suite`; `fast` ones also run in tests."""

    def decorate(function: CheckFunction) -> CheckFunction:
        _REGISTRY.append(_Registered(suite, function.__name__, function, fast))
        return function

    return decorate


def load_suites() -> list[_Registered]:
    """Import every ``validation.suite_*`` module so their checks register."""
    import validation

    for info in pkgutil.iter_modules(validation.__path__):
        if info.name.startswith("suite_"):
            importlib.import_module(f"validation.{info.name}")
    return list(_REGISTRY)


@dataclass
class SuiteResult:
    suite: str
    comparisons: list[Comparison] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.errors and all(c.passed for c in self.comparisons)


def _run_check(item: _Registered, result: SuiteResult) -> None:
    """Run one check into `result`; R's warnings during it become its comparisons' notes."""
    from toolkit.rbridge import noting_r_warnings

    start = time.perf_counter()
    comparisons: list[Comparison] = []
    error = None
    with noting_r_warnings() as notes:
        try:
            comparisons = list(item.function())
        except Exception as exc:  # a crashing check is a failure, reported by name
            error = f"{item.name}: {type(exc).__name__}: {exc}"
    result.seconds += time.perf_counter() - start
    result.comparisons.extend(replace(c, notes=(*c.notes, *notes)) for c in comparisons)
    if error is not None:
        said = f" (R said: {'; '.join(notes)})" if notes else ""
        result.errors.append(error + said)


def run_suites(
    *,
    fast: bool = False,
    only: Iterable[str] | None = None,
    out_dir: Path | None = None,
) -> list[SuiteResult]:
    """Run the registered checks; write one JSON per suite into `out_dir`."""
    wanted = set(only) if only else None
    results: dict[str, SuiteResult] = {}
    for item in load_suites():
        if fast and not item.fast:
            continue
        if wanted is not None and item.suite not in wanted:
            continue
        _run_check(item, results.setdefault(item.suite, SuiteResult(item.suite)))
    if out_dir is not None:
        for result in results.values():
            write_json(
                Path(out_dir) / f"{result.suite}.json",
                {
                    "suite": result.suite,
                    "passed": result.passed,
                    "seconds": result.seconds,
                    "errors": result.errors,
                    "comparisons": [{**asdict(c), "passed": c.passed} for c in result.comparisons],
                    "provenance": provenance(settings={"fast": fast}),
                },
            )
    return list(results.values())
