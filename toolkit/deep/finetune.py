"""Fine-tuning DenseNet-121 end to end on survival with the exact Cox loss (Optax).

The model (`CoxNetwork`): the backbone (`DenseNet121`, one network shared by the two
phases, as the frozen path extracts both with one network) gives the pooled features
f(a_i) and f(p_i) of patient i's arterial and portal crops; a linear Cox head without
intercept (the partial likelihood ignores a constant) gives the linear predictor

    eta_i = beta_a . f(a_i) + beta_p . f(p_i)

The objective, minimised by AdamW (``optax.adamw``: Adam with decoupled weight decay
lambda on every parameter), is the Cox negative partial log-likelihood of eta over
the **whole** training set (`toolkit.deep.cox_loss`, Efron ties by default), divided
by the weighted number of events so that one learning rate serves any cohort size:

    L(theta) = -loglik(eta(theta)) / sum_i d_i w_i

Each step's forward pass covers every training crop, so each risk set is the exact
one of the training set (mini-batches would cut the risk sets; pycox and torchsurv
approximate them by the batch's).

Batch normalisation stays in the folded inference form of `DenseNet121`
(``x * scale + offset``): the statistics are frozen at the imported weights' (or the
identity, with random weights) and scale and offset train as per-channel affine
parameters; a cohort of a hundred patients gives batch statistics far noisier than
ImageNet's. The head starts at zero, so the first loss is that of eta = 0 and the
backbone's first update comes after the head's.

**Training schedule.** Each step is one epoch: every training crop goes through the
network once (augmented afresh, `toolkit.deep.augment`, from ``fold_in(key, step)``)
and AdamW takes one update. Early stopping: with ``validation_fraction`` > 0 the
training patients are split once (`inner_split`: stratified by event, seeded) into
an inner training set, the only one the loss above is taken over, and an inner
validation set, whose own Cox loss per event (its own risk sets, crops not augmented)
is computed before every step; training stops when it has not improved for
``patience`` steps, and the parameters of the best step are the result (the best
after at least one step: the initial parameters, whose zero head makes eta constant,
are never chosen; ``validation_losses[0]``, the null model's loss, is the reference).

**Memory: chunks with an exact risk set.** With ``chunk_size`` set, no forward pass
holds more than ``chunk_size`` patients' activations. The loss couples every
patient through the risk sets, but the network does not couple them: batch
normalisation is frozen, so eta_i depends on patient i's crops alone. The gradient is
therefore computed exactly by the chain rule through eta,

    dL/dtheta = sum_i (dL/deta_i) (deta_i/dtheta),

in two passes: (1) eta of every training patient, chunk by chunk (a forward pass
only, nothing discarded or approximated); (2) the exact loss and its gradient in eta,
g = dL/deta, over the whole risk set; (3) for each chunk, the vector-Jacobian product
g_chunk . deta_chunk/dtheta (the chunk's forward pass recomputed, then its backward
pass), summed over chunks (``lax.scan``). It costs one more forward pass than the
whole-set gradient and equals it up to float rounding (tests/deep/test_finetune.py).
Without ``chunk_size`` the whole training set is one chunk and the gradient is taken
directly.

**Devices and dtypes.** Each chunk is split over the local JAX devices along the
patient axis (``jax.sharding``, as extraction splits its batches; the chunk is
rounded up to a multiple of the device count and padded with zero crops whose
cotangent is 0, so they change nothing). Parameters, the head, the loss and the
optimiser are float32; ``dtype = "bfloat16"`` runs the backbone's convolutions and
activations in bfloat16 (for GPUs; float32, the default, on CPUs).

Deterministic in ``settings.seed`` (initialisation, inner split, augmentation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from toolkit import _jax  # noqa: F401  (x64 on for the loss's risk-set arrays)
from toolkit.deep._densenet import DenseNet121
from toolkit.deep.augment import Augmentation, augment
from toolkit.deep.cox_loss import TIES, RiskSets, negative_partial_loglik, risk_sets
from toolkit.stats._checks import listed

DTYPES = ("float32", "bfloat16")


class CoxNetwork(nn.Module):
    """Backbone features of both phases' crops -> a linear Cox head -> eta (N,) float32.

    Crops are (N, H, W) single-channel, z-scored (as the frozen path feeds them:
    replicated to three channels), H and W divisible by 32.
    """

    backbone: DenseNet121 = field(default_factory=DenseNet121)

    @nn.compact
    def __call__(self, arterial: jax.Array, portal: jax.Array) -> jax.Array:
        both = jnp.concatenate([arterial, portal])[..., None]
        images = jnp.broadcast_to(both, (*both.shape[:-1], 3))
        _, pooled = self.backbone(images)
        n = arterial.shape[0]
        features = jnp.concatenate([pooled[:n], pooled[n:]], axis=1)
        head = nn.Dense(1, use_bias=False, kernel_init=nn.initializers.zeros, name="head")
        return head(features.astype(jnp.float32))[:, 0]


@dataclass(frozen=True)
class FinetuneSettings:
    """steps: the most AdamW updates (epochs: each sees every training crop once);
    learning_rate, weight_decay: AdamW's; ties: of the Cox loss; seed: initialisation,
    inner split and augmentation; augmentation: None for none; validation_fraction: the
    share of patients held out for early stopping (0: none, train all ``steps``);
    patience: steps without a better validation loss before stopping; chunk_size:
    patients per forward pass (None: all at once); dtype: the backbone's compute dtype."""

    steps: int = 100
    learning_rate: float = 1e-4
    weight_decay: float = 1e-4
    ties: str = "efron"
    seed: int = 0
    augmentation: Augmentation | None = field(default_factory=Augmentation)
    validation_fraction: float = 0.0
    patience: int = 10
    chunk_size: int | None = None
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, not {self.steps}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, not {self.learning_rate}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be non-negative, not {self.weight_decay}")
        if self.ties not in TIES:
            raise ValueError(f"ties must be one of {TIES}, not {self.ties!r}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must be in [0, 1), not {self.validation_fraction}"
            )
        if self.patience < 1:
            raise ValueError(f"patience must be at least 1, not {self.patience}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1 or None, not {self.chunk_size}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, not {self.dtype!r}")


