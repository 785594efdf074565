"""Kaplan-Meier curves (survfit) and k-group log-rank tests (survdiff) against
survival 3.5-3 on pbc, lung and veteran."""

from __future__ import annotations

import numpy as np
import pandas as pd

from validation import check, compare

_KM_REF = "survival::survfit 3.5-3 (conf.type='log')"
_LR_REF = "survival::survdiff 3.5-3"
_CURVE_TOL, _CHISQ_TOL = 1e-8, 1e-8

# dataset -> (event code of status, grouping columns for log-rank tests)
_DATASETS = {
    "pbc": (2, ["trt", "edema", "stage"]),
    "lung": (2, ["sex", "ph.ecog"]),
    "veteran": (1, ["trt", "celltype", "prior"]),
}


def _outcome(name: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    from toolkit import rbridge

    frame = rbridge.dataset(name)
    event = (frame["status"] == _DATASETS[name][0]).astype(float).to_numpy()
    return frame, frame["time"].to_numpy(dtype=float), event


def _finite_or_nan(values) -> np.ndarray:
    """Inf (std.err once everyone has died) as NaN, so that Inf matching Inf compares equal."""
    v = np.asarray(values, dtype=float)
    return np.where(np.isinf(v), np.nan, v)


def _km_rows(name: str) -> list:
    from toolkit.rbridge.survival import survfit_km
    from toolkit.stats.survival import kaplan_meier

    _, time, event = _outcome(name)
    ours = kaplan_meier(time, event)
    ref = survfit_km(time, event)
    rows = [
        compare(f"KM {field}", name, _finite_or_nan(getattr(ours, field)),
                _finite_or_nan(ref[field]), _CURVE_TOL, reference=_KM_REF)
        for field in ("time", "n_risk", "n_event", "n_censor", "survival", "std_err",
                      "lower", "upper")
    ]  # fmt: skip
    rows += [
        compare(f"KM {field} (print.survfit)", name, getattr(ours, field), ref[field],
                _CURVE_TOL, reference=_KM_REF)
        for field in ("median", "median_lower", "median_upper")
    ]  # fmt: skip
    return rows


def _logrank_rows(name: str, column: str) -> list:
    from toolkit.rbridge.survival import survdiff
    from toolkit.stats.survival import logrank

    frame, time, event = _outcome(name)
    keep = frame[column].notna().to_numpy()
    group = frame.loc[keep, column]
    if not isinstance(group.dtype, pd.CategoricalDtype):
        group = pd.Categorical(group.astype(str))
    ours = logrank(time[keep], event[keep], group)
    ref = survdiff(time[keep], event[keep], group)
    where = f"{name} by {column}"
    return [
        compare("log-rank chi-square", where, ours.chisq, ref["chisq"], _CHISQ_TOL,
                relative=True, reference=_LR_REF),
        compare("log-rank p", where, ours.p, ref["p"], _CHISQ_TOL, relative=True,
                reference=_LR_REF),
        compare("log-rank expected", where, ours.expected, ref["expected"], _CHISQ_TOL,
                relative=True, reference=_LR_REF),
        compare("log-rank variance", where, ours.variance, ref["variance"], 1e-10,
                reference=_LR_REF),
    ]  # fmt: skip


@check("survival", fast=True)
def kaplan_meier_veteran() -> list:
    return _km_rows("veteran")


@check("survival")
def kaplan_meier_all() -> list:
    return [row for name in _DATASETS for row in _km_rows(name)]


@check("survival", fast=True)
def logrank_veteran_celltype() -> list:
    return _logrank_rows("veteran", "celltype")


@check("survival")
def logrank_all() -> list:
    return [
        row for name, (_, cols) in _DATASETS.items() for c in cols for row in _logrank_rows(name, c)
    ]
