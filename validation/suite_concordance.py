"""C-index (Harrell, Uno), its IJ standard error and the comparison test against
survival::concordance 3.5-3 on pbc, lung, veteran and colon."""

from __future__ import annotations

import numpy as np
import pandas as pd

from validation import check, compare

_REF = "survival::concordance 3.5-3 (reverse=TRUE)"
_C_TOL, _SE_TOL, _TEST_TOL = 1e-10, 1e-8, 1e-6


def _data(name: str, columns: list[str]) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Complete cases of a survival dataset: time, event (death), the columns."""
    from toolkit import rbridge

    frame = rbridge.dataset(name)
    if name == "colon":
        frame = frame[frame["etype"] == 2]
    frame = frame[["time", "status", *columns]].dropna().reset_index(drop=True)
    death = {"pbc": 2, "lung": 2, "veteran": 1, "colon": 1}[name]
    event = (frame["status"] == death).astype(float).to_numpy()
    return frame["time"].to_numpy(dtype=float), event, frame


def _counts(fit) -> np.ndarray:
    return np.array([fit.concordant, fit.discordant, fit.tied_risk, fit.tied_time, fit.tied_both])


def _harrell_rows(label: str, time, event, risk, weights=None) -> list:
    from toolkit.rbridge import concordance as r_concordance
    from toolkit.stats import concordance

    ours = concordance.harrell(time, event, risk, weights=weights)
    ref = r_concordance.concordance(time, event, risk, weights=weights)
    return [
        compare("Harrell C", label, ours.c, ref["c"], _C_TOL, reference=_REF),
        compare("Harrell C: IJ SE", label, ours.se, np.sqrt(ref["var"]), _SE_TOL, reference=_REF),
        compare("Harrell C: pair counts", label, _counts(ours), ref["count"], 1e-10,
                relative=True, floor=1.0, reference=_REF),
    ]  # fmt: skip


def _uno_rows(label: str, time, event, risk, tau) -> list:
    from toolkit.rbridge import concordance as r_concordance
    from toolkit.stats import concordance

    ours = concordance.uno(time, event, risk, tau)
    ref = r_concordance.concordance(time, event, risk, timewt="n/G2", ymax=tau)
    where = f"{label}, tau={tau:g}" if tau is not None else f"{label}, no tau"
    ref_name = f"{_REF}, timewt='n/G2', ymax=tau"
    return [
        compare("Uno C", where, ours.c, ref["c"], _C_TOL, reference=ref_name),
        compare("Uno C: IJ SE", where, ours.se, np.sqrt(ref["var"]), _SE_TOL, reference=ref_name),
    ]  # fmt: skip


def _compare_rows(label: str, time, event, xa, xb) -> list:
    from toolkit.rbridge import concordance as r_concordance
    from toolkit.stats import concordance

    ref = r_concordance.compare_coxph(time, event, xa, xb)
    ours = concordance.compare(time, event, ref["lp_a"], ref["lp_b"])
    name = "concordance(fit_a, fit_b), contrast c(1, -1)"
    return [
        compare("C comparison: C of both models", label, [ours.c_a, ours.c_b], ref["c"],
                _C_TOL, reference=name),
        compare("C comparison: SE of the difference", label, ours.se_diff, ref["se"], _SE_TOL,
                reference=name),
        compare("C comparison: z", label, ours.z, ref["z"], _TEST_TOL, reference=name),
        compare("C comparison: p", label, ours.p, ref["p"], _TEST_TOL, reference=name),
    ]  # fmt: skip


@check("concordance", fast=True)
def harrell_pbc():
    """Continuous (bili) and heavily tied (edema, stage) risks; pbc has tied times."""
    time, event, d = _data("pbc", ["bili", "edema", "stage"])
    out = []
    for column in ("bili", "edema", "stage"):
        out += _harrell_rows(f"pbc, risk = {column}", time, event, d[column].to_numpy())
    return out


@check("concordance")
def harrell_lung_veteran_colon():
    out = []
    time, event, d = _data("lung", ["age", "ph.ecog", "wt.loss"])
    for column in ("age", "ph.ecog", "wt.loss"):
        out += _harrell_rows(f"lung, risk = {column}", time, event, d[column].to_numpy())
    time, event, d = _data("veteran", ["karno", "age", "diagtime"])
    out += _harrell_rows("veteran, risk = -karno", time, event, -d["karno"].to_numpy())
    out += _harrell_rows("veteran, risk = age", time, event, d["age"].to_numpy())
    time, event, d = _data("colon", ["nodes", "extent", "age"])
    for column in ("nodes", "extent", "age"):
        out += _harrell_rows(f"colon (death), risk = {column}", time, event, d[column].to_numpy())
    return out


@check("concordance")
def harrell_weighted_and_nearly_tied_times():
    """Case weights; and times 1e-10 apart, which R's aeqSurv merges (timefix)."""
    time, event, d = _data("pbc", ["bili", "stage"])
    weights = np.random.default_rng(2026).uniform(0.5, 2.0, size=time.size)
    out = _harrell_rows("pbc, risk = bili, case weights", time, event, d["bili"].to_numpy(),
                        weights)  # fmt: skip
    jitter = np.where(np.arange(time.size) % 2 == 0, 0.0, 1e-10 * time)
    out += _harrell_rows("pbc (times jittered 1e-10), risk = stage", time + jitter, event,
                         d["stage"].to_numpy())  # fmt: skip
    return out


