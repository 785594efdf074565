"""The study report's tables, built from results/metrics.json and results/tables/*.parquet."""

from __future__ import annotations

import html
import re
from typing import Any

import pandas as pd

from toolkit.contracts import Term
from toolkit.report import formatting as fmt
from toolkit.report.study import MODEL_LABELS, MODELS, SET_LABELS, SETS, StudyResults, missing
from toolkit.study.internal import MODELS as INTERNAL_MODELS
from toolkit.study.nomograms import MODEL_SPECS
from toolkit.study.validate import COMPARISONS


def _terms(frame: pd.DataFrame) -> list[Term]:
    """The ``term`` column (``Term.format``) of a univariate_ or multivariable_ table."""
    return [Term.parse(v) for v in frame["term"]]


def term_label(results: StudyResults, term: Term) -> str:
    """A readable row label: ``bclc[C]`` → "BCLC stage: C (vs A)", ``alt`` → "ALT (U/L)"."""
    name = term.variable
    if term.level is not None:
        reference = _reference_level(results, name)
        suffix = f" (vs {reference})" if reference else ""
        unit = _unit(results, name)
        level = term.level.replace(">=", "≥").replace("<=", "≤")
        return f"{results.variable_label(name)}{unit}: {level}{suffix}"
    for variable in results.settings.get("variables", []):
        if variable.get("name") == name:
            unit = variable.get("unit")
            return (
                f"{variable.get('label', name)} ({unit})" if unit else variable.get("label", name)
            )
    return results.variable_label(name)


def _unit(results: StudyResults, name: str) -> str:
    for variable in results.settings.get("variables", []):
        if variable.get("name") == name and variable.get("unit"):
            return f" ({variable['unit']})"
    return ""


def _reference_level(results: StudyResults, name: str) -> str | None:
    """The first level, or for a variable categorised at cut-offs its lowest band ("<400")."""
    for variable in results.settings.get("variables", []):
        if variable.get("name") != name:
            continue
        if variable.get("levels"):
            return str(variable["levels"][0])
        if variable.get("cutoffs"):
            return f"<{variable['cutoffs'][0]:g}"
    return None


def _hr_cells(frame: pd.DataFrame, row: int) -> tuple[str, str]:
    record = frame.iloc[row]
    text = fmt.with_ci(record["hr"], record["lower"], record["upper"], digits=2, hazard_ratio=True)
    return text, fmt.pvalue(record["p"])


def signature_sd(results: StudyResults) -> float | None:
    """The standard deviation (n - 1) of the signature over the training set's patients."""
    scores = results.table("scores")
    if scores is None or "signature" not in scores.columns:
        return None
    train = results.settings.get("study", {}).get("train_sets", ["train"])
    values = scores.loc[scores["set"].isin(train), "signature"].astype(float)
    return float(values.std(ddof=1)) if len(values) > 1 else None


def _per_sd_cells(frame: pd.DataFrame, row: int, sd: float) -> tuple[str, str]:
    """HR per SD of the score: exp(beta * sd) = HR**sd, its CI likewise (the P is unchanged)."""
    record = frame.iloc[row]
    hr, lower, upper = (float(record[k]) ** sd for k in ("hr", "lower", "upper"))
    return fmt.with_ci(hr, lower, upper, digits=2, hazard_ratio=True), fmt.pvalue(record["p"])


def multivariable_table(results: StudyResults) -> str:
    """Table 2: the nomograms' Cox models side by side (HR, 95% CI, P): clinical and
    integrated, and with radiomics the integrated radiomics and combined ones.

    The signature, a linear predictor on an arbitrary scale, also gets a row per standard
    deviation of its training-set values (HR per SD = HR per unit to the power SD), which a
    reader can compare across studies; the per-unit row is the model's own coefficient.
    """
    frames = {m: results.table(f"multivariable_{m}") for m in _nomogram_models(results)}
    if all(f is None for f in frames.values()):
        return missing("results/tables/multivariable_clinical.parquet")
    order: list[Term] = []
    for frame in frames.values():
        for term in _terms(frame) if frame is not None else []:
            if term not in order:
                order.append(term)
    rows = []
    for term in order:
        row: list[Any] = [term_label(results, term)]
        for frame in frames.values():
            terms = _terms(frame) if frame is not None else []
            row.extend(_hr_cells(frame, terms.index(term)) if term in terms else ("", ""))
        rows.append(row)
        sd = signature_sd(results) if term == Term("signature") else None
        if sd is not None:
            per_sd: list[Any] = [f"{term_label(results, term)}, per SD ({fmt.number(sd)})"]
            for frame in frames.values():
                terms = _terms(frame) if frame is not None else []
                cells = _per_sd_cells(frame, terms.index(term), sd) if term in terms else ("", "")
                per_sd.extend(cells)
            rows.append(per_sd)
    header = ["Variable"]
    for m in frames:
        header += [f"{MODEL_LABELS[m].removesuffix(' nomogram')} HR (95% CI)", "P"]
    return fmt.html_table(header, rows)


