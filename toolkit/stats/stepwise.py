"""Univariate Cox screen and stepwise Cox selection by AIC, equal to ``MASS::stepAIC``.

``aic`` reproduces ``MASS::stepAIC(coxph(...), direction=, k=)`` (MASS 7.3-58,
survival 3.5-3): each step refits every candidate change and scores it with
``extractAIC.coxph``, i.e. :math:`\\text{AIC} = -2\\,\\ell(\\hat\\beta) + k\\,\\text{edf}`
with edf the number of coefficients (the null model's AIC is
:math:`-2\\,\\ell(0)`). A categorical variable is one term (all its dummies
enter or leave together). As in ``stepAIC``:

* the table of a step lists ``<none>`` (the current model), then the drops in
  the order of the current model's terms (only if ``direction`` is ``"both"`` or
  ``"backward"``; terms of ``scope["lower"]`` are never dropped), then the
  additions in the order of the upper scope (only for ``"both"``/``"forward"``);
* the change with the smallest AIC is made, ties going to the earlier row, and
  selection stops when ``<none>`` is (one of) the smallest, i.e. when no change
  lowers the AIC strictly;
* a term just added can be dropped again later, and vice versa.

Without ``scope`` the upper scope is ``candidates``; ``start`` defaults to all
candidates, except for ``direction="forward"`` where it defaults to the null
model (``stepAIC`` from a full model with ``direction="forward"`` and no
scope would do nothing).

Deliberate differences from R: rows with missing values raise an error naming
them (R's ``na.omit`` would drop them silently); constant and duplicated
candidate columns are dropped with a warning; unused levels of a categorical
variable are dropped with a warning (R would give an aliased, NA coefficient).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from toolkit.stats import cox
from toolkit.stats._checks import drop_redundant, listed

Direction = Literal["both", "backward", "forward"]


@dataclass(frozen=True, eq=False)
class StepwiseResult:
    """The outcome of stepwise selection.

    ``fit`` is the final ``CoxFit`` (None for the null model); ``variables`` the
    chosen terms in model order; ``trace`` one row per accepted step, like
    ``stepAIC(...)$anova``: ``step`` ("" for the start, then ``"- x"``/``"+ x"``),
    ``df`` (the anova's ``Df``: coefficients removed or added, unsigned),
    ``edf``, ``loglik`` and ``aic``;
    ``steps`` holds each step's full candidate table (change, df, aic).
    """

    fit: cox.CoxFit | None
    variables: tuple[str, ...]
    trace: pd.DataFrame
    steps: tuple[pd.DataFrame, ...]


# --- design ---------------------------------------------------------------------------------


def _is_categorical(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.CategoricalDtype) or series.dtype == object


def _encode(series: pd.Series, name: str) -> tuple[pd.DataFrame, list[str]]:
    """A variable's columns (a categorical's treatment-coded dummies) and its unused levels.

    A categorical with one used level has no dummy column (a constant variable).
    """
    if not _is_categorical(series):
        return pd.DataFrame({name: series.to_numpy(dtype=float)}, index=series.index), []
    categorical = pd.Categorical(series)
    unused = [str(c) for c in categorical.categories if not (categorical == c).any()]
    levels = list(categorical.remove_unused_categories().categories)
    block = pd.DataFrame(
        {f"{name}{level}": (categorical == level).astype(float) for level in levels[1:]},
        index=series.index,
    )
    return block, unused


class _Design:
    """Treatment-coded columns of each term (R's default contrasts), built once."""

    def __init__(self, df: pd.DataFrame, time: str, event: str, candidates: Sequence[str]):
        missing = [c for c in [time, event, *candidates] if c not in df.columns]
        if missing:
            raise ValueError(f"columns not in the data: {', '.join(missing)}")
        if len(set(candidates)) != len(candidates):
            raise ValueError("candidates are listed twice")
        for column in [time, event, *candidates]:
            bad = df[column].isna().to_numpy()
            if bad.any():
                raise ValueError(
                    f"{column} has {int(bad.sum())} missing values "
                    f"(rows {listed(df.index[bad])}); use complete cases"
                )
        self.time = df[time].to_numpy(dtype=float)
        self.event = df[event].to_numpy(dtype=float)
        blocks, unused = {}, {}
        for name in candidates:
            blocks[name], unused[name] = _encode(df[name], name)
        self._drop_redundant(blocks, unused)
        if not self.columns:
            raise ValueError("no candidate variables left after dropping constant/duplicated ones")

    def _drop_redundant(self, blocks: dict[str, pd.DataFrame], unused: dict[str, list]) -> None:
        """Keep the blocks that are neither constant nor a copy of an earlier one, warning."""
        names = list(blocks)
        found = drop_redundant([block.to_numpy() for block in blocks.values()])
        for j, name in enumerate(names):
            if unused[name]:
                warnings.warn(
                    f"{name}: dropped unused levels {', '.join(unused[name])}",
                    UserWarning,
                    stacklevel=4,
                )
            if found.constant[j]:
                warnings.warn(f"dropped constant variable {name}", UserWarning, stacklevel=4)
        if found.copy_of:
            duplicated = ", ".join(f"{names[j]} (= {names[i]})" for j, i in found.copy_of.items())
            warnings.warn(f"dropped duplicated variables: {duplicated}", UserWarning, stacklevel=4)
        self.columns = {names[j]: blocks[names[j]] for j in found.kept}

    def matrix(self, terms: Sequence[str]) -> pd.DataFrame:
        if not terms:
            return pd.DataFrame(index=range(len(self.time)))
        return pd.concat([self.columns[t] for t in terms], axis=1)

    def fit(self, terms: Sequence[str]) -> cox.CoxFit:
        return cox.fit(self.matrix(terms), self.time, self.event, ties="efron")


# --- univariate screen ----------------------------------------------------------------------


def univariate_screen(
    df: pd.DataFrame,
    time: str,
    event: str,
    candidates: Sequence[str],
    alpha: float = 0.05,
    level: float = 0.95,
) -> pd.DataFrame:
    """Univariate Cox screen: one ``coxph(Surv(time, event) ~ x)`` per candidate.

    One row per coefficient (a categorical variable gives one row per non-reference
    level, treatment-coded with the first level as reference, like an R factor):
    ``variable``, ``contrast`` (the coefficient name, e.g. ``edema0.5``),
    ``hr`` :math:`= e^{\\hat\\beta}`, ``lower``/``upper``
    :math:`= e^{\\hat\\beta \\mp z_{(1+level)/2}\\,se}`,
    ``p`` (Wald, as ``summary(coxph)``'s coefficient table), ``p_lr`` (the
    variable's likelihood-ratio test, ``summary(coxph)$logtest``, with as many
    degrees of freedom as coefficients), ``p_score`` (its score test,
    ``summary(coxph)$sctest``: at :math:`\beta = 0`, so it needs no iteration and
    is the log-rank test for one binary variable without ties) and ``selected``
    (``p_lr < alpha``: a categorical variable enters or not as a whole). This is
    the layout of the paper's Supplementary Table S3, plus the score test.
    """
    from toolkit.stats.cox_residuals import global_tests

    design = _Design(df, time, event, candidates)
    rows = []
    for name in design.columns:
        fit = design.fit([name])
        lr = 2 * (fit.loglik - fit.loglik_null)
        p_lr = float(stats.chi2.sf(lr, df=len(fit.coef)))
        p_score = float(global_tests(fit).score.p)
        ratios = fit.hazard_ratio(level)
        for j, contrast in enumerate(fit.names):
            rows.append(
                {
                    "variable": name,
                    "contrast": contrast,
                    "coef": fit.coef[j],
                    "se": fit.se[j],
                    "hr": ratios["hazard_ratio"].iloc[j],
                    "lower": ratios["lower"].iloc[j],
                    "upper": ratios["upper"].iloc[j],
                    "p": fit.p[j],
                    "p_lr": p_lr,
                    "p_score": p_score,
                    "selected": p_lr < alpha,
                }
            )
    return pd.DataFrame(rows)


# --- stepwise AIC ---------------------------------------------------------------------------


def _scope(
    scope: Mapping[str, Sequence[str]] | Sequence[str] | None, candidates: Sequence[str]
) -> tuple[list[str], list[str]]:
    if scope is None:
        return list(candidates), []
    if isinstance(scope, Mapping):
        unknown = set(scope) - {"lower", "upper"}
        if unknown:
            raise ValueError(f"scope keys must be 'lower' and 'upper', got {sorted(unknown)}")
        return list(scope.get("upper", candidates)), list(scope.get("lower", []))
    return list(scope), []


def _check_terms(terms: Sequence[str], known: Sequence[str], what: str) -> None:
    unknown = [t for t in terms if t not in known]
    if unknown:
        raise ValueError(f"{what} names variables not among the candidates: {', '.join(unknown)}")


def _edf_aic(fit: cox.CoxFit, k: float) -> tuple[int, float]:
    edf = len(fit.coef)
    return edf, -2.0 * fit.loglik + k * edf


def _candidate_table(design, terms, upper, lower, backward, forward, k):
    """One step's table: <none>, drops (model order), adds (upper-scope order)."""
    rows = []
    if backward:
        for term in terms:
            if term not in lower:
                rows.append(("-", term, [t for t in terms if t != term]))
    if forward:
        for term in upper:
            if term not in terms:
                rows.append(("+", term, [*terms, term]))
    table = []
    for sign, term, new_terms in rows:
        fit = design.fit(new_terms)
        edf, value = _edf_aic(fit, k)
        table.append((f"{sign} {term}", sign, term, new_terms, fit, edf, value))
    return table


def aic(
    df: pd.DataFrame,
    time: str,
    event: str,
    candidates: Sequence[str],
    direction: Direction = "both",
    k: float = 2.0,
    start: Sequence[str] | None = None,
    scope: Mapping[str, Sequence[str]] | Sequence[str] | None = None,
    max_steps: int = 1000,
) -> StepwiseResult:
    """Stepwise Cox selection by AIC, equal to ``MASS::stepAIC(coxph(...))``.

    Parameters
    ----------
    df
        One row per patient: the time and event columns and the candidates
        (pandas categorical/object columns are factors, first level the reference).
    time, event
        Column names of the follow-up time and the event indicator (1 = event).
    candidates
        Variables (terms) that may enter the model.
    direction
        ``"both"``, ``"backward"`` or ``"forward"`` (stepAIC's ``direction``).
    k
        Penalty per coefficient (2: AIC; ``log(n)``: BIC-like).
    start
        Terms of the starting model (default: all candidates; the null model
        for ``"forward"``).
    scope
        ``{"upper": [...], "lower": [...]}`` or a list (the upper scope), as
        stepAIC's ``scope`` (default: upper = candidates, lower = none).
    max_steps
        stepAIC's ``steps``.

    Returns
    -------
    StepwiseResult
    """
    if direction not in ("both", "backward", "forward"):
        raise ValueError(f"direction must be 'both', 'backward' or 'forward', got {direction!r}")
    design = _Design(df, time, event, candidates)
    kept = list(design.columns)
    upper, lower = _scope(scope, candidates)
    if start is None:
        start = [] if direction == "forward" else list(candidates)
    for terms, what in ((start, "start"), (upper, "scope upper"), (lower, "scope lower")):
        _check_terms(terms, candidates, what)
    terms = [t for t in start if t in kept]
    upper = [t for t in upper if t in kept]
    lower = [t for t in lower if t in kept]
    backward = direction in ("both", "backward")
    forward = direction in ("both", "forward")
    fit = design.fit(terms)
    edf, current = _edf_aic(fit, k)
    trace = [{"step": "", "df": np.nan, "edf": edf, "loglik": fit.loglik, "aic": current}]
    tables = []
    for _ in range(max_steps):
        table = _candidate_table(design, terms, upper, lower, backward, forward, k)
        tables.append(
            pd.DataFrame(
                [("<none>", 0, current)] + [(r[0], r[5] - edf, r[6]) for r in table],
                columns=["change", "df", "aic"],
            )
        )
        # R's order() is stable and <none> is row 1: a change must lower the AIC strictly.
        best = min(range(len(table)), key=lambda i: table[i][6], default=None)
        if best is None or not table[best][6] < current:
            break
        # (stepAIC's later "bAIC >= AIC + 1e-7" stop cannot fire after this strict test.)
        label, _, _, new_terms, new_fit, new_edf, value = table[best]
        trace.append(
            {
                "step": label,
                "df": float(abs(edf - new_edf)),
                "edf": new_edf,
                "loglik": new_fit.loglik,
                "aic": value,
            }
        )
        terms, fit, edf, current = new_terms, new_fit, new_edf, value
    return StepwiseResult(
        fit=fit if terms else None,
        variables=tuple(terms),
        trace=pd.DataFrame(trace),
        steps=tuple(tables),
    )
