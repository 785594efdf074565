"""The reports in a real browser: they render, load nothing, and the calculator equals Python."""

from __future__ import annotations

import io

import numpy as np
import pytest

from toolkit.stats.nomogram import Nomogram


@pytest.fixture(scope="module")
def opened_study(browser, study_report):
    browser.get(study_report.as_uri())
    return browser


def _not_blank(png: bytes) -> None:
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    assert pixels.std() > 20, f"screenshot looks blank (pixel sd {pixels.std():.1f})"
    assert (pixels < 200).mean() > 0.02, "screenshot has almost no dark pixels"


def test_study_report_screenshot_is_not_blank(opened_study):
    _not_blank(opened_study.get_screenshot_as_png())
    opened_study.execute_script("document.getElementById('fig-km').scrollIntoView()")
    _not_blank(opened_study.get_screenshot_as_png())


def test_study_report_requests_nothing_from_the_network(opened_study):
    requested = opened_study.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert [r for r in requested if not r.startswith("data:")] == []
    severe = [e for e in opened_study.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == [], severe


def _inputs(nomogram: dict, pick: str) -> dict:
    """Values for every predictor: lowest level/axis quarter, or highest level/three quarters."""
    values = {}
    for p in nomogram["predictors"]:
        if p["kind"] == "categorical":
            values[p["name"]] = p["levels"][0 if pick == "low" else -1]["value"]
        else:
            share = 0.23 if pick == "low" else 0.81
            values[p["name"]] = round(p["min"] + share * (p["max"] - p["min"]), 4)
    return values


def _enter(driver, model: str, values: dict) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "calc-model")).select_by_value(model)
    for name, value in values.items():
        element = driver.find_element(By.ID, f"calc-input-{name}")
        if element.tag_name == "select":
            Select(element).select_by_value(str(value))
        else:
            element.clear()
            element.send_keys(repr(float(value)))


def _shown(driver, prefix: str) -> dict[str, float]:
    """Each output ``calc-<prefix>-<time>``'s full-precision value, by time."""
    from selenium.webdriver.common.by import By

    outputs = driver.find_elements(By.CSS_SELECTOR, f"[id^=calc-{prefix}-]")
    start = len(f"calc-{prefix}-")
    return {o.get_attribute("id")[start:]: float(o.get_attribute("data-value")) for o in outputs}


def _drive(driver, model: str, values: dict) -> dict[str, float]:
    _enter(driver, model, values)
    return _shown(driver, "survival")


def _patients(nomogram: dict, ranges: dict) -> list[dict]:
    """Low and high picks inside the axes, and one with each numeric predictor beyond its
    training range (above for the first, below for the others)."""
    patients = [_inputs(nomogram, "low"), _inputs(nomogram, "high")]
    outside = _inputs(nomogram, "high")
    for i, (name, (low, high)) in enumerate(ranges.items()):
        if name in outside:
            outside[name] = round(high + 0.4 * (high - low), 4) if i == 0 else round(low - 1, 4)
    if outside != patients[1]:
        patients.append(outside)
    return patients


def _expected_warning(nomogram: dict, ranges: dict, values: dict) -> list[str]:
    from toolkit.report.calculator import range_text

    lines = []
    for p in nomogram["predictors"]:
        name = p["name"]
        if name in ranges and not ranges[name][0] <= values[name] <= ranges[name][1]:
            typed = repr(float(values[name]))
            lines.append(f"{p['label']}: {typed} is outside the training range "
                         f"{range_text(*ranges[name])}")  # fmt: skip
    return lines


@pytest.fixture(scope="module")
def bundle(study_dir):
    from toolkit.study.bundle import ModelBundle

    return ModelBundle.load(study_dir / "model")


def test_calculator_names_the_model_bundle_it_computes(opened_study, bundle):
    from selenium.webdriver.common.by import By

    line = opened_study.find_element(By.ID, "calc-bundle")
    assert len(bundle.sha256) == 64
    assert line.get_attribute("data-sha256") == bundle.sha256
    assert f"SHA-256 {bundle.sha256}" in line.text


def _check_patient(driver, bundle, model: str, values: dict) -> tuple[bool, list[str]]:
    """Enter one patient; assert the page's survival, CI limits, points and warning equal
    Python's. Returns whether an upper limit is below 1 and the warning's lines."""
    import pandas as pd
    from selenium.webdriver.common.by import By

    from toolkit.study.bundle import PooledCox

    bundled = bundle.models[model]
    nomogram = bundle.nomograms[model].to_json()
    _enter(driver, model, values)
    frame = pd.DataFrame({k: [v] for k, v in values.items()}, index=["entered"])
    if isinstance(bundled, PooledCox):  # an entered patient is complete: m equal completions
        predicted = bundled.predict([frame] * bundled.m, bundle.horizons)
    else:
        predicted = bundled.predict(frame, bundle.horizons)
    shown = {k: _shown(driver, k) for k in ("survival", "lower", "upper")}
    assert {float(t) for t in shown["survival"]} == set(bundle.horizons)
    for kind, expected in (
        ("survival", predicted.survival),
        ("lower", predicted.lower),
        ("upper", predicted.upper),
    ):
        for j, time in enumerate(bundle.horizons):
            got = shown[kind][f"{time:g}"]
            assert abs(got - expected[0, j]) < 1e-6, (model, values, time, kind, got)
    assert (predicted.lower < predicted.survival).all()
    assert (predicted.survival <= predicted.upper).all()
    items = driver.find_elements(By.CSS_SELECTOR, "#calc-outside li")
    expected = _expected_warning(nomogram, dict(bundled.ranges), values)
    assert [i.text for i in items] == expected, (model, values)
    assert driver.find_element(By.ID, "calc-warning").is_displayed() is bool(expected)
    points = float(driver.find_element(By.ID, "calc-total").get_attribute("data-value"))
    total = Nomogram.from_spec(bundle.nomograms[model]).total_points(
        {k: [v] for k, v in values.items()}
    )
    assert abs(points - float(total[0])) < 1e-6
    return bool((predicted.upper < 1).any()), expected


