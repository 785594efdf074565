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

3. **The final network's weights** go to ``results/finetuned.safetensors``
   (`save_weights`: ``deep.weights.write_finetuned``; its SHA-256 in finetune.json), which
   the ``cam`` stage (`cam_figures`: the class-activation map of the Cox head over the
   fine-tuned backbone's last feature map, ``deep.cam.finetuned_risk_contributions``) and
   the locked model bundle (`bundle_entry`: copied into ``model/``, named with its hash in
   model.json's ``weights.finetuned``; `score_with_bundle` is how ``sigkit apply`` scores
   a new cohort's crops with it) read back.

**Internal validation.** The whole-procedure bootstrap is not run for a fine-tuned
signature (``pipeline.NOT_FINETUNED``): each of its B resamples would fine-tune the
network again, B times the final fit's time (``final_seconds`` in finetune.json), hours
on a CPU at the study's size. Holding the fine-tuned score fixed inside the resamples
would not do instead: the score was fitted on these same patients, so its apparent
training performance is optimistic and a bootstrap of the nomograms alone would not see
that. What is estimated is the signature's own optimism, by the outer-fold
cross-validation of step 1: the final network's apparent (training-set) C-index minus the
folds' mean C-index (``apparent_c_index``, ``cv_optimism`` in finetune.json; the report's
internal-validation section says so). The nomograms' optimism is not estimated; the
validation set is their honest check.
"""

from __future__ import annotations

import time as clock
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
    and the final model: its parameters, training record, apparent (training-set)
    Harrell's C-index and the seconds its fine-tuning took."""

    score: np.ndarray
    cv: pd.DataFrame
    folds: pd.DataFrame
    best_step: int
    steps_run: int
    backbone: str
    params: Any = None
    apparent_c_index: float = float("nan")
    final_seconds: float = float("nan")

    @property
    def cv_optimism(self) -> float:
        """The apparent C-index minus the outer folds' mean: the signature's optimism."""
        return self.apparent_c_index - float(self.cv["c_index"].mean())


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
    return tuple(resized(data.crops[phase][index], size) for phase in ("arterial", "portal"))


def resized(crops: np.ndarray, size: int) -> np.ndarray:
    """(N, 224, 224) crops resized to (N, size, size) float32 (bilinear, antialiased), as
    the network is trained on them; unchanged at 224."""
    import jax
    import jax.numpy as jnp

    crops = np.asarray(crops)
    if size != CROP_SIZE:
        crops = np.asarray(jax.image.resize(jnp.asarray(crops), (len(crops), size, size), "linear"))
    return crops.astype(np.float32)


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
    from toolkit.stats.concordance import harrell

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
    start = clock.perf_counter()
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
    seconds = clock.perf_counter() - start
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
        params=final.params,
        apparent_c_index=float(harrell(cohort.time, cohort.event, score[in_train].astype(float)).c),
        final_seconds=seconds,
    )


WEIGHTS_FILE = "finetuned.safetensors"


def save_weights(path: Path, built: FinetunedSignature, settings: FinetuneConfig) -> str:
    """Write the final network of ``built`` to ``path`` (``deep.weights.write_finetuned``);
    returns the file's SHA-256."""
    import jax

    from toolkit.deep.weights import FinetunedWeights, write_finetuned

    weights = FinetunedWeights(
        params=jax.device_get(built.params),
        blocks=tuple(settings.blocks),
        growth_rate=settings.growth_rate,
        stem_features=settings.stem_features,
        input_size=settings.input_size,
        backbone=built.backbone,
        dtype=settings.dtype,
    )
    return write_finetuned(path, weights)


def read_weights(path: Path, sha256: str):
    """The fine-tuned network of ``path`` (``deep.weights.FinetunedWeights``), refused
    (``WeightsError``) when its SHA-256 is not the one recorded for it."""
    from toolkit.deep.weights import WeightsError, read_finetuned

    weights = read_finetuned(path)
    if weights.sha256 != sha256:
        raise WeightsError(
            f"{path}: SHA-256 {weights.sha256[:16]}... is not the recorded {sha256[:16]}...; "
            "the fine-tuned network was changed after it was written"
        )
    return weights


