"""A nomogram figure in ``rms``'s style (``plot.nomogram``): one axis per row.

Rows, top to bottom: Points (0-100); each predictor, its values placed at their
points; Total points; the linear predictor; predicted survival at each time
point. Axes are drawn from the nomogram JSON alone, so the figure shows exactly
what a calculator computes.
"""

from __future__ import annotations

import numpy as np

from toolkit.plots._stamp import Stamp, apply, new_figure
from toolkit.stats.nomogram import Nomogram, pretty


def _axis(ax, y: float, positions, labels, name: str, span: tuple[float, float]) -> None:
    lo, hi = span
    ax.plot([lo, hi], [y, y], color="black", linewidth=0.9)
    for x, text in zip(positions, labels, strict=True):
        ax.plot([x, x], [y, y + 0.18], color="black", linewidth=0.8)
        ax.text(x, y + 0.25, text, ha="center", va="bottom", fontsize=7)
    ax.text(-2, y, name, ha="right", va="center", fontsize=8)


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value) >= 0.01 or value == 0 else f"{value:.2g}"


def nomogram_figure(nomo: Nomogram, *, title: str, stamp: Stamp | None = None):
    """Draw ``nomo`` as rms does: predictors' points, total points, survival scales."""
    rows = len(nomo.predictors) + 3 + len(nomo.baseline_survival)
    fig = new_figure(8.0, 0.55 * rows + 1.0)
    ax = fig.add_axes((0.22, 0.04, 0.74, 0.88))
    y = float(rows)
    ticks = np.arange(0, 101, 10)
    _axis(ax, y, ticks, [f"{t:g}" for t in ticks], "Points", (0, 100))
    for spec in nomo.predictors:
        y -= 1
        if spec["kind"] == "categorical":
            pos = [lv["points"] for lv in spec["levels"]]
            text = [lv["value"] for lv in spec["levels"]]
        else:
            pos = [t["points"] for t in spec["ticks"]]
            text = [_fmt(t["value"]) for t in spec["ticks"]]
        _axis(ax, y, pos, text, spec.get("label", spec["name"]), (min(pos), max(pos)))
    max_total = sum(
        max(lv["points"] for lv in (s.get("levels") or s["ticks"])) for s in nomo.predictors
    )
    total_ticks = pretty(0.0, max_total, 10)
    scale = 100.0 / total_ticks[-1]
    y -= 1
    _axis(ax, y, total_ticks * scale, [f"{t:g}" for t in total_ticks], "Total points", (0, 100))
    lp = nomo.linear_predictor(total_ticks)
    lp_ticks = pretty(float(lp.min()), float(lp.max()), 8)
    lp_ticks = lp_ticks[(lp_ticks >= lp.min()) & (lp_ticks <= lp.max())]
    y -= 1
    lp_pos = (lp_ticks - nomo.lp_at_zero_points) * nomo.points_per_lp * scale
    _axis(ax, y, lp_pos, [f"{t:g}" for t in lp_ticks], "Linear predictor", (0, 100))
    for key in sorted(nomo.baseline_survival, key=float):
        y -= 1
        survival = nomo.survival(total_ticks, float(key))
        levels = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
        inside = levels[(levels <= survival.max()) & (levels >= survival.min())]
        pos = nomo.points_for_survival(inside, float(key)) * scale
        unit = nomo.time_unit.removesuffix("s")
        label = f"{float(key):g}-{unit} survival"
        _axis(ax, y, pos, [f"{v:g}" for v in inside], label, (0, 100))
    ax.set_xlim(-1, 101)
    ax.set_ylim(y - 0.6, rows + 0.8)
    ax.axis("off")
    ax.set_title(title)
    return apply(fig, stamp)
