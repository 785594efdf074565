"""Scaled Schoenfeld residuals against time, one panel per term (``plot.cox.zph``'s figure)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.interpolate import make_lsq_spline

from toolkit.plots._stamp import Stamp, apply, new_figure

SMOOTH_DF = 4


def _smooth(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
    """A least-squares cubic spline with ``SMOOTH_DF`` degrees of freedom beyond the cubic
    (interior knots at quantiles of x), as ``plot.cox.zph`` smooths with ``ns(x, df = 4)``;
    None when x has too few distinct values to place the knots."""
    keep = np.isfinite(y)
    x, y = x[keep], y[keep]
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    inner = np.quantile(x, np.linspace(0, 1, SMOOTH_DF)[1:-1])
    if len(np.unique(x)) < SMOOTH_DF + 4 or len(np.unique(inner)) < len(inner):
        return None
    knots = np.r_[[x[0]] * 4, inner, [x[-1]] * 4]
    try:
        return make_lsq_spline(x, y, knots, k=3)(grid)
    except (ValueError, np.linalg.LinAlgError):  # Schoenberg-Whitney fails: no smooth
        return None


def schoenfeld_figure(
    zph, labels: Mapping[str, str], *, title: str, time_label: str, stamp: Stamp | None = None
):
    """Each term's scaled Schoenfeld residuals (an estimate of beta(t)) at the transformed
    event times, with the smooth (a flat smooth: proportional hazards hold) and the term's
    test P in the panel title. A categorical term is shown, as ``plot.cox.zph`` shows it,
    as the residual of its linear combination."""
    terms = list(zph.terms)
    columns = min(3, len(terms))
    rows = -(-len(terms) // columns)
    fig = new_figure(4.2 * columns, 3.4 * rows)
    grid = np.linspace(float(np.min(zph.x)), float(np.max(zph.x)), 200)
    for i, term in enumerate(terms):
        ax = fig.add_subplot(rows, columns, i + 1)
        y = zph.residuals[:, i]
        ax.scatter(zph.x, y, s=8, color="#555555", alpha=0.6)
        smooth = _smooth(zph.x, y, grid)
        if smooth is not None:
            ax.plot(grid, smooth, color="#d95f02")
        p = float(zph.table.loc[term, "p"])
        ax.set_title(f"{labels.get(term, term)} (P = {p:.3f})", fontsize=9)
        ax.set_xlabel(time_label)
        ax.set_ylabel("Beta(t)")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return apply(fig, stamp)
