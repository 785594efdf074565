"""study.toml schema and the checks of a cohort's manifest and clinical table.

The schema is the contract in docs/contracts.md. Every problem is reported
with the file, the setting or column, and the patients concerned, so a user
can fix the input; nothing is dropped silently: patients left out by the
``missing = "complete-case"`` setting, and values filled in by
``missing = "impute-median-mode"``, are returned as exclusion/imputation
records that the study writes to ``results/tables/exclusions.parquet``.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

TIME_UNITS = ("days", "weeks", "months", "years")
_MAX_LISTED = 10


class StudyConfigError(ValueError):
    """study.toml, the manifest or the clinical table is not usable as given."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class StudySection(_Strict):
    name: str
    synthetic: bool = False
    time_unit: str = "months"
    manifest: str = "manifest.csv"
    clinical: str = "clinical.csv"
    train_sets: list[str] = Field(default_factory=lambda: ["train"], min_length=1)
    validation_sets: list[str] = Field(default_factory=lambda: ["validation"])

    @field_validator("time_unit")
    @classmethod
    def _unit(cls, value: str) -> str:
        if value not in TIME_UNITS:
            raise ValueError(f"time_unit must be one of {', '.join(TIME_UNITS)}; got {value!r}")
        return value

    @field_validator("validation_sets")
    @classmethod
    def _external(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(
                "no external validation set: list at least one set in validation_sets "
                "(the study validates on patients the models never saw)"
            )
        return value

    @model_validator(mode="after")
    def _disjoint(self) -> StudySection:
        both = set(self.train_sets) & set(self.validation_sets)
        if both:
            raise ValueError(f"sets {sorted(both)} are both training and validation sets")
        return self


class SecondaryOutcome(_Strict):
    name: str
    time: str
    event: str


class Outcome(_Strict):
    time: str
    event: str
    label: str = "Overall survival"
    secondary: list[SecondaryOutcome] = Field(default_factory=list)


class Imaging(_Strict):
    phases: list[str] = Field(default_factory=lambda: ["arterial", "portal"], min_length=1)
    readers: list[str] = Field(min_length=1)
    primary_reader: str
    crop_size: int = 224
    zscore: Literal["crop", "roi"] = "crop"
    # "register" would shadow a pydantic BaseModel attribute; the TOML key stays "register"
    register_phases: bool = Field(True, alias="register")

    @model_validator(mode="after")
    def _primary(self) -> Imaging:
        if self.primary_reader not in self.readers:
            raise ValueError(f"primary_reader {self.primary_reader!r} is not in readers")
        repeated = sorted({r for r in self.readers if self.readers.count(r) > 1})
        if repeated:
            raise ValueError(f"readers lists {repeated} more than once")
        return self

    @property
    def reader_order(self) -> tuple[str, ...]:
        """The readers as every stage uses them: the primary reader first, then the
        others sorted by name, so the order written in study.toml changes nothing
        (the signature is ranked and fitted on the primary reader, and the ICC's
        ratings come in this order)."""
        others = sorted(r for r in self.readers if r != self.primary_reader)
        return (self.primary_reader, *others)


class Variable(_Strict):
    """A clinical candidate; numeric ones are categorised at ``cutoffs`` unless
    ``categorise = false`` (then they enter the models as numbers)."""

    name: str
    label: str = ""
    unit: str = ""
    kind: Literal["categorical", "numeric"]
    levels: list[str] = Field(default_factory=list)
    cutoffs: list[float] = Field(default_factory=list)
    categorise: bool = True

    @model_validator(mode="after")
    def _complete(self) -> Variable:
        if self.kind == "categorical" and len(self.levels) < 2:
            raise ValueError(f"variable {self.name!r}: a categorical variable needs >= 2 levels")
        if self.kind == "numeric" and self.categorise and not self.cutoffs:
            raise ValueError(
                f"variable {self.name!r}: numeric with no cutoffs; give cutoffs = [...] to "
                "categorise it at standard cut-offs, or categorise = false to keep it numeric"
            )
        if sorted(self.cutoffs) != list(self.cutoffs):
            raise ValueError(f"variable {self.name!r}: cutoffs must be increasing")
        return self

    def category_labels(self) -> list[str]:
        """Levels of the categorised variable: "<c1", "c1-<c2", ..., ">=ck"."""
        if self.kind == "categorical":
            return list(self.levels)
        c = [f"{v:g}" for v in self.cutoffs]
        inner = [f"{a}-<{b}" for a, b in itertools.pairwise(c)]
        return [f"<{c[0]}", *inner, f">={c[-1]}"]


class Signature(_Strict):
    icc_threshold: float = Field(0.75, ge=-1, le=1)
    icc_type: str = "ICC2"
    mrmr_k: int = Field(30, ge=1)
    l1_ratios: list[float] = Field(default_factory=lambda: [0.1, 0.5, 0.9], min_length=1)
    n_folds: int = Field(5, ge=2)
    penalty: Literal["min", "1se"] = "min"
    seed: int = 0


class Validation(_Strict):
    times: list[float] = Field(default_factory=lambda: [12.0, 24.0, 36.0], min_length=1)
    decision_times: list[float] = Field(default_factory=lambda: [12.0, 24.0])
    n_bootstrap: int = Field(1000, ge=0)
    calibration_bootstrap: int = Field(200, ge=0)
    calibration_groups: int = Field(3, ge=1)
    seed: int = 0
    missing: Literal["complete-case", "impute-median-mode", "error"] = "complete-case"
    min_events: int = Field(10, ge=1)
    univariate_alpha: float = Field(0.05, gt=0, lt=1)


class StudyConfig(_Strict):
    study: StudySection
    outcome: Outcome
    imaging: Imaging
    variables: list[Variable] = Field(default_factory=list)
    signature: Signature = Field(default_factory=Signature)
    validation: Validation = Field(default_factory=Validation)

    @model_validator(mode="after")
    def _unique(self) -> StudyConfig:
        names = [v.name for v in self.variables]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"variables listed twice: {dupes}")
        if "signature" in names:
            raise ValueError("'signature' is reserved for the deep-learning signature")
        return self

    def variable(self, name: str) -> Variable:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(name)


