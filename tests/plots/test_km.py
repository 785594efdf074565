"""The Kaplan-Meier figure's number-at-risk table: labels never touch the counts."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.plots._stamp import close
from toolkit.plots.km import km_figure

MIN_GAP_POINTS = 4.0


def _groups(labels, sizes):
    rng = np.random.default_rng(1)
    return {
        label: (rng.exponential(20.0, n), rng.integers(0, 2, n).astype(float))
        for label, n in zip(labels, sizes, strict=True)
    }


@pytest.mark.parametrize(
    ("labels", "sizes"),
    [
        (("Training", "Validation"), (120, 81)),
        (("Training cohort, centres A and B", "External validation, centre C"), (1200, 810)),
        (("Low risk", "High risk"), (9, 11)),
    ],
)
def test_risk_table_labels_end_left_of_the_first_count(labels, sizes):
    fig = km_figure(_groups(labels, sizes), title="KM")
    table = fig.axes[-1]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    points = 72.0 / fig.dpi
    texts = {t.get_text(): t for t in table.texts}
    for label, n in zip(labels, sizes, strict=True):
        label_box = texts[label].get_window_extent(renderer)
        row = [
            t
            for t in table.texts
            if t.get_text() != label and t.get_position()[1] == texts[label].get_position()[1]
        ]
        first = min(row, key=lambda t: t.get_window_extent(renderer).x0)
        assert first.get_text() == str(n)
        gap = (first.get_window_extent(renderer).x0 - label_box.x1) * points
        assert gap >= MIN_GAP_POINTS, (label, gap)
        assert label_box.x0 >= 0, f"{label!r} runs off the figure's left edge"
    close(fig)
