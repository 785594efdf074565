"""The study's figures, written to results/figures as PNG + SVG, each stamped
"synthetic cohort" / "random network weights" when that applies."""

from __future__ import annotations

import numpy as np
import pandas as pd

from toolkit.artifacts import save_figure
from toolkit.contracts import FeatureName, SignatureSpec


def _save(ctx, fig, name: str) -> None:
    from toolkit.plots._stamp import close

    save_figure(fig, ctx.paths.figures / name)
    close(fig)


def all_figures(ctx, sets, models, calibration_table, decision, td_auc, groups, high) -> None:
    """KM (Figure 2), calibration (Figure 4C), decision curves and td-AUC."""
    from toolkit.plots.calibration import calibration_figure
    from toolkit.plots.decision import decision_figure
    from toolkit.plots.km import km_figure
    from toolkit.plots.timeauc import td_auc_figure
    from toolkit.stats.survival import logrank
    from toolkit.study.nomograms import MODEL_SPECS

    unit = ctx.config.study.time_unit
    stamp = ctx.stamp()
    train, valid = sets["train"], sets["validation"]
    outcomes = [("os", "time", "event", ctx.config.outcome.label)]
    outcomes += [
        (s.name.lower(), f"{s.name.lower()}_time", f"{s.name.lower()}_event", s.name)
        for s in ctx.config.outcome.secondary
    ]
    for key, tcol, ecol, label in outcomes:
        pair = {
            "Training": (train[tcol].to_numpy(float), train[ecol].to_numpy(float)),
            "Validation": (valid[tcol].to_numpy(float), valid[ecol].to_numpy(float)),
        }
        both = pd.concat([train, valid])
        test = logrank(
            both[tcol].to_numpy(float),
            both[ecol].to_numpy(float),
            np.r_[np.zeros(len(train)), np.ones(len(valid))],
        )
        name = "km_train_vs_validation" if key == "os" else f"km_{key}_train_vs_validation"
        fig = km_figure(
            pair,
            title=f"{label}: training vs validation",
            time_unit=unit,
            ylabel=label,
            p_value=test.p,
            stamp=ctx.stamp(network=False),
        )
        _save(ctx, fig, name)
    for s, rows in sets.items():
        t, e = rows["time"].to_numpy(float), rows["event"].to_numpy(float)
        g = high[s]
        fig = km_figure(
            {"Low risk": (t[~g], e[~g]), "High risk": (t[g], e[g])},
            title=f"Risk groups (integrated nomogram), {s} set",
            time_unit=unit,
            ylabel=ctx.config.outcome.label,
            p_value=groups[s]["p"],
            stamp=stamp,
        )
        _save(ctx, fig, f"km_risk_{s}")
    for (s, m), rows in calibration_table.groupby(["set", "model"], sort=False):
        curves = {
            f"{h:g} {unit}": (part, float(part["rmse"].iloc[0]))
            for h, part in rows.groupby("horizon", sort=True)
        }
        title = f"Calibration, {MODEL_SPECS[m].label.lower()}, {s} set"
        _save(ctx, calibration_figure(curves, title=title, stamp=stamp), f"calibration_{s}_{m}")
    for s, table in decision.items():
        fig = decision_figure(table, title=f"Decision curves, {s} set", time_unit=unit, stamp=stamp)
        _save(ctx, fig, f"decision_{s}")
    _save(ctx, td_auc_figure(td_auc, time_unit=unit, stamp=stamp), "td_auc")


def _cam_weights(signature: SignatureSpec, phase: str) -> np.ndarray:
    """Per-feature weights of one phase on the raw feature scale (coef / SD)."""
    from toolkit.deep import N_FEATURES

    w = np.zeros(N_FEATURES)
    for name, c, sd in zip(
        signature.features, signature.coefficients, signature.scales, strict=True
    ):
        if name.phase == phase:
            w[name.index] = c / sd
    return w


def _phase_contribution(primary: pd.DataFrame, patient: str, phase: str, w: np.ndarray) -> float:
    columns = [FeatureName(phase, int(i)).format() for i in np.flatnonzero(w)]
    values = primary.loc[patient, columns].to_numpy(dtype=float)
    return float(np.abs(values * w[np.flatnonzero(w)]).sum())


def cam_figures(ctx, clinical, n_patients: int) -> list[str]:
    """CAM overlays for the highest- and lowest-signature validation patients, each in the
    phase whose signature features contribute most for that patient."""
    from toolkit.deep.cam import overlay_figure, risk_map
    from toolkit.deep.weights import load

    signature = SignatureSpec.read(ctx.paths.results / "signature.json")
    scores = pd.read_parquet(ctx.paths.tables / "scores.parquet")
    valid = scores[scores["set"].isin(ctx.config.study.validation_sets)]
    order = valid["signature"].sort_values(ascending=False).index.tolist()
    chosen = list(dict.fromkeys([*order[: (n_patients + 1) // 2], *order[::-1][: n_patients // 2]]))
    weights = {p: _cam_weights(signature, p) for p in ctx.config.imaging.phases}
    features = pd.read_parquet(ctx.paths.features)
    primary = features[features["reader"] == ctx.config.imaging.primary_reader]
    primary = primary.set_index(primary["patient"].astype(str))
    params = load(ctx.weights_source)
    written = []
    for patient in chosen:
        # the phase whose features move this patient's signature most
        phase = max(weights, key=lambda p: _phase_contribution(primary, patient, p, weights[p]))
        with np.load(ctx.paths.crops / f"{patient}.npz") as npz:
            crop = np.asarray(npz[phase][0], dtype=np.float32)
            mask = np.asarray(npz["mask"][0])
        heat = risk_map(crop, weights[phase], params, patient=patient)
        title = (
            f"Patient {patient}, {phase} phase (signature {valid.loc[patient, 'signature']:.2f})"
        )
        fig = overlay_figure(crop, heat, mask, weights=params, title=title)
        from toolkit.plots._stamp import apply

        apply(fig, ctx.stamp())
        _save(ctx, fig, f"cam_{patient}")
        written.append(f"cam_{patient}")
    return written
