"""cox.py's public core: risk sets, partial likelihood, Newton iteration, hazard increments
and hazard ratios, which cox.fit, the lean bootstrap fit and the study's models share."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import toolkit
from toolkit.stats import cox
from toolkit.stats._efron import efron_fit
from toolkit.stats.wald import Z_975, quantile

# survival's tests/book1.R data
TIME = np.array([9.0, 1, 1, 6, 6, 8])
EVENT = np.array([1.0, 1, 0, 1, 1, 0])
X = np.array([0.0, 1, 1, 1, 0, 0])


def _risk(ties: str):
    n = len(TIME)
    x = (X - X.mean())[:, None]
    return cox.risk_sets(x, TIME, EVENT, np.ones(n), np.zeros(n, dtype=np.int64), ties)[0]


@pytest.mark.parametrize(
    ("ties", "expected"),
    # beta = 0: at t=1 one death of 6 at risk; t=6 two of 4 (Efron: 1/4 + 1/3); t=9 one of 1
    [("breslow", [1 / 6, 2 / 4, 1.0]), ("efron", [1 / 6, 1 / 4 + 1 / 3, 1.0])],
)
def test_hazard_increments_at_zero_worked_by_hand(ties, expected):
    np.testing.assert_allclose(cox.hazard_increments(_risk(ties), np.zeros(1)), expected)


def test_book1_breslow_loglik_at_zero_worked_by_hand():
    # log-likelihood at beta = 0: -(log 6 + 2 log 4 + log 1); score = sum of (x_i - xbar_k)
    loglik, score, information = cox.partial_likelihood(_risk("breslow"), np.zeros(1))
    assert loglik == pytest.approx(-(np.log(6) + 2 * np.log(4)))
    # xbar at t=1: 3/6, at t=6: 1/4 (twice), at t=9: 0; deaths have x = 1, 1, 0, 0
    assert score[0] == pytest.approx((1 - 0.5) + (1 - 0.25) + (0 - 0.25) + (0 - 0))
    # variance of x over each risk set, per death: 1/4, 3/16 twice, 0
    assert information[0, 0] == pytest.approx(0.25 + 2 * 3 / 16)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_public_core_composes_to_cox_fit_exactly(lung, ties):
    d = lung.dropna(subset=["ph.ecog"])
    x = d[["age", "ph.ecog", "sex"]].to_numpy(float)
    time, event = d["time"].to_numpy(float), (d["status"] == 2).to_numpy(float)
    n = len(time)
    means = np.average(x, axis=0, weights=np.ones(n))
    risk, _ = cox.risk_sets(x - means, time, event, np.ones(n), np.zeros(n, np.int64), ties)
    result = cox.newton(risk, cox.partial_likelihood(risk, np.zeros(3)), 1e-9, 20)
    fit = cox.fit(x, time, event, ties=ties)
    assert isinstance(result, cox.Newton) and result.converged
    assert np.array_equal(result.beta, fit.coef)
    assert result.loglik == fit.loglik and result.iterations == fit.iterations
    increments = cox.hazard_increments(risk, result.beta, float(means @ result.beta))
    at_events = fit.baseline_cumulative_hazard.set_index("time")["hazard"]
    # basehaz cumulates per stratum with pandas (compensated sums): equal to rounding
    np.testing.assert_allclose(
        np.cumsum(increments), at_events.loc[np.unique(time[event == 1])], rtol=1e-14
    )


def test_lean_fit_baseline_is_cox_fits_at_the_means(veteran):
    x = veteran[["karno", "age"]].to_numpy(float)
    t, e = veteran["time"].to_numpy(float), veteran["status"].to_numpy(float)
    lean = efron_fit(x, t, e)
    fit = cox.fit(x, t, e)
    centred = fit.predict_survival(lean.centre[None, :], lean.times)[0]
    np.testing.assert_allclose(np.exp(-lean.cumhaz), centred, rtol=1e-10)


def test_z_975_is_scipys_quantile_and_rs_qnorm_to_two_ulp(r):
    qnorm = r.r_function("function(p) stats::qnorm(p)")
    from_r = float(r.call(qnorm, 0.975, computation="qnorm")[0])
    assert Z_975 == 1.959963984540054  # the value every earlier study result used
    assert Z_975 - from_r == 2 * np.spacing(Z_975)  # R's AS 241 is two ulp below
    assert quantile(0.95) == Z_975
    assert quantile(0.9) == pytest.approx(1.6448536269514722, rel=1e-15)


def test_hazard_ratios_worked_by_hand():
    table = cox.hazard_ratios(np.log([2.0, 0.5]), [0.5, 0.1], ["a", "b"])
    assert list(table.index) == ["a", "b"]
    np.testing.assert_allclose(table["hazard_ratio"], [2.0, 0.5])
    np.testing.assert_allclose(
        table["lower"], [2 * np.exp(-Z_975 * 0.5), 0.5 * np.exp(-Z_975 * 0.1)]
    )
    np.testing.assert_allclose(table["upper"], [2 * np.exp(Z_975 * 0.5), 0.5 * np.exp(Z_975 * 0.1)])
    infinite = cox.hazard_ratios([1000.0], [1.0], ["x"])  # no overflow warning
    assert np.isinf(infinite["hazard_ratio"].iloc[0])


@pytest.mark.parametrize("level", [0.95, 0.9])
def test_study_coefficient_table_is_the_fits_hazard_ratios(lung, level):
    from toolkit.study import nomograms as nm

    d = lung.dropna(subset=["ph.ecog"])
    frame = pd.DataFrame(
        {
            "time": d["time"].to_numpy(float),
            "event": (d["status"] == 2).to_numpy(float),
            "age": d["age"].to_numpy(float),
            "ecog": pd.Categorical(d["ph.ecog"].clip(upper=2).astype(int).astype(str)),
        }
    )
    levels = {"ecog": ["0", "1", "2"]}
    model = nm.fit_model("clinical", frame, ["age", "ecog"], levels, [180.0, 365.0])
    x, terms = nm.design_matrix(frame, ["age", "ecog"], levels)
    fit = cox.fit(x, frame["time"], frame["event"], names=terms)
    expected = fit.hazard_ratio(level)
    for m in (model, nm.FittedModel.from_json(model.to_json())):
        table = nm.coefficient_table(m, level)
        assert list(table["term"]) == list(fit.names) == ["age", "ecog[1]", "ecog[2]"]
        assert np.array_equal(table["hr"], expected["hazard_ratio"])
        assert np.array_equal(table["lower"], expected["lower"])
        assert np.array_equal(table["upper"], expected["upper"])
        assert np.array_equal(table["coef"], fit.coef) and np.array_equal(table["p"], fit.p)


def _private_names_imported(path: Path) -> list[str]:
    """``from toolkit.x import _name`` where _name is not a module of toolkit.x."""
    root = Path(toolkit.__file__).parent.parent
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("toolkit")):
            continue
        package = root.joinpath(*node.module.split("."))
        for alias in node.names:
            is_module = (package / f"{alias.name}.py").exists() or (package / alias.name).is_dir()
            private = alias.name.startswith("_") and not alias.name.startswith("__")
            if private and not is_module:
                found.append(f"{path.name}: from {node.module} import {alias.name}")
    return found


def test_no_module_imports_another_modules_private_names():
    package = Path(toolkit.__file__).parent
    found = [hit for path in sorted(package.rglob("*.py")) for hit in _private_names_imported(path)]
    assert found == []


def test_private_name_detection_finds_one(tmp_path):
    source = tmp_path / "bad.py"
    source.write_text("from toolkit.stats.cox import _design\nfrom toolkit.report import _qmd\n")
    assert _private_names_imported(source) == ["bad.py: from toolkit.stats.cox import _design"]
