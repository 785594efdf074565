"""Predicted survival with its uncertainty (``CoxFit.predict_survival_ci``) against
survival::survfit.coxph 3.5-3 on pbc, lung and veteran: survival, std.err (of the cumulative
hazard), the "log", "log-log" and "plain" limits, cumhaz and std.chaz, Efron and Breslow,
with strata and case weights (fractional: the robust variance)."""

from __future__ import annotations

import numpy as np

from validation import check, compare

_REF = "survival::survfit.coxph 3.5-3 (summary(..., times, extend = TRUE))"
_TOL = 1e-8

# dataset -> (event code of status, covariates, strata column)
_MODELS = {
    "pbc": (2, ["age", "bili", "albumin", "edema", "protime"], "sex"),
    "lung": (2, ["age", "ph.ecog", "wt.loss"], "sex"),
    "veteran": (1, ["age", "karno", "diagtime", "prior"], "trt"),
}


def _data(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from toolkit import rbridge

    code, covariates, strata = _MODELS[name]
    frame = rbridge.dataset(name)[["time", "status", *covariates, strata]].dropna()
    event = (frame["status"] == code).astype(float).to_numpy()
    x = frame[covariates].to_numpy(dtype=float)
    return x, frame["time"].to_numpy(dtype=float), event, np.asarray(frame[strata]).astype(str)


def _rows(name: str, ties: str, conf_type: str, stratified: bool) -> list:
    """One fit and its predictions for six new rows at times from 0 to beyond the last."""
    from toolkit.rbridge.cox import survfit_coxph
    from toolkit.stats import cox

    x, time, event, strata = _data(name)
    weights = 1.0 + 0.5 * (np.arange(len(time)) % 3) if stratified else None
    strata = strata if stratified else None
    newx = np.r_[x[:5] * 1.1, x.mean(axis=0, keepdims=True)]
    newstrata = None if strata is None else strata[:6]
    quantiles = np.quantile(time, [0.1, 0.25, 0.5, 0.75, 0.9])
    times = np.unique(np.r_[0.0, quantiles, time.max(), 2 * time.max()])
    fit = cox.fit(x, time, event, ties=ties, weights=weights, strata=strata)
    ours = fit.predict_survival_ci(newx, times, strata=newstrata, conf_type=conf_type)
    ref = survfit_coxph(x, time, event, newx, times, ties=ties, weights=weights,
                        strata=strata, newstrata=newstrata, conf_type=conf_type)  # fmt: skip
    label = ", ".join([name, ties, f"conf.type {conf_type}",
                       *(["strata, weights 1-2 (robust SE)"] if stratified else [])])  # fmt: skip
    pairs = [
        ("survfit.coxph surv", ours.survival, ref["surv"]),
        ("survfit.coxph std.err (of cumhaz)", ours.std_err, ref["std_chaz"]),
        ("summary.survfit std.err (S * std.err)", ours.survival_se, ref["std_err"]),
        ("survfit.coxph lower", ours.lower, ref["lower"]),
        ("survfit.coxph upper", ours.upper, ref["upper"]),
        ("survfit.coxph cumhaz", ours.cumulative_hazard, ref["cumhaz"]),
        ("survfit.coxph std.chaz", ours.std_chaz, ref["std_chaz"]),
    ]
    return [compare(s, label, o, r, _TOL, reference=_REF) for s, o, r in pairs]


@check("predict", fast=True)
def survfit_ci_pbc_efron() -> list:
    return _rows("pbc", "efron", "log", stratified=False)


@check("predict")
def survfit_ci_all_datasets() -> list:
    return [
        row
        for name in _MODELS
        for ties in ("efron", "breslow")
        for conf_type in ("log", "log-log", "plain")
        for stratified in (False, True)
        for row in _rows(name, ties, conf_type, stratified)
    ]
