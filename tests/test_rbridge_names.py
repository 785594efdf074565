"""Column names that are not R names reach R as safe names and come back as the user's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit import rbridge
from toolkit.rbridge import SafeNames

PLAIN = ["age", "sex", "ph.ecog", "wt.loss", "meal.cal"]
UNSAFE = ["age (years)", "sex;drop", "`ph.ecog`", "2nd var", "größe"]
RENAME = dict(zip(PLAIN, UNSAFE, strict=True))


@pytest.fixture(scope="module")
def lung_cc(lung):
    d = lung[[*PLAIN, "time", "status"]].dropna().reset_index(drop=True)
    d["event"] = (d["status"] == 2).astype(float)
    d["sex"] = pd.Categorical(d["sex"].map({1.0: "male", 2.0: "female"}), ["male", "female"])
    d["ph.ecog"] = pd.Categorical(d["ph.ecog"].map("{:g}".format), ["0", "1", "2", "3"])
    return d.drop(columns="status")


def _user(text: str) -> str:
    """A plain R name (or coefficient, or step) in the unsafe names, by hand."""
    for plain, unsafe in sorted(RENAME.items(), key=lambda item: -len(item[0])):
        if plain in text:
            return text.replace(plain, unsafe)
    return text


def test_safe_names_map_coefficients_steps_and_messages_back():
    names = SafeNames.of([f"x{i}" for i in range(1, 12)] + ["a b"])
    assert names.r("x1") == "sigkit_v01" and names.r("a b") == "sigkit_v12"
    # a factor level starting with a digit: width 2, so v01 + "2", not v012
    assert names.user("sigkit_v012") == "x12"
    assert names.user("- sigkit_v12") == "- a b"
    assert names.user("object 'sigkit_v03' not found") == "object 'x3' not found"
    assert names.user("sigkit_v99 stays") == "sigkit_v99 stays"
    assert list(names.frame(pd.DataFrame({"a b": [1.0], "x1": [2.0]})).columns) == [
        "sigkit_v12",
        "sigkit_v01",
    ]
    with pytest.raises(KeyError, match="'missing' is not a column"):
        names.r("missing")


def test_r_errors_and_warnings_read_with_the_users_names(r):
    names = SafeNames.of(["age (years)", "sex;drop"])
    says = r.r_function('function(a, b) { warning("look at ", a); stop("no ", b, "female") }')
    with pytest.warns(rbridge.RWarning, match=r"^R demo: look at age \(years\)$"):
        with pytest.raises(rbridge.RComputationError, match=r"^R demo failed: no sex;dropfemale$"):
            r.call(says, names.r("age (years)"), names.r("sex;drop"), computation="demo",
                   safe_names=names)  # fmt: skip


def test_coxph_with_unsafe_names_equals_plain_names_in_users_names(lung_cc):
    from toolkit.rbridge import study as rstudy

    x = lung_cc[PLAIN]
    time, event, times = lung_cc["time"], lung_cc["event"], [180.0, 365.0]
    plain = rstudy.coxph(x, time, event, x.iloc[:10], times)
    unsafe_x = x.rename(columns=RENAME)
    unsafe = rstudy.coxph(unsafe_x, time, event, unsafe_x.iloc[:10], times)
    assert plain["names"] == ["age", "sexfemale", "ph.ecog1", "ph.ecog2", "ph.ecog3", "wt.loss",
                              "meal.cal"]  # fmt: skip
    assert unsafe["names"] == [_user(name) for name in plain["names"]]
    assert unsafe["names"][1] == "sex;dropfemale" and unsafe["names"][2] == "`ph.ecog`1"
    np.testing.assert_array_equal(unsafe["coef"], plain["coef"])
    np.testing.assert_array_equal(unsafe["survival"], plain["survival"])


def test_nomogram_with_unsafe_names_keys_predictors_by_users_names(lung_cc):
    from toolkit.rbridge import study as rstudy

    columns = ["age", "sex", "wt.loss"]
    x = lung_cc[columns]
    plain = rstudy.nomogram(x, lung_cc["time"], lung_cc["event"])
    unsafe = rstudy.nomogram(x.rename(columns=RENAME), lung_cc["time"], lung_cc["event"])
    assert list(unsafe["predictors"]) == [RENAME[c] for c in columns]
    np.testing.assert_array_equal(unsafe["coef"], plain["coef"])
    for column in columns:
        ours, theirs = unsafe["predictors"][RENAME[column]], plain["predictors"][column]
        assert ours["values"] == theirs["values"]
        np.testing.assert_array_equal(ours["points"], theirs["points"])


def test_step_aic_with_unsafe_names_equals_plain_names_in_users_names(lung_cc):
    from toolkit.rbridge import stepwise as r_stepwise

    plain = r_stepwise.step_aic(lung_cc, "time", "event", PLAIN, PLAIN, direction="both")
    unsafe_frame = lung_cc.rename(columns={**RENAME, "time": "time (days)", "event": "dead?"})
    unsafe = r_stepwise.step_aic(
        unsafe_frame, "time (days)", "dead?", UNSAFE, UNSAFE, direction="both"
    )
    assert len(plain["step"]) > 1 and any(s.startswith("- ") for s in plain["step"])
    for key in ("step", "variables", "coef_names"):
        assert unsafe[key] == [_user(text) for text in plain[key]], key
    for key in ("aic", "coef"):
        np.testing.assert_array_equal(unsafe[key], plain[key])
    assert unsafe["loglik"] == plain["loglik"]


def test_univariate_with_unsafe_names_equals_plain_names_in_users_names(lung_cc):
    from toolkit.rbridge import stepwise as r_stepwise

    plain = r_stepwise.univariate(lung_cc, "time", "event", PLAIN)
    unsafe = r_stepwise.univariate(lung_cc.rename(columns=RENAME), "time", "event", UNSAFE)
    assert list(unsafe["variable"]) == [RENAME[v] for v in plain["variable"]]
    assert list(unsafe["contrast"]) == [_user(c) for c in plain["contrast"]]
    pd.testing.assert_frame_equal(
        unsafe.drop(columns=["variable", "contrast"]), plain.drop(columns=["variable", "contrast"])
    )
