"""A study run with validation.missing = "multiple-imputation": the session's synthetic
study with 10 % of AFP and ALT deleted at random and m = 3, run end to end from its
cached features. models.json holds exactly what ``imputed.study_models`` makes of the
run's completed sets, r_check compares the pooled fits with mice::pool, and the report
lists the missing values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit.config import load_study, prepare_clinical, read_clinical
from toolkit.contracts import RCheck, StudyModels
from toolkit.imaging.manifest import study_manifest
from toolkit.study import imputed
from toolkit.study.nomograms import FittedModel

M, SEED = 3, 5  # tests/conftest.py's imputed_study settings, checked below


@pytest.fixture(scope="module")
def imputed_run(imputed_study):
    validation = load_study(imputed_study[0] / "cohort" / "study.toml").validation
    assert (validation.m, validation.imputation_seed) == (M, SEED)
    return imputed_study


def _study_models_of_the_run(study):
    """(``imputed.study_models`` of the run's completed model frames, those frames, the
    config): the run's imputation redone from its cohort and scores."""
    config = load_study(study / "cohort" / "study.toml")
    cohort = study / "cohort"
    data = prepare_clinical(config, read_clinical(config, cohort, study_manifest(config, cohort)))
    scores = pd.read_parquet(study / "results" / "tables" / "scores.parquet")
    frame = data.frame.loc[[p for p in data.frame.index if p in scores.index]]
    completed = imputed.impute_cohort(config, frame, m=M, seed=SEED).completed
    frames = []
    for c in completed:
        c = c.copy()
        c["signature"] = scores.loc[c.index, "signature"].to_numpy(float)
        frames.append(c)
    return imputed.study_models(frames, config), frames, config


def test_models_json_is_study_models_of_the_runs_completed_sets(imputed_run):
    study, _, lines, _ = imputed_run
    assert any(f"imputed {M} times" in line for line in lines)
    direct, frames, config = _study_models_of_the_run(study)
    saved = StudyModels.read(study / "results" / "models.json", model=FittedModel)
    for name, model in direct.models.items():
        ours = saved.models[name]
        assert ours.terms == model.terms and ours.variables == model.variables
        np.testing.assert_allclose(ours.coef, model.coef, rtol=0, atol=1e-12)
        np.testing.assert_allclose(ours.se, model.se, rtol=0, atol=1e-12)
        assert ours.baseline_survival == pytest.approx(model.baseline_survival, abs=1e-12)
        assert ours.note.startswith(f"pooled over {M} imputations")
    pooled = pd.read_parquet(study / "results" / "tables" / "pooled_estimates.parquet")
    integrated = pooled[pooled["model"] == "integrated"]
    np.testing.assert_allclose(integrated["se"], direct.models["integrated"].se, atol=1e-12)
    _assert_bundle_is_the_pooled_models(study, direct, frames, config)
    counts = pd.read_parquet(study / "results" / "tables" / "majority_selection.parquet")
    assert counts["clinical"].max() <= M and set(counts["m"]) == {M}


def test_r_check_compares_the_pooled_fits_with_mice_pool_and_passes(imputed_run):
    study, _, _, _ = imputed_run
    record = RCheck.read(study / "results" / "r_check.json")
    failed = [c.name for c in record.checks if not c.passed]
    assert record.passed, failed
    pooled = [c for c in record.checks if c.name.startswith("mice::pool")]
    assert len(pooled) == 4 * 3  # estimate, SE, df, P of the three models
    assert max(c.diff for c in pooled) <= 1e-8
    assert not any(c.name.startswith("coxph coefficients") for c in record.checks)
    assert any(c.name.startswith("concordance C-index") for c in record.checks)