def load_study(path: str | Path) -> StudyConfig:
    """Read and validate study.toml; errors name the file and the setting."""
    path = Path(path)
    if path.is_dir():
        path = path / "study.toml"
    if not path.is_file():
        raise StudyConfigError(f"{path} not found")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise StudyConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return StudyConfig.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown setting"
            lines.append(f"  {where}: {message}")
        raise StudyConfigError(f"{path} has errors:\n" + "\n".join(lines)) from None


@dataclass
class ClinicalData:
    """The clinical table ready for modelling.

    ``frame`` is indexed by patient with columns ``set``, ``time``, ``event``, the
    secondary outcomes' ``<name>_time``/``<name>_event`` and one pandas categorical
    (or float) column per study variable. ``raw`` holds the original values for
    the baseline table. ``exclusions`` and ``imputations`` list what the
    ``missing`` setting did, patient by patient.
    """

    frame: pd.DataFrame
    raw: pd.DataFrame
    exclusions: pd.DataFrame
    imputations: pd.DataFrame = field(default_factory=pd.DataFrame)


def _patients(index: pd.Index, mask: np.ndarray) -> str:
    names = [str(p) for p in index[mask]]
    more = f", ... ({len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else ""
    return ", ".join(names[:_MAX_LISTED]) + more


def read_clinical(config: StudyConfig, study_dir: Path, manifest: pd.DataFrame) -> pd.DataFrame:
    """clinical.csv indexed by patient, restricted to and aligned with the manifest."""
    path = study_dir / config.study.clinical
    if not path.is_file():
        raise StudyConfigError(f"{path} not found (study.clinical in study.toml)")
    table = pd.read_csv(path, dtype={"patient": str})
    if "patient" not in table.columns:
        raise StudyConfigError(f"{path}: no 'patient' column")
    dupes = table["patient"][table["patient"].duplicated()].tolist()
    if dupes:
        raise StudyConfigError(f"{path}: patients listed twice: {dupes[:_MAX_LISTED]}")
    table = table.set_index("patient")
    absent = sorted(set(manifest["patient"].astype(str)) - set(table.index))
    if absent:
        raise StudyConfigError(
            f"{path}: {len(absent)} manifest patients have no clinical row: {absent[:_MAX_LISTED]}"
        )
    needed = [config.outcome.time, config.outcome.event]
    for extra in config.outcome.secondary:
        needed += [extra.time, extra.event]
    needed += [v.name for v in config.variables]
    unknown = [c for c in needed if c not in table.columns]
    if unknown:
        raise StudyConfigError(
            f"{path}: study.toml names column(s) {unknown} that the clinical table does not "
            f"have (it has: {', '.join(table.columns)})"
        )
    sets = manifest.set_index(manifest["patient"].astype(str))["set"].astype(str)
    out = table.loc[sets.index, needed].copy()
    out.insert(0, "set", sets)
    return out


