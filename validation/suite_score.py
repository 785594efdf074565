"""Prediction accuracy against riskRegression::Score 2022.11.28 on pbc, lung, veteran and colon:
the Brier score with its SE, the null model, IPA and IBS, the Brier contrast of two models, and
the time-dependent AUC with its SE and contrast (KM censoring weights, se.fit = TRUE)."""

from __future__ import annotations

import numpy as np

from validation import check, compare

_REF = "riskRegression::Score 2022.11.28 (cens.model='km', se.fit=TRUE)"
_VALUE_TOL, _SE_TOL = 1e-8, 1e-6


def _data(name: str):
    """Time, event and the covariates of a Cox model (first column: the smaller model's)."""
    from toolkit import rbridge

    d = rbridge.dataset(name)
    if name == "pbc":
        d = d.dropna(subset=["bili", "albumin", "age"]).reset_index(drop=True)
        x = np.column_stack([np.log(d["bili"]), d["albumin"], d["age"]])
        return d["time"], d["status"] == 2, x
    if name == "lung":
        d = d.dropna(subset=["ph.ecog"]).reset_index(drop=True)
        return d["time"], d["status"] == 2, d[["ph.ecog", "age", "sex"]].to_numpy()
    if name == "veteran":
        return d["time"], d["status"], d[["karno", "age", "diagtime"]].to_numpy()
    d = d[d["etype"] == 2].dropna(subset=["nodes"]).reset_index(drop=True)  # colon, death
    return d["time"], d["status"], d[["nodes", "extent", "age"]].to_numpy()


def _models(name: str):
    """Predicted survival of the full Cox model and of its first covariate alone."""
    from toolkit.stats import cox

    time, event, x = _data(name)
    t, e, x = np.asarray(time, float), np.asarray(event, float), np.asarray(x, float)
    times = np.quantile(t[e == 1], [0.2, 0.4, 0.6, 0.8])
    full = cox.fit(x, t, e).predict_survival(x, times)
    first = cox.fit(x[:, :1], t, e).predict_survival(x[:, :1], times)
    return t, e, times, full, first


def _brier_rows(name: str) -> list:
    from toolkit.rbridge import score as rscore
    from toolkit.stats import brier

    t, e, times, s_a, s_b = _models(name)
    ref = rscore.score(t, e, 1 - s_a, 1 - s_b, times, "brier")
    ours = brier.brier_score(t, e, s_a, times)
    ibs = brier.integrated_brier(t, e, s_a, times)
    diff = brier.compare(t, e, s_a, s_b, times)
    rows = [
        ("Brier score (KM IPCW)", ours.brier, ref["a"]["Brier"], _VALUE_TOL),
        ("Brier score SE", ours.se, ref["a"]["se"], _SE_TOL),
        ("null-model Brier score", ours.null_brier, ref["null"]["Brier"], _VALUE_TOL),
        ("IPA", ours.ipa, ref["a"]["IPA"], _VALUE_TOL),
        ("integrated Brier score", ibs.ibs, ref["a"]["IBS"], _VALUE_TOL),
        ("Brier difference of two models", -diff.diff, ref["b vs a"]["delta.Brier"], _SE_TOL),
        ("Brier difference SE", diff.se, ref["b vs a"]["se"], _SE_TOL),
        ("Brier difference P", diff.p, ref["b vs a"]["p"], _SE_TOL),
    ]
    return [compare(s, name, o, r, tol, reference=_REF) for s, o, r, tol in rows]


def _auc_rows(name: str) -> list:
    from toolkit.rbridge import score as rscore
    from toolkit.stats import timeauc

    t, e, times, s_a, s_b = _models(name)
    ref = rscore.score(t, e, 1 - s_a, 1 - s_b, times, "auc")
    ours = timeauc.time_auc(t, e, 1 - s_a, times)
    diff = timeauc.compare(t, e, 1 - s_a, 1 - s_b, times)
    rows = [
        ("time-dependent AUC SE", ours.se, ref["a"]["se"]),
        ("AUC difference of two models", -diff.diff, ref["b vs a"]["delta.AUC"]),
        ("AUC difference SE", diff.se, ref["b vs a"]["se"]),
        ("AUC difference P", diff.p, ref["b vs a"]["p"]),
    ]
    return [compare(s, name, o, r, _SE_TOL, reference=_REF) for s, o, r in rows]


@check("score", fast=True)
def brier_and_auc_pbc():
    return [*_brier_rows("pbc"), *_auc_rows("pbc")]


@check("score")
def brier_and_auc_lung_veteran_colon():
    return [
        row
        for name in ("lung", "veteran", "colon")
        for f in (_brier_rows, _auc_rows)
        for row in f(name)
    ]
