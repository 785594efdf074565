"""Survival curves beyond the plain Kaplan-Meier against survival::survfit 3.5-3 on lung,
veteran, pbc and colon: case weights (integer, and non-integer with the robust variance),
Nelson-Aalen and Fleming-Harrington hazards with std.chaz, stype=2, log-log and plain
limits, conf.lower="modified", the infinitesimal-jackknife influence and robust SE, and
quantile.survfit's quantiles with their CI."""

from __future__ import annotations

import numpy as np

from validation import check, compare

_REF = "survival::survfit 3.5-3 + quantile.survfit"
_TOL = 1e-10
_PROBS = (0.25, 0.5, 0.75)
_EVENT = {"pbc": 2, "lung": 2, "veteran": 1, "colon": 1}

# (dataset, weights, options)
_CASES = [
    ("veteran", None, {"ctype": 2, "conf_type": "log-log", "conf_lower": "modified"}),
    ("veteran", None, {"stype": 2, "conf_type": "plain"}),
    ("lung", "integer", {"ctype": 2, "conf_type": "log-log"}),
    ("lung", "fraction", {"conf_type": "log-log"}),
    ("pbc", "integer", {"stype": 2, "ctype": 2, "conf_lower": "modified"}),
    ("pbc", "fraction", {"conf_type": "plain", "conf_level": 0.9}),
    ("colon", None, {"ctype": 2, "conf_type": "log-log", "conf_lower": "modified"}),
    ("colon", "fraction", {"conf_type": "plain", "conf_lower": "modified"}),
    ("veteran", None, {"ctype": 2, "influence": True}),
    ("lung", "fraction", {"stype": 2, "influence": True}),
    ("pbc", "integer", {"robust": True, "conf_type": "log-log"}),
]


def _finite_or_nan(values) -> np.ndarray:
    """Inf (Greenwood once everyone has died) as NaN, so that Inf matching Inf compares equal."""
    v = np.asarray(values, dtype=float)
    return np.where(np.isinf(v), np.nan, v)


def _rows(name: str, weights: str | None, options: dict) -> list:
    from toolkit import rbridge
    from toolkit.rbridge.survival import survfit_curve
    from toolkit.stats.survfit import survfit

    frame = rbridge.dataset(name)
    if name == "colon":
        frame = frame[frame["etype"] == 2]  # deaths
    time = frame["time"].to_numpy(dtype=float)
    event = (frame["status"] == _EVENT[name]).to_numpy(dtype=float)
    w = {
        None: None,
        "integer": 1.0 + np.arange(len(frame)) % 3,
        "fraction": frame["age"].fillna(60).to_numpy(dtype=float) / 60,
    }[weights]
    ours = survfit(time, event, w, **options)
    ref = survfit_curve(time, event, w, probs=_PROBS, **options)
    q = ours.quantile(_PROBS)
    where = f"{name}{', ' + weights + ' weights' if weights else ''}, " + ", ".join(
        f"{k}={v}" for k, v in options.items()
    )
    pairs = [(field, getattr(ours, field), ref[field]) for field in (
        "n_risk", "n_event", "n_censor", "survival", "std_err", "cumhaz", "std_chaz", "lower",
        "upper")]  # fmt: skip
    pairs += [
        ("quantile", q.quantile, ref["quantile"]),
        ("quantile lower", q.lower, ref["quantile_lower"]),
        ("quantile upper", q.upper, ref["quantile_upper"]),
    ]
    if options.get("influence"):
        pairs += [
            ("influence.surv", ours.influence_surv, ref["influence_surv"]),
            ("influence.chaz", ours.influence_chaz, ref["influence_chaz"]),
        ]
    return [
        compare(f"survfit {label}", where, _finite_or_nan(a), _finite_or_nan(b), _TOL,
                reference=_REF)
        for label, a, b in pairs
    ]  # fmt: skip


@check("survfit", fast=True)
def survfit_lung_fractional_weights() -> list:
    return _rows(*_CASES[3])


@check("survfit")
def survfit_all() -> list:
    return [row for case in _CASES for row in _rows(*case)]
