import numpy as np
import pandas as pd
import pytest

from toolkit import rbridge


def test_dataset_pbc_matches_r_shape_and_factor_levels(r):
    pbc = r.dataset("pbc")
    assert pbc.shape == (418, 20)
    assert list(pbc["sex"].cat.categories) == ["m", "f"]
    assert int(pbc["status"].isna().sum()) == 0
    assert int(pbc["chol"].isna().sum()) == 134


def test_values_travel_as_r_objects(r):
    mean_of = r.r_function("function(x, f) list(m = mean(x), lv = levels(f))")
    out = r.call(mean_of, np.array([1.0, 2.0, 4.0]), pd.Categorical(["b", "a", "b"]))
    assert out["m"][0] == pytest.approx(7 / 3, rel=1e-15)
    assert out["lv"] == ["a", "b"]


def test_missing_r_package_names_debian_package(r):
    with pytest.raises(rbridge.RUnavailableError, match="r-cran-notapackagexyz"):
        rbridge.require("notapackagexyz")


def test_python_started_after_r_loads_its_own_extension_modules(r):
    """Embedded R prepends system library folders to LD_LIBRARY_PATH; a child
    Python (a Dask worker, the report kernel) must still load _ssl and pyarrow."""
    import os
    import subprocess
    import sys

    r.require("survival")
    out = subprocess.run(
        [sys.executable, "-c", "import _ssl, pyarrow; print('ok')"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


def test_r_warning_message_and_output_become_named_python_warnings(r, capfd):
    """R's warning(), message() and cat() reach Python as RWarnings naming the
    computation, and nothing reaches the terminal, not even at the next R call."""
    speaks = r.r_function('function(x) { warning("boom"); message("note"); cat("text\\n"); x + 1 }')
    with pytest.warns(rbridge.RWarning) as said:
        out = r.call(speaks, 1.0, computation="demo::speaks (a test)")
    assert out[0] == 2.0
    assert [str(w.message) for w in said] == [
        "R demo::speaks (a test): boom",
        "R demo::speaks (a test): note",
        "R demo::speaks (a test) wrote to the console: text",
    ]
    assert r.call(r.r_function("function(x) x * 2"), 2.0)[0] == 4.0  # no deferred warning
    assert capfd.readouterr() == ("", "")


def test_r_error_is_raised_naming_the_computation(r, capfd):
    fails = r.r_function('function(x) { warning("first"); stop("bad value ", x) }')
    with pytest.warns(rbridge.RWarning, match=r"^R demo::fails: first$"):
        with pytest.raises(rbridge.RComputationError, match=r"^R demo::fails failed: bad value 3$"):
            r.call(fails, 3, computation="demo::fails")
    assert capfd.readouterr() == ("", "")


def _pbc_wide(pbc) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """80 pbc patients, 17 covariates and their pairwise products, standardised (p > n)."""
    from itertools import combinations

    frame = pbc.copy()
    frame["sex"] = (frame["sex"] == "f").astype(float)
    frame = frame.dropna().iloc[:80]
    x = frame.drop(columns=["id", "time", "status"]).to_numpy(float)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    wide = np.column_stack([x, *(x[:, i] * x[:, j] for i, j in combinations(range(17), 2))])
    wide = (wide - wide.mean(axis=0)) / wide.std(axis=0)
    return wide, frame["time"].to_numpy() / 365.25, (frame["status"] == 2).to_numpy(float)


def test_glmnet_convergence_warning_is_an_rwarning_naming_the_path(r, pbc, capfd):
    """glmnet runs out of iterations on this p > n path at thresh=1e-20 and says so."""
    from toolkit.rbridge import coxnet as rcoxnet

    x, time, event = _pbc_wide(pbc)
    expected = (
        r"^R glmnet::glmnet \(coxnet path, l1_ratio 0\.5\): from glmnet C\+\+ code "
        r"\(error code -\d+\); Convergence for \d+th lambda value not reached"
    )
    with pytest.warns(rbridge.RWarning, match=expected):
        out = rcoxnet.glmnet_path(x, time, event, 0.5, thresh=1e-20)
    assert 0 < len(out["lambda"]) < 100
    assert capfd.readouterr() == ("", "")


def test_noting_r_warnings_records_them_once_and_passes_others_on(r):
    import warnings

    twice = r.r_function('function() { warning("again"); warning("again"); 1 }')
    with pytest.warns(UserWarning, match="not from R"):
        with rbridge.noting_r_warnings() as notes:
            r.call(twice, computation="demo::twice")
            warnings.warn("not from R", UserWarning, stacklevel=1)
    assert notes == ["R demo::twice: again"]