def _nomogram_models(results: StudyResults) -> list[str]:
    """The run's nomograms (the validated models with clinical variables)."""
    return [m for m in run_models(results) if MODEL_SPECS[m].clinical]


def univariate_table(results: StudyResults) -> str:
    """Table S3: the univariate Cox screen of every candidate (HR, 95% CI, P, selected).

    A variable is selected by its likelihood-ratio test (``p_lr``, one per variable, all
    levels together), shown with its score test (``p_score``) and ``selected`` on the
    variable's first row.
    """
    frame = results.table("univariate")
    if frame is None:
        return missing("results/tables/univariate.parquet")
    frame = frame.reset_index(drop=True)
    rows, previous = [], None
    for index, term in enumerate(_terms(frame)):
        record = frame.iloc[index]
        hr, p = _hr_cells(frame, index)
        first = record["variable"] != previous
        previous = record["variable"]
        row = [term_label(results, term), hr, p]
        row.append(fmt.pvalue(record["p_lr"]) if first else "")
        row.append(fmt.pvalue(record.get("p_score")) if first else "")
        row.append(("yes" if bool(record["selected"]) else "no") if first else "")
        rows.append(row)
    header = ["Variable", "HR (95% CI)", "Wald P", "Likelihood-ratio P", "Score P", "Selected"]
    return fmt.html_table(header, rows)


_SUMMARY_LEVELS = ("median (IQR)", "mean (SD)", "median (range)")
_RANGE = re.compile(r"\((-?[\d.]+)-(-?[\d.]+)\)")


def _tidy(value: Any) -> str:
    """A baseline cell: empty when missing, ranges with an en dash, tests named properly."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    text = _RANGE.sub(lambda m: f"({m.group(1)}{fmt.DASH}{m.group(2)})", str(value))
    return text.replace("Mann-Whitney", "Mann–Whitney").replace("Fisher exact", "Fisher's exact")


def _characteristic(results: StudyResults, variable: str, level: str) -> tuple[str, str]:
    if variable == "n":
        return "Patients, n", ""
    label = term_label(results, Term(variable))
    if level in _SUMMARY_LEVELS:
        return f"{label}, {level}", ""
    return label, level


def baseline_table(results: StudyResults) -> str:
    """Table 1: baseline characteristics by set, with the test and P per variable."""
    frame = results.table("baseline")
    if frame is None:
        return missing("results/tables/baseline.parquet")
    frame = frame.reset_index(drop=frame.index.name is None)
    if "variable" not in frame.columns:
        return fmt.html_table([str(c) for c in frame.columns], frame.values.tolist())
    cohort = results.metrics.cohort
    sets = [s for s in SETS if s in frame.columns]
    header = ["Characteristic", ""]
    for s in sets:
        n = cohort.get(s, {}).get("n")
        header.append(f"{SET_LABELS[s]} (n = {n})" if n is not None else SET_LABELS[s])
    header += ["P", "Test"]
    rows, previous = [], None
    for record in frame.to_dict("records"):
        variable = str(record["variable"])
        name, level = _characteristic(results, variable, _tidy(record.get("level")))
        shown = name if (variable != previous or not level) else ""
        previous = variable
        p = record.get("p")
        p_text = "" if p is None or p != p else fmt.pvalue(p)
        cells = [_tidy(record.get(s)) for s in sets]
        rows.append([shown, level, *cells, p_text, _tidy(record.get("test"))])
    return fmt.html_table(header, rows)


def signature_table(results: StudyResults) -> str:
    """Table S2: the signature's features, phases, weights and reproducibility (ICC)."""
    frame = results.table("signature_features")
    if frame is None:
        return missing("results/tables/signature_features.parquet")
    rows = []
    for record in frame.reset_index(drop=True).to_dict("records"):
        feature, phase = record["feature"], record["phase"]
        weight, icc = fmt.number(record["coefficient"], 4), fmt.number(record["icc"], 3)
        rows.append([feature, phase, weight, icc, fmt.cell(record["mrmr_rank"])])
    return fmt.html_table(["Feature", "Phase", "Weight", "ICC", "mRMR rank"], rows)