def eta_of(weights, arterial: np.ndarray, portal: np.ndarray) -> np.ndarray:
    """eta of (N, 224, 224) crops under a fine-tuned network (resized to its input size,
    the backbone in its training dtype, as the study scored them), as float64."""
    from toolkit.deep.finetune import linear_predictor

    size = weights.input_size
    eta = linear_predictor(
        weights.network(),
        weights.params,
        resized(arterial, size),
        resized(portal, size),
        dtype=weights.dtype,
    )
    return eta.astype(float)


def bundle_entry(results: Path, model_dir: Path) -> dict[str, Any]:
    """For the bundle of a fine-tuned study: the network copied from ``results`` into
    ``model_dir``, and model.json's ``weights.finetuned`` entry (its path in the bundle,
    SHA-256, input size, backbone) after checking the copy against finetune.json."""
    import shutil

    from toolkit.artifacts import read_json

    recorded = read_json(results / "finetune.json")["weights"]
    model_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(results / recorded["path"], model_dir / WEIGHTS_FILE)
    weights = read_weights(model_dir / WEIGHTS_FILE, recorded["sha256"])
    return {
        "path": WEIGHTS_FILE,
        "sha256": weights.sha256,
        "input_size": weights.input_size,
        "backbone": weights.backbone,
    }


def score_with_bundle(bundle, model_dir: Path, crops_dir: Path, patients: list[str]) -> np.ndarray:
    """The signature of ``patients`` under a fine-tuned bundle's network (model.json's
    ``weights.finetuned``, its hash checked): eta of their primary reader's crops in
    ``crops_dir``."""
    entry = bundle.weights["finetuned"]
    weights = read_weights(Path(model_dir) / entry["path"], entry["sha256"])
    reader = bundle.config.imaging.primary_reader
    arterial, portal = primary_crops(Path(crops_dir), list(patients), reader, CROP_SIZE)
    return eta_of(weights, arterial, portal)


def _primary_crop(path: Path, reader: str) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        row = [str(r) for r in data["readers"]].index(reader)
        return {key: np.asarray(data[key][row]) for key in ("arterial", "portal", "mask")}


def cam_figures(ctx, weights, n_patients: int) -> list[str]:
    """CAM overlays of the fine-tuned network for the highest- and lowest-signature
    validation patients (as for the frozen signature), each in the phase whose map moves
    that patient's eta most (the larger |mean heat|); ``weights``: the study's
    ``FinetunedWeights``."""
    from toolkit.artifacts import save_figure
    from toolkit.deep.cam import finetuned_risk_contributions, overlay_figure, upsample
    from toolkit.plots._stamp import apply, close

    scores = pd.read_parquet(ctx.paths.tables / "scores.parquet")
    valid = scores[scores["set"].isin(ctx.config.study.validation_sets)]
    order = valid["signature"].sort_values(ascending=False).index.tolist()
    chosen = list(dict.fromkeys([*order[: (n_patients + 1) // 2], *order[::-1][: n_patients // 2]]))
    reader, size = ctx.config.imaging.primary_reader, weights.input_size
    label = f"fine-tuned end to end (backbone from {weights.backbone})"
    full = (weights.blocks, weights.growth_rate, weights.stem_features) == ((6, 12, 24, 16), 32, 64)
    network = "DenseNet-121" if full else "Reduced-width DenseNet"
    grid = size // 32
    written = []
    for patient in chosen:
        crop = _primary_crop(ctx.paths.crops / f"{patient}.npz", reader)
        heat = finetuned_risk_contributions(
            weights.network(),
            weights.params,
            resized(crop["arterial"][None], size),
            resized(crop["portal"][None], size),
        )
        phase = max(heat, key=lambda p: abs(heat[p][0].mean()))
        score = valid.loc[patient, "signature"]
        title = (
            f"Patient {patient}, {phase} phase (signature {score:.2f}; "
            f"{grid} x {grid} map at {size} x {size} input)"
        )
        cam = upsample(heat[phase][0], CROP_SIZE)
        fig = overlay_figure(
            crop[phase], cam, crop["mask"], weights=label, title=title, network=network
        )
        apply(fig, ctx.stamp())
        save_figure(fig, ctx.paths.figures / f"cam_{patient}")
        close(fig)
        written.append(f"cam_{patient}")
    return written
