"""Internal validation of the whole procedure: the bootstrap that re-runs every selection.

Harrell's optimism bootstrap (Harrell, Lee and Mark 1996; ``rms::validate``'s
``predab.resample``), but on the *procedure* rather than on one fixed model.
In resample :math:`b` (``B`` draws of the training patients with replacement)
everything that learned from the training data is run again, by the same
functions the signature and models stages call:

1. the signature (``study.signature.fit_signature``): ICC filter on the
   resample's readers, redundancy filter, mRMR, elastic-net Cox with k-fold CV;
2. the nomograms (``study.nomograms.select`` and ``fit_model``): the univariate
   screen and stepwise AIC of the clinical and the integrated model, with the
   resample's own signature score, and the three final Cox fits.

Each refitted model is scored on its resample (*apparent*) and on the original
training set (*test*): Harrell's C, the calibration slope (coefficient of the
linear predictor in ``coxph(Surv ~ lp)``), and at each validation time the
IPCW Brier score, the IPA and the grouped calibration RMSE. With
:math:`\\theta_{orig}` the study's own model on the training set,

.. math::

    O = \\frac1{B'} \\sum_b \\big(\\theta_b^{apparent} - \\theta_b^{test}\\big), \\qquad
    \\theta_{corrected} = \\theta_{orig} - O

over the :math:`B'` resamples that gave the value. Unlike ``rms::validate``,
which refits a pre-specified model, the selection is inside the loop, so the
optimism includes the selection's (Steyerberg, Clinical Prediction Models, 2nd
ed., 17.2). The k-fold CV of a resample splits its duplicated patients across
folds, as a re-run of the procedure on that data would.

Missing clinical values are filled again in every resample, as the study filled
the training set's ("bootstrap, then impute": Wahl et al. 2016, BMC Med Res
Methodol 16:144; Schomaker and Heumann 2018, Stat Med 37:2252): with
``validation.missing = "impute-median-mode"`` by the
resample's own medians and modes, with ``"multiple-imputation"`` by ``m`` chained
equations fitted on the resample (``study.imputed.impute_cohort``, seeded from
``imputation_seed`` and the resample's number), then the majority-rule selection
and the Rubin's-rules models of ``study.imputed.study_models`` on its ``m``
completed sets. The refitted models are scored on the resample as completed and
on the training set as the study completed it (the set the study's apparent values
come from). Under multiple imputation each side is scored as the validate stage
scores the study's models (``study.imputed.AveragedModel``: the linear predictor
averaged over the ``m`` completed sets, then each statistic computed once; Wood,
Royston and White 2015): apparent over the resample's ``m`` completed sets, test
over the study's ``m`` completed training sets, and the study's apparent values are
the validate stage's training-set values. The study's completion used every
training patient's outcome, so the test values may share a little of the apparent
values' optimism.

Resample :math:`b` is drawn from ``numpy.random.default_rng([seed, b])``, so its
result does not depend on the other resamples nor on how many workers run them.
A resample that cannot be used (no event in it; the ICC filter, mRMR or the
CV cannot proceed; a final Cox fit that ran out of iterations; a model that cannot
be applied to the original patients) is kept as a dropped :class:`Replicate`
with its reason: counted and named, never silently left out. A horizon beyond a
resample's last follow-up has no value in that resample (NaN), and the summary
counts, per statistic, the resamples that gave it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from toolkit.config import ClinicalData, StudyConfig
from toolkit.study.nomograms import FittedModel, ModelError, fit_model, select
from toolkit.study.signature import Signature, SignatureError, fit_signature

MODELS = ("signature", "clinical", "integrated")
METRICS = ("c_index", "calibration_slope", "brier", "ipa", "calibration_rmse")
"""The statistics of each model; the last three at each validation time."""
PROCEDURE_ERRORS = (SignatureError, ModelError, ValueError, ArithmeticError, np.linalg.LinAlgError)
"""What stops the procedure on a resample: the resample is dropped with the message."""
# cox.fit's "ran out of iterations": the fit is not a maximum (rms's cph sets fail = TRUE).
# A monotone likelihood ("coefficient may be infinite") is kept, as the study keeps it.
_NOT_CONVERGED = "did not converge"


@dataclass(frozen=True)
class TrainingData:
    """What the procedure learns from: the training patients, once.

    ``ratings`` (patients, readers, features) with the primary reader first
    (``study.signature.training_ratings``), ``names`` the feature columns, and
    ``frame`` the training rows of the clinical frame (``time``, ``event``,
    ``set`` and the study variables), in the same patient order.
    """

    ratings: np.ndarray
    names: tuple[str, ...]
    frame: pd.DataFrame
    incomplete: pd.DataFrame | None = None
    """The training rows before the study filled their missing values (NaN), in
    ``frame``'s order; None when nothing was filled (each resample then fills nothing)."""
    completed: tuple[pd.DataFrame, ...] = ()
    """Under multiple imputation the study's ``m`` completed training sets in ``frame``'s
    order (``frame`` is the first), over which each resample's test linear predictor is
    averaged; empty otherwise."""


