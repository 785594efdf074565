"""The study's models under multiple imputation: impute, select by majority, pool.

``validation.missing = "multiple-imputation"``:

* :func:`impute_cohort`: chained equations with PMM (``stats.imputation``) fitted on
  the training rows' study variables, with their outcome (event indicator and
  Nelson-Aalen hazard); the validation rows are imputed by the training models
  (``ChainedImputation.transform``), never refitted. It also counts, per variable
  and set, the values that were missing.
* :func:`select_by_majority`: the paper's selection (univariate screen, stepwise
  AIC; ``study.nomograms.select``) on each completed data set; a clinical variable
  is kept in a model when it is selected in at least half of the ``m`` imputations
  (the majority method of Wood, White and Royston 2008, Stat Med 27:3227).
* :func:`fit_pooled`: the Cox model of the selected terms on each completed training
  set, pooled by Rubin's rules (``stats.pooling.pool_cox``, equal to ``mice::pool``).

The pooled model is a ``FittedModel`` like the complete-data one: its coefficients
and SEs are Rubin's, its P values from Student's t on the Barnard-Rubin df; its
means are the average over imputations of each completed set's covariate means,
and its baseline survival at each horizon the average over imputations of
:math:`S_j(t \\mid \\bar x_j)` at the *pooled* coefficients (the baseline hazard of
completed set ``j`` with the pooled linear predictor as an offset, no iteration).
Its ``loglik`` and ``aic`` are the averages over the completed sets at their own
fits (there is no pooled likelihood; they are reported, not used for selection).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from toolkit.config import StudyConfig
from toolkit.contracts import Term
from toolkit.stats import cox
from toolkit.stats.imputation import ChainedImputation, fit_chained_equations
from toolkit.stats.pooling import PooledEstimate, pool_cox
from toolkit.study import nomograms as nm


@dataclass(frozen=True)
class ImputedCohort:
    """``completed[j]``: the whole frame (training and validation rows) of imputation ``j``.

    ``missing`` has one row per variable and set: ``variable``, ``set``, ``n_missing``,
    ``n`` and ``action`` (what was done, for the report).
    """

    completed: tuple[pd.DataFrame, ...]
    missing: pd.DataFrame
    chains: ChainedImputation


def impute_cohort(
    config: StudyConfig, frame: pd.DataFrame, *, m: int, seed: int, iterations: int = 10
) -> ImputedCohort:
    """Impute ``frame``'s study variables ``m`` times, fitted on the training rows only."""
    names = [v.name for v in config.variables]
    train = frame["set"].isin(config.study.train_sets).to_numpy()
    rows = frame.loc[train]
    chains = fit_chained_equations(
        rows[names], rows["time"], rows["event"], m=m, iterations=iterations, seed=seed
    )
    other = frame.loc[~train]
    new = chains.transform(other[names], other["time"], other["event"]) if len(other) else None
    completed = []
    for j in range(m):
        values = chains.completed[j] if new is None else pd.concat([chains.completed[j], new[j]])
        out = frame.copy()
        out[names] = values.loc[frame.index, names]
        completed.append(out)
    action = (
        f"imputed {m} times by chained equations (PMM, {chains.donors} donors, "
        f"{iterations} iterations), models fitted on the training set"
    )
    counts = []
    for name in names:
        for set_name, group in frame.groupby("set", sort=False)[name]:
            n_missing = int(group.isna().sum())
            counts.append(
                {
                    "variable": name,
                    "set": set_name,
                    "n_missing": n_missing,
                    "n": len(group),
                    "action": action if n_missing else "complete",
                }
            )
    return ImputedCohort(tuple(completed), pd.DataFrame(counts), chains)


@dataclass(frozen=True)
class MajoritySelection:
    """The variables of each model by the majority rule, and how often each was chosen.

    ``counts`` has one row per candidate: ``variable``, ``clinical`` and
    ``integrated`` (in how many of the ``m`` imputations stepwise chose it),
    ``kept_clinical`` and ``kept_integrated``.
    """

    clinical: list[str]
    integrated: list[str]
    counts: pd.DataFrame
    notes: list[str]
    levels: dict[str, list[str]]
    m: int