def cindex_table(results: StudyResults) -> str:
    """The C-index of each model in each set, with its 95% CIs and the comparison tests."""
    cindex = results.metrics.cindex
    rows: list[list[Any]] = []
    for model in run_models(results):
        row: list[Any] = [MODEL_LABELS[model]]
        for s in SETS:
            entry = cindex.get(s, {}).get(model, {})
            row.append(fmt.with_ci(entry.get("c"), entry.get("lower"), entry.get("upper")))
            row.append(_boot(entry))
        rows.append(row)
    groups = [len(rows)]
    rows.append(["Comparisons: ΔC-index (P)", "", "", "", ""])
    comparisons = results.metrics.comparisons
    made = {k for s in SETS for k in comparisons.get(s, {})}
    names = [f"{a}_vs_{b}" for a, b in COMPARISONS if f"{a}_vs_{b}" in made]
    for name in names:
        row = [_comparison_label(name)]
        for s in SETS:
            entry = comparisons.get(s, {}).get(name) or {}
            row.extend([_delta(entry), ""])
        rows.append(row)
    header = ["Model"]
    for s in SETS:
        header += [f"{SET_LABELS[s]} C (95% CI)", f"{SET_LABELS[s]} bootstrap CI"]
    return fmt.html_table(header, rows, group_rows=groups if names else ())


def run_models(results: StudyResults) -> list[str]:
    """The models the run validated (metrics.json's ``cindex``), in ``MODELS`` order."""
    made = {m for s in SETS for m in results.metrics.cindex.get(s, {})}
    return [m for m in MODELS if m in made]


def models_compared_table(results: StudyResults) -> str:
    """Every model side by side: its predictors, number of terms, training AIC and C-index
    (95% CI) per set; the nomogram of the lowest training AIC marked."""
    table = results.table("models_compared")
    if table is None:
        return missing("results/tables/models_compared.parquet")
    rows = []
    for r in table.to_dict("records"):
        names = [str(v) for v in r["variables"]]
        label = MODEL_LABELS.get(r["model"], r["model"])
        rows.append(
            [
                f"{label} (lowest AIC)" if r["best_aic"] else label,
                ", ".join(results.variable_label(v) for v in names),
                str(int(r["n_terms"])),
                fmt.number(r["aic"], 1),
                *(fmt.with_ci(r[f"c_{s}"], r[f"lower_{s}"], r[f"upper_{s}"]) for s in SETS),
            ]
        )
    header = ["Model", "Predictors", "Terms", "Training AIC"]
    header += [f"{SET_LABELS[s]} C (95% CI)" for s in SETS]
    return fmt.html_table(header, rows)


def _boot(entry: dict[str, Any]) -> str:
    lower, upper = entry.get("boot_lower"), entry.get("boot_upper")
    if lower is None or upper is None:
        return fmt.DASH
    return f"{fmt.number(lower)}{fmt.DASH}{fmt.number(upper)}"


def _comparison_label(name: str) -> str:
    first, _, second = name.partition("_vs_")
    return f"{MODEL_LABELS.get(first, first)} vs {MODEL_LABELS.get(second, second).lower()}"


def _delta(entry: dict[str, Any]) -> str:
    if not entry or entry.get("diff") is None:
        return fmt.DASH
    return f"{float(entry['diff']):+.3f} (P {_p_phrase(entry.get('p'))})"


def _p_phrase(p: Any) -> str:
    text = fmt.pvalue(p)
    return text if text.startswith("<") else f"= {text}"


