"""study.toml schema and the checks of a cohort's manifest and clinical table.

The schema is the contract in docs/contracts.md. Every problem is reported
with the file, the setting or column, and the patients concerned, so a user
can fix the input, and all the problems found are reported together (one
``StudyInputError`` with a ``problems`` list; ``check_inputs`` is the study's
pre-flight check of the whole cohort). Nothing is dropped silently: patients left out by the
``missing = "complete-case"`` setting, and values filled in by
``missing = "impute-median-mode"``, are returned as exclusion/imputation
records that the study writes to ``results/tables/exclusions.parquet``.
"""

from __future__ import annotations

import difflib
import itertools
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from toolkit.stats._checks import event_coding, negative_times

TIME_UNITS = ("days", "weeks", "months", "years")
_MAX_LISTED = 10


class StudyConfigError(ValueError):
    """study.toml, the manifest or the clinical table is not usable as given."""


class StudyInputError(StudyConfigError):
    """Every problem found in study.toml, the manifest and the clinical table, at once.

    ``problems`` lists them, each naming the file, the setting or column and the
    patients concerned; the message gives one problem a line.
    """

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'' if n == 1 else 's'} in the study's inputs:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))

    def __reduce__(self):
        return type(self), (self.problems,)


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
    """Read and validate study.toml; every error names the file and the setting."""
    path = Path(path)
    if path.is_dir():
        path = path / "study.toml"
    if not path.is_file():
        raise StudyInputError([f"{path}: not found"])
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise StudyInputError([f"{path}: not valid TOML: {exc}"]) from None
    try:
        return StudyConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown setting"
            problems.append(f"{path.name}: {where}: {message}")
        raise StudyInputError(problems) from None


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


def check_inputs(config: StudyConfig, study_dir: Path) -> None:
    """The pre-flight check: the manifest and the clinical table, before any stage runs.

    Runs every check of :func:`read_manifest`, :func:`read_clinical` and
    :func:`prepare_clinical` on the whole cohort and raises one
    :class:`StudyInputError` listing every problem found, so that a user fixes
    them all at once instead of one per run. Imaging can only remove patients,
    so a table that passes here fails later only if the patients left after
    imaging have too few events or too short a follow-up.
    """
    problems: list[str] = []
    manifest = _manifest(config, study_dir, problems)
    table = _clinical(config, study_dir, manifest, problems)
    if table is not None:
        _prepare(config, table, problems)
    _raise_any(problems)


def _raise_any(problems: list[str]) -> None:
    if problems:
        raise StudyInputError(problems)


def _n_patients(n: int) -> str:
    return f"{n} patient" if n == 1 else f"{n} patients"


def _listed(names: Sequence[Any]) -> str:
    """The first patients of a list, "P003, P007, ... (12 more)"."""
    names = [str(p) for p in names]
    more = f", ... ({len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else ""
    return ", ".join(names[:_MAX_LISTED]) + more


def _listed_values(values: pd.Series, mask: np.ndarray) -> str:
    """The first offending patients with their values, "P004: 'n/a', P011: '>1000'"."""
    return _listed([f"{p}: {str(v)!r}" for p, v in values[mask].items()])


def _duplicates(name: str, patients: pd.Series) -> list[str]:
    twice = list(dict.fromkeys(patients[patients.duplicated()].astype(str)))
    if not twice:
        return []
    return [f"{name}: {_n_patients(len(twice))} listed more than once ({_listed(twice)})"]


def _absent_columns(name: str, present: Sequence[str], needed: dict[str, str]) -> list[str]:
    """One problem per needed column that the file lacks (suggesting its unused columns)."""
    spare = [c for c in present if c not in needed]
    return [_absent_column(name, c, why, spare) for c, why in needed.items() if c not in present]


