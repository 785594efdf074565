"""Fine-tuning (toolkit/deep/finetune.py) on the tiny synthetic cohort: a reduced-width
DenseNet on 32 x 32 crops, the exact Cox loss over all 8 patients at every step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from deep_helpers import cohort_crops

from toolkit.deep import DenseNet121
from toolkit.deep.cox_loss import cox_loss
from toolkit.deep.finetune import (
    CoxNetwork,
    FinetuneSettings,
    finetune,
    init_params,
    inner_split,
    linear_predictor,
)

SMALL = CoxNetwork(DenseNet121(blocks=(1, 1, 1, 1), growth_rate=8, stem_features=16))


@pytest.fixture(scope="module")
def tiny_crops(tiny_cohort, tmp_path_factory):
    """The primary reader's 32 x 32 crops of the 8 patients and their overall survival."""
    out = tmp_path_factory.mktemp("crops32")
    return cohort_crops(tiny_cohort, out, 32)


def test_training_loss_falls_from_the_null_loss(tiny_crops):
    arterial, portal, time, event, _ = tiny_crops
    assert 2 <= event.sum() < len(event)  # events and censorings both
    settings = FinetuneSettings(steps=25, learning_rate=3e-3, seed=0, augmentation=None)
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
        ({"validation_fraction": 1.0}, "validation_fraction must be in"),
        ({"patience": 0}, "patience must be at least 1"),
        ({"chunk_size": 0}, "chunk_size must be at least 1"),
        ({"dtype": "float16"}, "dtype must be one of"),
    ):
        with pytest.raises(ValueError, match=message):
            FinetuneSettings(**kwargs)


def test_chunked_gradient_equals_the_whole_set_gradient(tiny_crops):
    # chunks of 3 patients (3 chunks, the last padded): the chain rule through eta keeps
    # every risk set whole, so training follows the whole-set gradient up to rounding
    arterial, portal, time, event, _ = tiny_crops

    def run(chunk_size):
        settings = FinetuneSettings(
            steps=3, learning_rate=3e-3, augmentation=None, chunk_size=chunk_size
        )
        return finetune(arterial, portal, time, event, network=SMALL, settings=settings)

    whole, chunked = run(None), run(3)
    assert not np.allclose(whole.losses[-1], whole.losses[0])  # the steps moved the loss
    np.testing.assert_allclose(chunked.losses, whole.losses, rtol=1e-5)
    head = np.asarray(chunked.params["head"]["kernel"])
    np.testing.assert_allclose(head, np.asarray(whole.params["head"]["kernel"]), atol=1e-6)
    eta = linear_predictor(SMALL, chunked.params, arterial, portal, chunk_size=3)
    whole_eta = linear_predictor(SMALL, chunked.params, arterial, portal)
    np.testing.assert_allclose(eta, whole_eta, rtol=1e-6)


def test_inner_split_is_stratified_disjoint_and_seeded():
    event = np.r_[np.ones(10), np.zeros(30)]
    train, validation = inner_split(event, 0.2, seed=3)
    assert np.array_equal(np.sort(np.r_[train, validation]), np.arange(40))
    assert event[validation].sum() == 2 and (1 - event[validation]).sum() == 6
    again = inner_split(event, 0.2, seed=3)
    assert np.array_equal(again[1], validation)
    assert not np.array_equal(inner_split(event, 0.2, seed=4)[1], validation)
    # a stratum is never emptied: one event of two stays in training
    train, validation = inner_split(np.r_[1.0, 1.0, 0.0, 0.0, 0.0], 0.9, seed=0)
    assert event_count(np.r_[1.0, 1.0, 0.0, 0.0, 0.0], train) == 1
    assert len(validation) == 3


def event_count(event, where):
    return int(np.asarray(event)[where].sum())


def test_early_stopping_keeps_the_best_steps_parameters(tiny_crops):
    arterial, portal, time, event, _ = tiny_crops
    settings = FinetuneSettings(
        steps=12, learning_rate=3e-2, validation_fraction=0.25, patience=2, seed=0
    )
    result = finetune(arterial, portal, time, event, network=SMALL, settings=settings)
    train, validation = result.train, result.validation
    assert not set(train) & set(validation) and len(train) + len(validation) == 8
    assert event[validation].any() and event[train].any()
    checked = result.validation_losses
    assert len(checked) == result.steps_run + 1 and len(result.losses) == result.steps_run + 1
    # the best step after at least one (step 0 is the null model: a zero head)
    assert result.best_step >= 1 and result.best_step == 1 + int(np.argmin(checked[1:]))
    # it stopped `patience` steps after the best one, or ran every step
    assert result.steps_run == min(settings.steps, result.best_step + settings.patience)
    # the parameters returned are the best step's: their validation loss is the minimum
    eta = linear_predictor(SMALL, result.params, arterial[validation], portal[validation])
    loss = float(cox_loss(eta.astype(np.float64), time[validation], event[validation]))
    assert loss / event[validation].sum() == pytest.approx(checked[1:].min(), rel=1e-4)


def test_bfloat16_backbone_gives_nearly_the_float32_linear_predictor(tiny_crops):
    arterial, portal = tiny_crops[0], tiny_crops[1]
    params = init_params(SMALL, arterial.shape[1:], seed=2)
    head = np.random.default_rng(0).normal(size=params["head"]["kernel"].shape)
    params = {**params, "head": {"kernel": head.astype(np.float32)}}
    f32 = linear_predictor(SMALL, params, arterial, portal)
    bf16 = linear_predictor(SMALL, params, arterial, portal, dtype="bfloat16")
    assert not np.array_equal(bf16, f32)  # it did compute in bfloat16
    # bfloat16 keeps 8 bits of mantissa: a few per cent of the linear predictor's size
    assert np.abs(bf16 - f32).max() < 0.1 * np.abs(f32).max()
    assert np.corrcoef(bf16, f32)[0, 1] > 0.98


SHARDED = """
import json, sys
import numpy as np
import jax
from toolkit.deep import DenseNet121
from toolkit.deep.finetune import CoxNetwork, FinetuneSettings, finetune
data = np.load(sys.argv[1])
network = CoxNetwork(DenseNet121(blocks=(1, 1, 1, 1), growth_rate=8, stem_features=16))
settings = FinetuneSettings(steps=2, learning_rate=3e-3, chunk_size=4, augmentation=None)
result = finetune(data["a"], data["p"], data["t"], data["e"], network=network, settings=settings)
print(json.dumps({"devices": jax.local_device_count(), "losses": result.losses.tolist()}))
"""


def test_training_sharded_over_two_devices_equals_one_device(tiny_crops, tmp_path):
    arterial, portal, time, event, _ = tiny_crops
    np.savez(tmp_path / "cohort.npz", a=arterial, p=portal, t=time, e=event)
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    done = subprocess.run(
        [sys.executable, "-c", SHARDED, str(tmp_path / "cohort.npz")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    sharded = json.loads(done.stdout.strip().splitlines()[-1])
    assert sharded["devices"] == 2
    settings = FinetuneSettings(steps=2, learning_rate=3e-3, chunk_size=4, augmentation=None)
    alone = finetune(arterial, portal, time, event, network=SMALL, settings=settings)
    np.testing.assert_allclose(sharded["losses"], alone.losses, rtol=1e-5)