def calibration_table(results: StudyResults) -> str:
    """Calibration of the nomograms: RMSE, ICI, E50, E90 (and optimism-corrected RMSE)."""
    calibration = results.metrics.calibration
    entries = [
        (s, model, time, entry)
        for s in SETS
        for model, by_time in calibration.get(s, {}).items()
        for time, entry in sorted(by_time.items(), key=lambda kv: float(kv[0]))
    ]
    if not entries:
        return missing("metrics.json: calibration")
    keys = ["rmse", "ici", "e50", "e90"]
    header = ["Set", "Model", "Time", "RMSE", "ICI", "E50", "E90"]
    if any(entry.get("rmse_corrected") is not None for *_, entry in entries):
        keys.append("rmse_corrected")
        header.append("RMSE (optimism-corrected)")
    rows = [
        [
            SET_LABELS.get(s, s),
            MODEL_LABELS.get(model, model),
            f"{float(time):g} {results.time_unit}",
            *(fmt.number(entry.get(k)) for k in keys),
        ]
        for s, model, time, entry in entries
    ]
    return fmt.html_table(header, rows)


def td_auc_table(results: StudyResults) -> str:
    """Time-dependent AUC of each model at each time point, per set."""
    auc = results.metrics.td_auc
    times = sorted({float(t) for s in auc.values() for m in s.values() for t in m}, key=float)
    rows = []
    for s in SETS:
        for model in run_models(results):
            by_time = auc.get(s, {}).get(model)
            if by_time is None:
                continue
            values = {float(t): v for t, v in by_time.items()}
            cells = [fmt.number(values.get(t)) for t in times]
            rows.append([SET_LABELS[s], MODEL_LABELS[model], *cells])
    if not rows:
        return missing("metrics.json: td_auc")
    header = ["Set", "Model", *(f"AUC({t:g} {results.time_unit})" for t in times)]
    return fmt.html_table(header, rows)


def _accuracy_entries(results: StudyResults):
    accuracy = results.metrics.accuracy or {}
    for s in SETS:
        for model in run_models(results):
            entry = accuracy.get(s, {}).get(model)
            if entry:
                yield s, model, entry


def accuracy_table(results: StudyResults) -> str:
    """Per set, model and time point: AUC (95% CI), Brier score (95% CI), null Brier, IPA.

    All as ``riskRegression::Score`` computes them (KM censoring weights, influence-function
    SEs, Wald intervals); a time point beyond a set's follow-up is named below the table.
    """
    rows = []
    for s, model, entry in _accuracy_entries(results):
        for time, brier in sorted(entry["brier"].items(), key=lambda kv: float(kv[0])):
            auc = entry["auc"][time]
            rows.append(
                [
                    SET_LABELS[s],
                    MODEL_LABELS[model],
                    f"{float(time):g} {results.time_unit}",
                    fmt.with_ci(auc["auc"], auc["lower"], auc["upper"]),
                    fmt.with_ci(brier["brier"], brier["lower"], brier["upper"]),
                    fmt.number(brier["null_brier"]),
                    fmt.number(brier["ipa"]),
                ]
            )
    if not rows:
        return missing("metrics.json: accuracy")
    header = ["Set", "Model", "Time", "AUC (95% CI)", "Brier (95% CI)", "Null Brier", "IPA"]
    return fmt.html_table(header, rows) + _beyond_note(results)


def _beyond_note(results: StudyResults) -> str:
    notes = [
        f"{SET_LABELS[s]}: no value at {', '.join(f'{t:g}' for t in beyond)} {results.time_unit} "
        "(beyond the set's last follow-up)"
        for s in SETS
        if (beyond := (results.metrics.accuracy or {}).get(s, {}).get("beyond_follow_up"))
    ]
    return "".join(f'<p class="note">{n}.</p>' for n in notes)


