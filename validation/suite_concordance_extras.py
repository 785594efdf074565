"""Stratified and time-weighted C-index (``concordance_fit``): per-stratum counts, the
pooled C, its IJ variance and R's Cox-model cvar, against survival::concordance 3.5-3
on lung, veteran, pbc and colon, for formulas and for coxph fits; and Uno's C and the
cumulative/dynamic AUC with the censoring distribution from a training set
(``uno_ipcw``, ``time_auc_ipcw``) against scikit-survival, which R's survival does not
offer. Registered under the "concordance" suite beside suite_concordance's rows."""

from __future__ import annotations

import numpy as np

from validation import check, compare

_REF = "survival::concordance 3.5-3 (reverse=TRUE, strata(), timewt)"
_REF_COXPH = "survival::concordance(coxph fit) 3.5-3"
_C_TOL, _VAR_TOL = 1e-10, 1e-8
_TIME_WEIGHTS = ("n", "S", "S/G", "n/G2", "I")


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


def _cluster_rows() -> list:
    """The centre as cluster (lung's inst, strata(sex)); colon's recurrence and death rows
    of each patient stratified by event type and clustered by patient."""
    from toolkit import rbridge
    from toolkit.rbridge import concordance as r_concordance
    from toolkit.stats import concordance

    time, event, d = _data("lung", ["age", "sex", "inst"])
    colon = rbridge.dataset("colon").dropna(subset=["nodes"]).reset_index(drop=True)
    cases = [
        ("lung, risk = age, strata(sex), cluster(inst)", time, event, d["age"], d["sex"],
         d["inst"]),
        ("colon (both rows), risk = nodes, strata(etype), cluster(id)", colon["time"],
         colon["status"], colon["nodes"], colon["etype"], colon["id"]),
    ]  # fmt: skip
    out = []
    for label, t, e, risk, layer, group in cases:
        for timewt in ("n", "S/G"):
            fit = concordance.concordance_fit(t, e, risk, strata=layer, timewt=timewt,
                                              cluster=group)  # fmt: skip
            ref = r_concordance.concordance_strata(t, e, risk, layer, timewt=timewt,
                                                   cluster=group)  # fmt: skip
            out += _rows(label, fit, ref, f"{_REF}, cluster", "clustered C")
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
        + _cluster_rows()
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


_REF_SKSURV = "scikit-survival {version}: {function}(survival_train, survival_test, ...)"


def _split(name: str, column: str):
    """A 60/40 training/test split (seeded), the test events inside the training follow-up."""
    time, event, d = _data(name, [column])
    risk = d[column].to_numpy(dtype=float) * (-1.0 if column == "karno" else 1.0)
    train = np.random.default_rng(7).uniform(size=time.size) < 0.6
    test = ~train & (time <= time[train].max())
    return time, event, risk, train, test


def _sksurv_rows(name: str, column: str, tau: float, horizons: list[float]) -> list:
    import sksurv
    from sksurv.metrics import concordance_index_ipcw, cumulative_dynamic_auc
    from sksurv.util import Surv

    from toolkit.stats import concordance, timeauc

    time, event, risk, train, test = _split(name, column)
    y_train = Surv.from_arrays(event[train] == 1, time[train])
    y_test = Surv.from_arrays(event[test] == 1, time[test])
    given = {"train_time": time[train], "train_event": event[train]}
    label = f"{name}, risk = {column}, 60/40 split"
    out = []
    for tol in (1e-8, 0.5):
        where = f"{label}, tau={tau:g}, tied_tol={tol:g}"
        ours = concordance.uno_ipcw(time[test], event[test], risk[test], tau, tied_tol=tol,
                                    **given)  # fmt: skip
        ref = concordance_index_ipcw(y_train, y_test, risk[test], tau, tol)
        reference = _REF_SKSURV.format(version=sksurv.__version__,
                                       function="concordance_index_ipcw")  # fmt: skip
        out += [
            compare("Uno C, training censoring", where, ours.c, ref[0], _C_TOL,
                    reference=reference),
            compare("Uno C, training censoring: pair counts", where,
                    [ours.concordant, ours.discordant, ours.tied_risk, ours.tied_time],
                    np.asarray(ref[1:], dtype=float), 0.0, reference=reference),
        ]  # fmt: skip
        auc = timeauc.time_auc_ipcw(time[test], event[test], risk[test], horizons,
                                    tied_tol=tol, **given)  # fmt: skip
        ref_auc, ref_mean = cumulative_dynamic_auc(y_train, y_test, risk[test], horizons,
                                                   tied_tol=tol)  # fmt: skip
        where = f"{label}, t={'/'.join(f'{h:g}' for h in horizons)}, tied_tol={tol:g}"
        reference = _REF_SKSURV.format(version=sksurv.__version__,
                                       function="cumulative_dynamic_auc")  # fmt: skip
        out += [
            compare("AUC(t), training censoring", where, auc.auc, ref_auc, _C_TOL,
                    reference=reference),
            compare("mean AUC, training censoring", where, auc.mean_auc, ref_mean, _C_TOL,
                    reference=reference),
        ]  # fmt: skip
    return out


@check("concordance", fast=True)
def training_censoring_pbc():
    """Uno's C and the cumulative/dynamic AUC with G from a training set (not R's)."""
    return _sksurv_rows("pbc", "bili", 3000.0, [1000.0, 2000.0, 3000.0])


@check("concordance")
def training_censoring_lung_veteran_colon():
    return (
        _sksurv_rows("lung", "ph.ecog", 500.0, [180.0, 365.0, 500.0])
        + _sksurv_rows("veteran", "karno", 200.0, [30.0, 90.0, 180.0])
        + _sksurv_rows("colon", "nodes", 2000.0, [365.0, 1000.0, 2000.0])
    )
