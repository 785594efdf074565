"""The results section's sentences, with this run's numbers (from metrics.json)."""

from __future__ import annotations

from typing import Any

from toolkit.report import formatting as fmt
from toolkit.report.study import MODEL_LABELS, MODELS, SET_LABELS, SETS, StudyResults
from toolkit.study.nomograms import MODEL_SPECS
from toolkit.study.validate import COMPARISONS


def _ci(entry: dict[str, Any] | None, key: str = "c", digits: int = 3) -> str:
    if not entry:
        return fmt.DASH
    value = entry.get(key, entry.get("median"))
    lower, upper = entry.get("lower"), entry.get("upper")
    if lower is None or upper is None:
        return fmt.number(value, digits)
    low, high = fmt.number(lower, digits), fmt.number(upper, digits)
    return f"{fmt.number(value, digits)} (95% CI {low}{fmt.DASH}{high})"


def _p(p: Any) -> str:
    text = fmt.pvalue(p)
    return f"P {text}" if text.startswith("<") else f"P = {text}"


def _median(entry: dict[str, Any] | None, unit: str) -> str:
    if not entry:
        return fmt.DASH
    if entry.get("median") is None:
        return "not reached"
    text = f"{fmt.number(entry['median'], 1)} {unit}"
    if entry.get("lower") is None or entry.get("upper") is None:
        return text
    upper = fmt.number(entry["upper"], 1)
    return f"{text} (95% CI {fmt.number(entry['lower'], 1)}{fmt.DASH}{upper})"


def participants(results: StudyResults) -> str:
    """Median survival per outcome and set, and where Table 1 and Figure 2 show them."""
    median = results.metrics.median_survival
    unit = results.time_unit
    keys = list(dict.fromkeys(k for s in SETS for k in median.get(s, {})))
    sentences = []
    for key in keys:
        name = "overall survival" if key == "os" else key.upper()
        parts = [
            f"{_median(median[s].get(key), unit)} in the {SET_LABELS[s].lower()} set"
            for s in SETS
            if key in median.get(s, {})
        ]
        sentences.append(f"Median {name} was {' and '.join(parts)}.")
    sentences.append("Baseline characteristics are in @tbl-baseline; survival curves in @fig-km.")
    return " ".join(sentences)


def signature(results: StudyResults) -> str:
    features = results.signature.features if results.signature is not None else ()
    n = len(features)
    phases: dict[str, int] = {}
    for feature in features:
        phases[feature.phase] = phases.get(feature.phase, 0) + 1
    by_phase = " and ".join(f"{v} {k}" for k, v in phases.items()) + " phase"
    cindex = results.metrics.cindex
    if results.settings.get("signature", {}).get("source") == "finetuned":
        note = results.signature.note if results.signature is not None else ""
        text = (
            "The deep-learning signature is the linear predictor of the network fine-tuned "
            f"end to end ({note})."
        )
    else:
        text = f"The deep-learning signature combines {n} features ({by_phase}; @suptbl-signature)."
    text += (
        f" Its C-index was {_ci(cindex.get('train', {}).get('signature'))} in the training set "
        f"and {_ci(cindex.get('validation', {}).get('signature'))} in the validation set."
    )
    if results.weights == "random":
        text += (
            " With random network weights the deep features are untrained projections of the "
            "images: these values show what the pipeline recovers from the synthetic images, "
            "not what an ImageNet-trained network would learn."
        )
    return text


def nomograms(results: StudyResults) -> str:
    cindex = results.metrics.cindex
    comparisons = results.metrics.comparisons
    parts = []
    for s in SETS:
        integrated = cindex.get(s, {}).get("integrated")
        clinical = cindex.get(s, {}).get("clinical")
        test = comparisons.get(s, {}).get("integrated_vs_clinical") or {}
        if integrated and clinical:
            parts.append(
                f"in the {SET_LABELS[s].lower()} set {_ci(integrated)} against "
                f"{_ci(clinical)}, {_p(test.get('p'))}"
            )
    notes = results.metrics.selection_notes
    text = (
        "@tbl-multivariable gives the two multivariable models and @fig-nomogram their "
        "nomograms with calibration curves. The integrated nomogram's C-index, against the "
        "clinical nomogram's, was " + "; ".join(parts) + " (@tbl-cindex)."
    )
    unique = list(dict.fromkeys(str(n).strip() for n in notes if str(n).strip()))
    if unique:
        text += "\n\nNotes recorded during model selection:\n\n"
        text += "\n".join(f"- {note}" for note in unique)
    return text


