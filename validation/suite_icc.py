"""Intraclass correlations (all six Shrout-Fleiss forms, F, p, CIs) against
psych::ICC(x, lmer=FALSE) 2.2.9 on real repeated ratings."""

from __future__ import annotations

import numpy as np

from validation import check, compare

_REF = "psych::ICC(lmer=FALSE) 2.2.9"
_ICC_TOL, _CI_TOL = 1e-10, 1e-8

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges (psych::ICC's example).
_SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]],
    dtype=float,
)


def _ratings(name: str) -> np.ndarray:
    from toolkit import rbridge

    if name == "Shrout-Fleiss 1979":
        return _SHROUT_FLEISS
    if name == "lung: ph.karno vs pat.karno":
        return rbridge.dataset("lung")[["ph.karno", "pat.karno"]].dropna().to_numpy()
    return rbridge.dataset("USJudgeRatings", package="datasets").to_numpy()


def _rows(name: str) -> list:
    from toolkit.rbridge.icc import psych_icc
    from toolkit.stats.icc import icc

    x = _ratings(name)
    ours = icc(x)
    ref = psych_icc(x)
    rows = []
    for i, kind in enumerate(ours.index):
        rows += [
            compare(f"{kind}", name, ours["ICC"].iloc[i], ref["ICC"][i], _ICC_TOL, reference=_REF),
            compare(f"{kind} F", name, ours["F"].iloc[i], ref["F"][i], _ICC_TOL, relative=True,
                    reference=_REF),
            compare(f"{kind} p", name, ours["p"].iloc[i], ref["p"][i], _CI_TOL, relative=True,
                    reference=_REF),
            compare(f"{kind} 95% CI", name, ours[["lower", "upper"]].iloc[i],
                    [ref["lower"][i], ref["upper"][i]], _CI_TOL, reference=_REF),
        ]  # fmt: skip
    return rows


@check("icc", fast=True)
def icc_shrout_fleiss() -> list:
    return _rows("Shrout-Fleiss 1979")


@check("icc", fast=True)
def icc_lung_karnofsky() -> list:
    return _rows("lung: ph.karno vs pat.karno")


@check("icc")
def icc_judges() -> list:
    """USJudgeRatings: 43 judges scored by lawyers on 12 scales (the scales as raters)."""
    return _rows("USJudgeRatings (12 scales)")
