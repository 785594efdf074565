"""The study's own numbers recomputed in R, every run (results/r_check.json).

Every model of the run is checked (``validate.models_of``: the three without radiomics,
six with it), every comparison it made (``validate.comparisons_of``) and every nomogram
(``validate.nomograms_of``):

* the final Cox models refitted with ``survival::coxph`` (coefficients, 1e-7);
* predicted survival at the validation times for every patient with
  ``survfit.coxph`` (1e-7);
* nomogram points with ``rms::nomogram(cph(...))`` (1e-6);
* C-indexes and the comparison tests with ``survival::concordance`` (1e-7 on
  C, its SE, the difference and its SE; 1e-6 on P);
* time-dependent AUC with ``riskRegression::Score`` (1e-6);
* metrics.json's ``accuracy``: the Brier score, the null model's and IPA
  (1e-8) and their SEs (1e-6), the AUC's SE (1e-6), all with
  ``riskRegression::Score(se.fit = TRUE)``; the calibration slope and its SE
  with ``coxph(Surv ~ lp)`` (1e-8);
* ``cox.zph`` of each nomogram (chisq and P per term and GLOBAL, 1e-8);
* ``rms::validate(cph(...))`` of each nomogram on the training set (1e-8 on every
  cell of its table). ``validate`` takes no resamples: it draws them after
  ``set.seed(validation.seed)``, and sigkit's ``validate_cox`` is run on exactly
  those (``rbridge.validate`` reproduces R's draws), so the check is of the
  computation; metrics.json's ``fixed_model_validation`` used numpy's draws of the
  same seed, so its numbers differ from these by the resampling alone.

Under multiple imputation (``completed`` given) the models group is instead each
pooled model against ``mice::pool`` of ``coxph`` on the run's completed training sets
(estimate, SE, Barnard-Rubin df and P, 1e-8): the pooled model is no single ``coxph``
fit, so the refit, ``survfit.coxph`` and ``rms::nomogram`` checks do not apply and are
not run. Every other check takes the models' averaged predictions
(``imputed.AveragedModel``) and, where it refits (``cox.zph``, ``rms::validate``), the
first completed set, as the study computed them.

A check passes when the largest absolute difference is within its tolerance
(``toolkit.rbridge.compare``; the entry shows the values at that element).
What R says while computing a group of checks (its warnings) goes with each of
the group's checks as ``notes``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from toolkit.contracts import Metrics, RCheck, RCheckEntry, Term
from toolkit.rbridge.compare import compare
from toolkit.study.nomograms import FittedModel, design_matrix
from toolkit.study.validate import comparisons_of, models_of, nomograms_of


def _check(name: str, ours: Any, theirs: Any, tolerance: float) -> RCheckEntry:
    """One r_check.json entry: the worst element's values and absolute difference."""
    d = compare(ours, theirs, tolerance)
    return RCheckEntry(
        name=name,
        ours=d.ours,
        r=d.r,
        diff=d.diff if np.isfinite(d.diff) else None,
        tolerance=tolerance,
        passed=d.passed,
        n_values=d.n_values,
        message=d.message,
    )


def r_frame(model: FittedModel, rows: pd.DataFrame) -> pd.DataFrame:
    """The model's variables as R will see them (factors with the training levels)."""
    out = pd.DataFrame(index=rows.index)
    for var in model.variables:
        if var in model.levels:
            out[var] = pd.Categorical(rows[var].astype(object), categories=model.levels[var])
        else:
            out[var] = rows[var].to_numpy(dtype=float)
    return out.reset_index(drop=True)


def _model_checks(models, nomograms, sets, times) -> list[RCheckEntry]:
    from toolkit.rbridge import study as rstudy

    train, valid = sets["train"], sets["validation"]
    t, e = train["time"].to_numpy(float), train["event"].to_numpy(float)
    checks = []
    for m in models_of(models):
        model = models[m]
        frame = r_frame(model, train)
        everyone = pd.concat([train, valid])
        ref = rstudy.coxph(frame, t, e, r_frame(model, everyone), times)
        checks.append(_check(f"coxph coefficients, {m} model", model.coef, ref["coef"], 1e-7))
        checks.append(
            _check(
                f"survfit.coxph survival at {', '.join(f'{h:g}' for h in times)}, {m} model",
                model.survival(everyone, times),
                ref["survival"],
                1e-7,
            )
        )
        if m not in nomograms:
            continue
        nomo = nomograms[m]
        ref_nomo = rstudy.nomogram(frame, t, e)
        checks.append(
            _check(
                f"rms::nomogram points per lp, {m}",
                nomo.points_per_lp,
                ref_nomo["points_per_lp"],
                1e-6,
            )
        )
        for spec in nomo.predictors:
            axis = spec.get("levels") or spec["ticks"]
            ours = [p["points"] for p in axis]
            theirs = ref_nomo["predictors"][spec["name"]]["points"]
            checks.append(_check(f"rms::nomogram points, {m}: {spec['name']}", ours, theirs, 1e-6))
    return checks


