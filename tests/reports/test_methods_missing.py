"""The methods' missing-data paragraph says what each validation.missing setting did."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from toolkit.report.methods import missing_data


def _text(missing_values=None, **validation) -> str:
    """The paragraph for these settings; ``missing_values`` the validate stage's table
    (default under multiple imputation: one value imputed)."""
    if missing_values is None and validation.get("missing") == "multiple-imputation":
        missing_values = pd.DataFrame({"variable": ["alt"], "set": ["train"], "n_missing": [1]})
    results = SimpleNamespace(
        settings={"validation": validation}, table=lambda name: missing_values
    )
    return missing_data(results)


def test_multiple_imputation_states_m_pmm_outcome_pooling_and_majority_rule():
    text = _text(missing="multiple-imputation", m=30)
    for part in (
        "30 imputations",
        "predictive mean matching with 5 donors, type-1 matching",
        "event indicator and the Nelson–Aalen cumulative hazard",
        "fitted on the training set and applied unchanged to the validation set",
        "Rubin's rules",
        "at least half of the imputations",
        "Wood et al. 2008",
    ):
        assert part in text, part
    assert "20 imputations" in _text(missing="multiple-imputation")


def test_the_other_settings_are_unchanged():
    assert "complete-case analysis" in _text(missing="complete-case")
    assert "median (numeric) or mode" in _text(missing="impute-median-mode")


def test_multiple_imputation_with_nothing_missing_says_complete_data():
    """Nothing missing: the clinical stage imputes nothing, the validate stage writes no
    missing_values table (or one of zeros): the paragraph says complete data."""
    zeros = pd.DataFrame({"variable": ["alt", "afp"], "set": ["train"] * 2, "n_missing": [0, 0]})
    for table in (zeros, None):
        results = SimpleNamespace(
            settings={"validation": {"missing": "multiple-imputation", "m": 30}},
            table=lambda name, table=table: table,
        )
        text = missing_data(results)
        assert "fitted on the complete data and nothing was imputed" in text
        assert "Rubin" not in text and "30 imputations" not in text


def test_the_internal_validation_says_which_fill_each_resample_repeated():
    from toolkit.contracts import InternalValidation
    from toolkit.report.methods import internal_validation

    def text(refilled: str, **validation) -> str:
        record = InternalValidation(B=200, seed=0, n_used=200, dropped=(), refilled=refilled)
        settings = {"validation": validation, "signature": {}}
        return internal_validation(SimpleNamespace(internal_validation=record, settings=settings))

    imputed = text("multiple-imputation", missing="multiple-imputation", m=30)
    assert (
        "imputed again before the selection (30 chained equations fitted on the resample" in imputed
    )
    assert (
        "scored at its linear predictor averaged over the resample's completed sets (apparent) "
        "and over the study's completed training sets (test)" in imputed
    )
    assert "first completed" not in imputed
    assert "20 chained equations" in text("multiple-imputation", missing="multiple-imputation")
    filled = text("impute-median-mode", missing="impute-median-mode")
    assert "filled again by the resample's own medians and modes" in filled
    plain = text("", missing="impute-median-mode")  # nothing filled in the training set
    assert "missing clinical values" not in plain and "In each of 200 bootstrap resamples" in plain
