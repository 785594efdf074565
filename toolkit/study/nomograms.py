"""The study's Cox models (:data:`STUDY_MODELS`), and their nomograms.

Following the paper: a univariate Cox screen of every clinical candidate and
each signature score on the training set (``stats.stepwise.univariate_screen``; a
variable is kept when its likelihood-ratio P < ``univariate_alpha``), then
stepwise AIC (``stats.stepwise.aic``, both directions, as ``MASS::stepAIC``)
from the kept clinical variables plus the model's scores: clinical variables only
for the clinical model, the kept clinical variables plus the deep signature for the
integrated model, plus the radiomics signature for the integrated radiomics model,
plus both for the combined model. A signature model is a Cox fit of its score alone.
A model is made when its scores are columns of the model frame (the radiomics ones
only when the radiomics signature exists).

Deliberate choices where the paper is silent, recorded in models.json:

* a model with scores always contains them (stepwise lower scope), so that
  "integrated" means clinical + signature, "combined" clinical + both signatures;
* when no clinical variable passes the screen, or stepwise ends at the null
  model, the clinical candidate with the smallest screen P is used alone;
* categorical levels absent from the training set are removed (a coefficient
  cannot be estimated); a validation patient with such a level is an error.

Design columns are named ``variable[level]`` (treatment coding, the first level
of study.toml's ``levels`` as reference), and ``signature`` for the signature.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from toolkit.config import StudyConfig
from toolkit.contracts import CoxModel, Term
from toolkit.stats import cox
from toolkit.stats._checks import listed
from toolkit.stats._rows import row_products
from toolkit.stats.cox import CoxFit
from toolkit.stats.nomogram import Nomogram, PredictorSpec, build


class ModelError(ValueError):
    """A model cannot be fitted or applied (unknown level, no candidate...)."""


@dataclass(frozen=True)
class ModelSpec:
    """One of the study's models: its ``scores`` (signature columns of the model frame,
    always in the model) and whether clinical variables are selected into it (``clinical``:
    screen + stepwise AIC, and the model has a nomogram)."""

    name: str
    label: str
    scores: tuple[str, ...]
    clinical: bool


DEEP, RADIOMICS = "signature", "signature_radiomics"
SCORE_LABELS = {DEEP: "DL signature", RADIOMICS: "Radiomics signature"}

# the order every table and figure shows them in; the first three are the study's
# models without radiomics, as they were before the radiomics signature existed
STUDY_MODELS = (
    ModelSpec("signature", "DL signature", (DEEP,), clinical=False),
    ModelSpec("clinical", "Clinical nomogram", (), clinical=True),
    ModelSpec("integrated", "Integrated nomogram", (DEEP,), clinical=True),
    ModelSpec("radiomics", "Radiomics signature", (RADIOMICS,), clinical=False),
    ModelSpec("integrated_radiomics", "Integrated radiomics nomogram", (RADIOMICS,), clinical=True),
    ModelSpec("combined", "Combined nomogram", (DEEP, RADIOMICS), clinical=True),
)
MODEL_SPECS = {spec.name: spec for spec in STUDY_MODELS}


def specs_for(columns) -> tuple[ModelSpec, ...]:
    """The models a model frame with ``columns`` makes: those whose scores it has."""
    return tuple(s for s in STUDY_MODELS if all(c in columns for c in s.scores))


def in_order(names) -> list[str]:
    """``names`` (models present) in :data:`STUDY_MODELS`' order."""
    present = set(names)
    return [s.name for s in STUDY_MODELS if s.name in present]


def nomogram_names(names) -> list[str]:
    """Of ``names``, the models with a nomogram (clinical variables selected), in order."""
    return [m for m in in_order(names) if MODEL_SPECS[m].clinical]