@dataclass(frozen=True)
class FinetuneResult:
    """The trained parameters (those of ``best_step``) and the losses per event.

    ``losses[k]``: the inner training set's loss at the parameters before step k (on that
    step's augmented crops), for k < ``steps_run``; ``losses[steps_run]``: at the last
    parameters, crops not augmented. ``validation_losses[k]``: the inner validation
    set's loss at the parameters before step k (k = 0..steps_run), empty without a
    validation split. ``train``, ``validation``: positions of the inner sets' patients.
    """

    params: Any
    losses: np.ndarray
    validation_losses: np.ndarray
    best_step: int
    steps_run: int
    train: np.ndarray
    validation: np.ndarray
    settings: FinetuneSettings


def inner_split(event: Any, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the inner training and validation patients, stratified by event.

    round(fraction * n_s) patients of each stratum s (events, censored) are drawn for
    validation, at least one of each non-empty stratum with two or more patients, and
    never all of a stratum: both sets keep events. Deterministic in ``seed``.
    """
    event = np.asarray(event, dtype=float)
    rng = np.random.default_rng(seed)
    held = []
    for stratum in (1.0, 0.0):
        members = np.flatnonzero(event == stratum)
        if len(members) < 2:
            continue
        k = min(max(1, round(fraction * len(members))), len(members) - 1)
        held.append(rng.choice(members, size=k, replace=False))
    validation = np.sort(np.concatenate(held)) if held else np.zeros(0, int)
    train = np.setdiff1d(np.arange(len(event)), validation)
    return train, validation


def _checked_crops(arterial: Any, portal: Any, n: int, rows: Any) -> tuple[np.ndarray, ...]:
    out = []
    labels = np.asarray(rows) if rows is not None else np.arange(n)
    for name, crops in (("arterial", arterial), ("portal", portal)):
        crops = np.asarray(crops, dtype=np.float32)
        if crops.ndim != 3 or len(crops) != n or crops.shape[1] % 32 or crops.shape[2] % 32:
            raise ValueError(
                f"{name} crops have shape {crops.shape}; expected ({n}, H, W), "
                "one per patient, H and W divisible by 32"
            )
        bad = ~np.isfinite(crops).all(axis=(1, 2))
        if bad.any():
            raise ValueError(
                f"{name} crops of {int(bad.sum())} patients hold NaN or infinite values "
                f"({listed(labels[np.flatnonzero(bad)])})"
            )
        out.append(crops)
    if out[0].shape != out[1].shape:
        raise ValueError(f"arterial crops {out[0].shape} and portal {out[1].shape} differ")
    return tuple(out)


def init_params(
    network: CoxNetwork, crop_shape: tuple[int, int], seed: int = 0, backbone: Any = None
) -> Any:
    """The network's parameters: the backbone's from ``backbone`` (e.g. imported ImageNet
    weights' ``flax_params()``) or random from ``seed``; the head at zero."""
    blank = jnp.zeros((1, *crop_shape), jnp.float32)
    params = network.init(jax.random.key(seed), blank, blank)["params"]
    if backbone is not None:
        params = {**params, "backbone": jax.tree_util.tree_map(jnp.asarray, backbone)}
    return params


def with_dtype(network: CoxNetwork, dtype: str) -> CoxNetwork:
    """``network`` with its backbone computing in ``dtype`` ("float32" or "bfloat16")."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, not {dtype!r}")
    compute = jnp.bfloat16 if dtype == "bfloat16" else jnp.float32
    return network.clone(backbone=network.backbone.clone(dtype=compute))


@dataclass(frozen=True)
class Chunks:
    """How n patients are laid out for the devices: ``count`` chunks of ``size`` rows
    (a multiple of the device count), zero-padded, each chunk split over the devices."""

    n: int
    size: int
    count: int
    sharding: Any
    replicated: Any

    @classmethod
    def of(cls, n: int, chunk_size: int | None, devices: Any = None) -> Chunks:
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        devices = list(devices if devices is not None else jax.local_devices())
        mesh = Mesh(np.array(devices), ("batch",))
        k = len(devices)
        size = -(-min(chunk_size or n, n) // k) * k
        return cls(
            n=n,
            size=size,
            count=-(-n // size),
            sharding=NamedSharding(mesh, PartitionSpec(None, "batch")),
            replicated=NamedSharding(mesh, PartitionSpec()),
        )

    def lay_out(self, rows: jax.Array) -> jax.Array:
        """(n, ...) -> (count, size, ...), zero rows after the n-th."""
        pad = self.count * self.size - self.n
        padded = jnp.concatenate([rows, jnp.zeros((pad, *rows.shape[1:]), rows.dtype)])
        return padded.reshape(self.count, self.size, *rows.shape[1:])

    def put(self, crops: np.ndarray) -> jax.Array:
        return jax.device_put(self.lay_out(jnp.asarray(crops)), self.sharding)


def _eta_function(network: CoxNetwork, chunks: Chunks):
    """eta(params, arterial, portal) over chunked crops (count, size, H, W) -> (n,)."""

    def eta(params, arterial, portal):
        def one(pair):
            return network.apply({"params": params}, *pair)

        if chunks.count == 1:
            return one((arterial[0], portal[0]))[: chunks.n]
        return jax.lax.map(one, (arterial, portal)).reshape(-1)[: chunks.n]

    return eta


def _per_event(eta: jax.Array, risk: RiskSets) -> jax.Array:
    return negative_partial_loglik(eta, risk) / risk.event_weight.astype(eta.dtype)


def loss_and_grad(network: CoxNetwork, chunks: Chunks):
    """(params, arterial, portal, risk) -> (L, dL/dparams), exact over the risk set (see
    above). ``risk`` is an argument, not a constant, so that one compiled program serves
    every cohort of the same size (the folds of a cross-validation)."""
    eta_of = _eta_function(network, chunks)

    if chunks.count == 1:
        return jax.value_and_grad(lambda p, a, q, risk: _per_event(eta_of(p, a, q), risk))

    def value_and_grad(params, arterial, portal, risk):
        eta = eta_of(params, arterial, portal)
        value, g = jax.value_and_grad(_per_event)(eta, risk)
        cotangents = chunks.lay_out(g)

        def accumulate(total, xs):
            a, p, g_chunk = xs
            _, vjp = jax.vjp(lambda q: network.apply({"params": q}, a, p), params)
            (grads,) = vjp(g_chunk.astype(jnp.float32))
            return jax.tree_util.tree_map(jnp.add, total, grads), None

        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        grads, _ = jax.lax.scan(accumulate, zeros, (arterial, portal, cotangents))
        return value, grads

    return value_and_grad


@dataclass
class _Trainer:
    """The compiled step and losses of one `finetune` call."""

    network: CoxNetwork
    settings: FinetuneSettings
    risk: RiskSets
    chunks: Chunks
    validation_risk: RiskSets | None
    validation_chunks: Chunks | None

    def __post_init__(self) -> None:
        settings, chunks = self.settings, self.chunks
        self.optimiser = optax.adamw(settings.learning_rate, weight_decay=settings.weight_decay)
        value_and_grad = loss_and_grad(self.network, chunks)
        risk = self.risk
        augmentation = settings.augmentation

        def step(params, state, arterial, portal, key, risk):
            if augmentation is not None and augmentation.active:
                arterial, portal = augment(key, arterial, portal, augmentation)
            arterial, portal = (
                jax.lax.with_sharding_constraint(chunks.lay_out(x), chunks.sharding)
                for x in (arterial, portal)
            )
            value, grads = value_and_grad(params, arterial, portal, risk)
            updates, state = self.optimiser.update(grads, state, params)
            return optax.apply_updates(params, updates), state, value

        compiled = jax.jit(step)
        self.step = lambda params, state, a, p, key: compiled(params, state, a, p, key, risk)
        self.train_loss = self._loss(self.risk, chunks)
        if self.validation_risk is not None:
            self.validation_loss = self._loss(self.validation_risk, self.validation_chunks)

    def _loss(self, risk: RiskSets, chunks: Chunks):
        eta_of = _eta_function(self.network, chunks)
        compiled = jax.jit(lambda params, a, p, risk: _per_event(eta_of(params, a, p), risk))
        return lambda params, a, p: compiled(params, a, p, risk)


def finetune(
    arterial: Any,
    portal: Any,
    time: Any,
    event: Any,
    *,
    network: CoxNetwork | None = None,
    backbone: Any = None,
    settings: FinetuneSettings | None = None,
    weights: Any = None,
    rows: Any = None,
) -> FinetuneResult:
    """Train ``network`` (default: DenseNet-121 with a Cox head) on one crop per phase and
    patient by full-batch AdamW on the loss of the module docstring.

    Parameters
    ----------
    arterial, portal
        (N, H, W) z-scored crops, patient i's in row i.
    time, event, weights
        The training patients' follow-up, event indicator and case weights (default 1).
    backbone
        Backbone parameters to start from (imported weights); default random (``seed``).
    rows
        Patient identifiers for the error messages.
    """
    network = network if network is not None else CoxNetwork()
    settings = settings if settings is not None else FinetuneSettings()
    network = with_dtype(network, settings.dtype)
    everyone = risk_sets(time, event, weights, ties=settings.ties, rows=rows)
    arterial, portal = _checked_crops(arterial, portal, len(everyone.order), rows)
    event = np.asarray(event, dtype=float)
    if settings.validation_fraction > 0:
        train, validation = inner_split(event, settings.validation_fraction, settings.seed)
    else:
        train, validation = np.arange(len(event)), np.zeros(0, int)
    if settings.validation_fraction > 0 and not event[validation].any():
        raise ValueError("the inner validation split holds no event; lower validation_fraction")

    def subset(values, where):
        return None if values is None else np.asarray(values)[where]

    trainer = _Trainer(
        network,
        settings,
        risk_sets(subset(time, train), event[train], subset(weights, train), ties=settings.ties),
        Chunks.of(len(train), settings.chunk_size),
        None
        if not len(validation)
        else risk_sets(
            subset(time, validation),
            event[validation],
            subset(weights, validation),
            ties=settings.ties,
        ),
        None if not len(validation) else Chunks.of(len(validation), settings.chunk_size),
    )
    params = init_params(network, arterial.shape[1:], settings.seed, backbone)
    params = jax.device_put(params, trainer.chunks.replicated)
    losses, checked, best = _train(trainer, params, arterial, portal, train, validation)
    return FinetuneResult(
        params=best[2],
        losses=losses,
        validation_losses=checked,
        best_step=best[1],
        steps_run=len(losses) - 1,
        train=train,
        validation=validation,
        settings=settings,
    )


def _train(trainer: _Trainer, params, arterial, portal, train, validation):
    """The loop: losses, validation losses, and (best loss, best step, best params)."""
    settings = trainer.settings
    a, p = jnp.asarray(arterial[train]), jnp.asarray(portal[train])
    if len(validation):
        va = trainer.validation_chunks.put(arterial[validation])
        vp = trainer.validation_chunks.put(portal[validation])
    state = trainer.optimiser.init(params)
    key = jax.random.key(settings.seed + 1)
    losses, checked = [], []
    best = (np.inf, 0, params)
    for k in range(settings.steps + 1):
        if len(validation):
            checked.append(float(trainer.validation_loss(params, va, vp)))
            # the initial parameters (a zero head: eta constant) are no candidate
            if k >= 1 and checked[-1] < best[0]:
                best = (checked[-1], k, params)
            elif k >= 1 and k - best[1] >= settings.patience:
                break
        if k == settings.steps:
            break
        params, state, value = trainer.step(params, state, a, p, jax.random.fold_in(key, k))
        losses.append(value)
    chunked = trainer.chunks
    losses.append(trainer.train_loss(params, chunked.put(a), chunked.put(p)))
    if not len(validation):
        best = (np.nan, len(losses) - 1, params)
    losses = np.asarray(jax.device_get(losses), np.float64)
    return losses, np.asarray(checked, np.float64), best


def linear_predictor(
    network: CoxNetwork,
    params: Any,
    arterial: Any,
    portal: Any,
    *,
    chunk_size: int | None = None,
    dtype: str = "float32",
) -> np.ndarray:
    """eta of each patient's crops under trained ``params``, (N,) float32 (chunked and
    sharded as in training)."""
    a, p = _checked_crops(arterial, portal, len(np.asarray(arterial)), None)
    chunks = Chunks.of(len(a), chunk_size)
    eta = jax.jit(_eta_function(with_dtype(network, dtype), chunks))
    return np.asarray(eta(params, chunks.put(a), chunks.put(p)))