def select_by_majority(completed: Sequence[pd.DataFrame], config: StudyConfig) -> MajoritySelection:
    """``nomograms.select`` on each completed frame; kept when chosen in >= m/2 of them.

    The frames carry the ``signature`` column (``stages.models.model_frame``). When no
    clinical variable reaches half of the imputations, the most often chosen one is
    used alone (as the complete-data path falls back to the best screened variable).
    """
    m = len(completed)
    selections = [nm.select(frame, config) for frame in completed]
    names = [v.name for v in config.variables]
    chosen = {
        model: {v: sum(v in getattr(s, model) for s in selections) for v in names}
        for model in ("clinical", "integrated")
    }
    notes = [f"imputation {j + 1}: {n}" for j, s in enumerate(selections) for n in s.notes]
    kept = {model: [v for v in names if 2 * chosen[model][v] >= m] for model in chosen}
    if not kept["clinical"]:
        best = max(names, key=lambda v: chosen["clinical"][v])
        notes.append(f"no clinical variable was selected in half of the imputations; {best}")
        kept["clinical"] = [best]
    counts = pd.DataFrame(
        {
            "variable": names,
            "clinical": [chosen["clinical"][v] for v in names],
            "integrated": [chosen["integrated"][v] for v in names],
            "kept_clinical": [v in kept["clinical"] for v in names],
            "kept_integrated": [v in kept["integrated"] for v in names],
        }
    )
    levels = common_levels(completed, config)
    integrated = [*kept["integrated"], "signature"]
    return MajoritySelection(kept["clinical"], integrated, counts, notes, levels, m)


def common_levels(completed: Sequence[pd.DataFrame], config: StudyConfig) -> dict[str, list[str]]:
    """Training levels present in every completed set (a level must be estimable in each)."""
    train = [f[f["set"].isin(config.study.train_sets)] for f in completed]
    names = [v.name for v in config.variables]
    per_set = [nm.training_levels(t, names)[0] for t in train]
    return {v: [lv for lv in per_set[0][v] if all(lv in p[v] for p in per_set)] for v in per_set[0]}


def fit_pooled(
    name: str,
    trains: Sequence[pd.DataFrame],
    variables: list[str],
    levels: dict[str, list[str]],
    times: Sequence[float],
) -> tuple[nm.FittedModel, PooledEstimate]:
    """The Cox model of ``variables`` on each completed training set, by Rubin's rules."""
    used = {v: levels[v] for v in variables if v in levels}
    fits, designs, said = [], [], []
    for j, train in enumerate(trains):
        x, terms = nm.design_matrix(train, variables, used)
        fit, messages = nm.noted_fit(x, train, terms, baseline=False)  # _survival_at's instead
        fits.append(fit)
        said += [f"imputation {j + 1}: {m}" for m in messages]
        designs.append(x)
    pooled = pool_cox(fits)
    beta = pooled.estimate
    means = np.mean([f.means for f in fits], axis=0)
    lp_centre = float(means @ beta)
    survival = np.mean(
        [_survival_at(x, t, beta, lp_centre, times) for x, t in zip(designs, trains, strict=True)],
        axis=0,
    )
    model = nm.FittedModel(
        name=name,
        variables=tuple(variables),
        terms=tuple(Term.parse(n) for n in pooled.names),
        coef=tuple(float(c) for c in beta),
        se=tuple(float(s) for s in pooled.se),
        p=tuple(float(p) for p in pooled.p),
        means=tuple(float(v) for v in means),
        lp_centre=lp_centre,
        baseline_survival={f"{float(t):g}": float(s) for t, s in zip(times, survival, strict=True)},
        loglik=float(np.mean([f.loglik for f in fits])),
        aic=float(np.mean([f.aic for f in fits])),
        levels={k: tuple(v) for k, v in used.items()},
        # each completed set's Cox warnings (non-convergence...), as fit_model's note has its fit's
        note="; ".join([f"pooled over {pooled.m} imputations by Rubin's rules", *said]),
    )
    return model, pooled


