"""Baseline table and Fisher's exact test against R (wilcox.test, fisher.test), live."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit.stats._fisher import fisher_exact
from toolkit.stats.tables import baseline

NUMERIC = ["age", "bili", "chol", "albumin", "copper", "protime"]
CATEGORICAL = ["sex", "ascites", "edema", "stage", "status"]


@pytest.fixture(scope="module")
def pbc_trial(pbc):
    """pbc's randomised patients, grouped by treatment arm (D-penicillamine vs placebo)."""
    frame = pbc[pbc["trt"].notna()].copy()
    frame["trt"] = pd.Categorical(frame["trt"].map({1.0: "D-penicillamine", 2.0: "placebo"}))
    return frame


@pytest.fixture(scope="module")
def table(pbc_trial):
    return baseline(pbc_trial, "trt", NUMERIC, CATEGORICAL)


def _p(table: pd.DataFrame, variable: str) -> float:
    return float(table.loc[table["variable"] == variable, "p"].iloc[0])


def test_mann_whitney_p_equals_wilcox_test(r, pbc_trial, table):
    from toolkit.rbridge.tables import wilcox_p

    for name in NUMERIC:
        ref = wilcox_p(pbc_trial[name], pbc_trial["trt"])
        assert _p(table, name) == pytest.approx(ref, rel=1e-8), name


def test_fisher_p_equals_fisher_test(r, pbc_trial, table):
    from toolkit.rbridge.tables import fisher_p

    for name in CATEGORICAL:
        ref = fisher_p(pbc_trial[name], pbc_trial["trt"])
        assert _p(table, name) == pytest.approx(ref, rel=1e-8), name


def test_fisher_r_by_c_equals_fisher_test(r, pbc, lung, veteran):
    """Tables with both dimensions above two (R's network algorithm)."""
    from toolkit.rbridge.tables import fisher_table_p

    tables = [
        pd.crosstab(pbc["edema"], pbc["status"]),
        pd.crosstab(veteran["celltype"], veteran["prior"]),
        pd.crosstab(lung["ph.ecog"], lung["inst"]).iloc[:, :6],
    ]
    for counts in tables:
        ref = fisher_table_p(counts.to_numpy())
        assert fisher_exact(counts.to_numpy()) == pytest.approx(ref, rel=1e-8)


def test_cells_are_r_quartiles_and_counts(r, pbc_trial, table):
    from toolkit.rbridge.tables import quartiles

    arm = pbc_trial["trt"] == "placebo"
    q1, med, q3 = quartiles(pbc_trial.loc[arm, "bili"])
    cell = table.loc[table["variable"] == "bili", "placebo"].iloc[0]
    assert cell == f"{med:.1f} ({q1:.1f}-{q3:.1f})"
    assert table.iloc[0]["placebo"] == str(int(arm.sum()))
    females = int(((pbc_trial["sex"] == "f") & arm).sum())
    row = table[(table["variable"] == "sex") & (table["level"] == "f")]
    assert row["placebo"].iloc[0].startswith(f"{females} (")


def test_missing_values_are_counted_not_dropped(pbc_trial, table):
    row = table[(table["variable"] == "chol") & (table["level"] == "missing")]
    for arm in ("D-penicillamine", "placebo"):
        expected = int((pbc_trial["chol"].isna() & (pbc_trial["trt"] == arm)).sum())
        assert row[arm].iloc[0] == str(expected)
    assert not ((table["variable"] == "age") & (table["level"] == "missing")).any()


def test_bad_input_is_named(pbc_trial):
    frame = pbc_trial.copy()
    frame.loc[frame.index[:2], "trt"] = np.nan
    with pytest.raises(ValueError, match=r"'trt' is missing for 2 rows \(0, 1\)"):
        baseline(frame, "trt", ["age"])
    with pytest.raises(ValueError, match=r"not in the table: \['nope'\]"):
        baseline(pbc_trial, "trt", ["nope"])
    with pytest.raises(ValueError, match="non-negative integer counts"):
        fisher_exact(np.array([[1, -1], [2, 3]]))
