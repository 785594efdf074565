"""DenseNet-121 ImageNet weights: import from Keras or torchvision files, cache, load.

Sources understood by `import_file`:

- Keras HDF5 weights in the legacy layout, as Keras publishes them
  (`densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5`, Keras-2 names:
  stem layers `conv1/conv` and `conv1/bn`, datasets suffixed `:0`) or as Keras
  3's legacy writer produces (`conv1_conv`, nested `conv1_conv/conv1_conv/kernel`,
  an empty `top_level_model_weights`). The layer list comes from the root
  attribute `layer_names` and each layer's datasets from its `weight_names`
  attribute, never from hard-coded paths. The file's MD5 is compared with the
  hash Keras publishes for it (`keras/src/applications/densenet.py`,
  `DENSENET121_WEIGHT_PATH_NO_TOP`, `file_hash`, 32 hex digits = MD5 in
  `keras.utils.get_file`); a mismatch warns.
- Keras 3 `.weights.h5` (groups `layers/<name>/vars/<i>`; Keras 3 names the
  groups after the layer class, `conv2d_7`, `batch_normalization_12`, in model
  order, so layers are matched by order and checked by shape).
- A torchvision `densenet121` state_dict (`.pth`, read with
  `torch.load(weights_only=True)`; legacy `norm.1`-style keys are remapped,
  `num_batches_tracked` and the classifier dropped; a file that also holds other
  pickled Python objects is refused, never unpickled). Needs the optional `torch` extra.

Converted weights are stored as safetensors (Keras layer names, HWIO kernels,
float32) in the cache directory: `$SIGKIT_WEIGHTS` if set, else `weights/` in the
user cache directory that platformdirs gives (Linux: `$XDG_CACHE_HOME/sigkit/weights`,
else `~/.cache/sigkit/weights`; macOS: `~/Library/Caches/sigkit/weights`). The file's
metadata records the origin, the source file's SHA-256 and the batch-norm epsilon
(Keras 1.001e-5, torchvision 1e-5).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import tempfile
import urllib.request
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs

from toolkit.artifacts import atomic_path, file_hash
from toolkit.deep._densenet import (
    BN_VARIABLES,
    KERAS_BN_EPSILON,
    TORCHVISION_BN_EPSILON,
    fold_batch_norm,
    layer_shapes,
)

# From keras 3.15 keras/src/applications/densenet.py (BASE_WEIGHTS_PATH +
# DENSENET121_WEIGHT_PATH_NO_TOP and the `file_hash` passed to get_file; 32 hex
# digits, so MD5). tests/deep/test_weights.py re-reads them from the installed Keras.
KERAS_NOTOP_FILENAME = "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_NOTOP_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/densenet/" + KERAS_NOTOP_FILENAME
)
KERAS_NOTOP_MD5 = "30ee3e1110167f948a6b9946edeeb738"
# The file with the classifier (DENSENET121_WEIGHT_PATH); its extra layer is ignored.
KERAS_TOP_MD5 = "9d60b8095a5708f2dcce2bca79d332c7"

CACHE_FILENAME = "densenet121.safetensors"
ORIGINS = ("imagenet-keras", "imagenet-torchvision", "random")
_CLASSIFIER_LAYERS = {"predictions", "fc1000", "classifier"}

Params = dict[str, dict[str, np.ndarray]]


class WeightsError(ValueError):
    """A weights file that is not DenseNet-121 or cannot be read."""


class WeightsNotInstalledError(FileNotFoundError):
    """No converted weights in the cache and random weights not asked for."""


@dataclass(frozen=True)
class LoadedWeights:
    """DenseNet-121 weights ready for the network.

    params: layer name -> variable -> float32 array (Keras names, HWIO kernels,
    unfolded batch norms); origin: "imagenet-keras", "imagenet-torchvision" or
    "random"; sha256: SHA-256 of the source file (for random weights, of the
    generated parameters); bn_epsilon: the origin's batch-norm epsilon; source:
    the source file's name (or "random(seed=…)"); verified: whether the source
    matched a hash its publisher gives.
    """

    params: Params
    origin: str
    sha256: str
    bn_epsilon: float
    source: str = ""
    verified: bool = False

    @property
    def is_random(self) -> bool:
        return self.origin == "random"

    def flax_params(self) -> dict[str, dict[str, np.ndarray]]:
        """Parameters for `DenseNet121.apply`, batch norms folded with this origin's epsilon."""
        return fold_batch_norm(self.params, self.bn_epsilon)

    def describe(self) -> dict[str, object]:
        return {
            "weights": self.origin,
            "weights_sha256": self.sha256,
            "weights_source": self.source,
            "weights_verified": self.verified,
            "bn_epsilon": self.bn_epsilon,
        }


