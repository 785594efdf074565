"""Selection stability of the whole-procedure bootstrap: how often each candidate was chosen."""

from __future__ import annotations

import pandas as pd

from toolkit.plots._stamp import Stamp, apply, new_figure

_CHOSEN, _OTHER = "#2166ac", "#bababa"


def selection_figure(table: pd.DataFrame, *, top: int = 20, stamp: Stamp | None = None):
    """Bars of the fraction of resamples selecting each candidate.

    Left: the ``top`` deep features most often in the refitted signature; right:
    each clinical variable's fraction in the clinical and the integrated
    nomogram. Dark bars are in the study's own model. ``table`` is
    ``study.internal.selection_stability``'s.
    """
    deep = table[table["kind"] == "deep feature"].head(top)
    clinical = table[table["kind"] == "clinical variable"]
    variables = list(dict.fromkeys(clinical["name"]))
    fig = new_figure(10.0, 0.28 * max(len(deep), 2 * len(variables)) + 1.6)
    left = fig.add_axes((0.12, 0.12, 0.33, 0.78))
    _bars(left, deep["name"].tolist(), deep["fraction"], deep["in_study_model"], 0.8)
    left.set_title("Deep features in the signature", fontsize=10)
    right = fig.add_axes((0.62, 0.12, 0.33, 0.78))
    for offset, model in ((-0.2, "clinical"), (0.2, "integrated")):
        rows = clinical[clinical["model"] == model].set_index("name").loc[variables]
        positions = [i + offset for i in range(len(variables))]
        colours = [_CHOSEN if chosen else _OTHER for chosen in rows["in_study_model"]]
        right.barh(positions, rows["fraction"], height=0.38, color=colours, edgecolor="black")
        for y, value in zip(positions, rows["fraction"], strict=True):
            right.text(value + 0.01, y, model[0].upper(), va="center", fontsize=6)
    right.set_yticks(range(len(variables)))
    right.set_yticklabels(variables, fontsize=8)
    right.invert_yaxis()
    right.set_xlim(0, 1.08)
    right.set_xlabel("Fraction of resamples selecting it")
    right.set_title("Clinical variables (C clinical, I integrated)", fontsize=10)
    n_used = int(table["n_used"].iloc[0]) if len(table) else 0
    fig.suptitle(f"Selection stability over {n_used} bootstrap resamples", fontsize=11)
    return apply(fig, stamp)


def _bars(ax, names, fractions, chosen, height) -> None:
    colours = [_CHOSEN if c else _OTHER for c in chosen]
    ax.barh(range(len(names)), fractions, height=height, color=colours, edgecolor="black")
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.0)
    ax.set_xlabel("Fraction of resamples selecting it")
