"""Extraction: batching/padding invariance, device sharding, normalisation, crops folder, errors."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from deep_helpers import write_patient_crops

from toolkit.artifacts import read_parquet_provenance
from toolkit.deep.extract import CropError, extract, extract_crops_dir, feature_maps


def test_padding_of_the_last_batch_does_not_change_features(random_weights, crops):
    whole = extract(crops, params=random_weights, batch_size=len(crops))
    pieces = extract(crops, params=random_weights, batch_size=2)  # 2 + (1 + 1 padding)
    np.testing.assert_allclose(pieces, whole, atol=1e-5, rtol=0)
    single = extract(crops[1], params=random_weights, batch_size=2)
    np.testing.assert_allclose(single[0], whole[1], atol=1e-5, rtol=0)


def test_progress_bar_counts_the_batches_on_stderr_only_when_asked(random_weights, crops, capsys):
    extract(crops, params=random_weights, batch_size=2, progress=True)  # 2 + (1 + 1 padding)
    shown = capsys.readouterr()
    assert shown.out == "" and "DenseNet-121" in shown.err and "2/2 batches" in shown.err
    extract(crops, params=random_weights, batch_size=2)
    assert capsys.readouterr() == ("", "")


def test_pooled_features_are_the_mean_of_the_feature_map(random_weights, crops):
    maps = feature_maps(crops, params=random_weights, batch_size=len(crops))
    assert maps.shape == (len(crops), 7, 7, 1024) and np.all(maps >= 0)  # after ReLU
    pooled = extract(crops, params=random_weights, batch_size=len(crops))
    np.testing.assert_allclose(maps.mean(axis=(1, 2)), pooled, atol=1e-5, rtol=0)


def test_batch_sharded_over_two_host_devices_equals_one_device(tmp_path, random_weights, crops):
    np.save(tmp_path / "crops.npy", crops)
    script = textwrap.dedent(
        f"""
        import json, numpy as np
        from toolkit._jax import jax
        from toolkit.deep.extract import extract
        from toolkit.deep.weights import random_weights
        crops = np.load({str(tmp_path / "crops.npy")!r})
        features = extract(crops, params=random_weights(0), batch_size=2)
        np.save({str(tmp_path / "sharded.npy")!r}, features)
        print(json.dumps([str(d) for d in jax.local_devices()]))
        """
    )
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    env.pop("JAX_PLATFORMS", None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(json.loads(done.stdout.strip().splitlines()[-1])) == 2
    sharded = np.load(tmp_path / "sharded.npy")
    single = extract(crops, params=random_weights, batch_size=len(crops))
    np.testing.assert_allclose(sharded, single, atol=1e-5, rtol=0)


def test_imagenet_normalisation_equals_keras_preprocessing(keras_reference, keras_weights, crops):
    """Crops in [0, 255] with window (0, 255) == Keras's densenet.preprocess_input ("torch")."""
    import warnings

    from keras.applications.densenet import preprocess_input

    pixels = (crops - crops.min()) / (crops.max() - crops.min()) * 255.0
    rgb = np.repeat(pixels[..., None], 3, axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Keras 3.15 and NumPy 2
        expected = np.asarray(
            keras_reference.model.predict(preprocess_input(rgb), batch_size=len(crops), verbose=0)
        )
    ours = extract(
        pixels,
        params=keras_weights,
        normalization="imagenet",
        window=(0.0, 255.0),
        batch_size=len(crops),
    )
    np.testing.assert_allclose(ours, expected, atol=1e-4, rtol=0)


def test_crop_of_wrong_shape_is_refused(random_weights):
    with pytest.raises(CropError, match=r"shape \(2, 200, 224\).*P007"):
        extract(np.zeros((2, 200, 224), np.float32), params=random_weights, patients=["P007", "P8"])


def test_crop_with_nan_names_the_patient(random_weights, crops):
    bad = crops.copy()
    bad[2, 10, 10] = np.nan
    with pytest.raises(CropError, match=r"1 crop\(s\) contain NaN.*: P003$"):
        extract(bad, params=random_weights, patients=["P001", "P002", "P003"])


def test_unknown_dtype_and_normalisation_are_refused(random_weights, crops):
    with pytest.raises(ValueError, match="dtype must be one of"):
        extract(crops, params=random_weights, dtype="float16")
    with pytest.raises(ValueError, match="normalization must be one of"):
        extract(crops, params=random_weights, normalization="minmax")


def test_crops_folder_gives_the_contract_table_and_excludes_bad_patients(tmp_path, random_weights):
    folder = tmp_path / "crops"
    write_patient_crops(folder, "P001", seed=1)
    write_patient_crops(folder, "P002", readers=("reader1_a",), seed=2)
    bad = write_patient_crops(folder, "P003", seed=3)
    with np.load(bad) as data:
        arrays = dict(data)
    arrays["portal"][1, 5, 5] = np.nan
    np.savez(bad, **arrays)
    out = tmp_path / "features.parquet"
    table = extract_crops_dir(folder, out, params=random_weights, batch_size=4)
    read = pd.read_parquet(out)
    assert list(read.columns[:4]) == ["patient", "reader", "arterial_0000", "arterial_0001"]
    assert read.shape == (3, 2 + 2048) and read.columns[-1] == "portal_1023"
    assert read[["patient", "reader"]].values.tolist() == [
        ["P001", "reader1_a"],
        ["P001", "reader2"],
        ["P002", "reader1_a"],
    ]
    assert (read.dtypes.iloc[2:] == np.float32).all()
    pd.testing.assert_frame_equal(read, table)
    with np.load(folder / "P001.npz") as data:
        expected = extract(data["portal"], params=random_weights, batch_size=2)
    portal = read.filter(like="portal_").to_numpy()[:2]
    np.testing.assert_allclose(portal, expected, atol=1e-5, rtol=0)
    provenance = read_parquet_provenance(out)
    assert provenance["weights"] == "random"
    assert provenance["weights_sha256"] == random_weights.sha256
    assert provenance["synthetic"] is True
    assert set(provenance["inputs"]) == {"P001", "P002"}
    [excluded] = provenance["excluded"]
    assert excluded["patient"] == "P003" and "P003 (portal, reader2)" in excluded["reason"]


def test_compiled_batch_is_capped_per_device_on_a_cpu_and_never_above_the_crops():
    from toolkit.deep.extract import CPU_CROPS_PER_DEVICE, _Placement

    placement = _Placement()
    k = len(placement.devices)
    assert placement.devices[0].platform == "cpu"
    assert placement.batch_size(32, 1000) == CPU_CROPS_PER_DEVICE * k
    assert placement.batch_size(3, 1000) == -(-3 // k) * k
    assert placement.batch_size(32, 1) == k  # one crop: padded to one per device


# --------------------------------------------------------------------------- multi-slice pooling


def test_pool_slices_is_the_exact_mean_and_maximum_per_row():
    from toolkit.deep.extract import pool_slices

    features = np.array(
        [[1.0, -2.0], [3.0, 5.0], [0.5, 0.25], [-1.0, 4.0], [2.0, -8.0], [7.0, 1.0]], np.float32
    )
    row_of = np.array([1, 0, 1, 2, 1, 0])  # rows 0: crops 1, 5; 1: crops 0, 2, 4; 2: crop 3
    mean = pool_slices(features, row_of, 3, "mean")
    maximum = pool_slices(features, row_of, 3, "max")
    expected_mean = [[5.0, 3.0], [3.5 / 3, -9.75 / 3], [-1.0, 4.0]]
    np.testing.assert_array_equal(mean, np.asarray(expected_mean, np.float64).astype(np.float32))
    np.testing.assert_array_equal(maximum, [[7.0, 5.0], [2.0, 0.25], [-1.0, 4.0]])
    assert mean.dtype == maximum.dtype == np.float32
    with pytest.raises(ValueError, match="pooling must be one of mean, max; got 'median'"):
        pool_slices(features, row_of, 3, "median")
    with pytest.raises(ValueError, match="every one of the 4 rows needs a crop"):
        pool_slices(features, row_of, 4, "mean")


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_pooled_crops_folder_pools_each_slice_features(tmp_path, random_weights, pooling):
    from deep_helpers import write_multislice_crops

    folder = tmp_path / "crops"
    write_multislice_crops(folder, "P001", slices=(3, 2), seed=1)
    write_multislice_crops(folder, "P002", slices=(1, 2), seed=2)
    write_patient_crops(folder, "P003", seed=3)  # preprocessed with slices = 1
    out = tmp_path / "features.parquet"
    table = extract_crops_dir(folder, out, params=random_weights, batch_size=4, pooling=pooling)
    assert table[["patient", "reader"]].values.tolist() == [
        ["P001", "reader1_a"],
        ["P001", "reader2"],
        ["P002", "reader1_a"],
        ["P002", "reader2"],
    ]
    reduce = np.mean if pooling == "mean" else np.max
    for patient, counts in (("P001", (3, 2)), ("P002", (1, 2))):
        with np.load(folder / f"{patient}.npz") as data:
            for phase in ("arterial", "portal"):
                each = extract(data[f"slices_{phase}"], params=random_weights, batch_size=4)
                starts = np.r_[0, np.cumsum(counts)]
                expected = [reduce(each[a:b], axis=0) for a, b in itertools.pairwise(starts)]
                got = table[table["patient"] == patient].filter(like=f"{phase}_").to_numpy()
                np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    single = extract_crops_dir(folder, tmp_path / "one.parquet", params=random_weights)
    assert not np.allclose(single.iloc[:2, 2:].to_numpy(), table.iloc[:2, 2:].to_numpy())
    with np.load(folder / "P001.npz") as data:  # one-slice reading ignores the slices_* keys
        largest = extract(data["portal"], params=random_weights, batch_size=2)
    np.testing.assert_allclose(single.filter(like="portal_").to_numpy()[:2], largest, atol=1e-5)
    provenance = read_parquet_provenance(out)
    assert provenance["settings"]["pooling"] == pooling
    assert [row["slices"] for row in provenance["slices_pooled"]] == [3, 2, 1, 2]
    [excluded] = provenance["excluded"]
    assert excluded["patient"] == "P003"
    assert "missing slices_arterial, slices_portal, slices_reader" in excluded["reason"]
    assert "pooling" not in read_parquet_provenance(tmp_path / "one.parquet")["settings"]


def test_unknown_pooling_of_a_crops_folder_is_refused(tmp_path, random_weights):
    write_patient_crops(tmp_path / "crops", "P001", seed=1)
    with pytest.raises(ValueError, match="pooling must be None or one of mean, max; got 'sum'"):
        extract_crops_dir(tmp_path / "crops", tmp_path / "f.parquet", params=random_weights,
                          pooling="sum")  # fmt: skip
