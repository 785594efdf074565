"""Decision curves against dcurves 1.1.7 (Python, PyPI: ``dcurves.dca`` with a survival outcome)
on lung and pbc: the net benefit of a Cox model's predicted risk and of a coarse copy of it
(ties with the thresholds, risks of exactly 0 and 1), treat all, and the net interventions
avoided per 100 patients, on dcurves' threshold grid 0, 0.01, ..., 0.99."""

from __future__ import annotations

import numpy as np

from validation import check, compare

_REF = "dcurves 1.1.7 (Python; dca(..., time=, time_to_outcome_col=, nper=100))"
_TOL = 1e-10


def _data(name: str):
    """Time, event and a Cox model's predicted risk of death by the horizon.

    lung at the 90th percentile of its death times, pbc at its median death time
    (an event time): both leave the treated patients' follow-up short of the
    horizon at some thresholds, where the net benefit is undefined on both sides.
    """
    from toolkit import rbridge
    from toolkit.stats import cox

    d = rbridge.dataset(name)
    if name == "lung":
        d = d.dropna(subset=["ph.ecog"]).reset_index(drop=True)
        x = d[["ph.ecog", "age", "sex"]].to_numpy(float)
    else:
        d = d.dropna(subset=["bili", "albumin", "age"]).reset_index(drop=True)
        x = np.column_stack([np.log(d["bili"]), d["albumin"], d["age"]])
    t, e = d["time"].to_numpy(float), (d["status"] == 2).to_numpy(float)
    deaths = np.sort(t[e == 1])
    horizon = float(np.quantile(deaths, 0.9) if name == "lung" else deaths[len(deaths) // 2])
    risk = 1 - cox.fit(x, t, e).predict_survival(x, [horizon])[:, 0]
    return t, e, horizon, risk


def _coarse(risk: np.ndarray) -> np.ndarray:
    """Rounded to 0.01, the lowest tenth set to 0 and the highest twentieth to 1."""
    out = np.round(risk, 2)
    out[risk <= np.quantile(risk, 0.1)] = 0.0
    out[risk >= np.quantile(risk, 0.95)] = 1.0
    return out


def _rows(name: str) -> list:
    import dcurves
    import pandas as pd

    from toolkit.stats.decision import DCURVES_THRESHOLDS, decision_curve

    t, e, horizon, risk = _data(name)
    risks = {"model": risk, "coarse": _coarse(risk)}
    ref = dcurves.dca(
        data=pd.DataFrame({"time": t, "event": e, **risks}),
        outcome="event",
        modelnames=list(risks),
        thresholds=list(DCURVES_THRESHOLDS),
        time=horizon,
        time_to_outcome_col="time",
        nper=100,
    )
    model, coarse = (decision_curve(t, e, r, horizon) for r in risks.values())

    def theirs(strategy: str, column: str) -> np.ndarray:
        return ref.loc[ref["model"] == strategy, column].to_numpy(float)

    label = f"{name}, {horizon:g} days"
    return [
        compare("net benefit (dcurves rules)", label, model.net_benefit,
                theirs("model", "net_benefit"), _TOL, reference=_REF),
        compare("net benefit, coarse risks (ties, 0 and 1)", label, coarse.net_benefit,
                theirs("coarse", "net_benefit"), _TOL, reference=_REF),
        compare("net benefit, treat all (dcurves)", label, model.treat_all,
                theirs("all", "net_benefit"), _TOL, reference=_REF),
        compare("true and false positives per patient", label,
                np.concatenate([model.true_positive, model.false_positive]),
                np.concatenate([theirs("model", "tp_rate"), theirs("model", "fp_rate")]),
                _TOL, reference=_REF),
        # threshold 0 left out: dcurves divides by zero there (ours: NaN)
        compare("net interventions avoided per 100 (relative above 1)", label,
                model.interventions_avoided[1:], theirs("model", "net_intervention_avoided")[1:],
                _TOL, relative=True, floor=1.0, reference=_REF),
    ]  # fmt: skip


@check("decision", fast=True)
def dcurves_lung():
    return _rows("lung")


@check("decision")
def dcurves_pbc():
    return _rows("pbc")
