"""The validation report: Python-vs-R results from `run_suites`, benchmarks, offline HTML."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from toolkit.report.validation import (
    _reference_name,
    parse_ratio,
    read_benchmark_markdown,
    speedup,
)

SUITE = "report_fixture"

BENCHMARK_README = """# sigkit benchmarks

Intro text with a table that is not a benchmark table? No: every table counts.

## stats

| benchmark | sigkit median (ms) | R median (ms) | ratio vs R |
|---|---:|---:|---:|
| coxph pbc | 1.2 | 3.4 | 0.35× |
| concordance lung | 0.5 | 2.0 | 0.25x |

## deep

Some prose.

| benchmark | sigkit (s) | torch (s) | Keras (s) | ratio vs torch | ratio vs Keras |
|---|---|---|---|---|---|
| densenet batch 8 | 1.0 | 1.2 | 1.5 | 0.83 | 0.67 |
"""


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
def validation_page(validation_results, tmp_path_factory) -> str:
    from toolkit.report import render_validation_report

    bench = tmp_path_factory.mktemp("benchmarks")
    (bench / "README.md").write_text(BENCHMARK_README)
    out = validation_results.parent / "report" / "validation.html"
    path = render_validation_report(validation_results, out, benchmarks=bench, renderer="jupyter")
    assert path == out.resolve()
    return path.read_text()


def test_benchmark_tables_are_read_by_section():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "README.md"
        path.write_text(BENCHMARK_README)
        tables = read_benchmark_markdown(path)
    assert [t.area for t in tables] == ["stats", "deep"]
    assert tables[0].rows[1] == ["concordance lung", "0.5", "2.0", "0.25x"]
    assert tables[0].ratio_columns() == [3]
    assert tables[1].ratio_columns() == [4, 5]
    assert [_reference_name(t, t.rows[0], c) for t in tables for c in t.ratio_columns()] == [
        "R",
        "torch",
        "Keras",
    ]
    from toolkit.report.validation import BenchmarkTable

    tool_in_cell = BenchmarkTable(
        "stepwise",
        ["task", "ours (median)", "reference (median)", "ratio"],
        [["lung", "143 ms", "`MASS::stepAIC(coxph)` via rpy2 213 ms", "1.5x faster"]],
    )
    assert _reference_name(tool_in_cell, tool_in_cell.rows[0], 3) == "MASS::stepAIC(coxph) via rpy2"
    assert [parse_ratio(c) for c in ("0.35×", "2.3x faster", "1,234.5", "n/a")] == [
        0.35,
        2.3,
        1234.5,
        None,
    ]


def test_ratio_words_give_the_direction():
    assert speedup("365x faster") == (365.0, True)
    assert speedup("2x slower") == (0.5, True)
    assert speedup("0.35×") == (0.35, False)
    assert speedup("n/a") == (None, False)


def test_missing_benchmarks_read_as_none(tmp_path):
    assert read_benchmark_markdown(tmp_path / "README.md") == []


def test_a_json_that_is_no_benchmark_record_does_not_hide_the_readme(tmp_path):
    from toolkit.report.validation import load_benchmarks

    (tmp_path / "README.md").write_text(BENCHMARK_README)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "gpu_run.json").write_text('{"device": "H200", "rows": []}')
    with pytest.warns(UserWarning, match=r"gpu_run.json is not a benchmark record"):
        tables = load_benchmarks(tmp_path)
    assert [t.area for t in tables] == ["stats", "deep"]


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
    assert "densenet batch 8" in tables and "0.35×" in tables
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