def calibration_slope_table(results: StudyResults) -> str:
    """Calibration slope (95% CI) and calibration-in-the-large O/E (95% CI) per time point."""
    entries = list(_accuracy_entries(results))
    if not entries:
        return missing("metrics.json: accuracy")
    times = sorted({t for *_, e in entries for t in e["calibration_in_the_large"]}, key=float)
    rows = []
    for s, model, entry in entries:
        slope, large = entry["calibration_slope"], entry["calibration_in_the_large"]
        ratios = [
            fmt.with_ci(large[t]["oe"], large[t]["lower"], large[t]["upper"], digits=2)
            if t in large
            else fmt.DASH
            for t in times
        ]
        ci = fmt.with_ci(slope["slope"], slope["lower"], slope["upper"], digits=2)
        rows.append([SET_LABELS[s], MODEL_LABELS[model], ci, *ratios])
    header = ["Set", "Model", "Calibration slope (95% CI)"]
    header += [f"O/E at {float(t):g} {results.time_unit} (95% CI)" for t in times]
    return fmt.html_table(header, rows)


_INDEX_LABELS = {
    "Dxy": "Somers' Dxy",
    "R2": "R² (Nagelkerke)",
    "Slope": "Calibration slope",
    "D": "Discrimination D",
    "U": "Unreliability U",
    "Q": "Quality Q",
    "g": "g-index",
}


def fixed_model_validation_table(results: StudyResults) -> str:
    """``rms::validate`` of each nomogram: apparent, optimism, corrected, per index."""
    block = results.metrics.fixed_model_validation or {}
    if "note" in block:
        return f'<p class="note">Bootstrap validation {html.escape(block["note"])}.</p>'
    models = [m for m in MODELS if m in block]
    if not models:
        return missing("metrics.json: fixed_model_validation")
    rows, groups = [], []
    for m in models:
        groups.append(len(rows))
        failed = len(block[m]["failed"])
        used = f"{block['B'] - failed} of {block['B']} resamples"
        rows.append([f"{MODEL_LABELS[m]} ({used})", "", "", "", "", ""])
        for index, values in block[m]["indexes"].items():
            rows.append(
                [
                    _INDEX_LABELS.get(index, index),
                    fmt.number(values["index.orig"]),
                    fmt.number(values["training"]),
                    fmt.number(values["test"]),
                    fmt.number(values["optimism"]),
                    fmt.number(values["index.corrected"]),
                ]
            )
    header = ["Index", "Apparent", "Training", "Test", "Optimism", "Corrected"]
    return fmt.html_table(header, rows, group_rows=groups)


def ph_table(results: StudyResults) -> str:
    """``cox.zph`` of both nomograms: chi-square, df and P per term and GLOBAL."""
    frame = results.table("ph_test")
    if frame is None:
        return missing("results/tables/ph_test.parquet")
    rows = []
    for record in frame.to_dict("records"):
        term = str(record["term"])
        label = "Global" if term == "GLOBAL" else results.variable_label(term)
        rows.append(
            [
                MODEL_LABELS.get(record["model"], record["model"]),
                label,
                fmt.number(record["chisq"], 2),
                int(record["df"]),
                fmt.pvalue(record["p"]),
            ]
        )
    return fmt.html_table(["Model", "Term", "χ²", "df", "P"], rows)


def risk_group_table(results: StudyResults) -> str:
    """Median-split risk groups of the integrated nomogram: sizes and log-rank test."""
    groups = results.metrics.risk_groups
    rows = []
    for s in SETS:
        entry = groups.get(s)
        if entry:
            rows.append(
                [
                    SET_LABELS[s],
                    entry.get("n_low"),
                    entry.get("n_high"),
                    fmt.number(entry.get("chisq"), 2),
                    fmt.pvalue(entry.get("p")),
                ]
            )
    if not rows:
        return missing("metrics.json: risk_groups")
    table = fmt.html_table(["Set", "Low risk (n)", "High risk (n)", "Log-rank χ²", "P"], rows)
    stratified = [
        f"{SET_LABELS[s]} χ² {fmt.number(g['chisq'], 2)}, P {fmt.pvalue(g['p'])} "
        f"({g['n_centres']} {'centre' if g['n_centres'] == 1 else 'centres'})"
        for s in SETS
        if (g := groups.get(s, {}).get("stratified"))
    ]
    if stratified:
        table += (
            '<p class="note">Log-rank tests stratified by centre: '
            + "; ".join(stratified)
            + ".</p>"
        )
    return table


FEW_CENTRES = 10  # below this many clusters the sandwich variance is unreliable