def training_data(
    features: pd.DataFrame,
    clinical: pd.DataFrame,
    config: StudyConfig,
    incomplete: pd.DataFrame | None = None,
    completed: Sequence[pd.DataFrame] = (),
) -> TrainingData:
    """The :class:`TrainingData` of a study's features table and clinical frame.

    ``clinical`` as the study completed it (under multiple imputation its first
    completed set); ``incomplete`` the same frame before the missing values were
    filled (:func:`incomplete_frame`), or None when nothing was filled; ``completed``
    under multiple imputation every completed set (``ClinicalData.completed``).
    """
    from toolkit.study.signature import training_ratings

    ratings, names = training_ratings(features, clinical, config)
    frame = clinical[clinical["set"].isin(config.study.train_sets)]
    if incomplete is not None:
        incomplete = incomplete.loc[frame.index]
    sets = tuple(c.loc[frame.index] for c in completed)
    if config.validation.missing == "multiple-imputation" and incomplete is not None:
        if not sets:
            raise ValueError(
                "multiple imputation: the study's completed sets are needed (completed=), "
                "each resample's test is averaged over them"
            )
        if not sets[0].equals(frame):
            raise ValueError("multiple imputation: clinical must be the first completed set")
    return TrainingData(ratings, tuple(names), frame, incomplete, sets)


def training_data_of(
    features: pd.DataFrame, clinical: ClinicalData, config: StudyConfig
) -> TrainingData:
    """The :class:`TrainingData` of a study's features table and clinical data as the
    clinical stage hands them on: the frame as the study completed it (the first completed
    set under multiple imputation, with every completed set), and the values it filled
    put back to missing (:func:`incomplete_frame`)."""
    frame = clinical.completed[0] if clinical.imputed else clinical.frame
    completed = clinical.completed if clinical.imputed else ()
    incomplete = incomplete_frame(clinical, config)
    return training_data(features, frame, config, incomplete, completed)


def incomplete_frame(clinical: ClinicalData, config: StudyConfig) -> pd.DataFrame | None:
    """The clinical frame with the values the study filled put back to missing (NaN).

    Under multiple imputation ``clinical.frame``
    kept the missing values; under ``impute-median-mode`` the ``imputations`` table
    names each filled value. None when no training patient's value was filled (complete
    training data, or ``complete-case``, whose excluded patients are not in the frame).
    """
    rule = config.validation.missing
    if rule == "multiple-imputation" and clinical.imputed:
        frame = clinical.frame
    elif rule == "impute-median-mode" and len(clinical.imputations):
        frame = clinical.frame.copy()
        for variable, filled in clinical.imputations.groupby("variable", sort=False):
            frame.loc[filled["patient"].to_numpy(), variable] = np.nan
    else:
        return None
    train = frame["set"].isin(config.study.train_sets).to_numpy()
    variables = [v.name for v in config.variables]
    return frame if frame.loc[train, variables].isna().any().any() else None


@dataclass(frozen=True)
class Value:
    """One statistic of one refitted model: on its resample and on the original set.

    ``horizon`` is NaN for the statistics without a time (C-index, slope).
    """

    model: str
    metric: str
    horizon: float
    apparent: float
    test: float


@dataclass(frozen=True)
class Replicate:
    """One resample: its values, or why it was dropped (``reason``), and what it selected."""

    number: int
    reason: str
    values: tuple[Value, ...] = ()
    features: tuple[str, ...] = ()
    clinical: tuple[str, ...] = ()
    integrated: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def used(self) -> bool:
        return not self.reason


def resample_rows(n: int, seed: int, number: int) -> np.ndarray:
    """The patients (row positions, with repeats) of resample ``number``."""
    return np.random.default_rng([seed, number]).integers(0, n, n)