@dataclass(frozen=True)
class FittedModel(CoxModel):
    """A final Cox model: models.json's ``contracts.CoxModel`` with the study's prediction.

    Made from the model's ``cox.CoxFit`` (``from_fit``) or read back from models.json
    (``CoxModel.from_json``); its hazard ratios are the fit's (``coefficient_table``).
    """

    def design(self, frame: pd.DataFrame) -> np.ndarray:
        return design_matrix(frame, list(self.variables), self.levels)[0]

    def linear_predictor(self, frame: pd.DataFrame) -> np.ndarray:
        return row_products(self.design(frame), np.asarray(self.coef, dtype=float))

    def survival(self, frame: pd.DataFrame, times) -> np.ndarray:
        """(rows, times) predicted survival, survfit.coxph's centring."""
        return self.survival_at(self.linear_predictor(frame), times)

    def survival_at(self, lp: np.ndarray, times) -> np.ndarray:
        """(rows, times) predicted survival at the linear predictors ``lp``."""
        return self.baseline_at(times)[None, :] ** np.exp(lp - self.lp_centre)[:, None]

    def baseline_at(self, times) -> np.ndarray:
        """The baseline survival (covariates at the means) at each of ``times``, horizons of
        the model's ``baseline_survival``."""
        return np.array([self.baseline_survival[_key(t)] for t in times])

    @classmethod
    def from_fit(cls, name: str, fit: CoxFit, variables, levels, times, note="") -> FittedModel:
        """The study's model of a ``cox.fit`` on its design (columns = ``fit.names``)."""
        base = fit.predict_survival(fit.means[None, :], list(times))[0]
        return cls(
            name=name,
            variables=tuple(variables),
            terms=tuple(Term.parse(n) for n in fit.names),
            coef=tuple(float(c) for c in fit.coef),
            se=tuple(float(v) for v in fit.se),
            p=tuple(float(v) for v in fit.p),
            means=tuple(float(m) for m in fit.means),
            lp_centre=float(fit.means @ fit.coef),
            baseline_survival={_key(t): float(s) for t, s in zip(times, base, strict=True)},
            loglik=float(fit.loglik),
            aic=float(fit.aic),
            levels={k: tuple(v) for k, v in levels.items()},
            note=note,
        )


def _key(time: float) -> str:
    return f"{float(time):g}"


def design_matrix(
    frame: pd.DataFrame, variables: list[str], levels: dict[str, list[str]]
) -> tuple[np.ndarray, list[str]]:
    """Treatment-coded design; unknown levels raise naming the patients."""
    columns, names = [], []
    for var in variables:
        if var not in levels:
            columns.append(frame[var].to_numpy(dtype=float))
            names.append(var)
            continue
        values = frame[var].astype(object)
        odd = ~values.isin(levels[var])
        if odd.any():
            who = listed(frame.index[odd.to_numpy()])
            raise ModelError(
                f"{var}: level(s) {sorted(set(values[odd].astype(str)))} were not seen in "
                f"the training set (patients {who})"
            )
        for level in levels[var][1:]:
            columns.append((values == level).to_numpy(dtype=float))
            names.append(Term(var, level).format())
    return np.column_stack(columns) if columns else np.empty((len(frame), 0)), names


def training_levels(frame: pd.DataFrame, variables: list[str]) -> tuple[dict, list[str]]:
    """Levels present in training per categorical variable, and variables left with one level."""
    levels, single = {}, []
    for var in variables:
        if isinstance(frame[var].dtype, pd.CategoricalDtype):
            present = [lv for lv in frame[var].cat.categories if (frame[var] == lv).any()]
            if len(present) < 2:
                single.append(var)
            levels[var] = [str(lv) for lv in present]
    return levels, single


def _model_frame(frame: pd.DataFrame, variables: list[str], levels: dict) -> pd.DataFrame:
    """time, event and ``variables``: the categorical ones on their training ``levels``
    (a value outside them missing), the others float."""
    columns = {"time": frame["time"], "event": frame["event"]}
    for var in variables:
        if var not in levels:
            columns[var] = frame[var].astype(float)
        elif isinstance(frame[var].dtype, pd.CategoricalDtype):  # the study's columns
            columns[var] = frame[var].cat.set_categories(levels[var], ordered=False)
        else:
            columns[var] = pd.Series(
                pd.Categorical(frame[var].astype(object), categories=levels[var]),
                index=frame.index,
            )
    return pd.DataFrame(columns, index=frame.index)


def univariate(train: pd.DataFrame, candidates: list[str], levels: dict, alpha: float):
    """The screen table with a ``term`` column in ``variable[level]`` form."""
    from toolkit.stats.stepwise import univariate_screen

    data = _model_frame(train, candidates, levels)
    table = univariate_screen(data, "time", "event", candidates, alpha=alpha)
    # a categorical variable's rows are its contrasts against the first level, in level order
    position = table.groupby("variable", sort=False).cumcount()
    terms = [
        Term(var, levels[var][1 + j] if var in levels else None).format()
        for var, j in zip(table["variable"], position, strict=True)
    ]
    table.insert(0, "term", terms)
    return table


