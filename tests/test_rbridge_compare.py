"""rbridge.compare: the one ours-vs-R comparison, reporting the worst element."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.rbridge.compare import compare


def test_worst_absolute_element_is_reported():
    d = compare([1.0, 2.5, 3.0], [1.0, 2.0, 3.1], 0.2)
    assert (d.index, d.ours, d.r) == (1, 2.5, 2.0)
    assert d.absolute == 0.5 and d.relative == 0.25 and d.diff == 0.5
    assert not d.passed and d.n_values == 3


def test_relative_comparison_picks_the_worst_relative_element():
    ours, theirs = [5.0, 1.0], [4.0, 1e-3]
    assert compare(ours, theirs, 1.0).index == 0
    d = compare(ours, theirs, 1.0, relative=True)
    assert (d.index, d.ours, d.r, d.diff) == (1, 1.0, 1e-3, pytest.approx(999.0))


def test_first_of_equal_differences_and_exact_agreement():
    assert compare([1.0, 3.0, 3.0], [1.0, 2.0, 2.0], 1.0).index == 1
    d = compare(3.0, 3.0, 0.0)
    assert d.passed and d.diff == 0.0 and d.index == 0


def test_missing_values_agree_only_on_both_sides():
    assert compare([np.nan, 1.0], [np.nan, 1.0], 0.0).passed
    one_sided = compare([1.0, np.nan], [1.0, 2.0], 1.0)
    assert one_sided.index == 1 and np.isinf(one_sided.diff) and not one_sided.passed
    assert not compare([np.inf], [np.inf], 1.0).passed


def test_shape_mismatch_never_passes_and_says_why():
    d = compare([1.0, 2.0], [1.0], 1.0)
    assert d.index is None and (d.ours, d.r) == (1.0, 1.0) and not d.passed
    assert d.message == "shape (2,) vs R (1,)"
    empty = compare([], [], 0.0)
    assert empty.passed and empty.ours is None and empty.n_values == 0


def test_validation_and_r_check_show_the_same_worst_element():
    from toolkit.study.rcheck import _check
    from validation import compare as comparison

    ours, theirs = [1.0, 2.5, 3.0], [1.0, 2.0, 3.1]
    c = comparison("coef", "pbc", ours, theirs, 1e-6)
    entry = _check("coef", ours, theirs, 1e-6)
    assert (c.ours, c.r, c.diff, c.passed) == (2.5, 2.0, 0.5, False)
    assert entry.to_json() == {
        "name": "coef",
        "ours": 2.5,
        "r": 2.0,
        "diff": 0.5,
        "tolerance": 1e-6,
        "passed": False,
        "n_values": 3,
    }
    mismatch = _check("coef", [1.0, 2.0], [1.0], 1e-6)
    assert mismatch.diff is None and mismatch.message == "shape (2,) vs R (1,)"
