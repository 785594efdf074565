"""The Cox model's extensions against survival 3.5-3's coxph: the clustered robust
variance (rats by litter, lung by institution)."""

from __future__ import annotations

import numpy as np

from validation import check, compare

_REF = "survival::coxph 3.5-3"
_TOL = 1e-8


def _fit_rows(label: str, fit, ref) -> list:
    from toolkit.stats.cox_residuals import global_tests

    tests = global_tests(fit)
    rows = [
        ("coefficients", fit.coef, ref["coef"]),
        ("variance", fit.variance, ref["var"]),
        ("naive variance", fit.naive_variance, ref["naive_var"]),
        ("log-likelihood", fit.loglik, ref["loglik"][1]),
        ("Wald test chisq", tests.wald.statistic, ref["wald_test"][0]),
    ]
    if fit.robust:
        rows += [
            ("robust se", fit.se, ref["table"][:, 3]),
            ("robust score test chisq", tests.robust_score.statistic, ref["robscore"][0]),
        ]
    return [
        compare(name, label, ours, theirs, _TOL, relative=True, reference=_REF)
        for name, ours, theirs in rows
    ]


@check("cox_extensions", fast=True)
def clustered_variance_rats_lung():
    from toolkit import rbridge
    from toolkit.rbridge.cox_extensions import coxph
    from toolkit.stats import cox

    rats = rbridge.dataset("rats")
    x = np.c_[rats["rx"], (rats["sex"] == "f").astype(float)]
    time, event = rats["time"].to_numpy(float), rats["status"].to_numpy(float)
    rows = []
    for ties in ("efron", "breslow"):
        fit = cox.fit(x, time, event, ties=ties, cluster=rats["litter"])
        ref = coxph(x, time, event, cluster=rats["litter"], ties=ties)
        rows += _fit_rows(f"rats, cluster litter, {ties}", fit, ref)
    lung = rbridge.dataset("lung").dropna(subset=["inst", "ph.ecog"]).reset_index(drop=True)
    x = lung[["age", "sex", "ph.ecog"]].to_numpy(float)
    time, event = lung["time"].to_numpy(float), (lung["status"] == 2).to_numpy(float)
    fit = cox.fit(x, time, event, cluster=lung["inst"])
    rows += _fit_rows("lung, cluster inst", fit, coxph(x, time, event, cluster=lung["inst"]))
    return rows
