"""Calibration slope (coxph on the linear predictor, with confint) and calibration-in-the-large
(Kaplan-Meier observed over mean predicted risk, with the KM interval) against survival 3.5-3,
for Cox models fitted on two thirds of pbc, lung and veteran and assessed on the last third."""

from __future__ import annotations

import numpy as np

from validation import check, compare

_REF = "survival::coxph / survfit 3.5-3"
_TOL = 1e-8


def _split(name: str):
    """Test-third time, event, linear predictor, predicted survival and horizons."""
    from toolkit import rbridge
    from toolkit.stats import cox

    d = rbridge.dataset(name)
    if name == "pbc":
        d = d.dropna(subset=["bili", "albumin", "age"]).reset_index(drop=True)
        x = np.column_stack([np.log(d["bili"]), d["albumin"], d["age"]])
        event = d["status"] == 2
    elif name == "lung":
        d = d.dropna(subset=["ph.ecog"]).reset_index(drop=True)
        x, event = d[["ph.ecog", "age", "sex"]], d["status"] == 2
    else:
        x, event = d[["karno", "age"]], d["status"]
    t, e, x = d["time"].to_numpy(float), np.asarray(event, float), np.asarray(x, float)
    train = np.arange(len(t)) < 2 * len(t) // 3
    fit = cox.fit(x[train], t[train], e[train])
    t, e, x = t[~train], e[~train], x[~train]
    times = np.quantile(t[e == 1], [0.25, 0.5, 0.75])
    return t, e, fit.predict_linear(x), fit.predict_survival(x, times), times


def _rows(name: str) -> list:
    from toolkit.rbridge import calibration as rcalibration
    from toolkit.stats.calibration import calibration_in_the_large, calibration_slope

    t, e, lp, s, times = _split(name)
    ref = rcalibration.slope_and_large(t, e, lp, s, times)
    slope = calibration_slope(t, e, lp)
    large = calibration_in_the_large(t, e, s, times)
    rows = [
        ("calibration slope", slope.slope, ref["slope"]),
        ("calibration slope SE", slope.se, ref["se"]),
        ("calibration slope CI", [slope.lower, slope.upper], [ref["lower"], ref["upper"]]),
        ("observed risk (1 - KM)", large.observed, ref["observed"]),
        (
            "observed risk CI",
            [large.observed_lower, large.observed_upper],
            [ref["observed_lower"], ref["observed_upper"]],
        ),
        ("expected risk (mean predicted)", large.expected, ref["expected"]),
        ("observed / expected", large.ratio, ref["observed"] / ref["expected"]),
    ]
    return [compare(s, name, o, r, _TOL, reference=_REF) for s, o, r in rows]


@check("calibration", fast=True)
def slope_and_in_the_large_pbc():
    return _rows("pbc")


@check("calibration")
def slope_and_in_the_large_lung_veteran():
    return [*_rows("lung"), *_rows("veteran")]
