"""Cox regression (coef, SE, log-likelihoods, AIC, basehaz, survfit.coxph) against
survival::coxph 3.5-3 on pbc, lung and veteran, Efron and Breslow, strata and weights."""

from __future__ import annotations

import numpy as np

from validation import check, compare

_REF = "survival::coxph 3.5-3"
_COEF_TOL, _SE_TOL, _CURVE_TOL = 1e-7, 1e-6, 1e-8

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


def _rows(label: str, ours, ref, survival) -> list:
    rows = [
        compare("Cox coef", label, ours.coef, ref["coef"], _COEF_TOL, relative=True,
                reference=_REF),
        compare("Cox SE", label, ours.se, ref["se"], _SE_TOL, relative=True, reference=_REF),
        compare("Cox loglik", label, ours.loglik, ref["loglik"][1], _COEF_TOL, relative=True,
                reference=_REF),
        compare("Cox null loglik", label, ours.loglik_null, ref["loglik"][0], _COEF_TOL,
                relative=True, reference=_REF),
        compare("Cox AIC", label, ours.aic, ref["aic"], _COEF_TOL, relative=True, reference=_REF),
        compare("Cox means", label, ours.means, ref["means"], 1e-10, relative=True,
                reference=_REF),
        compare("basehaz(centered=FALSE)", label, ours.baseline_cumulative_hazard["hazard"],
                ref["base_hazard"], _CURVE_TOL, reference="survival::basehaz 3.5-3"),
    ]  # fmt: skip
    if survival is not None:
        rows.append(
            compare("survfit.coxph on new data", label, survival, ref["surv"], _CURVE_TOL,
                    reference="survival::survfit.coxph 3.5-3")
        )  # fmt: skip
    return rows


def _fit_rows(name: str, ties: str, stratified: bool, weighted: bool) -> list:
    from toolkit.rbridge.cox import coxph
    from toolkit.stats import cox

    x, time, event, strata = _data(name)
    # fractional weights: coxph then reports the robust (sandwich) variance
    weights = 1.0 + 0.5 * (np.arange(len(time)) % 3) if weighted else None
    strata = strata if stratified else None
    newx = x[:5] * 1.1
    times = np.quantile(time, [0.1, 0.25, 0.5, 0.75, 0.9])
    newstrata = None if strata is None else strata[:5]
    ours = cox.fit(x, time, event, ties=ties, weights=weights, strata=strata)
    ref = coxph(x, time, event, ties=ties, weights=weights, strata=strata, newx=newx,
                newstrata=newstrata, times=times)  # fmt: skip
    survival = ours.predict_survival(newx, times, strata=newstrata)
    label = ", ".join([name, ties, *(["strata"] if stratified else []),
                       *(["weights 1-2 (robust SE)"] if weighted else [])])  # fmt: skip
    return _rows(label, ours, ref, survival)


@check("cox", fast=True)
def cox_efron_pbc() -> list:
    return _fit_rows("pbc", "efron", stratified=False, weighted=False)


@check("cox")
def cox_all_datasets() -> list:
    rows = []
    for name in _MODELS:
        for ties in ("efron", "breslow"):
            rows += _fit_rows(name, ties, stratified=False, weighted=False)
            rows += _fit_rows(name, ties, stratified=True, weighted=True)
    return rows


@check("cox", fast=True)
def cox_strata_weights_lung() -> list:
    return _fit_rows("lung", "breslow", stratified=True, weighted=True)