def test_the_report_lists_the_missing_values_and_the_methods_say_what_was_done(
    imputed_run, tmp_path
):
    from bs4 import BeautifulSoup
    from typer.testing import CliRunner

    from toolkit.cli import app

    study, _, _, deleted = imputed_run
    table = pd.read_parquet(study / "results" / "tables" / "missing_values.parquet")
    for column, patients in deleted.items():
        assert int(table.loc[table["variable"] == column, "n_missing"].sum()) == len(patients)
    assert set(table.loc[table["n_missing"] == 0, "action"]) == {"complete"}
    out = tmp_path / "study.html"
    command = ["report", str(study), "--renderer", "jupyter", "--out", str(out)]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "Missing clinical values" in page
    cells = [
        [td.get_text(strip=True) for td in tr.find_all("td")[:3]]
        for tr in BeautifulSoup(page, "html.parser").find_all("tr")
    ]
    for r in table[table["n_missing"] > 0].itertuples():
        assert [r.variable, r.set, f"{r.n_missing} of {r.n}"] in cells
    assert f"({M} imputations" in page and "averaged over the imputations" in page
    assert f"were imputed again before the selection ({M} chained equations fitted" in page


def test_the_internal_validation_imputes_each_resample_again(imputed_run):
    """internal_validation.json names the rule each resample repeated, every resample was
    used or dropped with its reason, and the study's apparent values are the validate
    stage's training-set values."""
    from toolkit.contracts import InternalValidation

    study = imputed_run[0]
    record = InternalValidation.read(study / "results" / "internal_validation.json")
    assert record.refilled == "multiple-imputation"
    resamples = pd.read_parquet(
        study / "results" / "tables" / "internal_validation_resamples.parquet"
    )
    assert len(resamples) == record.B and int(resamples["used"].sum()) == record.n_used > 0
    assert (resamples.loc[~resamples["used"], "reason"] != "").all()
    # the study's apparent values are the validate stage's: the pooled models at the linear
    # predictor averaged over the completed sets, not at the first completed set's
    from toolkit.contracts import Metrics
    from toolkit.stats.concordance import harrell
    from toolkit.study.internal import MODELS

    metrics = Metrics.read(study / "results" / "metrics.json")
    table = pd.read_parquet(study / "results" / "tables" / "internal_validation.parquet")
    direct, frames, config = _study_models_of_the_run(study)
    first = frames[0][frames[0]["set"].isin(config.study.train_sets)]
    t, e = first["time"].to_numpy(float), first["event"].to_numpy(float)
    differs = []
    for name in MODELS:
        row = table[(table["model"] == name) & (table["metric"] == "c_index")]
        c = metrics.cindex["train"][name]["c"]
        assert float(row["apparent"].iloc[0]) == pytest.approx(c, abs=1e-12), name
        differs.append(abs(harrell(t, e, direct.models[name].linear_predictor(first)).c - c))
        for horizon, brier in metrics.accuracy["train"][name]["brier"].items():
            at = table[
                (table["model"] == name)
                & (table["metric"] == "brier")
                & (table["horizon"] == float(horizon))
            ]
            assert float(at["apparent"].iloc[0]) == pytest.approx(brier["brier"], abs=1e-12)
    assert max(differs) > 1e-6, differs  # a model with an imputed variable: the sets differ


def _assert_bundle_is_the_pooled_models(study, direct, frames, config):
    """The locked bundle holds the pooled models, each imputation's own fit on completed
    training set j and the covariate-only imputer; no stale file of the earlier run."""
    from toolkit.stats.pooling import pool_cox
    from toolkit.study.bundle import ModelBundle, PooledCox
    from toolkit.study.nomograms import refit

    bundle = ModelBundle.load(study / "model")
    assert bundle.imputation is not None and not bundle.imputation.outcome
    assert bundle.imputation.m == M
    assert set(bundle.imputation.variables) == {*bundle.variables, "signature"}
    trains = [f[f["set"].isin(config.study.train_sets)] for f in frames]
    for name, model in direct.models.items():
        locked = bundle.models[name]
        assert isinstance(locked, PooledCox) and locked.m == M
        assert locked.model.coef == model.coef
        fits = [refit(model, train) for train in trains]
        for fit, own in zip(fits, locked.fits, strict=True):
            np.testing.assert_array_equal(own.model.coef, fit.coef)
            np.testing.assert_array_equal(own.covariance, fit.variance)
        np.testing.assert_array_equal(pool_cox(fits).estimate, model.coef)
