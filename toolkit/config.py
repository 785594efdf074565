"""study.toml schema, the checks of a cohort's clinical table, the study's pre-flight check.

The schema is the contract in docs/contracts.md, and this module is sigkit's one
reader of study.toml: the stages, ``sigkit preprocess`` and the report receive
the validated :class:`StudyConfig`, and provenance records the file as written
(:meth:`StudyConfig.as_written`). A setting the code cannot honour is refused
here (``crop_size``, ``phases``), not ignored downstream. The manifest is read,
and checked against the study, by :mod:`toolkit.imaging.manifest`.

Every problem is reported with the file, the setting or column, and the patients
concerned, so a user can fix the input, and all the problems found are reported
together (one ``StudyInputError`` with a ``problems`` list; ``check_inputs`` is the
study's pre-flight check of the whole cohort). Nothing is dropped silently:
patients left out by the ``missing = "complete-case"`` setting, and values filled
in by ``missing = "impute-median-mode"``, are returned as exclusion/imputation
records that the study writes to ``results/tables/exclusions.parquet``.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from toolkit.stats._checks import event_coding, listed, negative_times

if TYPE_CHECKING:
    from toolkit.imaging.manifest import Manifest

TIME_UNITS = ("days", "weeks", "months", "years")
PHASES = ("arterial", "portal")
"""The CT phases sigkit reads, in the order of its features (``arterial_0000`` ...
``portal_1023``): preprocessing registers the arterial phase onto the portal phase,
and the network takes a crop of each."""
CROP_SIZE = 224
"""The side of the square crops, in pixels: the network's features are extracted
from 224 x 224 crops (DenseNet-121's ImageNet input size)."""


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


def _one_of(setting: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{setting} must be one of {', '.join(allowed)}; got {value!r}")
    return value


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
    # the clinical table's column naming each patient's centre: the nomograms then report
    # the SE clustered by centre beside the model-based one, and the risk-group log-rank
    # tests are stratified by centre
    centre: str | None = None

    @field_validator("time_unit")
    @classmethod
    def _unit(cls, value: str) -> str:
        return _one_of("time_unit", value, TIME_UNITS)

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
    """study.toml's ``[imaging]``: the phases, the readers and the crop settings.

    ``readers`` is stored primary-first (the primary reader, then the others sorted
    by name) whatever order study.toml lists them in, so no stage can depend on the
    written order: the signature is ranked and fitted on ``readers[0]``, the ICC's
    ratings and the crops' readers come in this order. ``phases`` and ``crop_size``
    accept only what the code supports (:data:`PHASES`, :data:`CROP_SIZE`).
    ``spacing_mm`` resamples the portal grid in-plane before cropping (None keeps
    it); ``mask_phase`` is the phase the masks were drawn on (masks drawn on the
    arterial phase follow the registration).

    ``slices`` is how many axial slices give each patient's features: 1 (the paper:
    the largest-ROI slice), k > 1 (the k slices around it) or ``"all"`` (every slice
    with tumour), chosen by :func:`toolkit.imaging.roi.tumour_slices`; with more than
    one, each slice's crop goes through the network and ``pooling`` (``"mean"`` or
    ``"max"``, per feature) pools the features over the slices. ``pooling`` changes
    nothing when ``slices = 1``.
    """

    phases: list[str] = Field(default_factory=lambda: list(PHASES), min_length=1)
    readers: list[str] = Field(min_length=1)
    primary_reader: str
    crop_size: int = CROP_SIZE
    zscore: Literal["crop", "roi"] = "crop"
    # "register" would shadow a pydantic BaseModel attribute; the TOML key stays "register"
    register_phases: bool = Field(True, alias="register")
    spacing_mm: float | None = Field(None, gt=0)
    mask_phase: str = "arterial"
    slices: int | Literal["all"] = 1
    pooling: Literal["mean", "max"] = "mean"

    @model_validator(mode="before")
    @classmethod
    def _primary_first(cls, data: Any) -> Any:
        """``readers`` as the primary reader, then the others by name (repeats kept, for
        the check below to name them); anything malformed is left to the field checks."""
        if not isinstance(data, dict):
            return data
        readers, primary = data.get("readers"), data.get("primary_reader")
        if not isinstance(readers, list | tuple) or not all(isinstance(r, str) for r in readers):
            return data
        if primary not in readers:
            return data
        others = list(readers)
        others.remove(primary)
        return {**data, "readers": [primary, *sorted(others)]}

    @field_validator("phases")
    @classmethod
    def _supported_phases(cls, value: list[str]) -> list[str]:
        if sorted(value) != sorted(PHASES):
            raise ValueError(
                f"phases must be {list(PHASES)} (each once): sigkit registers the arterial "
                f"phase onto the portal phase and takes the network's features from both; "
                f"got {value}"
            )
        return list(PHASES)

    @field_validator("crop_size")
    @classmethod
    def _supported_crop(cls, value: int) -> int:
        if value != CROP_SIZE:
            raise ValueError(
                f"crop_size must be {CROP_SIZE}: the network's features are extracted from "
                f"{CROP_SIZE} x {CROP_SIZE} crops; got {value}"
            )
        return value

    @field_validator("mask_phase")
    @classmethod
    def _mask_phase(cls, value: str) -> str:
        return _one_of("mask_phase", value, PHASES)

    @field_validator("slices", mode="before")
    @classmethod
    def _slices(cls, value: Any) -> Any:
        whole = isinstance(value, int) and not isinstance(value, bool)
        if value == "all" or (whole and value >= 1):
            return value
        raise ValueError(
            "slices must be a whole number of slices, at least 1 (1: the largest-ROI slice), "
            f'or "all" (every slice with tumour); got {value!r}'
        )

    @field_validator("pooling", mode="before")
    @classmethod
    def _pooling(cls, value: Any) -> Any:
        return _one_of("pooling", value, ("mean", "max")) if isinstance(value, str) else value

    @property
    def slice_choice(self) -> dict[str, Any]:
        """The slice choice as provenance records it: ``{"slices": 1}``, or with ``pooling``."""
        if self.slices == 1:
            return {"slices": 1}
        return {"slices": self.slices, "pooling": self.pooling}

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
        """The readers as a tuple: ``readers``, which is already primary-first."""
        return tuple(self.readers)


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


class Finetune(_Strict):
    """study.toml's ``[signature.finetune]``: fine-tuning DenseNet-121 with a Cox head
    (``toolkit.deep.finetune``), used when ``[signature] source = "finetuned"``.

    ``blocks``, ``growth_rate``, ``stem_features``: the network's width, DenseNet-121's
    by default (the only width the study's ImageNet weights fit; any other starts from
    random weights, seeded). ``input_size``: the side the 224 x 224 crops are resized
    to (bilinear, antialiased) before the network, a multiple of 32. ``steps``: the most
    epochs (one AdamW update each, every training crop seen once). ``chunk_size``:
    patients per forward pass (bounded memory, exact risk set). ``dtype``: the
    backbone's compute dtype (bfloat16 for GPUs).
    """

    blocks: list[int] = Field(default_factory=lambda: [6, 12, 24, 16], min_length=1)
    growth_rate: int = Field(32, ge=1)
    stem_features: int = Field(64, ge=1)
    input_size: int = Field(224, ge=32, le=CROP_SIZE, multiple_of=32)
    steps: int = Field(100, ge=1)
    learning_rate: float = Field(1e-4, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    validation_fraction: float = Field(0.2, ge=0, lt=1)
    patience: int = Field(10, ge=1)
    chunk_size: int | None = Field(16, ge=1)
    augmentation: bool = True
    dtype: Literal["float32", "bfloat16"] = "float32"

    @field_validator("blocks")
    @classmethod
    def _positive_blocks(cls, value: list[int]) -> list[int]:
        if any(b < 1 for b in value):
            raise ValueError(f"every dense block needs at least one layer, got {value}")
        return value

    @property
    def full_width(self) -> bool:
        """DenseNet-121's own width, the one ImageNet weights fit."""
        return (tuple(self.blocks), self.growth_rate, self.stem_features) == (
            (6, 12, 24, 16),
            32,
            64,
        )


class Signature(_Strict):
    """study.toml's ``[signature]``. ``source``: "frozen" (default) builds the signature
    from frozen DenseNet-121 features (ICC filter, mRMR, elastic-net Cox;
    ``toolkit.study.signature``); "finetuned" trains the network and a Cox head end to
    end (``toolkit.study.finetuned``, settings in ``finetune``), cross-validated with
    ``n_folds`` outer folds seeded by ``seed``."""

    source: Literal["frozen", "finetuned"] = "frozen"
    finetune: Finetune = Field(default_factory=Finetune)
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
    decision_thresholds: list[float] = Field(
        default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5], min_length=1
    )
    n_bootstrap: int = Field(1000, ge=0)
    calibration_bootstrap: int = Field(200, ge=0)
    calibration_groups: int = Field(3, ge=1)
    seed: int = 0
    missing: Literal["complete-case", "impute-median-mode", "multiple-imputation", "error"] = (
        "complete-case"
    )
    m: int = Field(20, ge=2)
    imputation_seed: int = 0
    min_events: int = Field(10, ge=1)
    univariate_alpha: float = Field(0.05, gt=0, lt=1)

    @field_validator("decision_thresholds")
    @classmethod
    def _probabilities(cls, value: list[float]) -> list[float]:
        outside = [v for v in value if not 0 < v < 1]
        if outside:
            raise ValueError(
                f"decision thresholds are probabilities of death strictly between 0 and 1, "
                f"got {outside}"
            )
        return sorted(set(value))

    @model_validator(mode="after")
    def _imputation_settings(self) -> Validation:
        given = sorted({"m", "imputation_seed"} & self.model_fields_set)
        if given and self.missing != "multiple-imputation":
            raise ValueError(
                f'{" and ".join(given)} apply only with missing = "multiple-imputation" '
                f"(missing is {self.missing!r})"
            )
        return self


RADIOMICS_IMAGE_TYPES = ("Original", "LoG", "Wavelet")
RADIOMICS_FEATURE_CLASSES = ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
# the settings a PyRadiomics parameter file replaces; giving both is refused
_EXTRACTION_SETTINGS = (
    "image_types",
    "log_sigmas",
    "feature_classes",
    "bin_width",
    "resampled_spacing_mm",
)


class Radiomics(_Strict):
    """study.toml's ``[radiomics]``: the handcrafted (PyRadiomics, IBSI) features.

    ``mode`` is "3d" (the tumour volume), "2d" (the largest-ROI slice the crops come from)
    or "both". The extraction is set here (``image_types``, ``log_sigmas`` for LoG,
    ``feature_classes``, ``bin_width``, ``resampled_spacing_mm`` = [x, y, z]) or by a
    PyRadiomics ``parameter_file`` (YAML, relative to the folder of study.toml), never
    both. Defaults: PyRadiomics' own (Original image, every class, bin width 25, no
    resampling).
    """

    enabled: bool = True
    mode: Literal["3d", "2d", "both"] = "both"
    image_types: list[str] = Field(default_factory=lambda: ["Original"], min_length=1)
    log_sigmas: list[float] = Field(default_factory=list)
    feature_classes: list[str] = Field(
        default_factory=lambda: list(RADIOMICS_FEATURE_CLASSES), min_length=1
    )
    bin_width: float = Field(25.0, gt=0)
    resampled_spacing_mm: list[float] | None = None
    parameter_file: str | None = None

    @field_validator("image_types")
    @classmethod
    def _image_types(cls, value: list[str]) -> list[str]:
        return _listed_once("image_types", value, RADIOMICS_IMAGE_TYPES)

    @field_validator("feature_classes")
    @classmethod
    def _classes(cls, value: list[str]) -> list[str]:
        return _listed_once("feature_classes", value, RADIOMICS_FEATURE_CLASSES)

    @field_validator("log_sigmas")
    @classmethod
    def _sigmas(cls, value: list[float]) -> list[float]:
        if any(not sigma > 0 for sigma in value):
            raise ValueError(f"log_sigmas must be positive (mm); got {value}")
        return value

    @field_validator("resampled_spacing_mm")
    @classmethod
    def _spacing(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (len(value) != 3 or any(not v > 0 for v in value)):
            raise ValueError(
                f"resampled_spacing_mm must be 3 positive spacings [x, y, z] (mm); got {value}"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Radiomics:
        if "LoG" in self.image_types and not self.log_sigmas:
            raise ValueError('image_types has "LoG" but log_sigmas is empty: give the sigmas (mm)')
        if self.log_sigmas and "LoG" not in self.image_types:
            raise ValueError('log_sigmas is given but image_types has no "LoG"')
        both = sorted(set(_EXTRACTION_SETTINGS) & self.model_fields_set)
        if self.parameter_file is not None and both:
            raise ValueError(
                f"parameter_file replaces {', '.join(both)}: give either the PyRadiomics "
                "parameter file or these settings, not both"
            )
        return self

    @property
    def modes(self) -> tuple[str, ...]:
        """The modes to compute, in the features' column order: ("3d", "2d") for "both"."""
        return ("3d", "2d") if self.mode == "both" else (self.mode,)


def _listed_once(setting: str, value: list[str], allowed: tuple[str, ...]) -> list[str]:
    for item in value:
        _one_of(setting, item, allowed)
    repeated = sorted({v for v in value if value.count(v) > 1})
    if repeated:
        raise ValueError(f"{setting} lists {repeated} more than once")
    return value


MIN_INTERNAL_RESAMPLES = 20
"""The fewest bootstrap resamples ``[internal_validation] B`` accepts."""


class InternalValidation(_Strict):
    """study.toml's ``[internal_validation]``: the whole-procedure bootstrap.

    ``B`` resamples of the training set, each re-running the signature and the
    nomograms' selection (``toolkit.study.internal``); resample ``b`` is drawn
    from ``seed`` and ``b`` alone, so the results do not depend on the workers.
    """

    B: int = 200
    seed: int = 0

    @field_validator("B")
    @classmethod
    def _enough(cls, value: int) -> int:
        if value < MIN_INTERNAL_RESAMPLES:
            raise ValueError(
                f"B must be at least {MIN_INTERNAL_RESAMPLES}, got {value}: with fewer "
                "resamples the optimism's Monte Carlo error is as large as the optimism "
                "itself (Harrell, Regression Modeling Strategies, 5.3)"
            )
        return value


class BundleSettings(_Strict):
    """study.toml's ``[bundle]``: what the locked model bundle (``STUDY_DIR/model/``) carries.

    ``case_mix`` (default true) stores the training patients' model predictors and
    signature scores, de-identified (no IDs, no outcomes, rows sorted), as
    ``model/case_mix.parquet``: patient-level data, which ``sigkit apply`` needs for the
    membership model of the case-mix difference (``study.transport``). ``false`` leaves
    it out (a bundle to be shared where no patient-level data may go).
    """

    case_mix: bool = True


class StudyConfig(_Strict):
    """The validated study.toml. :meth:`as_written` gives the mapping it was validated
    from, for provenance; the stages read the validated fields."""

    study: StudySection
    outcome: Outcome
    imaging: Imaging
    variables: list[Variable] = Field(default_factory=list)
    signature: Signature = Field(default_factory=Signature)
    radiomics: Radiomics = Field(default_factory=Radiomics)
    validation: Validation = Field(default_factory=Validation)
    internal_validation: InternalValidation = Field(default_factory=InternalValidation)
    bundle: BundleSettings = Field(default_factory=BundleSettings)
    _written: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_written(cls, data: Any, handler: Any) -> StudyConfig:
        written = copy.deepcopy(data) if isinstance(data, dict) else None
        config = handler(data)
        if written is not None:
            config._written = written
        return config

    def as_written(self) -> dict[str, Any]:
        """study.toml as written (a copy): its keys, values and orders, the readers'
        written order included. Artifacts record it as their ``study_toml``, so a
        result names the file it came from, byte for byte in its JSON."""
        return copy.deepcopy(self._written)

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
    """Read and validate study.toml (or the study.toml in folder ``path``); every
    error names the file and the setting."""
    path = Path(path)
    if path.is_dir():
        path = path / "study.toml"
    if not path.is_file():
        raise StudyInputError([f"{path}: not found"])
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise StudyInputError([f"{path}: not UTF-8 text, as TOML must be: {exc}"]) from None
    return loads_study(text, path)


def loads_study(text: str, source: str | Path = "study.toml") -> StudyConfig:
    """Validate the text of a study.toml; errors name ``source`` and the setting."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyInputError([f"{source}: not valid TOML: {exc}"]) from None
    return study_from_mapping(raw, Path(source).name)


def study_from_mapping(raw: Mapping[str, Any], name: str = "study.toml") -> StudyConfig:
    """Validate a study.toml already parsed (as an artifact's provenance recorded it);
    errors name ``name`` and the setting."""
    try:
        return StudyConfig.model_validate(dict(raw))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown setting"
            problems.append(f"{name}: {where}: {message}")
        raise StudyInputError(problems) from None


@dataclass
class ClinicalData:
    """The clinical table ready for modelling.

    ``frame`` is indexed by patient with columns ``set``, ``time``, ``event``, the
    secondary outcomes' ``<name>_time``/``<name>_event`` and one pandas categorical
    (or float) column per study variable. ``raw`` holds the original values for
    the baseline table. ``exclusions`` and ``imputations`` list what the
    ``missing`` setting did, patient by patient.

    With ``missing = "multiple-imputation"`` ``frame`` keeps its missing values and
    the clinical stage adds ``completed`` (the ``m`` completed frames, training and
    validation rows, ``study.imputed.impute_cohort``) and ``missing`` (per variable and
    set: ``n_missing``, ``n`` and what was done); ``completed`` is empty otherwise, and
    when no value is missing.
    """

    frame: pd.DataFrame
    raw: pd.DataFrame
    exclusions: pd.DataFrame
    imputations: pd.DataFrame = field(default_factory=pd.DataFrame)
    completed: tuple[pd.DataFrame, ...] = ()
    missing: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def imputed(self) -> bool:
        """Whether the study runs on ``m`` completed data sets (multiple imputation)."""
        return len(self.completed) > 0


def check_inputs(config: StudyConfig, study_dir: Path) -> None:
    """The pre-flight check: the manifest and the clinical table, before any stage runs.

    Runs every check of :func:`toolkit.imaging.manifest.study_manifest`,
    :func:`read_clinical` and :func:`prepare_clinical` on the whole cohort and raises
    one :class:`StudyInputError` listing every problem found, so that a user fixes
    them all at once instead of one per run. Imaging can only remove patients,
    so a table that passes here fails later only if the patients left after
    imaging have too few events or too short a follow-up.
    """
    # imaging.manifest imports PHASES and the checks below from this module
    from toolkit.imaging.manifest import check_study_manifest

    problems: list[str] = []
    manifest = check_study_manifest(config, study_dir, problems)
    problems += _parameter_file_problems(config, study_dir)
    table = _clinical(config, study_dir, manifest, problems)
    if table is not None:
        _prepare(config, table, problems)
    _raise_any(problems)


def _parameter_file_problems(config: StudyConfig, study_dir: Path) -> list[str]:
    """[radiomics] parameter_file, when the stage will read it, must be a file."""
    section = config.radiomics
    if not section.enabled or section.parameter_file is None:
        return []
    if (study_dir / section.parameter_file).is_file():
        return []
    return [
        f"study.toml: radiomics.parameter_file: {section.parameter_file!r} not found in "
        f"{study_dir} (the PyRadiomics parameter file, relative to study.toml's folder)"
    ]


def _raise_any(problems: list[str]) -> None:
    if problems:
        raise StudyInputError(problems)


def n_patients(n: int) -> str:
    """A count of patients for a message: "1 patient", "3 patients"."""
    return f"{n} patient" if n == 1 else f"{n} patients"


def _listed_values(values: pd.Series, mask: np.ndarray) -> str:
    """The first offending patients with their values, "P004: 'n/a', P011: '>1000'"."""
    return listed([f"{p}: {str(v)!r}" for p, v in values[mask].items()])


def duplicate_patients(name: str, patients: pd.Series) -> list[str]:
    """The problem of file ``name`` listing patients more than once (none: [])."""
    twice = list(dict.fromkeys(patients[patients.duplicated()].astype(str)))
    if not twice:
        return []
    return [f"{name}: {n_patients(len(twice))} listed more than once ({listed(twice)})"]


def absent_columns(name: str, present: Sequence[str], needed: dict[str, str]) -> list[str]:
    """One problem per needed column (mapped to why it is needed) that file ``name``
    lacks, suggesting the closest of its unused columns."""
    spare = [c for c in present if c not in needed]
    return [_absent_column(name, c, why, spare) for c, why in needed.items() if c not in present]


def _absent_column(name: str, column: str, why: str, spare: Sequence[str]) -> str:
    """The problem of a needed column that is not there, with the closest ``spare`` column
    (one the study does not use otherwise) as a likely misspelling."""
    close = difflib.get_close_matches(column, [str(c) for c in spare], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{name}: no column {column!r} ({why}){hint}"


def read_clinical(
    config: StudyConfig,
    study_dir: Path,
    manifest: Manifest,
    columns: Mapping[str, str] | None = None,
    optional: Sequence[str] = (),
) -> pd.DataFrame:
    """clinical.csv indexed by patient, restricted to and aligned with the manifest
    (:func:`toolkit.imaging.manifest.study_manifest`).

    ``columns`` maps each column the caller needs to why it is needed (what a message
    says of an absent one); default: the study's outcomes, centre and variables.
    ``optional`` columns are kept when the table has them.
    """
    problems: list[str] = []
    table = _clinical(config, study_dir, manifest, problems, columns, optional)
    _raise_any(problems)
    return table


def _clinical_columns(config: StudyConfig) -> list[tuple[str, str]]:
    named = "named by {} in study.toml".format
    columns = [(config.outcome.time, named("outcome.time"))]
    columns += [(config.outcome.event, named("outcome.event"))]
    for extra in config.outcome.secondary:
        columns += [(extra.time, named(f"the secondary outcome {extra.name}"))]
        columns += [(extra.event, named(f"the secondary outcome {extra.name}"))]
    if config.study.centre:
        columns += [(config.study.centre, named("study.centre"))]
    return columns + [(v.name, named("variables")) for v in config.variables]


def _clinical(
    config: StudyConfig,
    study_dir: Path,
    manifest: Manifest | None,
    problems: list[str],
    columns: Mapping[str, str] | None = None,
    optional: Sequence[str] = (),
) -> pd.DataFrame | None:
    """The clinical table aligned with the manifest (its patients, in its order, with their
    ``set``); its problems appended to ``problems``. None when it has no patient column."""
    name = config.study.clinical
    path = study_dir / name
    if not path.is_file():
        problems.append(f"{name}: not found in {study_dir} (study.clinical in study.toml)")
        return None
    table = pd.read_csv(path, dtype={"patient": str}, encoding="utf-8")
    if "patient" not in table.columns:
        problems.append(f"{name}: no column 'patient'")
        return None
    problems += duplicate_patients(name, table["patient"])
    table = table.drop_duplicates("patient").set_index("patient")
    needed = dict(_clinical_columns(config)) if columns is None else dict(columns)
    problems += absent_columns(name, table.columns, needed)
    kept = [c for c in needed if c in table.columns]
    kept += [c for c in optional if c in table.columns and c not in needed]
    if manifest is None:
        return table[kept].assign(set="").loc[:, ["set", *kept]]
    sets = manifest.sets()
    problems += _unmatched(config, sets.index, table.index)
    out = table.loc[[p for p in sets.index if p in table.index], kept].copy()
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
            f"{names[0]}: no row for {n_patients(len(absent))} of {names[1]} ({listed(absent)})"
        )
    if extra:
        problems.append(
            f"{names[0]}: {n_patients(len(extra))} not in {names[1]} ({listed(extra)}); "
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
    if config.study.centre and config.study.centre in table.columns:
        frame["centre"] = _centres(config, table[config.study.centre], problems)
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
        try:
            frame, exclusions, imputations = _apply_missing(config, frame, missing)
        except UnobservedVariable as error:
            problems.append(f"{config.study.clinical}: {error} in the training set")
            return None
    problems += _set_problems(config, frame) or _horizon_problems(config, frame)
    raw = table.loc[frame.index, names].copy()
    return ClinicalData(frame=frame, raw=raw, exclusions=exclusions, imputations=imputations)


def prepare_cohort(
    config: StudyConfig, table: pd.DataFrame, outcomes: bool = False, keep_missing: bool = False
) -> ClinicalData:
    """A new cohort's clinical table for a locked model (``sigkit apply``).

    Every variable of ``config`` that ``table`` (:func:`read_clinical`'s output) has is
    converted as :func:`prepare_clinical` converts it (levels checked against study.toml,
    numbers categorised at its cutoffs); with ``outcomes``, the outcome columns too.
    Unlike :func:`prepare_clinical` nothing is fitted, so there is no set, event or
    horizon check, and a missing value is never imputed here: with ``keep_missing`` (a
    model bundle that carries its imputation, ``study.bundle.ModelBundle.complete``) the
    patient is kept with the value missing, for the model to impute; otherwise, with
    ``validation.missing = "error"`` the patient is refused, else excluded and listed in
    ``exclusions``. Every problem is raised at once in a :class:`StudyInputError`,
    naming the column and the patients.
    """
    problems: list[str] = []
    names = [v.name for v in config.variables if v.name in table.columns]
    frame = table[["set"]].copy()
    if outcomes:
        frame = pd.concat([frame, _outcomes(config, table, problems)], axis=1)
    for variable in config.variables:
        if variable.name in table.columns:
            frame[variable.name] = _categorise(variable, table[variable.name], config, problems)
    missing = table[names].isna()
    if keep_missing:
        missing[:] = False
    problems += _missing_refused(config, missing)
    _raise_any(problems)
    rows = missing.any(axis=1).to_numpy()
    exclusions = pd.DataFrame(
        [
            {
                "patient": p,
                "stage": "clinical",
                "reason": f"missing {', '.join(c for c in names if missing.loc[p, c])}",
            }
            for p in table.index[rows]
        ],
        columns=["patient", "stage", "reason"],
    )
    kept = frame.index[~rows]
    return ClinicalData(
        frame=frame.loc[kept].copy(), raw=table.loc[kept, names].copy(), exclusions=exclusions
    )


def _centres(config: StudyConfig, values: pd.Series, problems: list[str]) -> pd.Series:
    """Each patient's centre as text; a missing centre is refused (never imputed)."""
    empty = values.isna().to_numpy()
    if empty.any():
        problems.append(
            f"{config.study.clinical}: {config.study.centre} (study.centre) is missing in "
            f"{n_patients(int(empty.sum()))} ({listed(values.index[empty])}); the centre is "
            "never imputed"
        )
    return values.map(lambda v: v if pd.isna(v) else str(v))


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
                f"{name}: {column} is missing in {n_patients(int(empty.sum()))} "
                f"({listed(table.index[empty])}); outcomes are never imputed"
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
            f"{name}: {column} is numeric but holds text in {n_patients(int(text.sum()))} "
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
        who = _listed_values(text, odd) if len(found) > 1 else listed(text.index[odd])
        problems.append(
            f"{name}: {variable.name} holds {', '.join(map(repr, found))}, not among its "
            f"levels {variable.levels} in study.toml, in {n_patients(int(odd.sum()))} ({who})"
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
        f"{config.study.clinical}: {n_patients(int(rows.sum()))} have missing clinical values "
        f"({listed(detail, sep='; ')}); set validation.missing = "
        '"complete-case" or "impute-median-mode"'
    ]


def _apply_missing(config: StudyConfig, frame: pd.DataFrame, missing: pd.DataFrame):
    """``complete-case`` drops, ``impute-median-mode`` fills; ``multiple-imputation``
    keeps the missing values (the clinical stage imputes, ``study.imputed``)."""
    rows = missing.any(axis=1).to_numpy()
    if config.validation.missing == "multiple-imputation":
        return (
            frame,
            pd.DataFrame(columns=["patient", "stage", "reason"]),
            pd.DataFrame(columns=["patient", "variable", "value"]),
        )
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
    train = frame["set"].isin(config.study.train_sets).to_numpy()
    frame, records = fill_median_mode(frame, list(missing.columns[missing.any()]), train)
    return frame, pd.DataFrame(columns=["patient", "stage", "reason"]), records


class UnobservedVariable(ValueError):
    """A variable to fill has no observed value in the rows the fill is fitted on."""


def fill_median_mode(
    frame: pd.DataFrame, columns: list[str], fit_rows: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``frame`` with each of ``columns``' missing values filled by the median (numeric) or
    the mode (categorical; the first level among ties) of its values in the ``fit_rows``,
    and the record of each fill (patient, variable, value).

    ``impute-median-mode``'s fill: fitted on the training rows, and in the
    whole-procedure bootstrap on each resample (``study.internal``)."""
    records = []
    frame = frame.copy()
    for column in columns:
        observed = frame.loc[fit_rows, column].dropna()
        if observed.empty:
            raise UnobservedVariable(
                f"{column}: no observed value to impute its missing values from"
            )
        fill = (
            observed.mode().iloc[0]
            if isinstance(frame[column].dtype, pd.CategoricalDtype)
            else observed.median()
        )
        for patient in frame.index[frame[column].isna().to_numpy()]:
            records.append({"patient": patient, "variable": column, "value": str(fill)})
        frame[column] = frame[column].fillna(fill)
    return frame, pd.DataFrame(records, columns=["patient", "variable", "value"])


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
                f"events among {n_patients(int(rows.sum()))}; at least "
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