def clustered_table(results: StudyResults) -> str:
    """The nomograms' SEs clustered by centre beside the model-based ones (study.centre)."""
    frame = results.table("clustered_se")
    if frame is None:
        if results.settings.get("study", {}).get("centre"):
            return missing("results/tables/clustered_se.parquet")
        return (
            '<p class="note">Not applicable: study.toml names no centre column '
            "(study.centre), so no clustered variance was computed.</p>"
        )
    rows = []
    for record in frame.to_dict("records"):
        rows.append(
            [
                MODEL_LABELS.get(record["model"], record["model"]),
                term_label(results, Term.parse(record["term"])),
                fmt.number(record["coef"], 3),
                fmt.number(record["se"], 3),
                fmt.number(record["se_cluster"], 3),
                fmt.with_ci(
                    record["hr"],
                    record["lower_cluster"],
                    record["upper_cluster"],
                    digits=2,
                    hazard_ratio=True,
                ),
                fmt.pvalue(record["p_cluster"]),
                int(record["n_centres"]),
            ]
        )
    header = ["Model", "Term", "Coefficient", "SE (model)", "SE (clustered)",
              "HR (clustered 95% CI)", "P (clustered)", "Centres"]  # fmt: skip
    table = fmt.html_table(header, rows)
    few = int(frame["n_centres"].min())
    if few < FEW_CENTRES:
        table += (
            f'<p class="note">Only {few} centres: a variance clustered on so few is itself '
            f"very imprecise (a sandwich of {few} independent pieces); read the model-based SE "
            "and treat the clustered one as a check of direction only.</p>"
        )
    return table


def r_check_table(results: StudyResults) -> str:
    """Every number of this study recomputed in R: ours, R's, the difference and tolerance."""
    if results.r_check is None or not results.r_check.checks:
        return missing("results/r_check.json")
    rows = [
        [
            c.name + (f" ({c.message})" if c.message else ""),
            _sig(c.ours),
            _sig(c.r),
            _sci(c.diff),
            _sci(c.tolerance),
            1 if c.n_values is None else c.n_values,
            '<span class="pass">pass</span>' if c.passed else '<span class="fail">FAIL</span>',
        ]
        for c in results.r_check.checks
    ]
    header = ["Statistic", "sigkit", "R", "|Difference|", "Tolerance", "Values", "Result"]
    return fmt.html_table(header, rows, raw_columns=(6,))


def _sig(value: Any) -> str:
    return fmt.DASH if value is None else f"{float(value):.6g}"


def _sci(value: Any) -> str:
    return fmt.DASH if value is None else f"{float(value):.1e}"


def exclusions_table(results: StudyResults) -> str:
    """Patients excluded at any stage, with the stage and the reason; under multiple
    imputation followed by the missing values per variable and set (``missing_values``)."""
    frame = results.table("exclusions")
    if frame is None:
        return missing("results/tables/exclusions.parquet")
    if frame.empty:
        return '<p class="note">No patient was excluded.</p>' + missing_values_table(results)
    frame = frame.reset_index(drop=frame.index.name is None)
    header = [str(c).capitalize() for c in frame.columns]
    return fmt.html_table(header, frame.values.tolist()) + missing_values_table(results)


def missing_values_table(results: StudyResults) -> str:
    """How many values each variable had missing in each set, and what was done
    (the ``missing_values`` table, written under multiple imputation; empty otherwise)."""
    frame = results.table("missing_values")
    if frame is None:
        return ""
    rows = [
        [r.variable, r.set, f"{int(r.n_missing)} of {int(r.n)}", r.action]
        for r in frame.itertuples(index=False)
        if int(r.n_missing)
    ]
    if not rows:
        return '<p class="note">No clinical value was missing.</p>'
    header = ["Variable", "Set", "Missing", "What was done"]
    return '<p class="note">Missing clinical values.</p>' + fmt.html_table(header, rows)


INTERNAL_METRICS = {
    "c_index": "C-index",
    "calibration_slope": "Calibration slope",
    "brier": "Brier score",
    "ipa": "IPA",
    "calibration_rmse": "Calibration RMSE",
}


