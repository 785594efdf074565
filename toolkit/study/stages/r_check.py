"""r_check: every statistic of the models and of metrics.json recomputed in R.

``study.rcheck.run_checks`` compares ours with R's (survival, rms,
riskRegression) within each statistic's tolerance; the stage writes
``results/r_check.json``. A mismatch does not stop the run here: ``run_study``
raises ``RCheckFailed`` after every output has been written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toolkit.artifacts import file_hash, read_json, write_json
from toolkit.study._stages import Cached
from toolkit.study.context import Context
from toolkit.study.stages.models import model_frame


def run(ctx: Context, given: Mapping[str, Any]) -> Cached:
    """Hands on ``r_check``: r_check.json as its file holds it (as ``run_study`` returns it)."""
    from toolkit.study import validate as val
    from toolkit.study.rcheck import run_checks

    path = ctx.paths.results / "r_check.json"
    # metrics.json gains the stage timings at the end of every run: key on the validate stage
    inputs = {
        "validate": ctx.log.key_of("validate"),
        "models": file_hash(ctx.paths.results / "models.json"),
    }

    def compute(key: str) -> dict[str, Any]:
        sets = val.set_rows(model_frame(given["clinical"], given["scores"]), ctx.config)
        result = run_checks(
            given["models"], given["nomograms"], given["metrics"], sets, ctx.config.validation.times
        )
        write_json(path, {**result, "provenance": ctx.prov(key, inputs)})
        return {"r_check": read_json(path)}

    return Cached(
        inputs=inputs,
        settings={},
        files=(path,),
        compute=compute,
        load=lambda: {"r_check": read_json(path)},
    )
