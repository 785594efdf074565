"""Time-dependent AUC per model and set."""

from __future__ import annotations

from collections.abc import Mapping

from toolkit.plots._stamp import Stamp, apply, new_figure

_STYLE = {"train": "-", "validation": "--"}
_COLOURS = {
    "signature": "#7570b3",
    "clinical": "#d95f02",
    "integrated": "#1b9e77",
    "radiomics": "#e7298a",
    "integrated_radiomics": "#66a61e",
    "combined": "#e6ab02",
}


def td_auc_figure(
    auc: Mapping[str, Mapping[str, Mapping[str, float]]],
    *,
    time_unit: str,
    stamp: Stamp | None = None,
):
    """``auc[set][model][time] -> AUC`` as lines over time, training solid, validation dashed."""
    fig = new_figure(5.6, 4.2)
    ax = fig.add_axes((0.12, 0.13, 0.6, 0.78))
    for set_name, models in auc.items():
        for model, by_time in models.items():
            times = sorted(by_time, key=float)
            ax.plot(
                [float(t) for t in times],
                [by_time[t] for t in times],
                _STYLE.get(set_name, ":"),
                marker="o",
                color=_COLOURS.get(model, "black"),
                label=f"{model}, {set_name}",
            )
    ax.axhline(0.5, color="grey", linewidth=0.8)
    ax.set_ylim(0.4, 1.0)
    ax.set_xlabel(f"Time ({time_unit})")
    ax.set_ylabel("Time-dependent AUC")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, fontsize=8)
    ax.grid(alpha=0.3)
    return apply(fig, stamp)