def cache_dir() -> Path:
    """Where converted weights live: $SIGKIT_WEIGHTS, else the user cache directory."""
    override = os.environ.get("SIGKIT_WEIGHTS")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("sigkit")) / "weights"


def check_params(params: Mapping[str, Mapping[str, np.ndarray]], source: str) -> Params:
    """Check every DenseNet-121 layer is present with the right shapes; return float32 copies.

    Raises WeightsError naming the file and the first offending layer.
    """
    expected = layer_shapes()
    extra = [name for name in params if name not in expected]
    if extra:
        hint = " (a deeper DenseNet?)" if any(re.match(r"conv[45]_block", n) for n in extra) else ""
        raise WeightsError(
            f"{source}: layer {extra[0]!r} is not part of DenseNet-121{hint}; "
            f"{len(extra)} unexpected layer(s)"
        )
    missing = [name for name in expected if name not in params]
    if missing:
        raise WeightsError(
            f"{source}: DenseNet-121 layer {missing[0]!r} is missing "
            f"({len(missing)} of {len(expected)} layers missing)"
        )
    checked: Params = {}
    for name, variables in expected.items():
        checked[name] = {}
        for var, shape in variables.items():
            if var not in params[name]:
                raise WeightsError(f"{source}: layer {name!r} has no {var!r}")
            array = np.asarray(params[name][var])
            if array.shape != shape:
                raise WeightsError(
                    f"{source}: layer {name!r} {var} has shape {array.shape}, "
                    f"DenseNet-121 expects {shape}"
                )
            if not np.all(np.isfinite(array)):
                raise WeightsError(f"{source}: layer {name!r} {var} has non-finite values")
            checked[name][var] = array.astype(np.float32)
    return checked


def _decode(names: np.ndarray) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def _read_keras_legacy(handle) -> Params:
    params: Params = {}
    for layer in _decode(handle.attrs["layer_names"]):
        group = handle[layer]
        weight_names = _decode(group.attrs.get("weight_names", []))
        if not weight_names:
            continue
        name = layer.replace("/", "_")
        if name in _CLASSIFIER_LAYERS:
            continue
        params[name] = {}
        for weight in weight_names:
            var = weight.rsplit("/", 1)[-1].split(":")[0]
            params[name][var] = np.asarray(group[weight])
    return params


def _numbered(names: list[str], stem: str) -> list[str]:
    pattern = re.compile(rf"^{stem}(?:_(\d+))?$")
    found = [(int(m.group(1) or 0), n) for n in names if (m := pattern.match(n))]
    return [n for _, n in sorted(found)]


def _read_keras3(handle) -> Params:
    layers = handle["layers"]
    names = list(layers.keys())
    expected = layer_shapes()

    def variables(group_name: str) -> list[np.ndarray]:
        group = layers[group_name].get("vars", {})
        return [np.asarray(group[k]) for k in sorted(group.keys(), key=int)]

    if all(name in layers for name in expected):
        ordered = list(expected)
        groups = ordered
    else:
        convs = _numbered(names, "conv2d")
        norms = _numbered(names, "batch_normalization")
        conv_names = [n for n, v in expected.items() if "kernel" in v]
        bn_names = [n for n, v in expected.items() if "gamma" in v]
        if len(convs) != len(conv_names) or len(norms) != len(bn_names):
            raise WeightsError(
                f"Keras 3 weights with {len(convs)} convolutions and {len(norms)} batch norms; "
                f"DenseNet-121 has {len(conv_names)} and {len(bn_names)}"
            )
        ordered = conv_names + bn_names
        groups = convs + norms
    params: Params = {}
    for name, group in zip(ordered, groups, strict=True):
        arrays = variables(group)
        wanted = ("kernel",) if "kernel" in expected[name] else BN_VARIABLES
        if len(arrays) != len(wanted):
            raise WeightsError(
                f"Keras 3 layer {group!r} (DenseNet-121 {name!r}) has {len(arrays)} variables, "
                f"expected {len(wanted)}"
            )
        params[name] = dict(zip(wanted, arrays, strict=True))
    return params


_TORCH_LEGACY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)
_TORCH_BN = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean"}
_TORCH_BN["running_var"] = "moving_variance"


