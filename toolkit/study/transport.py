"""Transportability of the locked models to a new cohort with outcomes (``sigkit apply``).

For each frozen model (``signature``, ``clinical``, ``integrated``), with the statistics of
``toolkit.stats.transport`` (its docstring has the formulas and the R equivalents):

* **case-mix** (Debray et al. 2015): the mean and SD of the model's linear predictor
  (uncentred, models.json's) in the new cohort and, given the training rows, in the
  training set; and two membership models (logistic regression of new = 1 vs training = 0)
  with their C-statistic (AUC, DeLong CI): ``membership_lp`` on the linear predictor
  alone, ``membership_variables`` on the model's design columns (the treatment-coded
  variables; the linear predictor is their combination, so it is not added). Without the
  training rows only the training mean of the linear predictor is known (the model's
  ``lp_centre``, its mean over the training patients), and the membership models are
  left out, said in ``note``: a bundle written with ``[bundle] case_mix = false``
  carries no training rows (``sigkit apply`` passes the bundle's ``case_mix.parquet``
  otherwise);
* **model updating** (Steyerberg ch. 20): ``original`` (the frozen model), ``baseline``
  (the baseline hazard re-estimated with the linear predictor as offset), ``slope``
  (``coxph(Surv ~ lp)``: slope with its CI) and ``refit`` (the design refitted), each with
  its apparent calibration on the new cohort: grouped KM RMSE and ICI (the study's
  ``validation.calibration_groups``) and O/E at each horizon the cohort's follow-up
  reaches, and the calibration slope.

Under multiple imputation (a bundle with ``imputation``) the cohort, and the training case
mix, are completed ``m`` times by the bundle's covariate-only imputer: the linear
predictor is the pooled model's averaged over the completions (``imputed.AveragedModel``),
the membership model on the variables takes the design columns averaged over the
completions (an imputed indicator is the fraction of completions with that level), and
``refit`` is not computed when the cohort has imputed values (it would need a fit per
completion, pooled), said in its note.

A block that cannot be computed (too few events, a membership model that separates the
cohorts perfectly, a refit that does not converge) says why in its ``note``; the others
stand.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from toolkit.study.bundle import MODELS, ModelBundle

TABLE_COLUMNS = [
    "model",
    "method",
    "horizon",
    "rmse",
    "ici",
    "oe",
    "oe_lower",
    "oe_upper",
    "slope",
    "slope_lower",
    "slope_upper",
]


def _auc_json(membership) -> dict[str, Any]:
    a = membership.auc
    return {
        "auc": a.auc,
        "se": a.se,
        "lower": a.lower,
        "upper": a.upper,
        "n_new": a.n_cases,
        "n_training": a.n_controls,
        "coefficients": dict(zip(membership.names, membership.coef.tolist(), strict=True)),
    }


def _membership(development, new, names) -> dict[str, Any]:
    """The membership model's JSON, or a note saying why it is not there."""
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    from toolkit.stats.transport import membership_model

    failures = (ConvergenceWarning, PerfectSeparationWarning, RuntimeWarning)
    try:
        with warnings.catch_warnings():
            for category in failures:  # perfect separation, no convergence: no estimate
                warnings.simplefilter("error", category)
            return _auc_json(membership_model(development, new, names))
    except (ValueError, np.linalg.LinAlgError, *failures) as error:
        return {"note": f"not computed: {error}"}


def _spread_json(lp) -> dict[str, float]:
    from toolkit.stats.transport import spread

    s = spread(lp)
    return {"n": s.n, "mean": s.mean, "sd": s.sd}


def _mean_design(model, completed) -> tuple[np.ndarray, list[str]]:
    """The model's design columns averaged over the rows' completions (the design itself
    for a complete-data model: one completion)."""
    from toolkit.study.nomograms import design_matrix

    variables, levels = list(model.variables), dict(model.levels)
    designs = [design_matrix(c, variables, levels) for c in completed]
    return np.mean([x for x, _ in designs], axis=0), designs[0][1]


