"""Nomogram points for a Cox model, as ``rms::nomogram`` computes them.

A predictor's contribution to the linear predictor is ``coef * value`` (a
categorical predictor contributes its level's coefficient, 0 for the reference
level). For each predictor take the range of its contribution over its axis
values; the predictor with the widest range spans ``maxscale`` (100) points, so

    points_per_lp = maxscale / max_j (max contribution_j - min contribution_j)
    points_j(x)   = (contribution_j(x) - min contribution_j) * points_per_lp

(``rms::nomogram``: ``sc <- maxscale / max(R[2, ] - R[1, ])`` and
``points <- (Xbeta - R[1, nam]) * sc``). The total points map back to the
linear predictor as ``lp = lp_at_zero_points + total / points_per_lp`` where
``lp_at_zero_points`` is the sum of the smallest contributions, and to survival
at time ``t`` as ``S(t) = baseline_survival[t] ** exp(lp - lp_centre)`` with
``baseline_survival`` the survival at ``lp = lp_centre`` (``survfit.coxph``'s
centring at the covariate means, so ``lp_centre`` is the mean training linear
predictor).

Axis values follow ``rms``: a categorical predictor's axis is its levels; a
numeric predictor's axis is ``pretty(range(x), 10)`` over its training values
(``datadist``'s "Low"/"High" limits with ``nomogram(..., nint = 10)``), so its
``min``/``max`` are the outer pretty ticks. Linear predictors here are
uncentred (``X @ coef``); rms centres them, which shifts ``lp`` and
``lp_at_zero_points`` by the same constant and changes no points or survival.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toolkit.contracts import NomogramSpec

_ROUNDING_EPS = 1e-10
_HIGH_U_BIAS = 1.5


def pretty(low: float, high: float, n: int = 5) -> np.ndarray:
    """Equally spaced round values covering ``[low, high]``: R's ``pretty(c(low, high), n)``.

    A port of ``R_pretty`` (R 4.2 ``src/appl/pretty.c``) with ``pretty.default``'s
    defaults (``min.n = n %/% 3``, ``shrink.sml = 0.75``, ``high.u.bias = 1.5``,
    ``u5.bias = 0.5 + 1.5 * high.u.bias``, ``eps.correct = 0``).
    """
    min_n = n // 3
    unit = _pretty_unit(low, high, n, min_n)
    ns = math.floor(low / unit + _ROUNDING_EPS)
    nu = math.ceil(high / unit - _ROUNDING_EPS)
    while ns * unit > low + _ROUNDING_EPS * unit:
        ns -= 1
    while nu * unit < high - _ROUNDING_EPS * unit:
        nu += 1
    k = int(0.5 + nu - ns)
    ndiv = k
    if k < min_n:
        k = min_n - k
        if ns >= 0:
            nu, ns = nu + k // 2, ns - (k // 2 + k % 2)
        else:
            ns, nu = ns - k // 2, nu + k // 2 + k % 2
        ndiv = min_n
    lo, up = min(ns * unit, low), max(nu * unit, high)
    ticks = np.linspace(lo, up, ndiv + 1) if ndiv else np.array([lo])
    delta = (up - lo) / ndiv if ndiv else 0.0
    ticks[np.abs(ticks) < 1e-14 * delta] = 0.0
    return ticks


def _pretty_unit(low: float, high: float, n: int, min_n: int) -> float:
    """The tick spacing of ``R_pretty``: 1, 2, 5 or 10 times a power of ten."""
    h, h5 = _HIGH_U_BIAS, 0.5 + 1.5 * _HIGH_U_BIAS
    dx = high - low
    if dx == 0 and high == 0:
        cell, i_small = 1.0, True
    else:
        cell = max(abs(low), abs(high))
        u = 1 + ((1 / (1 + h)) if h5 >= 1.5 * h + 0.5 else 1.5 / (1 + h5))
        i_small = dx < cell * u * max(1, n) * sys.float_info.epsilon * 3
    if i_small:
        cell = (9 + cell / 10 if cell > 10 else cell) * 0.75
        cell = cell / min_n if min_n > 1 else cell
    elif n > 1:
        cell = dx / n
    else:
        cell = dx
    cell = max(cell, 20 * sys.float_info.min)
    base = 10.0 ** math.floor(math.log10(cell))
    unit = base
    for multiple, bias in ((2, h), (5, h5), (10, h)):
        if multiple * base - cell < bias * (cell - unit):
            unit = multiple * base
        else:
            break
    return unit


@dataclass(frozen=True)
class PredictorSpec:
    """One predictor of a fitted Cox model, as the nomogram needs it.

    ``kind`` is "categorical" (``levels`` with ``coefs``, the reference level's
    coefficient 0) or "numeric" (``coef`` and the training ``values`` whose range
    sets the axis).
    """

    name: str
    kind: str
    label: str = ""
    levels: tuple[str, ...] = ()
    coefs: tuple[float, ...] = ()
    coef: float = 0.0
    values: tuple[float, ...] = ()


@dataclass(frozen=True)
class Nomogram:
    """Points scales of a Cox model (see the module docstring for the formulas)."""

    model: str
    time_unit: str
    points_per_lp: float
    lp_centre: float
    lp_at_zero_points: float
    baseline_survival: dict[str, float]
    predictors: list[dict[str, Any]] = field(default_factory=list)
    maxscale: float = 100.0

    def spec(self, provenance: Mapping[str, Any] | None = None) -> NomogramSpec:
        """The contract's record of the nomogram (results/nomogram_<model>.json)."""
        return NomogramSpec(
            model=self.model,
            time_unit=self.time_unit,
            points_per_lp=float(self.points_per_lp),
            lp_centre=float(self.lp_centre),
            lp_at_zero_points=float(self.lp_at_zero_points),
            baseline_survival=dict(self.baseline_survival),
            predictors=tuple(self.predictors),
            provenance=provenance,
        )

    @classmethod
    def from_spec(cls, spec: NomogramSpec) -> Nomogram:
        return cls(
            model=spec.model,
            time_unit=spec.time_unit,
            points_per_lp=spec.points_per_lp,
            lp_centre=spec.lp_centre,
            lp_at_zero_points=spec.lp_at_zero_points,
            baseline_survival=dict(spec.baseline_survival),
            predictors=[dict(p) for p in spec.predictors],
        )

    def to_json(self) -> dict[str, Any]:
        """The contract's nomogram JSON (docs/contracts.md), without provenance."""
        return self.spec().to_json()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Nomogram:
        return cls.from_spec(NomogramSpec.from_json(data))

    def predictor_points(self, name: str, values: Sequence[Any]) -> np.ndarray:
        """Points of predictor ``name`` at ``values`` (levels or numbers).

        Raises ``KeyError`` naming the level when a categorical value is unknown.
        """
        spec = self._predictor(name)
        if spec["kind"] == "categorical":
            table = {str(level["value"]): level["points"] for level in spec["levels"]}
            unknown = sorted({str(v) for v in values} - set(table))
            if unknown:
                raise KeyError(
                    f"{name}: unknown level(s) {unknown}; the nomogram knows {list(table)}"
                )
            return np.array([table[str(v)] for v in values], dtype=float)
        x = np.asarray(values, dtype=float)
        return self._numeric_points(spec, x)

    def _numeric_points(self, spec: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
        contribution = spec["coef"] * x
        lowest = min(spec["coef"] * spec["min"], spec["coef"] * spec["max"])
        return (contribution - lowest) * self.points_per_lp

    def _predictor(self, name: str) -> dict[str, Any]:
        for spec in self.predictors:
            if spec["name"] == name:
                return spec
        raise KeyError(f"the nomogram has no predictor {name!r}")

    def total_points(self, data: Mapping[str, Sequence[Any]]) -> np.ndarray:
        """Sum of every predictor's points for each row of ``data`` (column -> values)."""
        missing = [p["name"] for p in self.predictors if p["name"] not in data]
        if missing:
            raise KeyError(f"missing predictor column(s) {missing}")
        parts = [self.predictor_points(p["name"], list(data[p["name"]])) for p in self.predictors]
        return np.sum(parts, axis=0)

    def linear_predictor(self, total_points: np.ndarray | float) -> np.ndarray:
        """Uncentred linear predictor from total points."""
        return self.lp_at_zero_points + np.asarray(total_points, dtype=float) / self.points_per_lp

    def survival(self, total_points: np.ndarray | float, time: float) -> np.ndarray:
        """Predicted survival at ``time`` (one of the nomogram's time points)."""
        key = _time_key(time)
        if key not in self.baseline_survival:
            raise KeyError(f"no baseline survival at {time}; have {list(self.baseline_survival)}")
        lp = self.linear_predictor(total_points)
        return self.baseline_survival[key] ** np.exp(lp - self.lp_centre)

    def points_for_survival(self, survival: np.ndarray | float, time: float) -> np.ndarray:
        """Total points giving predicted survival ``survival`` at ``time`` (for axes)."""
        s0 = self.baseline_survival[_time_key(time)]
        lp = self.lp_centre + np.log(np.log(np.asarray(survival, dtype=float)) / math.log(s0))
        return (lp - self.lp_at_zero_points) * self.points_per_lp


def _time_key(time: float) -> str:
    return f"{float(time):g}"


def _axis(spec: PredictorSpec, nint: int) -> tuple[np.ndarray, np.ndarray]:
    """Axis values and contributions of one predictor."""
    if spec.kind == "categorical":
        if len(spec.levels) != len(spec.coefs) or not spec.levels:
            raise ValueError(f"{spec.name}: levels and coefficients differ in length")
        return np.asarray(spec.levels, dtype=object), np.asarray(spec.coefs, dtype=float)
    if spec.kind != "numeric":
        raise ValueError(f"{spec.name}: kind must be 'numeric' or 'categorical', not {spec.kind}")
    values = np.asarray(spec.values, dtype=float)
    if values.size < 2 or not np.all(np.isfinite(values)):
        raise ValueError(f"{spec.name}: needs at least two finite training values for its axis")
    ticks = pretty(float(values.min()), float(values.max()), nint)
    return ticks, spec.coef * ticks


def build(
    predictors: Sequence[PredictorSpec],
    *,
    baseline_survival: Mapping[float, float],
    lp_centre: float,
    model: str,
    time_unit: str = "months",
    maxscale: float = 100.0,
    nint: int = 10,
) -> Nomogram:
    """Points scales of a Cox model, equal to ``rms::nomogram(cph_fit)``.

    Parameters
    ----------
    predictors : the model's predictors with their coefficients (see ``PredictorSpec``).
    baseline_survival : time -> survival at ``lp = lp_centre`` (``survfit.coxph``).
    lp_centre : the mean training linear predictor (``sum(coef * colMeans(X))``).
    model, time_unit : recorded in the JSON.
    maxscale, nint : ``rms::nomogram``'s arguments of the same names.
    """
    if not predictors:
        raise ValueError("a nomogram needs at least one predictor")
    axes = [_axis(spec, nint) for spec in predictors]
    widths = [float(c.max() - c.min()) for _, c in axes]
    if max(widths) <= 0:
        raise ValueError("every predictor has zero effect; no nomogram can be drawn")
    sc = maxscale / max(widths)
    out = []
    for spec, (axis, contribution) in zip(predictors, axes, strict=True):
        points = (contribution - contribution.min()) * sc
        out.append(_predictor_json(spec, axis, contribution, points, sc))
    return Nomogram(
        model=model,
        time_unit=time_unit,
        points_per_lp=sc,
        lp_centre=float(lp_centre),
        lp_at_zero_points=float(sum(c.min() for _, c in axes)),
        baseline_survival={_time_key(t): float(s) for t, s in baseline_survival.items()},
        predictors=out,
        maxscale=maxscale,
    )


def _predictor_json(spec, axis, contribution, points, sc) -> dict[str, Any]:
    base = {"name": spec.name, "label": spec.label or spec.name, "kind": spec.kind}
    if spec.kind == "categorical":
        base["levels"] = [
            {"value": str(v), "lp": float(c), "points": float(p)}
            for v, c, p in zip(axis, contribution, points, strict=True)
        ]
        return base
    low, high = float(axis[0]), float(axis[-1])
    base.update(
        coef=float(spec.coef),
        min=low,
        max=high,
        points_at_min=float(points[0]),
        points_per_unit=float(spec.coef * sc),
        ticks=[{"value": float(v), "points": float(p)} for v, p in zip(axis, points, strict=True)],
    )
    return base
