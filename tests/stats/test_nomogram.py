"""Nomogram points against rms::nomogram(cph(...)) on pbc."""

import numpy as np
import pandas as pd
import pytest

from toolkit.rbridge import study as rstudy
from toolkit.stats import cox
from toolkit.stats.nomogram import Nomogram, PredictorSpec, build, pretty


@pytest.fixture(scope="module")
def pbc_model(pbc):
    d = pbc.dropna(subset=["bili", "age", "stage", "edema"]).reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "bili": np.log(d["bili"].to_numpy(float)),
            "stage": pd.Categorical(d["stage"].astype(int).astype(str), ["1", "2", "3", "4"]),
            "albumin": d["albumin"].to_numpy(float),
            "edema": pd.Categorical(
                d["edema"].map({0.0: "no", 0.5: "treated", 1.0: "yes"}), ["no", "treated", "yes"]
            ),
        }
    )
    time = d["time"].to_numpy(float)
    event = (d["status"].to_numpy(float) == 2).astype(float)
    design = pd.get_dummies(frame, drop_first=True, dtype=float)
    fit = cox.fit(design.to_numpy(), time, event, names=list(design.columns))
    return frame, design, time, event, fit


def _specs(frame, fit):
    coef = dict(zip(fit.names, fit.coef, strict=True))
    specs = []
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            levels = tuple(frame[name].cat.categories)
            coefs = tuple([0.0] + [coef[f"{name}_{lv}"] for lv in levels[1:]])
            specs.append(PredictorSpec(name, "categorical", levels=levels, coefs=coefs))
        else:
            specs.append(PredictorSpec(name, "numeric", coef=coef[name], values=tuple(frame[name])))
    return specs


def test_pretty_equals_r(r):
    fn = r.r_function("function(a, b, n) pretty(c(a, b), n = n)")
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = rng.normal() * 10.0 ** rng.integers(-4, 5)
        b = a + abs(rng.normal()) * 10.0 ** rng.integers(-6, 5)
        np.testing.assert_allclose(pretty(a, b, 10), r.call(fn, a, b, 10), rtol=1e-12, atol=0)


def test_points_equal_rms_nomogram_on_pbc(pbc_model):
    frame, design, time, event, fit = pbc_model
    lp = design.to_numpy() @ fit.coef
    nomo = build(_specs(frame, fit), baseline_survival={365: 0.9}, lp_centre=lp.mean(), model="pbc")
    ref = rstudy.nomogram(frame, time, event)
    assert nomo.points_per_lp == pytest.approx(ref["points_per_lp"], abs=1e-6)
    for spec in nomo.predictors:
        theirs = ref["predictors"][spec["name"]]
        if spec["kind"] == "categorical":
            ours = [lv["points"] for lv in spec["levels"]]
            assert [lv["value"] for lv in spec["levels"]] == theirs["values"]
        else:
            ours = [tick["points"] for tick in spec["ticks"]]
            values = [tick["value"] for tick in spec["ticks"]]
            np.testing.assert_allclose(values, np.asarray(theirs["values"], float), atol=1e-12)
        np.testing.assert_allclose(ours, theirs["points"], atol=1e-6, rtol=0)
    # the widest predictor spans exactly 0-100
    spans = [max(p["points"] for p in (s.get("levels") or s["ticks"])) for s in nomo.predictors]
    assert max(spans) == pytest.approx(100.0, abs=1e-12)


def test_total_points_give_survfit_survival_on_pbc(pbc_model):
    frame, design, time, event, fit = pbc_model
    times = [1000.0, 2000.0, 3000.0]
    lp = design.to_numpy() @ fit.coef
    centre = fit.means @ fit.coef
    base = fit.predict_survival(fit.means[None, :], times)[0]
    nomo = build(
        _specs(frame, fit),
        baseline_survival=dict(zip(times, base, strict=True)),
        lp_centre=centre,
        model="pbc",
        time_unit="days",
    )
    again = Nomogram.from_json(nomo.to_json())
    points = again.total_points({c: frame[c].tolist() for c in frame.columns})
    np.testing.assert_allclose(again.linear_predictor(points), lp, atol=1e-10)
    ref = rstudy.coxph(frame, time, event, frame.iloc[:25], times)
    for k, t in enumerate(times):
        np.testing.assert_allclose(
            again.survival(points[:25], t), ref["survival"][:, k], atol=1e-7, rtol=0
        )
        back = again.points_for_survival(again.survival(points[:5], t), t)
        np.testing.assert_allclose(back, points[:5], atol=1e-8)


def test_negative_coefficient_reverses_the_scale():
    spec = PredictorSpec("albumin", "numeric", coef=-2.0, values=(2.0, 4.4))
    nomo = build([spec], baseline_survival={12: 0.8}, lp_centre=0.0, model="m")
    axis = nomo.predictors[0]
    assert axis["points_at_min"] == pytest.approx(100.0)
    assert nomo.predictor_points("albumin", [axis["max"]])[0] == pytest.approx(0.0)


def test_unknown_level_is_named():
    spec = PredictorSpec("bclc", "categorical", levels=("A", "B"), coefs=(0.0, 1.0))
    nomo = build([spec], baseline_survival={12: 0.8}, lp_centre=0.0, model="m")
    with pytest.raises(KeyError, match="'D'"):
        nomo.predictor_points("bclc", ["A", "D"])
