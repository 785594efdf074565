"""Kaplan-Meier curves with a number-at-risk table (the paper's Figure 2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.transforms import offset_copy

from toolkit.plots._stamp import Stamp, apply, new_figure
from toolkit.stats.survival import kaplan_meier

_COLOURS = ("#2166ac", "#b2182b", "#1b7837", "#762a83")
_LEFT, _RIGHT = 0.12, 0.96  # the axes' edges, in figure width
_GAP = 6.0  # points between a row's label and its first count
_EDGE = 4.0  # points between the longest label and the figure's left edge


def km_figure(
    groups: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    title: str,
    time_unit: str = "months",
    ylabel: str = "Overall survival",
    p_value: float | None = None,
    ticks: Sequence[float] | None = None,
    stamp: Stamp | None = None,
):
    """KM step curves per group (censoring marks, 95% CI bands) and the number at risk below.

    ``groups`` maps a label to (time, event) arrays.
    """
    fig = new_figure(6.4, 5.2)
    ax = fig.add_axes((_LEFT, 0.36, _RIGHT - _LEFT, 0.56))
    table = fig.add_axes((_LEFT, 0.08, _RIGHT - _LEFT, 0.16))
    longest = max(float(np.max(t)) for t, _ in groups.values())
    ticks = np.asarray(ticks if ticks is not None else _ticks(longest))
    first_counts = []
    for k, (label, (time, event)) in enumerate(groups.items()):
        colour = _COLOURS[k % len(_COLOURS)]
        km = kaplan_meier(time, event)
        x = np.concatenate([[0.0], km.time])
        y = np.concatenate([[1.0], km.survival])
        ax.step(x, y, where="post", color=colour, label=f"{label} (n = {len(time)})")
        lower = np.concatenate([[1.0], km.lower])
        upper = np.concatenate([[1.0], km.upper])
        ax.fill_between(x, lower, upper, step="post", color=colour, alpha=0.12, linewidth=0)
        censored = km.n_censor > 0
        ax.plot(km.time[censored], km.survival[censored], "|", color=colour, markersize=6)
        at_risk = [int(np.sum(np.asarray(time) >= t)) for t in ticks]
        counts = [
            table.text(t, len(groups) - 1 - k, str(n), ha="center", va="center", color=colour)
            for t, n in zip(ticks, at_risk, strict=True)
        ]
        first_counts.append(counts[0])
    ax.set_xlim(0, ticks[-1])
    ax.set_ylim(0, 1.02)
    ax.set_xticks(ticks)
    ax.set_ylabel(ylabel)
    ax.set_xlabel(f"Time ({time_unit})")
    ax.set_title(title)
    ax.legend(loc="upper right", frameon=False, fontsize=8)
    if p_value is not None:
        text = "log-rank P < 0.001" if p_value < 0.001 else f"log-rank P = {p_value:.3f}"
        ax.text(0.03, 0.05, text, transform=ax.transAxes)
    table.set_xlim(ax.get_xlim())
    table.set_ylim(-0.5, len(groups) - 0.5)
    table.set_xticks(ticks)
    table.set_yticks([])
    table.set_title("Number at risk", fontsize=9, loc="left")
    for side in ("top", "right", "left"):
        table.spines[side].set_visible(False)
    _row_labels(fig, (ax, table), list(groups), first_counts)
    return apply(fig, stamp)


def _row_labels(fig, axes, labels: Sequence[str], first_counts) -> None:
    """The risk table's row labels, right-aligned in the left margin a gap left of the
    first count (centred on the axes' left edge, so half of it lies in the margin);
    the axes move right when the longest label needs more room than the margin has.
    """
    table = axes[-1]
    points = 72.0 / fig.dpi
    reach = max(t.get_window_extent().width for t in first_counts) / 2 * points
    shifted = offset_copy(table.get_yaxis_transform(), fig=fig, x=-(reach + _GAP), units="points")
    texts = [
        table.text(
            0,
            len(labels) - 1 - k,
            label,
            ha="right",
            va="center",
            color=_COLOURS[k % len(_COLOURS)],
            transform=shifted,
            fontsize=8,
        )
        for k, label in enumerate(labels)
    ]
    widest = max(t.get_window_extent().width for t in texts) * points
    left = (widest + reach + _GAP + _EDGE) / (fig.get_figwidth() * 72.0)
    if left > _LEFT:
        for axis in axes:
            box = axis.get_position()
            axis.set_position((left, box.y0, _RIGHT - left, box.height))


def _ticks(longest: float) -> np.ndarray:
    step = 6.0 if longest <= 72 else 12.0 if longest <= 144 else float(np.ceil(longest / 10))
    return np.arange(0.0, longest + step, step)