@check("concordance", fast=True)
def uno_pbc():
    time, event, d = _data("pbc", ["bili", "edema"])
    out = []
    for tau in (None, 2000.0, 3650.0):
        out += _uno_rows("pbc, risk = bili", time, event, d["bili"].to_numpy(), tau)
    out += _uno_rows("pbc, risk = edema", time, event, d["edema"].to_numpy(), 3650.0)
    return out


@check("concordance")
def uno_lung_veteran_colon():
    out = []
    time, event, d = _data("lung", ["ph.ecog", "age"])
    out += _uno_rows("lung, risk = ph.ecog", time, event, d["ph.ecog"].to_numpy(), 500.0)
    out += _uno_rows("lung, risk = age", time, event, d["age"].to_numpy(), None)
    time, event, d = _data("veteran", ["karno"])
    out += _uno_rows("veteran, risk = -karno", time, event, -d["karno"].to_numpy(), 200.0)
    time, event, d = _data("colon", ["nodes"])
    out += _uno_rows("colon (death), risk = nodes", time, event, d["nodes"].to_numpy(), 2000.0)
    return out


@check("concordance", fast=True)
def compare_pbc():
    """Clinical-style vs extended coxph model, as the study's integrated-vs-clinical test."""
    time, event, d = _data("pbc", ["age", "bili", "albumin", "edema", "stage", "protime"])
    clinical = d[["age", "edema", "stage"]].to_numpy()
    integrated = d[["age", "edema", "stage", "bili", "albumin", "protime"]].to_numpy()
    return _compare_rows("pbc, coxph(age+edema+stage) vs +bili+albumin+protime", time, event,
                         clinical, integrated)  # fmt: skip


@check("concordance")
def compare_lung_veteran_colon():
    out = []
    time, event, d = _data("lung", ["age", "sex", "ph.ecog", "ph.karno"])
    out += _compare_rows("lung, coxph(age+sex) vs +ph.ecog+ph.karno", time, event,
                         d[["age", "sex"]].to_numpy(),
                         d[["age", "sex", "ph.ecog", "ph.karno"]].to_numpy())  # fmt: skip
    time, event, d = _data("veteran", ["trt", "karno", "age", "diagtime"])
    out += _compare_rows("veteran, coxph(trt+age) vs coxph(karno+diagtime)", time, event,
                         d[["trt", "age"]].to_numpy(),
                         d[["karno", "diagtime"]].to_numpy())  # fmt: skip
    time, event, d = _data("colon", ["nodes", "extent", "age", "rx"])
    rx = pd.get_dummies(d["rx"], drop_first=True).to_numpy(dtype=float)
    base = np.column_stack([d["age"].to_numpy(), rx])
    extended = np.column_stack([base, d[["nodes", "extent"]].to_numpy()])
    out += _compare_rows("colon (death), coxph(age+rx) vs +nodes+extent", time, event, base,
                         extended)  # fmt: skip
    return out
