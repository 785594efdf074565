"""The methods section, written from study.toml and metrics.json in TRIPOD+AI's order.

TRIPOD+AI (Collins et al., BMJ 2024) items 5–12: source of data, participants,
outcome, predictors, sample size, missing data, model building (analysis) and
validation (performance measures). Every sentence states what this run
actually did; ``toolkit.report.tripod`` maps each item to its section.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from toolkit.artifacts import read_parquet_provenance
from toolkit.config import Validation
from toolkit.report.study import StudyResults, cohort_sentence


def _join(items: list[str]) -> str:
    items = [str(i) for i in items]
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def source_of_data(results: StudyResults) -> str:
    study = results.settings.get("study", {})
    name = study.get("name", results.study_dir.name)
    text = f"**Source of data.** {name}."
    if results.synthetic:
        text += (
            " This cohort is **synthetic**: sigkit generated the CT phantoms, tumour masks, "
            "clinical variables and outcomes from a known model (`sigkit synth`); no patient "
            "contributed data."
        )
    train = _join(study.get("train_sets", ["train"]))
    validation = _join(study.get("validation_sets", ["validation"]))
    text += f" Patients of set(s) {train} formed the training set and {validation} the "
    text += "external validation set, which was used only to evaluate the frozen models."
    return text


def participants(results: StudyResults) -> str:
    exclusions = results.table("exclusions")
    n_excluded = 0 if exclusions is None else len(exclusions)
    text = f"**Participants.** {cohort_sentence(results).capitalize()}."
    text += (
        f" {n_excluded} patient(s) were excluded during processing (@suptbl-exclusions lists each "
        "with its reason)."
        if n_excluded
        else " No patient was excluded during processing."
    )
    return text


def outcome(results: StudyResults) -> str:
    out = results.settings.get("outcome", {})
    label = out.get("label", "the outcome")
    text = (
        f"**Outcome.** {label} (time `{out.get('time', '?')}` in {results.time_unit}, "
        f"event indicator `{out.get('event', '?')}`)."
    )
    secondary = [s.get("name", s.get("time", "")) for s in out.get("secondary", [])]
    if secondary:
        text += f" Secondary outcome(s), described but not modelled: {_join(secondary)}."
    return text


def _variable(variable: dict[str, Any]) -> str:
    label = variable.get("label", variable.get("name"))
    unit = f" ({variable['unit']})" if variable.get("unit") else ""
    if variable.get("cutoffs"):
        cut = ", ".join(f"{c:g}" for c in variable["cutoffs"])
        return f"{label}{unit}, categorised at {cut}"
    if variable.get("levels"):
        return (
            f"{label} ({'/'.join(map(str, variable['levels']))}; reference {variable['levels'][0]})"
        )
    return f"{label}{unit}"


def _slices_text(imaging: dict[str, Any]) -> str:
    """Where the crops were taken ([imaging] slices, toolkit.imaging.roi.tumour_slices)."""
    slices = imaging.get("slices", 1)
    if slices == 1:
        return "on the axial slice with the largest tumour ROI"
    if slices == "all":
        return "on every axial slice with tumour"
    return (
        f"on the {slices} consecutive axial slices with tumour around the slice with the "
        "largest tumour ROI (fewer where the tumour spans fewer), on each"
    )


def _pooled(imaging: dict[str, Any]) -> str:
    if imaging.get("slices", 1) == 1:
        return ""
    how = {"mean": "mean", "max": "maximum"}.get(imaging.get("pooling", "mean"), "?")
    return (
        f", pooled over the slices by their {how} feature by feature; the reproducibility "
        "(ICC) filter below was computed on these pooled features"
    )


def predictors(results: StudyResults) -> str:
    imaging = results.settings.get("imaging", {})
    phases = _join(imaging.get("phases", ["arterial", "portal"]))
    readers = imaging.get("readers", [])
    variables = [_variable(v) for v in results.settings.get("variables", [])]
    text = (
        f"**Predictors.** Clinical candidates: {'; '.join(variables) or 'none declared'}. "
        f"Imaging: {phases} phase CECT"
    )
    if imaging.get("register", True):
        text += (
            ", the arterial phase rigidly registered onto the portal phase (SimpleITK, Euler 3D)"
        )
    crop = imaging.get("crop_size", 224)
    text += (
        f"; {_slices_text(imaging)} a {crop}×{crop} crop centred at the "
        f"ROI centroid was z-scored ({imaging.get('zscore', 'crop')}) and passed through "
        f"DenseNet-121 without its classifier, giving 1024 features per phase{_pooled(imaging)}."
    )
    weights = results.weights
    if weights == "random":
        text += " The network's weights were **random**, not ImageNet-trained."
    else:
        text += f" Network weights: {weights}."
    if readers:
        text += (
            f" Tumour ROIs were delineated by {len(readers)} reader sessions ({_join(readers)})."
        )
    return text + _radiomics_extraction(results)


_MODES = {
    "3d": "in 3-D on the tumour volume",
    "2d": "in 2-D (axial, PyRadiomics' force2D) on each reader's largest-ROI slice",
}


def _radiomics_extraction(results: StudyResults) -> str:
    """The handcrafted features' extraction, as the radiomics stage recorded it in its
    table's provenance (nothing when the run computed none)."""
    folder = getattr(results, "results", None)
    path = Path(folder) / "tables" / "radiomics_features.parquet" if folder else None
    if path is None or not path.exists():
        return ""
    recorded = read_parquet_provenance(path).get("radiomics") or {}
    parameters = recorded.get("parameters") or {}
    if not parameters:
        return ""
    first = next(iter(parameters.values()))
    setting = first.get("setting") or {}
    types = _join(list(first.get("imageType") or {"Original": {}}))
    named = ["shape" if c == "shape2D" else c for c in first.get("featureClass") or {}]
    classes = ", ".join(dict.fromkeys(named))
    spacing = setting.get("resampledPixelSpacing")
    resampled = f", resampled to {' × '.join(f'{v:g}' for v in spacing)} mm" if spacing else ""
    return (
        f" Handcrafted radiomics features (PyRadiomics {recorded.get('pyradiomics', '?')}, "
        f"IBSI-based definitions) were computed for every reader's ROI in each phase, "
        f"{_join([_MODES.get(m, m) for m in parameters])}: image types {types}; feature "
        f"classes {classes or 'all'}; bin width {setting.get('binWidth', 25):g}{resampled}. "
        "The 3-D shape class's mesh surface area, volume and maximum diameters were "
        "computed by sigkit from PyRadiomics' marching-cubes mesh (the diameters identical "
        "to PyRadiomics', the area and volume equal to rounding); every other feature is "
        "PyRadiomics' own."
    )