def models_compared(results: StudyResults) -> str:
    """The models side by side in words: which nomogram the training AIC prefers and why,
    and every comparison test of the run (@tbl-models, @tbl-cindex)."""
    table = results.table("models_compared")
    if table is None:
        return ""
    nomograms = table[[MODEL_SPECS[m].clinical for m in table["model"]]]
    best = table[table["best_aic"]].iloc[0]
    others = "; ".join(
        f"{MODEL_LABELS[r.model].lower()} {fmt.number(r.aic, 1)}"
        for r in nomograms.itertuples()
        if r.model != best["model"]
    )
    text = (
        f"@tbl-models sets the {len(table)} models side by side. Of the {len(nomograms)} "
        f"nomograms, the {MODEL_LABELS[best['model']].lower()} has the lowest training AIC "
        f"({fmt.number(best['aic'], 1)}, against {others}), and @fig-best-nomogram draws its "
        "nomogram. AIC (−2 log partial likelihood + 2 × number of terms) is computed on the "
        "same training patients for every model, so it weighs each model's fit against its "
        "size on equal terms; the validation set plays no part in the choice. A signature "
        "alone is one score, not a nomogram, and is not a candidate."
    )
    tests = []
    for a, b in COMPARISONS:
        key = f"{a}_vs_{b}"
        per_set = [
            f"{SET_LABELS[s].lower()} {float(entry['diff']):+.3f} ({_p(entry.get('p'))})"
            for s in SETS
            if (entry := results.metrics.comparisons.get(s, {}).get(key))
        ]
        if per_set:
            tests.append(
                f"{MODEL_LABELS[a]} against {MODEL_LABELS[b].lower()}: ΔC-index "
                + ", ".join(per_set)
            )
    if tests:
        text += (
            "\n\nThe comparison tests (the difference in C-index on the same patients, "
            "infinitesimal-jackknife z-test of `survival::concordance`):\n\n"
            + "\n".join(f"- {t}" for t in tests)
        )
    return text


def proportional_hazards(results: StudyResults) -> str:
    """The PH test of both nomograms in words; every term with P < 0.05 is named."""
    table = results.table("ph_test")
    if table is None:
        return ""
    parts, violated = [], []
    for model in [m for m in MODELS if m in set(table["model"])]:
        rows = table[table["model"] == model]
        overall = rows[rows["term"] == "GLOBAL"]
        if not overall.empty:
            parts.append(f"{MODEL_LABELS[model].lower()} global {_p(overall['p'].iloc[0])}")
        for row in rows[(rows["term"] != "GLOBAL") & (rows["p"] < 0.05)].itertuples():
            violated.append(
                f"{results.variable_label(row.term)} in the {MODEL_LABELS[model].lower()} "
                f"({_p(row.p)})"
            )
    text = (
        "The proportional-hazards assumption was tested by the score test of scaled "
        "Schoenfeld residuals (`cox.zph`, @suptbl-ph, @supfig-schoenfeld): "
        + "; ".join(parts)
        + "."
    )
    if violated:
        text += (
            " The assumption is in doubt (P < 0.05) for " + "; ".join(violated) + ": its "
            "hazard ratio is an average over follow-up, and the figure shows how it changes."
        )
    else:
        text += " No term showed evidence against it at P < 0.05."
    return text


def risk_groups(results: StudyResults) -> str:
    groups = results.metrics.risk_groups
    cutoff = groups.get("cutoff")
    parts = [f"{SET_LABELS[s].lower()} set {_p(groups[s].get('p'))}" for s in SETS if s in groups]
    if not parts:
        return ""
    return (
        f"Splitting patients at the training median of the integrated nomogram's score "
        f"({fmt.number(cutoff)}) separated high- and low-risk groups: log-rank "
        + ", ".join(parts)
        + " (@fig-km, @tbl-riskgroups)."
    )


def r_check(results: StudyResults) -> str:
    if results.r_check is None or not results.r_check.checks:
        return "This run wrote no R cross-check (results/r_check.json is missing)."
    failed = [c.name for c in results.r_check.failed]
    verdict = (
        "all agree with R within their tolerances"
        if not failed
        else f"**{len(failed)} disagree with R**: {', '.join(failed)}"
    )
    n = len(results.r_check.checks)
    return f"{n} statistics of this run were recomputed in R; {verdict} (@tbl-rcheck)."


def internal_validation(results: StudyResults) -> str:
    """The whole-procedure bootstrap in a sentence: resamples used, dropped and why."""
    record = results.internal_validation
    if record is None:
        return "This run wrote no internal validation (results/internal_validation.json)."
    text = (
        f"Internal validation re-ran the whole procedure (ICC filter, mRMR, elastic-net CV "
        f"and the signature, the univariate screen and stepwise AIC of both nomograms) in "
        f"each of {record.B} bootstrap resamples of the training set (seed {record.seed}); "
        f"{record.n_used} resamples were used (@tbl-internal)"
    )
    if not record.dropped:
        return text + " and none was dropped."
    reasons: dict[str, int] = {}
    for entry in record.dropped:
        reasons[str(entry["reason"])] = reasons.get(str(entry["reason"]), 0) + 1
    listed = "; ".join(f"{n} x {reason}" for reason, n in reasons.items())
    return text + f"; {len(record.dropped)} were dropped: {listed}."
