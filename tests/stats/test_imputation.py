"""Chained equations with predictive mean matching: what PMM guarantees, the outcome's
part in the models (White and Royston 2009), and new rows imputed by the training models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from toolkit.stats.imputation import ChainedImputation, fit_chained_equations, nelson_aalen


def _cohort(n: int = 160, seed: int = 1):
    """x1 ~ N(0,1); x2 = x1 + noise; a 3-level stage; Weibull-ish times; values deleted."""
    rng = np.random.default_rng(seed)
    x1 = rng.standard_normal(n)
    x2 = x1 + 0.3 * rng.standard_normal(n)
    stage = pd.Categorical(rng.choice(["I", "II", "III"], n), categories=["I", "II", "III"])
    time = rng.exponential(np.exp(-0.7 * x1)) * 20
    censor = rng.uniform(0, 40, n)
    event = (time <= censor).astype(float)
    frame = pd.DataFrame(
        {"x1": x1, "x2": x2, "stage": stage}, index=pd.Index([f"P{i:03d}" for i in range(n)])
    )
    full = frame.copy()
    for column, share in (("x1", 0.2), ("x2", 0.1), ("stage", 0.15)):
        frame.loc[rng.random(n) < share, column] = np.nan
    return frame, full, np.minimum(time, censor), event


def test_nelson_aalen_equals_survfit_cumhaz_on_lung(r, lung):
    from toolkit.rbridge.imputation import nelson_aalen as r_nelson_aalen

    time, event = lung["time"].to_numpy(float), (lung["status"] == 2).astype(float).to_numpy()
    times, hazard = nelson_aalen(time, event)
    ref = r_nelson_aalen(time, event)
    np.testing.assert_array_equal(times, ref["time"])
    np.testing.assert_allclose(hazard, ref["cumhaz"], rtol=1e-13)


def test_nelson_aalen_by_hand():
    # times 1, 2, 2, 3 (events 1, 1, 0, 1): 1/4, then 1/4 + 1/3, then + 1/1
    times, hazard = nelson_aalen([2, 1, 2, 3], [1, 1, 0, 1])
    np.testing.assert_array_equal(times, [1, 2, 3])
    np.testing.assert_allclose(hazard, [1 / 4, 1 / 4 + 1 / 3, 1 / 4 + 1 / 3 + 1])


def test_pmm_imputes_only_observed_values_and_keeps_the_observed_ones():
    frame, _, time, event = _cohort()
    imputed = fit_chained_equations(frame, time, event, m=5, iterations=5, seed=3)
    assert imputed.m == 5 and imputed.n_missing == {
        c: int(frame[c].isna().sum()) for c in frame.columns
    }
    for completed in imputed.completed:
        assert not completed.isna().any().any()
        assert completed.index.equals(frame.index)
        assert list(completed["stage"].cat.categories) == ["I", "II", "III"]
        for column in ("x1", "x2"):
            seen = frame[column].dropna()
            pd.testing.assert_series_equal(completed.loc[seen.index, column], seen)
            filled = completed.loc[frame[column].isna(), column]
            assert filled.isin(set(seen)).all()  # PMM: donors' observed values only
        observed = frame["stage"].notna()
        assert (completed.loc[observed, "stage"] == frame.loc[observed, "stage"]).all()
    # the imputations differ from each other (between-imputation variance exists)
    assert not imputed.completed[0]["x1"].equals(imputed.completed[1]["x1"])


def test_the_seed_fixes_the_imputations_and_no_global_state_is_used():
    frame, _, time, event = _cohort()
    np.random.seed(0)  # noqa: NPY002 (the global state must not matter)
    a = fit_chained_equations(frame, time, event, m=3, iterations=3, seed=11)
    np.random.seed(99)  # noqa: NPY002
    b = fit_chained_equations(frame, time, event, m=3, iterations=3, seed=11)
    c = fit_chained_equations(frame, time, event, m=3, iterations=3, seed=12)
    for x, y in zip(a.completed, b.completed, strict=True):
        pd.testing.assert_frame_equal(x, y)
    assert not a.completed[0].equals(c.completed[0])


def test_the_outcome_enters_each_model_as_event_and_nelson_aalen_hazard():
    """x is the cumulative hazard at the patient's time: only the outcome can predict it."""
    rng = np.random.default_rng(5)
    n = 200
    time = rng.exponential(10, n)
    event = (rng.random(n) < 0.7).astype(float)
    times, hazard = nelson_aalen(time, event)
    truth = hazard[np.searchsorted(times, time)] + event
    frame = pd.DataFrame({"x": truth, "noise": rng.standard_normal(n)})
    gone = rng.random(n) < 0.3
    frame.loc[gone, "x"] = np.nan
    imputed = fit_chained_equations(frame, time, event, m=5, iterations=3, seed=1)
    model = imputed.models[0]["x"]
    assert model.predictors == ("noise", "event", "cumulative_hazard")
    np.testing.assert_allclose(model.coef[-2:], [1.0, 1.0], atol=1e-10)  # x = H + event
    for completed in imputed.completed:
        error = np.abs(completed.loc[gone, "x"] - truth[gone])
        assert error.mean() < 0.1 * truth.std()  # random donors would give ~ 1 sd


