"""The one comparison of our numbers with R's, for the validation suite and the study's R check.

Two arrays (or scalars) are compared element by element, flattened. The
difference is absolute, :math:`|a_i - r_i|`, or relative,
:math:`|a_i - r_i| / \\max(|r_i|, floor)`; the comparison reports its worst
element (the first where several tie): its position, both values, both
differences and whether the one measured is within the tolerance. Missing
values (NaN) on both sides agree; NaN on one side only, or arrays of different
shapes, never pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Difference:
    """Ours against R's at the worst element.

    ``index`` is the worst element's position (None when there is nothing to
    compare: empty or differently shaped arrays, where ``ours`` and ``r`` are
    the first values, if any). ``absolute`` and ``relative`` are its two
    differences; ``diff`` is the one measured, ``inf`` for a one-sided NaN or a
    shape mismatch (``message`` then says which shapes).
    """

    index: int | None
    ours: float | None
    r: float | None
    absolute: float
    relative: float
    tolerance: float
    measured: str  # "absolute" or "relative"
    n_values: int
    message: str = ""

    @property
    def diff(self) -> float:
        return self.relative if self.measured == "relative" else self.absolute

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.diff) and self.diff <= self.tolerance)


def compare(
    ours: Any, r: Any, tolerance: float, *, relative: bool = False, floor: float = 1e-300
) -> Difference:
    """Compare ours with R's; the worst element by the measured difference decides."""
    a = np.atleast_1d(np.asarray(ours, dtype=float)).ravel()
    b = np.atleast_1d(np.asarray(r, dtype=float)).ravel()
    measured = "relative" if relative else "absolute"
    if a.shape != b.shape or not a.size:
        return Difference(
            index=None,
            ours=float(a[0]) if a.size else None,
            r=float(b[0]) if b.size else None,
            absolute=float("inf") if a.shape != b.shape else 0.0,
            relative=float("inf") if a.shape != b.shape else 0.0,
            tolerance=tolerance,
            measured=measured,
            n_values=int(b.size),
            message=f"shape {a.shape} vs R {b.shape}" if a.shape != b.shape else "",
        )
    agree = np.isnan(a) & np.isnan(b)
    with np.errstate(invalid="ignore"):
        absolute = np.where(agree, 0.0, np.abs(a - b))
        scaled = np.where(agree, 0.0, absolute / np.maximum(np.abs(b), floor))
    absolute = np.where(np.isnan(absolute), np.inf, absolute)  # NaN on one side only
    scaled = np.where(np.isnan(scaled), np.inf, scaled)
    worst = int(np.argmax(scaled if relative else absolute))
    return Difference(
        index=worst,
        ours=float(a[worst]),
        r=float(b[worst]),
        absolute=float(absolute[worst]),
        relative=float(scaled[worst]),
        tolerance=tolerance,
        measured=measured,
        n_values=int(b.size),
    )
