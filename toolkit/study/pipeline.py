"""The study as a declared list of stages, run in order by one loop over the stage log.

A :class:`Stage` is a name, the results it takes, the results it hands on,
and one function ``run(ctx, given)`` (a module of ``toolkit.study.stages``).
``given`` holds exactly the declared inputs; the function returns the declared
outputs, or a ``_stages.Cached`` that the stage log runs (writing the stage's
files) or skips when its key is unchanged, reading the results back from those
files. Results go on in memory from the stage that made them to the stages
after it; files are for the resume cache and for the report.

Adding a stage is one module with a ``run`` and one line in :data:`PIPELINE`::

    Stage("texture", ("crops",), ("texture",), texture.run),

:func:`check` verifies the declarations before anything runs: every input is
a study input or an output of an earlier stage, no result is made twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from toolkit.study._stages import Cached
from toolkit.study.context import Context
from toolkit.study.stages import (
    bundle,
    cam,
    clinical,
    extract,
    internal_validation,
    models,
    preprocess,
    r_check,
    radiomics,
    radiomics_truth,
    signature,
    signature_radiomics,
    validate,
)


class PipelineError(ValueError):
    """The stage list's declarations do not hold (a missing input, a result made twice...)."""


@dataclass(frozen=True)
class Stage:
    """One step of the study: ``run(ctx, given)`` takes ``inputs``, hands on ``outputs``."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    run: Callable[[Context, Mapping[str, Any]], Cached | Mapping[str, Any]]


# What the study starts from is in the Context (study.toml, the manifest, the clinical
# table, the images); no result is given before the first stage.
STUDY_INPUTS: tuple[str, ...] = ()

PIPELINE: tuple[Stage, ...] = (
    Stage("preprocess", (), ("crops",), preprocess.run),
    Stage("radiomics", ("crops",), ("radiomics",), radiomics.run),
    Stage("extract", ("crops",), ("features",), extract.run),
    Stage("clinical", ("features",), ("clinical", "exclusions"), clinical.run),
    Stage("signature", ("crops", "features", "clinical"), ("signature", "scores"), signature.run),
    Stage(
        "signature_radiomics",
        ("radiomics", "clinical"),
        ("signature_radiomics", "scores_radiomics"),
        signature_radiomics.run,
    ),
    Stage(
        "radiomics_truth",
        ("radiomics", "signature_radiomics", "scores_radiomics"),
        ("radiomics_truth",),
        radiomics_truth.run,
    ),
    Stage(
        "models",
        ("clinical", "scores", "scores_radiomics"),
        ("models", "nomograms", "selection_notes"),
        models.run,
    ),
    Stage(
        "validate",
        (
            "clinical",
            "exclusions",
            "signature",
            "scores",
            "scores_radiomics",
            "models",
            "selection_notes",
        ),
        ("metrics",),
        validate.run,
    ),
    Stage(
        "internal_validation",
        ("features", "clinical", "signature", "scores", "models"),
        ("internal_validation",),
        internal_validation.run,
    ),
    Stage(
        "bundle",
        (
            "clinical",
            "signature",
            "scores",
            "models",
            "nomograms",
            "metrics",
            "internal_validation",
        ),
        ("bundle",),
        bundle.run,
    ),
    Stage(
        "r_check",
        ("clinical", "scores", "scores_radiomics", "models", "nomograms", "metrics"),
        ("r_check",),
        r_check.run,
    ),
    Stage("cam", ("crops", "features", "clinical", "signature", "scores"), ("cam",), cam.run),
)


# A fine-tuned signature (``[signature] source = "finetuned"``): the whole-procedure
# bootstrap would fine-tune the network again in each of its B resamples (B times the final
# fit, hours on a CPU), so it is left out; the signature's optimism is its outer-fold
# cross-validation's (study.finetuned's docstring, the report's internal validation).
# The CAMs and the bundle run, from the fine-tuned network's weights file.
NOT_FINETUNED = ("internal_validation",)


def stages_for(config: Any) -> tuple[Stage, ...]:
    """The stages a study runs: :data:`PIPELINE`, less :data:`NOT_FINETUNED` for a
    fine-tuned signature. A later stage that takes a left-out stage's result (the bundle
    takes ``internal_validation`` so that its model card follows it) runs without it:
    such a stage reads that result only when the stage ran (``StageLog.key_of`` is "")."""
    if config.signature.source != "finetuned":
        return PIPELINE
    dropped = {o for s in PIPELINE if s.name in NOT_FINETUNED for o in s.outputs}
    return tuple(
        replace(s, inputs=tuple(i for i in s.inputs if i not in dropped))
        for s in PIPELINE
        if s.name not in NOT_FINETUNED
    )


def check(stages: Sequence[Stage], given: Iterable[str] = STUDY_INPUTS) -> None:
    """Raise ``PipelineError`` listing every declaration that does not hold.

    Stage names are unique; each input is in ``given`` or an output of an
    earlier stage; no output is made by two stages or shadows a given one.
    """
    problems: list[str] = []
    available = set(given)
    names: set[str] = set()
    for stage in stages:
        if stage.name in names:
            problems.append(f"stage {stage.name!r} is listed twice")
        names.add(stage.name)
        missing = [n for n in stage.inputs if n not in available]
        if missing:
            problems.append(f"stage {stage.name!r} takes {missing}, made by no earlier stage")
        again = [n for n in stage.outputs if n in available]
        if again:
            problems.append(f"stage {stage.name!r} makes {again} again")
        available.update(stage.outputs)
    if problems:
        raise PipelineError("; ".join(problems))


def run_pipeline(
    ctx: Context,
    stages: Sequence[Stage] = PIPELINE,
    given: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``stages`` in order; every result, by name (``given``'s included).

    A stage that fails raises, and the results of earlier stages stay as they
    were written. Raises ``PipelineError`` before any stage runs when the
    declarations do not hold, and after a stage whose results are not the
    ones it declares.
    """
    results = dict(given or {})
    check(stages, results)
    for stage in stages:
        handed = stage.run(ctx, {n: results[n] for n in stage.inputs})
        if isinstance(handed, Cached):
            handed = ctx.log.hand_on(stage.name, handed)
        if set(handed) != set(stage.outputs):
            raise PipelineError(
                f"stage {stage.name!r} handed on {sorted(handed)}, "
                f"but declares {sorted(stage.outputs)}"
            )
        results.update(handed)
    return results
