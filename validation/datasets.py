"""The R datasets of the stepwise and mRMR cross-checks, prepared in one place.

The validation suites, the tests (tests/stats/test_stepwise.py, test_mrmr.py)
and the benchmarks (benchmarks/test_bench_mrmr.py) compare sigkit with R on the
same complete cases of the same variables. Each function takes the data frame
that ``rbridge.dataset`` returns (the tests pass their session fixtures, so R
loads each dataset once) and returns complete cases with a 0-based index.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# survival::pbc and survival::lung candidates of the stepwise checks
STEPWISE_PBC = [
    "age", "sex", "edema", "bili", "albumin", "copper", "ast", "protime", "stage",
    "chol", "trig", "platelet", "alk.phos", "hepato", "spiders", "ascites",
]  # fmt: skip
STEPWISE_LUNG = ["age", "sex", "ph.ecog", "ph.karno", "pat.karno", "meal.cal", "wt.loss"]

# survival::pbc and survival::colon (deaths) features of the mRMR checks
MRMR_PBC = [
    "age", "bili", "chol", "albumin", "copper", "alk.phos", "ast", "trig",
    "platelet", "protime", "edema", "stage", "ascites", "hepato", "spiders",
]  # fmt: skip
MRMR_COLON = ["age", "nodes", "differ", "extent", "surg", "adhere", "obstruct", "perfor", "sex",
              "node4"]  # fmt: skip


def factor(values: pd.Series) -> pd.Categorical:
    """A numeric code as an R factor: levels "0", "0.5", ... in numeric order."""
    levels = sorted(values.unique())
    return pd.Categorical([f"{v:g}" for v in values], categories=[f"{v:g}" for v in levels])


def _complete(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return frame[[*columns, "time", "status"]].dropna().reset_index(drop=True)


def stepwise_pbc(pbc: pd.DataFrame) -> pd.DataFrame:
    """pbc's complete cases: ``event`` = death (status 2), edema and stage as factors."""
    d = _complete(pbc, STEPWISE_PBC)
    d["event"] = (d["status"] == 2).astype(float)
    d["edema"] = factor(d["edema"])
    d["stage"] = factor(d["stage"])
    return d


def stepwise_lung(lung: pd.DataFrame) -> pd.DataFrame:
    """lung's complete cases: ``event`` = death (status 2), sex and ph.ecog as factors."""
    d = _complete(lung, STEPWISE_LUNG)
    d["event"] = (d["status"] == 2).astype(float)
    d["sex"] = pd.Categorical(d["sex"].map({1.0: "male", 2.0: "female"}), ["male", "female"])
    d["ph.ecog"] = factor(d["ph.ecog"])
    return d


def mrmr_pbc(pbc: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """pbc's complete cases as (features, time, event = death)."""
    d = _complete(pbc, MRMR_PBC)
    return d[MRMR_PBC], d["time"].to_numpy(), (d["status"] == 2).to_numpy(float)


def mrmr_colon(colon: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """colon's death records (etype 2), complete cases, as (features, time, event)."""
    d = _complete(colon[colon["etype"] == 2], MRMR_COLON)
    return d[MRMR_COLON], d["time"].to_numpy(), d["status"].to_numpy(float)
