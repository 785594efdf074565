"""The locked model bundle, ``STUDY_DIR/model/``: everything a new cohort is scored with.

``model/model.json`` is the manifest (``format = "sigkit-model"``, ``version``
:data:`VERSION`). It records the study.toml as written (the variables' definitions,
the imaging settings), the preprocessing settings, the network weights' origin and
SHA-256, the risk groups' training cutoff, the horizons, the sigkit version and the
hashes of the training data, and it names the files beside it with their SHA-256:

``signature.json``
    the deep-learning signature (``contracts.SignatureSpec``: features, coefficients,
    means, scales).
``cox_<model>.json``
    each final Cox model (``signature``, ``clinical``, ``integrated``): models.json's
    ``contracts.CoxModel`` (terms, levels, coefficients, baseline survival at the
    horizons), the coefficients' covariance, the baseline hazard's curve terms at every
    event time (:class:`BaselineHazard`) and the training range of each numeric term.
``nomogram_<model>.json``
    the clinical and integrated nomograms' points (``contracts.NomogramSpec``).
``MODEL_CARD.md``
    the model card (``toolkit.report.model_card``: intended use, training data,
    predictors, performance, limitations), named in ``files`` as ``model_card``; a bundle
    saved without one has none.
``training_patients.json``
    the training patients' identities, never the raw IDs (:class:`TrainingPatients`):
    the hex SHA-256 of ``f"{salt}:{key}"`` for each patient's ID and for its scans'
    digest (:func:`scan_digest`, the two phase images' content hashes), the salt being
    the training model frame's SHA-256 (``training.model_frame_sha256``), each list
    sorted. ``sigkit apply`` hashes the new cohort's IDs and scans the same way and
    names the patients who match: the same images (they were in the training set: not
    an external validation, a label of every output) or only a training patient's ID
    (IDs reused by another site, or the patient re-imaged: a warning). The salt,
    recorded beside the hashes, only keeps one bundle's hashes from matching another's;
    IDs of a known pattern (P001, P002, ...) can still be tried one by one.
``case_mix.parquet`` (unless study.toml's ``[bundle] case_mix = false``)
    **patient-level data, de-identified**: one row per training patient with the
    nomograms' variables as the study coded them and the signature score, nothing else
    (no ID, no outcome, no set or centre; rows sorted by their values, so that their
    order says nothing of the IDs). ``sigkit apply`` fits Debray's membership models on
    it (the case-mix difference, ``study.transport``). A bundle to be shared where no
    patient-level data may go is written with ``case_mix = false``; apply then reports
    the training mean of the linear predictor only.

``imputation.json`` (a study run under multiple imputation only)
    the covariate-only imputer that completes a new cohort's model variables ``m``
    times (``stats.imputation.ChainedImputation.to_json``: the PMM models with their
    donors, the training patients' observed values without identifiers). The
    ``cox_<model>.json`` files then hold the pooled model and each imputation's fit
    (:class:`PooledCox`), and the survival's CI pools the imputations by Rubin's rules.
    Bundles of :data:`READS` are read; version 1 had no multiple imputation.

:meth:`ModelBundle.load` reads ``model/`` alone (no other file of the study) and
refuses a file whose hash differs from the manifest's. :meth:`ModelBundle.predict`
scores patients with the frozen models: the signature, each nomogram's points,
linear predictor and predicted survival at each horizon with its 95% CI, and the
risk group at the training cutoff. The survival and its CI are those of
``survfit(coxph_fit, newdata)`` (survival 3.5-3, default ``conf.type = "log"``): the
standard error needs only the curve terms, the coefficients, their means and
covariance (``toolkit.stats._coxsurv``), so the bundle carries those instead of the
training data.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from toolkit._version import __version__
from toolkit.artifacts import atomic_path, file_hash, write_json, write_parquet
from toolkit.config import StudyConfig, study_from_mapping
from toolkit.contracts import CoxModel, NomogramSpec, SignatureSpec
from toolkit.stats._coxsurv import (
    CurveTerms,
    PredictedSurvival,
    confidence_limits,
    curve_std_err,
    curve_terms,
    terms_at,
)
from toolkit.stats.imputation import ChainedImputation
from toolkit.stats.wald import quantile
from toolkit.study.nomograms import FittedModel

FORMAT = "sigkit-model"
PATIENTS = "training_patients"
CASE_MIX = "case_mix"
VERSION = 2
READS = (1, 2)  # version 1: no multiple imputation
IMPUTATION = "imputation"  # the manifest's files key of imputation.json
MANIFEST = "model.json"
MODELS = ("signature", "clinical", "integrated")
NOMOGRAMS = ("clinical", "integrated")
CONF_INT = 0.95
RISK_MODEL = "integrated"
MODEL_CARD = "model_card"  # the manifest's files key of MODEL_CARD.md
MODEL_CARD_FILE = "MODEL_CARD.md"


class BundleError(ValueError):
    """A model folder that is not a readable sigkit model bundle of this version."""


@dataclass(frozen=True, eq=False)
class BaselineHazard:
    """A Cox fit's baseline hazard as survfit needs it, at each distinct event time t_k.

    For covariates at the fit's means: the cumulative hazard H(t_k), its variance term
    sum dV and the cumulated weighted means sum dXbar (one column per term), with the
    first observed time of the training data (the formulas of ``toolkit.stats._coxsurv``).
    """

    time: np.ndarray
    cumulative_hazard: np.ndarray
    variance: np.ndarray
    xbar: np.ndarray
    first_time: float

    @classmethod
    def of_fit(cls, fit) -> BaselineHazard:
        """The curve terms of an unstratified, right-censored ``cox.CoxFit``."""
        if fit.stratified:
            raise BundleError("a stratified Cox model cannot be bundled yet")
        fit.require_plain("a model bundle")
        terms = curve_terms(fit.risk_sets, fit.coef)
        return cls(
            time=terms.time,
            cumulative_hazard=terms.cumhaz,
            variance=terms.varhaz,
            xbar=terms.xbar,
            first_time=float(terms.first_time[0]),
        )

    def curve_terms(self) -> CurveTerms:
        return CurveTerms(
            time=self.time,
            stratum=np.zeros(len(self.time), dtype=np.int64),
            cumhaz=self.cumulative_hazard,
            varhaz=self.variance,
            xbar=self.xbar,
            first_time=np.array([self.first_time]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time.tolist(),
            "cumulative_hazard": self.cumulative_hazard.tolist(),
            "variance": self.variance.tolist(),
            "xbar": self.xbar.tolist(),
            "first_time": self.first_time,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], n_terms: int) -> BaselineHazard:
        xbar = np.asarray(data["xbar"], dtype=float).reshape(-1, n_terms)
        return cls(
            time=np.asarray(data["time"], dtype=float),
            cumulative_hazard=np.asarray(data["cumulative_hazard"], dtype=float),
            variance=np.asarray(data["variance"], dtype=float),
            xbar=xbar,
            first_time=float(data["first_time"]),
        )


@dataclass(frozen=True)
class Survival:
    """Predicted survival of rows at the horizons, with survfit's log-scale SE and limits."""

    linear_predictor: np.ndarray
    survival: np.ndarray
    std_err: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


