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
