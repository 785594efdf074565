"""Weight import: every file layout gives Keras's (or torch's) features; cache; fetch; errors."""

from __future__ import annotations

import functools
import hashlib
import http.server
import re
import shutil
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest

from toolkit.deep import weights as W
from toolkit.deep.extract import extract

TOLERANCE = 1e-4


def test_keras_constants_match_installed_keras_source():
    import keras.src.applications.densenet as keras_densenet

    source = Path(keras_densenet.__file__).read_text()
    assert keras_densenet.DENSENET121_WEIGHT_PATH_NO_TOP == W.KERAS_NOTOP_URL
    call = re.search(
        r"DENSENET121_WEIGHT_PATH_NO_TOP,\s*cache_subdir=[^,]+,\s*file_hash=\"(\w+)\"", source
    )
    assert call is not None, "Keras's get_file call for the no-top file changed"
    assert call.group(1) == W.KERAS_NOTOP_MD5
    assert len(W.KERAS_NOTOP_MD5) == 32  # get_file's "auto": 64 hex digits = sha256, else md5


def test_keras3_legacy_h5_features_equal_keras(keras_reference, keras_weights, crops):
    assert keras_weights.origin == "imagenet-keras"
    assert keras_weights.bn_epsilon == pytest.approx(1.001e-5)
    assert not keras_weights.verified
    ours = extract(crops, params=keras_weights, batch_size=len(crops))
    assert ours.shape == (len(crops), 1024) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, keras_reference.features, atol=TOLERANCE, rtol=0)


def test_keras2_layout_file_reads_the_same_weights(keras_reference, keras_weights, crops):
    with h5py.File(keras_reference.keras2_h5) as handle:  # the published file's naming
        assert "conv1/conv" in [n.decode() for n in handle.attrs["layer_names"]]
        assert "conv1/conv/conv1/conv/kernel:0" in handle
    with pytest.warns(UserWarning, match="does not match the hash Keras publishes"):
        keras2 = W.import_file(keras_reference.keras2_h5)
    for name, variables in keras_weights.params.items():
        for var, array in variables.items():
            np.testing.assert_array_equal(keras2.params[name][var], array, err_msg=name)
    ours = extract(crops, params=keras2, batch_size=len(crops))
    np.testing.assert_allclose(ours, keras_reference.features, atol=TOLERANCE, rtol=0)


def test_keras3_weights_h5_features_equal_keras(keras_reference, crops):
    loaded = W.import_file(keras_reference.weights_h5)
    assert loaded.origin == "imagenet-keras"
    ours = extract(crops, params=loaded, batch_size=len(crops))
    np.testing.assert_allclose(ours, keras_reference.features, atol=TOLERANCE, rtol=0)


def test_bfloat16_features_have_cosine_at_least_0999_to_float32(keras_weights, crops):
    full = extract(crops, params=keras_weights, batch_size=len(crops))
    half = extract(crops, params=keras_weights, batch_size=len(crops), dtype="bfloat16")
    assert half.dtype == np.float32
    cosine = (
        np.sum(full * half, axis=1) / np.linalg.norm(full, axis=1) / np.linalg.norm(half, axis=1)
    )
    assert np.all(cosine >= 0.999), cosine
    assert not np.array_equal(full, half)  # bfloat16 really ran


@pytest.fixture(scope="module")
def torch_model():
    from torch_reference import randomised

    return randomised(seed=3)


@pytest.fixture(scope="module")
def torch_features(torch_model, crops):
    import torch

    rgb = np.repeat(crops[:, None], 3, axis=1)
    with torch.no_grad():
        tensor = torch.from_numpy(rgb).contiguous(memory_format=torch.channels_last)
        return torch_model.pooled(tensor).numpy()


