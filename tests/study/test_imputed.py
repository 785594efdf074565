"""The study's models under multiple imputation (study/imputed.py) on a small synthetic
cohort with 10 % of AFP and ALT deleted at random: imputation fitted on training and
applied to validation, majority-rule selection, and the pooled fit equal to mice::pool."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit.config import StudyInputError, loads_study, prepare_clinical
from toolkit.study import imputed
from toolkit.study import nomograms as nm
from toolkit.synth.cohort import STUDY_TOML

M = 6


def _config(setting: str = ""):
    return loads_study(
        STUDY_TOML.replace(
            'missing = "complete-case"\n', f'missing = "complete-case"\nmin_events = 2\n{setting}'
        )
    )


def _table(n: int = 90, seed: int = 4) -> pd.DataFrame:
    """A clinical table as read from clinical.csv (complete), and its generator's signature."""
    rng = np.random.default_rng(seed)
    patients = [f"P{i:03d}" for i in range(n)]
    bclc = rng.choice(["A", "B", "C"], n)
    signature = rng.standard_normal(n)
    alt = rng.lognormal(3.6, 0.5, n).round(1)
    risk = 0.9 * signature + 0.8 * (bclc == "C") + 0.6 * (alt >= 40)
    t_event = rng.weibull(1.3, n) * 30 * np.exp(-risk)
    t_censor = rng.uniform(10, 80, n)
    table = pd.DataFrame(
        {
            "set": ["train"] * (n - 30) + ["validation"] * 30,
            "os_months": np.maximum(np.minimum(t_event, t_censor).round(2), 0.01),
            "os_event": (t_event <= t_censor).astype(int),
            "pfs_months": 5.0,
            "pfs_event": 1,
            "ecog": rng.choice(["0", "1"], n),
            "child_pugh": rng.choice(["A", "B"], n),
            "tumour_number": rng.integers(1, 4, n),
            "tumour_size_cm": rng.lognormal(1.6, 0.5, n).round(1),
            "bclc": bclc,
            "hbv": rng.choice(["no", "yes"], n),
            "cirrhosis": rng.choice(["no", "yes"], n),
            "distribution": rng.choice(["unilobar", "bilobar"], n),
            "afp": rng.lognormal(5, 1.5, n).round(1),
            "alt": alt,
            "ast": rng.lognormal(3.7, 0.5, n).round(1),
            "hbsag": rng.choice(["negative", "positive"], n),
        },
        index=pd.Index(patients, name="patient"),
    )
    table.loc[patients[0], "os_months"] = 90.0  # follow-up beyond the horizons
    table["signature"] = signature
    return table


def _frame(n: int = 90, seed: int = 4) -> pd.DataFrame:
    """A prepared clinical frame with a ``signature`` column; AFP and ALT 10 % missing."""
    rng = np.random.default_rng(seed + 1)
    table = _table(n, seed)
    frame = prepare_clinical(_config(), table).frame
    for column in ("afp", "alt"):
        frame.loc[rng.random(len(frame)) < 0.1, column] = np.nan
    frame["signature"] = table["signature"]
    return frame


@pytest.fixture(scope="module")
def cohort():
    frame = _frame()
    return frame, imputed.impute_cohort(_config(), frame, m=M, seed=7, iterations=5)


def test_training_imputations_fit_on_training_and_apply_to_validation(cohort):
    frame, result = cohort
    assert len(result.completed) == M
    train = frame["set"] == "train"
    for completed in result.completed:
        assert not completed[["afp", "alt"]].isna().any().any()
        pd.testing.assert_index_equal(completed.index, frame.index)
        for column in ("afp", "alt"):
            seen = frame[column].notna()
            assert (completed.loc[seen, column] == frame.loc[seen, column]).all()
    # the validation rows do not shape the imputation models: the training completions
    # are the same when the validation rows are dropped
    alone = imputed.impute_cohort(_config(), frame[train], m=M, seed=7, iterations=5)
    for a, b in zip(alone.completed, result.completed, strict=True):
        pd.testing.assert_frame_equal(a, b.loc[train])
    table = result.missing.set_index(["variable", "set"])
    for column in ("afp", "alt"):
        for set_name in ("train", "validation"):
            rows = frame["set"] == set_name
            expected = int(frame.loc[rows, column].isna().sum())
            assert table.loc[(column, set_name), "n_missing"] == expected
            assert table.loc[(column, set_name), "n"] == int(rows.sum())
    assert (table.loc["bclc", "action"] == "complete").all()
    assert table.loc[("afp", "train"), "action"].startswith(f"imputed {M} times")


