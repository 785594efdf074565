"""Clinical and integrated Cox models, and their nomograms.

Following the paper: a univariate Cox screen of every clinical candidate and
the signature on the training set (``stats.stepwise.univariate_screen``; a
variable is kept when its likelihood-ratio P < ``univariate_alpha``), then
stepwise AIC (``stats.stepwise.aic``, both directions, as ``MASS::stepAIC``)
from the kept variables: clinical variables only for the clinical model, the
kept clinical variables plus the signature for the integrated model.

Deliberate choices where the paper is silent, recorded in models.json:

* the integrated model always contains the signature (stepwise lower scope), so
  that "integrated" means clinical + signature;
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
        lp = self.linear_predictor(frame)
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
    out = pd.DataFrame(index=frame.index)
    out["time"], out["event"] = frame["time"], frame["event"]
    for var in variables:
        if var in levels:
            out[var] = pd.Categorical(frame[var].astype(object), categories=levels[var])
        else:
            out[var] = frame[var].astype(float)
    return out


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


def fit_model(name, train, variables, levels, times, note="") -> FittedModel:
    """Final Cox fit (Efron) with the baseline survival at ``times``."""
    used = {v: levels[v] for v in variables if v in levels}
    x, terms = design_matrix(train, variables, used)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        fit = cox.fit(x, train["time"].to_numpy(float), train["event"].to_numpy(float), names=terms)
    note = "; ".join([note, *(str(w.message) for w in caught)]).strip("; ")
    return FittedModel.from_fit(name, fit, variables, used, times, note)


@dataclass
class Selection:
    univariate: pd.DataFrame
    clinical: list[str]
    integrated: list[str]
    notes: list[str]
    levels: dict[str, list[str]]


def select(frame: pd.DataFrame, config: StudyConfig) -> Selection:
    """Univariate screen, then stepwise AIC for the clinical and the integrated model."""
    train = frame[frame["set"].isin(config.study.train_sets)]
    clinical = [v.name for v in config.variables]
    levels, single = training_levels(train, clinical)
    notes = [f"{v}: one level only in the training set, not a candidate" for v in single]
    candidates = [v for v in clinical if v not in single]
    if not candidates:
        raise ModelError("no clinical variable varies in the training set")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = univariate(
            train, [*candidates, "signature"], levels, config.validation.univariate_alpha
        )
    notes.extend(sorted({f"univariate screen: {w.message}" for w in caught}))
    passed = table.groupby("variable", sort=False)["selected"].first()
    p_lr = table.groupby("variable", sort=False)["p_lr"].first()
    screened = [v for v in candidates if v in p_lr.index]
    notes.extend(
        f"{v}: left out by the screen (constant or duplicated)"
        for v in candidates
        if v not in p_lr.index
    )
    candidates = screened
    kept = [v for v in candidates if passed.get(v, False)]
    if not kept:
        best = str(p_lr[candidates].idxmin())
        notes.append(f"no clinical variable passed the screen; the best ({best}) is used")
        kept = [best]
    chosen = _stepwise(train, kept, levels, [], notes)
    if not chosen:
        best = str(p_lr[kept].idxmin())
        notes.append(f"stepwise AIC kept no clinical variable; the best ({best}) is used")
        chosen = [best]
    integrated = _stepwise(train, [*kept, "signature"], levels, ["signature"], notes)
    return Selection(table, chosen, integrated, notes, levels)


def nomogram_for(model: FittedModel, train: pd.DataFrame, config: StudyConfig) -> Nomogram:
    """The model's nomogram (rms::nomogram points) from its coefficients."""
    coef = dict(zip(model.terms, model.coef, strict=True))
    specs = []
    for var in model.variables:
        label = "DL signature" if var == "signature" else (config.variable(var).label or var)
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
