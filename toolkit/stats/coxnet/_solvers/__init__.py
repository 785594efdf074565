"""The path solvers of the elastic-net Cox model, and the one place that chooses among them.

Three solvers minimise the same objective (:mod:`toolkit.stats.coxnet._likelihood`)
along a penalty path, each as one compiled ``jax.jit`` program (a
``lax.scan`` over the penalties with warm starts; the CV folds are that
program mapped over folds with ``lax.map``). All converge to the minimiser
that glmnet's coordinate descent approaches, to ~1e-10 on the standardised
scale; none is glmnet's algorithm.

- ``eta`` (:mod:`~toolkit.stats.coxnet._solvers.eta`): p > n, at most 2000
  rows, ``0 < l1_ratio < 1``, every penalty factor positive (the image
  signature's case). Semismooth Newton in the linear predictor.
- ``dense`` (:mod:`~toolkit.stats.coxnet._solvers.dense`): n > p, at most
  4096 columns, ``0 < l1_ratio <= 1``, every penalty factor positive (the
  nomograms, the study's CV, large cohorts). Steps preconditioned by a reused
  Hessian.
- ``active-set`` (:mod:`~toolkit.stats.coxnet._solvers.active_set`): every
  problem. Proximal Newton on the active columns.

:data:`SOLVERS` lists them in the order tried. The first that applies to the
problem (for CV: to every fold's training rows) fits it; should it fail to
converge at some penalty, the last, the active-set solver (which applies to
every problem and always converges), refits the whole path (all folds).
``SOLVERS`` is also the one seam through which the tests choose a solver,
spy on one or make one give up early.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from toolkit.stats.coxnet._data import Data
from toolkit.stats.coxnet._solvers import active_set, dense, eta


@dataclass(frozen=True)
class Solver:
    """A path solver as the choice sees it.

    ``applies(shape, alpha, penalty_factor, penalties)`` says whether it fits
    a problem of ``(rows, columns)`` shape; ``path(x, death, start, end,
    penalty_factor, alpha, q, scale, allowed, penalties, early_stop)`` fits one
    path on the sorted, centred data (weights ``q`` summing to 1, column
    ``scale`` for standardisation, ``allowed`` columns); ``folds(data, folds,
    alpha, q, scale, allowed, penalties, early_stop)`` fits every CV fold's
    path, those inputs stacked per fold. Both return ``(coef,
    deviance_ratio, stopped, failed, ...)``: coefficients on the given scale,
    per penalty whether glmnet's early stop had come, and whether a penalty
    did not converge.
    """

    name: str
    applies: Callable[[tuple[int, int], float, np.ndarray, np.ndarray], bool]
    path: Callable[..., tuple]
    folds: Callable[..., tuple]


SOLVERS: tuple[Solver, ...] = (
    Solver("eta", eta.applies, eta.fit_path, eta.fit_folds),
    Solver("dense", dense.applies, dense.fit_path, dense.fit_folds),
    Solver("active-set", active_set.applies, active_set.fit_path, active_set.fit_folds),
)


def _first(shapes: Sequence[tuple[int, int]], alpha: float, vp: np.ndarray, penalties) -> Solver:
    """The first of :data:`SOLVERS` that applies to every problem (one shape and sequence each)."""
    return next(
        solver
        for solver in SOLVERS
        if all(solver.applies(s, alpha, vp, m) for s, m in zip(shapes, penalties, strict=True))
    )


def _refit(solver: Solver, out: tuple) -> bool:
    """Whether the last solver must refit: ``solver``, another one, failed at some penalty."""
    return solver is not SOLVERS[-1] and bool(np.any(np.asarray(out[3])))


def fit_path(data: Data, alpha: float, q, scale, allowed, penalties, early_stop) -> tuple:
    """``coef, deviance_ratio, stopped`` (numpy, one row per penalty) of one path on ``data``."""
    args = (data.x, data.death, data.start, data.end, data.penalty_factor, alpha)
    args = (*args, q, scale, allowed, penalties, early_stop)
    solver = _first([data.x.shape], alpha, data.penalty_factor, [penalties])
    out = solver.path(*args)
    if _refit(solver, out):
        out = SOLVERS[-1].path(*args)
    return tuple(np.asarray(v) for v in out[:3])


def fit_folds(
    data: Data, folds: np.ndarray, alpha: float, q, scale, allowed, penalties, early_stop
) -> tuple[np.ndarray, np.ndarray]:
    """``coef`` (K, L, p) and ``stopped`` (K, L) of every fold's path (one compiled program).

    ``folds`` is the fold label (1..K) per sorted row; ``q`` (0 on the fold's
    held-out rows), ``scale``, ``allowed``, ``penalties`` and ``early_stop``
    are stacked per fold.
    """
    p = data.x.shape[1]
    shapes = [(int((folds != f).sum()), p) for f in range(1, folds.max() + 1)]
    solver = _first(shapes, alpha, data.penalty_factor, penalties)
    args = (data, folds, alpha, q, scale, allowed, penalties, early_stop)
    out = solver.folds(*args)
    if _refit(solver, out):
        out = SOLVERS[-1].folds(*args)
    return np.asarray(out[0]), np.asarray(out[2])
