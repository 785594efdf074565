"""Every registered cross-check suite runs its fast subset against R and passes."""

from __future__ import annotations

from validation import run_suites
from validation._registry import load_suites


def test_fast_validation_suites_all_pass(r, tmp_path):
    """Each suite with fast checks compares something and passes; suites whose checks
    are all slow (fast=False, e.g. registration on a whole cohort) run under
    `sigkit validate` only."""
    with_fast = {item.suite for item in load_suites() if item.fast}
    results = {result.suite: result for result in run_suites(fast=True, out_dir=tmp_path)}
    assert set(results) == with_fast
    assert {"cox", "survival", "icc", "tables"} <= with_fast
    for name, result in results.items():
        assert not result.errors, f"suite {name} crashed: {result.errors}"
        assert result.comparisons, f"suite {name} made no comparisons"
        failed = [
            f"{c.statistic} on {c.dataset}: |diff| {c.diff:.3g} > {c.tolerance:g}"
            for c in result.comparisons
            if not c.passed
        ]
        assert not failed, f"suite {name} failed: {failed}"
        assert (tmp_path / f"{name}.json").is_file()


def test_validate_with_no_comparisons_fails(tmp_path):
    from toolkit.cli.validate import run_validation

    assert run_validation(fast=True, only=["no-such-suite"], out=tmp_path, report=False) == 1
