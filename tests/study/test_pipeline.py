"""The study pipeline: a declared list of stages, run by the stage log in one loop.

A new stage is one module (here: a function of this file) plus one line in a
copy of ``PIPELINE``; results go on in memory, and a skipped stage hands on
what its files hold.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from toolkit.artifacts import file_hash, read_json, write_json, write_parquet
from toolkit.study._stages import Cached, StageLog
from toolkit.study.pipeline import PIPELINE, STUDY_INPUTS, PipelineError, Stage, check, run_pipeline

LOGGED = [
    "preprocess",
    "radiomics",
    "extract",
    "signature",
    "signature_radiomics",
    "radiomics_truth",
    "models",
    "validate",
    "internal_validation",
    "bundle",
    "r_check",
    "cam",
]


def test_every_input_is_made_by_an_earlier_stage():
    check(PIPELINE)
    made = set(STUDY_INPUTS)
    for stage in PIPELINE:
        assert set(stage.inputs) <= made, stage.name
        assert not set(stage.outputs) & made, stage.name
        made |= set(stage.outputs)
    assert [s.name for s in PIPELINE] == [*LOGGED[:3], "clinical", *LOGGED[3:]]
    for stage in PIPELINE:
        assert stage.run.__module__ == f"toolkit.study.stages.{stage.name}", stage.name


def test_check_names_every_broken_declaration():
    def noop(ctx, given):
        return {}

    stages = (
        Stage("a", (), ("x",), noop),
        Stage("b", ("x", "y"), ("x",), noop),
        Stage("a", (), (), noop),
    )
    with pytest.raises(PipelineError) as raised:
        check(stages)
    message = str(raised.value)
    assert "stage 'b' takes ['y'], made by no earlier stage" in message
    assert "stage 'b' makes ['x'] again" in message
    assert "stage 'a' is listed twice" in message


def _counting(tmp_path):
    """A toy two-stage pipeline: ``numbers`` (cached, a file) -> ``total`` (in memory)."""
    calls = []
    path = tmp_path / "numbers.json"

    def numbers(ctx, given):
        def compute(key):
            calls.append("numbers")
            values = [1.5, 2.25, 3.0]
            write_json(path, {"values": values, "key": key})
            return {"numbers": values}

        return Cached(
            inputs={"seed": given["seed"]},
            settings={"n": 3},
            files=(path,),
            compute=compute,
            load=lambda: {"numbers": read_json(path)["values"]},
        )

    def total(ctx, given):
        calls.append("total")
        return {"total": sum(given["numbers"])}

    stages = (
        Stage("numbers", ("seed",), ("numbers",), numbers),
        Stage("total", ("numbers",), ("total",), total),
    )
    return stages, calls


def _toy_context(tmp_path):
    lines: list[str] = []
    return SimpleNamespace(log=StageLog(tmp_path, echo=lines.append)), lines


def test_results_go_on_in_memory_and_a_skipped_stage_reads_its_files(tmp_path):
    stages, calls = _counting(tmp_path)
    ctx, _ = _toy_context(tmp_path)
    first = run_pipeline(ctx, stages, given={"seed": "0"})
    assert first == {"seed": "0", "numbers": [1.5, 2.25, 3.0], "total": 6.75}
    assert calls == ["numbers", "total"]
    assert [r.skipped for r in ctx.log.records] == [False]  # "total" is not cached

    again, _ = _toy_context(tmp_path)
    second = run_pipeline(again, stages, given={"seed": "0"})
    assert second == first and calls == ["numbers", "total", "total"]
    assert [r.skipped for r in again.log.records] == [True]

    changed, _ = _toy_context(tmp_path)
    run_pipeline(changed, stages, given={"seed": "1"})
    assert calls[-2:] == ["numbers", "total"]


def test_a_stage_must_hand_on_what_it_declares(tmp_path):
    stages, _ = _counting(tmp_path)
    wrong = (stages[0], Stage("total", ("numbers",), ("total", "mean"), stages[1].run))
    ctx, _ = _toy_context(tmp_path)
    with pytest.raises(PipelineError, match=r"stage 'total' handed on \['total'\], but declares"):
        run_pipeline(ctx, wrong, given={"seed": "0"})
    with pytest.raises(PipelineError, match="takes \\['seed'\\], made by no earlier stage"):
        run_pipeline(ctx, stages)


def risk_tertiles(ctx, given):
    """A new stage, as a module's ``run`` would be: the signature's tertile per patient."""
    path = ctx.paths.tables / "risk_tertiles.parquet"
    scores = given["scores"]

    def compute(key):
        tertile = pd.qcut(scores["signature"], 3, labels=["low", "middle", "high"])
        table = pd.DataFrame({"tertile": tertile.astype(str)}, index=scores.index)
        write_parquet(path, table, ctx.prov(key))
        return {"tertiles": table}

    return Cached(
        inputs={"scores": file_hash(ctx.paths.tables / "scores.parquet")},
        settings={"groups": 3},
        files=(path,),
        compute=compute,
        load=lambda: {"tertiles": pd.read_parquet(path)},
    )


def test_a_new_stage_is_one_module_plus_one_line(study_copy):
    from toolkit.config import load_study
    from toolkit.study.run import resolve, study_context

    at = [s.name for s in PIPELINE].index("signature") + 1
    stages = (
        *PIPELINE[:at],
        Stage("tertiles", ("scores",), ("tertiles",), risk_tertiles),
        *PIPELINE[at:],
    )
    paths = resolve(study_copy)
    lines: list[str] = []

    def context():
        config = load_study(paths.cohort)
        return study_context(paths, config, weights="random", workers=0, echo=lines.append)

    ctx = context()
    results = run_pipeline(ctx, stages)
    ran = {r.name: r.skipped for r in ctx.log.records}
    assert list(ran) == [*LOGGED[:4], "tertiles", *LOGGED[4:]]
    assert not ran["tertiles"] and all(ran[name] for name in LOGGED)
    scores = pd.read_parquet(paths.tables / "scores.parquet")
    pd.testing.assert_frame_equal(results["scores"], scores, check_exact=True)
    tertiles = results["tertiles"]["tertile"]
    assert set(tertiles) == {"low", "middle", "high"}
    high, low = (scores.loc[tertiles == t, "signature"] for t in ("high", "low"))
    assert high.min() > low.max()

    again = context()
    second = run_pipeline(again, stages)
    assert all(r.skipped for r in again.log.records)
    pd.testing.assert_frame_equal(second["tertiles"], results["tertiles"], check_exact=True)


def _json_text(value):
    return json.dumps(value, sort_keys=True, default=lambda o: np.asarray(o).tolist())


def test_signature_and_models_hand_on_what_their_files_hold(study_copy):
    """What a stage hands on when it runs equals what it reads back when skipped."""
    from toolkit.config import load_study
    from toolkit.study.run import resolve, study_context
    from toolkit.study.stages import clinical, extract, models, signature

    paths = resolve(study_copy)
    config = load_study(paths.cohort)
    ctx = study_context(paths, config, weights="random", workers=0, echo=lambda line: None)
    features = extract.run(ctx, {"crops": paths.crops}).load()["features"]
    given = {"features": features, **clinical.run(ctx, {"features": features})}
    built = signature.run(ctx, given)
    computed, loaded = built.compute("test"), built.load()
    pd.testing.assert_frame_equal(computed["scores"], loaded["scores"], check_exact=True)
    assert computed["signature"] == loaded["signature"]  # SignatureSpec records

    radiomics = pd.read_parquet(paths.results / "tables" / "scores_radiomics.parquet")
    scores = {"scores": computed["scores"], "scores_radiomics": radiomics}
    fitted = models.run(ctx, {**given, **scores})
    computed, loaded = fitted.compute("test"), fitted.load()
    assert computed["selection_notes"] == loaded["selection_notes"]
    for name, model in computed["models"].items():
        assert _json_text(model.to_json()) == _json_text(loaded["models"][name].to_json()), name
    for name, nomogram in computed["nomograms"].items():
        assert _json_text(nomogram.to_json()) == _json_text(loaded["nomograms"][name].to_json())
    assert len(computed["models"]) == 6 and len(loaded["nomograms"]) == 4
