"""Kaplan-Meier and log-rank against survival::survfit / survdiff, live through rpy2."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.stats.survival import kaplan_meier, logrank


def _outcome(frame: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    status = frame["status"].to_numpy()
    event = {"pbc": status == 2, "lung": status == 2, "veteran": status == 1}[name]
    return frame["time"].to_numpy(), event.astype(float)


@pytest.mark.parametrize("name", ["pbc", "lung", "veteran"])
def test_kaplan_meier_equals_survfit(r, name, request):
    from toolkit.rbridge.survival import survfit_km

    time, event = _outcome(request.getfixturevalue(name), name)
    ours = kaplan_meier(time, event)
    ref = survfit_km(time, event)
    np.testing.assert_array_equal(ours.time, ref["time"])
    for field in ("n_risk", "n_event", "n_censor"):
        np.testing.assert_array_equal(getattr(ours, field), ref[field])
    for field in ("survival", "std_err", "lower", "upper"):
        np.testing.assert_allclose(getattr(ours, field), ref[field], rtol=0, atol=1e-8)
    for field in ("median", "median_lower", "median_upper"):
        assert getattr(ours, field) == pytest.approx(ref[field][0], abs=1e-8)


def test_median_on_a_flat_half_is_the_midpoint_as_print_survfit(r):
    """S = 0.5 exactly on [2, 3): print.survfit reports (2 + 3) / 2; the 90% CI too."""
    from toolkit.rbridge.survival import survfit_km

    time = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    event = np.array([1.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    ours = kaplan_meier(time, event, conf_level=0.9)
    ref = survfit_km(time, event, conf_level=0.9)
    assert ours.median == pytest.approx(ref["median"][0], abs=1e-12)
    np.testing.assert_allclose(
        [ours.median_lower, ours.median_upper],
        [ref["median_lower"][0], ref["median_upper"][0]],
        atol=1e-12,
        equal_nan=True,
    )
    np.testing.assert_allclose(ours.lower, ref["lower"], atol=1e-8, equal_nan=True)


def test_at_is_the_right_continuous_step_function(veteran):
    time, event = _outcome(veteran, "veteran")
    km = kaplan_meier(time, event)
    np.testing.assert_array_equal(km.at(km.time), km.survival)
    assert km.at([0.0])[0] == 1.0
    assert km.at([km.time[3] + 0.5])[0] == km.survival[3]
    assert km.at([1e9])[0] == km.survival[-1]


@pytest.mark.parametrize(
    ("name", "group"), [("veteran", "celltype"), ("lung", "ph.ecog"), ("pbc", "trt")]
)
def test_logrank_equals_survdiff(r, name, group, request):
    from toolkit.rbridge.survival import survdiff

    frame = request.getfixturevalue(name).dropna(subset=[group])
    time, event = _outcome(frame, name)
    labels = frame[group]
    labels = labels if isinstance(labels.dtype, pd.CategoricalDtype) else labels.astype(str)
    ours = logrank(time, event, labels)
    ref = survdiff(time, event, labels)
    assert ours.chisq == pytest.approx(ref["chisq"][0], rel=1e-8)
    assert ours.p == pytest.approx(ref["p"][0], rel=1e-8)
    assert ours.df == ref["df"][0]
    np.testing.assert_allclose(ours.observed, ref["observed"], rtol=1e-12)
    np.testing.assert_allclose(ours.expected, ref["expected"], rtol=1e-10)
    np.testing.assert_allclose(ours.variance, ref["variance"], rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(ours.n, ref["n"])


def test_bad_input_is_named():
    time = pd.Series([3.0, 1.0, np.inf, 4.0], index=["P1", "P2", "P3", "P4"])
    with pytest.raises(ValueError, match=r"time has 1 missing or infinite.*rows P3"):
        kaplan_meier(time, [1, 0, 1, 1])
    with pytest.raises(ValueError, match=r"event must be coded 0.*found 0.5"):
        kaplan_meier([1.0, 2.0], [0.5, 1.0])
    with pytest.raises(ValueError, match="no events"):
        kaplan_meier([1.0, 2.0], [0, 0])
    with pytest.raises(ValueError, match=r"group has 1 missing.*rows 1"):
        logrank([1.0, 2.0, 3.0], [1, 1, 0], ["a", None, "b"])
    with pytest.raises(ValueError, match="at least two"):
        logrank([1.0, 2.0, 3.0], [1, 1, 0], ["a", "a", "a"])
    with pytest.raises(ValueError, match="length mismatch"):
        logrank([1.0, 2.0, 3.0], [1, 1, 0], ["a", "b"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 30).map(float), st.booleans()), min_size=1, max_size=60
    ).filter(lambda rows: any(e for _, e in rows))
)
def test_kaplan_meier_is_non_increasing_within_unit_interval(rows):
    time = np.array([t for t, _ in rows])
    event = np.array([float(e) for _, e in rows])
    km = kaplan_meier(time, event)
    assert np.all((km.survival >= 0) & (km.survival <= 1))
    assert np.all(np.diff(km.survival) <= 0)
    assert np.all(km.lower[np.isfinite(km.lower)] <= km.survival[np.isfinite(km.lower)])
    assert np.all(km.upper[np.isfinite(km.upper)] <= 1)
