"""Stratified and G-rho log-rank tests (survdiff with strata() and rho=) against
survival 3.5-3 on lung, veteran, pbc and colon."""

from __future__ import annotations

import numpy as np
import pandas as pd

from validation import check, compare

_REF = "survival::survdiff 3.5-3 (strata(), rho=)"
_TOL = 1e-10

# (dataset, event code of status, group, stratum or None, rho)
_CASES = [
    ("lung", 2, "sex", "inst", 0.0),
    ("lung", 2, "sex", "inst", 1.0),
    ("lung", 2, "ph.ecog", "sex", 0.5),
    ("veteran", 1, "trt", "celltype", 0.0),
    ("veteran", 1, "trt", "celltype", 1.0),
    ("veteran", 1, "celltype", None, 1.0),
    ("pbc", 2, "trt", "stage", 1.0),
    ("pbc", 2, "edema", None, 2.5),
    ("colon", 1, "rx", "differ", 0.0),
    ("colon", 1, "rx", "sex", 1.0),
]


def _rows(name: str, code: int, group: str, strata: str | None, rho: float) -> list:
    from toolkit import rbridge
    from toolkit.rbridge.survival import survdiff
    from toolkit.stats.survival import logrank

    frame = rbridge.dataset(name)
    if name == "colon":
        frame = frame[frame["etype"] == 2]  # deaths
    frame = frame.dropna(subset=[group] if strata is None else [group, strata])
    time = frame["time"].to_numpy(dtype=float)
    event = (frame["status"] == code).to_numpy(dtype=float)
    labels = frame[group]
    if not isinstance(labels.dtype, pd.CategoricalDtype):
        labels = pd.Categorical(labels.astype(str))
    layer = None if strata is None else frame[strata]
    ours = logrank(time, event, labels, strata=layer, rho=rho)
    ref = survdiff(time, event, labels, strata=layer, rho=rho)
    where = f"{name} by {group}" + (f", strata {strata}" if strata else "") + f", rho={rho:g}"
    pairs = [
        ("chi-square", ours.chisq, ref["chisq"], True),
        ("p", ours.p, ref["p"], True),
        ("df", ours.df, ref["df"], False),
        ("observed", ours.observed, ref["observed"], True),
        ("expected", ours.expected, ref["expected"], True),
        ("observed by stratum", ours.observed_strata, ref["observed_strata"], False),
        ("expected by stratum", ours.expected_strata, ref["expected_strata"], False),
        ("variance", ours.variance, ref["variance"], False),
    ]
    return [
        compare(f"stratified log-rank {label}", where, np.asarray(a, float), b, _TOL,
                relative=relative, reference=_REF)
        for label, a, b, relative in pairs
    ]  # fmt: skip


@check("logrank", fast=True)
def logrank_lung_sex_by_institution() -> list:
    return _rows(*_CASES[1])


@check("logrank")
def logrank_all() -> list:
    return [row for case in _CASES for row in _rows(*case)]
