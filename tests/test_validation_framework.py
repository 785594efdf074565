import numpy as np

from validation import compare


def test_compare_relative_uses_r_value_as_scale():
    c = compare("coef", "pbc", [1.0 + 1e-9, 2.0], [1.0, 2.0], 1e-8, relative=True)
    assert np.isclose(c.diff, 1e-9, rtol=1e-6)
    assert c.passed


def test_compare_fails_on_shape_mismatch_and_nan():
    assert not compare("x", "d", [1.0, 2.0], [1.0], 1.0).passed
    assert not compare("x", "d", [np.nan], [1.0], 1.0).passed
    assert compare("x", "d", [np.nan], [np.nan], 0.0).passed
