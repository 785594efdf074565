"""Fine-tuning (toolkit/deep/finetune.py) on the tiny synthetic cohort: a reduced-width
DenseNet on 32 x 32 crops, the exact Cox loss over all 8 patients at every step."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit.deep import DenseNet121
from toolkit.deep.cox_loss import cox_loss
from toolkit.deep.finetune import (
    CoxNetwork,
    FinetuneSettings,
    finetune,
    init_params,
    linear_predictor,
)
from toolkit.imaging.preprocess import PreprocessSettings, preprocess_cohort

SMALL = CoxNetwork(DenseNet121(blocks=(1, 1, 1, 1), growth_rate=8, stem_features=16))


@pytest.fixture(scope="module")
def tiny_crops(tiny_cohort, tmp_path_factory):
    """The primary reader's 32 x 32 crops of the 8 patients and their overall survival."""
    out = tmp_path_factory.mktemp("crops32")
    settings = PreprocessSettings(crop_size=32, register=False, qc=False)
    summary = preprocess_cohort(
        tiny_cohort / "manifest.csv", out, workers=0, progress=False, settings=settings
    )
    assert summary.n_ok == 8
    clinical = pd.read_csv(tiny_cohort / "clinical.csv").set_index("patient")
    patients = sorted(p.stem for p in out.glob("*.npz"))
    crops = {"arterial": [], "portal": []}
    for patient in patients:
        with np.load(out / f"{patient}.npz") as data:
            for phase, stack in crops.items():
                stack.append(data[phase][0])
    time = clinical.loc[patients, "os_months"].to_numpy()
    event = clinical.loc[patients, "os_event"].to_numpy().astype(float)
    return np.stack(crops["arterial"]), np.stack(crops["portal"]), time, event, patients


def test_training_loss_falls_from_the_null_loss(tiny_crops):
    arterial, portal, time, event, _ = tiny_crops
    assert 2 <= event.sum() < len(event)  # events and censorings both
    settings = FinetuneSettings(steps=25, learning_rate=3e-3, seed=0)
    result = finetune(arterial, portal, time, event, network=SMALL, settings=settings)
    losses = result.losses
    assert losses.shape == (26,) and np.isfinite(losses).all()
    # the head starts at zero: the first loss is that of eta = 0, per event
    null = float(cox_loss(np.zeros(len(time)), time, event)) / event.sum()
    assert losses[0] == pytest.approx(null, rel=1e-6)
    assert losses[-1] < 0.5 * losses[0]
    assert losses[1:].min() < losses[0]
    # the last loss is the loss of the trained network's linear predictor
    eta = linear_predictor(SMALL, result.params, arterial, portal)
    assert np.abs(eta).max() > 0
    trained = float(cox_loss(eta.astype(np.float64), time, event)) / event.sum()
    assert losses[-1] == pytest.approx(trained, rel=1e-4)


def test_training_is_deterministic_in_its_seed(tiny_crops):
    arterial, portal, time, event, _ = tiny_crops

    def losses(seed):
        settings = FinetuneSettings(steps=4, learning_rate=3e-3, seed=seed)
        return finetune(arterial, portal, time, event, network=SMALL, settings=settings).losses

    first = losses(0)
    np.testing.assert_array_equal(losses(0), first)
    assert not np.array_equal(losses(1), first)


def test_imported_backbone_parameters_are_the_starting_point(tiny_crops):
    arterial = tiny_crops[0]
    start = init_params(SMALL, arterial.shape[1:], seed=5)
    again = init_params(SMALL, arterial.shape[1:], seed=9, backbone=start["backbone"])
    conv = "conv1_conv"
    np.testing.assert_array_equal(
        again["backbone"][conv]["kernel"], start["backbone"][conv]["kernel"]
    )
    assert not np.asarray(again["head"]["kernel"]).any()  # the head starts at zero


def test_bad_crops_and_settings_are_refused(tiny_crops):
    arterial, portal, time, event, patients = tiny_crops
    bad = arterial.copy()
    bad[3, 0, 0] = np.nan
    with pytest.raises(ValueError, match=f"arterial crops of 1 patients .*{patients[3]}"):
        finetune(bad, portal, time, event, network=SMALL, rows=patients)
    with pytest.raises(ValueError, match=r"portal crops have shape \(7, 32, 32\)"):
        finetune(arterial, portal[:7], time, event, network=SMALL)
    with pytest.raises(ValueError, match="divisible by 32"):
        finetune(arterial[:, :24, :24], portal[:, :24, :24], time, event, network=SMALL)
    for kwargs, message in (
        ({"steps": 0}, "steps must be at least 1"),
        ({"learning_rate": 0.0}, "learning_rate must be positive"),
        ({"weight_decay": -1.0}, "weight_decay must be non-negative"),
        ({"ties": "exact"}, "ties must be one of"),
    ):
        with pytest.raises(ValueError, match=message):
            FinetuneSettings(**kwargs)