def _check_patients(driver, bundle) -> None:
    upper_below_one, warned = False, []
    for model in ("integrated", "clinical"):
        ranges = dict(bundle.models[model].ranges)
        for values in _patients(bundle.nomograms[model].to_json(), ranges):
            below, lines = _check_patient(driver, bundle, model, values)
            upper_below_one |= below
            warned.extend(lines)
    # the upper limit is compared where it is not cut at 1 too; the warning was shown
    assert upper_below_one
    assert warned, "no patient was outside the training range"


def test_calculator_survival_and_ci_equal_the_bundle_prediction(opened_study, bundle):
    """Several patients per nomogram, one beyond the training range where the model has a
    numeric term: every survival and 95% CI limit equals ``BundledCox.predict`` (survfit's),
    1e-6, and the warning names exactly the values outside the bundle's training ranges."""
    _check_patients(opened_study, bundle)


def test_calculator_under_multiple_imputation_pools_as_python(
    browser, imputed_report, imputed_study
):
    """The study run under multiple imputation: the page pools the m imputations' fits
    (Rubin's rules on log H, its own t quantile) and every survival and limit equals
    ``PooledCox.predict``, 1e-6; the page says the CI is pooled and names the bundle."""
    from selenium.webdriver.common.by import By

    from toolkit.study.bundle import ModelBundle, PooledCox

    bundle = ModelBundle.load(imputed_study[0] / "model")
    assert isinstance(bundle.models["integrated"], PooledCox)
    browser.get(imputed_report.as_uri())
    line = browser.find_element(By.ID, "calc-bundle")
    assert line.get_attribute("data-sha256") == bundle.sha256
    assert f"pooled over the {bundle.imputation.m} imputations" in line.text
    _check_patients(browser, bundle)


def test_the_pages_t_quantile_equals_scipy(opened_study):
    """The page's Student t quantile (incomplete beta and Newton below 1000 df, the
    Cornish-Fisher expansion above) against scipy, from 1 df to the largest df the
    pooling gives (lambda's floor 1e-4)."""
    from scipy import stats

    from toolkit.stats.wald import quantile

    z = quantile(0.95)
    for df in (1.0, 1.7, 3.0, 9.5, 57.3, 999.0, 1000.0, 4.2e4, 2.0e8):
        got = opened_study.execute_script(
            "return window.sigkitCalculator.tQuantile(arguments[0], arguments[1], 0.975);", df, z
        )
        expected = float(stats.t.ppf(0.975, df))
        assert abs(got - expected) < 1e-9 * expected, (df, got, expected)


def test_calculator_handles_negative_coefficients_and_extrapolation(browser, tmp_path):
    """A numeric predictor with a negative coefficient, and a value beyond its axis."""
    from selenium.webdriver.common.by import By

    from toolkit.contracts import NomogramSpec
    from toolkit.report.calculator import calculator_html
    from toolkit.stats.nomogram import PredictorSpec, build

    rng = np.random.default_rng(7)
    nomogram = build(
        [
            PredictorSpec("stage", "categorical", "Stage", ("I", "II", "III"), (0.0, 0.4, -0.3)),
            PredictorSpec(
                "albumin", "numeric", "Albumin", coef=-0.8, values=tuple(rng.normal(3.5, 0.4, 50))
            ),
            PredictorSpec(
                "score", "numeric", "Score", coef=1.7, values=tuple(rng.normal(0, 1, 50))
            ),
        ],
        baseline_survival={12: 0.83, 24: 0.64},
        lp_centre=-2.1,
        model="integrated",
    )
    data = nomogram.to_json()
    spec = NomogramSpec.from_json(data)
    page = tmp_path / "calculator.html"
    page.write_text(
        f"<!DOCTYPE html><html><body>{calculator_html({'integrated': spec})}</body></html>",
        encoding="utf-8",
    )
    browser.get(page.as_uri())
    warning = browser.find_element(By.ID, "calc-warning")
    for values, outside in (
        ({"stage": "III", "albumin": 3.1, "score": -0.4}, False),
        ({"stage": "II", "albumin": 9.0, "score": 2.2}, True),
    ):
        shown = _drive(browser, "integrated", values)
        total = nomogram.total_points({k: [v] for k, v in values.items()})
        for time, survival in shown.items():
            expected = float(nomogram.survival(total, float(time))[0])
            assert abs(survival - expected) < 1e-6, (values, time, survival, expected)
        assert warning.is_displayed() is outside