def check_sets(config: StudyConfig, frame: pd.DataFrame) -> None:
    """Every configured set has patients, the manifest has no other set, enough events each."""
    known = set(config.study.train_sets) | set(config.study.validation_sets)
    stray = sorted(set(frame["set"]) - known)
    if stray:
        mask = frame["set"].isin(stray).to_numpy()
        raise StudyConfigError(
            f"manifest sets {stray} are neither train_sets nor validation_sets "
            f"(patients {_patients(frame.index, mask)})"
        )
    for role, sets in (
        ("training", config.study.train_sets),
        ("validation", config.study.validation_sets),
    ):
        rows = frame["set"].isin(sets).to_numpy()
        if not rows.any():
            what = "no external validation set" if role == "validation" else "no training set"
            raise StudyConfigError(f"{what}: the manifest has no patient in sets {sets}")
        events = int(frame.loc[rows, "event"].sum())
        if events < config.validation.min_events:
            raise StudyConfigError(
                f"too few events in the {role} set ({sets}): {events} events among "
                f"{int(rows.sum())} patients; at least {config.validation.min_events} are needed "
                "(validation.min_events)"
            )


def check_horizons(config: StudyConfig, frame: pd.DataFrame) -> None:
    """The validation time points must lie within the training follow-up (unit check)."""
    train = frame.loc[frame["set"].isin(config.study.train_sets), "time"]
    longest = float(train.max())
    beyond = [t for t in config.validation.times + config.validation.decision_times if t >= longest]
    if beyond:
        raise StudyConfigError(
            f"validation time points {beyond} {config.study.time_unit} are at or beyond the "
            f"longest training follow-up ({longest:g} {config.study.time_unit}); is "
            f"study.time_unit ({config.study.time_unit!r}) the unit of {config.outcome.time}?"
        )


def _outcomes(config: StudyConfig, table: pd.DataFrame) -> pd.DataFrame:
    pairs = [("time", config.outcome.time), ("event", config.outcome.event)]
    for extra in config.outcome.secondary:
        key = extra.name.lower()
        pairs += [(f"{key}_time", extra.time), (f"{key}_event", extra.event)]
    out = pd.DataFrame(index=table.index)
    for target, column in pairs:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna().to_numpy()
        if bad.any():
            raise StudyConfigError(
                f"outcome column {column} has missing or non-numeric values "
                f"(patients {_patients(table.index, bad)}); outcomes are never imputed"
            )
        if target.endswith("time") and (values < 0).any():
            bad = (values < 0).to_numpy()
            raise StudyConfigError(
                f"{column} has negative times (patients {_patients(table.index, bad)})"
            )
        if target.endswith("event") and not values.isin([0, 1]).all():
            bad = (~values.isin([0, 1])).to_numpy()
            raise StudyConfigError(f"{column} must be 0/1 (patients {_patients(table.index, bad)})")
        out[target] = values.astype(float)
    return out


def _categorise(variable: Variable, values: pd.Series) -> pd.Series:
    """A categorical column for the model; raises naming unexpected values."""
    if variable.kind == "categorical":
        text = values.map(lambda v: v if pd.isna(v) else str(v).strip())
        text = text.map(lambda v: _normalise_level(v, variable.levels))
        odd = (~text.isna() & ~text.isin(variable.levels)).to_numpy()
        if odd.any():
            found = sorted({str(v) for v in text[odd]})
            raise StudyConfigError(
                f"clinical column {variable.name}: unexpected categories {found} (patients "
                f"{_patients(values.index, odd)}); study.toml lists levels {variable.levels}"
            )
        return pd.Series(pd.Categorical(text, categories=variable.levels), index=values.index)
    numbers = pd.to_numeric(values, errors="coerce")
    odd = (numbers.isna() & ~values.isna()).to_numpy()
    if odd.any():
        raise StudyConfigError(
            f"clinical column {variable.name}: non-numeric values "
            f"{sorted({str(v) for v in values[odd]})} (patients {_patients(values.index, odd)})"
        )
    if not variable.categorise:
        return numbers.astype(float)
    labels = variable.category_labels()
    codes = np.searchsorted(np.asarray(variable.cutoffs), numbers.to_numpy(), side="right")
    cats = pd.Categorical.from_codes(np.where(numbers.isna(), -1, codes), categories=labels)
    return pd.Series(cats, index=values.index)