def test_majority_rule_keeps_variables_chosen_in_half_the_imputations(cohort):
    _, result = cohort
    config = _config()
    chosen = imputed.select_by_majority(result.completed, config)
    per = [nm.select(f, config) for f in result.completed]
    for v in [x.name for x in config.variables]:
        clinical = sum(v in s.clinical for s in per)
        integrated = sum(v in s.integrated for s in per)
        row = chosen.counts.set_index("variable").loc[v]
        assert (row["clinical"], row["integrated"]) == (clinical, integrated)
        assert (v in chosen.clinical) == (2 * clinical >= M)
        assert (v in chosen.integrated) == (2 * integrated >= M)
    assert chosen.integrated[-1] == "signature"
    assert chosen.clinical  # never empty


def test_pooled_cox_equals_mice_pool_on_the_same_completed_sets(r, cohort):
    from toolkit.rbridge.imputation import pool_coxph

    _, result = cohort
    config = _config()
    variables = ["bclc", "alt", "afp", "signature"]
    trains = [c[c["set"] == "train"] for c in result.completed]
    levels = imputed.common_levels(result.completed, config)
    model, pooled = imputed.fit_pooled("integrated", trains, variables, levels, [12.0, 24.0])
    designs = np.stack([nm.design_matrix(t, variables, levels)[0] for t in trains])
    ref = pool_coxph(designs, trains[0]["time"].to_numpy(), trains[0]["event"].to_numpy())
    np.testing.assert_allclose(model.coef, ref["estimate"], rtol=1e-8)
    np.testing.assert_allclose(model.se, ref["std_error"], rtol=1e-8)
    np.testing.assert_allclose(pooled.df, ref["df"], rtol=1e-8)
    np.testing.assert_allclose(model.p, ref["p_value"], rtol=1e-8)
    assert np.all(pooled.between > 0)


def test_pooling_identical_sets_gives_the_complete_data_model(cohort):
    """m copies of one completed set: no between variance, the model of ``fit_model``."""
    _, result = cohort
    train = result.completed[0][result.completed[0]["set"] == "train"]
    variables, times = ["bclc", "alt", "signature"], [12.0, 24.0]
    levels = imputed.common_levels(result.completed[:1], _config())
    model, pooled = imputed.fit_pooled("clinical", [train] * 3, variables, levels, times)
    single = nm.fit_model("clinical", train, variables, levels, times)
    np.testing.assert_allclose(pooled.between, 0, atol=1e-20)
    np.testing.assert_allclose(model.coef, single.coef, rtol=1e-12)
    np.testing.assert_allclose(model.se, single.se, rtol=1e-12)
    np.testing.assert_allclose(model.means, single.means, rtol=1e-12)
    assert model.lp_centre == pytest.approx(single.lp_centre, rel=1e-12)
    for key, value in single.baseline_survival.items():
        assert model.baseline_survival[key] == pytest.approx(value, rel=1e-12)
    # with dfcom = events - 4 and B = 0, P is Student's t on the Barnard-Rubin df
    assert pooled.dfcom == int(train["event"].sum()) - len(model.coef)


def _settings(lines: str):
    return loads_study(
        STUDY_TOML.replace('missing = "complete-case"\n', f"{lines}min_events = 2\n")
    )


def test_the_study_refuses_multiple_imputation_until_every_stage_takes_it():
    config = _settings('missing = "multiple-imputation"\nm = 5\nimputation_seed = 3\n')
    assert (config.validation.m, config.validation.imputation_seed) == (5, 3)
    assert _settings('missing = "multiple-imputation"\n').validation.m == 20
    with pytest.raises(StudyInputError, match="imputation_seed and m apply only with"):
        _settings('missing = "complete-case"\nm = 5\nimputation_seed = 1\n')
    with pytest.raises(StudyInputError, match="not yet carried through"):
        prepare_clinical(config, _table(n=40))


def test_the_three_study_models_are_pooled_from_the_majority_selection(cohort):
    _, result = cohort
    config = _config()
    out = imputed.study_models(result.completed, config)
    chosen = imputed.select_by_majority(result.completed, config)
    assert list(out.models) == ["signature", "clinical", "integrated"]
    assert list(out.models["clinical"].variables) == chosen.clinical
    assert list(out.models["integrated"].variables) == chosen.integrated
    trains = [c[c["set"] == "train"] for c in result.completed]
    alone, pooled = imputed.fit_pooled(
        "signature", trains, ["signature"], chosen.levels, config.validation.times
    )
    assert out.models["signature"].coef == alone.coef  # the signature is complete: B = 0
    np.testing.assert_allclose(pooled.between, 0, atol=1e-20)
    keys = {f"{t:g}" for t in config.validation.times}
    assert set(out.models["integrated"].baseline_survival) == keys