@dataclass(frozen=True, eq=False)
class BundledCox:
    """One final Cox model as the bundle keeps it.

    ``model`` is the study's ``FittedModel`` (models.json's record: its linear predictor
    and survival are the study's, to the bit); ``covariance`` the coefficients' variance
    (coxph's ``fit$var``), ``baseline`` its :class:`BaselineHazard`, ``ranges`` each
    numeric term's (min, max) over the training patients.
    """

    model: FittedModel
    covariance: np.ndarray
    baseline: BaselineHazard
    ranges: Mapping[str, tuple[float, float]]

    def predict(self, frame: pd.DataFrame, times) -> Survival:
        """``summary(survfit(fit, newdata = frame), times)``'s surv, std.err of the cumulative
        hazard and log limits at :data:`CONF_INT`; ``times`` are horizons of the model's
        baseline survival. An unseen level raises ``nomograms.ModelError`` naming patients."""
        t = np.asarray(times, dtype=float)
        x = self.model.design(frame)
        survival = self.model.survival(frame, t)
        terms = self.baseline.curve_terms()
        zeros = np.zeros(len(x), dtype=np.int64)
        coef, means = np.asarray(self.model.coef), np.asarray(self.model.means)
        std_err = curve_std_err(terms, coef, means, self.covariance, x, t, zeros)
        lower, upper = confidence_limits(survival, std_err, terms, t, zeros, "log", CONF_INT)
        return Survival(self.model.linear_predictor(frame), survival, std_err, lower, upper)

    def survival_terms(self, times) -> dict[str, Any]:
        """What :meth:`predict` needs of the model to give one row's survival and log CI at
        ``times`` (the study report's calculator computes from these, JSON-ready).

        With the row's design ``x`` (``terms``: variable, level; a level's column is 1 when
        the variable has that level), ``lp = x'coef``, ``r = exp((x - means)'coef)``, at each
        time ``S = baseline_survival ** exp(lp - lp_centre)``, ``d = H (x - means) - xbar``,
        ``se = r sqrt(variance + d' covariance d)`` and the limits ``S exp(-/+ z se)`` (upper
        at most 1), both 1 at a time before ``first_time``: ``predict``'s formula, with the
        baseline hazard's curve terms looked up at the times by the same function.
        """
        t = np.asarray(times, dtype=float)
        cumhaz, variance, xbar = terms_at(self.baseline.curve_terms(), t)
        return {
            "terms": [
                {"variable": term.variable, "level": term.level} for term in self.model.terms
            ],
            "coef": list(self.model.coef),
            "means": list(self.model.means),
            "lp_centre": self.model.lp_centre,
            "covariance": self.covariance.tolist(),
            "first_time": self.baseline.first_time,
            "z": quantile(CONF_INT),
            "conf_int": CONF_INT,
            "times": [
                {"time": float(time), "baseline_survival": float(base), "cumulative_hazard": h}
                | {"variance": v, "xbar": list(x)}
                for time, base, h, v, x in zip(
                    t,
                    self.model.baseline_at(t),
                    cumhaz.tolist(),
                    variance.tolist(),
                    xbar.tolist(),
                    strict=True,
                )
            ],
            "training_range": {k: list(v) for k, v in self.ranges.items()},
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model.to_json(),
            "covariance": self.covariance.tolist(),
            "baseline_hazard": self.baseline.to_json(),
            "training_range": {k: list(v) for k, v in self.ranges.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BundledCox:
        model = FittedModel.from_json(data["model"])
        p = len(model.terms)
        return cls(
            model=model,
            covariance=np.asarray(data["covariance"], dtype=float).reshape(p, p),
            baseline=BaselineHazard.from_json(data["baseline_hazard"], p),
            ranges={k: (float(v[0]), float(v[1])) for k, v in data["training_range"].items()},
        )


@dataclass(frozen=True, eq=False)
class PooledCox:
    """One final Cox model under multiple imputation, as the bundle keeps it.

    ``model`` is the pooled model of models.json (Rubin's coefficients,
    ``study.imputed.fit_pooled``): the linear predictor, the points and the risk group
    are computed from it, averaged over a patient's ``m`` completions (as the study's
    validation averaged them, ``imputed.AveragedModel``). ``fits`` are the ``m``
    per-imputation Cox fits the pooled coefficients came from (imputation ``j``'s
    completed training set), each a :class:`BundledCox` with its covariance and
    baseline hazard; ``ranges`` each numeric term's (min, max) over the training
    patients' observed values.

    Predicted survival and its 95% CI pool the imputations' predictions (Rubin's rules
    on the log cumulative hazard, ``stats.pooling.pool_survival``; Marshall et al. 2009):
    patient ``i``'s completion ``j`` is predicted by fit ``j``, as ``survfit(fit_j,
    newdata = completion_j)``, and the ``m`` curves are pooled per cell, which is
    ``mice::pool.scalar`` of them. The limits are therefore log-log limits with a t
    quantile, and the point survival ``exp(-exp(mean_j log H_ij))``, not the pooled
    model's ``S0(t) ** exp(lp - centre)`` that the study's calibration used; the two
    differ by the spread of the fits (for a complete patient, by the between-imputation
    variation of the training fits only).
    """

    model: FittedModel
    fits: tuple[BundledCox, ...]
    ranges: Mapping[str, tuple[float, float]]

    @property
    def m(self) -> int:
        return len(self.fits)

    def linear_predictor(self, completed) -> np.ndarray:
        """The pooled model's linear predictor averaged over the rows' completions."""
        return np.mean([self.model.linear_predictor(c) for c in completed], axis=0)

    def predict(self, completed, times) -> Survival:
        """``completed``: the ``m`` completions of the same rows (imputation ``j``'s first).
        ``std_err`` is the pooled SE of log H (``sqrt(total)``), NaN before the first
        event time."""
        from toolkit.stats.pooling import pool_survival

        if len(completed) != self.m:
            raise BundleError(f"{len(completed)} completions for a model of {self.m} imputations")
        t = np.asarray(times, dtype=float)
        curves = []
        for fit, rows in zip(self.fits, completed, strict=True):
            one = fit.predict(rows, t)
            with np.errstate(divide="ignore"):
                cumhaz = -np.log(one.survival)
            curves.append(
                PredictedSurvival(
                    t, one.survival, one.std_err, one.lower, one.upper, cumhaz, "log", CONF_INT
                )
            )
        pooled = pool_survival(curves, CONF_INT)
        return Survival(
            self.linear_predictor(completed),
            pooled.survival,
            np.sqrt(pooled.total),
            pooled.lower,
            pooled.upper,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model.to_json(),
            "training_range": {k: list(v) for k, v in self.ranges.items()},
            "imputations": [fit.to_json() for fit in self.fits],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PooledCox:
        return cls(
            model=FittedModel.from_json(data["model"]),
            fits=tuple(BundledCox.from_json(f) for f in data["imputations"]),
            ranges={k: (float(v[0]), float(v[1])) for k, v in data["training_range"].items()},
        )


@dataclass(frozen=True)
class RiskGroups:
    """The risk groups as the study split them: ``high`` when ``model``'s linear predictor
    (uncentred) is above ``cutoff``, the training median (``study.validate.risk_groups``)."""

    model: str
    cutoff: float

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "score": "linear predictor", "cutoff": self.cutoff}

    def group(self, linear_predictor: np.ndarray) -> np.ndarray:
        return np.where(np.asarray(linear_predictor) > self.cutoff, "high", "low")


def patient_hash(salt: str, key: str) -> str:
    """The hex SHA-256 of ``f"{salt}:{key}"`` (UTF-8): a patient's ID, or its scans' digest
    (:func:`scan_digest`), as the bundle keeps it."""
    return hashlib.sha256(f"{salt}:{key}".encode()).hexdigest()


def _content_hash(path: Path) -> str:
    """A file's SHA-256; a folder's (a DICOM series) over its files' names and hashes."""
    if path.is_file():
        return file_hash(path)
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{item.relative_to(path).as_posix()}:{file_hash(item)};".encode())
    return digest.hexdigest()


def scan_digest(arterial: str | os.PathLike[str], portal: str | os.PathLike[str]) -> str:
    """The SHA-256 of a patient's two phase images' content hashes (``arterial:portal``):
    the same scans give the same digest whatever the patient's ID or the files' names."""
    both = f"{_content_hash(Path(arterial))}:{_content_hash(Path(portal))}"
    return hashlib.sha256(both.encode()).hexdigest()


def scan_digests(manifest, patients) -> dict[str, str]:
    """Each of ``patients``' :func:`scan_digest` from an ``imaging.manifest.Manifest``."""
    wanted = {str(p) for p in patients}
    return {
        str(row["patient"]): scan_digest(row["arterial"], row["portal"])
        for row in manifest.rows()
        if str(row["patient"]) in wanted
    }


@dataclass(frozen=True)
class TrainingPatients:
    """The training patients' identities, salted and hashed (:func:`patient_hash`), each
    list sorted: ``ids`` of their IDs, ``scans`` of their :func:`scan_digest`.

    ``salt`` is the training model frame's SHA-256 (``training.model_frame_sha256``).
    """

    salt: str
    ids: tuple[str, ...]
    scans: tuple[str, ...]

    @classmethod
    def of(cls, salt: str, patients, scans: Mapping[str, str]) -> TrainingPatients:
        ids = tuple(sorted(patient_hash(salt, str(p)) for p in patients))
        return cls(salt, ids, tuple(sorted(patient_hash(salt, scans[str(p)]) for p in patients)))

    def matches(self, patients, scans: Mapping[str, str]) -> dict[str, str]:
        """Those of ``patients`` (IDs, in their order) matching a training patient, with
        what matched: ``"images"`` (the same scans), ``"images and ID"``, or ``"ID"``
        (a training patient's ID with other images: IDs reused, or the patient re-imaged).
        ``scans`` are the cohort's digests (a patient without one is matched on its ID)."""
        ids, images = set(self.ids), set(self.scans)
        out = {}
        for p in map(str, patients):
            same_id = patient_hash(self.salt, p) in ids
            same_scan = p in scans and patient_hash(self.salt, scans[p]) in images
            if same_id or same_scan:
                out[p] = "ID" if not same_scan else "images and ID" if same_id else "images"
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "hash": "sha256(salt + ':' + key), hex; key: the patient ID, or its scan digest",
            "scan_digest": "sha256(sha256(arterial) + ':' + sha256(portal)), hex",
            "salt": self.salt,
            "ids": list(self.ids),
            "scans": list(self.scans),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrainingPatients:
        return cls(
            str(data["salt"]),
            tuple(str(h) for h in data["ids"]),
            tuple(str(h) for h in data["scans"]),
        )


def case_mix_rows(train: pd.DataFrame, variables) -> pd.DataFrame:
    """The de-identified training rows: ``variables`` and ``signature`` only, the index
    dropped and the rows sorted by their values (their order carries no ID)."""
    columns = [*variables, "signature"]
    rows = train[columns].reset_index(drop=True)
    return rows.sort_values(columns, kind="mergesort").reset_index(drop=True)


@dataclass(frozen=True, eq=False)
class ModelBundle:
    """The locked model of one study run (module docstring); ``sha256`` names it.

    ``weights`` holds the network weights' ``origin`` and ``sha256``; ``training`` the
    training data's hashes and counts; ``preprocessing`` the
    ``imaging.preprocess.PreprocessSettings`` the crops were made with (``as_dict``);
    ``provenance`` the bundle stage's block (its key, as every study artifact's);
    ``model_card`` the text of MODEL_CARD.md ("" when the bundle has none).
    ``training_patients`` the salted hashes of the training patients' IDs (``None``: a
    bundle without them), ``case_mix`` the de-identified training rows (``None``: left
    out). ``imputation`` (``None``: a complete-data study): under multiple imputation the
    covariate-only imputer of the model's variables (``stats.imputation``, fitted on the
    training rows without the outcome, which a new patient does not have) that completes
    a new cohort ``m`` times; ``models`` are then :class:`PooledCox`.
    """

    study: str
    synthetic: bool
    time_unit: str
    horizons: tuple[float, ...]
    study_toml: Mapping[str, Any]
    preprocessing: Mapping[str, Any]
    weights: Mapping[str, str]
    training: Mapping[str, Any]
    signature: SignatureSpec
    models: Mapping[str, BundledCox | PooledCox]
    nomograms: Mapping[str, NomogramSpec]
    risk_groups: RiskGroups
    sigkit_version: str = __version__
    provenance: Mapping[str, Any] | None = None
    sha256: str = ""
    model_card: str = ""
    training_patients: TrainingPatients | None = None
    case_mix: pd.DataFrame | None = None
    imputation: ChainedImputation | None = None

    @property
    def config(self) -> StudyConfig:
        """The training study.toml, validated (the variables' definitions, the imaging)."""
        return study_from_mapping(self.study_toml, "model.json's study_toml")

    @property
    def variables(self) -> list[str]:
        """The clinical variables the nomograms use, in study.toml's order."""
        used = {v for m in NOMOGRAMS for v in self.models[m].model.variables}
        return [v.name for v in self.config.variables if v.name in used]

    def training_levels(self, variable: str) -> tuple[str, ...] | None:
        """The levels a categorical model variable had in training (None: numeric)."""
        for name in NOMOGRAMS:
            levels = self.models[name].model.levels
            if variable in levels:
                return tuple(levels[variable])
        return None

    def preprocess_settings(self, **overrides: Any):
        """The crops' settings as the study made them (``PreprocessSettings``)."""
        from toolkit.imaging.preprocess import PreprocessSettings
        from toolkit.imaging.register import RegistrationSettings

        values = dict(self.preprocessing)
        registration = {
            k: tuple(v) if isinstance(v, list) else v
            for k, v in dict(values.pop("registration")).items()
        }
        values["readers"] = tuple(values["readers"])
        return PreprocessSettings(
            **(values | overrides), registration=RegistrationSettings(**registration)
        )

    # ------------------------------------------------------------------ scoring

    def score_signature(self, primary_features: pd.DataFrame) -> np.ndarray:
        """The signature of each row of a features table (the primary reader's rows)."""
        from toolkit.study.signature import Signature

        return Signature.from_spec(self.signature).score(primary_features)

    def complete(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, ...]:
        """The ``m`` completions of ``frame`` (its model variables filled in by the bundle's
        imputation, every other column as it is); ``(frame,)`` for a complete-data model.

        Deterministic (the imputation's seed) for the same rows, but a completion depends
        on every row's values: complete a cohort once and look its rows up by index.
        """
        if self.imputation is None:
            return (frame,)
        columns = list(self.imputation.variables)
        out = []
        for values in self.imputation.transform(frame[columns]):
            completed = frame.copy()
            completed[columns] = values.loc[frame.index, columns]
            out.append(completed)
        return tuple(out)

    def scoring_models(self, completed) -> dict[str, Any]:
        """Each locked model as the study's validation functions take it (``linear_predictor``
        and ``survival`` of rows): the ``FittedModel``, or under multiple imputation the
        pooled one averaged over ``completed`` (``imputed.AveragedModel``, rows looked up
        by index)."""
        if self.imputation is None:
            return {m: self.models[m].model for m in MODELS}
        from toolkit.study.imputed import AveragedModel

        return {m: AveragedModel(self.models[m].model, tuple(completed)) for m in MODELS}

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """predictions.csv's columns for each row of ``frame`` (index: patient; columns:
        the nomograms' variables as the study codes them and ``signature``).

        ``signature``; per nomogram ``<m>_points`` (total points), ``<m>_lp`` (the linear
        predictor, uncentred as models.json's), ``<m>_survival_<t>`` with ``_lower`` and
        ``_upper`` (95% log CI) at each horizon t; ``risk_group`` (high/low) of the
        integrated linear predictor at the training cutoff.

        Under multiple imputation ``frame`` may miss model values: it is completed ``m``
        times (:meth:`complete`), the points and linear predictor are averaged over the
        completions, the survival and its CI pooled by Rubin's rules
        (:meth:`PooledCox.predict`: log-log limits), and ``n_imputed`` counts the
        patient's imputed model values (0: the patient was complete).
        """
        from toolkit.stats.nomogram import Nomogram

        completed = self.complete(frame)
        out = pd.DataFrame(index=frame.index)
        out["signature"] = frame["signature"].to_numpy(dtype=float)
        for name in NOMOGRAMS:
            bundled = self.models[name]
            nomogram = Nomogram.from_spec(self.nomograms[name])
            points = [
                nomogram.total_points({v: _values(c[v]) for v in bundled.model.variables})
                for c in completed
            ]
            out[f"{name}_points"] = np.mean(points, axis=0)
            if isinstance(bundled, PooledCox):
                predicted = bundled.predict(completed, self.horizons)
            else:
                predicted = bundled.predict(frame, self.horizons)
            out[f"{name}_lp"] = predicted.linear_predictor
            for j, t in enumerate(self.horizons):
                column = f"{name}_survival_{t:g}"
                out[column] = predicted.survival[:, j]
                out[f"{column}_lower"] = predicted.lower[:, j]
                out[f"{column}_upper"] = predicted.upper[:, j]
        out["risk_group"] = self.risk_groups.group(out[f"{self.risk_groups.model}_lp"])
        if self.imputation is not None:
            out["n_imputed"] = frame[self.variables].isna().sum(axis=1).to_numpy(dtype=int)
        return out

    def out_of_range(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Each patient's numeric model value outside its training range: patient, variable,
        value, min, max (one row each; the signature included)."""
        rows = []
        for variable, (low, high) in self._ranges().items():
            values = frame[variable].to_numpy(dtype=float)
            for patient, value in zip(frame.index, values, strict=True):
                if value < low or value > high:
                    rows.append(
                        {"patient": patient, "variable": variable, "value": value}
                        | {"min": low, "max": high}
                    )
        return pd.DataFrame(rows, columns=["patient", "variable", "value", "min", "max"])

    def _ranges(self) -> dict[str, tuple[float, float]]:
        ranges: dict[str, tuple[float, float]] = {}
        for name in NOMOGRAMS:
            ranges.update(self.models[name].ranges)
        return ranges

    # ------------------------------------------------------------------ files

    def manifest(self, files: Mapping[str, str]) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "sigkit_version": self.sigkit_version,
            "study": self.study,
            "synthetic": self.synthetic,
            "time_unit": self.time_unit,
            "horizons": list(self.horizons),
            "weights": dict(self.weights),
            "preprocessing": dict(self.preprocessing),
            "risk_groups": self.risk_groups.to_json(),
            "training": dict(self.training),
            "study_toml": dict(self.study_toml),
            "files": dict(files),
            **({} if self.provenance is None else {"provenance": dict(self.provenance)}),
        }

    def documents(self) -> dict[str, dict[str, Any]]:
        """Each file the manifest names (file name -> its JSON)."""
        docs = {"signature.json": self.signature.to_json()}
        docs.update({f"cox_{m}.json": self.models[m].to_json() for m in MODELS})
        docs.update({f"nomogram_{m}.json": self.nomograms[m].to_json() for m in NOMOGRAMS})
        if self.training_patients is not None:
            docs[f"{PATIENTS}.json"] = self.training_patients.to_json()
        if self.imputation is not None:
            docs[f"{IMPUTATION}.json"] = self.imputation.to_json()
        return docs

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the bundle into ``directory`` (each file atomically, the manifest last);
        returns the manifest's path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        files = {}
        for name, data in self.documents().items():
            write_json(directory / name, data)
            files[name.removesuffix(".json")] = {
                "path": name,
                "sha256": file_hash(directory / name),
            }
        if self.model_card:
            with atomic_path(directory / MODEL_CARD_FILE) as temporary:
                temporary.write_text(self.model_card, encoding="utf-8")
            card = {"path": MODEL_CARD_FILE, "sha256": file_hash(directory / MODEL_CARD_FILE)}
            files[MODEL_CARD] = card
        if self.imputation is None:  # a previous imputed run's: not this model's
            (directory / f"{IMPUTATION}.json").unlink(missing_ok=True)
        case_mix = directory / f"{CASE_MIX}.parquet"
        if self.case_mix is None:
            case_mix.unlink(missing_ok=True)  # a previous run's: the folder holds what it names
        else:
            write_parquet(case_mix, self.case_mix)
            files[CASE_MIX] = {"path": case_mix.name, "sha256": file_hash(case_mix)}
        return write_json(directory / MANIFEST, self.manifest(files))

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> ModelBundle:
        """The bundle in ``directory`` (its model.json and the files it names, nothing else).

        Raises ``BundleError`` when model.json is absent or of another format or version,
        or a named file is absent or differs from its recorded SHA-256.
        """
        directory = Path(directory)
        path = directory / MANIFEST
        if not path.is_file():
            raise BundleError(f"{directory}: no {MANIFEST}; is it a study's model/ folder?")
        manifest = _read(path)
        if manifest.get("format") != FORMAT or manifest.get("version") not in READS:
            raise BundleError(
                f"{path}: format {manifest.get('format')!r} version {manifest.get('version')!r};"
                f" this sigkit ({__version__}) reads {FORMAT!r} versions "
                f"{', '.join(map(str, READS))}"
            )
        entries = dict(manifest["files"])
        case_mix = entries.pop(CASE_MIX, None)
        docs = {key: _checked(directory, key, entry) for key, entry in entries.items()}
        card = docs.pop(MODEL_CARD, "")
        risk = manifest["risk_groups"]
        imputation = docs.pop(IMPUTATION, None)
        cox = PooledCox if imputation is not None else BundledCox
        return cls(
            study=str(manifest["study"]),
            synthetic=bool(manifest["synthetic"]),
            time_unit=str(manifest["time_unit"]),
            horizons=tuple(float(t) for t in manifest["horizons"]),
            study_toml=manifest["study_toml"],
            preprocessing=manifest["preprocessing"],
            weights=manifest["weights"],
            training=manifest["training"],
            signature=SignatureSpec.from_json(docs["signature"]),
            models={m: cox.from_json(docs[f"cox_{m}"]) for m in MODELS},
            nomograms={m: NomogramSpec.from_json(docs[f"nomogram_{m}"]) for m in NOMOGRAMS},
            risk_groups=RiskGroups(str(risk["model"]), float(risk["cutoff"])),
            sigkit_version=str(manifest["sigkit_version"]),
            provenance=manifest.get("provenance"),
            sha256=file_hash(path),
            model_card=card,
            training_patients=(
                TrainingPatients.from_json(docs[PATIENTS]) if PATIENTS in docs else None
            ),
            case_mix=None if case_mix is None else _case_mix(directory, case_mix),
            imputation=None if imputation is None else ChainedImputation.from_json(imputation),
        )


def _case_mix(directory: Path, entry: Mapping[str, Any]) -> pd.DataFrame:
    path = directory / str(entry["path"])
    _verify(path, CASE_MIX, entry)
    return pd.read_parquet(path).reset_index(drop=True)  # the row numbers, stored as a column


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BundleError(f"{path}: cannot be read as JSON ({error})") from None


def _checked(directory: Path, key: str, entry: Mapping[str, Any]) -> Any:
    """The named file's JSON (MODEL_CARD.md's text), once its SHA-256 is the manifest's."""
    path = directory / str(entry["path"])
    _verify(path, key, entry)
    return path.read_text(encoding="utf-8") if key == MODEL_CARD else _read(path)


def _verify(path: Path, key: str, entry: Mapping[str, Any]) -> None:
    if not path.is_file():
        raise BundleError(f"{path}: named by {MANIFEST} ({key}) but absent")
    if file_hash(path) != entry["sha256"]:
        raise BundleError(
            f"{path}: its SHA-256 differs from the one {MANIFEST} records; the locked model "
            "was changed after it was written"
        )


def _values(column: pd.Series) -> list[Any]:
    """A column as the nomogram takes it: level names of a categorical, else numbers."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return [str(v) for v in column.astype(object)]
    return list(column.to_numpy(dtype=float))


def training_ranges(model: CoxModel, train: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """(min, max) over ``train`` of each numeric variable of ``model``."""
    return {
        v: (float(train[v].min()), float(train[v].max()))
        for v in model.variables
        if v not in model.levels
    }


def frame_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of a table's CSV text (index, columns and values as written)."""
    return hashlib.sha256(frame.to_csv().encode("utf-8")).hexdigest()


def from_study(
    config: StudyConfig,
    models: Mapping[str, FittedModel],
    nomograms: Mapping[str, Any],
    signature: SignatureSpec,
    train: pd.DataFrame,
    cutoff: float,
    weights: Mapping[str, str],
    training: Mapping[str, Any],
    scans: Mapping[str, str],
    completed: Sequence[pd.DataFrame] = (),
) -> ModelBundle:
    """The bundle of a study's final models, refitted once on ``train`` (the training rows
    of the model frame) for what models.json does not keep: the covariance and the
    baseline hazard's curve terms.

    The refit is the models stage's own fit (same rows, same design, Efron ties); a refit
    whose coefficients are not bit for bit models.json's raises ``BundleError``.
    ``nomograms`` are the models stage's ``stats.nomogram.Nomogram`` objects, ``scans``
    each training patient's :func:`scan_digest`. The training patients' salted hashes
    (IDs and scans) are always kept; their de-identified case-mix rows unless
    ``config.bundle.case_mix`` is false.

    Under multiple imputation ``completed`` are the ``m`` completed training model frames:
    each model is a :class:`PooledCox` of its per-imputation refits (a refit set whose
    Rubin's-rules coefficients are not bit for bit models.json's raises ``BundleError``)
    and the bundle gets the covariate-only imputer (:func:`deployment_imputation`).
    ``train`` keeps its missing values (the ranges and case mix are of observed values).
    """
    from toolkit.imaging.preprocess import PreprocessSettings

    bundled: dict[str, BundledCox | PooledCox] = {}
    for name in MODELS:
        model = models[name]
        if not completed:
            fit = _refit(model, train)
            if not np.array_equal(fit.coef, np.asarray(model.coef)):
                raise BundleError(
                    f"model {name!r}: the refit's coefficients differ from models.json"
                )
            bundled[name] = _bundled(model, fit, train)
            continue
        fits = [_refit(model, rows) for rows in completed]
        _same_pooled(name, model, fits)
        own = [
            FittedModel.from_fit(
                model.name, fit, model.variables, dict(model.levels), config.validation.times
            )
            for fit in fits
        ]
        imputations = tuple(map(_bundled, own, fits, completed))
        bundled[name] = PooledCox(model, imputations, training_ranges(model, train))
    study = config.study
    salt = str(training.get("model_frame_sha256") or frame_hash(train))
    used = {v for m in NOMOGRAMS for v in models[m].variables}
    variables = [v.name for v in config.variables if v.name in used]
    return ModelBundle(
        study=study.name,
        synthetic=bool(study.synthetic),
        time_unit=study.time_unit,
        horizons=tuple(float(t) for t in config.validation.times),
        study_toml=config.as_written(),
        # as JSON holds it (lists, not tuples), so that the bundle equals the one read back
        preprocessing=json.loads(json.dumps(PreprocessSettings.from_config(config).as_dict())),
        weights=dict(weights),
        training=dict(training),
        signature=replace(signature, provenance=None),
        models=bundled,
        nomograms={m: nomograms[m].spec() for m in NOMOGRAMS},
        risk_groups=RiskGroups(RISK_MODEL, float(cutoff)),
        training_patients=TrainingPatients.of(salt, train.index, scans),
        case_mix=case_mix_rows(train, variables) if config.bundle.case_mix else None,
        imputation=deployment_imputation(config, train, variables) if completed else None,
    )


def _refit(model: FittedModel, rows: pd.DataFrame):
    """``nomograms.refit`` of ``model``'s terms on ``rows``, its warnings silenced (the fit's
    warnings, monotone likelihood..., are already in the model's note)."""
    import warnings

    from toolkit.study.nomograms import refit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return refit(model, rows)


def _bundled(model: FittedModel, fit, rows: pd.DataFrame) -> BundledCox:
    """``model`` with its fit's covariance and baseline hazard, and its ranges over ``rows``."""
    return BundledCox(model, fit.variance, BaselineHazard.of_fit(fit), training_ranges(model, rows))


def _same_pooled(name: str, model: FittedModel, fits) -> None:
    from toolkit.stats.pooling import pool_cox

    if not np.array_equal(pool_cox(fits).estimate, np.asarray(model.coef)):
        raise BundleError(
            f"model {name!r}: Rubin's rules over the per-imputation refits do not give "
            "models.json's pooled coefficients"
        )


def deployment_imputation(
    config: StudyConfig, train: pd.DataFrame, variables: Sequence[str]
) -> ChainedImputation:
    """The imputer a locked model completes new patients with: chained equations with PMM
    (``stats.imputation``) of the model's ``variables`` and the signature score on the
    training rows ``train`` (missing values kept), **without the outcome**
    (``outcome=False``: a new patient's outcome is unknown when the model is applied),
    with the study's ``m``, iterations and seed. The study's own imputation, which the
    models were fitted on, used the outcome, as White and Royston advise for the analysis;
    this one only completes the predictors of patients to be scored."""
    from toolkit.stats.imputation import fit_chained_equations

    columns = [*variables, "signature"]
    settings = config.validation
    return fit_chained_equations(
        train[columns], m=settings.m, seed=settings.imputation_seed, outcome=False
    )
