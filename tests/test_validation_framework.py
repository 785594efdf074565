import json

import numpy as np
import pytest

from validation import compare, run_suites


def test_compare_relative_uses_r_value_as_scale():
    c = compare("coef", "pbc", [1.0 + 1e-9, 2.0], [1.0, 2.0], 1e-8, relative=True)
    assert np.isclose(c.diff, 1e-9, rtol=1e-6)
    assert c.passed


def test_compare_fails_on_shape_mismatch_and_nan():
    assert not compare("x", "d", [1.0, 2.0], [1.0], 1.0).passed
    assert not compare("x", "d", [np.nan], [1.0], 1.0).passed
    assert compare("x", "d", [np.nan], [np.nan], 0.0).passed


@pytest.fixture
def warning_suite(r):
    """A registered check whose R side warns (a plain R warning() through the bridge)."""
    from validation import _registry, check

    def r_warns():
        warns = r.r_function('function(x) { warning("iterations ran out"); sum(x) }')
        theirs = r.call(warns, np.array([1.0, 2.0]), computation="demo::sum (warning test)")
        return [compare("sum", "two numbers", 3.0, theirs, 0.0, reference="base::sum")]

    before = list(_registry.load_suites())
    check("r_warning_fixture", fast=True)(r_warns)
    yield "r_warning_fixture"
    _registry._REGISTRY[:] = before


NOTE = "R demo::sum (warning test): iterations ran out"


def test_r_warnings_during_a_check_become_its_comparisons_notes(warning_suite, tmp_path):
    from toolkit.report.validation import comparison_table, load_suites

    (result,) = run_suites(only=[warning_suite], out_dir=tmp_path)
    assert not result.errors
    assert [c.notes for c in result.comparisons] == [(NOTE,)]
    assert result.passed
    saved = json.loads((tmp_path / f"{warning_suite}.json").read_text())
    assert saved["comparisons"][0]["notes"] == [NOTE]
    table = comparison_table(load_suites(tmp_path))
    assert "sum<sup>1</sup>" in table
    assert f'<ol class="table-notes"><li>{NOTE}</li></ol>' in table


def test_validate_prints_r_warnings_as_numbered_notes_not_raw(warning_suite, tmp_path, capfd):
    from toolkit.cli.validate import run_validation

    assert run_validation(fast=True, only=[warning_suite], out=tmp_path, report=False) == 0
    out, err = capfd.readouterr()
    assert "sum [1]" in out
    assert f"[1] {NOTE}" in out
    assert "R[write to console]" not in out + err
    assert "Warning message" not in out + err
