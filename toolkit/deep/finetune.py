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

This is the first part of issue 19 item 2: whole-set full-batch steps in float32, on
one device. Not yet here: augmentation, early stopping on an inner split, gradient
accumulation or rematerialisation for 224 x 224 crops of a full cohort, bf16 on GPU,
device sharding, and the study's ``[signature] source = "finetuned"``.
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
from toolkit.deep.cox_loss import TIES, RiskSets, negative_partial_loglik, risk_sets
from toolkit.stats._checks import listed


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
    """steps: AdamW updates; learning_rate, weight_decay: AdamW's; ties: of the Cox loss;
    seed: the random initialisation of a backbone without imported weights."""

    steps: int = 100
    learning_rate: float = 1e-4
    weight_decay: float = 1e-4
    ties: str = "efron"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, not {self.steps}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, not {self.learning_rate}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be non-negative, not {self.weight_decay}")
        if self.ties not in TIES:
            raise ValueError(f"ties must be one of {TIES}, not {self.ties!r}")


@dataclass(frozen=True)
class FinetuneResult:
    """The trained parameters and the training loss L before each step and after the last
    (``losses[0]``: at the initial parameters; ``steps + 1`` values)."""

    params: Any
    losses: np.ndarray
    settings: FinetuneSettings


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


def _loss_function(network: CoxNetwork, risk: RiskSets):
    scale = 1.0 / float(risk.event_weight)

    def loss(params, arterial, portal):
        eta = network.apply({"params": params}, arterial, portal)
        return negative_partial_loglik(eta, risk) * scale

    return loss


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

    Deterministic in ``settings.seed`` (no dropout or augmentation yet).
    """
    network = network if network is not None else CoxNetwork()
    settings = settings if settings is not None else FinetuneSettings()
    risk = risk_sets(time, event, weights, ties=settings.ties, rows=rows)
    arterial, portal = _checked_crops(arterial, portal, len(risk.order), rows)
    params = init_params(network, arterial.shape[1:], settings.seed, backbone)
    optimiser = optax.adamw(settings.learning_rate, weight_decay=settings.weight_decay)
    value_and_grad = jax.value_and_grad(_loss_function(network, risk))

    @jax.jit
    def step(params, state, arterial, portal):
        value, grads = value_and_grad(params, arterial, portal)
        updates, state = optimiser.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    state = optimiser.init(params)
    losses = []
    a, p = jnp.asarray(arterial), jnp.asarray(portal)
    for _ in range(settings.steps):
        params, state, value = step(params, state, a, p)
        losses.append(value)
    losses.append(jax.jit(_loss_function(network, risk))(params, a, p))
    return FinetuneResult(params, np.asarray(jax.device_get(losses), np.float64), settings)


def linear_predictor(network: CoxNetwork, params: Any, arterial: Any, portal: Any) -> np.ndarray:
    """eta of each patient's crops under trained ``params``, (N,) float32."""
    a, p = _checked_crops(arterial, portal, len(np.asarray(arterial)), None)
    return np.asarray(jax.jit(network.apply)({"params": params}, a, p))