def _pool_checks(models, completed, train_sets) -> list[RCheckEntry]:
    """Each pooled model against ``mice::pool`` of ``coxph`` fits on the completed sets."""
    from toolkit.rbridge.imputation import pool_coxph
    from toolkit.stats import cox
    from toolkit.stats.pooling import pool_cox

    trains = [c[c["set"].isin(train_sets)] for c in completed]
    t, e = trains[0]["time"].to_numpy(float), trains[0]["event"].to_numpy(float)
    checks = []
    for m in models_of(models):
        model = models[m]
        designs = [design_matrix(tr, list(model.variables), dict(model.levels)) for tr in trains]
        ours = pool_cox([cox.fit(x, t, e, names=names) for x, names in designs])
        ref = pool_coxph(np.stack([x for x, _ in designs]), t, e)
        for label, value, theirs in (
            ("estimate", model.coef, ref["estimate"]),
            ("SE", model.se, ref["std_error"]),
            ("df", ours.df, ref["df"]),
            ("P", model.p, ref["p_value"]),
        ):
            checks.append(_check(f"mice::pool {label}, {m} model", value, theirs, 1e-8))
    return checks


def _concordance_checks(models, metrics, sets) -> list[RCheckEntry]:
    from toolkit.rbridge import study as rstudy

    checks = []
    for name, rows in sets.items():
        t, e = rows["time"].to_numpy(float), rows["event"].to_numpy(float)
        for a, b in comparisons_of(models):
            ref = rstudy.concordance_pair(
                t, e, models[a].linear_predictor(rows), models[b].linear_predictor(rows)
            )
            cindex = metrics.cindex[name]
            ours_c = [cindex[a]["c"], cindex[b]["c"]]
            ours_se = [cindex[a]["se"], cindex[b]["se"]]
            cmp = metrics.comparisons[name][f"{a}_vs_{b}"]
            label = f"{name}, {a} and {b}"
            checks.append(_check(f"concordance C-index, {label}", ours_c, ref["c"], 1e-7))
            checks.append(_check(f"concordance SE, {label}", ours_se, ref["se"], 1e-7))
            checks.append(
                _check(
                    f"concordance comparison (diff, SE), {name}, {a} vs {b}",
                    [cmp["diff"], cmp["se"]],
                    [ref["diff"], ref["diff_se"]],
                    1e-7,
                )
            )
            checks.append(
                _check(f"concordance comparison P, {name}, {a} vs {b}", cmp["p"], ref["p"], 1e-6)
            )
    return checks


def _auc_checks(models, metrics, sets, times) -> list[RCheckEntry]:
    from toolkit.rbridge import study as rstudy

    checks = []
    for name, rows in sets.items():
        t, e = rows["time"].to_numpy(float), rows["event"].to_numpy(float)
        for m in models_of(models):
            risk = 1 - models[m].survival(rows, times)
            ours = [metrics.td_auc[name][m][f"{h:g}"] for h in times]
            ref = rstudy.score_auc(t, e, risk, times)
            checks.append(_check(f"riskRegression::Score AUC, {name}, {m}", ours, ref, 1e-6))
    return checks


def _accuracy_checks(models, metrics, sets) -> list[RCheckEntry]:
    """metrics.json's ``accuracy`` block against ``Score`` and ``coxph(Surv ~ lp)``."""
    from toolkit.rbridge.calibration import slope_and_large
    from toolkit.rbridge.score import score

    checks = []
    for name, rows in sets.items():
        block = (metrics.accuracy or {}).get(name, {})
        t, e = rows["time"].to_numpy(float), rows["event"].to_numpy(float)
        for m in models_of(models):
            ours = block.get(m)
            if not ours:
                continue
            horizons = [float(h) for h in ours["brier"]]
            survival = models[m].survival(rows, horizons)

            def column(section: str, key: str, ours=ours) -> list[float]:
                return [v[key] for v in ours[section].values()]

            brier = score(t, e, 1 - survival, None, horizons, "brier")
            auc = score(t, e, 1 - survival, None, horizons, "auc")
            cal = slope_and_large(t, e, models[m].linear_predictor(rows), survival, horizons)
            slope = ours["calibration_slope"]
            label = f"{name}, {m}"
            checks += [
                _check(
                    f"Score Brier, {label}", column("brier", "brier"), brier["a"]["Brier"], 1e-8
                ),
                _check(f"Score Brier SE, {label}", column("brier", "se"), brier["a"]["se"], 1e-6),
                _check(
                    f"Score null-model Brier, {label}",
                    column("brier", "null_brier"),
                    brier["null"]["Brier"],
                    1e-8,
                ),
                _check(f"Score IPA, {label}", column("brier", "ipa"), brier["a"]["IPA"], 1e-8),
                _check(f"Score AUC SE, {label}", column("auc", "se"), auc["a"]["se"], 1e-6),
                _check(
                    f"coxph calibration slope and SE, {label}",
                    [slope["slope"], slope["se"]],
                    [cal["slope"], cal["se"]],
                    1e-8,
                ),
            ]
    return checks


