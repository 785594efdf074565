"""Cox residuals (martingale, deviance, score, Schoenfeld, scaled Schoenfeld, dfbeta,
dfbetas), the global likelihood-ratio, Wald and score tests and the proportional-hazards
test against survival 3.5-3's residuals.coxph, summary(coxph) and cox.zph on pbc, lung,
veteran and colon, Efron and Breslow, strata and case weights."""

from __future__ import annotations

import numpy as np

from validation import check, compare

_REF = "survival::residuals.coxph 3.5-3"
_TESTS_REF = "survival::summary.coxph 3.5-3"
_ZPH_REF = "survival::cox.zph 3.5-3"
_TOL, _ZPH_TOL = 1e-10, 1e-8
_TYPES = ("martingale", "deviance", "score", "schoenfeld", "scaledsch", "dfbeta", "dfbetas")

# dataset -> (event code of status, covariates, strata column)
_MODELS = {
    "pbc": (2, ["age", "bili", "albumin", "edema", "protime"], "sex"),
    "lung": (2, ["age", "ph.ecog", "wt.loss"], "sex"),
    "veteran": (1, ["age", "karno", "diagtime", "prior"], "trt"),
    "colon": (1, ["nodes", "extent", "age"], "sex"),
}


def _data(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from toolkit import rbridge

    code, covariates, strata = _MODELS[name]
    frame = rbridge.dataset(name)
    if name == "colon":
        frame = frame[frame["etype"] == 2]  # death
    frame = frame[["time", "status", *covariates, strata]].dropna()
    event = (frame["status"] == code).astype(float).to_numpy()
    x = frame[covariates].to_numpy(dtype=float)
    return x, frame["time"].to_numpy(dtype=float), event, np.asarray(frame[strata]).astype(str)


def _test_rows(label: str, tests, ref) -> list:
    pairs = [
        ("likelihood-ratio test", tests.likelihood_ratio, ref["logtest"][0], ref["logtest"][2]),
        ("Wald test", tests.wald, ref["wald_test"][0], ref["waldtest"][2]),
        ("score (log-rank) test", tests.score, ref["sctest"][0], ref["sctest"][2]),
    ]
    if tests.robust_score is not None:
        pairs.append(("robust score test", tests.robust_score, *ref["robscore"][[0, 2]]))
    return [
        compare(f"{test} {part}", label, ours, theirs, _TOL, relative=True,
                reference=_TESTS_REF)
        for test, result, statistic, p in pairs
        for part, ours, theirs in (("chisq", result.statistic, statistic), ("P", result.p, p))
    ]  # fmt: skip


def _rows(name: str, ties: str, stratified: bool, weighted: bool, max_iter: int = 20) -> list:
    from toolkit.rbridge.cox_residuals import residuals as r_residuals
    from toolkit.stats import cox, cox_residuals

    x, time, event, strata = _data(name)
    strata = strata if stratified else None
    # fractional weights: coxph then reports the robust variance and the robust score test
    weights = 1.0 + 0.5 * (np.arange(len(time)) % 3) if weighted else None
    fit = cox.fit(x, time, event, ties=ties, weights=weights, strata=strata, max_iter=max_iter)
    ref = r_residuals(x, time, event, ties=ties, weights=weights, strata=strata,
                      iter_max=max_iter)  # fmt: skip
    label = ", ".join([name, ties, *(["strata"] if stratified else []),
                       *(["weights 1-2"] if weighted else []),
                       *([f"max_iter={max_iter}"] if max_iter != 20 else [])])  # fmt: skip
    rows = []
    for kind in _TYPES:
        ours = cox_residuals.residuals(fit, kind)
        rows.append(compare(f"{kind} residuals", label, ours.values.reshape(ref[kind].shape),
                            ref[kind], _TOL, reference=_REF))  # fmt: skip
    tests = cox_residuals.global_tests(fit)
    return rows + _test_rows(label, tests, ref)


def _zph_rows(name: str, ties: str, transform: str, stratified: bool) -> list:
    from toolkit.rbridge.cox_residuals import cox_zph
    from toolkit.stats import cox
    from toolkit.stats.cox_zph import zph

    x, time, event, strata = _data(name)
    strata = strata if stratified else None
    fit = cox.fit(x, time, event, ties=ties, strata=strata)
    ours = zph(fit, transform)
    ref = cox_zph(x, time, event, np.arange(1, x.shape[1] + 1), transform=transform,
                  ties=ties, strata=strata)  # fmt: skip
    label = ", ".join([name, ties, f"transform {transform}", *(["strata"] if stratified else [])])
    table = ours.table
    return [
        compare(f"cox.zph {column}", label, table[column].to_numpy(), ref["table"][:, j],
                _ZPH_TOL, relative=True, reference=_ZPH_REF)
        for j, column in enumerate(("chisq", "df", "p"))
    ] + [
        compare("cox.zph scaled Schoenfeld residuals", label, ours.residuals, ref["y"], _ZPH_TOL,
                reference=_ZPH_REF)
    ]  # fmt: skip


@check("residuals", fast=True)
def residuals_efron_pbc() -> list:
    return [
        *_rows("pbc", "efron", stratified=False, weighted=False),
        *_zph_rows("pbc", "efron", "km", stratified=False),
    ]


@check("residuals")
def residuals_all_datasets() -> list:
    return [
        row
        for name in ("pbc", "lung", "veteran", "colon")
        for ties in ("efron", "breslow")
        for stratified, weighted in ((True, False), (False, True), (True, True))
        for row in _rows(name, ties, stratified, weighted)
    ]


@check("residuals")
def score_test_at_max_iter_zero() -> list:
    return [
        row
        for name in ("pbc", "lung", "veteran", "colon")
        for row in _rows(name, "efron", stratified=True, weighted=False, max_iter=0)
    ]


@check("residuals")
def zph_all_datasets() -> list:
    return [
        row
        for name in ("pbc", "lung", "veteran", "colon")
        for ties, transform, stratified in (
            ("efron", "km", True),
            ("breslow", "rank", False),
            ("efron", "identity", False),
        )
        for row in _zph_rows(name, ties, transform, stratified)
    ]
