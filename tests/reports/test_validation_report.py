"""The validation report: Python-vs-R results from `run_suites`, benchmarks, offline HTML."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

SUITE = "report_fixture"


@pytest.fixture(scope="module")
def validation_results(tmp_path_factory, r):
    """A real cross-check through the registry: KM medians on lung and veteran against R."""
    from toolkit.rbridge.survival import survfit_km
    from toolkit.stats.survival import kaplan_meier
    from validation import _registry, check, compare, run_suites

    def km_medians():
        out = []
        for name in ("lung", "veteran"):
            data = r.dataset(name)
            event = (data["status"] == data["status"].max()).astype(float)
            ours = kaplan_meier(data["time"], event)
            theirs = survfit_km(data["time"], event)
            out.append(compare("KM median", name, ours.median, theirs["median"], 1e-12,
                               reference="survival::survfit 3.5-3"))  # fmt: skip
            out.append(compare("KM survival", name, ours.survival, theirs["survival"], 1e-12,
                               reference="survival::survfit 3.5-3"))  # fmt: skip
        return out

    # Load the real suites first, so restoring the registry afterwards keeps them.
    before = list(_registry.load_suites())
    check(SUITE, fast=True)(km_medians)
    try:
        folder = tmp_path_factory.mktemp("validation") / "results"
        results = run_suites(only=[SUITE], out_dir=folder)
    finally:
        _registry._REGISTRY[:] = before
    assert results and not results[0].errors, results
    return folder


@pytest.fixture(scope="module")
def validation_page(validation_results, tmp_path_factory, benchmark_json) -> str:
    from toolkit.report import render_validation_report

    bench = tmp_path_factory.mktemp("benchmarks")
    (bench / "results").mkdir()
    (bench / "results" / "run.json").write_text(json.dumps(benchmark_json))
    out = validation_results.parent / "report" / "validation.html"
    path = render_validation_report(validation_results, out, benchmarks=bench, renderer="jupyter")
    assert path == out.resolve()
    return path.read_text()


def test_missing_benchmarks_read_as_none(tmp_path):
    from toolkit.report.validation import load_benchmarks

    assert load_benchmarks(tmp_path) == []


@pytest.mark.parametrize(
    "ident",
    [
        "tbl-validation-summary",
        "tbl-validation",
        "fig-validation-margin",
        "fig-benchmarks",
        "tbl-benchmarks",
    ],
)
def test_validation_report_has_every_table_and_figure(validation_page, ident):
    assert f'id="{ident}"' in validation_page


def test_validation_table_shows_each_comparison(validation_page, validation_results, text_of):
    data = json.loads((validation_results / f"{SUITE}.json").read_text())
    table = text_of(validation_page, "tbl-validation")
    assert f"{SUITE}: 4/4 pass" in table
    for c in data["comparisons"]:
        assert f"{c['statistic']} {c['dataset']} {c['ours']:.8g} {c['r']:.8g}" in table
    assert table.count("pass") == 1 + len(data["comparisons"])
    summary = text_of(validation_page, "tbl-validation-summary")
    assert f"Statistic Datasets Result {SUITE} KM median lung; veteran pass" in summary
    assert "KM survival lung; veteran pass" in summary


def test_validation_report_lists_benchmark_ratios(validation_page, text_of):
    tables = text_of(validation_page, "tbl-benchmarks")
    assert "Test CPU, 2 cores" in tables
    assert "cox Cox fit test_ours 100 ms test_survival_coxph 500 ms 5x" in tables
    assert "coxnet path test_path_ours_cold 800 ms test_path_glmnet 400 ms 0.5x" in tables
    assert "data:image/png;base64," in validation_page.split('id="fig-benchmarks"')[1][:400]


def test_validation_report_is_offline(validation_page):
    assert not re.search(r"https?://", validation_page)
    for target in re.findall(r'(?:src|href)="([^"]*)"', validation_page):
        assert target.startswith(("data:", "#")), target


def test_validation_report_renders_in_browser(browser, validation_results):
    import io

    from PIL import Image

    page = validation_results.parent / "report" / "validation.html"
    browser.get(page.as_uri())
    pixels = np.asarray(Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("L"))
    assert pixels.std() > 20
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