@pytest.mark.parametrize("legacy", [False, True], ids=["current-keys", "legacy-norm.1-keys"])
def test_torchvision_state_dict_features_equal_torch(
    tmp_path, torch_model, torch_features, crops, legacy
):
    import torch
    from torch_reference import legacy_keys

    state = torch_model.state_dict()
    assert any(k.endswith("num_batches_tracked") for k in state)
    assert "features.denseblock1.denselayer1.norm1.weight" in state
    if legacy:
        state = legacy_keys(state)
        assert "features.denseblock1.denselayer1.norm.1.weight" in state
    path = tmp_path / "densenet121.pth"
    torch.save(state, path)
    loaded = W.import_file(path)
    assert loaded.origin == "imagenet-torchvision"
    assert loaded.bn_epsilon == pytest.approx(1e-5)
    ours = extract(crops, params=loaded, batch_size=len(crops))
    np.testing.assert_allclose(ours, torch_features, atol=TOLERANCE, rtol=0)


def test_torchvision_hash_prefix_in_name_is_checked(tmp_path, torch_model):
    import torch

    path = tmp_path / "densenet121-0123abcd.pth"
    torch.save(torch_model.state_dict(), path)
    with pytest.warns(UserWarning, match="hash prefix"):
        assert not W.import_file(path).verified
    good = tmp_path / f"densenet121-{W.file_hash(path)[:8]}.pth"
    shutil.copy(path, good)
    assert W.import_file(good).verified


UNPICKLED = []


class TrainingRun:
    """What a training script pickles beside its weights; unpickling it records itself."""

    def __init__(self) -> None:
        self.epochs = 90

    def __setstate__(self, state: dict) -> None:
        UNPICKLED.append(state)
        self.__dict__.update(state)


def test_torch_file_with_pickled_objects_is_refused_in_sigkit_words(tmp_path):
    import pickle

    import torch

    path = tmp_path / "checkpoint.pth"
    torch.save(
        {"state_dict": {"features.conv0.weight": torch.zeros(2)}, "run": TrainingRun()}, path
    )
    with pytest.raises(W.WeightsError) as error:
        W.import_file(path)
    message = str(error.value)
    assert message.startswith(
        "checkpoint.pth: not a plain state_dict of tensors; it holds pickled Python objects "
        "(such as "
    )
    assert "TrainingRun), and it was not loaded, because unpickling them could run" in message
    assert "torch.save(model.state_dict(), 'densenet121.pth')" in message
    assert W.KERAS_NOTOP_FILENAME in message
    assert "Weights only load failed" not in message and "add_safe_globals" not in message
    assert isinstance(error.value.__cause__, pickle.UnpicklingError)
    assert UNPICKLED == []  # refused before any object was rebuilt


def test_a_file_torch_cannot_read_is_refused_in_sigkit_words(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"not a torch file")
    with pytest.raises(W.WeightsError, match=r"^weights\.pth: not a torch state_dict file \("):
        W.import_file(path)


def test_install_load_and_info_round_trip(tmp_path, monkeypatch, keras_weights):
    monkeypatch.setenv("SIGKIT_WEIGHTS", str(tmp_path / "cache"))
    assert W.info() == {"installed": False, "path": str(tmp_path / "cache" / W.CACHE_FILENAME)}
    path = W.install(keras_weights)
    assert path == tmp_path / "cache" / W.CACHE_FILENAME
    loaded = W.load()
    assert (loaded.origin, loaded.sha256, loaded.bn_epsilon, loaded.verified) == (
        keras_weights.origin,
        keras_weights.sha256,
        keras_weights.bn_epsilon,
        False,
    )
    for name, variables in keras_weights.params.items():
        for var, array in variables.items():
            np.testing.assert_array_equal(loaded.params[name][var], array)
    described = W.info()
    assert described["installed"] and described["weights"] == "imagenet-keras"
    assert described["weights_sha256"] == keras_weights.sha256


