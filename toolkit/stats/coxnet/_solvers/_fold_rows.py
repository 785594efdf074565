"""Cross-validation folds for the fast solvers: each fold's training rows, gathered.

The p > n and n > p solvers fit a fold on its training rows alone (the
active-set solver instead keeps all rows and gives the held-out ones weight
0): their n x n or p x p matrices then have the training rows' size. The
folds' row sets are padded to one length and run as one compiled
``lax.map`` program.
"""

from __future__ import annotations

import numpy as np

from toolkit._jax import jax
from toolkit.stats.coxnet._data import Data, first_tied, last_tied

jnp = jax.numpy
lax = jax.lax


def training_rows(data: Data, folds: np.ndarray, q: np.ndarray):
    """Each fold's training rows in time order, padded to one length with weight-0 rows.

    Returns stacked ``rows, death, start, end, q`` for the fold programs of
    :func:`on_fold_rows` (row indices into ``data.x``, the padding index n standing for a row of
    zeros); the padding rows come last (time +inf, no death, weight 0), so
    they are in no risk set that matters.
    """
    n = data.x.shape[0]
    chosen = [np.flatnonzero(folds != f) for f in range(1, folds.max() + 1)]
    m = max(len(r) for r in chosen)
    out: list[list[np.ndarray]] = [[], [], [], [], []]
    for f, r in enumerate(chosen):
        pad = m - len(r)
        t = np.append(data.time[r], np.full(pad, np.inf))
        values = (
            np.append(r, np.full(pad, n)),
            np.append(data.death[r], np.zeros(pad)),
            first_tied(t),
            last_tied(t),
            np.append(q[f][r], np.zeros(pad)),
        )
        for store, value in zip(out, values, strict=True):
            store.append(value)
    return tuple(np.stack(v) for v in out)


def on_fold_rows(solver):
    """``solver`` (a path function) for each fold's training rows in turn, jitted.

    The result takes ``rows`` (folds x m), each fold's training rows of ``x``
    (index n: a row of zeros, the padding), and per-fold outcome, weights,
    scales, columns and penalties; one fold's rows are gathered at a time and
    the folds run as one ``lax.map`` program.
    """

    def folds(
        x, rows, death, start, end, vp, alpha, q, scale, allowed, penalties, early_stop, max_steps
    ):
        padded = jnp.concatenate([x, jnp.zeros((1, x.shape[1]), x.dtype)])

        def one(args):
            rf, df, sf, ef, qf, scf, af, pf, esf = args
            return solver(padded[rf], df, sf, ef, vp, alpha, qf, scf, af, pf, esf, max_steps)

        return lax.map(one, (rows, death, start, end, q, scale, allowed, penalties, early_stop))

    return jax.jit(folds)


def fit_on_fold_rows(
    program, data: Data, folds, alpha, q, scale, allowed, penalties, early_stop, max_steps
):
    """Run a fold program of :func:`on_fold_rows` on every fold's training rows.

    ``q`` (weights, 0 on the held-out rows), ``scale``, ``allowed``,
    ``penalties`` and ``early_stop`` are stacked per fold; returns the
    program's outputs stacked per fold.
    """
    rows, death, start, end, qf = training_rows(data, folds, q)
    vp = data.penalty_factor
    return program(
        data.x,
        rows,
        death,
        start,
        end,
        vp,
        alpha,
        qf,
        scale,
        allowed,
        penalties,
        early_stop,
        max_steps,
    )


def entry_points(path_function, max_steps: int):
    """A fast solver's ``fit_path`` and ``fit_folds`` around its path function.

    ``fit_path(x, death, start, end, vp, alpha, q, scale, allowed, penalties,
    early_stop, max_steps=max_steps)`` runs ``path_function`` jitted and returns
    its ``coef, deviance_ratio, stopped, failed, counts``; ``fit_folds(data,
    folds, alpha, q, scale, allowed, penalties, early_stop, max_steps=max_steps)``
    runs it on every fold's training rows in one program (:func:`on_fold_rows`),
    outputs stacked per fold.
    """
    path_program = jax.jit(path_function)
    folds_program = on_fold_rows(path_function)

    def fit_path(
        x,
        death,
        start,
        end,
        vp,
        alpha,
        q,
        scale,
        allowed,
        penalties,
        early_stop,
        max_steps=max_steps,
    ):
        return path_program(
            x, death, start, end, vp, alpha, q, scale, allowed, penalties, early_stop, max_steps
        )

    def fit_folds(
        data: Data, folds, alpha, q, scale, allowed, penalties, early_stop, max_steps=max_steps
    ):
        return fit_on_fold_rows(
            folds_program, data, folds, alpha, q, scale, allowed, penalties, early_stop, max_steps
        )

    return fit_path, fit_folds
