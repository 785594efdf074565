"""The provenance stamp every study figure carries (synthetic cohort, random weights)."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt


@dataclass(frozen=True)
class Stamp:
    """What a figure must say about its origin."""

    synthetic: bool = False
    weights: str | None = None  # "random", "imagenet-keras", ... or None when no network

    def text(self) -> str:
        parts = []
        if self.synthetic:
            parts.append("synthetic cohort")
        if self.weights == "random":
            parts.append("random network weights")
        return " · ".join(parts)


def apply(fig: plt.Figure, stamp: Stamp | None) -> plt.Figure:
    """Write the stamp in the figure's lower-right corner, in red, when there is one."""
    text = stamp.text() if stamp else ""
    if text:
        fig.text(0.99, 0.005, text.upper(), ha="right", va="bottom", fontsize=7, color="#b2182b")
    return fig


def new_figure(width: float, height: float) -> plt.Figure:
    return plt.figure(figsize=(width, height))


def close(fig: plt.Figure) -> None:
    plt.close(fig)
