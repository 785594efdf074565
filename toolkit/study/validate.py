"""Validation of the signature and the nomograms on the training and external sets.

Per set and model of the run (``nomograms.STUDY_MODELS`` present in ``models``:
``signature``, a Cox model on the signature alone; ``clinical``; ``integrated``; and with
the radiomics signature ``radiomics``, ``integrated_radiomics`` and ``combined``), with
the risk score = the model's linear predictor:

* C-index (``stats.concordance.harrell``, R's infinitesimal-jackknife SE,
  Wald 95% CI ``c +/- qnorm(0.975) se``: ``stats.wald.Z_975``) and a seeded
  percentile bootstrap CI (``bootstrap_ci``); the comparisons of :data:`COMPARISONS`
  whose two models are present (``concordance.compare``, the IJ z-test of
  ``survival::concordance``): integrated vs clinical, signature vs clinical, and with
  radiomics, radiomics vs clinical, integrated radiomics vs clinical, deep vs radiomics
  signature, combined vs integrated;
* calibration of each nomogram at the validation times (``stats.calibration``: grouped KM RMSE,
  ICI/E50/E90), with bootstrap optimism-corrected values on the training set
  (``calibration_bootstrap`` refits of the model's variables);
* time-dependent AUC (``stats.timeauc``, = ``riskRegression::Score``);
* accuracy (``accuracy``): per set, model and horizon the IPCW Brier score with
  its SE and Wald CI, the null (Kaplan-Meier) model's Brier score and IPA
  (``stats.brier``), the time-dependent AUC's SE and CI (``stats.timeauc``,
  both = ``riskRegression::Score(se.fit = TRUE)``), the calibration slope with
  its CI and calibration-in-the-large O/E with its CI (``stats.calibration``).
  A horizon beyond a set's last follow-up has no value there: it is listed
  under ``beyond_follow_up`` instead;
* bootstrap validation of each nomogram as fitted (``fixed_model_validation``:
  ``stats.validate.validate_cox`` = ``rms::validate(cph(...))``, the model's
  terms refitted in ``calibration_bootstrap`` resamples of the training set;
  the selection is not repeated, so this is the optimism of the fit alone);
* decision curves at the decision times (``stats.decision``);
* risk groups: split at the training median of the integrated model's linear
  predictor (high = above the median, as the paper), KM and log-rank per set
  (and, when ``study.centre`` names a centre column, also the log-rank stratified
  by centre, ``survdiff(... + strata(centre))``);
* median OS (and secondary outcomes) with 95% CI per set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from toolkit.config import StudyConfig
from toolkit.stats.wald import Z_975
from toolkit.study.nomograms import STUDY_MODELS, FittedModel, design_matrix, in_order
from toolkit.study.nomograms import nomogram_names as nomograms_of

SETS = ("train", "validation")
MODELS = tuple(spec.name for spec in STUDY_MODELS)
# (a, b): model a against model b; a run compares the pairs whose models it has
COMPARISONS = (
    ("integrated", "clinical"),
    ("signature", "clinical"),
    ("radiomics", "clinical"),
    ("integrated_radiomics", "clinical"),
    ("signature", "radiomics"),
    ("combined", "integrated"),
)


def models_of(models: Mapping[str, Any]) -> list[str]:
    """The names of ``models`` (a run's models), in :data:`MODELS`' order."""
    return in_order(models)


def comparisons_of(models: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The pairs of :data:`COMPARISONS` whose two models are in ``models``."""
    return [(a, b) for a, b in COMPARISONS if a in models and b in models]


def set_rows(frame: pd.DataFrame, config: StudyConfig) -> dict[str, pd.DataFrame]:
    return {
        "train": frame[frame["set"].isin(config.study.train_sets)],
        "validation": frame[frame["set"].isin(config.study.validation_sets)],
    }


def cindex(sets, models: Mapping[str, FittedModel], config: StudyConfig):
    """metrics.json's ``cindex`` and ``comparisons`` blocks."""
    from toolkit.stats import concordance

    out: dict[str, Any] = {}
    comparisons: dict[str, Any] = {}
    seed, n_boot = config.validation.seed, config.validation.n_bootstrap
    for name, rows in sets.items():
        t, e = rows["time"].to_numpy(float), rows["event"].to_numpy(float)
        risks = {m: models[m].linear_predictor(rows) for m in models_of(models)}
        out[name] = {}
        for m, risk in risks.items():
            c = concordance.harrell(t, e, risk)
            entry = {
                "c": c.c,
                "se": c.se,
                "lower": c.c - Z_975 * c.se,
                "upper": c.c + Z_975 * c.se,
            }
            if n_boot:
                lower, upper, _ = concordance.bootstrap_ci(t, e, risk, n_boot=n_boot, seed=seed)
                entry.update(boot_lower=lower, boot_upper=upper, n_bootstrap=n_boot)
            out[name][m] = entry
        comparisons[name] = {}
        for a, b in comparisons_of(models):
            cmp = concordance.compare(t, e, risks[a], risks[b])
            comparisons[name][f"{a}_vs_{b}"] = {
                "diff": cmp.diff,
                "se": cmp.se_diff,
                "z": cmp.z,
                "p": cmp.p,
            }
    return out, comparisons


def models_compared(cindex, models) -> pd.DataFrame:
    """The models side by side (table ``models_compared``): one row per model with its
    variables, number of terms, training log-likelihood and AIC, and its C-index with
    the Wald 95% CI in each set (metrics.json's ``cindex``).

    ``best_aic`` marks the nomogram (a model with clinical variables) of the lowest
    training AIC, -2 log L + 2 (terms): all are fitted on the same training rows, so
    their AICs compare; a signature alone is one score, not a nomogram, and is not a
    candidate.
    """
    from toolkit.study.nomograms import MODEL_SPECS

    rows = []
    for m in models_of(models):
        model = models[m]
        row = {
            "model": m,
            "label": MODEL_SPECS[m].label,
            "variables": list(model.variables),
            "n_terms": len(model.terms),
            "loglik": float(model.loglik),
            "aic": float(model.aic),
        }
        for name in SETS:
            entry = cindex.get(name, {}).get(m, {})
            for key in ("c", "lower", "upper"):
                row[f"{key}_{name}"] = entry.get(key, np.nan)
        rows.append(row)
    table = pd.DataFrame(rows)
    nomograms = table["model"].isin(nomograms_of(models))
    best = table.loc[nomograms, "aic"].idxmin()
    table["best_aic"] = table.index == best
    return table


def comparisons_table(comparisons) -> pd.DataFrame:
    """metrics.json's ``comparisons`` as a table (``cindex_comparisons``): per set and pair,
    the C-index difference a - b, its SE, z and P."""
    rows = [
        {"set": s, "a": a, "b": b, **comparisons[s][f"{a}_vs_{b}"]}
        for s in comparisons
        for a, b in COMPARISONS
        if f"{a}_vs_{b}" in comparisons[s]
    ]
    return pd.DataFrame(rows, columns=["set", "a", "b", "diff", "se", "z", "p"])


def _refitter(model: FittedModel, train: pd.DataFrame, times):
    """For the optimism bootstrap: refit the model's variables on resampled rows."""
    from toolkit.stats._efron import efron_fit

    x, _ = design_matrix(train, model.variables, model.levels)
    t, e = train["time"].to_numpy(float), train["event"].to_numpy(float)

    def refit(rows: np.ndarray):
        fit = efron_fit(x[rows], t[rows], e[rows])
        if not fit.converged:
            raise ValueError("bootstrap refit did not converge")
        return lambda idx: fit.survival(x[idx], list(times))

    return refit


def calibration(sets, models, config: StudyConfig):
    """metrics.json's ``calibration`` block and the calibration table (long)."""
    from toolkit.stats.calibration import calibrate, optimism_corrected

    times = config.validation.times
    settings = config.validation
    out: dict[str, Any] = {}
    rows_out = []
    for name, rows in sets.items():
        out[name] = {}
        t, e = rows["time"].to_numpy(float), rows["event"].to_numpy(float)
        for m in nomograms_of(models):
            survival = models[m].survival(rows, times)
            corrected = {}
            if name == "train" and settings.calibration_bootstrap:
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    corrected = optimism_corrected(
                        t,
                        e,
                        _refitter(models[m], rows, times),
                        times,
                        n_bootstrap=settings.calibration_bootstrap,
                        seed=settings.seed,
                        n_groups=settings.calibration_groups,
                        apparent_survival=survival,
                    )
            out[name][m] = {}
            for j, horizon in enumerate(times):
                result = calibrate(
                    t, e, survival[:, j], horizon, n_groups=settings.calibration_groups
                )
                entry = {
                    "rmse": result.rmse,
                    "ici": result.ici,
                    "e50": result.e50,
                    "e90": result.e90,
                }
                fixed = corrected.get(horizon, {})
                for key in ("rmse", "ici", "e50", "e90"):
                    if key in fixed:
                        entry[f"{key}_corrected"] = fixed[key]
                if fixed:
                    entry["n_bootstrap_used"] = fixed["n_used"]
                out[name][m][f"{horizon:g}"] = entry
                groups = result.groups.assign(set=name, model=m, horizon=horizon, rmse=result.rmse)
                rows_out.append(groups)
    return out, pd.concat(rows_out, ignore_index=True)


def td_auc(sets, models, config: StudyConfig):
    """metrics.json's ``td_auc`` block and its table."""
    from toolkit.stats.timeauc import time_auc

    times = config.validation.times
    out: dict[str, Any] = {}
    rows = []
    for name, data in sets.items():
        out[name] = {}
        t, e = data["time"].to_numpy(float), data["event"].to_numpy(float)
        for m in models_of(models):
            risk = 1 - models[m].survival(data, times)
            result = time_auc(t, e, risk, times)
            out[name][m] = {f"{h:g}": float(a) for h, a in zip(times, result.auc, strict=True)}
            for h, a, nc, nn in zip(
                times, result.auc, result.n_cases, result.n_controls, strict=True
            ):
                rows.append(
                    {"set": name, "model": m, "time": h, "auc": a, "n_cases": nc, "n_controls": nn}
                )
    return out, pd.DataFrame(rows)


def _within(rows: pd.DataFrame, times) -> tuple[list[float], list[float]]:
    """The horizons at or before the set's last follow-up, and those beyond it."""
    last = float(rows["time"].max())
    return [h for h in times if h <= last], [h for h in times if h > last]


def _per_horizon(horizons, **columns) -> dict[str, dict[str, float]]:
    return {f"{h:g}": {k: float(v[j]) for k, v in columns.items()} for j, h in enumerate(horizons)}


def _model_accuracy(rows: pd.DataFrame, model: FittedModel, horizons) -> dict[str, Any]:
    from toolkit.stats.brier import brier_score
    from toolkit.stats.calibration import calibration_in_the_large, calibration_slope
    from toolkit.stats.timeauc import time_auc

    t, e = rows["time"].to_numpy(float), rows["event"].to_numpy(float)
    survival = model.survival(rows, horizons)
    brier = brier_score(t, e, survival, horizons)
    auc = time_auc(t, e, 1 - survival, horizons)
    slope = calibration_slope(t, e, model.linear_predictor(rows))
    large = calibration_in_the_large(t, e, survival, horizons)
    return {
        "brier": _per_horizon(
            horizons,
            brier=brier.brier,
            se=brier.se,
            lower=brier.lower,
            upper=brier.upper,
            null_brier=brier.null_brier,
            ipa=brier.ipa,
        ),
        "auc": _per_horizon(horizons, auc=auc.auc, se=auc.se, lower=auc.lower, upper=auc.upper),
        "calibration_slope": {
            "slope": slope.slope,
            "se": slope.se,
            "lower": slope.lower,
            "upper": slope.upper,
        },
        "calibration_in_the_large": _per_horizon(
            horizons,
            observed=large.observed,
            expected=large.expected,
            oe=large.ratio,
            lower=large.lower,
            upper=large.upper,
        ),
    }


def _long(name: str, model: str, entry: dict[str, Any]):
    """The accuracy table's rows of one set and model: (set, model, horizon, measure, value)."""
    for block in ("brier", "auc", "calibration_in_the_large"):
        for h, values in entry.get(block, {}).items():
            for k, v in values.items():
                yield name, model, float(h), f"{block}.{k}", v
    for k, v in entry.get("calibration_slope", {}).items():
        yield name, model, np.nan, f"calibration_slope.{k}", v


def accuracy(sets, models, config: StudyConfig) -> tuple[dict[str, Any], pd.DataFrame]:
    """metrics.json's ``accuracy`` block and its table (long: set, model, horizon, measure)."""
    out: dict[str, Any] = {}
    rows = []
    for name, data in sets.items():
        horizons, beyond = _within(data, config.validation.times)
        out[name] = {"beyond_follow_up": beyond}
        for m in models_of(models):
            out[name][m] = _model_accuracy(data, models[m], horizons) if horizons else {}
            rows += _long(name, m, out[name][m])
    return out, pd.DataFrame(rows, columns=["set", "model", "horizon", "measure", "value"])


def validation_table(result) -> dict[str, dict[str, float]]:
    """A ``CoxValidation``'s table as metrics.json holds it: index -> column -> value."""
    table = result.table
    return {
        index: {column: float(table.loc[index, column]) for column in table.columns}
        for index in table.index
    }


def fixed_model_validation(sets, models, config: StudyConfig) -> dict[str, Any]:
    """metrics.json's ``fixed_model_validation``: ``rms::validate`` of each nomogram.

    ``calibration_bootstrap`` resamples (seeded with ``validation.seed``) of the training
    set; none when it is 0, and a note instead of a table when it is below
    ``stats.validate.MIN_RESAMPLES``.
    """
    from toolkit.stats.validate import MIN_RESAMPLES, validate_cox

    B, seed = config.validation.calibration_bootstrap, config.validation.seed
    if not B:
        return {}
    if B < MIN_RESAMPLES:
        return {"note": f"not run: calibration_bootstrap = {B} < {MIN_RESAMPLES} resamples"}
    train = sets["train"]
    t, e = train["time"].to_numpy(float), train["event"].to_numpy(float)
    out: dict[str, Any] = {"B": B, "seed": seed}
    for m in nomograms_of(models):
        x, names = design_matrix(train, models[m].variables, models[m].levels)
        result = validate_cox(x, t, e, B=B, seed=seed)
        out[m] = {
            "terms": list(names),
            "indexes": validation_table(result),
            "failed": [{"resample": f.resample, "reason": f.reason} for f in result.failed],
        }
    return out


def decision(sets, models, config: StudyConfig) -> dict[str, pd.DataFrame]:
    """Decision-curve tables per set (net benefit at the decision times)."""
    from toolkit.stats.decision import decision_table

    horizons = config.validation.decision_times
    out = {}
    for name, data in sets.items():
        t, e = data["time"].to_numpy(float), data["event"].to_numpy(float)
        risks = {}
        for m in models_of(models):
            s = models[m].survival(data, horizons)
            risks[m] = {h: 1 - s[:, j] for j, h in enumerate(horizons)}
        out[name] = decision_table(t, e, risks, horizons)
    return out


def decision_summary(sets, models, config: StudyConfig) -> pd.DataFrame:
    """Net benefit, interventions avoided and the models' net-benefit differences, tabled.

    At each decision time and each of ``validation.decision_thresholds``, by the
    ``dcurves`` rules (``stats.decision.decision_curve``: treated when risk >= the
    threshold; NaN where the treated patients' follow-up ends before the time):
    one row per set, time, threshold and model with its net benefit, treating
    everyone's and the net interventions avoided per 100 patients; and one row
    per comparison of :func:`comparisons_of` (``model`` "a - b") with the difference
    of net benefit and its paired bootstrap percentile 95% CI
    (``stats.decision.compare``, ``validation.n_bootstrap`` resamples, at least
    20, from ``validation.seed``). A decision time beyond a set's follow-up has
    no rows for that set. The decision-curve figures and ``decision.parquet``
    keep Vickers' ``stdca`` rules (see ``stats.decision``).
    """
    from toolkit.stats.decision import compare, decision_curve

    thresholds = list(config.validation.decision_thresholds)
    B = max(config.validation.n_bootstrap, 20)
    rows: list[dict[str, Any]] = []
    for name, data in sets.items():
        t, e = data["time"].to_numpy(float), data["event"].to_numpy(float)
        for horizon in config.validation.decision_times:
            if horizon > t.max():
                continue
            risk = {m: 1 - models[m].survival(data, [horizon])[:, 0] for m in models_of(models)}
            base = {"set": name, "horizon": float(horizon)}
            for m in models_of(models):
                curve = decision_curve(t, e, risk[m], horizon, thresholds)
                for k, threshold in enumerate(curve.thresholds):
                    rows.append(
                        base
                        | {"threshold": float(threshold), "model": m}
                        | {"net_benefit": curve.net_benefit[k], "treat_all": curve.treat_all[k]}
                        | {"interventions_avoided": curve.interventions_avoided[k]}
                    )
            for a, b in comparisons_of(models):
                diff = compare(
                    t, e, risk[a], risk[b], horizon, thresholds, B=B, seed=config.validation.seed
                )
                for k, threshold in enumerate(diff.thresholds):
                    rows.append(
                        base
                        | {"threshold": float(threshold), "model": f"{a} - {b}"}
                        | {"net_benefit": diff.difference[k], "lower": diff.lower[k]}
                        | {"upper": diff.upper[k], "n_resamples": int(diff.n_resamples[k])}
                    )
    columns = ["set", "horizon", "threshold", "model", "net_benefit", "treat_all"]
    columns += ["interventions_avoided", "lower", "upper", "n_resamples"]
    return pd.DataFrame(rows, columns=columns)


def risk_groups(sets, models) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Median split of the integrated linear predictor (training median), log-rank per set."""
    from toolkit.stats.survival import logrank

    cutoff = float(np.median(models["integrated"].linear_predictor(sets["train"])))
    out: dict[str, Any] = {"cutoff": cutoff, "score": "integrated linear predictor"}
    groups = {}
    for name, data in sets.items():
        high = models["integrated"].linear_predictor(data) > cutoff
        groups[name] = high
        label = np.where(high, "high", "low")
        t, e = data["time"].to_numpy(float), data["event"].to_numpy(float)
        test = logrank(t, e, label)
        out[name] = {
            "n_high": int(high.sum()),
            "n_low": int((~high).sum()),
            "chisq": float(test.chisq),
            "p": float(test.p),
        }
        if "centre" in data.columns:
            strata = data["centre"].to_numpy()
            stratified = logrank(t, e, label, strata=strata)
            out[name]["stratified"] = {
                "by": "centre",
                "n_centres": len(set(strata)),
                "chisq": float(stratified.chisq),
                "p": float(stratified.p),
            }
    return out, groups


def median_survival(sets, config: StudyConfig) -> dict[str, Any]:
    """Median survival with its 95% CI per set and outcome (print.survfit's)."""
    from toolkit.stats.survival import kaplan_meier

    outcomes = [("os", "time", "event")]
    outcomes += [
        (s.name.lower(), f"{s.name.lower()}_time", f"{s.name.lower()}_event")
        for s in config.outcome.secondary
    ]
    out: dict[str, Any] = {}
    for name, data in sets.items():
        out[name] = {}
        for key, tcol, ecol in outcomes:
            km = kaplan_meier(data[tcol].to_numpy(float), data[ecol].to_numpy(float))
            out[name][key] = {
                "median": km.median,
                "lower": km.median_lower,
                "upper": km.median_upper,
                "n": km.n,
                "events": km.n_events,
            }
    return out


def cohort_counts(sets) -> dict[str, Any]:
    return {
        name: {"n": len(data), "events": int(data["event"].sum())} for name, data in sets.items()
    }