def _torch_layer_name(key: str) -> tuple[str, str] | None:
    """Keras layer name and torch parameter for a torchvision state_dict key (None: ignore)."""
    module, _, param = key.rpartition(".")
    parts = module.split(".")
    if parts[0] != "features":
        return None
    if parts[1:] == ["conv0"]:
        return "conv1_conv", param
    if parts[1:] == ["norm0"]:
        return "conv1_bn", param
    if parts[1:] == ["norm5"]:
        return "bn", param
    if len(parts) == 4 and parts[1].startswith("denseblock"):
        stage = int(parts[1].removeprefix("denseblock")) + 1
        layer = int(parts[2].removeprefix("denselayer"))
        suffix = {"norm1": "0_bn", "conv1": "1_conv", "norm2": "1_bn", "conv2": "2_conv"}
        return f"conv{stage}_block{layer}_{suffix.get(parts[3], parts[3])}", param
    if len(parts) == 3 and parts[1].startswith("transition"):
        stage = int(parts[1].removeprefix("transition")) + 1
        kind = {"norm": "bn", "conv": "conv"}.get(parts[2], parts[2])
        return f"pool{stage}_{kind}", param
    return f"torch:{module}", param


def params_from_torch_state_dict(state: Mapping[str, object]) -> Params:
    """Keras-named parameters from a torchvision densenet121 state_dict (arrays or tensors)."""
    params: Params = {}
    for raw_key, value in state.items():
        key = raw_key.removeprefix("module.")
        if key.endswith("num_batches_tracked") or key.startswith("classifier."):
            continue
        legacy = _TORCH_LEGACY.match(key)
        if legacy:
            key = legacy.group(1) + legacy.group(2)
        mapped = _torch_layer_name(key)
        if mapped is None:
            raise WeightsError(
                f"state_dict key {raw_key!r} is not part of torchvision's densenet121"
            )
        name, param = mapped
        array = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value)
        if param == "weight" and array.ndim == 4:
            params.setdefault(name, {})["kernel"] = array.transpose(2, 3, 1, 0)
        elif param in _TORCH_BN:
            params.setdefault(name, {})[_TORCH_BN[param]] = array
        else:
            raise WeightsError(f"state_dict key {raw_key!r}: unexpected parameter {param!r}")
    return params


def _read_torch(path: Path) -> Params:
    try:
        import torch
    except ImportError as error:  # pragma: no cover - torch is in the dev set-up
        raise WeightsError(
            f"{path.name}: reading a torchvision state_dict needs torch "
            "(pip install 'sigkit[torch]')"
        ) from error
    try:  # weights_only: tensors and plain containers only, never arbitrary pickled objects
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(_unpickling_refusal(path, exc)) from exc
    if isinstance(state, Mapping) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise WeightsError(f"{path.name}: not a state_dict ({type(state).__name__})")
    return params_from_torch_state_dict(state)


def _unpickling_refusal(path: Path, exc: Exception) -> str:
    """Why torch's safe loader refused `path`, in sigkit's words."""
    found = re.search(r"GLOBAL (\S+) was not an allowed global", str(exc))
    if found is None:
        return (
            f"{path.name}: not a torch state_dict file (torch's safe loader cannot read it; "
            "is it damaged, or not a torch file?)"
        )
    return (
        f"{path.name}: not a plain state_dict of tensors; it holds pickled Python objects "
        f"(such as {found.group(1)}), and it was not loaded, because unpickling them could "
        "run arbitrary code. Save the weights alone with "
        "torch.save(model.state_dict(), 'densenet121.pth') and import that file, or import "
        f"the Keras weights ({KERAS_NOTOP_FILENAME}) instead."
    )


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _import_h5(path: Path) -> tuple[Params, bool]:
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise WeightsError(f"{path.name}: not an HDF5 file ({error})") from error
    with handle:
        if "layer_names" in handle.attrs:
            params = _read_keras_legacy(handle)
            md5 = _md5(path)
            verified = md5 in (KERAS_NOTOP_MD5, KERAS_TOP_MD5)
            if not verified:
                warnings.warn(
                    f"{path.name}: MD5 {md5} does not match the hash Keras publishes for "
                    f"{KERAS_NOTOP_FILENAME} ({KERAS_NOTOP_MD5}); importing it as Keras "
                    "weights, recorded as unverified",
                    UserWarning,
                    stacklevel=3,
                )
            return params, verified
        if "layers" in handle:
            return _read_keras3(handle), False
    raise WeightsError(f"{path.name}: HDF5 file without Keras weights (no layer_names, no layers)")


