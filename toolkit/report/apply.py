"""What templates/apply.qmd shows: one ``sigkit apply`` run, read from OUT_DIR, never
recomputed: apply.json (the model bundle, the weights, the labels, the counts),
predictions.csv, validation.json (the external validation, when the cohort has outcomes)
and transport.json (case-mix and model updating, ``study.transport``).

Each function returns an HTML fragment; a file the run did not write gives a visible
note naming it. Numbers are shown with three decimals (``formatting.number``), the
page's only rounding.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from toolkit.report import formatting as fmt
from toolkit.study.bundle import MODELS, NOMOGRAMS

LABELS = {
    "signature": "DL signature",
    "clinical": "Clinical nomogram",
    "integrated": "Integrated nomogram",
}
METHOD_LABELS = {
    "original": "Original (frozen)",
    "baseline": "Baseline hazard re-estimated",
    "slope": "Slope re-estimated",
    "refit": "Coefficients refitted",
}


@dataclass(frozen=True)
class ApplyResults:
    out_dir: Path
    record: dict[str, Any]
    predictions: pd.DataFrame
    validation: dict[str, Any] | None
    transport: dict[str, Any] | None

    @property
    def horizons(self) -> list[float]:
        return [float(h) for h in self.record.get("horizons", [])]

    @property
    def time_unit(self) -> str:
        return str(self.record.get("time_unit", "months"))


def _json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def load(out_dir: str | Path | None = None) -> ApplyResults:
    """Read OUT_DIR (default: $SIGKIT_APPLY_DIR, set by the renderer)."""
    if out_dir is None:
        out_dir = os.environ.get("SIGKIT_APPLY_DIR")
        if not out_dir:
            raise RuntimeError("SIGKIT_APPLY_DIR is not set: the page is written by sigkit apply")
    out = Path(out_dir)
    record = _json(out / "apply.json")
    if record is None:
        raise FileNotFoundError(f"{out / 'apply.json'} is missing")
    predictions = pd.read_csv(out / "predictions.csv", index_col="patient", dtype={"patient": str})
    return ApplyResults(
        out, record, predictions, _json(out / "validation.json"), _json(out / "transport.json")
    )


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def labels_banner(results: ApplyResults) -> str:
    """A warning callout naming every label of the outputs (synthetic, random or other weights)."""
    labels = results.record.get("labels", [])
    if not labels:
        return ""
    items = "".join(f"<li>{html.escape(str(label))}</li>" for label in labels)
    return (
        '<div class="callout callout-warning" id="labels-warning"><p>Every output of this '
        f"run is labelled:</p><ul>{items}</ul></div>"
    )


def bundle_table(results: ApplyResults) -> str:
    record = results.record
    model, weights = record["model"], record["weights"]
    rows = [
        ("Study", model["study"]),
        ("Model bundle SHA-256 (model.json)", model["sha256"]),
        ("Model folder", model["path"]),
        ("sigkit version of the model", model["sigkit_version"]),
        ("Network weights", f"{weights['origin']} (SHA-256 {weights['sha256']})"),
        ("Weights are the model's", weights["matches_model"]),
        ("Labels", "; ".join(record.get("labels", [])) or "none"),
        ("Risk groups", f"{record['risk_groups']['model']} linear predictor above "
                        f"{fmt.number(record['risk_groups']['cutoff'])} (training median)"),
    ]  # fmt: skip
    return fmt.html_table(["", ""], rows)


def cohort_sentence(results: ApplyResults) -> str:
    r = results.record
    return (
        f"Cohort {r['cohort']}: {r['n_scored']} patients scored, {r['n_excluded']} excluded "
        f"(exclusions.csv), {r['n_warnings']} values outside the training range (warnings.csv). "
        + imputation_sentence(results)
        + overlap_sentence(results)
    )


def imputation_sentence(results: ApplyResults) -> str:
    """What the model's imputation did (apply.json's ``imputation``), or nothing."""
    imputation = results.record.get("imputation")
    if not imputation:
        return ""
    return (
        f"The model was fitted under multiple imputation: {imputation['n_values']} missing "
        f"model values of {imputation['n_patients']} patients were imputed "
        f"{imputation['m']} times (the bundle's covariate-only imputer; predictions.csv's "
        "n_imputed), and each survival and 95% CI pooled over the imputations by Rubin's "
        "rules. "
    )


def overlap_sentence(results: ApplyResults) -> str:
    """Which patients of the cohort matched a training patient (apply.json's
    ``training_overlap``: the bundle's salted hashes of the training IDs and scans)."""
    overlap = results.record.get("training_overlap")
    if not overlap or not overlap.get("checked"):
        return "The model bundle keeps no training patients' hashes: overlap was not checked."
    matched = overlap["patients"]
    scans = [p for p, what in matched.items() if what != "ID"]
    text = (
        f"**{len(scans)} patients have the images of a training patient** "
        f"({', '.join(scans)}): this is not an external validation. "
        if scans
        else "No patient of the cohort has the images of a training patient. "
    )
    if overlap.get("warning"):
        text += f"Warning: {overlap['warning']}."
    return text


def predictions_table(results: ApplyResults) -> str:
    """Per nomogram: the linear predictor's mean and SD, the mean predicted survival at each
    horizon; the risk groups' counts."""
    p = results.predictions
    header = ["Model", "Linear predictor, mean (SD)"]
    header += [f"Mean survival at {h:g} {results.time_unit}" for h in results.horizons]
    rows = []
    for name in NOMOGRAMS:
        lp = p[f"{name}_lp"]
        row = [LABELS[name], f"{fmt.number(lp.mean())} ({fmt.number(lp.std(ddof=1))})"]
        row += [fmt.number(p[f"{name}_survival_{h:g}"].mean()) for h in results.horizons]
        rows.append(row)
    groups = p["risk_group"].value_counts()
    counts = f"Risk groups: {int(groups.get('high', 0))} high, {int(groups.get('low', 0))} low."
    return fmt.html_table(header, rows) + _note(counts)


def _external(results: ApplyResults) -> dict[str, Any] | None:
    v = results.validation
    return None if v is None or "cindex" not in v else v


def validation_note(results: ApplyResults) -> str:
    v = results.validation
    only = results.record.get("predictions_only")
    if v is None:
        return _note(f"{(only or 'no outcomes').capitalize()} (no validation.json).")
    if "note" in v:
        return _note(f"External validation ({v['n_patients']} patients, {v['n_events']} events): "
                     f"{v['note']}")  # fmt: skip
    beyond = v.get("beyond_follow_up", [])
    extra = f"; horizons beyond the follow-up, left out: {beyond}" if beyond else ""
    return _note(
        f"External validation of {v['n_patients']} patients, {v['n_events']} events{extra}."
    )


def cindex_table(results: ApplyResults) -> str:
    v = _external(results)
    if v is None:
        return ""
    rows = [
        [LABELS[m], fmt.with_ci(e["c"], e["lower"], e["upper"]),
         f"{fmt.number(e.get('boot_lower'))} to {fmt.number(e.get('boot_upper'))}"]
        for m, e in v["cindex"]["external"].items()
    ]  # fmt: skip
    comparisons = [
        [name.replace("_vs_", " vs "), fmt.number(c["diff"]), fmt.number(c["se"]),
         fmt.pvalue(c["p"])]
        for name, c in v["comparisons"]["external"].items()
    ]  # fmt: skip
    return fmt.html_table(["Model", "C-index (95% CI)", "Bootstrap CI"], rows) + fmt.html_table(
        ["Comparison", "Difference", "SE", "P"], comparisons
    )


def calibration_table(results: ApplyResults) -> str:
    """Grouped RMSE and ICI, O/E, Brier and IPA, td-AUC at each horizon; the slope."""
    v = _external(results)
    if v is None or "accuracy" not in v:
        return ""
    header = ["Model", "Horizon", "RMSE", "ICI", "O/E (95% CI)", "Brier", "IPA", "td-AUC", "Slope"]
    rows = []
    for m in MODELS:
        accuracy = v["accuracy"]["external"][m]
        grouped = v.get("calibration", {}).get("external", {}).get(m, {})
        for h, large in accuracy["calibration_in_the_large"].items():
            brier = accuracy["brier"][h]
            cal = grouped.get(h, {})
            slope = accuracy["calibration_slope"]
            rows.append(
                [LABELS[m], h, fmt.number(cal.get("rmse")), fmt.number(cal.get("ici")),
                 fmt.with_ci(large["oe"], large["lower"], large["upper"]),
                 fmt.number(brier["brier"]), fmt.number(brier["ipa"]),
                 fmt.number(v["td_auc"]["external"][m].get(h)),
                 fmt.with_ci(slope["slope"], slope["lower"], slope["upper"])]
            )  # fmt: skip
    return fmt.html_table(header, rows)


def risk_groups_table(results: ApplyResults) -> str:
    v = _external(results)
    if v is None:
        return ""
    g = v["risk_groups"]
    row = [g["n_high"], g["n_low"], fmt.number(g["cutoff"]), fmt.number(g.get("chisq")),
           fmt.pvalue(g.get("p"))]  # fmt: skip
    return fmt.html_table(["High", "Low", "Training cutoff", "Log-rank χ²", "P"], [row])


def decision_table(results: ApplyResults) -> str:
    """Net benefit at thresholds 0.1 to 0.5 (tables/decision.parquet)."""
    path = results.out_dir / "tables" / "decision.parquet"
    if _external(results) is None or not path.is_file():
        return ""
    d = pd.read_parquet(path)
    d = d[d["threshold"].round(6).isin([0.1, 0.2, 0.3, 0.4, 0.5])]
    wide = d.pivot_table(index=["horizon", "threshold"], columns="model", values="net_benefit")
    header = ["Horizon", "Threshold", *wide.columns]
    rows = [[f"{h:g}", fmt.number(t, 2), *(fmt.number(x) for x in r)]
            for (h, t), r in zip(wide.index, wide.to_numpy(), strict=True)]  # fmt: skip
    return fmt.html_table(header, rows)


def case_mix_table(results: ApplyResults) -> str:
    t = results.transport
    if t is None:
        why = results.record.get("predictions_only") or "the cohort has no outcomes or no events"
        return _note(f"No transport.json: {why}.")
    rows, notes = [], []
    for m, block in t["models"].items():
        c = block["case_mix"]
        lp = c["linear_predictor"]
        train = lp["training"]
        member = [c.get(k, {}) for k in ("membership_lp", "membership_variables")]
        rows.append(
            [LABELS[m], fmt.number(train["mean"]), fmt.number(train.get("sd")),
             fmt.number(lp["new"]["mean"]), fmt.number(lp["new"]["sd"]),
             *(fmt.with_ci(x.get("auc"), x.get("lower"), x.get("upper")) for x in member)]
        )  # fmt: skip
        if "note" in c:
            notes.append(f"{LABELS[m]}: {c['note']}.")
    header = ["Model", "LP mean, training", "LP SD, training", "LP mean, new", "LP SD, new",
              "Membership C (LP)", "Membership C (variables)"]  # fmt: skip
    return fmt.html_table(header, rows) + "".join(_note(n) for n in sorted(set(notes)))


def updating_table(results: ApplyResults) -> str:
    t = results.transport
    if t is None:
        return ""
    header = ["Model", "Update", "Horizon", "RMSE", "ICI", "O/E (95% CI)", "Calibration slope"]
    rows, notes = [], []
    for m, block in t["models"].items():
        updating = block["updating"]
        if "note" in updating and "original" not in updating:
            notes.append(f"{LABELS[m]}: {updating['note']}")
            continue
        for method, entry in updating.items():
            if "calibration_slope" not in entry:  # not computed: its note says why
                notes.append(f"{LABELS[m]}, {METHOD_LABELS[method]}: {entry['note']}")
                continue
            s = entry["calibration_slope"]
            for h, cells in entry["horizons"].items():
                rows.append(
                    [LABELS[m], METHOD_LABELS[method], h, fmt.number(cells["rmse"]),
                     fmt.number(cells["ici"]),
                     fmt.with_ci(cells["oe"], cells["oe_lower"], cells["oe_upper"]),
                     fmt.with_ci(s["slope"], s["lower"], s["upper"])]
                )  # fmt: skip
            if "note" in entry:
                notes.append(f"{LABELS[m]}, {METHOD_LABELS[method]}: {entry['note']}")
    return fmt.html_table(header, rows) + "".join(_note(n) for n in notes)