def _survival_at(x, train, beta, lp_centre, times) -> np.ndarray:
    """S_j(t) at linear predictor ``lp_centre``: completed set j's baseline at ``beta``."""
    lp = x @ beta
    # the offset-only fit (no covariate): its baseline is the curve at the mean linear
    # predictor (survfit's centring of an offset); shift it to lp_centre
    fit = cox.fit(
        np.empty((len(lp), 0)),
        train["time"].to_numpy(float),
        train["event"].to_numpy(float),
        offset=lp,
    )
    at_mean = fit.predict_survival(np.zeros((1, 0)), list(times))[0]
    return at_mean ** np.exp(lp_centre - lp.mean())


@dataclass(frozen=True)
class PooledModels:
    """The study's three models under imputation: what ``stages.models._fit`` makes from one
    frame, made from ``m``: ``models`` (signature, clinical, integrated: pooled
    ``FittedModel``), ``pooled`` (their Rubin's-rules estimates) and the selection."""

    models: dict[str, nm.FittedModel]
    pooled: dict[str, PooledEstimate]
    selection: MajoritySelection


def study_models(completed: Sequence[pd.DataFrame], config: StudyConfig) -> PooledModels:
    """Majority-rule selection, then the three pooled Cox models on the training rows.

    The seam for the models stage: ``completed`` are the completed model frames (with
    ``signature``); the returned models replace ``nomograms.fit_model``'s.
    """
    selection = select_by_majority(completed, config)
    trains = [f[f["set"].isin(config.study.train_sets)] for f in completed]
    wanted = {
        "signature": ["signature"],
        "clinical": selection.clinical,
        "integrated": selection.integrated,
    }
    models, pooled = {}, {}
    for name, variables in wanted.items():
        models[name], pooled[name] = fit_pooled(
            name, trains, variables, selection.levels, config.validation.times
        )
    return PooledModels(models, pooled, selection)


@dataclass(frozen=True)
class AveragedModel:
    """A pooled model whose predictions average the linear predictor over imputations.

    .. math:: \\bar\\eta_i = \\frac{1}{m} \\sum_j x_{ij}^\\top \\hat\\beta, \\qquad
              S_i(t) = S_0(t)^{\\exp(\\bar\\eta_i - \\bar\\eta_0)}

    with :math:`\\hat\\beta` the pooled coefficients, :math:`x_{ij}` patient ``i``'s row
    in completed set ``j`` and :math:`S_0`, :math:`\\bar\\eta_0` the pooled model's
    baseline survival and centre (``fit_pooled``). The validation metrics are computed
    once on these predictions (Wood, Royston and White 2015, Biom J 57:614, "pool the
    linear predictor, then compute the measure"), not averaged over imputations.
    ``completed`` are the completed model frames (indexed by patient, with
    ``signature``); rows are looked up by their index. Every other attribute is the
    model's (``variables``, ``levels``, ``coef``...).
    """

    model: nm.FittedModel
    completed: tuple[pd.DataFrame, ...]

    def __getattr__(self, name: str):
        if name in ("model", "completed"):
            raise AttributeError(name)
        return getattr(self.model, name)

    def linear_predictor(self, rows: pd.DataFrame) -> np.ndarray:
        values = [self.model.linear_predictor(c.loc[rows.index]) for c in self.completed]
        return np.mean(values, axis=0)

    def survival(self, rows: pd.DataFrame, times) -> np.ndarray:
        """(rows, times) survival at the averaged linear predictor."""
        return self.model.survival_at(self.linear_predictor(rows), times)


def averaged(models, completed: Sequence[pd.DataFrame]) -> dict[str, AveragedModel]:
    """Each pooled model as an :class:`AveragedModel` over the completed model frames."""
    return {name: AveragedModel(model, tuple(completed)) for name, model in models.items()}


def pooled_table(pooled: dict[str, PooledEstimate]) -> pd.DataFrame:
    """The Rubin's-rules estimates of every model, one row per model and term."""
    rows = []
    for name, p in pooled.items():
        for k, term in enumerate(p.names):
            rows.append(
                {
                    "model": name,
                    "term": term,
                    "estimate": float(p.estimate[k]),
                    "se": float(p.se[k]),
                    "within": float(p.within[k]),
                    "between": float(p.between[k]),
                    "df": float(p.df[k]),
                    "fmi": float(p.fmi[k]),
                    "p": float(p.p[k]),
                    "m": int(p.m),
                }
            )
    return pd.DataFrame(rows)
