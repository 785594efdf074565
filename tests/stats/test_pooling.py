"""Rubin's rules against mice::pool and mice::pool.scalar on sigkit's imputations of pbc, lung."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from toolkit.stats import cox, pooling
from toolkit.stats.imputation import fit_chained_equations


def test_rubin_by_hand_three_imputations_one_coefficient():
    """Q = 0.5, 0.7, 0.6 with U = 0.04, 0.05, 0.03 and dfcom = 50, worked out by hand."""
    pooled = pooling.rubin(
        np.array([[0.5], [0.7], [0.6]]), np.array([0.04, 0.05, 0.03]).reshape(3, 1, 1), dfcom=50
    )
    # Qbar = 1.8 / 3; Ubar = 0.12 / 3; B = (0.01 + 0.01 + 0) / 2; T = 0.04 + (4/3) 0.01 = 4/75
    assert pooled.estimate[0] == pytest.approx(0.6, abs=1e-15)
    assert pooled.within[0] == pytest.approx(0.04, abs=1e-15)
    assert pooled.between[0] == pytest.approx(0.01, abs=1e-15)
    assert pooled.total[0] == pytest.approx(4 / 75, abs=1e-15)
    assert pooled.se[0] == pytest.approx(np.sqrt(4 / 75), abs=1e-15)
    # r = (4/3)(0.01) / 0.04 = 1/3; lambda = (4/3)(0.01) / (4/75) = 1/4
    assert pooled.riv[0] == pytest.approx(1 / 3, abs=1e-14)
    assert pooled.lambda_[0] == pytest.approx(1 / 4, abs=1e-14)
    # df_old = 2 / (1/4)^2 = 32; df_obs = (51/53) 50 (3/4) = 1912.5/53;
    # df = 32 df_obs / (32 + df_obs) = 61200 / 3608.5
    assert pooled.df[0] == pytest.approx(61200 / 3608.5, rel=1e-13)
    df = 61200 / 3608.5
    assert pooled.fmi[0] == pytest.approx((1 / 3 + 2 / (df + 3)) / (4 / 3), rel=1e-13)
    assert pooled.dfcom == 50
    # with an infinite complete-data df the df is the large-sample one, 32
    large = pooling.rubin(
        np.array([[0.5], [0.7], [0.6]]), np.array([0.04, 0.05, 0.03]).reshape(3, 1, 1)
    )
    assert large.df[0] == pytest.approx(32.0, rel=1e-14)


def test_rubin_floors_lambda_and_refuses_one_imputation():
    same = pooling.rubin(np.full((4, 1), 0.3), np.full((4, 1, 1), 0.01), dfcom=np.inf)
    assert same.between[0] == 0
    assert same.df[0] == pytest.approx(3 / 1e-8)  # lambda floored at 1e-4: (m - 1) / 1e-8
    with pytest.raises(ValueError, match="at least 2 imputations"):
        pooling.rubin(np.array([[0.1]]), np.array([[[0.01]]]))
    with pytest.raises(ValueError, match=r"imputations \[2\]"):
        pooling.rubin(np.array([[0.1], [np.nan]]), np.full((2, 1, 1), 0.01))


def _pbc_frame(pbc):
    trial = pbc.iloc[:312]  # the randomised patients; chol, copper, trig, platelet have NAs
    frame = trial[["age", "bili", "albumin", "chol", "copper", "trig", "platelet"]].astype(float)
    frame["edema"] = pd.Categorical(trial["edema"].map({0.0: "0", 0.5: "0.5", 1.0: "1"}))
    return frame, trial["time"].to_numpy(float), (trial["status"] == 2).astype(float).to_numpy()


def _pbc_design(completed: pd.DataFrame) -> np.ndarray:
    return np.column_stack(
        [
            completed["age"],
            np.log(completed["bili"]),
            completed["albumin"],
            np.log(completed["chol"]),
            np.log(completed["copper"]),
            completed["trig"],
            completed["platelet"],
            completed["edema"] == "0.5",
            completed["edema"] == "1",
        ]
    ).astype(float)


def _lung_frame(lung):
    frame = lung[["age", "meal.cal", "wt.loss", "ph.karno"]].astype(float)
    frame["sex"] = pd.Categorical(lung["sex"].astype(int).astype(str))
    frame["ph.ecog"] = pd.Categorical(
        lung["ph.ecog"].map(lambda v: v if np.isnan(v) else str(int(min(v, 2))))
    )
    return frame, lung["time"].to_numpy(float), (lung["status"] == 2).astype(float).to_numpy()


def _lung_design(completed: pd.DataFrame) -> np.ndarray:
    return np.column_stack(
        [
            completed["age"],
            completed["meal.cal"] / 100,
            completed["wt.loss"],
            completed["ph.karno"],
            completed["sex"] == "2",
            completed["ph.ecog"] == "1",
            completed["ph.ecog"] == "2",
        ]
    ).astype(float)


@pytest.mark.parametrize(
    ("dataset", "frame_of", "design_of"),
    [("pbc", _pbc_frame, _pbc_design), ("lung", _lung_frame, _lung_design)],
)
def test_pool_cox_equals_mice_pool_on_sigkits_imputations(r, dataset, frame_of, design_of):
    """sigkit imputes (m = 20); R fits coxph on each completed set and pools (mice 3.15)."""
    from toolkit.rbridge.imputation import pool_coxph

    frame, time, event = frame_of(r.dataset(dataset))
    assert frame.isna().sum().sum() > 20  # real missing values
    imputed = fit_chained_equations(frame, time, event, m=20, seed=2009)
    designs = np.stack([design_of(c) for c in imputed.completed])
    fits = [cox.fit(x, time, event) for x in designs]
    ours = pooling.pool_cox(fits)
    ref = pool_coxph(designs, time, event)
    np.testing.assert_allclose(np.stack([f.coef for f in fits]), ref["coef"], rtol=1e-9)
    assert ours.dfcom == ref["dfcom"][0] == int(event.sum()) - designs.shape[2]
    for mine, theirs in [
        (ours.estimate, "estimate"),
        (ours.within, "ubar"),
        (ours.between, "b"),
        (ours.total, "t"),
        (ours.se, "std_error"),
        (ours.df, "df"),
        (ours.riv, "riv"),
        (ours.lambda_, "lambda"),
        (ours.fmi, "fmi"),
        (ours.statistic, "statistic"),
        (ours.p, "p_value"),
    ]:
        np.testing.assert_allclose(mine, ref[theirs], rtol=1e-8, err_msg=theirs)
    assert np.all(ours.between > 0)  # the imputations differ: the test pools real variation


def _curve(cumhaz, std_err, times=(1.0, 2.0)):
    cumhaz = np.asarray(cumhaz, dtype=float)
    return SimpleNamespace(
        times=np.asarray(times, dtype=float),
        survival=np.exp(-cumhaz),
        cumulative_hazard=cumhaz,
        std_err=np.asarray(std_err, dtype=float),
    )


def test_pool_survival_by_hand_two_imputations():
    """H = 1 and 2 with se(H) = 0.1 and 0.4 at t = 2; H = 0 in both at t = 1."""
    pooled = pooling.pool_survival(
        [_curve([[0.0, 1.0]], [[0.0, 0.1]]), _curve([[0.0, 2.0]], [[0.0, 0.4]])]
    )
    # Q = log 1, log 2; U = (0.1 / 1)^2, (0.4 / 2)^2 = 0.01, 0.04
    log2 = np.log(2.0)
    b = log2**2 / 2  # the variance of (0, log 2) on m - 1 = 1 df
    t = 0.025 + 1.5 * b
    df = 1 / (1.5 * b / t) ** 2
    assert pooled.estimate[0, 1] == pytest.approx(log2 / 2, rel=1e-15)
    assert pooled.within[0, 1] == pytest.approx(0.025, rel=1e-15)
    assert pooled.between[0, 1] == pytest.approx(b, rel=1e-15)
    assert pooled.total[0, 1] == pytest.approx(t, rel=1e-15)
    assert pooled.df[0, 1] == pytest.approx(df, rel=1e-13)
    assert pooled.survival[0, 1] == pytest.approx(np.exp(-np.sqrt(2.0)), rel=1e-15)
    half = stats.t.ppf(0.975, df) * np.sqrt(t)
    assert pooled.lower[0, 1] == pytest.approx(np.exp(-np.exp(log2 / 2 + half)), rel=1e-12)
    assert pooled.upper[0, 1] == pytest.approx(np.exp(-np.exp(log2 / 2 - half)), rel=1e-12)
    # before the first event: survival and limits 1, no Rubin quantities
    assert (pooled.survival[0, 0], pooled.lower[0, 0], pooled.upper[0, 0]) == (1.0, 1.0, 1.0)
    assert np.isnan(pooled.estimate[0, 0]) and np.isnan(pooled.df[0, 0])


def test_pool_survival_refuses_mismatched_curves():
    with pytest.raises(ValueError, match="at least 2 imputations"):
        pooling.pool_survival([_curve([[1.0, 2.0]], [[0.1, 0.1]])])
    with pytest.raises(ValueError, match=r"imputations \[2\]"):
        pooling.pool_survival(
            [_curve([[1.0, 2.0]], [[0.1, 0.1]]), _curve([[1.0, 2.0]], [[0.1, 0.1]], (1.0, 3.0))]
        )
    with pytest.raises(ValueError, match=r"row 0, time 1\.0"):
        pooling.pool_survival(
            [_curve([[0.0, 2.0]], [[0.0, 0.1]]), _curve([[1.0, 2.0]], [[0.1, 0.1]])]
        )


def test_pool_survival_equals_mice_pool_scalar_on_survfit_of_pbc_imputations(r):
    """sigkit imputes pbc (m = 10); R fits coxph on each completed set, takes survfit at
    six patients' covariates and pools log(cumhaz) cell by cell with mice::pool.scalar."""
    from toolkit.rbridge.imputation import pool_survfit

    frame, time, event = _pbc_frame(r.dataset("pbc"))
    imputed = fit_chained_equations(frame, time, event, m=10, seed=2026)
    designs = np.stack([_pbc_design(c) for c in imputed.completed])
    newdata = designs[0, [0, 5, 40, 100, 200, 300]]
    times = np.array([365.0, 1000.0, 2000.0, 3000.0, 4000.0])
    curves = [cox.fit(x, time, event).predict_survival_ci(newdata, times) for x in designs]
    ours = pooling.pool_survival(curves)
    ref = pool_survfit(designs, time, event, newdata, times)
    rubin = {"estimate": "qbar", "within": "ubar", "between": "b", "total": "t", "df": "df"}
    for mine, theirs in rubin.items():
        np.testing.assert_allclose(getattr(ours, mine), ref[theirs], rtol=1e-8, err_msg=theirs)
    for mine in ("survival", "lower", "upper"):  # R's: exp(-exp(qbar -/+ qt(.975, df) sqrt(t)))
        theirs = "surv" if mine == "survival" else mine
        np.testing.assert_allclose(getattr(ours, mine), ref[theirs], rtol=1e-8, err_msg=mine)
    assert np.all(ours.between > 0)  # the imputations differ: real between-imputation variance
    assert np.all((ours.lower < ours.survival) & (ours.survival < ours.upper))