def _absent_column(name: str, column: str, why: str, spare: Sequence[str]) -> str:
    """The problem of a needed column that is not there, with the closest ``spare`` column
    (one the study does not use otherwise) as a likely misspelling."""
    close = difflib.get_close_matches(column, [str(c) for c in spare], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{name}: no column {column!r} ({why}){hint}"


def read_manifest(config: StudyConfig, study_dir: Path) -> pd.DataFrame:
    """manifest.csv with the contract's columns, unique patients and known sets checked."""
    problems: list[str] = []
    manifest = _manifest(config, study_dir, problems)
    _raise_any(problems)
    return manifest


def _manifest_columns(config: StudyConfig) -> list[tuple[str, str]]:
    needed = "every manifest needs it"
    columns = [("patient", needed), ("centre", needed), ("set", needed)]
    columns += [(phase, "imaging.phases in study.toml") for phase in config.imaging.phases]
    columns += [(f"mask_{r}", "imaging.readers in study.toml") for r in config.imaging.readers]
    return columns


def _manifest(config: StudyConfig, study_dir: Path, problems: list[str]) -> pd.DataFrame | None:
    """The manifest's problems appended to ``problems``; None when it has no patients and sets."""
    name = config.study.manifest
    path = study_dir / name
    if not path.is_file():
        problems.append(f"{name}: not found in {study_dir} (study.manifest in study.toml)")
        return None
    manifest = pd.read_csv(path, dtype={"patient": str, "set": str, "centre": str})
    needed = dict(_manifest_columns(config))
    problems += _absent_columns(name, manifest.columns, needed)
    if not {"patient", "set"} <= set(manifest.columns):
        return None
    problems += _duplicates(name, manifest["patient"])
    problems += _stray_sets(config, manifest)
    return manifest.drop_duplicates("patient")


def _stray_sets(config: StudyConfig, manifest: pd.DataFrame) -> list[str]:
    """Patients whose set is neither a training nor a validation set, one problem per set."""
    name, study = config.study.manifest, config.study
    sets = manifest["set"]
    problems = []
    if sets.isna().any():
        empty = manifest.loc[sets.isna(), "patient"]
        problems.append(f"{name}: set is empty in {_n_patients(len(empty))} ({_listed(empty)})")
    for value in sorted(set(sets.dropna()) - set(study.train_sets) - set(study.validation_sets)):
        who = manifest.loc[sets == value, "patient"]
        problems.append(
            f"{name}: set {value!r} is in neither study.train_sets {study.train_sets} nor "
            f"study.validation_sets {study.validation_sets} ({_n_patients(len(who))}: "
            f"{_listed(who)})"
        )
    return problems


def read_clinical(config: StudyConfig, study_dir: Path, manifest: pd.DataFrame) -> pd.DataFrame:
    """clinical.csv indexed by patient, restricted to and aligned with the manifest."""
    problems: list[str] = []
    table = _clinical(config, study_dir, manifest, problems)
    _raise_any(problems)
    return table


def _clinical_columns(config: StudyConfig) -> list[tuple[str, str]]:
    named = "named by {} in study.toml".format
    columns = [(config.outcome.time, named("outcome.time"))]
    columns += [(config.outcome.event, named("outcome.event"))]
    for extra in config.outcome.secondary:
        columns += [(extra.time, named(f"the secondary outcome {extra.name}"))]
        columns += [(extra.event, named(f"the secondary outcome {extra.name}"))]
    return columns + [(v.name, named("variables")) for v in config.variables]


def _clinical(
    config: StudyConfig, study_dir: Path, manifest: pd.DataFrame | None, problems: list[str]
) -> pd.DataFrame | None:
    """The clinical table aligned with the manifest (its patients, in its order, with their
    ``set``); its problems appended to ``problems``. None when it has no patient column."""
    name = config.study.clinical
    path = study_dir / name
    if not path.is_file():
        problems.append(f"{name}: not found in {study_dir} (study.clinical in study.toml)")
        return None
    table = pd.read_csv(path, dtype={"patient": str})
    if "patient" not in table.columns:
        problems.append(f"{name}: no column 'patient'")
        return None
    problems += _duplicates(name, table["patient"])
    table = table.drop_duplicates("patient").set_index("patient")
    needed = dict(_clinical_columns(config))
    problems += _absent_columns(name, table.columns, needed)
    columns = [c for c in needed if c in table.columns]
    if manifest is None:
        return table[columns].assign(set="").loc[:, ["set", *columns]]
    sets = manifest.set_index(manifest["patient"].astype(str))["set"].astype(str)
    problems += _unmatched(config, sets.index, table.index)
    out = table.loc[[p for p in sets.index if p in table.index], columns].copy()
    out.insert(0, "set", sets.loc[out.index])
    return out


def _unmatched(config: StudyConfig, manifest: pd.Index, clinical: pd.Index) -> list[str]:
    """Manifest patients with no clinical row, and clinical rows with no manifest entry."""
    names = config.study.clinical, config.study.manifest
    in_manifest, in_clinical = set(manifest), set(clinical)
    absent = [p for p in manifest if p not in in_clinical]
    extra = [p for p in clinical if p not in in_manifest]
    problems = []
    if absent:
        problems.append(
            f"{names[0]}: no row for {_n_patients(len(absent))} of {names[1]} ({_listed(absent)})"
        )
    if extra:
        problems.append(
            f"{names[0]}: {_n_patients(len(extra))} not in {names[1]} ({_listed(extra)}); "
            "add their images to the manifest or remove their rows"
        )
    return problems


def prepare_clinical(config: StudyConfig, table: pd.DataFrame) -> ClinicalData:
    """Outcomes and variables ready for modelling, with the ``missing`` setting applied.

    ``table`` is :func:`read_clinical`'s output. Every problem found is raised at
    once in a :class:`StudyInputError`, naming the column and the patients.
    """
    problems: list[str] = []
    data = _prepare(config, table, problems)
    _raise_any(problems)
    return data


def _prepare(config: StudyConfig, table: pd.DataFrame, problems: list[str]) -> ClinicalData | None:
    """The checks and conversions of :func:`prepare_clinical`, appending to ``problems``.

    The sets' events and follow-up are checked only when nothing else is wrong
    (counting the events of a column coded 1/2 would only add noise).
    """
    names = [v.name for v in config.variables if v.name in table.columns]
    frame = pd.concat([table[["set"]], _outcomes(config, table, problems)], axis=1)
    for variable in config.variables:
        if variable.name in table.columns:
            frame[variable.name] = _categorise(variable, table[variable.name], config, problems)
    missing = table[names].isna()
    problems += _missing_refused(config, missing)
    if problems:
        return None
    exclusions = pd.DataFrame(columns=["patient", "stage", "reason"])
    imputations = pd.DataFrame(columns=["patient", "variable", "value"])
    if missing.to_numpy().any():
        frame, exclusions, imputations = _apply_missing(config, frame, missing)
    problems += _set_problems(config, frame) or _horizon_problems(config, frame)
    raw = table.loc[frame.index, names].copy()
    return ClinicalData(frame=frame, raw=raw, exclusions=exclusions, imputations=imputations)


def _outcome_pairs(config: StudyConfig) -> list[tuple[str, str]]:
    pairs = [("time", config.outcome.time), ("event", config.outcome.event)]
    for extra in config.outcome.secondary:
        key = extra.name.lower()
        pairs += [(f"{key}_time", extra.time), (f"{key}_event", extra.event)]
    return pairs


def _outcomes(config: StudyConfig, table: pd.DataFrame, problems: list[str]) -> pd.DataFrame:
    """Times and events as floats; never imputed. Absent columns are the reader's problem."""
    name = config.study.clinical
    labels = np.asarray(table.index)
    out = pd.DataFrame(index=table.index)
    for target, column in _outcome_pairs(config):
        if column not in table.columns:
            continue
        values = _numbers(table[column], name, column, problems)
        empty = table[column].isna().to_numpy()
        if empty.any():
            problems.append(
                f"{name}: {column} is missing in {_n_patients(int(empty.sum()))} "
                f"({_listed(table.index[empty])}); outcomes are never imputed"
            )
        if target.endswith("time"):
            problem = negative_times(values.to_numpy(), labels, column, "patients")
        else:
            problem = _event_problem(values, labels, column)
        if problem:
            problems.append(f"{name}: {problem}")
        out[target] = values.astype(float)
    return out


def _event_problem(values: pd.Series, labels: np.ndarray, column: str) -> str:
    problem = event_coding(values.to_numpy(), labels, column, "patients")
    if problem and set(values.dropna()) <= {1.0, 2.0}:
        problem += "; if 1 is censored and 2 is the event (R's Surv coding), recode to 0/1"
    return problem


def _numbers(values: pd.Series, name: str, column: str, problems: list[str]) -> pd.Series:
    """The column as numbers; text in it is a problem (empty cells are left as NaN)."""
    numbers = pd.to_numeric(values, errors="coerce")
    text = (numbers.isna() & values.notna()).to_numpy()
    if text.any():
        problems.append(
            f"{name}: {column} is numeric but holds text in {_n_patients(int(text.sum()))} "
            f"({_listed_values(values, text)})"
        )
    return numbers


def _categorise(
    variable: Variable, values: pd.Series, config: StudyConfig, problems: list[str]
) -> pd.Series:
    """A categorical (or, with ``categorise = false``, float) column for the model."""
    if variable.kind == "categorical":
        return _levels(variable, values, config.study.clinical, problems)
    numbers = _numbers(values, config.study.clinical, variable.name, problems)
    if not variable.categorise:
        return numbers.astype(float)
    labels = variable.category_labels()
    codes = np.searchsorted(np.asarray(variable.cutoffs), numbers.to_numpy(), side="right")
    cats = pd.Categorical.from_codes(np.where(numbers.isna(), -1, codes), categories=labels)
    return pd.Series(cats, index=values.index)


def _levels(variable: Variable, values: pd.Series, name: str, problems: list[str]) -> pd.Series:
    text = values.map(lambda v: v if pd.isna(v) else str(v).strip())
    text = text.map(lambda v: _normalise_level(v, variable.levels))
    odd = (~text.isna() & ~text.isin(variable.levels)).to_numpy()
    if odd.any():
        found = sorted({str(v) for v in text[odd]})
        who = _listed_values(text, odd) if len(found) > 1 else _listed(text.index[odd])
        problems.append(
            f"{name}: {variable.name} holds {', '.join(map(repr, found))}, not among its "
            f"levels {variable.levels} in study.toml, in {_n_patients(int(odd.sum()))} ({who})"
        )
    return pd.Series(pd.Categorical(text, categories=variable.levels), index=values.index)


def _normalise_level(value: Any, levels: list[str]) -> Any:
    """Map "1.0" to "1" when the levels are integers written without a decimal point."""
    if isinstance(value, str) and value not in levels:
        try:
            as_int = f"{float(value):g}"
        except ValueError:
            return value
        return as_int if as_int in levels else value
    return value


def _missing_refused(config: StudyConfig, missing: pd.DataFrame) -> list[str]:
    """With ``validation.missing = "error"``, the patients with missing values."""
    rows = missing.any(axis=1).to_numpy()
    if config.validation.missing != "error" or not rows.any():
        return []
    detail = [
        f"{p}: {', '.join(c for c in missing.columns if missing.loc[p, c])}"
        for p in missing.index[rows]
    ]
    return [
        f"{config.study.clinical}: {_n_patients(int(rows.sum()))} have missing clinical values "
        f"({'; '.join(detail[:_MAX_LISTED])}); set validation.missing = "
        '"complete-case" or "impute-median-mode"'
    ]


def _apply_missing(config: StudyConfig, frame: pd.DataFrame, missing: pd.DataFrame):
    rows = missing.any(axis=1).to_numpy()
    if config.validation.missing == "complete-case":
        detail = {p: [c for c in missing.columns if missing.loc[p, c]] for p in frame.index[rows]}
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


def _set_problems(config: StudyConfig, frame: pd.DataFrame) -> list[str]:
    """Every configured set has patients, and enough events (validation.min_events)."""
    problems = []
    for role, sets in (
        ("training", config.study.train_sets),
        ("validation", config.study.validation_sets),
    ):
        rows = frame["set"].isin(sets).to_numpy()
        if not rows.any():
            what = "no external validation set" if role == "validation" else "no training set"
            problems.append(f"{config.study.manifest}: {what}: no patient is in sets {sets}")
            continue
        events = int(frame.loc[rows, "event"].sum())
        if events < config.validation.min_events:
            problems.append(
                f"{config.study.clinical}: too few events in the {role} set ({sets}): {events} "
                f"events among {_n_patients(int(rows.sum()))}; at least "
                f"{config.validation.min_events} are needed (validation.min_events)"
            )
    return problems


def _horizon_problems(config: StudyConfig, frame: pd.DataFrame) -> list[str]:
    """The validation time points must lie within the training follow-up (unit check)."""
    train = frame.loc[frame["set"].isin(config.study.train_sets), "time"]
    longest = float(train.max())
    beyond = [t for t in config.validation.times + config.validation.decision_times if t >= longest]
    if not beyond:
        return []
    unit = config.study.time_unit
    return [
        f"study.toml: validation time points {beyond} {unit} are at or beyond the longest "
        f"training follow-up ({longest:g} {unit}); is study.time_unit ({unit!r}) the unit "
        f"of {config.outcome.time}?"
    ]
