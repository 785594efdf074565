"""Benchmark records: pytest-benchmark JSON read into runs, and the README written from them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from toolkit.report.benchmarks import Timing, markdown, read_run, read_runs, seconds

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def results(tmp_path, benchmark_json) -> Path:
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps(benchmark_json))
    return folder


def test_speedup_is_reference_median_over_sigkit_median(results):
    (run,) = read_runs(results)
    pairs = [(c.sigkit.test, c.reference.test, c.speedup) for c in run.comparisons()]
    assert pairs == [
        ("test_ours", "test_survival_coxph", 5.0),
        ("test_path_ours_warm", "test_path_glmnet", 2.0),
        ("test_path_ours_cold", "test_path_glmnet", 0.5),
    ]
    assert [t.test for t in run.unpaired()] == ["test_preprocess_one_patient"]
    assert {t.area for t in run.timings} == {"cox", "coxnet", "imaging"}
    assert (run.machine, run.timer) == ("Test CPU, 2 cores", "perf_counter")


@pytest.mark.parametrize(
    ("name", "ours"),
    [("test_ours[n=1e+05]", True), ("test_sigkit_flax[8]", True), ("test_register_ours", True),
     ("test_cv_ours_cold", True), ("test_survival_coxph", False), ("test_hours", False),
     ("test_mrmr_selection_regression", False)],
)  # fmt: skip
def test_sigkit_tests_are_named_ours_or_sigkit(name, ours):
    assert Timing("a", "g", name, 1.0, 1).is_sigkit is ours


def test_a_json_that_is_no_pytest_benchmark_record_is_skipped(tmp_path):
    path = tmp_path / "gpu_run.json"
    path.write_text('{"device": "H200", "benchmarks": [{"batch": 64}]}')
    with pytest.warns(UserWarning, match=r"gpu_run.json is not a pytest-benchmark record"):
        assert read_run(path) is None


def test_markdown_table_from_the_json(results):
    text = markdown(read_runs(results))
    assert "| cox | Cox fit | test_ours | 100 ms | test_survival_coxph | 500 ms | 5x |" in text
    assert "| imaging | preprocess | test_preprocess_one_patient | 1.5 s |  |  |  |" in text
    assert [seconds(v) for v in (2.5, 0.0721, 8.5e-5)] == ["2.5 s", "72.1 ms", "85 µs"]


def _write_readme():
    spec = importlib.util.spec_from_file_location(
        "write_readme", ROOT / "benchmarks" / "write_readme.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_tables_are_those_of_the_committed_json():
    writer = _write_readme()
    readme = (ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8")
    assert list((ROOT / "benchmarks" / "results").glob("*.json")), "no benchmark JSON committed"
    assert writer.expected(readme, ROOT / "benchmarks" / "results") == readme, (
        "benchmarks/README.md differs from benchmarks/results/*.json: "
        "run python benchmarks/write_readme.py"
    )


def test_a_hand_edited_figure_is_caught(results):
    writer = _write_readme()
    readme = f"intro\n{writer.BEGIN}\n\n{markdown(read_runs(results))}\n{writer.END}\nprose\n"
    assert writer.expected(readme, results) == readme
    edited = readme.replace("| 5x |", "| 6x |")
    assert edited != readme and writer.expected(edited, results) != edited
