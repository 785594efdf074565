"""Forest plot of a multivariable Cox model's hazard ratios."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from toolkit.plots._stamp import Stamp, apply, new_figure

_EDGE = (1e-3, 1e3)


def forest_figure(
    models: Mapping[str, pd.DataFrame],
    *,
    labels: Mapping[str, str] | None = None,
    stamp: Stamp | None = None,
):
    """Hazard ratios with 95% CIs on a log axis, one block per model.

    Each frame has columns ``term, hr, lower, upper, p``. The axis spans at most
    1e-3 to 1e3: a bar beyond it (a near-separated term's CI, an HR per raw unit of a
    score) is drawn to the edge, its printed values unclipped.
    """
    labels = labels or {}
    rows = [(name, r) for name, frame in models.items() for r in frame.itertuples(index=False)]
    fig = new_figure(7.2, 0.45 * (len(rows) + 2 * len(models)) + 1.0)
    ax = fig.add_axes((0.38, 0.1, 0.4, 0.85))
    y, ticks, names = 0.0, [], []
    for model, frame in models.items():
        y -= 1
        ax.text(-0.02, y, model, transform=ax.get_yaxis_transform(), ha="right", weight="bold")
        for r in frame.itertuples(index=False):
            y -= 1
            lower, upper, hr = np.clip([r.lower, r.upper, r.hr], _EDGE[0], _EDGE[1])
            ax.plot([lower, upper], [y, y], color="black", linewidth=1)
            ax.plot([hr], [y], "s", color="#2166ac")
            ticks.append(y)
            names.append(labels.get(r.term, r.term))
            p = "<0.001" if r.p < 0.001 else f"{r.p:.3f}"
            ax.text(
                1.02,
                y,
                f"{r.hr:.2f} ({r.lower:.2f}-{r.upper:.2f})  P {p}",
                transform=ax.get_yaxis_transform(),
                va="center",
                fontsize=8,
            )
        y -= 0.5
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(ticks)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_ylim(y - 0.5, 0)
    ax.set_xlabel("Hazard ratio (95% CI)")
    finite = np.array([[r.lower, r.upper] for _, r in rows], dtype=float)
    if finite.size:
        ax.set_xlim(max(np.nanmin(finite) / 1.3, _EDGE[0]), min(np.nanmax(finite) * 1.3, _EDGE[1]))
    return apply(fig, stamp)
