"""r_check: every statistic of the models and of metrics.json recomputed in R.

``study.rcheck.r_check`` compares ours with R's (survival, rms,
riskRegression) within each statistic's tolerance; the stage writes
``results/r_check.json``; under multiple imputation the models are checked against
``mice::pool`` on the run's completed sets (see there). A mismatch does not stop the
run here: ``run_study`` raises ``RCheckFailed`` after every output has been written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from toolkit.artifacts import file_hash
from toolkit.contracts import RCheck
from toolkit.study._stages import Cached
from toolkit.study.context import Context
from toolkit.study.stages.models import model_frames


def run(ctx: Context, given: Mapping[str, Any]) -> Cached:
    """Hands on ``r_check``: r_check.json's ``RCheck`` (as ``run_study`` returns it)."""
    from toolkit.study.rcheck import r_check
    from toolkit.study.stages.validate import evaluated

    path = ctx.paths.results / "r_check.json"
    # metrics.json gains the stage timings at the end of every run: key on the validate stage
    inputs = {
        "validate": ctx.log.key_of("validate"),
        "models": file_hash(ctx.paths.results / "models.json"),
        "ph_test": file_hash(ctx.paths.tables / "ph_test.parquet"),
    }

    def compute(key: str) -> dict[str, Any]:
        clinical, scores = given["clinical"], given["scores"]
        sets, models = evaluated(ctx, clinical, scores, given["models"], given["scores_radiomics"])
        completed = model_frames(clinical, scores) if clinical.imputed else []
        times, prov = ctx.config.validation.times, ctx.prov(key, inputs)
        ph_table = pd.read_parquet(ctx.paths.tables / "ph_test.parquet")
        result = r_check(
            models,
            given["nomograms"],
            given["metrics"],
            sets,
            times,
            ph_table,
            provenance=prov,
            completed=completed,
            train_sets=ctx.config.study.train_sets,
        )
        result.write(path)
        return {"r_check": result}

    return Cached(
        inputs=inputs,
        settings={},
        files=(path,),
        compute=compute,
        load=lambda: {"r_check": RCheck.read(path)},
    )