def _torchvision_verified(path: Path, sha256: str) -> bool:
    """torchvision names its files `<arch>-<first hex digits of the SHA-256>.pth`."""
    match = re.search(r"-([0-9a-f]{8,64})\.pth?$", path.name)
    if match is None:
        return False
    if not sha256.startswith(match.group(1)):
        warnings.warn(
            f"{path.name}: SHA-256 {sha256[:16]}… does not match the hash prefix in its "
            "name; importing it, recorded as unverified",
            UserWarning,
            stacklevel=3,
        )
        return False
    return True


def import_file(path: str | os.PathLike[str]) -> LoadedWeights:
    """Read DenseNet-121 weights from a Keras HDF5, Keras 3 .weights.h5 or torchvision .pth file.

    Raises WeightsError naming the layer when the file is not DenseNet-121.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    sha256 = file_hash(path)
    if path.suffix in (".pth", ".pt"):
        params = _read_torch(path)
        origin, epsilon = "imagenet-torchvision", TORCHVISION_BN_EPSILON
        verified = _torchvision_verified(path, sha256)
    elif path.suffix in (".h5", ".hdf5", ".keras"):
        params, verified = _import_h5(path)
        origin, epsilon = "imagenet-keras", KERAS_BN_EPSILON
    else:
        raise WeightsError(
            f"{path.name}: unknown weights format (expected a Keras .h5 / .weights.h5 "
            "or a torchvision .pth)"
        )
    return LoadedWeights(
        params=check_params(params, path.name),
        origin=origin,
        sha256=sha256,
        bn_epsilon=epsilon,
        source=path.name,
        verified=verified,
    )


def random_weights(seed: int = 0) -> LoadedWeights:
    """A randomly initialised DenseNet-121: He-normal kernels, identity batch norms.

    Kernels ~ N(0, 2 / fan_in) (He et al. 2015, which keeps activations at a
    stable scale through the ReLUs), gamma = 1, beta = 0, moving mean 0 and
    variance 1. Deterministic in `seed`; origin "random".
    """
    rng = np.random.default_rng(seed)
    params: Params = {}
    digest = hashlib.sha256(f"densenet121-random-he-normal-seed={seed}".encode())
    for name, variables in layer_shapes().items():
        if "kernel" in variables:
            shape = variables["kernel"]
            std = np.sqrt(2.0 / np.prod(shape[:3]))
            kernel = rng.normal(0.0, std, size=shape).astype(np.float32)
            digest.update(kernel.tobytes())
            params[name] = {"kernel": kernel}
        else:
            channels = variables["gamma"][0]
            ones, zeros = np.ones(channels, np.float32), np.zeros(channels, np.float32)
            params[name] = {"gamma": ones, "beta": zeros, "moving_mean": zeros}
            params[name]["moving_variance"] = ones
    return LoadedWeights(
        params=params,
        origin="random",
        sha256=digest.hexdigest(),
        bn_epsilon=KERAS_BN_EPSILON,
        source=f"random(seed={seed})",
    )


def install(weights: LoadedWeights, directory: str | os.PathLike[str] | None = None) -> Path:
    """Store converted weights as safetensors in the cache directory; return the file."""
    from safetensors.numpy import save_file

    if weights.is_random:
        raise WeightsError("random weights are not installed; pass --weights random instead")
    target = Path(directory) if directory is not None else cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"{name}/{var}": np.ascontiguousarray(array)
        for name, variables in weights.params.items()
        for var, array in variables.items()
    }
    metadata = {
        "origin": weights.origin,
        "sha256": weights.sha256,
        "bn_epsilon": repr(weights.bn_epsilon),
        "source": weights.source,
        "verified": json.dumps(weights.verified),
        "architecture": "densenet121",
    }
    path = target / CACHE_FILENAME
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def _read_cache(path: Path) -> LoadedWeights:
    from safetensors import safe_open

    params: Params = {}
    with safe_open(str(path), framework="numpy") as handle:
        metadata = handle.metadata() or {}
        for key in handle.keys():
            name, var = key.rsplit("/", 1)
            params.setdefault(name, {})[var] = handle.get_tensor(key)
    origin = metadata.get("origin")
    if _FINETUNED_KEY in metadata:
        raise WeightsError(
            f"{path}: a fine-tuned Cox network (a study's results/finetuned.safetensors), not "
            "DenseNet-121 weights to extract features with; read it with read_finetuned"
        )
    if origin not in ORIGINS or metadata.get("architecture") != "densenet121":
        raise WeightsError(f"{path}: not a sigkit DenseNet-121 weights file (origin {origin!r})")
    return LoadedWeights(
        params=check_params(params, str(path)),
        origin=origin,
        sha256=metadata["sha256"],
        bn_epsilon=float(metadata["bn_epsilon"]),
        source=metadata.get("source", ""),
        verified=json.loads(metadata.get("verified", "false")),
    )


def load(
    source: str | os.PathLike[str] | None = None,
    seed: int = 0,
    directory: str | os.PathLike[str] | None = None,
) -> LoadedWeights:
    """The weights to extract with.

    source: None for the installed weights (cache directory), "random" for a
    randomly initialised network (`random_weights(seed)`), or a path: a sigkit
    .safetensors cache file or any file `import_file` reads.
    """
    if source is not None and str(source) == "random":
        return random_weights(seed)
    if source is not None:
        path = Path(source)
        if path.suffix == ".safetensors":
            return _read_cache(path)
        return import_file(path)
    path = (Path(directory) if directory is not None else cache_dir()) / CACHE_FILENAME
    if not path.is_file():
        raise WeightsNotInstalledError(
            f"no DenseNet-121 weights installed in {path.parent}. Import Keras's "
            f"{KERAS_NOTOP_FILENAME} (or a torchvision densenet121 .pth) with "
            "`sigkit weights import FILE`, or download it with `sigkit weights fetch` "
            "where a network exists; or pass `--weights random` for a randomly "
            "initialised network (every output is then labelled random)."
        )
    return _read_cache(path)


def fetch(
    url: str | None = None,
    md5: str | None = KERAS_NOTOP_MD5,
    directory: str | os.PathLike[str] | None = None,
    timeout: float = 60.0,
) -> tuple[LoadedWeights, Path]:
    """Download Keras's official DenseNet-121 no-top file, check its MD5, import and install it.

    url: defaults to $SIGKIT_WEIGHTS_URL (meant for tests), else Keras's URL.
    md5: the expected hash (Keras's by default); a mismatch raises and installs
    nothing. Returns the loaded weights and the installed file.
    """
    url = url or os.environ.get("SIGKIT_WEIGHTS_URL") or KERAS_NOTOP_URL
    with tempfile.TemporaryDirectory(prefix="sigkit-fetch-") as tmp:
        download = Path(tmp) / KERAS_NOTOP_FILENAME
        with urllib.request.urlopen(url, timeout=timeout) as response, open(download, "wb") as out:
            while block := response.read(1 << 20):
                out.write(block)
        got = _md5(download)
        if md5 is not None and got != md5:
            raise WeightsError(f"download from {url} has MD5 {got}, expected {md5}; not installed")
        with warnings.catch_warnings():
            if md5 is not None:  # checked above against the caller's hash
                warnings.simplefilter("ignore", UserWarning)
            weights = import_file(download)
    return weights, install(weights, directory)


def info(directory: str | os.PathLike[str] | None = None) -> dict[str, object]:
    """What is installed: path, origin, source, hash, epsilon (or installed: False)."""
    path = (Path(directory) if directory is not None else cache_dir()) / CACHE_FILENAME
    if not path.is_file():
        return {"installed": False, "path": str(path)}
    weights = _read_cache(path)
    return {"installed": True, "path": str(path), **weights.describe()}


# ---------------------------------------------------------------- fine-tuned networks

FINETUNED_FORMAT = "sigkit-finetuned"
FINETUNED_VERSION = 1
_FINETUNED_KEY = "sigkit"  # the one metadata entry (a JSON object), so the header's bytes
# do not depend on the order a map of several entries is written in


@dataclass(frozen=True)
class FinetunedWeights:
    """A fine-tuned Cox network (``toolkit.deep.finetune.CoxNetwork``) as written to a study.

    params: ``{"backbone": {layer: {"kernel"} or {"scale", "offset"}}, "head": {"kernel":
    (2F, 1)}}``, float32, batch norms in their folded form (what the network trains);
    blocks, growth_rate, stem_features: the backbone's width; input_size: the side the
    crops are resized to; backbone: what the backbone started from; dtype: the backbone's
    compute dtype in training, which scoring uses too; sha256: the file's.
    """

    params: dict[str, dict]
    blocks: tuple[int, ...]
    growth_rate: int
    stem_features: int
    input_size: int
    backbone: str
    dtype: str = "float32"
    sha256: str = ""

    def network(self):
        """The ``CoxNetwork`` these parameters fit (float32)."""
        from toolkit.deep._densenet import DenseNet121
        from toolkit.deep.finetune import CoxNetwork

        return CoxNetwork(
            DenseNet121(
                blocks=self.blocks, growth_rate=self.growth_rate, stem_features=self.stem_features
            )
        )

    def describe(self) -> dict[str, object]:
        return {
            "format": FINETUNED_FORMAT,
            "version": FINETUNED_VERSION,
            "architecture": "densenet-cox",
            "blocks": list(self.blocks),
            "growth_rate": self.growth_rate,
            "stem_features": self.stem_features,
            "input_size": self.input_size,
            "backbone": self.backbone,
            "dtype": self.dtype,
        }


def _leaves(tree: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    """A nested mapping's leaves by their "/"-joined path."""
    out: dict[str, object] = {}
    for name, value in tree.items():
        if isinstance(value, Mapping):
            out.update(_leaves(value, f"{prefix}{name}/"))
        else:
            out[f"{prefix}{name}"] = value
    return out


def write_finetuned(path: str | os.PathLike[str], weights: FinetunedWeights) -> str:
    """Write a fine-tuned network as safetensors (keys ``backbone/<layer>/<variable>`` and
    ``head/kernel``, float32; what it is in one metadata entry); returns the file's SHA-256.

    The same parameters give the same bytes (tests/deep/test_finetuned_weights.py).
    """
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {_FINETUNED_KEY: json.dumps(weights.describe(), sort_keys=True)}
    tensors = {
        k: np.ascontiguousarray(np.asarray(v, dtype=np.float32))
        for k, v in _leaves(weights.params).items()
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return file_hash(path)


def _finetuned_shapes(weights: FinetunedWeights) -> dict[str, tuple[int, ...]]:
    import jax

    from toolkit.deep.finetune import init_params

    size = (weights.input_size, weights.input_size)
    shapes = jax.eval_shape(lambda: init_params(weights.network(), size))
    return {k: tuple(v.shape) for k, v in _leaves(shapes).items()}


def read_finetuned(path: str | os.PathLike[str]) -> FinetunedWeights:
    """The fine-tuned network `write_finetuned` wrote; every tensor checked against the
    network its metadata describes (a missing, extra or misshapen one is named)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"fine-tuned weights file {path} does not exist")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise WeightsError(f"{path}: not a safetensors file ({error})") from None
    described = json.loads(metadata.get(_FINETUNED_KEY, "{}"))
    if described.get("format") != FINETUNED_FORMAT:
        raise WeightsError(f"{path}: not a sigkit fine-tuned network (no {FINETUNED_FORMAT!r})")
    if described.get("version") != FINETUNED_VERSION:
        raise WeightsError(
            f"{path}: fine-tuned network version {described.get('version')!r}; this sigkit "
            f"reads version {FINETUNED_VERSION}"
        )
    params: dict[str, dict] = {}
    for key, array in tensors.items():
        node = params
        *parents, leaf = key.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = array
    weights = FinetunedWeights(
        params=params,
        blocks=tuple(int(b) for b in described["blocks"]),
        growth_rate=int(described["growth_rate"]),
        stem_features=int(described["stem_features"]),
        input_size=int(described["input_size"]),
        backbone=str(described["backbone"]),
        dtype=str(described.get("dtype", "float32")),
        sha256=file_hash(path),
    )
    _check_finetuned(path, weights, tensors)
    return weights


def _check_finetuned(path: Path, weights: FinetunedWeights, tensors) -> None:
    expected = _finetuned_shapes(weights)
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        what = f"{missing[0]!r} is missing" if missing else f"{extra[0]!r} is not part of it"
        raise WeightsError(
            f"{path}: the network of blocks {list(weights.blocks)}, growth rate "
            f"{weights.growth_rate} does not fit the file: {what} "
            f"({len(missing)} missing, {len(extra)} unexpected)"
        )
    for key, shape in expected.items():
        if tensors[key].shape != shape or tensors[key].dtype != np.float32:
            raise WeightsError(
                f"{path}: {key} is {tensors[key].dtype} {tensors[key].shape}; the network "
                f"expects float32 {shape}"
            )
        if not np.all(np.isfinite(tensors[key])):
            raise WeightsError(f"{path}: {key} has non-finite values")