def sample_size(results: StudyResults) -> str:
    cohort = results.metrics.cohort
    events = cohort.get("train", {}).get("events")
    icc = results.metrics.icc
    n_features = icc.n_features if icc is not None else None
    text = "**Sample size.** No formal sample-size calculation; all available patients were used."
    finetuned = results.settings.get("signature", {}).get("source") == "finetuned"
    if events is not None and finetuned:
        text += (
            f" The training set had {events} events, hence the network's weight decay, "
            "augmentation and early stopping on an inner validation split."
        )
    elif events is not None:
        text += f" The training set had {events} events"
        text += f" for {n_features} candidate image features" if n_features else ""
        text += ", hence the penalised (elastic-net) selection."
    return text


def missing_data(results: StudyResults) -> str:
    """The missing-data paragraph: what ``validation.missing`` did. Under multiple
    imputation with no value missing (no ``missing_values`` table with a count, which the
    validate stage writes only when it imputed) the study ran on the complete data."""
    settings = results.settings.get("validation", {})
    rule = settings.get("missing", "complete-case")
    if rule == "multiple-imputation" and not _anything_imputed(results):
        return (
            "**Missing data.** No model candidate variable had a missing value: the models "
            "were fitted on the complete data and nothing was imputed (multiple imputation, "
            'set by `validation.missing = "multiple-imputation"`, had nothing to do).'
        )
    described = {
        "multiple-imputation": _multiple_imputation(settings.get("m", 20)),
        "complete-case": "complete-case analysis (patients missing a model variable were excluded "
        "from that model and counted in @suptbl-exclusions)",
        "impute-median-mode": "single imputation with the training set's median (numeric) or mode "
        "(categorical), applied unchanged to the validation set",
    }
    return f"**Missing data.** {described.get(rule, rule)}."


