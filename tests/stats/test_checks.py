"""The shared input checks: redundant columns (coxnet, mRMR, stepwise, signature) and listing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit.stats._checks import check_event, drop_redundant, listed


def test_listed_shows_ten_and_counts_the_rest():
    assert listed(["P1", "P2"]) == "P1, P2"
    assert listed(range(12)) == "0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ... (2 more)"
    assert listed((f"x{i}" for i in range(3)), sep="; ", limit=2) == "x0; x1; ... (1 more)"
    assert listed(np.array([4, 7])) == "4, 7"
    assert listed(pd.Index(["a", "b"])) == "a, b"
    assert listed([]) == ""


def test_exact_constants_and_copies_keep_the_first_copy():
    x = np.array(
        [
            [1.0, 5.0, 2.0, 1.0, 2.0, 3.0],
            [2.0, 5.0, 4.0, 2.0, 4.0, 3.0],
            [3.0, 5.0, 6.0, 3.0, 6.0, 3.0],
        ]
    )
    found = drop_redundant(x)
    assert found.constant.tolist() == [False, True, False, False, False, True]
    assert found.copy_of == {3: 0, 4: 2}  # column 2 = 2 * column 0 is no exact copy
    assert found.kept.tolist() == [0, 2]
    assert found.dropped.tolist() == [False, True, False, True, True, True]


def test_copies_that_differ_after_the_first_rows_are_not_copies():
    x = np.zeros((6, 2))
    x[:, 0] = [1, 2, 3, 4, 5, 6]
    x[:, 1] = [1, 2, 3, 4, 5, 7]
    assert drop_redundant(x).copy_of == {}


def test_affine_copies_and_near_constant_columns():
    """The signature's rule: |r| = 1 (either sign) is a copy; few distinct values are dropped."""
    base = np.arange(10.0)
    x = np.c_[base, 3 - 2 * base, np.r_[np.zeros(8), 1.0, 2.0], base**2, np.ones(10)]
    found = drop_redundant(x, affine=True, min_distinct=5)
    assert found.copy_of == {1: 0}
    assert found.constant.tolist() == [False, False, True, False, True]
    assert found.kept.tolist() == [0, 3]
    assert drop_redundant(x).kept.tolist() == [0, 1, 2, 3]


def test_blocks_compare_as_wholes():
    """Stepwise's terms: a categorical's dummy columns are one block; no columns is constant."""
    a = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    b = np.array([[1.0], [0.0], [0.0]])
    found = drop_redundant([a, b, a.copy(), np.empty((3, 0)), np.full((3, 1), 2.0), b.copy()])
    assert found.constant.tolist() == [False, False, False, True, True, False]
    assert found.copy_of == {2: 0, 5: 1}  # b is a's first column, not a copy of a


def test_event_coding_lists_its_values():
    with pytest.raises(ValueError, match=r"found 2, 3 in 2 rows \(rows 0, 2\)"):
        check_event([2.0, 1.0, 3.0])