def internal_validation_table(results: StudyResults) -> str:
    """The whole-procedure bootstrap: apparent, optimism and corrected value per model."""
    table = results.table("internal_validation")
    if table is None or table.empty:
        return missing("tables/internal_validation.parquet")
    header = ["Statistic", "Time", "Apparent", "Optimism", "Optimism-corrected", "Resamples"]
    rows: list[list[Any]] = []
    groups = []
    for model in INTERNAL_MODELS:
        groups.append(len(rows))
        rows.append([MODEL_LABELS.get(model, model)])
        for r in table[table["model"] == model].itertuples(index=False):
            rows.append(internal_validation_cells(r, results.time_unit))
    return fmt.html_table(header, rows, group_rows=groups)


def internal_validation_cells(row: Any, time_unit: str) -> list[str]:
    """One row of tables/internal_validation.parquet as shown: statistic, time, apparent,
    optimism, optimism-corrected, resamples used."""
    time = "" if pd.isna(row.horizon) else f"{float(row.horizon):g} {time_unit}"
    return [
        INTERNAL_METRICS.get(row.metric, row.metric),
        time,
        fmt.number(row.apparent),
        fmt.number(row.optimism),
        fmt.number(row.corrected),
        str(int(row.n)),
    ]


def decision_summary_table(results: StudyResults) -> str:
    """Net benefit at the decision thresholds: each model, treat all, the integrated
    nomogram's interventions avoided per 100 and its net-benefit gain over the clinical
    nomogram with the bootstrap 95% CI."""
    table = results.table("decision_summary")
    if table is None or table.empty:
        return missing("tables/decision_summary.parquet")
    shown = [m for m in run_models(results) if m in set(table["model"])]
    header = ["Threshold", "Treat all", *(MODEL_LABELS[m] for m in shown)]
    header += ["Interventions avoided per 100 (integrated)", "Integrated − clinical (95% CI)"]
    rows: list[list[Any]] = []
    groups = []
    for (name, horizon), block in table.groupby(["set", "horizon"], sort=False):
        groups.append(len(rows))
        rows.append([f"{SET_LABELS.get(name, name)} set, {float(horizon):g} {results.time_unit}"])
        for threshold, at in block.groupby("threshold", sort=True):
            by_model = at.set_index("model")
            integrated = by_model.loc["integrated"]
            gain = by_model.loc["integrated - clinical"]
            rows.append(
                [
                    f"{100 * float(threshold):g}%",
                    fmt.number(integrated["treat_all"]),
                    *(fmt.number(by_model.loc[m, "net_benefit"]) for m in shown),
                    fmt.number(integrated["interventions_avoided"], 1),
                    fmt.with_ci(gain["net_benefit"], gain["lower"], gain["upper"]),
                ]
            )
    return fmt.html_table(header, rows, group_rows=groups)


def _radiomics_off(results: StudyResults) -> bool:
    return results.settings.get("radiomics", {}).get("enabled", True) is False


def radiomics_signature_table(results: StudyResults) -> str:
    """The radiomics signature's features, weights, reproducibility (ICC) and mRMR rank."""
    frame = results.table("signature_features_radiomics")
    if frame is None:
        if _radiomics_off(results):
            return "<p>No radiomics signature: study.toml sets [radiomics] enabled = false.</p>"
        return missing("results/tables/signature_features_radiomics.parquet")
    rows = [
        [
            record["feature"],
            fmt.number(record["coefficient"], 4),
            fmt.number(record["icc"], 3),
            fmt.cell(record["mrmr_rank"]),
        ]
        for record in frame.reset_index(drop=True).to_dict("records")
    ]
    return fmt.html_table(["Feature", "Weight", "ICC", "mRMR rank"], rows)


def radiomics_truth_table(results: StudyResults) -> str:
    """Spearman's rho of the radiomics signature and its features with the simulated tumour."""
    frame = results.table("radiomics_truth")
    if frame is None:
        if not results.synthetic or _radiomics_off(results):
            return "<p>Not applicable: the cohort has no simulated truth or no radiomics.</p>"
        return missing("results/tables/radiomics_truth.parquet")
    rows = [
        [str(r.truth), str(r.kind), str(r.feature), fmt.number(r.rho), fmt.pvalue(r.p), str(r.n)]
        for r in frame.itertuples(index=False)
    ]
    return fmt.html_table(["Simulated quantity", "Kind", "Feature", "Spearman ρ", "P", "n"], rows)
