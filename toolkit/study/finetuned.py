"""The fine-tuned signature: DenseNet-121 and a Cox head trained end to end, honestly evaluated.

With ``[signature] source = "finetuned"`` the signature is the linear predictor eta of
`toolkit.deep.finetune.CoxNetwork` trained on the primary reader's largest-ROI crops
of both phases (resized to ``[signature.finetune] input_size``) by AdamW on the
exact Cox loss over the training set's risk sets, with augmentation and early stopping
on an inner validation split (see `toolkit.deep.finetune`). Higher eta = worse, as
for the frozen signature.

1. **Cross-validated C-index.** The training patients are cut into ``n_folds`` outer
   folds, stratified by event and seeded (`outer_folds`). For each fold the whole
   fine-tuning (network initialisation, inner split, early stopping) runs on the other
   folds' patients alone, and Harrell's C-index of eta is computed on the fold's
   patients; the table gives each fold's and their mean. No fold's training sees its
   test patients (`cross_validate` records the patients each training run was given).
2. **Final model.** Fine-tuning on the whole training set; its eta of every patient,
   training and validation, is the signature score that the nomograms, the validation
   and the R check use unchanged. The validation set is scored once, by this model.

Not done (yet): class-activation maps of the fine-tuned head (the study's ``cam``
stage is left out of a fine-tuned run), the whole-procedure bootstrap (each of its
resamples would fine-tune again; the ``internal_validation`` stage is left out too),
and the fine-tuned weights in the locked model bundle (the ``bundle`` stage is left out:
``sigkit apply`` scores a signature from frozen features).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toolkit.config import CROP_SIZE
from toolkit.config import Finetune as FinetuneConfig


@dataclass(frozen=True)
class FinetunedSignature:
    """eta of every patient (clinical order), the outer folds' table and membership,
    and the final model's training record."""

    score: np.ndarray
    cv: pd.DataFrame
    folds: pd.DataFrame
    best_step: int
    steps_run: int
    backbone: str


def outer_folds(event: Any, n_folds: int, seed: int) -> np.ndarray:
    """The outer fold (0..n_folds-1) of each patient, stratified by event: each stratum
    shuffled (``numpy.random.default_rng(seed)``) and dealt out in turn."""
    event = np.asarray(event, dtype=float)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(event), dtype=int)
    offset = 0
    for stratum in (1.0, 0.0):
        members = rng.permutation(np.flatnonzero(event == stratum))
        fold[members] = (offset + np.arange(len(members))) % n_folds
        offset += len(members)
    return fold


def network_of(settings: FinetuneConfig):
    from toolkit.deep import DenseNet121
    from toolkit.deep.finetune import CoxNetwork

    width = DenseNet121(
        blocks=tuple(settings.blocks),
        growth_rate=settings.growth_rate,
        stem_features=settings.stem_features,
    )
    return CoxNetwork(width)


def trainer_settings(settings: FinetuneConfig, seed: int):
    from toolkit.deep.augment import Augmentation
    from toolkit.deep.finetune import FinetuneSettings

    return FinetuneSettings(
        steps=settings.steps,
        learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay,
        seed=seed,
        augmentation=Augmentation() if settings.augmentation else None,
        validation_fraction=settings.validation_fraction,
        patience=settings.patience,
        chunk_size=settings.chunk_size,
        dtype=settings.dtype,
    )


