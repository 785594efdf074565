"""Decision curves: net benefit against threshold probability, per horizon."""

from __future__ import annotations

import pandas as pd

from toolkit.plots._stamp import Stamp, apply, new_figure

_STYLE = {"treat all": ("grey", "-"), "treat none": ("black", "-")}
# Dark2: one colour per model of the study (six with the radiomics signature)
_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")


def decision_figure(table: pd.DataFrame, *, title: str, time_unit: str, stamp: Stamp | None = None):
    """One panel per horizon; ``table`` is :func:`toolkit.stats.decision.decision_table`'s."""
    horizons = sorted(table["horizon"].unique())
    fig = new_figure(5.0 * len(horizons), 4.2)
    for i, horizon in enumerate(horizons):
        ax = fig.add_subplot(1, len(horizons), i + 1)
        rows = table[table["horizon"] == horizon]
        models = [m for m in rows["model"].unique() if m not in _STYLE]
        for k, model in enumerate([*models, "treat all", "treat none"]):
            colour, style = _STYLE.get(model, (_COLOURS[k % len(_COLOURS)], "-"))
            curve = rows[rows["model"] == model]
            ax.plot(curve["threshold"], curve["net_benefit"], style, color=colour, label=model)
        prevalence = rows.loc[rows["model"] == "treat all", "net_benefit"].max()
        ax.set_ylim(-0.05, max(0.05, float(prevalence) * 1.1))
        ax.set_xlim(0, 1)
        ax.set_xlabel("Threshold probability")
        ax.set_ylabel("Net benefit")
        ax.set_title(f"{horizon:g} {time_unit}", fontsize=10)
        ax.legend(frameon=False, fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return apply(fig, stamp)