def _finetuned_signature(results: StudyResults) -> str:
    """How a fine-tuned signature was trained, from results/finetune.json."""
    path = results.results / "finetune.json"
    record = json.loads(path.read_text()) if path.is_file() else {}
    tuned = record.get("settings", {})
    width = (
        "DenseNet-121"
        if tuned.get("blocks", [6, 12, 24, 16]) == [6, 12, 24, 16]
        and tuned.get("growth_rate", 32) == 32
        else (
            f"a reduced-width DenseNet (blocks {tuned.get('blocks')}, growth rate "
            f"{tuned.get('growth_rate')}, stem {tuned.get('stem_features')} channels)"
        )
    )
    augmentation = (
        "random flips, rotations up to 10° and intensity jitter"
        if tuned.get("augmentation", True)
        else "no augmentation"
    )
    cv = record.get("cv_c_index_mean")
    cv_text = f" (mean C-index {cv:.3f})" if isinstance(cv, float) else ""
    return (
        f"**Model building.** The signature was **fine-tuned end to end**: {width}, "
        f"backbone from {record.get('backbone', '?')}, shared by both phases, with a linear "
        "Cox head on the pooled features of the arterial and portal crops "
        f"({tuned.get('input_size', 224)}×{tuned.get('input_size', 224)}), trained by AdamW "
        f"(learning rate {tuned.get('learning_rate', '?')}, weight decay "
        f"{tuned.get('weight_decay', '?')}) on the exact Cox partial likelihood (Efron ties) "
        "over the whole training risk set at every step, batch-norm statistics frozen, "
        f"{augmentation}, at most {tuned.get('steps', '?')} epochs with early stopping on a "
        f"{100 * tuned.get('validation_fraction', 0):g}% inner validation split of the "
        "training set (stratified by event; the best epoch's parameters kept). Its "
        f"discrimination was first estimated by {record.get('n_folds', '?')}-fold "
        "cross-validation with the fine-tuning repeated inside each outer fold"
        f"{cv_text}; the final network, trained on the whole training set (stopped at epoch "
        f"{record.get('best_step', '?')}), gives the signature, its linear predictor, and "
        "scored the validation set once. No ICC filter or mRMR applies; CAMs and the "
        "whole-procedure bootstrap are not computed for a fine-tuned signature. Clinical "
        "candidates and the signature were screened by univariate Cox regression "
        "(P < 0.05, @suptbl-univariate); stepwise selection by AIC in both directions from "
        "all screened candidates (as `MASS::stepAIC`, direction both) gave the "
        "clinical nomogram (clinical candidates only) and the integrated nomogram (clinical "
        "candidates and the signature). The proportional-hazards assumption of both was "
        "tested by `cox.zph`'s score test (Kaplan–Meier time scale; a categorical variable "
        "as one term)."
    ) + _centre_sentence(results)


def _anything_imputed(results: StudyResults) -> bool:
    table = results.table("missing_values")
    return table is not None and int(table["n_missing"].sum()) > 0


def _multiple_imputation(m: int) -> str:
    return (
        f"multiple imputation by chained equations ({m} imputations; predictive mean "
        "matching with 5 donors, type-1 matching, categorical variables on their level "
        "codes), the outcome entering every imputation model as the event indicator and the "
        "Nelson–Aalen cumulative hazard (White and Royston 2009); the imputation models were "
        "fitted on the training set and applied unchanged to the validation set. The Cox "
        "models were fitted on each completed data set and pooled by Rubin's rules "
        "(Barnard–Rubin degrees of freedom, as `mice::pool`), and a variable was kept by "
        "stepwise selection when it was selected in at least half of the imputations "
        "(majority method, Wood et al. 2008). The validation metrics were computed once on "
        "each patient's linear predictor averaged over the imputations (the pooled "
        "coefficients applied to every completed data set); what needs a single data set "
        "(the univariate table, the nomograms' axes, the proportional-hazards test, the "
        "calibration optimism and the bootstrap validation of each nomogram as fitted) used the "
        "first completed data set. The locked model "
        "bundle carries the per-imputation Cox fits and a covariate-only imputer of the "
        "model's variables and the signature (fitted on the training set without the "
        "outcome, which a new patient does not have), so "
        "that `sigkit apply` completes a new cohort as many times and pools each predicted "
        "survival and its 95% CI by Rubin's rules on the log cumulative hazard (Marshall "
        "et al. 2009). @suptbl-exclusions lists the values missing per variable"
    )