def primary_crops(
    crops_dir: Path, patients: list[str], reader: str, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The primary reader's largest-ROI arterial and portal crops of ``patients``, in that
    order, resized to ``size``; an error names the patients without crops."""
    import jax
    import jax.numpy as jnp

    from toolkit.deep.extract import read_crops_dir
    from toolkit.stats._checks import listed

    data = read_crops_dir(crops_dir)
    row = {(p, r): i for i, (p, r) in enumerate(zip(data.patients, data.readers, strict=True))}
    missing = [p for p in patients if (p, reader) not in row]
    if missing:
        raise ValueError(
            f"no {reader} crops for {len(missing)} patients to fine-tune on ({listed(missing)})"
        )
    index = np.asarray([row[(p, reader)] for p in patients])
    out = []
    for phase in ("arterial", "portal"):
        crops = data.crops[phase][index]
        if size != CROP_SIZE:
            crops = np.asarray(
                jax.image.resize(jnp.asarray(crops), (len(crops), size, size), "linear")
            )
        out.append(crops.astype(np.float32))
    return out[0], out[1]


@dataclass(frozen=True)
class Cohort:
    """The crops and outcome of the training patients (and all patients' crops)."""

    arterial: np.ndarray
    portal: np.ndarray
    time: np.ndarray
    event: np.ndarray
    patients: np.ndarray


def cross_validate(
    train: Cohort,
    settings: FinetuneConfig,
    n_folds: int,
    seed: int,
    backbone: Any = None,
    train_function: Any = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fine-tuning inside each outer fold; the folds' table (fold, patients, events,
    C-index, best step, steps run) and the membership (patient, fold, the patients each
    run trained on being those of the other folds). ``train_function``: `finetune` by
    default (a test passes a recording one)."""
    from toolkit.deep.finetune import finetune, linear_predictor
    from toolkit.stats.concordance import harrell

    train_function = train_function or finetune
    network = network_of(settings)
    fold = outer_folds(train.event, n_folds, seed)
    rows = []
    for k in range(n_folds):
        fit_on, test_on = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        result = train_function(
            train.arterial[fit_on],
            train.portal[fit_on],
            train.time[fit_on],
            train.event[fit_on],
            network=network,
            backbone=backbone,
            settings=trainer_settings(settings, seed + k),
            rows=train.patients[fit_on],
        )
        eta = linear_predictor(
            network,
            result.params,
            train.arterial[test_on],
            train.portal[test_on],
            chunk_size=settings.chunk_size,
            dtype=settings.dtype,
        )
        c = harrell(train.time[test_on], train.event[test_on], eta.astype(float))
        rows.append(
            {
                "fold": k + 1,
                "n_train": len(fit_on),
                "n_test": len(test_on),
                "events_test": int(train.event[test_on].sum()),
                "c_index": float(c.c),
                "best_step": int(result.best_step),
                "steps_run": int(result.steps_run),
            }
        )
    membership = pd.DataFrame({"patient": train.patients, "fold": fold + 1})
    return pd.DataFrame(rows), membership


def build(
    crops_dir: Path,
    clinical: pd.DataFrame,
    train_sets: list[str],
    reader: str,
    settings: FinetuneConfig,
    n_folds: int,
    seed: int,
    weights: Any = None,
) -> FinetunedSignature:
    """The module docstring's steps 1 and 2 on ``clinical`` (index: patient; columns
    ``set``, ``time``, ``event``). ``weights``: `LoadedWeights` to start the backbone from
    (used only at DenseNet-121's full width and when not random)."""
    from toolkit.deep.finetune import finetune, linear_predictor

    patients = clinical.index.astype(str).tolist()
    arterial, portal = primary_crops(crops_dir, patients, reader, settings.input_size)
    in_train = clinical["set"].isin(train_sets).to_numpy()
    cohort = Cohort(
        arterial[in_train],
        portal[in_train],
        clinical["time"].to_numpy(float)[in_train],
        clinical["event"].to_numpy(float)[in_train],
        np.asarray(patients)[in_train],
    )
    use_weights = weights is not None and not weights.is_random and settings.full_width
    backbone = weights.flax_params() if use_weights else None
    cv, folds = cross_validate(cohort, settings, n_folds, seed, backbone)
    network = network_of(settings)
    final = finetune(
        cohort.arterial,
        cohort.portal,
        cohort.time,
        cohort.event,
        network=network,
        backbone=backbone,
        settings=trainer_settings(settings, seed),
        rows=cohort.patients,
    )
    score = linear_predictor(
        network,
        final.params,
        arterial,
        portal,
        chunk_size=settings.chunk_size,
        dtype=settings.dtype,
    )
    return FinetunedSignature(
        score=score.astype(float),
        cv=cv,
        folds=folds,
        best_step=int(final.best_step),
        steps_run=int(final.steps_run),
        backbone=weights.origin if use_weights else f"random (seed {seed})",
    )