def test_new_rows_are_imputed_by_the_training_models_without_refitting():
    frame, full, time, event = _cohort(n=200, seed=8)
    train, new = frame.iloc[:140], frame.iloc[140:].copy()
    new.loc[new.index[:3], "x2"] = np.nan
    imputed = fit_chained_equations(train, time[:140], event[:140], m=4, iterations=4, seed=2)
    before = [c.copy() for c in imputed.completed]
    completed = imputed.transform(new, time[140:], event[140:])
    again = imputed.transform(new, time[140:], event[140:])
    assert len(completed) == 4
    for c, d in zip(completed, again, strict=True):
        pd.testing.assert_frame_equal(c, d)  # deterministic from the seed
    for c, b in zip(imputed.completed, before, strict=True):
        pd.testing.assert_frame_equal(c, b)  # training untouched
    donors = {k: set(train[k].dropna()) for k in ("x1", "x2")}
    for c in completed:
        assert not c.isna().any().any()
        for k in ("x1", "x2"):
            gone = new[k].isna()
            assert c.loc[gone, k].isin(donors[k]).all()  # training donors only
            pd.testing.assert_series_equal(c.loc[~gone, k], new.loc[~gone, k])
    # imputations track the truth better than random draws from the donors (x2 ~ x1)
    gone = new["x1"].isna() & new["x2"].notna()
    error = np.mean(
        [np.abs(c.loc[gone, "x1"] - full.loc[gone[gone].index, "x1"]).mean() for c in completed]
    )
    assert error < 0.6


def test_bad_input_is_named():
    frame, _, time, event = _cohort(n=40)
    empty = frame.assign(x2=np.nan)
    with pytest.raises(ValueError, match="no observed value of x2"):
        fit_chained_equations(empty, time, event, m=2)
    with pytest.raises(ValueError, match="P003"):
        fit_chained_equations(frame, np.where(np.arange(40) == 3, np.nan, time), event, m=2)
    imputed = fit_chained_equations(frame, time, event, m=2, iterations=1)
    odd = frame.iloc[:5].copy()
    odd["stage"] = odd["stage"].cat.add_categories("IV")
    odd.loc["P002", "stage"] = "IV"
    with pytest.raises(ValueError, match=r"stage: level IV not seen in training \(P002\)"):
        imputed.transform(odd, time[:5], event[:5])
    with pytest.raises(ValueError, match="no column x1"):
        imputed.transform(frame.drop(columns="x1"), time, event)
    with pytest.raises(ValueError, match="numeric or categorical"):
        fit_chained_equations(frame.assign(x1="a"), time, event, m=2)


def test_an_absent_level_and_a_collinear_column_do_not_break_the_models():
    """A level no patient has (its indicator is constant: left out) and an exact copy of
    a variable (collinear: mice's ridge) still give imputations of observed values."""
    frame, _, time, event = _cohort(n=120, seed=6)
    frame["stage"] = frame["stage"].cat.add_categories("IV")
    frame["z"] = np.random.default_rng(0).standard_normal(len(frame))
    frame["copy"] = 2 * frame["z"] + 1  # exactly collinear with z in every model
    imputed = fit_chained_equations(frame, time, event, m=3, iterations=3, seed=4)
    model = imputed.models[0]["x1"]
    assert model.predictors[model.coef[1:].tolist().index(0.0)] == "stageIV"  # no intercept
    for completed in imputed.completed:
        assert not completed.isna().any().any()
        assert set(completed["stage"]) <= {"I", "II", "III"}
        assert completed.loc[frame["x1"].isna(), "x1"].isin(set(frame["x1"].dropna())).all()


