"""Bootstrap validation of a Cox model against rms::validate 6.5-0 on pbc, lung and veteran:
index.orig and the averaged training, test, optimism and corrected columns of Dxy, R2,
Slope, D, U, Q and g, on the resamples that validate draws after set.seed (R draws them,
sigkit is run on the same ones)."""

from __future__ import annotations

import numpy as np

from validation import check, compare

_REF = "rms::validate(cph(...), B = 200) 6.5-0, R's resamples"
_TOL = 1e-8
_B, _SEED = 200, 20261204

# dataset -> (event code of status, covariates; pbc's bili enters as log(bili))
_MODELS = {
    "pbc": (2, ["age", "bili", "albumin", "edema", "protime"]),
    "lung": (2, ["age", "sex", "ph.ecog", "wt.loss"]),
    "veteran": (1, ["karno", "age", "diagtime", "prior"]),
}


def _data(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from toolkit import rbridge

    code, covariates = _MODELS[name]
    frame = rbridge.dataset(name)[["time", "status", *covariates]].dropna()
    if name == "pbc":
        frame["bili"] = np.log(frame["bili"])
    event = (frame["status"] == code).astype(float).to_numpy()
    return frame[covariates].to_numpy(dtype=float), frame["time"].to_numpy(dtype=float), event


def _rows(name: str) -> list:
    from toolkit.rbridge.validate import rms_validate
    from toolkit.stats.validate import COLUMNS, validate_cox

    x, time, event = _data(name)
    ref = rms_validate(x, time, event, B=_B, seed=_SEED)
    ours = validate_cox(x, time, event, resamples=ref["resamples"])
    rows = [
        compare(f"rms::validate {column}", name, ours.table[column], ref["table"][column],
                0 if column == "n" else _TOL, reference=_REF)
        for column in COLUMNS
    ]  # fmt: skip
    rows.append(compare("cph coefficients (eps 1e-4)", name, ours.coef, ref["coef"], 1e-10,
                        relative=True, reference="rms::cph 6.5-0"))  # fmt: skip
    return rows


@check("validate", fast=True)
def validate_pbc() -> list:
    return _rows("pbc")


@check("validate")
def validate_lung_veteran() -> list:
    return [row for name in ("lung", "veteran") for row in _rows(name)]
