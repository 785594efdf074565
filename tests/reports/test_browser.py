"""The reports in a real browser: they render, load nothing, and the calculator equals Python."""

from __future__ import annotations

import io
import json

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


def _drive(driver, model: str, values: dict) -> dict[str, float]:
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
    outputs = driver.find_elements(By.CSS_SELECTOR, "[id^=calc-survival-]")
    return {o.get_attribute("id")[len("calc-survival-") :]: float(o.get_attribute("data-value"))
            for o in outputs}  # fmt: skip


@pytest.mark.parametrize(("model", "pick"), [("integrated", "low"), ("clinical", "high")])
def test_calculator_equals_python_nomogram(opened_study, study_dir, model, pick):
    data = json.loads(
        (study_dir / "results" / f"nomogram_{model}.json").read_text(encoding="utf-8")
    )
    nomogram = Nomogram.from_json(data)
    values = _inputs(data, pick)
    shown = _drive(opened_study, model, values)
    assert set(shown) == set(nomogram.baseline_survival)
    total = nomogram.total_points({k: [v] for k, v in values.items()})
    for time, survival in shown.items():
        expected = float(nomogram.survival(total, float(time))[0])
        assert abs(survival - expected) < 1e-6, (model, time, survival, expected)
    from selenium.webdriver.common.by import By

    points = float(opened_study.find_element(By.ID, "calc-total").get_attribute("data-value"))
    assert abs(points - float(total[0])) < 1e-6


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
