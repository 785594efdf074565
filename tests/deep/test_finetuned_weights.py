"""A fine-tuned network's weights file (deep.weights.write_finetuned / read_finetuned) and its
class-activation maps (deep.cam.finetuned_risk_contributions), on a reduced-width DenseNet
fine-tuned for a few steps on the 8-patient synthetic cohort's 64 x 64 crops."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from deep_helpers import cohort_crops

from toolkit.artifacts import file_hash
from toolkit.deep import DenseNet121
from toolkit.deep.cam import finetuned_risk_contributions, upsample
from toolkit.deep.finetune import CoxNetwork, FinetuneSettings, finetune, linear_predictor
from toolkit.deep.weights import (
    FinetunedWeights,
    WeightsError,
    load,
    read_finetuned,
    write_finetuned,
)

WIDTH = {"blocks": (1, 1, 1, 1), "growth_rate": 8, "stem_features": 16}
NETWORK = CoxNetwork(DenseNet121(**WIDTH))
SIZE = 64  # a 2 x 2 last feature map: a map, not one cell


@pytest.fixture(scope="module")
def tuned(tiny_cohort, tmp_path_factory):
    """(arterial, portal, FinetunedWeights) of a network fine-tuned for 6 steps."""
    out = tmp_path_factory.mktemp("crops64")
    arterial, portal, time, event, _ = cohort_crops(tiny_cohort, out, SIZE)
    result = finetune(
        arterial,
        portal,
        time,
        event,
        network=NETWORK,
        settings=FinetuneSettings(steps=6, learning_rate=3e-3, seed=0, augmentation=None),
    )
    weights = FinetunedWeights(
        params=jax.device_get(result.params), **WIDTH, input_size=SIZE, backbone="random (seed 0)"
    )
    return arterial, portal, weights


def test_reloaded_weights_give_the_same_scores_and_features_bit_for_bit(tuned, tmp_path):
    arterial, portal, weights = tuned
    sha256 = write_finetuned(tmp_path / "finetuned.safetensors", weights)
    assert sha256 == file_hash(tmp_path / "finetuned.safetensors")
    back = read_finetuned(tmp_path / "finetuned.safetensors")
    assert back.sha256 == sha256 and back.describe() == weights.describe()
    assert back.network() == NETWORK
    before = linear_predictor(NETWORK, weights.params, arterial, portal)
    after = linear_predictor(back.network(), back.params, arterial, portal)
    assert np.abs(before).max() > 0  # a trained head, not the zero it starts at
    np.testing.assert_array_equal(after, before)
    images = jnp.broadcast_to(jnp.asarray(arterial)[..., None], (*arterial.shape, 3))

    def pooled(params):
        return np.asarray(NETWORK.backbone.apply({"params": params["backbone"]}, images)[1])

    np.testing.assert_array_equal(pooled(back.params), pooled(weights.params))
    # the same parameters give the same bytes: the SHA-256 names the network
    assert write_finetuned(tmp_path / "again.safetensors", back) == sha256


def test_a_file_that_does_not_fit_its_network_is_refused(tuned, tmp_path):
    _, _, weights = tuned
    deeper = FinetunedWeights(**{**weights.__dict__, "blocks": (1, 1, 1, 2)})
    write_finetuned(tmp_path / "deeper.safetensors", deeper)
    with pytest.raises(WeightsError, match=r"does not fit the file: .*conv5_block2.* is missing"):
        read_finetuned(tmp_path / "deeper.safetensors")
    wider = FinetunedWeights(**{**weights.__dict__, "growth_rate": 12})
    write_finetuned(tmp_path / "wider.safetensors", wider)
    with pytest.raises(WeightsError, match=r"is float32 \(17,\); the network expects .*\(24,\)"):
        read_finetuned(tmp_path / "wider.safetensors")
    write_finetuned(tmp_path / "tuned.safetensors", weights)
    # the extraction weights' loader says what the file is instead of a shape error
    with pytest.raises(WeightsError, match="a fine-tuned Cox network"):
        load(tmp_path / "tuned.safetensors")


def test_cam_of_the_finetuned_head_is_its_weights_times_the_last_feature_map(tuned):
    arterial, portal, weights = tuned
    heat = finetuned_risk_contributions(NETWORK, weights.params, arterial, portal)
    assert heat["arterial"].shape == heat["portal"].shape == (8, 2, 2)
    kernel = np.asarray(weights.params["head"]["kernel"], np.float64)[:, 0]
    n_features = kernel.size // 2
    # by hand: each phase's last feature map A (after the final BN + ReLU), each cell's
    # sum over channels of the head's weight of that phase's channel times A
    for phase, crops, offset in (("arterial", arterial, 0), ("portal", portal, n_features)):
        images = jnp.broadcast_to(jnp.asarray(crops)[..., None], (*crops.shape, 3))
        maps = np.asarray(NETWORK.backbone.apply({"params": weights.params["backbone"]}, images)[0])
        assert maps.shape == (8, 2, 2, n_features)
        expected = np.zeros((8, 2, 2))
        for k in range(n_features):
            expected += kernel[offset + k] * maps[..., k].astype(np.float64)
        # the map here is an un-jitted forward pass: equal to float32 rounding (measured
        # worst relative difference 1e-7), the weighting itself exact in float64
        np.testing.assert_allclose(heat[phase], expected, rtol=1e-6, atol=1e-9)
    # global average pooling is linear: the grids' means add up to the network's eta
    eta = linear_predictor(NETWORK, weights.params, arterial, portal)
    total = heat["arterial"].mean(axis=(1, 2)) + heat["portal"].mean(axis=(1, 2))
    np.testing.assert_allclose(total, eta, rtol=1e-5, atol=1e-6)
    assert np.ptp(heat["arterial"]) > 0
    assert upsample(heat["portal"][0], 224).shape == (224, 224)
