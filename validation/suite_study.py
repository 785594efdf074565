"""Study statistics against R on real data: nomogram points (rms::nomogram), time-dependent
AUC (riskRegression::Score), calibration (survfit groups, coxph + rms::rcs smoother) and
decision curves (survfit KM formula)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from validation import check, compare


def _pbc():
    from toolkit import rbridge

    d = rbridge.dataset("pbc").dropna(subset=["bili", "albumin", "age", "stage", "edema"])
    d = d.reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "bili": np.log(d["bili"].to_numpy(float)),
            "albumin": d["albumin"].to_numpy(float),
            "stage": pd.Categorical(d["stage"].astype(int).astype(str), ["1", "2", "3", "4"]),
            "edema": pd.Categorical(
                d["edema"].map({0.0: "no", 0.5: "treated", 1.0: "yes"}), ["no", "treated", "yes"]
            ),
        }
    )
    time = d["time"].to_numpy(float)
    event = (d["status"].to_numpy(float) == 2).astype(float)
    return frame, time, event


@check("study", fast=True)
def nomogram_points_pbc():
    from toolkit.rbridge import study as rstudy
    from toolkit.stats import cox
    from toolkit.stats.nomogram import PredictorSpec, build

    frame, time, event = _pbc()
    design = pd.get_dummies(frame, drop_first=True, dtype=float)
    fit = cox.fit(design.to_numpy(), time, event, names=list(design.columns))
    coef = dict(zip(fit.names, fit.coef, strict=True))
    specs = []
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            levels = tuple(frame[name].cat.categories)
            coefs = (0.0, *(coef[f"{name}_{lv}"] for lv in levels[1:]))
            specs.append(PredictorSpec(name, "categorical", levels=levels, coefs=coefs))
        else:
            specs.append(PredictorSpec(name, "numeric", coef=coef[name], values=tuple(frame[name])))
    nomo = build(specs, baseline_survival={1000: 0.9}, lp_centre=0.0, model="pbc")
    ref = rstudy.nomogram(frame, time, event)
    rows = [
        compare(
            "nomogram points per lp",
            "pbc",
            nomo.points_per_lp,
            ref["points_per_lp"],
            1e-6,
            reference="rms::nomogram(cph) 6.5-0",
        )
    ]
    for spec in nomo.predictors:
        axis = spec.get("levels") or spec["ticks"]
        rows.append(
            compare(
                f"nomogram points: {spec['name']}",
                "pbc",
                [p["points"] for p in axis],
                ref["predictors"][spec["name"]]["points"],
                1e-6,
                reference="rms::nomogram(cph) 6.5-0",
            )
        )
    return rows


@check("study", fast=True)
def time_auc_score():
    from toolkit import rbridge
    from toolkit.rbridge import study as rstudy
    from toolkit.stats.timeauc import time_auc

    rows = []
    vet = rbridge.dataset("veteran")
    t, e = vet["time"].to_numpy(float), vet["status"].to_numpy(float)
    risk = 1 / (1 + np.exp(vet["karno"].to_numpy(float) / 20))
    times = np.quantile(t[e == 1], [0.25, 0.5, 0.75])
    matrix = np.repeat(risk[:, None], 3, axis=1)
    rows.append(
        compare(
            "time-dependent AUC (KM IPCW)",
            "veteran",
            time_auc(t, e, matrix, times).auc,
            rstudy.score_auc(t, e, matrix, times),
            1e-6,
            reference="riskRegression::Score 2022.11.28",
        )
    )
    return rows


@check("study", fast=True)
def calibration_pbc():
    from toolkit.rbridge import study as rstudy
    from toolkit.stats import cox
    from toolkit.stats.calibration import calibrate, rcs_knots

    frame, time, event = _pbc()
    X = frame[["bili", "albumin"]].to_numpy(float)
    fit = cox.fit(X, time, event)
    rows = []
    for horizon in (1000.0, 2000.0, 3000.0):
        s = fit.predict_survival(X, [horizon])[:, 0]
        ours = calibrate(time, event, s, horizon, n_groups=4)
        group = np.empty(len(s), int)
        for g, members in enumerate(np.array_split(np.argsort(s, kind="stable"), 4), start=1):
            group[members] = g
        ref = rstudy.calibration(time, event, s, horizon, group, rcs_knots(np.log(-np.log(s))))
        label = f"pbc, {horizon:g} days"
        rows.append(
            compare(
                "calibration RMSE (grouped KM)",
                label,
                ours.rmse,
                ref["rmse"],
                1e-12,
                reference="survival::survfit 3.5-3",
            )
        )
        rows.append(
            compare(
                "ICI/E50/E90 (Cox + rcs smoother)",
                label,
                [ours.ici, ours.e50, ours.e90],
                [ref["ici"][0], ref["e50"][0], ref["e90"][0]],
                1e-7,
                reference="survival::coxph + rms::rcs",
            )
        )
    return rows


@check("study", fast=True)
def decision_curves_lung():
    from toolkit import rbridge
    from toolkit.rbridge import study as rstudy
    from toolkit.stats.decision import net_benefit, treat_all

    d = rbridge.dataset("lung").dropna(subset=["ph.ecog"])
    t = d["time"].to_numpy(float)
    e = (d["status"] == 2).to_numpy(float)
    lp = 0.02 * d["age"].to_numpy(float) + 0.4 * d["ph.ecog"].to_numpy(float)
    risk = 1 - 0.6 ** np.exp(lp - lp.mean())
    thresholds = np.round(np.arange(0.01, 1.0, 0.01), 2)
    rows = []
    for horizon in (180.0, 365.0):
        ref = rstudy.net_benefit(t, e, risk, horizon, thresholds)
        label = f"lung, {horizon:g} days"
        rows.append(
            compare(
                "net benefit (KM, Vickers 2008)",
                label,
                net_benefit(t, e, risk, horizon, thresholds),
                ref["model"],
                1e-12,
                reference="survival::survfit 3.5-3",
            )
        )
        rows.append(
            compare(
                "net benefit, treat all",
                label,
                treat_all(t, e, horizon, thresholds),
                ref["all"],
                1e-12,
                reference="survival::survfit 3.5-3",
            )
        )
    return rows
