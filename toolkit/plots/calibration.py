"""Calibration curves: grouped KM observed vs mean predicted survival (Figure 4C)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from toolkit.plots._stamp import Stamp, apply, new_figure

_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a")


def calibration_figure(
    curves: Mapping[str, tuple[pd.DataFrame, float]],
    *,
    title: str,
    stamp: Stamp | None = None,
):
    """One line per horizon: groups' mean predicted (x) vs KM observed (y) survival.

    ``curves`` maps a label ("12 months") to (groups table, RMSE).
    """
    fig = new_figure(4.8, 4.8)
    ax = fig.add_axes((0.15, 0.13, 0.8, 0.78))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="ideal")
    for k, (label, (groups, rmse)) in enumerate(curves.items()):
        colour = _COLOURS[k % len(_COLOURS)]
        x, y = groups["predicted"].to_numpy(), groups["observed"].to_numpy()
        ax.plot(x, y, "o-", color=colour, label=f"{label} (RMSE {rmse:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("Predicted survival")
    ax.set_ylabel("Observed survival (Kaplan-Meier)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    ax.grid(alpha=0.3)
    return apply(fig, stamp)
