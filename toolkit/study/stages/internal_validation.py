"""internal_validation: the whole-procedure bootstrap of the training set (study.internal).

``[internal_validation] B`` resamples, each re-running the signature and the
nomograms' selection and scoring the refitted models on the resample and on
the training set (see ``toolkit.study.internal``). The resamples fan out over
a Dask ``LocalCluster`` of the run's worker processes (``--workers``; 2 when
not given, as preprocessing), each on its own share of the cores, and run in this
process with ``workers = 0`` or 1;
each resample's result is the same either way. A progress bar shows on a
terminal. Writes ``results/internal_validation.json`` (``InternalValidation``:
resamples used, every dropped one with its reason), the tables
``internal_validation`` (apparent, optimism, corrected per model, statistic and
horizon), ``internal_validation_resamples`` (one row per resample),
``internal_validation_values`` (every resample's values) and ``selection_stability``, and
the figure ``selection_stability``. Keyed on the features, the clinical table,
scores.parquet and models.json, and the settings the procedure uses.

Missing clinical values are filled again inside every resample, as the study filled
them (``study.internal.incomplete_frame``: the values the study filled, put back to
missing): by the resample's medians and modes, or by ``m`` chained equations fitted on
the resample followed by the majority-rule selection and the pooled models. The
apparent performance and each resample's test are on the training set as the study
completed it; under multiple imputation every side is scored at the linear predictor
averaged over its completed sets (``study.imputed.AveragedModel``), and the study's
apparent values are the validate stage's training-set values
(``stages.validate.evaluated``). ``internal_validation.json``'s ``refilled`` names the
rule repeated, and the report's methods say so.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from toolkit.artifacts import file_hash, save_figure, write_parquet
from toolkit.contracts import InternalValidation
from toolkit.study._stages import Cached
from toolkit.study.context import Context

TABLES = (
    "internal_validation",
    "internal_validation_resamples",
    "internal_validation_values",
    "selection_stability",
)


@contextlib.contextmanager
def _client(workers: int) -> Iterator[Any]:
    """A ``distributed.Client`` of a LocalCluster of ``workers`` processes (None for <= 1),
    each worker on its own share of the cores (``toolkit._dask_cores.pin_workers``)."""
    if workers <= 1:
        yield None
        return
    from toolkit._dask import local_client

    with local_client(workers, share_cores=True) as client:  # XLA's pools, one per core
        yield client


def _resamples(ctx: Context, given: Mapping[str, Any]) -> tuple[list, bool]:
    """Every resample's record, and whether the resamples filled missing values again."""
    from toolkit._progress import progress_bar
    from toolkit.study import internal

    config = ctx.config
    data = internal.training_data_of(given["features"], given["clinical"], config)
    B = config.internal_validation.B
    workers = ctx.workers if ctx.workers is not None else 2
    bar = progress_bar(
        B, enabled=sys.stderr.isatty(), description="internal validation", unit="resamples"
    )
    with _client(workers) as client, bar as advance:
        replicates = internal.run_replicates(data, range(B), config, client, advance)
    return replicates, data.incomplete is not None


def _figure(ctx: Context, table) -> None:
    from toolkit.plots._stamp import close
    from toolkit.plots.selection import selection_figure

    fig = selection_figure(table, stamp=ctx.stamp())
    save_figure(fig, ctx.paths.figures / "selection_stability")
    close(fig)


def _write(
    ctx: Context, given: Mapping[str, Any], replicates, refilled: bool, prov
) -> InternalValidation:
    from toolkit.study import internal
    from toolkit.study.stages.validate import evaluated

    config, models = ctx.config, given["models"]
    sets, scored = evaluated(ctx, given["clinical"], given["scores"], models)
    original = internal.evaluate(scored, sets["train"], config)
    stability = internal.selection_stability(
        replicates,
        [f.format() for f in given["signature"].features],
        {m: models[m].variables for m in ("clinical", "integrated")},
        [v.name for v in config.variables],
    )
    tables = {
        "internal_validation": internal.summary(original, replicates),
        "internal_validation_resamples": internal.replicate_table(replicates),
        "internal_validation_values": internal.replicate_values(replicates),
        "selection_stability": stability,
    }
    for name in TABLES:
        write_parquet(ctx.paths.tables / f"{name}.parquet", tables[name], prov)
    _figure(ctx, stability)
    dropped = tuple({"replicate": r.number, "reason": r.reason} for r in replicates if not r.used)
    return InternalValidation(
        B=config.internal_validation.B,
        seed=config.internal_validation.seed,
        n_used=len(replicates) - len(dropped),
        dropped=dropped,
        refilled=config.validation.missing if refilled else "",
        provenance=prov,
    )


def run(ctx: Context, given: Mapping[str, Any]) -> Cached:
    """Hands on ``internal_validation`` (internal_validation.json's ``InternalValidation``)."""
    path = ctx.paths.results / "internal_validation.json"
    inputs = {
        "features": file_hash(ctx.paths.features),
        "clinical": ctx.clinical_hash(),
        "scores": file_hash(ctx.paths.tables / "scores.parquet"),
        "models": file_hash(ctx.paths.results / "models.json"),
    }

    def compute(key: str) -> dict[str, Any]:
        replicates, refilled = _resamples(ctx, given)
        record = _write(ctx, given, replicates, refilled, ctx.prov(key, inputs))
        record.write(path)
        reasons = "; ".join(f"{d['replicate']}: {d['reason']}" for d in record.dropped[:5])
        ctx.echo(
            f"    {record.n_used} of {record.B} resamples used"
            + (f"; {len(record.dropped)} dropped ({reasons})" if record.dropped else "")
        )
        return {"internal_validation": record}

    settings = {
        "internal_validation": ctx.config.internal_validation.model_dump(),
        "signature": ctx.config.signature.model_dump(),
        "validation": ctx.config.validation.model_dump(),
        "variables": [v.model_dump() for v in ctx.config.variables],
        # results of sigkit before 2026-12-07 filled no missing value inside a resample
        "missing_values": "filled again in each resample",
    }
    if ctx.config.validation.missing == "multiple-imputation":
        # until 2026-12-07 multiple imputation scored the first completed set alone
        settings["imputed_sets"] = "linear predictor averaged over the completed sets"
    return Cached(
        inputs=inputs,
        settings=settings,
        files=(
            path,
            *(ctx.paths.tables / f"{name}.parquet" for name in TABLES),
            ctx.paths.figures / "selection_stability.png",
        ),
        compute=compute,
        load=lambda: {"internal_validation": InternalValidation.read(path)},
    )
