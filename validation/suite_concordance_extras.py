"""Stratified and time-weighted C-index (``concordance_fit``): per-stratum counts, the
pooled C, its IJ variance and R's Cox-model cvar, against survival::concordance 3.5-3
on lung, veteran, pbc and colon, for formulas and for coxph fits. Registered under the
"concordance" suite beside suite_concordance's Harrell/Uno/comparison rows."""

from __future__ import annotations

import numpy as np

from validation import check, compare

_REF = "survival::concordance 3.5-3 (reverse=TRUE, strata(), timewt)"
_REF_COXPH = "survival::concordance(coxph fit) 3.5-3"
_C_TOL, _VAR_TOL = 1e-10, 1e-8
_TIME_WEIGHTS = ("n", "S", "S/G", "n/G2")


def _data(name: str, columns: list[str]):
    """Complete cases of a survival dataset: time, event (death), the frame."""
    from toolkit import rbridge

    frame = rbridge.dataset(name)
    if name == "colon":
        frame = frame[frame["etype"] == 2]
    frame = frame[["time", "status", *columns]].dropna().reset_index(drop=True)
    death = {"pbc": 2, "lung": 2, "veteran": 1, "colon": 1}[name]
    event = (frame["status"] == death).astype(float).to_numpy()
    return frame["time"].to_numpy(dtype=float), event, frame


def _counts(fit) -> np.ndarray:
    return np.array(
        [[s.concordant, s.discordant, s.tied_risk, s.tied_time, s.tied_both] for s in fit.strata]
    )


def _rows(label: str, fit, ref, reference: str, prefix: str = "C") -> list:
    name = f"{prefix}, timewt={fit.timewt!r}"
    return [
        compare(f"{name}: pooled C", label, fit.concordance.c, ref["c"], _C_TOL,
                reference=reference),
        compare(f"{name}: IJ variance", label, fit.concordance.variance, ref["var"], _VAR_TOL,
                reference=reference),
        compare(f"{name}: cvar (Cox variance)", label, fit.cvar, ref["cvar"], _VAR_TOL,
                reference=reference),
        compare(f"{name}: counts per stratum", label, _counts(fit), ref["count"], 1e-10,
                relative=True, floor=1.0, reference=reference),
    ]  # fmt: skip


def _stratified_rows(name: str, column: str, stratum: str, weighted: bool = False, ymax=None):
    from toolkit.rbridge import concordance as r_concordance
    from toolkit.stats import concordance

    time, event, d = _data(name, [column, stratum])
    risk = d[column].to_numpy(dtype=float)
    weights = np.random.default_rng(2026).uniform(0.5, 2.0, time.size) if weighted else None
    label = f"{name}, risk = {column}, strata({stratum})"
    label += ", case weights" if weighted else ""
    label += f", ymax={ymax:g}" if ymax is not None else ""
    out = []
    for timewt in _TIME_WEIGHTS:
        fit = concordance.concordance_fit(
            time, event, risk, strata=d[stratum], weights=weights, timewt=timewt, ymax=ymax
        )
        ref = r_concordance.concordance_strata(
            time, event, risk, d[stratum], weights=weights, timewt=timewt, ymax=ymax
        )
        out += _rows(label, fit, ref, _REF, "stratified C")
    return out


def _coxph_rows(name: str, columns: list[str], stratum: str | None) -> list:
    from toolkit.rbridge import concordance as r_concordance
    from toolkit.stats import concordance

    time, event, d = _data(name, columns + ([stratum] if stratum else []))
    layer = None if stratum is None else d[stratum]
    label = f"{name}, coxph(~{'+'.join(columns)}" + (f"+strata({stratum}))" if stratum else ")")
    out = []
    for timewt in ("n", "n/G2"):
        ref = r_concordance.concordance_coxph(
            time, event, d[columns].to_numpy(dtype=float), layer, timewt=timewt
        )
        fit = concordance.concordance_fit(time, event, ref["lp"], strata=layer, timewt=timewt)
        out += _rows(label, fit, ref, _REF_COXPH, "C of a coxph fit")
    return out


@check("concordance", fast=True)
def stratified_time_weights_lung():
    return _stratified_rows("lung", "age", "sex") + _stratified_rows("lung", "ph.ecog", "inst")


@check("concordance")
def stratified_time_weights_veteran_pbc_colon():
    return (
        _stratified_rows("veteran", "karno", "celltype")
        + _stratified_rows("pbc", "bili", "edema")
        + _stratified_rows("pbc", "albumin", "stage", weighted=True, ymax=3000.0)
        + _stratified_rows("colon", "nodes", "rx")
        + _stratified_rows("colon", "age", "sex", weighted=True, ymax=2000.0)
    )


@check("concordance", fast=True)
def coxph_var_and_cvar_pbc():
    return _coxph_rows("pbc", ["age", "edema", "bili", "albumin"], None)


@check("concordance")
def coxph_var_and_cvar_lung_veteran_colon():
    return (
        _coxph_rows("lung", ["age", "ph.ecog"], "sex")
        + _coxph_rows("veteran", ["karno", "age", "diagtime"], "celltype")
        + _coxph_rows("colon", ["age", "nodes", "extent"], "rx")
    )