def _ph_checks(models, sets, ph_table: pd.DataFrame) -> list[RCheckEntry]:
    """The run's proportional-hazards table (``ph_test``) against ``survival::cox.zph``."""
    from toolkit.rbridge.cox_residuals import cox_zph
    from toolkit.study.nomograms import PH_TRANSFORM

    train = sets["train"]
    t, e = train["time"].to_numpy(float), train["event"].to_numpy(float)
    checks = []
    for m in nomograms_of(models):
        model = models[m]
        x, names = design_matrix(train, list(model.variables), dict(model.levels))
        variables = list(model.variables)
        term = [1 + variables.index(Term.parse(n).variable) for n in names]
        ref = cox_zph(x, t, e, np.asarray(term), transform=PH_TRANSFORM)
        ours = ph_table[ph_table["model"] == m]
        for column, k in (("chisq", 0), ("p", 2)):
            checks.append(
                _check(
                    f"cox.zph {column} per term and GLOBAL, {m} model",
                    ours[column].to_numpy(float),
                    np.asarray(ref["table"])[:, k],
                    1e-8,
                )
            )
    return checks


def _validate_checks(models, metrics, sets) -> list[RCheckEntry]:
    """``rms::validate`` on the nomograms, ours run on the resamples R drew."""
    from toolkit.rbridge.validate import rms_validate
    from toolkit.stats.validate import validate_cox
    from toolkit.study.validate import validation_table

    block = metrics.fixed_model_validation or {}
    if "B" not in block:
        return []
    train = sets["train"]
    t, e = train["time"].to_numpy(float), train["event"].to_numpy(float)
    checks = []
    for m in nomograms_of(models):
        x, _ = design_matrix(train, models[m].variables, models[m].levels)
        ref = rms_validate(x, t, e, block["B"], block["seed"])
        ours = validation_table(validate_cox(x, t, e, resamples=ref["resamples"]))
        for index, columns in ours.items():
            checks.append(
                _check(
                    f"rms::validate {index} ({', '.join(columns)}), {m} model",
                    list(columns.values()),
                    ref["table"].loc[index, list(columns)].to_numpy(float),
                    1e-8,
                )
            )
    return checks


def _noted(label: str, work) -> list[RCheckEntry]:
    """The group's checks, each with R's warnings during the group as ``notes``.

    An R error becomes one failed check named for the group, carrying R's message.
    """
    from toolkit.rbridge import noting_r_warnings

    with noting_r_warnings() as notes:
        try:
            checks = work()
        except Exception as exc:  # an R failure is a failed check, reported by name
            failure = RCheckEntry(
                name=f"{label}: R computation failed",
                ours=None,
                r=None,
                diff=None,
                tolerance=None,
                passed=False,
                message=f"{type(exc).__name__}: {exc}",
            )
            checks = [failure]
    return [replace(c, notes=tuple(notes)) for c in checks]


def r_check(
    models: Mapping[str, FittedModel],
    nomograms: Mapping[str, Any],
    metrics: Metrics,
    sets: Mapping[str, pd.DataFrame],
    times: list[float],
    ph_table: pd.DataFrame,
    provenance: Mapping[str, Any] | None = None,
    completed: Sequence[pd.DataFrame] = (),
    train_sets: Sequence[str] = (),
) -> RCheck:
    """Every check (r_check.json's record); ``passed`` only if all pass. R errors become
    failed checks. ``ph_table`` is the run's ``ph_test`` table (the models stage's).
    ``completed``: the completed model frames under multiple imputation (whose training
    rows are in ``train_sets``), when the models are pooled."""
    checks: list[RCheckEntry] = []

    def model_group():
        if completed:
            return _pool_checks(models, completed, train_sets)
        return _model_checks(models, nomograms, sets, times)

    groups = (
        ("models", model_group),
        ("concordance", lambda: _concordance_checks(models, metrics, sets)),
        ("td_auc", lambda: _auc_checks(models, metrics, sets, times)),
        ("accuracy", lambda: _accuracy_checks(models, metrics, sets)),
        ("ph", lambda: _ph_checks(models, sets, ph_table)),
        ("validate", lambda: _validate_checks(models, metrics, sets)),
    )
    for label, work in groups:
        checks.extend(_noted(label, work))
    return RCheck(all(c.passed for c in checks), tuple(checks), provenance)
