"""Elastic-net Cox (toolkit.stats.coxnet) against glmnet 4.1-6 and scikit-survival.

Times in years (pbc) and months (veteran): see toolkit.stats.coxnet on glmnet's
tie shift. glmnet runs with thresh=1e-20 (its 1e-12 leaves its own iterates up
to 5e-6 from the optimum).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from validation import check, compare

_GLMNET = "glmnet 4.1-6 family='cox' (thresh=1e-20)"
_CV = "glmnet 4.1-6 cv.glmnet family='cox', type.measure='deviance', grouped=TRUE"
_SKSURV = "scikit-survival CoxnetSurvivalAnalysis (normalize=False, tol=1e-20)"
_THRESH = 1e-20


def _pbc() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from toolkit import rbridge

    frame = rbridge.dataset("pbc")
    frame["sex"] = (frame["sex"] == "f").astype(float)
    frame = frame.dropna()
    columns = [c for c in frame.columns if c not in ("id", "time", "status")]
    x = frame[columns].to_numpy(float)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x, frame["time"].to_numpy() / 365.25, (frame["status"] == 2).to_numpy(float)


def _veteran() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from toolkit import rbridge

    frame = rbridge.dataset("veteran")
    dummies = pd.get_dummies(frame["celltype"], prefix="celltype", drop_first=True, dtype=float)
    x = pd.concat([frame[["trt", "karno", "diagtime", "age", "prior"]], dummies], axis=1)
    return x.to_numpy(float), frame["time"].to_numpy() / 30.4375, frame["status"].to_numpy()


def _path_rows(label: str, x, time, event, l1_ratio: float) -> list:
    from toolkit.rbridge import coxnet as rcoxnet
    from toolkit.stats import coxnet

    ref = rcoxnet.glmnet_path(x, time, event, l1_ratio, thresh=_THRESH)
    ours = coxnet.path(x, time, event, l1_ratio)
    where = f"{label}, l1_ratio={l1_ratio:g}"
    k = min(len(ours.penalties), len(ref["lambda"]))
    return [
        compare("coxnet: number of penalties", where, len(ours.penalties), len(ref["lambda"]),
                0, reference=_GLMNET),
        compare("coxnet: default penalties", where, ours.penalties[:k], ref["lambda"][:k], 1e-8,
                relative=True, reference=_GLMNET),
        compare("coxnet: coefficients", where, ours.coef[:k], ref["beta"].T[:k], 1e-6,
                reference=_GLMNET),
        compare("coxnet: deviance ratio", where, ours.deviance_ratio[:k], ref["dev_ratio"][:k],
                1e-8, reference=_GLMNET),
    ]  # fmt: skip


@check("coxnet", fast=True)
def coxnet_path_pbc() -> list:
    return _path_rows("pbc (standardised, years)", *_pbc(), 0.5)


@check("coxnet", fast=True)
def coxnet_path_veteran() -> list:
    x, time, event = _veteran()
    return _path_rows("veteran (months)", x, time, event, 1.0) + _path_rows(
        "veteran (months)", x, time, event, 0.2
    )


def _pbc_wide() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """p > n on real data: 80 pbc patients, 17 covariates and their 136 pairwise products."""
    from itertools import combinations

    x, time, event = _pbc()
    x, time, event = x[:80], time[:80], event[:80]
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    products = [x[:, i] * x[:, j] for i, j in combinations(range(x.shape[1]), 2)]
    wide = np.column_stack([x, *products])
    return (wide - wide.mean(axis=0)) / wide.std(axis=0), time, event


@check("coxnet", fast=True)
def coxnet_path_pbc_wide() -> list:
    """The p > n solver (semismooth Newton in the linear predictor) on real data.

    glmnet at thresh=1e-20 runs out of iterations partway down this path and
    returns the penalties before; those are compared.
    """
    from toolkit.rbridge import coxnet as rcoxnet
    from toolkit.stats import coxnet

    x, time, event = _pbc_wide()
    ref = rcoxnet.glmnet_path(x, time, event, 0.5, thresh=_THRESH)
    ours = coxnet.path(x, time, event, 0.5)
    k = len(ref["lambda"])
    where = f"pbc, 80 patients x 153 covariates and products (p > n), l1_ratio=0.5, {k} penalties"
    return [
        compare("coxnet: default penalties", where, ours.penalties[:k], ref["lambda"], 1e-8,
                relative=True, reference=_GLMNET),
        compare("coxnet: coefficients", where, ours.coef[:k], ref["beta"].T, 1e-6,
                reference=_GLMNET),
        compare("coxnet: deviance ratio", where, ours.deviance_ratio[:k], ref["dev_ratio"],
                1e-8, reference=_GLMNET),
    ]  # fmt: skip


@check("coxnet", fast=False)
def coxnet_cv_pbc() -> list:
    from toolkit.rbridge import coxnet as rcoxnet
    from toolkit.stats import coxnet

    x, time, event = _pbc()
    folds = np.random.default_rng(1).permutation(np.resize(np.arange(1, 6), len(time)))
    ref = rcoxnet.cv_glmnet(x, time, event, 0.5, folds, thresh=_THRESH)
    ours = coxnet.cv(x, time, event, 0.5, fold_id=folds)
    where = "pbc, 5 folds, l1_ratio=0.5"
    return [
        compare("coxnet CV: mean deviance", where, ours.cv_mean, ref["cvm"], 1e-4,
                relative=True, reference=_CV),
        compare("coxnet CV: standard error", where, ours.cv_se, ref["cvsd"], 1e-4,
                relative=True, reference=_CV),
        compare("coxnet CV: lambda.min", where, ours.penalty_min, ref["lambda_min"], 1e-8,
                relative=True, reference=_CV),
        compare("coxnet CV: lambda.1se", where, ours.penalty_1se, ref["lambda_1se"], 1e-8,
                relative=True, reference=_CV),
    ]  # fmt: skip


@check("coxnet", fast=True)
def coxnet_path_sksurv_pbc() -> list:
    """Second reference: scikit-survival with the same sequence, no standardisation."""
    from sksurv.linear_model import CoxnetSurvivalAnalysis
    from sksurv.util import Surv

    from toolkit.stats import coxnet

    x, time, event = _pbc()
    penalties = coxnet.penalty_sequence(x, time, event, 0.5, standardize=False)[:50]
    ours = coxnet.path(x, time, event, 0.5, penalties=penalties, standardize=False)
    model = CoxnetSurvivalAnalysis(
        l1_ratio=0.5, alphas=penalties, normalize=False, tol=1e-20, max_iter=1_000_000
    )
    model.fit(x, Surv.from_arrays(event.astype(bool), time))
    return [
        compare("coxnet: coefficients", "pbc (standardised, years), l1_ratio=0.5",
                ours.coef, model.coef_.T, 1e-6, reference=_SKSURV),
    ]  # fmt: skip
