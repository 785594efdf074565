"""Baseline-table p-values (Mann-Whitney as wilcox.test(exact=FALSE, correct=TRUE),
Fisher as fisher.test, r x c included) against R on pbc (by treatment arm), lung
(by sex) and veteran (by treatment arm)."""

from __future__ import annotations

import pandas as pd

from validation import check, compare

_P_TOL = 1e-8

# dataset -> (group column, numeric variables, categorical variables)
_TABLES = {
    "pbc": ("trt", ["age", "bili", "chol", "albumin", "copper", "alk.phos", "ast", "protime"],
            ["sex", "ascites", "hepato", "spiders", "edema", "stage"]),
    "lung": ("sex", ["age", "meal.cal", "wt.loss", "pat.karno"], ["ph.ecog", "status"]),
    "veteran": ("trt", ["age", "karno", "diagtime"], ["celltype", "prior", "status"]),
}  # fmt: skip


def _rows(name: str) -> list:
    from toolkit import rbridge
    from toolkit.rbridge.tables import fisher_p, wilcox_p
    from toolkit.stats.tables import baseline

    group, numeric, categorical = _TABLES[name]
    frame = rbridge.dataset(name)
    frame = frame[frame[group].notna()].reset_index(drop=True)
    frame[group] = pd.Categorical(frame[group].astype(str))
    table = baseline(frame, group, numeric, categorical)
    first = table.drop_duplicates("variable").set_index("variable")["p"]
    where = f"{name} by {group}"
    rows = [
        compare(f"Mann-Whitney p: {v}", where, first[v], wilcox_p(frame[v], frame[group]),
                _P_TOL, relative=True, reference="stats::wilcox.test(exact=FALSE, correct=TRUE)")
        for v in numeric
    ]  # fmt: skip
    rows += [
        compare(f"Fisher p: {v}", where, first[v], fisher_p(frame[v], frame[group]), _P_TOL,
                relative=True, reference="stats::fisher.test")
        for v in categorical
    ]  # fmt: skip
    return rows


@check("tables", fast=True)
def baseline_pbc() -> list:
    return _rows("pbc")


@check("tables")
def baseline_lung_veteran() -> list:
    return _rows("lung") + _rows("veteran")
