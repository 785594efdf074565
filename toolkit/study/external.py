"""External validation of a locked model on a new cohort with outcomes (``sigkit apply``).

The same numbers as the study's validation set, computed by the validate stage's own
functions (``toolkit.study.validate``) on one set, ``external``, with the bundle's
frozen models: the C-index with its CI and the comparisons (``cindex``), calibration
(``calibration``: grouped KM RMSE, ICI/E50/E90; no optimism correction, which is for
the training set), time-dependent AUC (``td_auc``), accuracy (``accuracy``: Brier score
and IPA, the AUC's CI, calibration slope and calibration-in-the-large), decision curves
(``decision``) and the risk groups at the training cutoff (KM log-rank of high vs low,
``stats.survival.logrank``; the study's cutoff is not recomputed, as
``validate.risk_groups`` would from a training set the bundle does not carry).

Horizons beyond the cohort's last follow-up are left out and listed
(``beyond_follow_up``), as the accuracy block does for a study set. A cohort without
events gets no validation, and says so.

Under multiple imputation (a bundle with ``imputation``) the cohort is completed ``m``
times by the bundle's covariate-only imputer and every metric is computed once, on the
pooled models' linear predictor averaged over the completions, as the study's
validation set was (``imputed.AveragedModel``; Wood, Royston and White 2015).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from toolkit.study.bundle import ModelBundle

SET = "external"


def _within(bundle: ModelBundle, frame: pd.DataFrame):
    """The bundle's study settings with the horizons (and decision times) the cohort's
    follow-up reaches; the horizons it does not."""
    config = bundle.config
    last = float(frame["time"].max())
    times = [t for t in config.validation.times if t <= last]
    decision_times = [t for t in config.validation.decision_times if t <= last and t in times]
    validation = config.validation.model_copy(
        update={"times": times, "decision_times": decision_times}
    )
    beyond = [t for t in config.validation.times if t > last]
    return config.model_copy(update={"validation": validation}), beyond


def risk_groups(bundle: ModelBundle, frame: pd.DataFrame, models) -> dict[str, Any]:
    """High vs low at the training cutoff: the counts and the log-rank test. ``models``:
    the locked models as scored (``ModelBundle.scoring_models``)."""
    from toolkit.stats.survival import logrank

    model = models[bundle.risk_groups.model]
    group = bundle.risk_groups.group(model.linear_predictor(frame))
    t, e = frame["time"].to_numpy(float), frame["event"].to_numpy(float)
    out: dict[str, Any] = {**bundle.risk_groups.to_json()}
    out["n_high"], out["n_low"] = int((group == "high").sum()), int((group == "low").sum())
    if out["n_high"] and out["n_low"]:
        test = logrank(t, e, group)
        out["chisq"], out["p"] = float(test.chisq), float(test.p)
    else:
        out["note"] = "one risk group only: no log-rank test"
    return out


def external_validation(
    bundle: ModelBundle, frame: pd.DataFrame
) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """validation.json's mapping and the tables (name -> table) of ``frame``: the cohort's
    model frame (``time``, ``event``, the variables, ``signature``)."""
    from toolkit.study import validate as val

    n_events = int(frame["event"].sum())
    out: dict[str, Any] = {"set": SET, "n_patients": len(frame), "n_events": n_events}
    if not n_events:
        return {**out, "note": "no events in the cohort: predictions only"}, {}
    config, beyond = _within(bundle, frame)
    out["beyond_follow_up"] = beyond
    completed = bundle.complete(frame)
    sets = {SET: completed[0]}  # under imputation: the first completion, for a design
    models = bundle.scoring_models(completed)
    tables: dict[str, pd.DataFrame] = {}
    out["cindex"], out["comparisons"] = val.cindex(sets, models, config)
    out["risk_groups"] = risk_groups(bundle, completed[0], models)
    if config.validation.times:
        out["calibration"], tables["calibration"] = val.calibration(sets, models, config)
        out["td_auc"], tables["td_auc"] = val.td_auc(sets, models, config)
        out["accuracy"], tables["accuracy"] = val.accuracy(sets, models, config)
    if config.validation.decision_times:
        tables["decision"] = val.decision(sets, models, config)[SET].assign(set=SET)
    rows = [{"set": SET, "model": m, **e} for m, e in out["cindex"][SET].items()]
    tables["cindex"] = pd.DataFrame(rows)
    return _plain(out), tables


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers, for JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
