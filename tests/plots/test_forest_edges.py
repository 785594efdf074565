"""A forest plot whose CI runs to overflow (a near-separated term) draws to the axis edge."""

import warnings

import pandas as pd

from toolkit.plots.forest import forest_figure


def test_huge_and_infinite_bounds_draw_without_overflow():
    frame = pd.DataFrame(
        {
            "term": ["score", "stage"],
            "hr": [1.0e150, 2.0],
            "lower": [1.0e5, 1.1],
            "upper": [1.0e300, 3.5],
            "p": [0.01, 0.02],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = forest_figure({"combined": frame})
    low, high = fig.axes[0].get_xlim()
    assert low >= 1e-3 and high <= 1e3
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any(text.startswith(f"{1.0e150:.2f}") for text in texts), texts  # printed unclipped