def model_building(results: StudyResults) -> str:
    sig = results.settings.get("signature", {})
    if sig.get("source") == "finetuned":
        return _finetuned_signature(results)
    icc = results.metrics.icc
    kept = f" ({icc.n_kept} of {icc.n_features} kept)" if icc is not None else ""
    l1 = ", ".join(f"{x:g}" for x in sig.get("l1_ratios", []))
    text = (
        f"**Model building.** Features reproducible across readers "
        f"({sig.get('icc_type', 'ICC2')} > {sig.get('icc_threshold', 0.75)}){kept} were ranked "
        f"by mRMR; the top {sig.get('mrmr_k', '?')} entered an elastic-net Cox model "
        f"(l1 ratios {l1 or '?'}; penalty chosen by {sig.get('n_folds', 5)}-fold "
        f"cross-validation, rule '{sig.get('penalty', 'min')}'; seed {sig.get('seed', 0)}), "
        "whose linear predictor is the deep-learning signature. Clinical candidates and the "
        "signature were screened by univariate Cox regression (P < 0.05, @suptbl-univariate); "
        "stepwise selection by AIC in both directions from all screened candidates (as "
        "`MASS::stepAIC`, direction both) gave the clinical nomogram (clinical candidates "
        "only) and the integrated nomogram (clinical candidates and the signature). The "
        "proportional-hazards assumption of both was tested by `cox.zph`'s score test "
        "(Kaplan–Meier time scale; a categorical variable as one term)."
    )
    return text + _radiomics_models_sentence(results) + _centre_sentence(results)


def _radiomics_models_sentence(results: StudyResults) -> str:
    """The models of the radiomics signature, when the run made them."""
    made = {m for per_set in results.metrics.cindex.values() for m in per_set}
    if "combined" not in made:
        return ""
    return (
        " The radiomics signature (the same ICC filter, mRMR and elastic-net CV on the "
        "PyRadiomics features) entered the same univariate screen; the same stepwise "
        "selection from the screened clinical candidates, with the radiomics signature held "
        "in, gave the integrated radiomics nomogram, and with both signatures held in the "
        "combined nomogram; each signature alone is a model too (@tbl-models). The nomogram "
        "with the lowest training AIC is drawn in @fig-best-nomogram."
    )


def _centre_sentence(results: StudyResults) -> str:
    centre = results.settings.get("study", {}).get("centre")
    if not centre:
        return ""
    return (
        f" Patients are clustered in centres (`{centre}`): the nomograms' standard errors "
        "are also given clustered by centre (robust sandwich, @suptbl-clustered), and the "
        "risk-group log-rank tests also stratified by centre."
    )