def replicate(data: TrainingData, number: int, config: StudyConfig) -> Replicate:
    """Resample ``number``: re-run the whole procedure on it, score it there and on the
    original training set (module docstring). Pure: the same inputs give the same record."""
    rows = resample_rows(len(data.frame), config.internal_validation.seed, number)
    if not data.frame["event"].to_numpy(float)[rows].any():
        return Replicate(number, "no events in the resample")
    # numpy's floating-point warnings depend on the process's error state (np.seterr, which
    # other libraries change), so they are silenced here: a resample's record must not
    # depend on what ran before it in the process
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        try:
            refit = _refit(data, rows, config, number)
            values = _compare(refit, config)
        except PROCEDURE_ERRORS as error:
            return Replicate(number, f"{refit_stage(error)}: {error}")
    notes = tuple(sorted({str(w.message) for w in caught}))
    stuck = [m for m in refit.models.values() if _NOT_CONVERGED in m.note]
    if stuck:
        said = [part for part in stuck[0].note.split("; ") if _NOT_CONVERGED in part]
        return Replicate(number, f"the {stuck[0].name} model's Cox fit: {'; '.join(said)}")
    return Replicate(
        number,
        "",
        values,
        features=tuple(refit.signature.columns),
        clinical=tuple(refit.models["clinical"].variables),
        integrated=tuple(refit.models["integrated"].variables),
        notes=notes,
    )


def refit_stage(error: Exception) -> str:
    """Where the procedure stopped, for a dropped resample's reason."""
    if isinstance(error, SignatureError):
        return "signature"
    if isinstance(error, ModelError):
        return "nomograms"
    if isinstance(error, _ImputationError):
        return "imputation"
    return type(error).__name__


class _ImputationError(ValueError):
    """The resample's missing values cannot be filled (a variable unobserved in it)."""


@dataclass(frozen=True)
class _Refit:
    """A resample's signature and models, and the two sets they are scored on.

    ``on_resample`` and ``on_original`` are the models as each set scores them: the
    models themselves, or under multiple imputation their ``AveragedModel`` over that
    side's completed sets (``resample`` and ``original`` the first of those).
    """

    signature: Signature
    models: dict[str, FittedModel]
    resample: pd.DataFrame
    original: pd.DataFrame
    on_resample: Mapping[str, FittedModel]
    on_original: Mapping[str, FittedModel]


def _refit(data: TrainingData, rows: np.ndarray, config: StudyConfig, number: int) -> _Refit:
    """The signature and the three models fitted on the resample ``rows`` (``number``)."""
    frame = data.frame
    time, event = frame["time"].to_numpy(float), frame["event"].to_numpy(float)
    built = fit_signature(
        data.ratings[rows], list(data.names), time[rows], event[rows], config.signature
    )
    signature = built.signature
    primary = pd.DataFrame(
        data.ratings[:, 0, [data.names.index(c) for c in signature.columns]],
        columns=signature.columns,
    )
    original = frame.assign(signature=signature.score(primary))
    resample = original.iloc[rows].copy()
    # a patient drawn twice is two patients of the resample: unique labels for the model code
    resample.index = pd.Index([f"{p}~{i}" for i, p in enumerate(resample.index)], name="patient")
    if data.incomplete is not None:
        incomplete = data.incomplete.iloc[rows].set_axis(resample.index)
        incomplete = incomplete.assign(signature=resample["signature"].to_numpy())
        if config.validation.missing == "multiple-imputation":
            score = original["signature"].to_numpy()
            originals = tuple(c.assign(signature=score) for c in data.completed)
            return _refit_imputed(signature, incomplete, originals, config, number)
        resample = _filled(incomplete, config)
    chosen = select(resample, config)
    times = config.validation.times
    models = {
        "signature": fit_model("signature", resample, ["signature"], chosen.levels, times),
        "clinical": fit_model("clinical", resample, chosen.clinical, chosen.levels, times),
        "integrated": fit_model("integrated", resample, chosen.integrated, chosen.levels, times),
    }
    return _Refit(signature, models, resample, original, models, models)


def _filled(incomplete: pd.DataFrame, config: StudyConfig) -> pd.DataFrame:
    """The resample's missing values filled by its own medians and modes."""
    from toolkit.config import UnobservedVariable, fill_median_mode

    variables = [v.name for v in config.variables]
    columns = [v for v in variables if incomplete[v].isna().any()]
    try:
        return fill_median_mode(incomplete, columns, np.ones(len(incomplete), dtype=bool))[0]
    except UnobservedVariable as error:
        raise _ImputationError(str(error)) from error


def _refit_imputed(signature, incomplete, originals, config: StudyConfig, number: int) -> _Refit:
    """The models of a resample under multiple imputation: ``m`` chained equations fitted on
    the resample, the majority-rule selection and Rubin's-rules models on its completed
    sets (``study.imputed``). Scored at the linear predictor averaged over its completed
    sets (apparent) and over the study's completed training sets (``originals``, test)."""
    from toolkit.study.imputed import averaged, impute_cohort, study_models

    settings = config.validation
    seed = int(np.random.SeedSequence([settings.imputation_seed, number]).generate_state(1)[0])
    try:
        cohort = impute_cohort(config, incomplete, m=settings.m, seed=seed)
    except ValueError as error:
        raise _ImputationError(str(error)) from error
    models = study_models(cohort.completed, config).models
    on_resample, on_original = averaged(models, cohort.completed), averaged(models, originals)
    return _Refit(signature, models, cohort.completed[0], originals[0], on_resample, on_original)