def _normalise_level(value: Any, levels: list[str]) -> Any:
    """Map "1.0" to "1" when the levels are integers written without a decimal point."""
    if isinstance(value, str) and value not in levels:
        try:
            as_int = f"{float(value):g}"
        except ValueError:
            return value
        return as_int if as_int in levels else value
    return value


def prepare_clinical(config: StudyConfig, table: pd.DataFrame) -> ClinicalData:
    """Outcomes and variables ready for modelling, with the ``missing`` setting applied.

    ``table`` is :func:`read_clinical`'s output. Errors name the column and patients.
    """
    frame = pd.concat([table[["set"]], _outcomes(config, table)], axis=1)
    raw = table[[v.name for v in config.variables]].copy()
    for variable in config.variables:
        frame[variable.name] = _categorise(variable, table[variable.name])
    names = [v.name for v in config.variables]
    missing = frame[names].isna()
    exclusions = pd.DataFrame(columns=["patient", "stage", "reason"])
    imputations = pd.DataFrame(columns=["patient", "variable", "value"])
    if missing.to_numpy().any():
        frame, exclusions, imputations = _apply_missing(config, frame, missing)
    raw = raw.loc[frame.index]
    check_sets(config, frame)
    check_horizons(config, frame)
    return ClinicalData(frame=frame, raw=raw, exclusions=exclusions, imputations=imputations)


def _apply_missing(config: StudyConfig, frame: pd.DataFrame, missing: pd.DataFrame):
    rows = missing.any(axis=1).to_numpy()
    detail = {p: [c for c in missing.columns if missing.loc[p, c]] for p in frame.index[rows]}
    policy = config.validation.missing
    if policy == "error":
        listed = "; ".join(
            f"{p}: {', '.join(cols)}" for p, cols in list(detail.items())[:_MAX_LISTED]
        )
        raise StudyConfigError(
            f"{int(rows.sum())} patients have missing clinical values ({listed}); set "
            'validation.missing = "complete-case" or "impute-median-mode"'
        )
    if policy == "complete-case":
        exclusions = pd.DataFrame(
            [
                {"patient": p, "stage": "clinical", "reason": f"missing {', '.join(cols)}"}
                for p, cols in detail.items()
            ]
        )
        return (
            frame.loc[~rows].copy(),
            exclusions,
            pd.DataFrame(columns=["patient", "variable", "value"]),
        )
    train = frame["set"].isin(config.study.train_sets)
    records = []
    frame = frame.copy()
    for column in missing.columns[missing.any()]:
        observed = frame.loc[train, column].dropna()
        fill = (
            observed.mode().iloc[0]
            if isinstance(frame[column].dtype, pd.CategoricalDtype)
            else observed.median()
        )
        for patient in frame.index[missing[column].to_numpy()]:
            records.append({"patient": patient, "variable": column, "value": str(fill)})
        frame[column] = frame[column].fillna(fill)
    return frame, pd.DataFrame(columns=["patient", "stage", "reason"]), pd.DataFrame(records)


def read_manifest(config: StudyConfig, study_dir: Path) -> pd.DataFrame:
    """manifest.csv with the contract's columns checked."""
    path = study_dir / config.study.manifest
    if not path.is_file():
        raise StudyConfigError(f"{path} not found (study.manifest in study.toml)")
    manifest = pd.read_csv(path, dtype={"patient": str, "set": str, "centre": str})
    needed = ["patient", "centre", "set", *config.imaging.phases]
    needed += [f"mask_{r}" for r in config.imaging.readers]
    absent = [c for c in needed if c not in manifest.columns]
    if absent:
        raise StudyConfigError(f"{path}: missing column(s) {absent}")
    dupes = manifest["patient"][manifest["patient"].duplicated()].tolist()
    if dupes:
        raise StudyConfigError(f"{path}: patients listed twice: {dupes[:_MAX_LISTED]}")
    return manifest