def _stepwise(train, candidates, levels, lower, notes: list[str]) -> list[str]:
    """stepAIC; Cox warnings on the way (monotone likelihood...) go into ``notes``."""
    from toolkit.stats.stepwise import aic

    data = _model_frame(train, candidates, levels)
    scope = {"upper": candidates, "lower": lower}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = aic(data, "time", "event", candidates, direction="both", scope=scope)
    notes.extend(sorted({f"stepwise: {w.message}" for w in caught}))
    return list(result.variables)


def noted_fit(x, train: pd.DataFrame, terms, baseline: bool) -> tuple[cox.CoxFit, list[str]]:
    """The Cox fit (Efron) of design ``x`` on ``train``'s outcome and the RuntimeWarnings it
    gave (non-convergence, monotone likelihood), as messages for a model's note. With
    ``baseline`` the baseline hazard (computed when first read) is made here too, so that
    its warnings are among them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        fit = cox.fit(x, train["time"].to_numpy(float), train["event"].to_numpy(float), names=terms)
        if baseline:
            _ = fit.baseline_cumulative_hazard
    return fit, [str(w.message) for w in caught]


def fit_model(name, train, variables, levels, times, note="") -> FittedModel:
    """Final Cox fit (Efron) with the baseline survival at ``times``."""
    used = {v: levels[v] for v in variables if v in levels}
    x, terms = design_matrix(train, variables, used)
    fit, said = noted_fit(x, train, terms, baseline=True)
    note = "; ".join([note, *said]).strip("; ")
    return FittedModel.from_fit(name, fit, variables, used, times, note)


@dataclass
class Selection:
    """The screen's table and each model's variables (``variables[name]``, in
    :data:`STUDY_MODELS` order), with the notes of the selection."""

    univariate: pd.DataFrame
    variables: dict[str, list[str]]
    notes: list[str]
    levels: dict[str, list[str]]

    @property
    def clinical(self) -> list[str]:
        return self.variables["clinical"]

    @property
    def integrated(self) -> list[str]:
        return self.variables["integrated"]


def _screened(train, config: StudyConfig, scores: list[str], notes: list[str]):
    """The univariate screen of the clinical candidates and ``scores``: (table, training
    levels, the clinical candidates it kept, each screened variable's likelihood-ratio P).
    When none passes, the candidate with the smallest P is kept alone."""
    clinical = [v.name for v in config.variables]
    levels, single = training_levels(train, clinical)
    notes.extend(f"{v}: one level only in the training set, not a candidate" for v in single)
    candidates = [v for v in clinical if v not in single]
    if not candidates:
        raise ModelError("no clinical variable varies in the training set")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = univariate(
            train, [*candidates, *scores], levels, config.validation.univariate_alpha
        )
    notes.extend(sorted({f"univariate screen: {w.message}" for w in caught}))
    passed = table.groupby("variable", sort=False)["selected"].first()
    p_lr = table.groupby("variable", sort=False)["p_lr"].first()
    notes.extend(
        f"{v}: left out by the screen (constant or duplicated)"
        for v in candidates
        if v not in p_lr.index
    )
    candidates = [v for v in candidates if v in p_lr.index]
    kept = [v for v in candidates if passed.get(v, False)]
    if not kept:
        best = str(p_lr[candidates].idxmin())
        notes.append(f"no clinical variable passed the screen; the best ({best}) is used")
        kept = [best]
    return table, levels, kept, p_lr


def select(frame: pd.DataFrame, config: StudyConfig) -> Selection:
    """Univariate screen, then stepwise AIC for each model of :func:`specs_for` the frame.

    A model with clinical variables starts stepwise from the kept clinical variables and
    its scores, the scores held in (lower scope); a signature model is its scores alone.
    """
    train = frame[frame["set"].isin(config.study.train_sets)]
    specs = specs_for(frame.columns)
    scores = [c for c in SCORE_LABELS if any(c in s.scores for s in specs)]
    notes: list[str] = []
    table, levels, kept, p_lr = _screened(train, config, scores, notes)
    chosen: dict[str, list[str]] = {}
    for spec in specs:
        if not spec.clinical:
            chosen[spec.name] = list(spec.scores)
            continue
        scores_in = list(spec.scores)
        variables = _stepwise(train, [*kept, *scores_in], levels, scores_in, notes)
        if not variables:  # only without scores: the lower scope holds them in
            best = str(p_lr[kept].idxmin())
            notes.append(f"stepwise AIC kept no clinical variable; the best ({best}) is used")
            variables = [best]
        chosen[spec.name] = variables
    return Selection(table, chosen, notes, levels)


def nomogram_for(model: FittedModel, train: pd.DataFrame, config: StudyConfig) -> Nomogram:
    """The model's nomogram (rms::nomogram points) from its coefficients."""
    coef = dict(zip(model.terms, model.coef, strict=True))
    specs = []
    for var in model.variables:
        label = SCORE_LABELS.get(var) or config.variable(var).label or var
        if var in model.levels:
            lv = model.levels[var]
            coefs = (0.0, *(coef[Term(var, x)] for x in lv[1:]))
            specs.append(PredictorSpec(var, "categorical", label, levels=tuple(lv), coefs=coefs))
        else:
            values = tuple(train[var].to_numpy(dtype=float))
            specs.append(PredictorSpec(var, "numeric", label, coef=coef[Term(var)], values=values))
    baseline = {float(k): v for k, v in model.baseline_survival.items()}
    return build(
        specs,
        baseline_survival=baseline,
        lp_centre=model.lp_centre,
        model=model.name,
        time_unit=config.study.time_unit,
    )


def coefficient_table(model: FittedModel, level: float = 0.95) -> pd.DataFrame:
    """multivariable_<model>.parquet: term, coef, se, hr, lower, upper, p.

    The hazard ratios and their Wald intervals are ``cox.hazard_ratios``'s
    (``CoxFit.hazard_ratio``).
    """
    terms = [t.format() for t in model.terms]
    ratios = cox.hazard_ratios(model.coef, model.se, terms, level)
    return pd.DataFrame(
        {
            "term": terms,
            "coef": model.coef,
            "se": model.se,
            "hr": ratios["hazard_ratio"].to_numpy(),
            "lower": ratios["lower"].to_numpy(),
            "upper": ratios["upper"].to_numpy(),
            "p": model.p,
        }
    )


PH_TRANSFORM = "km"


def refit(model: FittedModel, train: pd.DataFrame, **options) -> CoxFit:
    """The model's Cox fit on ``train`` again (its design, Efron ties), with ``cox.fit``'s
    ``options`` (e.g. ``cluster=``): the ``CoxFit`` that models.json does not keep."""
    x, names = design_matrix(train, list(model.variables), dict(model.levels))
    t, e = train["time"].to_numpy(float), train["event"].to_numpy(float)
    return cox.fit(x, t, e, names=names, **options)


def ph_test(model: FittedModel, train: pd.DataFrame, transform: str = PH_TRANSFORM):
    """``cox.zph(fit, transform)`` of the model refitted on ``train`` (``stats.cox_zph.zph``).

    A categorical variable's dummy columns are one term, tested on their df as R tests
    a factor; the refit is the model's own fit (same rows, same design).
    """
    from toolkit.stats.cox_zph import zph

    fit = refit(model, train)
    terms = {v: [n for n in fit.names if Term.parse(n).variable == v] for v in model.variables}
    return zph(fit, transform, terms=terms)


def clustered_table(model: FittedModel, train: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """The model's coefficients with the SE clustered by centre beside the model-based one.

    ``coxph(..., cluster = centre)`` of the model's terms on ``train`` (its ``centre``
    column, from ``study.centre``): the coefficients are the model's (clustering changes
    only the variance), ``se`` the model-based and ``se_cluster`` the robust sandwich
    SE over centres, with its Wald interval and P. Few centres make the sandwich
    unreliable (it has as many independent pieces as centres), so ``n_centres`` is given.
    """
    centres = train["centre"].to_numpy()
    fit = refit(model, train, cluster=centres)
    ratios = fit.hazard_ratio(level)  # the robust se's Wald interval, as summary(coxph)
    return pd.DataFrame(
        {
            "term": list(fit.names),
            "coef": fit.coef,
            "se": fit.naive_se,
            "se_cluster": fit.se,
            "hr": ratios["hazard_ratio"].to_numpy(),
            "lower_cluster": ratios["lower"].to_numpy(),
            "upper_cluster": ratios["upper"].to_numpy(),
            "p_cluster": fit.p,
            "n_centres": len(set(centres)),
        }
    )
