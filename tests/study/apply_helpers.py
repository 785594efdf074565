"""Helpers shared by the sigkit apply tests: the new cohort's model frame as apply scored
it, and R's survfit(coxph(training), newdata) for a nomogram's predictions.

(A uniquely named module rather than conftest.py: several test folders have a conftest.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SURVFIT = """
function(train, newdata, variables, times) {
    rhs <- paste(variables, collapse = " + ")
    formula <- as.formula(paste("survival::Surv(time, event) ~", rhs))
    fit <- survival::coxph(formula, data = train, ties = "efron")
    s <- summary(survival::survfit(fit, newdata = newdata), times = times, extend = TRUE)
    list(surv = s$surv, lower = s$lower, upper = s$upper, coef = unname(coef(fit)))
}
"""


def cohort_frame(
    bundle, cohort, predictions, outcomes: bool = False, keep_missing: bool = False
) -> pd.DataFrame:
    """The cohort's model frame as the model's study.toml codes it, with apply's signature
    (``keep_missing``: missing model values kept, as apply keeps them for a bundle that
    imputes)."""
    from toolkit.config import prepare_cohort, read_clinical
    from toolkit.imaging.manifest import read_manifest
    from toolkit.study.apply import cohort_config

    config = cohort_config(bundle, "manifest.csv", "clinical.csv")
    manifest = read_manifest(cohort / "manifest.csv", (config.imaging.primary_reader,))
    table = read_clinical(config, cohort, manifest)
    frame = prepare_cohort(config, table, outcomes=outcomes, keep_missing=keep_missing).frame
    frame = frame.loc[predictions.index].copy()
    frame["signature"] = predictions["signature"]
    return frame


def r_frame(model, rows, with_outcome: bool) -> pd.DataFrame:
    """The model's variables as R takes them: factors with the training levels, numbers."""
    columns = {}
    for v in model.variables:
        if v in model.levels:
            columns[v] = pd.Categorical(rows[v].astype(str), categories=model.levels[v])
        else:
            columns[v] = rows[v].to_numpy(float)
    if with_outcome:
        columns["time"] = rows["time"].to_numpy(float)
        columns["event"] = rows["event"].to_numpy(float)
    return pd.DataFrame(columns)


def r_survfit(r, model, train, new, times, computation: str) -> dict:
    """R's coxph of ``model``'s variables on ``train`` and survfit(fit, newdata = ``new``)
    at ``times``: surv, lower, upper (times x patients, flattened) and coef."""
    fn = r.r_function(SURVFIT, ["survival"])
    return r.call(
        fn,
        r_frame(model, train, True),
        r_frame(model, new, False),
        np.asarray(model.variables),
        np.asarray(times, dtype=float),
        computation=computation,
    )