def validation(results: StudyResults) -> str:
    settings = results.settings.get("validation", {})
    times = ", ".join(f"{t:g}" for t in settings.get("times", [12, 24, 36]))
    decision = ", ".join(f"{t:g}" for t in settings.get("decision_times", []))
    text = (
        "**Validation and statistical analysis.** Harrell's C-index with its 95% CI (infinitesimal "
        f"jackknife, as R's `survival::concordance`, and {settings.get('n_bootstrap', '?')} "
        "bootstrap resamples); C-indexes of two models on the same patients compared by the "
        "test on their correlated estimates; calibration at "
        f"{times} {results.time_unit} (RMSE of observed against predicted survival, ICI, E50, "
        "E90), calibration slope (the linear predictor's coefficient refitted on the set) and "
        "calibration-in-the-large (observed over expected risk); time-dependent AUC and the "
        "inverse-probability-of-censoring weighted Brier score, each with its 95% CI "
        "(influence-function SEs, as `riskRegression::Score`), and the index of prediction "
        "accuracy (IPA) against the Kaplan–Meier null model; median-split risk groups "
        "(training median applied unchanged to validation) compared by the log-rank test"
    )
    if decision:
        summary = results.table("decision_summary")
        shown = [] if summary is None else sorted(summary["threshold"].unique())
        thresholds = ", ".join(f"{100 * p:g}%" for p in shown)
        text += (
            f"; decision curves at {decision} {results.time_unit} (net benefit, Vickers et al. "
            f"2008), with the net interventions avoided per 100 patients and the integrated "
            f"nomogram's net-benefit gain over the clinical one (paired bootstrap percentile "
            f"95% CI) at threshold probabilities of {thresholds} (@tbl-decision)."
        )
    else:
        text += "."
    boot = (results.metrics.fixed_model_validation or {}).get("B")
    if boot:
        text += (
            f" Each nomogram as fitted was validated in {boot} bootstrap resamples of the "
            "training set (Harrell's optimism correction, the indexes of `rms::validate`: "
            "Dxy, R², calibration slope, D, U, Q, g; @tbl-optimism); the variable selection "
            "was not repeated in the resamples, so this optimism is that of the fit alone."
        )
    text += (
        " Baseline characteristics were compared by the Mann–Whitney U test (numeric) and "
        "Fisher's exact test (categorical). Tests were two-sided at 0.05. Every statistic that R "
        "also computes was recomputed in R (survival, rms, glmnet, riskRegression) for this run "
        "(@tbl-rcheck)."
    )
    return text


def internal_validation(results: StudyResults) -> str:
    """The whole-procedure bootstrap (study/internal.py); nothing when the run had none."""
    record = results.internal_validation
    if record is None and results.settings.get("signature", {}).get("source") == "finetuned":
        return (
            "**Internal validation.** No whole-procedure bootstrap (each resample would "
            "fine-tune the network again); the fine-tuned signature's optimism was estimated "
            "by its outer-fold cross-validation (apparent minus cross-validated C-index), the "
            "nomograms' was not (@sec-internal)."
        )
    if record is None:
        return ""
    return (
        "**Internal validation of the whole procedure.** In each of "
        f"{record.B} bootstrap resamples of the training set (seed {record.seed}), every step "
        "that learned from the training data was run again: the ICC filter, mRMR, the "
        "elastic-net cross-validation and the signature, the univariate screen and stepwise "
        "AIC of both nomograms. Each refitted model was scored on its resample and on the "
        "original training set (C-index, calibration slope, Brier score and IPA, calibration "
        "RMSE); the mean difference, the optimism, was subtracted from the study's apparent "
        "values (Harrell's optimism bootstrap with the selection inside the loop; "
        f"@sec-internal).{_refilled(record.refilled, results)}"
    )


def _refilled(rule: str, results: StudyResults) -> str:
    """The internal validation's sentence on the missing values each resample filled."""
    if rule == "multiple-imputation":
        m = results.settings.get("validation", {}).get("m", Validation.model_fields["m"].default)
        return (
            " Each resample's missing clinical values were imputed again before the "
            f"selection ({m} chained equations fitted on the resample, then the majority "
            "rule and Rubin's rules as in the study: bootstrap, then impute); each "
            "refitted model was scored at its linear predictor averaged over the "
            "resample's completed sets (apparent) and over the study's completed "
            "training sets (test), as the study's own models were."
        )
    if rule == "impute-median-mode":
        return (
            " Each resample's missing clinical values were filled again by the resample's "
            "own medians and modes before the selection."
        )
    return ""


SECTIONS = (
    source_of_data,
    participants,
    outcome,
    predictors,
    sample_size,
    missing_data,
    model_building,
    validation,
    internal_validation,
)


def methods_markdown(results: StudyResults) -> str:
    """The methods as Markdown paragraphs, one per TRIPOD item (none for what did not run)."""
    paragraphs = (section(results) for section in SECTIONS)
    return "\n\n".join(p for p in paragraphs if p) + "\n"
