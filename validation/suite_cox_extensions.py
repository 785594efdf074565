"""The Cox model's extensions against survival 3.5-3's coxph: the clustered robust
variance (rats by litter, lung by institution), (start, stop] data (heart, the jasa1
form; cgd's recurrent infections by patient), offsets (heart, lung) and the exact
partial likelihood of tied events (veteran in days, and in months: 41 deaths at a time)."""

from __future__ import annotations

import numpy as np

from validation import check, compare

_REF = "survival::coxph 3.5-3"
_TOL = 1e-8


def _fit_rows(label: str, fit, ref) -> list:
    from toolkit.stats.cox_residuals import global_tests, residuals

    tests, base = global_tests(fit), fit.baseline_cumulative_hazard
    rows = [
        ("coefficients", fit.coef, ref["coef"]),
        ("variance", fit.variance, ref["var"]),
        ("naive variance", fit.naive_variance, ref["naive_var"]),
        ("log-likelihood", fit.loglik, ref["loglik"][1]),
        ("Wald test chisq", tests.wald.statistic, ref["wald_test"][0]),
        ("score test chisq", tests.score.statistic, ref["sctest"][0]),
        ("basehaz (centered = FALSE)", base["hazard"].to_numpy(), ref["base_hazard"]),
        ("martingale residuals", residuals(fit, "martingale").values, ref["martingale"]),
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


@check("cox_extensions", fast=True)
def counting_process_heart_cgd():
    from toolkit import rbridge
    from toolkit.rbridge.cox_extensions import coxph
    from toolkit.stats import cox

    heart = rbridge.dataset("heart")
    x = np.c_[heart[["age", "year", "surgery"]], heart["transplant"].astype(str).astype(float)]
    start, stop, event = (heart[c].to_numpy(float) for c in ("start", "stop", "event"))
    rows = []
    for ties in ("efron", "breslow"):
        fit = cox.fit(x, stop, event, entry=start, id=heart["id"], ties=ties)
        ref = coxph(x, stop, event, entry=start, id=heart["id"], ties=ties)
        rows += _fit_rows(f"heart (start, stop], {ties}", fit, ref)
    cgd = rbridge.dataset("cgd")
    x = np.c_[cgd["treat"].astype(str) == "rIFN-g", cgd["age"],
              cgd["inherit"].astype(str) == "autosomal", cgd["steroids"]].astype(float)  # fmt: skip
    start, stop, event = (cgd[c].to_numpy(float) for c in ("tstart", "tstop", "status"))
    fit = cox.fit(x, stop, event, entry=start, cluster=cgd["id"])
    ref = coxph(x, stop, event, entry=start, cluster=cgd["id"])
    return rows + _fit_rows("cgd (start, stop], cluster id", fit, ref)


@check("cox_extensions")
def offsets_heart_lung():
    from toolkit import rbridge
    from toolkit.rbridge.cox_extensions import coxph
    from toolkit.stats import cox

    heart = rbridge.dataset("heart")
    x = heart[["age", "year", "surgery"]].to_numpy(float)
    start, stop, event = (heart[c].to_numpy(float) for c in ("start", "stop", "event"))
    offset = 0.2 * np.sin(np.arange(len(stop)))
    fit = cox.fit(x, stop, event, entry=start, offset=offset)
    rows = _fit_rows("heart, offset", fit, coxph(x, stop, event, entry=start, offset=offset))
    lung = rbridge.dataset("lung").dropna(subset=["ph.ecog"]).reset_index(drop=True)
    x, offset = lung[["age", "ph.ecog"]].to_numpy(float), 0.3 * lung["sex"].to_numpy(float)
    time, event = lung["time"].to_numpy(float), (lung["status"] == 2).to_numpy(float)
    fit = cox.fit(x, time, event, offset=offset)
    return rows + _fit_rows("lung, offset 0.3 sex", fit, coxph(x, time, event, offset=offset))


@check("cox_extensions", fast=True)
def exact_ties_veteran():
    from toolkit import rbridge
    from toolkit.rbridge.cox_extensions import coxph
    from toolkit.stats import cox

    veteran = rbridge.dataset("veteran")
    x = veteran[["karno", "age", "diagtime", "prior"]].to_numpy(float)
    event = veteran["status"].to_numpy(float)
    rows = []
    for unit, time in (("days", veteran["time"].to_numpy(float)),
                       ("months", np.ceil(veteran["time"].to_numpy(float) / 30))):  # fmt: skip
        fit = cox.fit(x, time, event, ties="exact")
        rows += _fit_rows(f"veteran ({unit}), ties exact", fit, coxph(x, time, event, ties="exact"))
    return rows
