"""Class activation maps: exact decomposition of the signature's linear predictor, figure labels."""

from __future__ import annotations

import numpy as np
import pytest
from deep_helpers import tumour_mask

from toolkit.deep.cam import overlay_figure, risk_contributions, risk_map, save_overlay, upsample
from toolkit.deep.extract import extract


@pytest.fixture(scope="module")
def signature_weights():
    """A sparse signature over one phase: 5 features with Cox coefficients of both signs."""
    w = np.zeros(1024)
    w[[3, 100, 257, 600, 1000]] = [0.8, -0.5, 1.2, -0.3, 0.4]
    return w


def test_grid_mean_of_the_cam_equals_the_linear_predictor(random_weights, crops, signature_weights):
    heat = risk_contributions(crops, signature_weights, random_weights)
    assert heat.shape == (len(crops), 7, 7)
    features = extract(crops, params=random_weights, batch_size=len(crops))
    linear_predictor = features.astype(np.float64) @ signature_weights
    np.testing.assert_allclose(heat.mean(axis=(1, 2)), linear_predictor, rtol=1e-5, atol=1e-6)
    assert np.ptp(heat) > 0  # a map, not a constant


def test_risk_map_is_the_bilinear_upsampling_of_the_grid(random_weights, crops, signature_weights):
    full = risk_map(crops[0], signature_weights, random_weights, patient="P001")
    grid = risk_contributions(crops[:1], signature_weights, random_weights)[0]
    assert full.shape == (224, 224)
    # Half-pixel bilinear, written out: pixel j samples grid coordinate (j + 0.5) / 32 - 0.5,
    # clamped to the grid, interpolated linearly along rows then columns.
    coordinate = np.clip((np.arange(224) + 0.5) / 32 - 0.5, 0, 6)
    low = np.floor(coordinate).astype(int)
    high = np.minimum(low + 1, 6)
    frac = coordinate - low
    rows = grid[low] * (1 - frac)[:, None] + grid[high] * frac[:, None]
    expected = rows[:, low] * (1 - frac) + rows[:, high] * frac
    np.testing.assert_allclose(full, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(upsample(np.full((7, 7), 2.5)), 2.5)


def test_bad_signature_weights_and_crops_are_refused(random_weights, crops):
    with pytest.raises(ValueError, match=r"shape \(10,\); expected \(1024,\)"):
        risk_contributions(crops, np.ones(10), random_weights)
    with pytest.raises(ValueError, match=r"P009: crop has shape \(224, 200\)"):
        risk_map(np.zeros((224, 200)), np.ones(1024), random_weights, patient="P009")


def test_overlay_figure_says_random_weights(tmp_path, random_weights, crops, signature_weights):
    heat = risk_map(crops[0], signature_weights, random_weights)
    fig = overlay_figure(
        crops[0], heat, tumour_mask(crops[0]), weights=random_weights, title="P001 portal"
    )
    title = fig._suptitle.get_text()
    assert "P001 portal" in title and "random weights" in title
    import matplotlib.pyplot as plt

    plt.close(fig)
    fig = overlay_figure(crops[0], heat, weights="imagenet-keras")
    assert "imagenet-keras" in fig._suptitle.get_text()
    assert "random" not in fig._suptitle.get_text()
    plt.close(fig)
    written = save_overlay(
        tmp_path / "cam_P001", crops[0], heat, tumour_mask(crops[0]), weights=random_weights
    )
    assert [p.suffix for p in written] == [".png", ".svg"]
    assert all(p.stat().st_size > 1000 for p in written)
    assert "random weights" in (tmp_path / "cam_P001.svg").read_text()