def _case_mix(new, training) -> dict[str, Any]:
    """The linear predictor's spread in both sets and the membership models of one model.

    ``new`` is (the model as scored, the cohort's completions); ``training`` the same of
    the bundle's training case mix, or None."""
    model, completed = new
    frame = completed[0]
    lp_new = model.linear_predictor(frame)
    out: dict[str, Any] = {"linear_predictor": {"new": _spread_json(lp_new)}}
    if training is None:
        out["linear_predictor"]["training"] = {"mean": float(model.lp_centre)}
        out["note"] = (
            "the model bundle carries no training case mix ([bundle] case_mix = false): the "
            "training SD of the linear predictor and the membership models need it"
        )
        return out
    train_model, train_completed = training
    lp_dev = train_model.linear_predictor(train_completed[0])
    out["linear_predictor"]["training"] = _spread_json(lp_dev)
    out["membership_lp"] = _membership(lp_dev, lp_new, ["linear_predictor"])
    x_dev, names = _mean_design(model, train_completed)
    x_new, _ = _mean_design(model, completed)
    out["membership_variables"] = _membership(x_dev, x_new, names)
    return out


def _update_rows(name: str, updates) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Each update's JSON (its calibration slope, per horizon RMSE, ICI and O/E) and rows."""
    block, rows = {}, []
    for method, update in updates.items():
        c = update.calibration
        slope = {"slope": c.slope.slope, "lower": c.slope.lower, "upper": c.slope.upper}
        entry: dict[str, Any] = {"calibration_slope": slope, "horizons": {}}
        if method == "slope":
            fit = update.fit
            entry["updated_slope"] = {"slope": float(fit.coef[0]), "se": float(fit.se[0])}
        for k, h in enumerate(c.horizons):
            values = (c.rmse, c.ici, c.ratio, c.ratio_lower, c.ratio_upper)
            keys = ("rmse", "ici", "oe", "oe_lower", "oe_upper")
            cells = {key: float(v[k]) for key, v in zip(keys, values, strict=True)}
            entry["horizons"][f"{h:g}"] = cells
            rows.append(
                {"model": name, "method": method, "horizon": h, **cells}
                | {"slope": slope["slope"], "slope_lower": slope["lower"]}
                | {"slope_upper": slope["upper"]}
            )
        block[method] = entry
    return block, rows


REFIT_IMPUTED = (
    "not computed: the cohort has imputed model values, and re-estimating the "
    "coefficients would need a fit on each completion pooled by Rubin's rules"
)


def _updating(model, completed, imputed: bool, horizons, n_groups: int):
    """The updates of ``model`` on the cohort's completions; ``imputed``: the cohort had
    model values imputed (no refit then)."""
    from toolkit.stats.transport import update_model

    frame = completed[0]
    x, names = _mean_design(model, completed)
    t, e = frame["time"].to_numpy(float), frame["event"].to_numpy(float)
    lp = model.linear_predictor(frame)
    original = model.survival(frame, horizons)
    design = None if imputed else pd.DataFrame(x, columns=names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the refit's, said in its note
        updates = update_model(t, e, lp, original, horizons, design=design, n_groups=n_groups)
    notes = {
        method: "the Cox fit did not converge (monotone likelihood or too few events)"
        for method, update in updates.items()
        if update.fit is not None and not update.fit.converged
    }
    if imputed:
        notes["refit"] = REFIT_IMPUTED
    return updates, notes


def transportability(
    bundle: ModelBundle, frame: pd.DataFrame, training: pd.DataFrame | None = None
) -> tuple[dict[str, Any], pd.DataFrame]:
    """transport.json's mapping and the updates' table (one row per model, method and
    horizon) for the cohort's model frame ``frame`` (``time``, ``event``, the variables,
    ``signature``); ``training`` the training set's model frame, when there is one."""
    last = float(frame["time"].max())
    horizons = [t for t in bundle.horizons if t <= last]
    n_groups = bundle.config.validation.calibration_groups
    out: dict[str, Any] = {"horizons": horizons, "models": {}}
    rows: list[dict[str, Any]] = []
    completed = bundle.complete(frame)
    models = bundle.scoring_models(completed)
    train_completed = None if training is None else bundle.complete(training)
    train_models = None if training is None else bundle.scoring_models(train_completed)
    for name in MODELS:
        model = models[name]
        dev = None if training is None else (train_models[name], train_completed)
        block: dict[str, Any] = {"case_mix": _case_mix((model, completed), dev)}
        try:
            imputed = bool(frame[list(model.variables)].isna().to_numpy().any())
            updates, notes = _updating(model, completed, imputed, horizons, n_groups)
            block["updating"], more = _update_rows(name, updates)
            block["updating"] |= {
                k: {**block["updating"].get(k, {}), "note": v} for k, v in notes.items()
            }
            rows += more
        except ValueError as error:  # too few events or patients for a statistic
            block["updating"] = {"note": f"not computed: {error}"}
        out["models"][name] = block
    return out, pd.DataFrame(rows, columns=TABLE_COLUMNS)
