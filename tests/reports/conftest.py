"""Fixtures of the report tests: a real small synthetic study, rendered reports, a browser."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="session")
def study_dir(synthetic_study) -> Path:
    """The session's real small synthetic study (tests/conftest.py), run by `sigkit study run`."""
    return synthetic_study[0]


@pytest.fixture(scope="session")
def study_report(study_dir, tmp_path_factory) -> Path:
    """The study report, rendered through the command line (`sigkit report STUDY_DIR --out`).

    Written outside the shared study folder, which other tests read.
    """
    return _render(study_dir, tmp_path_factory.mktemp("study-report") / "study.html")


@pytest.fixture(scope="session")
def imputed_report(imputed_study, tmp_path_factory) -> Path:
    """The report of the session's study run under multiple imputation (tests/conftest.py
    ``imputed_study``), rendered as ``study_report``."""
    return _render(imputed_study[0], tmp_path_factory.mktemp("imputed-report") / "study.html")


def _render(study_dir: Path, out: Path) -> Path:
    from typer.testing import CliRunner

    from toolkit.cli import app

    command = ["report", str(study_dir), "--renderer", "jupyter", "--out", str(out)]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    path = Path(result.output.strip().removeprefix("report: "))
    assert path.is_file(), result.output
    return path


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Headless Chromium through Selenium, isolated from the network and any profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def element_text(html_text: str, ident: str) -> str:
    """The text content of the element with id `ident` (fails if absent)."""
    from bs4 import BeautifulSoup

    node = BeautifulSoup(html_text, "html.parser").find(id=ident)
    assert node is not None, f"no element with id {ident!r}"
    return node.get_text(" ", strip=True)


@pytest.fixture(scope="session")
def text_of():
    return element_text


def _record(module: str, name: str, group: str, median: float) -> dict:
    return {
        "group": group,
        "name": name,
        "fullname": f"benchmarks/{module}.py::{name}",
        "options": {"timer": "perf_counter"},
        "stats": {"median": median, "rounds": 3},
    }


@pytest.fixture(scope="session")
def benchmark_json() -> dict:
    """A record in pytest-benchmark's layout (the keys the reader uses)."""
    return {
        "machine_info": {"cpu": {"brand_raw": "Test CPU", "count": 2}},
        "datetime": "2026-12-04T00:00:00+00:00",
        "benchmarks": [
            _record("test_bench_cox", "test_ours", "Cox fit", 0.1),
            _record("test_bench_cox", "test_survival_coxph", "Cox fit", 0.5),
            _record("test_bench_coxnet", "test_path_ours_warm", "path", 0.2),
            _record("test_bench_coxnet", "test_path_ours_cold", "path", 0.8),
            _record("test_bench_coxnet", "test_path_glmnet", "path", 0.4),
            _record("test_bench_imaging", "test_preprocess_one_patient", "preprocess", 1.5),
        ],
    }
