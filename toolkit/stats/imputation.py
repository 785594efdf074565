"""Multiple imputation by chained equations with predictive mean matching (as R's ``mice``).

Each of the ``m`` imputations runs its own chain (van Buuren and Groothuis-Oudshoorn
2011). The missing values start as random draws from the variable's observed
values; then, for a fixed number of iterations, every variable in turn is
regressed on all the others (as they stand in the chain) plus the outcome, and
its missing values are replaced by predictive mean matching (``mice.impute.pmm``,
mice 3.15, its defaults: ``donors = 5``, ``matchtype = 1``):

1. least squares on the rows where the variable is observed,
   :math:`\\hat\\beta = (X^\\top X)^{-1} X^\\top y`, residual sum of squares :math:`S`;
2. a draw from the posterior of the Bayesian linear model (``.norm.draw``):
   :math:`\\dot\\sigma^2 = S / \\chi^2_{n_{obs} - p}`,
   :math:`\\dot\\beta = \\hat\\beta + \\dot\\sigma\\, L z`, :math:`L L^\\top = (X^\\top X)^{-1}`,
   :math:`z \\sim N(0, I)`;
3. type-1 matching: for each missing row the predicted mean :math:`x^\\top\\dot\\beta` is
   compared with the observed rows' :math:`x_i^\\top\\hat\\beta`; one of the 5 closest
   observed rows is drawn at random and its observed value imputed.

An imputed value is therefore always a value seen in the training data.

The outcome enters every imputation model as two predictors, the event indicator and
the Nelson-Aalen cumulative hazard at the patient's follow-up time,
:math:`\\hat H(t_i) = \\sum_{t_k \\le t_i} d_k / n_k` (White and Royston 2009, Stat Med
28:1982), the approximation they recommend over :math:`\\log t` for a Cox analysis model.

Categorical variables enter the other variables' models as indicator columns (the
first level the reference) and are imputed by PMM on their level codes 1..K, which is
exactly what ``mice.impute.pmm`` does with a factor. This differs from mice's default
for factors (``logreg``/``polyreg``) on purpose: logistic and multinomial models
separate on the small training sets of radiomics studies (120 patients, rare levels),
which mice handles with data augmentation, whereas PMM needs no iteration, cannot
fail to converge and imputes only levels observed in training. The cost is that for
an unordered variable of more than two levels the linear model on its codes assumes
an order; sigkit's categorical variables are mostly ordered (stages, categories of a
cut-off) or binary, where the two coincide in what they impute.

Fitted on the training set only. :meth:`ChainedImputation.transform` imputes new rows
(validation set, a new cohort) with the training models, never refitting: for
imputation ``j`` it keeps, from the last iteration of chain ``j`` on the training data,
each variable's :math:`\\hat\\beta`, :math:`\\dot\\beta` and its donors (the training rows
where it was observed, with their :math:`x_i^\\top\\hat\\beta`). The new rows' missing
values start as random draws from the training observed values; then for the same
number of iterations each variable with missing values among the new rows gets
:math:`x^\\top\\dot\\beta` from the new row's current values and its outcome (event and the
*training* Nelson-Aalen hazard at its time), matched to the training donors as above.

Why not statsmodels' ``MICEData`` (0.15.0): its PMM matches on the *perturbed*
parameters for observed and missing rows alike (type-2 matching; mice's default,
used here, is type 1), with ``k_pmm = 20`` donors and the coefficients
drawn from :math:`N(\\hat\\beta, \\widehat{\\mathrm{cov}})` without the draw of
:math:`\\sigma`; it imputes the one table it holds, so its models cannot be fitted on
the training set and applied to validation rows, and it has no notion of a
categorical target. Writing the ~200 lines here was the honest way to get mice's
method and the training-only fit.

Deliberate differences from R: mice's ``maxit`` defaults to 5, ours ``iterations`` to
10 (cheap here, and closer to convergence); the random numbers are numpy's (a
``Generator`` per imputation from ``SeedSequence(seed).spawn(m)``), so the imputed values
are reproducible in sigkit but not equal to mice's draws. Rows with a missing time or
event raise a ``ValueError`` naming them (the outcome is never imputed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from toolkit.stats._checks import check_survival, listed

DONORS = 5
"""Donors per missing value (``mice.impute.pmm``'s default)."""


@dataclass(frozen=True)
class PmmModel:
    """One variable's imputation model in one imputation (the last iteration's).

    ``coef`` is :math:`\\hat\\beta` and ``draw`` :math:`\\dot\\beta` over the columns
    ``["(Intercept)", *predictors]``; ``donor_values`` are the training observed values
    (level codes 0..K-1 for a categorical), ``donor_means`` their :math:`x_i^\\top\\hat\\beta`.
    """

    variable: str
    predictors: tuple[str, ...]
    coef: np.ndarray
    draw: np.ndarray
    donor_values: np.ndarray
    donor_means: np.ndarray


@dataclass(frozen=True)
class ChainedImputation:
    """``m`` imputations of a training table, and the models that impute new rows.

    ``completed[j]`` is the training table with imputation ``j`` filled in (same index,
    columns and dtypes as the input); ``models[j]`` maps each variable to its
    :class:`PmmModel` from the last iteration of chain ``j``. ``n_missing`` counts the
    training values missing per variable; ``hazard_times``/``hazard_values`` are the
    training Nelson-Aalen step function.
    """

    variables: tuple[str, ...]
    levels: dict[str, tuple[str, ...] | None]
    completed: tuple[pd.DataFrame, ...]
    models: tuple[dict[str, PmmModel], ...]
    n_missing: dict[str, int]
    hazard_times: np.ndarray
    hazard_values: np.ndarray
    iterations: int
    donors: int
    seed: int
    outcome: bool = True

    @property
    def m(self) -> int:
        return len(self.models)

    def transform(self, frame: pd.DataFrame, time=None, event=None) -> tuple[pd.DataFrame, ...]:
        """The ``m`` completions of new rows by the training models (module docstring).

        An imputation fitted with the outcome needs the new rows' ``time`` and ``event``;
        one fitted with ``outcome=False`` takes neither.
        """
        codes = _encode(frame, self.variables, self.levels)
        event, hazard = self._outcome_columns(frame, time, event)
        missing = np.isnan(codes)
        out = []
        streams = np.random.SeedSequence([self.seed, 1]).spawn(self.m)
        for models, stream in zip(self.models, streams, strict=True):
            rng = np.random.default_rng(stream)
            values = codes.copy()
            for k, name in enumerate(self.variables):
                donors = models[name].donor_values
                values[missing[:, k], k] = rng.choice(donors, int(missing[:, k].sum()))
            for _ in range(self.iterations):
                for k, name in enumerate(self.variables):
                    if missing[:, k].any():
                        x = _design(values, k, self.variables, self.levels, event, hazard)
                        model = models[name]
                        values[missing[:, k], k] = _match(
                            x[missing[:, k]] @ model.draw,
                            model.donor_means,
                            model.donor_values,
                            self.donors,
                            rng,
                        )
            out.append(_decode(values, frame, self.variables, self.levels))
        return tuple(out)

    def _outcome_columns(self, frame, time, event) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The event and training Nelson-Aalen hazard of the new rows, or (None, None)."""
        given = time is not None or event is not None
        if not self.outcome:
            if given:
                raise ValueError(
                    "this imputation was fitted without the outcome (outcome=False): "
                    "it imputes from the covariates alone and takes no time or event"
                )
            return None, None
        if time is None or event is None:
            raise ValueError(
                "this imputation was fitted with the outcome: it needs the new rows' time "
                "and event (fit with outcome=False to impute rows without an outcome)"
            )
        time, event = check_survival(
            time, event, names=["time", "event"], require_events=False, rows=frame
        )
        return event, _step(self.hazard_times, self.hazard_values, time)

    def to_json(self) -> dict:
        """The imputation models as plain JSON values, for :meth:`from_json`.

        The completed training tables are not kept, but the PMM donors are: each model's
        ``donor_values`` are the training patients' observed values of its variable
        (without identifiers) and ``donor_means`` their predicted means, since matching
        new rows needs them. Whoever receives the JSON receives those values.
        """
        return {
            "variables": list(self.variables),
            "levels": {v: None if lv is None else list(lv) for v, lv in self.levels.items()},
            "n_missing": dict(self.n_missing),
            "hazard_times": self.hazard_times.tolist(),
            "hazard_values": self.hazard_values.tolist(),
            "iterations": self.iterations,
            "donors": self.donors,
            "seed": self.seed,
            "outcome": self.outcome,
            "models": [
                {
                    name: {
                        "predictors": list(model.predictors),
                        "coef": model.coef.tolist(),
                        "draw": model.draw.tolist(),
                        "donor_values": model.donor_values.tolist(),
                        "donor_means": model.donor_means.tolist(),
                    }
                    for name, model in chain.items()
                }
                for chain in self.models
            ],
        }

    @classmethod
    def from_json(cls, data: dict) -> ChainedImputation:
        """The imputation of :meth:`to_json` (``completed`` empty: the training tables are
        not stored); ``transform`` gives the same completions as the original."""
        variables = tuple(data["variables"])
        models = tuple(
            {
                name: PmmModel(
                    variable=name,
                    predictors=tuple(model["predictors"]),
                    coef=np.asarray(model["coef"], dtype=float),
                    draw=np.asarray(model["draw"], dtype=float),
                    donor_values=np.asarray(model["donor_values"], dtype=float),
                    donor_means=np.asarray(model["donor_means"], dtype=float),
                )
                for name, model in chain.items()
            }
            for chain in data["models"]
        )
        absent = [
            f"imputation {j + 1}: {listed([v for v in variables if v not in chain])}"
            for j, chain in enumerate(models)
            if set(chain) != set(variables)
        ]
        if absent:
            raise ValueError(f"imputation models missing for {'; '.join(absent)}")
        return cls(
            variables=variables,
            levels={v: None if lv is None else tuple(lv) for v, lv in data["levels"].items()},
            completed=(),
            models=models,
            n_missing={v: int(n) for v, n in data["n_missing"].items()},
            hazard_times=np.asarray(data["hazard_times"], dtype=float),
            hazard_values=np.asarray(data["hazard_values"], dtype=float),
            iterations=int(data["iterations"]),
            donors=int(data["donors"]),
            seed=int(data["seed"]),
            outcome=bool(data["outcome"]),
        )


def fit_chained_equations(
    frame: pd.DataFrame,
    time=None,
    event=None,
    *,
    m: int = 20,
    iterations: int = 10,
    donors: int = DONORS,
    seed: int = 0,
    outcome: bool = True,
) -> ChainedImputation:
    """Impute the training table ``frame`` ``m`` times by chained equations with PMM.

    Parameters
    ----------
    frame
        One column per variable: float (numeric) or pandas categorical; NaN is missing.
    time, event
        The outcome (complete), entering each imputation model as the event indicator
        and the Nelson-Aalen cumulative hazard.
    m, iterations, donors, seed
        Imputations, iterations of each chain, PMM donors, and the seed of the numpy
        ``Generator`` of each chain (``SeedSequence(seed).spawn(m)``).
    outcome
        Whether the outcome enters the imputation models (the default, as White and
        Royston advise for the analysis). ``False`` imputes from the covariates alone
        (``time`` and ``event`` not given): the imputer a deployed model needs, since a
        new patient's outcome is not known when the model is applied.

    Raises
    ------
    ValueError
        A variable with no observed value, one neither numeric nor categorical, a
        missing or invalid time or event (naming the rows).
    """
    if m < 2 or iterations < 1 or donors < 1:
        raise ValueError(
            f"need m >= 2, iterations >= 1, donors >= 1; got {m}, {iterations}, {donors}"
        )
    variables = tuple(str(c) for c in frame.columns)
    levels = _levels(frame)
    codes = _encode(frame, variables, levels)
    missing = np.isnan(codes)
    empty = [v for v, k in zip(variables, missing.all(axis=0), strict=True) if k]
    if empty:
        raise ValueError(f"no observed value of {listed(empty)}: it cannot be imputed")
    event, hazard, (hazard_times, hazard_values) = _training_outcome(frame, time, event, outcome)
    completed, models = [], []
    for stream in np.random.SeedSequence(seed).spawn(m):
        rng = np.random.default_rng(stream)
        values = codes.copy()
        for k in range(len(variables)):
            observed = codes[~missing[:, k], k]
            values[missing[:, k], k] = rng.choice(observed, int(missing[:, k].sum()))
        for _ in range(iterations):
            chain = {}
            for k, name in enumerate(variables):
                x = _design(values, k, variables, levels, event, hazard)
                chain[name] = _fit(
                    name, x, values[:, k], ~missing[:, k], variables, levels, k, rng, outcome
                )
                if missing[:, k].any():
                    model = chain[name]
                    values[missing[:, k], k] = _match(
                        x[missing[:, k]] @ model.draw,
                        model.donor_means,
                        model.donor_values,
                        donors,
                        rng,
                    )
        completed.append(_decode(values, frame, variables, levels))
        models.append(chain)
    return ChainedImputation(
        variables=variables,
        levels=levels,
        completed=tuple(completed),
        models=tuple(models),
        n_missing={v: int(n) for v, n in zip(variables, missing.sum(axis=0), strict=True)},
        hazard_times=hazard_times,
        hazard_values=hazard_values,
        iterations=iterations,
        donors=donors,
        seed=seed,
        outcome=outcome,
    )


def _training_outcome(frame, time, event, outcome: bool):
    """The training event and Nelson-Aalen hazard columns and step function, or Nones and
    an empty step function for an imputation without the outcome."""
    if not outcome:
        if time is not None or event is not None:
            raise ValueError("outcome=False imputes from the covariates alone: give no outcome")
        return None, None, (np.empty(0), np.empty(0))
    if time is None or event is None:
        raise ValueError("the outcome enters the imputation: give time and event")
    time, event = check_survival(time, event, names=["time", "event"], rows=frame)
    hazard_times, hazard_values = nelson_aalen(time, event)
    return event, _step(hazard_times, hazard_values, time), (hazard_times, hazard_values)


def nelson_aalen(time, event) -> tuple[np.ndarray, np.ndarray]:
    """The Nelson-Aalen cumulative hazard :math:`\\hat H(t) = \\sum_{t_k \\le t} d_k / n_k`.

    Returns the distinct times (events and censorings, as ``survfit``'s ``time``) and
    :math:`\\hat H` there, equal to ``survfit(Surv(time, event) ~ 1)$cumhaz``.
    """
    time, event = check_survival(time, event, require_events=False)
    times, inverse = np.unique(time, return_inverse=True)
    deaths = np.bincount(inverse, weights=event, minlength=len(times))
    leaving = np.bincount(inverse, minlength=len(times))
    at_risk = len(time) - np.concatenate([[0], np.cumsum(leaving)[:-1]])
    return times, np.cumsum(deaths / at_risk)


def _step(knots: np.ndarray, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """A right-continuous step function at ``t`` (0 before the first knot)."""
    at = np.searchsorted(knots, t, side="right")
    return np.concatenate([[0.0], values])[at]


def _levels(frame: pd.DataFrame) -> dict[str, tuple[str, ...] | None]:
    levels: dict[str, tuple[str, ...] | None] = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            levels[str(name)] = tuple(str(c) for c in column.cat.categories)
        elif pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            levels[str(name)] = None
        else:
            raise ValueError(
                f"{name}: imputation needs a numeric or categorical column, got {column.dtype}"
            )
    return levels


def _encode(
    frame: pd.DataFrame, variables: Sequence[str], levels: dict[str, tuple[str, ...] | None]
) -> np.ndarray:
    """The table as floats: numeric values, or level codes 0..K-1; NaN where missing."""
    absent = [v for v in variables if v not in frame.columns]
    if absent:
        raise ValueError(f"no column {listed(absent)} among the rows to impute")
    out = np.empty((len(frame), len(variables)))
    for k, name in enumerate(variables):
        column = frame[name]
        if levels[name] is None:
            out[:, k] = pd.to_numeric(column, errors="raise").to_numpy(dtype=float)
            continue
        text = column.astype(object).where(column.notna(), None)
        known = {level: i for i, level in enumerate(levels[name])}
        unseen = sorted({str(v) for v in text.dropna() if str(v) not in known})
        if unseen:
            rows = [p for p, v in text.items() if v is not None and str(v) in unseen]
            raise ValueError(
                f"{name}: level {listed(unseen)} not seen in training ({listed(rows)})"
            )
        out[:, k] = [np.nan if v is None else known[str(v)] for v in text]
    return out


def _decode(
    values: np.ndarray,
    frame: pd.DataFrame,
    variables: Sequence[str],
    levels: dict[str, tuple[str, ...] | None],
) -> pd.DataFrame:
    out = frame.copy()
    for k, name in enumerate(variables):
        if levels[name] is None:
            out[name] = values[:, k]
        else:  # codes index the training levels; the rows keep their own categories
            named = np.asarray(levels[name], dtype=object)[values[:, k].astype(int)]
            out[name] = pd.Categorical(named, categories=frame[name].cat.categories)
    return out


def _design(values, k, variables, levels, event, hazard) -> np.ndarray:
    """Intercept, the other variables (categoricals as indicators), event, H(t) (these two
    left out when ``event`` is None: an imputation without the outcome)."""
    columns = [np.ones(len(values))]
    for j, name in enumerate(variables):
        if j == k:
            continue
        if levels[name] is None:
            columns.append(values[:, j])
        else:
            columns += [(values[:, j] == c).astype(float) for c in range(1, len(levels[name]))]
    if event is None:
        return np.column_stack(columns)
    return np.column_stack([*columns, event, hazard])


def _predictor_names(variables, levels, k, outcome: bool) -> tuple[str, ...]:
    names = []
    for j, name in enumerate(variables):
        if j != k:
            names += [name] if levels[name] is None else [f"{name}{lv}" for lv in levels[name][1:]]
    return (*names, "event", "cumulative_hazard") if outcome else tuple(names)


def _fit(name, x, y, observed, variables, levels, k, rng, outcome: bool) -> PmmModel:
    """Least squares and the posterior draw of ``.norm.draw`` on the observed rows.

    Predictors constant on those rows (an indicator of a level no observed row has)
    carry nothing and are left out, with coefficient 0, as mice's ``remove.lindep``
    drops constant predictors; near-collinear ones get mice's ridge, 1e-5 of the
    diagonal of :math:`X^\\top X`.
    """
    xo, yo = x[observed], y[observed]
    used = np.ptp(xo, axis=0) > 0
    used[0] = True  # the intercept
    xu = xo[:, used]
    gram = xu.T @ xu
    if np.linalg.cond(gram) > 1e12:
        gram = gram + np.diag(1e-5 * np.diag(gram))
    inverse = np.linalg.inv(gram)
    coef_used = inverse @ xu.T @ yo
    residual = yo - xu @ coef_used
    df = max(len(yo) - xu.shape[1], 1)
    sigma = np.sqrt(residual @ residual / rng.chisquare(df))
    root = np.linalg.cholesky((inverse + inverse.T) / 2)
    coef, draw = np.zeros(x.shape[1]), np.zeros(x.shape[1])
    coef[used] = coef_used
    draw[used] = coef_used + sigma * root @ rng.standard_normal(len(coef_used))
    return PmmModel(
        variable=name,
        predictors=_predictor_names(variables, levels, k, outcome),
        coef=coef,
        draw=draw,
        donor_values=yo.copy(),
        donor_means=xo @ coef,
    )


def _match(targets, donor_means, donor_values, donors, rng) -> np.ndarray:
    """For each target, the value of one of the ``donors`` closest donors, drawn at random.

    Ties in distance are broken at random (mice adds uniform noise of 1e-10 of the
    smallest positive distance; a random permutation does the same job).
    """
    k = min(donors, len(donor_means))
    out = np.empty(len(targets))
    for i, target in enumerate(targets):
        shuffle = rng.permutation(len(donor_means))
        distance = np.abs(donor_means[shuffle] - target)
        closest = shuffle[np.argpartition(distance, k - 1)[:k]]
        out[i] = donor_values[rng.choice(closest)]
    return out
