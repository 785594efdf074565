"""Univariate Cox screen and stepwise AIC against summary(coxph) and MASS::stepAIC."""

from __future__ import annotations

import numpy as np
import pandas as pd

from validation import check, compare, datasets

_STEP = "MASS::stepAIC 7.3-58 on survival::coxph 3.5-3"
_PBC, _LUNG = datasets.STEPWISE_PBC, datasets.STEPWISE_LUNG


def _pbc() -> pd.DataFrame:
    from toolkit import rbridge

    return datasets.stepwise_pbc(rbridge.dataset("pbc"))


def _lung() -> pd.DataFrame:
    from toolkit import rbridge

    return datasets.stepwise_lung(rbridge.dataset("lung"))


def _stepwise(name: str, d: pd.DataFrame, candidates: list[str], direction: str):
    from toolkit.rbridge import stepwise as r_stepwise
    from toolkit.stats import stepwise

    start = [] if direction == "forward" else candidates
    ours = stepwise.aic(d, "time", "event", candidates, direction=direction)
    ref = r_stepwise.step_aic(d, "time", "event", start, candidates, direction=direction)
    same_steps = list(ours.trace["step"]) == ref["step"]
    same_set = list(ours.variables) == ref["variables"]
    label = f"{name}, {direction}"
    return [
        compare("stepAIC path (1 = same steps)", label, float(same_steps), 1.0, 0.0,
                reference=_STEP),
        compare("stepAIC final set (1 = same)", label, float(same_set), 1.0, 0.0,
                reference=_STEP),
        compare("stepAIC AIC at every step", label,
                ours.trace["aic"].to_numpy() if same_steps else np.nan, ref["aic"], 1e-8,
                reference=_STEP),
        compare("stepAIC final coefficients", label, ours.fit.coef, ref["coef"], 1e-6,
                relative=True, reference=_STEP),
    ]  # fmt: skip


@check("stepwise", fast=True)
def stepwise_lung_both():
    return _stepwise("lung", _lung(), _LUNG, "both")


@check("stepwise")
def stepwise_lung_forward_backward():
    d = _lung()
    return _stepwise("lung", d, _LUNG, "forward") + _stepwise("lung", d, _LUNG, "backward")


@check("stepwise")
def stepwise_pbc():
    d = _pbc()
    out = []
    for direction in ("both", "backward", "forward"):
        out += _stepwise("pbc", d, _PBC, direction)
    return out


@check("stepwise", fast=True)
def univariate_pbc():
    from toolkit.rbridge import stepwise as r_stepwise
    from toolkit.stats import stepwise

    d = _pbc()
    ours = stepwise.univariate_screen(d, "time", "event", _PBC)
    ref = r_stepwise.univariate(d, "time", "event", _PBC)
    ref_summary = "survival::coxph 3.5-3, summary()"
    return [
        compare("univariate HR", "pbc", ours["hr"], ref["hr"], 1e-6, relative=True,
                reference=ref_summary),
        compare("univariate 95% CI", "pbc", ours[["lower", "upper"]], ref[["lower", "upper"]],
                1e-6, relative=True, reference=ref_summary),
        compare("univariate Wald p", "pbc", ours["p"], ref["p"], 1e-5, relative=True,
                reference=ref_summary),
        compare("univariate likelihood-ratio p", "pbc", ours["p_lr"], ref["p_lr"], 1e-8,
                relative=True, reference=ref_summary),
    ]  # fmt: skip
