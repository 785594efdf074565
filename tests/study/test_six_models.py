"""The six models (clinical, deep and radiomics signatures, integrated, integrated radiomics,
combined): fits and selection against R, the models_compared table and the comparison tests
recomputed from the models, and the radiomics-disabled study left as the three models."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from toolkit.study import nomograms as nm
from toolkit.study import validate as val

SIX = ["signature", "clinical", "integrated", "radiomics", "integrated_radiomics", "combined"]
NEW = ["radiomics", "integrated_radiomics", "combined"]


# ------------------------------------------------------------------ worked by hand


def test_specs_follow_the_scores_the_frame_has():
    assert [s.name for s in nm.specs_for(["signature"])] == ["signature", "clinical", "integrated"]
    both = nm.specs_for(["signature_radiomics", "signature"])
    assert [s.name for s in both] == SIX
    nomograms = ["clinical", "integrated", "integrated_radiomics", "combined"]
    assert nm.nomogram_names(SIX[::-1]) == nomograms
    three = {m: None for m in ("clinical", "signature", "integrated")}
    assert val.comparisons_of(three) == [("integrated", "clinical"), ("signature", "clinical")]


def _model(name, aic, terms):
    return SimpleNamespace(
        variables=tuple(terms), terms=tuple(terms), loglik=-aic / 2 + len(terms), aic=aic
    )


def test_best_aic_is_the_nomogram_of_lowest_training_aic_never_a_signature_alone():
    # the radiomics signature has the lowest AIC of all, but it is one score, no nomogram
    models = {
        "signature": _model("signature", 95.0, ["signature"]),
        "clinical": _model("clinical", 99.0, ["a", "b"]),
        "integrated": _model("integrated", 92.5, ["a", "signature"]),
        "radiomics": _model("radiomics", 80.0, ["signature_radiomics"]),
        "integrated_radiomics": _model("integrated_radiomics", 92.0, ["a", "signature_radiomics"]),
        "combined": _model("combined", 93.0, ["a", "signature", "signature_radiomics"]),
    }
    cindex = {s: {m: {"c": 0.6, "lower": 0.5, "upper": 0.7} for m in models} for s in val.SETS}
    table = val.models_compared(cindex, models)
    assert list(table["model"]) == SIX
    assert list(table.loc[table["best_aic"], "model"]) == ["integrated_radiomics"]
    assert list(table["n_terms"]) == [1, 2, 2, 1, 2, 3]
    # -2 loglik + 2 terms: the loglik given reproduces each AIC
    np.testing.assert_array_equal(-2 * table["loglik"] + 2 * table["n_terms"], table["aic"])


# ------------------------------------------------------------------ on the session study


@pytest.fixture(scope="module")
def six(study_frame):
    config, frame, models = study_frame
    assert "signature_radiomics" in frame.columns, "the session study no longer runs radiomics"
    return config, frame, models, val.set_rows(frame, config)


def test_the_radiomics_study_makes_six_models_through_the_screen_and_stepwise(six):
    config, frame, models, _ = six
    assert list(models) == SIX
    chosen = nm.select(frame, config)
    assert chosen.variables == {m: list(models[m].variables) for m in SIX}
    assert list(models["radiomics"].variables) == ["signature_radiomics"]
    for m in ("integrated_radiomics", "combined"):
        scores = nm.MODEL_SPECS[m].scores
        assert set(scores) <= set(models[m].variables), m
    assert "signature_radiomics" in set(chosen.univariate["variable"])


def _candidate_frame(train, variables, levels):
    out = pd.DataFrame({"time": train["time"], "event": train["event"]})
    for var in variables:
        if var in levels:
            out[var] = pd.Categorical(train[var].astype(object), categories=levels[var])
        else:
            out[var] = train[var].astype(float)
    return out.reset_index(drop=True)


def test_new_nomograms_selection_equals_mass_stepaic(six, r):
    from toolkit.rbridge.stepwise import step_aic

    config, frame, models, sets = six
    train = sets["train"]
    table = nm.select(frame, config).univariate
    first = table.groupby("variable", sort=False).first()
    clinical = {v.name for v in config.variables}
    kept = [v for v in first.index if v in clinical and bool(first.loc[v, "selected"])]
    assert kept, "no clinical variable passed the screen: the test would not test stepwise"
    levels, _ = nm.training_levels(train, kept)
    for m in ("integrated_radiomics", "combined"):
        scores = list(nm.MODEL_SPECS[m].scores)
        start = [*kept, *scores]
        data = _candidate_frame(train, start, levels)
        ref = step_aic(data, "time", "event", start, start, scores, "both")
        assert sorted(ref["variables"]) == sorted(models[m].variables), m


def test_new_models_fits_equal_coxph_and_r_check_covers_them(six, study_run, r):
    from toolkit.rbridge import study as rstudy
    from toolkit.study.rcheck import r_frame

    _, _, models, sets = six
    train, everyone = sets["train"], pd.concat([sets["train"], sets["validation"]])
    t, e = train["time"].to_numpy(float), train["event"].to_numpy(float)
    worst = 0.0
    for m in NEW:
        model = models[m]
        ref = rstudy.coxph(r_frame(model, train), t, e, r_frame(model, everyone), [12.0, 24.0])
        np.testing.assert_allclose(model.coef, ref["coef"], rtol=0, atol=1e-7)
        assert model.loglik == pytest.approx(ref["loglik"][-1], abs=1e-8)
        aic = -2 * ref["loglik"][-1] + 2 * len(ref["coef"])
        assert model.aic == pytest.approx(aic, abs=1e-7)
        np.testing.assert_allclose(
            model.survival(everyone, [12.0, 24.0]), ref["survival"], rtol=0, atol=1e-7
        )
        worst = max(worst, float(np.max(np.abs(np.asarray(model.coef) - ref["coef"]))))
    assert worst < 1e-7
    study, _, _ = study_run
    check = json.loads((study / "results" / "r_check.json").read_text())
    by_name = {c["name"]: c for c in check["checks"]}
    assert check["passed"] is True
    for m in NEW:
        for name in (
            f"coxph coefficients, {m} model",
            f"riskRegression::Score AUC, validation, {m}",
            f"Score Brier, train, {m}",
        ):
            assert by_name[name]["passed"] and by_name[name]["tolerance"] in (1e-7, 1e-6, 1e-8)
    for m in ("integrated_radiomics", "combined"):
        assert by_name[f"rms::nomogram points per lp, {m}"]["passed"]
        assert by_name[f"cox.zph chisq per term and GLOBAL, {m} model"]["passed"]
    for s in val.SETS:
        for a, b in val.COMPARISONS:
            assert by_name[f"concordance comparison P, {s}, {a} vs {b}"]["passed"]
            assert by_name[f"concordance C-index, {s}, {a} and {b}"]["tolerance"] == 1e-7


def test_models_compared_and_comparisons_recomputed_from_the_models(six, study_run, r):
    from toolkit.rbridge import study as rstudy
    from toolkit.stats import concordance
    from toolkit.stats.wald import Z_975

    _, _, models, sets = six
    study, _, _ = study_run
    tables = study / "results" / "tables"
    table = pd.read_parquet(tables / "models_compared.parquet").set_index("model")
    assert list(table.index) == SIX
    for m in SIX:
        assert list(table.loc[m, "variables"]) == list(models[m].variables)
        assert table.loc[m, "aic"] == models[m].aic
        for s, rows in sets.items():
            t, e = rows["time"].to_numpy(float), rows["event"].to_numpy(float)
            c = concordance.harrell(t, e, models[m].linear_predictor(rows))
            assert table.loc[m, f"c_{s}"] == pytest.approx(c.c, abs=1e-12)
            assert table.loc[m, f"lower_{s}"] == pytest.approx(c.c - Z_975 * c.se, abs=1e-12)
    nomos = [m for m in SIX if nm.MODEL_SPECS[m].clinical]
    best = min(nomos, key=lambda m: models[m].aic)
    assert list(table.index[table["best_aic"]]) == [best]
    assert (study / "results" / "figures" / f"nomogram_{best}.png").is_file()

    tests = pd.read_parquet(tables / "cindex_comparisons.parquet")
    assert len(tests) == len(val.SETS) * len(val.COMPARISONS)
    worst = 0.0
    for row in tests.itertuples():
        rows = sets[row.set]
        t, e = rows["time"].to_numpy(float), rows["event"].to_numpy(float)
        a, b = models[row.a].linear_predictor(rows), models[row.b].linear_predictor(rows)
        ours = concordance.compare(t, e, a, b)
        assert (row.diff, row.se, row.p) == pytest.approx((ours.diff, ours.se_diff, ours.p))
        ref = rstudy.concordance_pair(t, e, a, b)
        assert row.diff == pytest.approx(ref["diff"], abs=1e-7)
        assert row.se == pytest.approx(ref["diff_se"], abs=1e-7)
        assert row.p == pytest.approx(ref["p"], abs=1e-6)
        worst = max(worst, abs(row.diff - ref["diff"]), abs(row.se - ref["diff_se"]))
    assert worst < 1e-7


def test_td_auc_and_decision_curves_cover_all_six(study_run):
    study, _, _ = study_run
    tables = study / "results" / "tables"
    assert set(pd.read_parquet(tables / "td_auc.parquet")["model"]) == set(SIX)
    decision = pd.read_parquet(tables / "decision.parquet")
    assert set(decision["model"]) == set(SIX) | {"treat all", "treat none"}
    summary = pd.read_parquet(tables / "decision_summary.parquet")
    pairs = {f"{a} - {b}" for a, b in val.COMPARISONS}
    assert set(summary["model"]) == set(SIX) | pairs


def test_radiomics_disabled_study_is_the_three_models_unchanged(study_run, tmp_path):
    """The same study with ``[radiomics] enabled = false``: three models, two comparisons,
    and every value of those three models as the radiomics study has them."""
    import shutil

    from toolkit.study.run import run_study

    study, _, _ = study_run
    off = tmp_path / "off"
    shutil.copytree(study, off)
    toml = off / "cohort" / "study.toml"
    assert "[radiomics]" not in toml.read_text()
    toml.write_text(toml.read_text() + "\n[radiomics]\nenabled = false\n")
    run_study(off, weights="random", workers=0, report=False, echo=lambda _: None)

    on_models = json.loads((study / "results" / "models.json").read_text())["models"]
    off_models = json.loads((off / "results" / "models.json").read_text())["models"]
    assert list(off_models) == ["signature", "clinical", "integrated"]
    assert {m: on_models[m] for m in off_models} == off_models
    for m in NEW:
        assert not (off / "results" / f"nomogram_{m}.json").exists()
    metrics = json.loads((off / "results" / "metrics.json").read_text())
    on_metrics = json.loads((study / "results" / "metrics.json").read_text())
    for s in val.SETS:
        assert metrics["cindex"][s] == {m: on_metrics["cindex"][s][m] for m in off_models}
        assert metrics["td_auc"][s] == {m: on_metrics["td_auc"][s][m] for m in off_models}
        assert set(metrics["comparisons"][s]) == {"integrated_vs_clinical", "signature_vs_clinical"}
        for k, v in metrics["comparisons"][s].items():
            assert on_metrics["comparisons"][s][k] == v
    tables_on, tables_off = study / "results" / "tables", off / "results" / "tables"
    for name in ("td_auc", "decision", "decision_summary", "ph_test", "calibration", "cindex"):
        a = pd.read_parquet(tables_off / f"{name}.parquet")
        b = pd.read_parquet(tables_on / f"{name}.parquet")
        b = b[b["model"].isin(set(a["model"]))].reset_index(drop=True)
        assert len(b) < len(pd.read_parquet(tables_on / f"{name}.parquet")), name
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b, check_exact=True)
    univariate_on = pd.read_parquet(tables_on / "univariate.parquet")
    univariate_on = univariate_on[univariate_on["variable"] != "signature_radiomics"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(tables_off / "univariate.parquet"),
        univariate_on.reset_index(drop=True),
        check_exact=True,
    )
    check = json.loads((off / "results" / "r_check.json").read_text())
    assert check["passed"] is True
    assert not [c["name"] for c in check["checks"] if any(m in c["name"] for m in NEW)]