def test_an_imputation_without_the_outcome_imputes_new_rows_from_covariates_alone():
    """outcome=False: the deployment imputer, for patients whose outcome is not known."""
    frame, full, time, event = _cohort(n=200, seed=8)
    train, new = frame.iloc[:140], frame.iloc[140:].copy()
    imputed = fit_chained_equations(train, m=4, iterations=4, seed=2, outcome=False)
    assert not imputed.outcome and imputed.m == 4
    for chain in imputed.models:
        for model in chain.values():
            assert "event" not in model.predictors and "cumulative_hazard" not in model.predictors
            assert len(model.coef) == len(model.predictors) + 1
    completed = imputed.transform(new)
    for c in completed:
        assert not c.isna().any().any()
        gone = new["x1"].isna()
        assert c.loc[gone, "x1"].isin(set(train["x1"].dropna())).all()
    # the covariates alone still carry x1 (x2 ~ x1): better than random training donors
    gone = new["x1"].isna() & new["x2"].notna()
    error = np.mean(
        [np.abs(c.loc[gone, "x1"] - full.loc[gone[gone].index, "x1"]).mean() for c in completed]
    )
    assert error < 0.6
    with pytest.raises(ValueError, match="without the outcome"):
        imputed.transform(new, time[140:], event[140:])
    with_outcome = fit_chained_equations(train, time[:140], event[:140], m=2, seed=2)
    with pytest.raises(ValueError, match="needs the new rows' time and event"):
        with_outcome.transform(new)
    with pytest.raises(ValueError, match="give time and event"):
        fit_chained_equations(train, m=2)
    with pytest.raises(ValueError, match="give no outcome"):
        fit_chained_equations(train, time[:140], event[:140], m=2, outcome=False)


@pytest.mark.parametrize("outcome", [True, False])
def test_the_json_round_trip_imputes_new_rows_identically(outcome):
    frame, _, time, event = _cohort(n=200, seed=9)
    train, new = frame.iloc[:140], frame.iloc[140:].copy()
    given = (time[:140], event[:140]) if outcome else ()
    imputed = fit_chained_equations(train, *given, m=3, iterations=3, seed=5, outcome=outcome)
    text = json.dumps(imputed.to_json())
    back = ChainedImputation.from_json(json.loads(text))
    assert back.completed == () and back.m == 3 and back.outcome is outcome
    assert back.levels == imputed.levels and back.n_missing == imputed.n_missing
    new_outcome = (time[140:], event[140:]) if outcome else ()
    for a, b in zip(
        imputed.transform(new, *new_outcome), back.transform(new, *new_outcome), strict=True
    ):
        pd.testing.assert_frame_equal(a, b)
    broken = json.loads(text)
    del broken["models"][1]["x2"]
    with pytest.raises(ValueError, match="imputation 2: x2"):
        ChainedImputation.from_json(broken)


def test_new_rows_with_their_own_categories_get_the_training_level_imputed():
    """The codes of an imputed level index the training levels: new rows whose categorical
    lists its categories in another order (and one more, unseen) get the same level names
    as rows coded as in training."""
    frame, _, _, _ = _cohort(n=200, seed=8)
    train, new = frame.iloc[:140], frame.iloc[140:].copy()
    imputed = fit_chained_equations(train, m=3, iterations=3, seed=4, outcome=False)
    reordered = new.copy()
    reordered["stage"] = pd.Categorical(
        new["stage"].astype(object), categories=["IV", "III", "II", "I"]
    )
    for plain, other in zip(imputed.transform(new), imputed.transform(reordered), strict=True):
        assert list(other["stage"].cat.categories) == ["IV", "III", "II", "I"]
        assert other["stage"].isna().sum() == 0
        pd.testing.assert_series_equal(
            other["stage"].astype(str), plain["stage"].astype(str), check_categorical=False
        )