def _compare(refit: _Refit, config: StudyConfig) -> tuple[Value, ...]:
    apparent = evaluate(refit.on_resample, refit.resample, config)
    test = evaluate(refit.on_original, refit.original, config)
    return tuple(
        Value(model, metric, horizon, value, test[model, metric, horizon])
        for (model, metric, horizon), value in apparent.items()
    )


def evaluate(
    models: Mapping[str, FittedModel], frame: pd.DataFrame, config: StudyConfig
) -> dict[tuple[str, str, float], float]:
    """Every statistic of :data:`METRICS` of each model on the patients of ``frame``.

    ``models`` are ``FittedModel`` or, under multiple imputation,
    ``study.imputed.AveragedModel`` (predictions at the averaged linear predictor).

    Keys are (model, metric, horizon), the horizon NaN for the C-index and the
    slope; a horizon beyond the frame's last follow-up has NaN values. The
    calibration RMSE is the validate stage's (``stats.calibration.calibrate``'s
    grouped RMSE, ``validation.calibration_groups`` groups).
    """
    from toolkit.stats.calibration import calibration_slope
    from toolkit.stats.concordance import harrell

    times = list(config.validation.times)
    t, e = frame["time"].to_numpy(float), frame["event"].to_numpy(float)
    out: dict[tuple[str, str, float], float] = {}
    for name in MODELS:
        lp = models[name].linear_predictor(frame)
        survival = models[name].survival_at(lp, times)  # survival(frame, times), lp computed once
        out[name, "c_index", np.nan] = harrell(t, e, lp).c
        out[name, "calibration_slope", np.nan] = calibration_slope(t, e, lp).slope
        brier = _brier(t, e, survival, times)
        n_groups = config.validation.calibration_groups
        for j, horizon in enumerate(times):
            out[name, "brier", horizon], out[name, "ipa", horizon] = brier[j]
            out[name, "calibration_rmse", horizon] = _rmse(t, e, survival[:, j], horizon, n_groups)
    return out


def _rmse(t, e, survival, horizon: float, n_groups: int) -> float:
    """The grouped calibration RMSE at ``horizon``; NaN beyond the last follow-up."""
    from toolkit.stats.calibration import calibration_groups, grouped_rmse

    if horizon > t.max():
        return np.nan
    return grouped_rmse(calibration_groups(t, e, survival, horizon, n_groups))


def _brier(t, e, survival, times) -> list[tuple[float, float]]:
    """(Brier, IPA) at each horizon; NaN at those beyond the last follow-up."""
    from toolkit.stats.brier import brier_score

    within = [j for j, h in enumerate(times) if h <= t.max()]
    result = brier_score(t, e, survival[:, within], [times[j] for j in within])
    out = [(np.nan, np.nan)] * len(times)
    for k, j in enumerate(within):
        out[j] = (float(result.brier[k]), float(result.ipa[k]))
    return out


def run_replicates(
    data: TrainingData,
    numbers: Iterable[int],
    config: StudyConfig,
    client=None,
    advance: Callable[[], None] = lambda: None,
) -> list[Replicate]:
    """:func:`replicate` of each resample number, in number order.

    With a ``distributed.Client`` the resamples fan out over its workers (the
    training data scattered to each once); without one they run here. Either
    way each resample's record is the same (its seed is its number).
    ``advance()`` is called as each resample finishes (a progress bar's).
    """
    numbers = list(numbers)
    if client is None:
        out = []
        for number in numbers:
            out.append(replicate(data, number, config))
            advance()
        return out
    from distributed import as_completed

    # hash=False: a key of this call's own. Scattered under the data's hash, a second call
    # with the same data on the same client got the first call's key, whose release as the
    # first call returned cancelled the second call's resamples ("lost dependencies")
    shared = client.scatter(data, broadcast=True, hash=False)
    futures = client.map(replicate, [shared] * len(numbers), numbers, config=config, pure=False)
    out = []
    for future in as_completed(futures):
        out.append(future.result())
        advance()
    return sorted(out, key=lambda r: r.number)


_KEYS = ["model", "metric", "horizon"]


