"""results/r_check.json: R's warnings go with the checks, R's errors become failed checks."""

from __future__ import annotations

from toolkit.study import rcheck


def test_r_warnings_of_a_check_group_are_its_checks_notes(r, capfd):
    warns = r.r_function('function(x) { warning("Ran out of iterations"); x }')

    def work():
        theirs = r.call(warns, 1.0, computation="survival::coxph (test)")
        return [rcheck._check("coef", 1.0, theirs, 1e-7), rcheck._check("se", 2.0, 2.0, 1e-7)]

    checks = rcheck._noted("models", work)
    assert [c.passed for c in checks] == [True, True]
    assert [c.notes for c in checks] == [("R survival::coxph (test): Ran out of iterations",)] * 2
    assert checks[0].to_json()["notes"] == ["R survival::coxph (test): Ran out of iterations"]
    assert capfd.readouterr() == ("", "")


def test_r_error_of_a_check_group_is_a_failed_check_naming_it(r):
    fails = r.r_function('function(x) { warning("first"); stop("singular") }')
    (check,) = rcheck._noted("td_auc", lambda: r.call(fails, 1.0, computation="demo::fails"))
    assert check.name == "td_auc: R computation failed"
    assert not check.passed
    assert check.message == "RComputationError: R demo::fails failed: singular"
    assert check.notes == ("R demo::fails: first",)
    keys = ["name", "ours", "r", "diff", "tolerance", "passed", "message", "notes"]
    assert list(check.to_json()) == keys
