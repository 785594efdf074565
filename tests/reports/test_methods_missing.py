"""The methods' missing-data paragraph says what each validation.missing setting did."""

from __future__ import annotations

from types import SimpleNamespace

from toolkit.report.methods import missing_data


def _text(**validation) -> str:
    return missing_data(SimpleNamespace(settings={"validation": validation}))


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
