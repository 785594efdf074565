"""Helpers shared by the DenseNet-121 tests and benchmarks: CT-like crops, crops folders,
Keras references in the legacy and Keras-2 HDF5 layouts.

(A uniquely named module rather than conftest.py: several test folders have a conftest.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def ct_like_crops(n: int, seed: int = 0) -> np.ndarray:
    """(n, 224, 224) z-scored crops of a synthetic liver slice: body, liver, a tumour with a
    hypodense core and an enhancing rim, vessels and noise (HU before z-scoring)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:224, 0:224].astype(np.float64)
    crops = []
    for _ in range(n):
        image = np.full((224, 224), -1000.0)
        body = ((yy - 112) / 105) ** 2 + ((xx - 112) / 110) ** 2 < 1
        image[body] = 40.0
        cy, cx = rng.uniform(90, 130, size=2)
        liver = ((yy - cy) / 70) ** 2 + ((xx - cx) / 80) ** 2 < 1
        image[liver] = rng.uniform(90, 120)
        ty, tx = cy + rng.uniform(-20, 20), cx + rng.uniform(-20, 20)
        r = np.hypot(yy - ty, xx - tx)
        radius = rng.uniform(18, 35)
        image[r < radius] = 140.0
        image[r < 0.7 * radius] = rng.uniform(10, 30)
        for _ in range(3):
            vy, vx = rng.uniform(40, 184, size=2)
            image[np.hypot(yy - vy, xx - vx) < rng.uniform(3, 6)] = 180.0
        image += rng.normal(0, 12, size=image.shape)
        crops.append((image - image.mean()) / image.std())
    return np.stack(crops).astype(np.float32)


def tumour_mask(crop: np.ndarray) -> np.ndarray:
    return (crop < np.percentile(crop, 5)).astype(np.uint8)


def randomise_keras(model, seed: int = 0) -> None:
    """Random weights with non-trivial batch-norm statistics, so every variable matters."""
    rng = np.random.default_rng(seed)
    values = []
    for variable in model.weights:
        shape = tuple(variable.shape)
        name = variable.path.rsplit("/", 1)[-1]
        if name == "kernel":
            value = rng.normal(0, np.sqrt(2.0 / np.prod(shape[:3])), size=shape)
        elif name in ("gamma", "moving_variance"):
            value = rng.uniform(0.7, 1.3, size=shape)
        else:  # beta, moving_mean
            value = rng.normal(0, 0.1, size=shape)
        values.append(value.astype(np.float32))
    model.set_weights(values)


def write_keras2_layout(model, path: Path) -> None:
    """The weights in the layout of Keras's published file (Keras 2.x, `save_weights` to .h5):
    stem layers `conv1/conv`, `conv1/bn`, datasets `<layer>/<var>:0`."""
    import h5py

    rename = {"conv1_conv": "conv1/conv", "conv1_bn": "conv1/bn"}
    layer_names = []
    with h5py.File(path, "w") as handle:
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["keras_version"] = b"2.1.3"
        for layer in model.layers:
            name = rename.get(layer.name, layer.name)
            layer_names.append(name.encode())
            group = handle.create_group(name)
            names = []
            for variable in layer.weights:
                weight = f"{name}/{variable.path.rsplit('/', 1)[-1]}:0"
                group.create_dataset(weight, data=np.asarray(variable.value))
                names.append(weight.encode())
            group.attrs["weight_names"] = np.array(names, dtype="S")
        handle.attrs["layer_names"] = np.array(layer_names, dtype="S")


def write_patient_crops(folder: Path, patient: str, readers=("reader1_a", "reader2"), seed=0):
    """crops/<patient>.npz in the layout of docs/contracts.md."""
    n = len(readers)
    arterial = ct_like_crops(n, seed=seed)
    portal = ct_like_crops(n, seed=seed + 1000)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{patient}.npz"
    np.savez(
        path,
        readers=np.array(readers),
        arterial=arterial,
        portal=portal,
        mask=np.stack([tumour_mask(c) for c in portal]),
        slice_index=np.arange(n),
        centre_index=np.full((n, 2), 112),
        spacing=np.array([0.8, 0.8, 5.0]),
        registration=np.zeros(6),
        metadata=json.dumps({"patient": patient, "synthetic": True}),
    )
    return path


def write_multislice_crops(
    folder: Path, patient: str, slices=(3, 2), readers=("reader1_a", "reader2"), seed=0
):
    """crops/<patient>.npz of a study with [imaging] slices > 1: reader r has slices[r] slice
    crops (``slices_*``); its largest-ROI crop (the one-slice keys) is its first slice's."""
    reader_of = np.repeat(np.arange(len(readers)), slices)
    n = len(reader_of)
    arterial = ct_like_crops(n, seed=seed)
    portal = ct_like_crops(n, seed=seed + 1000)
    mask = np.stack([tumour_mask(c) for c in portal])
    first = np.r_[0, np.cumsum(slices)[:-1]]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{patient}.npz"
    np.savez(
        path,
        readers=np.array(readers),
        arterial=arterial[first],
        portal=portal[first],
        mask=mask[first],
        slice_index=np.full(len(readers), 4),
        centre_index=np.full((len(readers), 2), 112),
        spacing=np.array([0.8, 0.8, 5.0]),
        registration=np.zeros(6),
        metadata=json.dumps({"patient": patient, "synthetic": True}),
        slices_arterial=arterial,
        slices_portal=portal,
        slices_mask=mask,
        slices_index=np.concatenate([4 + np.arange(k) for k in slices]),
        slices_centre=np.full((n, 2), 112),
        slices_reader=reader_of,
    )
    return path


BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def smoke_run(script: str, cwd: Path, out: Path, *flags: str):
    """``benchmarks/<script> --smoke [flags]`` in a fresh process with ``$OUT`` = ``out``
    (XLA_FLAGS unset, so the script sets up its own devices); asserts it exits 0."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, OUT=str(out))
    env.pop("XLA_FLAGS", None)
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--smoke", *flags],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def cohort_crops(cohort: Path, out: Path, size: int):
    """(arterial, portal, time, event, patients): the primary reader's ``size`` x ``size``
    crops of a synthetic cohort (preprocessed into ``out``, unregistered, no QC) and its
    overall survival, patients sorted."""
    import pandas as pd

    from toolkit.imaging.preprocess import PreprocessSettings, preprocess_cohort

    settings = PreprocessSettings(crop_size=size, register=False, qc=False)
    summary = preprocess_cohort(
        cohort / "manifest.csv", out, workers=0, progress=False, settings=settings
    )
    assert summary.n_ok == 8
    clinical = pd.read_csv(cohort / "clinical.csv").set_index("patient")
    patients = sorted(p.stem for p in out.glob("*.npz"))
    crops = {"arterial": [], "portal": []}
    for patient in patients:
        with np.load(out / f"{patient}.npz") as data:
            for phase, stack in crops.items():
                stack.append(data[phase][0])
    time = clinical.loc[patients, "os_months"].to_numpy()
    event = clinical.loc[patients, "os_event"].to_numpy().astype(float)
    return np.stack(crops["arterial"]), np.stack(crops["portal"]), time, event, patients
