"""Kaplan-Meier and concordance on counting-process (start, stop] data against survival
3.5-3 on heart (jasa1: transplant as a time-varying covariate) and cgd (recurrent
infections): ``survfit(Surv(start, stop, event) ~ 1)`` with case weights, both hazards,
log-log and plain limits, the modified lower limit and the row-clustered influence; and
``concordance(Surv(start, stop, event) ~ x)`` with strata, cluster = id, case weights and
ymax (C, counts, var, cvar)."""

from __future__ import annotations

import numpy as np

from validation import check, compare

_REF_CURVE = "survival::survfit 3.5-3 on Surv(start, stop, event)"
_REF_C = "survival::concordance 3.5-3 on Surv(start, stop, event), reverse = TRUE"
_TOL = 1e-10

_CURVES = [
    ("heart", None, {}),
    ("heart", "fraction", {"ctype": 2, "conf_type": "log-log", "conf_lower": "modified"}),
    ("heart", None, {"stype": 2, "ctype": 2, "influence": True}),
    ("cgd", None, {"conf_type": "plain"}),
    ("cgd", "fraction", {"stype": 2, "conf_lower": "peto"}),
    ("cgd", None, {"influence": True}),
]
_CONCORDANCES = [
    ("heart", "age", {}),
    ("heart", "transplant", {"cluster": "id"}),
    ("heart", "age", {"strata": "surgery", "cluster": "id", "ymax": 300.0}),
    ("cgd", "age", {"strata": "center", "cluster": "id"}),
    ("cgd", "treat", {"weights": "fraction"}),
]


def _data(name: str) -> dict[str, np.ndarray]:
    from toolkit import rbridge

    frame = rbridge.dataset(name)
    if name == "heart":
        return {
            "start": frame["start"].to_numpy(float),
            "stop": frame["stop"].to_numpy(float),
            "event": frame["event"].to_numpy(float),
            "age": frame["age"].to_numpy(float),
            "transplant": frame["transplant"].astype(str).astype(float).to_numpy(),
            "surgery": frame["surgery"].to_numpy(float),
            "id": frame["id"].to_numpy(),
        }
    return {
        "start": frame["tstart"].to_numpy(float),
        "stop": frame["tstop"].to_numpy(float),
        "event": frame["status"].to_numpy(float),
        "age": frame["age"].to_numpy(float),
        "treat": (frame["treat"].astype(str) == "rIFN-g").to_numpy(float),
        "center": frame["center"].astype(str).to_numpy(),
        "id": frame["id"].to_numpy(),
    }


def _fraction(n: int) -> np.ndarray:
    """Non-integer case weights (so survfit takes the robust variance)."""
    return 0.5 + (np.arange(n) % 7) / 4


def _finite_or_nan(values) -> np.ndarray:
    """Inf (Greenwood once everyone has died) as NaN, so that Inf matching Inf compares equal."""
    v = np.asarray(values, dtype=float)
    return np.where(np.isinf(v), np.nan, v)


def _curve_rows(name: str, weights: str | None, options: dict) -> list:
    from toolkit.rbridge.startstop import survfit_counting
    from toolkit.stats.survfit import survfit

    d = _data(name)
    w = None if weights is None else _fraction(d["stop"].size)
    ours = survfit(d["stop"], d["event"], w, entry=d["start"], **options)
    ref = survfit_counting(d["start"], d["stop"], d["event"], w, **options)
    where = f"{name} (start, stop]{', fractional weights' if weights else ''}" + "".join(
        f", {k}={v}" for k, v in options.items()
    )
    fields = ["n_risk", "n_event", "n_censor", "survival", "std_err", "cumhaz", "std_chaz"]
    pairs = [(f, getattr(ours, f), ref[f]) for f in [*fields, "lower", "upper"]]
    if options.get("influence"):
        pairs += [
            ("influence.surv", ours.influence_surv, ref["influence_surv"]),
            ("influence.chaz", ours.influence_chaz, ref["influence_chaz"]),
        ]
    return [
        compare(f"survfit (start, stop] {label}", where, _finite_or_nan(a), _finite_or_nan(b),
                _TOL, relative=True, floor=1.0, reference=_REF_CURVE)
        for label, a, b in pairs
    ]  # fmt: skip


def _concordance_rows(name: str, column: str, options: dict) -> list:
    from toolkit.rbridge.startstop import concordance_counting
    from toolkit.stats.concordance import concordance_fit

    d = _data(name)
    kwargs = {key: d[options[key]] for key in ("strata", "cluster") if key in options}
    if "ymax" in options:
        kwargs["ymax"] = options["ymax"]
    if "weights" in options:
        kwargs["weights"] = _fraction(d["stop"].size)
    ours = concordance_fit(d["stop"], d["event"], d[column], entry=d["start"], **kwargs)
    ref = concordance_counting(d["start"], d["stop"], d["event"], d[column], **kwargs)
    where = f"{name} (start, stop] ~ {column}" + "".join(f", {k}={v}" for k, v in options.items())
    counts = [[s.concordant, s.discordant, s.tied_risk, s.tied_time, s.tied_both]
              for s in ours.strata]  # fmt: skip
    pairs = [
        ("C", ours.concordance.c, ref["c"]),
        ("counts", np.asarray(counts), ref["count"]),
        ("var", ours.concordance.variance, ref["var"]),
        ("cvar", ours.cvar, ref["cvar"]),
    ]
    return [
        compare(f"concordance (start, stop] {label}", where, a, b, _TOL, relative=True,
                floor=1.0, reference=_REF_C)
        for label, a, b in pairs
    ]  # fmt: skip


@check("startstop", fast=True)
def startstop_heart() -> list:
    return _curve_rows(*_CURVES[1]) + _concordance_rows(*_CONCORDANCES[2])


@check("startstop")
def startstop_all() -> list:
    return [row for case in _CURVES for row in _curve_rows(*case)] + [
        row for case in _CONCORDANCES for row in _concordance_rows(*case)
    ]