def test_cache_dir_is_the_user_cache_dir_unless_sigkit_weights_is_set(tmp_path, monkeypatch):
    monkeypatch.delenv("SIGKIT_WEIGHTS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert W.cache_dir() == tmp_path / "xdg" / "sigkit" / "weights"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert W.cache_dir() == tmp_path / "home" / ".cache" / "sigkit" / "weights"
    monkeypatch.setenv("SIGKIT_WEIGHTS", str(tmp_path / "elsewhere"))
    assert W.cache_dir() == tmp_path / "elsewhere"


def test_no_weights_installed_refuses_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("SIGKIT_WEIGHTS", str(tmp_path / "empty"))
    with pytest.raises(W.WeightsNotInstalledError, match="sigkit weights import FILE") as error:
        W.load()
    assert "sigkit weights fetch" in str(error.value) and "--weights random" in str(error.value)
    with pytest.raises(W.WeightsNotInstalledError):
        extract(np.zeros((1, 224, 224), np.float32))


def test_random_weights_are_deterministic_and_labelled():
    a, b, c = W.random_weights(0), W.random_weights(0), W.random_weights(1)
    assert a.origin == "random" and a.sha256 == b.sha256 != c.sha256
    np.testing.assert_array_equal(
        a.params["conv1_conv"]["kernel"], b.params["conv1_conv"]["kernel"]
    )
    assert W.load("random", seed=1).sha256 == c.sha256
    with pytest.raises(W.WeightsError, match="random weights are not installed"):
        W.install(a)


def _rewrite_dataset(path: Path, dataset: str, shape: tuple[int, ...]) -> None:
    with h5py.File(path, "r+") as handle:
        del handle[dataset]
        handle.create_dataset(dataset, data=np.zeros(shape, np.float32))


def test_wrong_shape_names_the_layer(tmp_path, keras_reference):
    bad = tmp_path / "bad.h5"
    shutil.copy(keras_reference.legacy_h5, bad)
    _rewrite_dataset(bad, "conv3_block2_1_conv/conv3_block2_1_conv/kernel", (1, 1, 160, 64))
    with (
        pytest.warns(UserWarning),
        pytest.raises(
            W.WeightsError, match=r"conv3_block2_1_conv.*\(1, 1, 160, 64\).*\(1, 1, 160, 128\)"
        ),
    ):
        W.import_file(bad)


def test_other_architectures_are_refused_naming_a_layer(keras_weights):
    deeper = {name: dict(v) for name, v in keras_weights.params.items()}
    deeper["conv4_block25_0_bn"] = deeper["conv4_block24_0_bn"]
    with pytest.raises(W.WeightsError, match=r"conv4_block25_0_bn.*deeper DenseNet"):
        W.check_params(deeper, "densenet169.h5")
    shallower = {
        name: v for name, v in keras_weights.params.items() if name != "conv5_block16_2_conv"
    }
    with pytest.raises(W.WeightsError, match=r"conv5_block16_2_conv.*missing"):
        W.check_params(shallower, "x.h5")


def test_not_weights_files_are_refused(tmp_path):
    text = tmp_path / "weights.h5"
    text.write_text("not hdf5")
    with pytest.raises(W.WeightsError, match="not an HDF5 file"):
        W.import_file(text)
    onnx = tmp_path / "w.onnx"
    onnx.write_bytes(b"\0")
    with pytest.raises(W.WeightsError, match="unknown weights format"):
        W.import_file(onnx)
    with pytest.raises(W.WeightsError, match="does not exist"):
        W.import_file(tmp_path / "missing.h5")


@pytest.fixture
def http_server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/served."""
    served = tmp_path / "served"
    served.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Handler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_fetch_downloads_checks_md5_and_installs(tmp_path, http_server, keras_reference):
    served, base = http_server
    shutil.copy(keras_reference.legacy_h5, served / W.KERAS_NOTOP_FILENAME)
    md5 = hashlib.md5((served / W.KERAS_NOTOP_FILENAME).read_bytes()).hexdigest()
    url = f"{base}/{W.KERAS_NOTOP_FILENAME}"
    cache = tmp_path / "cache"
    with pytest.raises(W.WeightsError, match="expected 30ee3e1110167f948a6b9946edeeb738"):
        W.fetch(url=url, directory=cache)  # Keras's published hash: a stand-in fails
    assert not (cache / W.CACHE_FILENAME).exists()
    loaded, path = W.fetch(url=url, md5=md5, directory=cache)
    assert path == cache / W.CACHE_FILENAME and path.is_file()
    assert loaded.sha256 == W.file_hash(keras_reference.legacy_h5)
    assert W.load(directory=cache).sha256 == loaded.sha256
