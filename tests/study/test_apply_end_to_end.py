"""Issue 18's "done when", end to end through the CLI: the session's study (tests/conftest.py
``synthetic_study``: 48 patients on a coarse grid, random weights; the demo study's
201 patients at the full grid would take the suite several minutes more for the same
code paths) locks its model; ``sigkit synth --seed 7 --patients 60`` writes a second
cohort (the full grid); ``sigkit apply`` scores it, its predicted survival and 95% CI
equal R's ``survfit(coxph, newdata)`` within 1e-6 and apply.html holds every section;
then the same cohort with 10 % of AFP and ALT deleted at random is a study of its own run
under multiple imputation, whose pooled fits equal ``mice::pool`` within 1e-8."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from apply_helpers import cohort_frame, r_survfit
from typer.testing import CliRunner

from toolkit.cli import app
from toolkit.study.bundle import ModelBundle

N, SEED = 60, 7
TOL_R = 1e-6  # the tolerance against survfit's lower/upper
TOL_POOL = 1e-8  # ... and against mice::pool
M, IMPUTATION_SEED = 5, 3
DELETED = ("afp", "alt")


@pytest.fixture(scope="module")
def second_cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("seed7") / "cohort"
    command = ["synth", "--seed", str(SEED), "--patients", str(N), "--out", str(out)]
    result = CliRunner().invoke(app, [*command, "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert f"SYNTHETIC cohort of {N} patients" in result.output
    return out


@pytest.fixture(scope="module")
def applied(study_run, second_cohort, tmp_path_factory):
    study, _, _ = study_run
    out = tmp_path_factory.mktemp("applied_seed7") / "out"
    command = ["apply", str(study / "model"), str(second_cohort), "--out", str(out)]
    result = CliRunner().invoke(app, [*command, "--weights", "random", "--workers", "0"])
    assert result.exit_code == 0, result.output
    return out, result.output


def _read_predictions(out) -> pd.DataFrame:
    return pd.read_csv(
        out / "predictions.csv",
        index_col="patient",
        dtype={"patient": str},
        float_precision="round_trip",
    )


def test_sigkit_apply_predictions_equal_r_survfit(
    r, study_run, study_frame, second_cohort, applied
):
    study, _, _ = study_run
    out, output = applied
    bundle = ModelBundle.load(study / "model")
    predictions = _read_predictions(out)
    assert len(predictions) == N and pd.read_csv(out / "exclusions.csv").empty
    assert f"{N} patient(s) scored" in output
    config, training, models = study_frame
    train = training[training["set"].isin(config.study.train_sets)]
    new = cohort_frame(bundle, second_cohort, predictions, outcomes=True)
    times = np.asarray(bundle.horizons, dtype=float)
    worst = 0.0
    for name in ("clinical", "integrated"):  # predictions.csv's survival is the nomograms'
        model = models[name]
        ref = r_survfit(
            r,
            model,
            train,
            new,
            times,
            computation=f"survival::survfit.coxph of the {name} model on the seed-7 cohort",
        )
        np.testing.assert_allclose(ref["coef"], model.coef, rtol=0, atol=1e-9)
        np.testing.assert_allclose(predictions[f"{name}_lp"], model.linear_predictor(new), 0, 0)
        for key, suffix in (("surv", ""), ("lower", "_lower"), ("upper", "_upper")):
            expected = np.asarray(ref[key]).reshape(len(times), N).T
            ours = predictions[[f"{name}_survival_{t:g}{suffix}" for t in times]].to_numpy()
            np.testing.assert_allclose(ours, expected, rtol=0, atol=TOL_R)
            worst = max(worst, float(np.abs(ours - expected).max()))
    print(f"worst |ours - survfit| over surv, lower, upper: {worst:.3g}")


def test_sigkit_apply_validates_and_reports_every_section(applied):
    from bs4 import BeautifulSoup

    from toolkit.report.formatting import with_ci

    out, output = applied
    page = out / "report" / "apply.html"
    assert page.is_file() and f"report: {page}" in output
    text = page.read_text(encoding="utf-8")
    assert "<script src=" not in text and 'rel="stylesheet" href' not in text
    headings = [h.get_text(" ", strip=True) for h in BeautifulSoup(text, "html.parser")("h2")]
    for section in (
        "The model",
        "The cohort and its predictions",
        "External validation",
        "Transportability",
    ):
        assert any(h.endswith(section) or h == section for h in headings), (section, headings)
    record = json.loads((out / "apply.json").read_text())
    assert record["labels"] == ["SYNTHETIC", "RANDOM weights"] and record["n_scored"] == N
    # synth names every cohort's patients P001...: the IDs collide with the training
    # patients', the images do not (a warning, not the NOT AN EXTERNAL VALIDATION label)
    overlap = record["training_overlap"]
    assert overlap["checked"] and set(overlap["patients"].values()) <= {"ID"}
    assert "carry the ID of a training patient" in overlap["warning"]
    validation = json.loads((out / "validation.json").read_text())
    assert validation["n_patients"] == N and validation["n_events"] > 0
    for entry in validation["cindex"]["external"].values():
        assert with_ci(entry["c"], entry["lower"], entry["upper"]) in text
    transport = json.loads((out / "transport.json").read_text())
    for block in transport["models"].values():
        member = block["case_mix"]["membership_lp"]  # the bundle's training case mix
        assert member["n_new"] == N and member["n_training"] > 0
        assert with_ci(member["auc"], member["lower"], member["upper"]) in text


def _mi_study(second_cohort, tmp_path_factory):
    """The seed-7 cohort as a study of its own, 10 % of AFP and ALT deleted at random,
    validation.missing = "multiple-imputation" (the session study's quick settings)."""
    study = tmp_path_factory.mktemp("seed7_mi") / "study"
    shutil.copytree(second_cohort, study / "cohort")
    toml = study / "cohort" / "study.toml"
    text = toml.read_text()
    for old, new in (
        ("n_bootstrap = 1000\n", "n_bootstrap = 200\ncalibration_bootstrap = 20\nmin_events = 5\n"),
        ("\nB = 50\n", "\nB = 20\n"),
        (
            'missing = "complete-case"\n',
            f'missing = "multiple-imputation"\nm = {M}\nimputation_seed = {IMPUTATION_SEED}\n',
        ),
    ):
        assert old in text, f"synth's study.toml changed: no {old!r}"
        text = text.replace(old, new)
    # the radiomics signature is not what this test is about, and the longest stage here
    toml.write_text(text + "\n[radiomics]\nenabled = false\n")
    path = study / "cohort" / "clinical.csv"
    table = pd.read_csv(path, dtype=str)
    rng = np.random.default_rng(18)
    for column in DELETED:
        table.loc[rng.choice(len(table), size=round(0.1 * len(table)), replace=False), column] = ""
    table.to_csv(path, index=False)
    return study


@pytest.fixture(scope="module")
def seed7_imputed(second_cohort, tmp_path_factory):
    from toolkit.study.run import run_study

    study = _mi_study(second_cohort, tmp_path_factory)
    lines: list[str] = []
    run_study(study, weights="random", workers=0, report=False, echo=lines.append)
    return study, lines


def _seed7_training(study):
    """The seed-7 study's config and its completed training sets (with the signature), made
    again from the run's inputs (the imputation is seeded)."""
    from toolkit.config import load_study, prepare_clinical, read_clinical
    from toolkit.imaging.manifest import study_manifest
    from toolkit.study import imputed

    cohort = study / "cohort"
    config = load_study(cohort)
    data = prepare_clinical(config, read_clinical(config, cohort, study_manifest(config, cohort)))
    scores = pd.read_parquet(study / "results" / "tables" / "scores.parquet")
    frame = data.frame.loc[[p for p in data.frame.index if p in scores.index]]
    completed = imputed.impute_cohort(config, frame, m=M, seed=IMPUTATION_SEED).completed
    trains = [c[c["set"].isin(config.study.train_sets)] for c in completed]
    signature = scores.loc[trains[0].index, "signature"].to_numpy(float)
    return config, data, [t.assign(signature=signature) for t in trains]


def test_the_cohort_with_missing_afp_and_alt_pools_as_mice(r, seed7_imputed):
    """models.json's pooled coefficients, SEs and P values and pooled_estimates' df equal
    mice::pool of coxph on the run's own completed training sets (made again here from
    the run's inputs: the imputation is seeded), and the run's R cross-check passed."""
    from toolkit.contracts import RCheck, StudyModels
    from toolkit.rbridge.imputation import pool_coxph
    from toolkit.study.nomograms import FittedModel, design_matrix

    study, lines = seed7_imputed
    assert any(f"imputed {M} times" in line for line in lines)
    _, data, trains = _seed7_training(study)
    missing = pd.read_parquet(study / "results" / "tables" / "missing_values.parquet")
    for column in DELETED:
        n = int(missing.loc[missing["variable"] == column, "n_missing"].sum())
        assert n == int(data.raw[column].isna().sum()) == round(0.1 * N)
    saved = StudyModels.read(study / "results" / "models.json", model=FittedModel).models
    pooled = pd.read_parquet(study / "results" / "tables" / "pooled_estimates.parquet")
    for name, model in saved.items():
        rows = [design_matrix(t, list(model.variables), dict(model.levels))[0] for t in trains]
        t, e = trains[0]["time"].to_numpy(float), trains[0]["event"].to_numpy(float)
        ref = pool_coxph(np.stack(rows), t, e)
        np.testing.assert_allclose(model.coef, ref["estimate"], rtol=0, atol=TOL_POOL)
        np.testing.assert_allclose(model.se, ref["std_error"], rtol=0, atol=TOL_POOL)
        np.testing.assert_allclose(model.p, ref["p_value"], rtol=0, atol=TOL_POOL)
        df = pooled.loc[pooled["model"] == name, "df"].to_numpy(float)
        np.testing.assert_allclose(df, ref["df"], rtol=0, atol=TOL_POOL)
    record = RCheck.read(study / "results" / "r_check.json")
    assert record.passed, [c.name for c in record.checks if not c.passed]
    assert max(c.diff for c in record.checks if c.name.startswith("mice::pool")) <= TOL_POOL


@pytest.fixture(scope="module")
def applied_imputed(study_run, seed7_imputed, tmp_path_factory):
    """The seed-7 study's model, fitted under multiple imputation, applied by the CLI to the
    session study's cohort with 10 % of each model variable deleted at random: (OUT_DIR,
    the cohort, each patient's number of deleted model values)."""
    study, _ = seed7_imputed
    bundle = ModelBundle.load(study / "model")
    cohort = tmp_path_factory.mktemp("session_missing") / "cohort"
    shutil.copytree(study_run[0] / "cohort", cohort)
    path = cohort / "clinical.csv"
    table = pd.read_csv(path, dtype=str)
    rng = np.random.default_rng(29)
    deleted = pd.Series(0, index=table[table.columns[0]])
    for column in bundle.variables:
        rows = rng.choice(len(table), size=round(0.1 * len(table)), replace=False)
        table.loc[rows, column] = ""
        deleted.iloc[rows] += 1
    table.to_csv(path, index=False)
    out = tmp_path_factory.mktemp("applied_imputed") / "out"
    command = ["apply", str(study / "model"), str(cohort), "--out", str(out)]
    result = CliRunner().invoke(app, [*command, "--weights", "random", "--workers", "0"])
    assert result.exit_code == 0, result.output
    return out, cohort, deleted


def test_a_model_fitted_under_imputation_scores_a_cohort_with_missing_values_as_mice(
    r, seed7_imputed, applied_imputed
):
    """No patient is dropped for a missing model value: the bundle completes the cohort m
    times, ``n_imputed`` counts each patient's imputed values, the linear predictor is the
    pooled model's averaged over the completions, and each predicted survival and 95% CI
    equals mice::pool.scalar of R's survfit(coxph on completed training set j, newdata =
    completion j) within 1e-6; the cohort is validated and its transport says what it
    could not refit."""
    from toolkit.rbridge.imputation import pool_survfit
    from toolkit.study.bundle import NOMOGRAMS, PooledCox
    from toolkit.study.nomograms import design_matrix
    from toolkit.study.transport import REFIT_IMPUTED

    study, _ = seed7_imputed
    out, cohort, deleted = applied_imputed
    bundle = ModelBundle.load(study / "model")
    predictions = _read_predictions(out)
    assert pd.read_csv(out / "exclusions.csv").empty
    assert len(predictions) == len(deleted) and deleted.sum() > 0
    assert predictions["n_imputed"].to_dict() == deleted.astype(int).to_dict()
    new = cohort_frame(bundle, cohort, predictions, outcomes=True, keep_missing=True)
    assert int(new[bundle.variables].isna().sum().sum()) == deleted.sum()
    completions = bundle.complete(new)
    _, _, trains = _seed7_training(study)
    times = np.asarray(bundle.horizons, dtype=float)
    t, e = trains[0]["time"].to_numpy(float), trains[0]["event"].to_numpy(float)
    worst = 0.0
    for name in NOMOGRAMS:
        locked = bundle.models[name]
        assert isinstance(locked, PooledCox) and locked.m == M
        model = locked.model
        averaged = np.mean([model.linear_predictor(c) for c in completions], axis=0)
        np.testing.assert_allclose(predictions[f"{name}_lp"], averaged, rtol=0, atol=1e-12)
        variables, levels = list(model.variables), dict(model.levels)
        designs = np.stack([design_matrix(train, variables, levels)[0] for train in trains])
        newx = np.stack([design_matrix(c, variables, levels)[0] for c in completions])
        ref = pool_survfit(designs, t, e, newx, times)
        for key, suffix in (("surv", ""), ("lower", "_lower"), ("upper", "_upper")):
            ours = predictions[[f"{name}_survival_{h:g}{suffix}" for h in times]].to_numpy()
            np.testing.assert_allclose(ours, ref[key], rtol=0, atol=TOL_R, err_msg=f"{name} {key}")
            worst = max(worst, float(np.abs(ours - ref[key]).max()))
    print(f"worst |ours - mice::pool.scalar(survfit)| over surv, lower, upper: {worst:.3g}")
    validation = json.loads((out / "validation.json").read_text())
    assert validation["n_patients"] == len(deleted)
    assert set(validation["cindex"]["external"]) == {"signature", "clinical", "integrated"}
    transport = json.loads((out / "transport.json").read_text())
    refits = [block["updating"]["refit"] for block in transport["models"].values()]
    assert any(r.get("note") == REFIT_IMPUTED for r in refits)
    record = json.loads((out / "apply.json").read_text())
    n_patients, n_values = int((deleted > 0).sum()), int(deleted.sum())
    assert record["imputation"] == {"m": M, "n_patients": n_patients, "n_values": n_values}
    page = (out / "report" / "apply.html").read_text(encoding="utf-8")
    assert f"{n_values} missing model values of {n_patients} patients were imputed" in page