def summary(original: dict[tuple[str, str, float], float], replicates: Sequence[Replicate]):
    """Per model, statistic and horizon: apparent, optimism and optimism-corrected values.

    Columns (``rms::validate``'s, renamed): ``apparent`` (the study's model on the
    training set: index.orig), ``training`` and ``test`` (means over the resamples
    of the refitted models on their resample and on the training set), ``optimism``
    (mean of apparent - test over the resamples giving both), ``corrected``
    (apparent - optimism) and ``n`` (those resamples).
    """
    rows = pd.DataFrame(
        [
            {"model": v.model, "metric": v.metric, "horizon": v.horizon, **_pair(v)}
            for r in replicates
            if r.used
            for v in r.values
        ],
        columns=[*_KEYS, "training", "test", "difference"],
    )
    grouped = rows.groupby(_KEYS, sort=False, dropna=False)
    table = pd.DataFrame(
        [
            {"model": m, "metric": k, "horizon": h, "apparent": float(value)}
            for (m, k, h), value in original.items()
        ]
    )
    means = grouped[["training", "test"]].mean().reset_index()
    optimism = grouped["difference"].agg(optimism="mean", n="count").reset_index()
    table = table.merge(means, on=_KEYS, how="left").merge(optimism, on=_KEYS, how="left")
    table["n"] = table["n"].fillna(0).astype(int)
    table["corrected"] = table["apparent"] - table["optimism"]
    return table[[*_KEYS, "apparent", "training", "test", "optimism", "corrected", "n"]]


def _pair(value: Value) -> dict[str, float]:
    """A value's columns; the difference only where both are finite (NaN otherwise)."""
    both = np.isfinite(value.apparent) and np.isfinite(value.test)
    difference = value.apparent - value.test if both else np.nan
    return {"training": value.apparent, "test": value.test, "difference": difference}


def replicate_values(replicates: Sequence[Replicate]) -> pd.DataFrame:
    """Every value of every used resample, long: replicate, model, metric, horizon,
    apparent, test."""
    return pd.DataFrame(
        [
            {"replicate": r.number, "model": v.model, "metric": v.metric, "horizon": v.horizon}
            | {"apparent": v.apparent, "test": v.test}
            for r in replicates
            for v in r.values
        ],
        columns=["replicate", *_KEYS, "apparent", "test"],
    )


def replicate_table(replicates: Sequence[Replicate]) -> pd.DataFrame:
    """One row per resample: number, used, reason, what it selected, its notes."""
    return pd.DataFrame(
        {
            "replicate": [r.number for r in replicates],
            "used": [r.used for r in replicates],
            "reason": [r.reason for r in replicates],
            "signature_features": [", ".join(r.features) for r in replicates],
            "clinical": [", ".join(r.clinical) for r in replicates],
            "integrated": [", ".join(r.integrated) for r in replicates],
            "notes": ["; ".join(r.notes) for r in replicates],
        }
    )


def selection_stability(
    replicates: Sequence[Replicate],
    signature: Sequence[str],
    models: dict[str, Sequence[str]],
    variables: Sequence[str],
) -> pd.DataFrame:
    """How often each deep feature and each clinical variable was selected.

    Rows: every deep feature selected in at least one used resample or in the
    study's ``signature`` (model ``signature``), and every clinical candidate
    ``variables`` for the ``clinical`` and ``integrated`` models (whose study
    variables are ``models``). ``fraction`` = ``n_selected`` / ``n_used``.
    Deep features by decreasing fraction, then by name.
    """
    used = [r for r in replicates if r.used]
    counts = pd.Series([f for r in used for f in r.features], dtype=object).value_counts()
    deep = sorted(set(counts.index) | set(signature), key=lambda f: (-counts.get(f, 0), f))
    rows = [("deep feature", f, "signature", int(counts.get(f, 0)), f in signature) for f in deep]
    for model in ("clinical", "integrated"):
        chosen = [getattr(r, model) for r in used]
        for v in variables:
            selected = sum(v in c for c in chosen)
            rows.append(("clinical variable", v, model, selected, v in models[model]))
    table = pd.DataFrame(rows, columns=["kind", "name", "model", "n_selected", "in_study_model"])
    table.insert(4, "n_used", len(used))
    table.insert(5, "fraction", table["n_selected"] / max(len(used), 1))
    return table


def dropped(replicates: Sequence[Replicate]) -> pd.DataFrame:
    """The dropped resamples' reasons with their counts, most frequent first."""
    reasons = pd.Series([r.reason for r in replicates if not r.used], dtype=object)
    counts = reasons.value_counts()
    return pd.DataFrame({"reason": counts.index.astype(str), "n": counts.to_numpy(int)})
