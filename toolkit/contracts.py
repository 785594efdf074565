"""Typed names that sigkit's stages hand on: the one place their text form is made or read.

A deep feature is ``FeatureName(phase, index)``, written ``arterial_0012``; a handcrafted one
``RadiomicsFeature(phase, mode, image_type, feature_class, feature)``, written
``portal_3d_original_shape_VoxelVolume``; a model term is
``Term(variable, level)``, written ``bclc[C]`` for a level of a categorical variable (treatment
coding against its first level) and ``alt`` for a numeric one. Every column, JSON key and
table row that carries such a name is made by ``format`` and read back by ``parse``; nothing
else splits or matches these strings. docs/contracts.md describes them (a test keeps the two
in step).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PHASE = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_FEATURE = re.compile(r"(?P<phase>[A-Za-z][A-Za-z0-9]*)_(?P<index>[0-9]{4})")
_RADIOMICS = re.compile(
    r"(?P<phase>[A-Za-z][A-Za-z0-9]*)_(?P<mode>2d|3d)_(?P<pyradiomics>[^_]+_[^_]+_[^_]+)"
)
_PYRADIOMICS = re.compile(
    r"(?P<image_type>[A-Za-z][A-Za-z0-9.-]*)_(?P<feature_class>[A-Za-z][A-Za-z0-9]*)"
    r"_(?P<feature>[A-Za-z0-9]+)"
)
RADIOMICS_MODES = ("3d", "2d")
_VARIABLE = re.compile(r"[A-Za-z][A-Za-z0-9_.]*")
_TERM = re.compile(r"(?P<variable>[^\[\]]+)(\[(?P<level>[^\[\]]*)\])?")
_INDEX_LIMIT = 10_000  # four digits in the text form


class ContractError(ValueError):
    """A name that does not follow its contract; the message quotes it and says why."""


def _fullmatch(pattern: re.Pattern[str], text: str, expected: str) -> re.Match[str]:
    match = pattern.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ContractError(f"{text!r}: expected {expected}")
    return match


@dataclass(frozen=True, order=True)
class FeatureName:
    """One deep feature: the CT ``phase`` it comes from and its ``index`` in the network's output.

    ``phase`` is letters and digits (no underscore, which separates it from the index);
    ``index`` is 0 to 9999 and is written with four digits.
    """

    phase: str
    index: int

    def __post_init__(self) -> None:
        if not isinstance(self.phase, str) or not _PHASE.fullmatch(self.phase):
            raise ContractError(
                f"feature phase {self.phase!r}: use letters and digits only, starting with a "
                "letter (an underscore would make the feature name ambiguous)"
            )
        if isinstance(self.index, bool) or not isinstance(self.index, int):
            raise ContractError(f"feature index {self.index!r} of {self.phase}: not an integer")
        if not 0 <= self.index < _INDEX_LIMIT:
            raise ContractError(
                f"feature index {self.index} of {self.phase}: must be 0 to {_INDEX_LIMIT - 1}"
            )

    def format(self) -> str:
        return f"{self.phase}_{self.index:04d}"

    @classmethod
    def parse(cls, text: str) -> FeatureName:
        match = _fullmatch(
            _FEATURE, text, "a feature name <phase>_<4-digit index>, e.g. arterial_0012"
        )
        return cls(match["phase"], int(match["index"]))

    @classmethod
    def is_feature(cls, text: str) -> bool:
        """Whether ``text`` is a feature name (for picking feature columns out of a table)."""
        return isinstance(text, str) and _FEATURE.fullmatch(text) is not None


def feature_names(phase: str, n_features: int) -> list[str]:
    """The column names of one phase's ``n_features`` deep features, in index order."""
    return [FeatureName(phase, i).format() for i in range(n_features)]


@dataclass(frozen=True, order=True)
class RadiomicsFeature:
    """One PyRadiomics feature of a CT ``phase``, computed in ``mode`` ("3d": the tumour
    volume; "2d": the largest-ROI slice the crops come from).

    ``image_type``, ``feature_class`` and ``feature`` are the three parts of PyRadiomics' own
    name (``original_shape_VoxelVolume``, ``wavelet-LLH_glcm_Idmn``,
    ``log-sigma-1-0-mm-3D_firstorder_10Percentile``): the image type is letters, digits,
    ``-`` and ``.``; the class letters and digits; the feature letters and digits.
    """

    phase: str
    mode: str
    image_type: str
    feature_class: str
    feature: str

    def __post_init__(self) -> None:
        if not isinstance(self.phase, str) or not _PHASE.fullmatch(self.phase):
            raise ContractError(
                f"radiomics feature phase {self.phase!r}: use letters and digits only, "
                "starting with a letter"
            )
        if self.mode not in RADIOMICS_MODES:
            raise ContractError(
                f"radiomics feature mode {self.mode!r}: must be one of {', '.join(RADIOMICS_MODES)}"
            )
        name = f"{self.image_type}_{self.feature_class}_{self.feature}"
        parts = (self.image_type, self.feature_class, self.feature)
        if not all(isinstance(p, str) for p in parts) or not _PYRADIOMICS.fullmatch(name):
            raise ContractError(
                f"{name!r}: expected a PyRadiomics feature name <image type>_<class>_<feature>, "
                "e.g. original_shape_VoxelVolume"
            )

    @property
    def pyradiomics_name(self) -> str:
        """The name PyRadiomics gives the feature: ``original_shape_VoxelVolume``."""
        return f"{self.image_type}_{self.feature_class}_{self.feature}"

    def format(self) -> str:
        return f"{self.phase}_{self.mode}_{self.pyradiomics_name}"

    @classmethod
    def of(cls, phase: str, mode: str, pyradiomics_name: str) -> RadiomicsFeature:
        """The feature PyRadiomics names ``pyradiomics_name``, of ``phase`` in ``mode``."""
        match = _fullmatch(
            _PYRADIOMICS,
            pyradiomics_name,
            "a PyRadiomics feature name <image type>_<class>_<feature>, e.g. "
            "original_shape_VoxelVolume",
        )
        return cls(phase, mode, match["image_type"], match["feature_class"], match["feature"])

    @classmethod
    def parse(cls, text: str) -> RadiomicsFeature:
        match = _fullmatch(
            _RADIOMICS,
            text,
            "a radiomics feature name <phase>_<2d|3d>_<PyRadiomics name>, e.g. "
            "portal_3d_original_shape_VoxelVolume",
        )
        return cls.of(match["phase"], match["mode"], match["pyradiomics"])

    @classmethod
    def is_feature(cls, text: str) -> bool:
        """Whether ``text`` is a radiomics feature name (for picking columns out of a table)."""
        if not isinstance(text, str) or _RADIOMICS.fullmatch(text) is None:
            return False
        return _PYRADIOMICS.fullmatch(_RADIOMICS.fullmatch(text)["pyradiomics"]) is not None


def parse_feature(text: str) -> FeatureName | RadiomicsFeature:
    """A signature's feature from its text form: a deep ``FeatureName`` (``arterial_0012``)
    or a ``RadiomicsFeature`` (``portal_3d_original_shape_VoxelVolume``)."""
    if FeatureName.is_feature(text):
        return FeatureName.parse(text)
    if RadiomicsFeature.is_feature(text):
        return RadiomicsFeature.parse(text)
    raise ContractError(
        f"{text!r}: expected a feature name, deep (<phase>_<4-digit index>, e.g. arterial_0012) "
        "or radiomics (<phase>_<2d|3d>_<PyRadiomics name>, e.g. "
        "portal_3d_original_shape_VoxelVolume)"
    )


@dataclass(frozen=True)
class Term:
    """One model term: a ``variable`` and, for a categorical one, the ``level`` it codes.

    ``variable`` is a clinical variable's name (letters, digits, ``_`` and ``.``, starting with
    a letter) or ``signature``; ``level`` is ``None`` for a numeric variable, else a non-empty
    string without square brackets or surrounding spaces (``C``, ``>=400``, ``2_or_more``).
    """

    variable: str
    level: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.variable, str) or not _VARIABLE.fullmatch(self.variable):
            raise ContractError(
                f"term variable {self.variable!r}: use letters, digits, '_' and '.', "
                "starting with a letter"
            )
        if self.level is None:
            return
        if not isinstance(self.level, str):
            raise ContractError(f"level {self.level!r} of {self.variable}: not a string")
        if not self.level or self.level != self.level.strip() or re.search(r"[\[\]]", self.level):
            raise ContractError(
                f"level {self.level!r} of {self.variable}: must be non-empty, without square "
                "brackets or leading/trailing spaces"
            )

    def format(self) -> str:
        return self.variable if self.level is None else f"{self.variable}[{self.level}]"

    @classmethod
    def parse(cls, text: str) -> Term:
        match = _fullmatch(
            _TERM, text, "a model term <variable> or <variable>[<level>], e.g. bclc[C]"
        )
        try:
            return cls(match["variable"], match["level"])
        except ContractError as error:
            raise ContractError(f"model term {text!r}: {error}") from None


# ------------------------------------------------------------------ records of results/*.json
#
# Each record reads and writes one file of results/ (docs/contracts.md, "Results"). ``to_json``
# gives the mapping ``artifacts.write_json`` writes, key for key in the order the stages have
# always written them, so ``read(path).write(path)`` leaves the file byte for byte as it was;
# ``from_json`` refuses a mapping that lacks a key, naming it. Sections the report only shows
# (provenance, the nested metrics blocks) stay mappings, as written.

JsonMap = Mapping[str, Any]


def _field(data: JsonMap, key: str, where: str) -> Any:
    if not isinstance(data, Mapping) or key not in data:
        raise ContractError(f"{where}: no {key!r}")
    return data[key]


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _optional(key: str, value: Any) -> dict[str, Any]:
    """``{key: value}``, or nothing when the value is absent (None)."""
    return {} if value is None else {key: value}


class _JsonFile:
    """``read``/``write`` of a record with ``to_json``/``from_json``."""

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the record to ``path`` as ``artifacts.write_json`` does (atomically)."""
        from toolkit.artifacts import write_json

        return write_json(path, self.to_json())  # type: ignore[attr-defined]

    @classmethod
    def read(cls, path: str | os.PathLike[str], **options: Any):
        """The record of the JSON file at ``path`` (``options`` go to ``from_json``)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ContractError(f"{path}: cannot be read as JSON ({error})") from None
        try:
            return cls.from_json(data, **options)  # type: ignore[attr-defined]
        except ContractError as error:
            raise ContractError(f"{path}: {error}") from None


@dataclass(frozen=True)
class IccSummary:
    """The ICC filter's counts (signature.json's and metrics.json's ``icc``)."""

    n_features: int
    n_kept: int
    n_degenerate_removed: int
    threshold: float
    type: str

    def to_json(self) -> dict[str, Any]:
        return {
            "n_features": self.n_features,
            "n_kept": self.n_kept,
            "n_degenerate_removed": self.n_degenerate_removed,
            "threshold": self.threshold,
            "type": self.type,
        }

    @classmethod
    def from_json(cls, data: JsonMap) -> IccSummary:
        def get(key: str) -> Any:
            return _field(data, key, "icc")

        return cls(
            n_features=int(get("n_features")),
            n_kept=int(get("n_kept")),
            n_degenerate_removed=int(get("n_degenerate_removed")),
            threshold=float(get("threshold")),
            type=str(get("type")),
        )


@dataclass(frozen=True)
class SignatureSpec(_JsonFile):
    """results/signature.json: the deep-learning signature as the signature stage fitted it
    (results/signature_radiomics.json: the radiomics signature, of ``RadiomicsFeature``s).

    ``n_incomplete`` counts the features left out before the ICC filter because they are
    NaN for some patient (PyRadiomics could not compute them); None where the source never
    has any (the deep features), and then signature.json has no such key.
    The signature is ``sum_k coefficients[k] * (x_k - means[k]) / scales[k]`` over the
    ``features`` (primary reader's values; ``scales`` are the training SDs, ``ddof = 0``).
    """

    features: tuple[FeatureName | RadiomicsFeature, ...]
    coefficients: tuple[float, ...]
    l1_ratio: float
    penalty: str
    penalty_value: float
    formula: str
    means: tuple[float, ...]
    scales: tuple[float, ...]
    note: str = ""
    icc: IccSummary | None = None
    provenance: JsonMap | None = None
    n_incomplete: int | None = None

    def __post_init__(self) -> None:
        sizes = {len(self.features), len(self.coefficients), len(self.means), len(self.scales)}
        if len(sizes) != 1:
            raise ContractError(
                f"signature: {len(self.features)} features, {len(self.coefficients)} "
                f"coefficients, {len(self.means)} means and {len(self.scales)} scales"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "features": [f.format() for f in self.features],
            "coefficients": list(self.coefficients),
            "l1_ratio": self.l1_ratio,
            "penalty": self.penalty,
            "penalty_value": self.penalty_value,
            "formula": self.formula,
            "standardisation": {"means": list(self.means), "scales": list(self.scales)},
            "note": self.note,
            **_optional("icc", self.icc.to_json() if self.icc is not None else None),
            **_optional("n_incomplete", self.n_incomplete),
            **_optional("provenance", self.provenance),
        }

    @classmethod
    def from_json(cls, data: JsonMap) -> SignatureSpec:
        def get(key: str) -> Any:
            return _field(data, key, "signature")

        standardisation = get("standardisation")
        icc = data.get("icc")
        return cls(
            features=tuple(parse_feature(f) for f in get("features")),
            coefficients=_floats(get("coefficients")),
            l1_ratio=float(get("l1_ratio")),
            penalty=str(get("penalty")),
            penalty_value=float(get("penalty_value")),
            formula=str(get("formula")),
            means=_floats(_field(standardisation, "means", "signature standardisation")),
            scales=_floats(_field(standardisation, "scales", "signature standardisation")),
            note=str(data.get("note", "")),
            icc=IccSummary.from_json(icc) if icc is not None else None,
            provenance=data.get("provenance"),
            n_incomplete=None if data.get("n_incomplete") is None else int(data["n_incomplete"]),
        )


@dataclass(frozen=True)
class CoxModel:
    """One final Cox model of models.json: what prediction, the nomogram and R's refit need.

    The linear predictor is ``sum_j coef[j] * x_j`` over the treatment-coded ``terms`` of the
    ``variables`` (categorical ones coded against the first of their training ``levels``);
    the predicted survival at time t is ``baseline_survival[t] ** exp(lp - lp_centre)``
    (survfit.coxph's centring: ``lp_centre = sum_j coef[j] * means[j]``).
    """

    name: str
    variables: tuple[str, ...]
    terms: tuple[Term, ...]
    coef: tuple[float, ...]
    se: tuple[float, ...]
    p: tuple[float, ...]
    means: tuple[float, ...]
    lp_centre: float
    baseline_survival: Mapping[str, float]
    loglik: float
    aic: float
    levels: Mapping[str, tuple[str, ...]]
    note: str = ""

    def __post_init__(self) -> None:
        sizes = {len(self.terms), len(self.coef), len(self.se), len(self.p), len(self.means)}
        if len(sizes) != 1:
            raise ContractError(
                f"model {self.name!r}: {len(self.terms)} terms but {len(self.coef)} "
                f"coefficients, {len(self.se)} SEs, {len(self.p)} P values, "
                f"{len(self.means)} means"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "variables": list(self.variables),
            "terms": [t.format() for t in self.terms],
            "coef": list(self.coef),
            "se": list(self.se),
            "p": list(self.p),
            "means": list(self.means),
            "lp_centre": self.lp_centre,
            "baseline_survival": dict(self.baseline_survival),
            "loglik": self.loglik,
            "aic": self.aic,
            "levels": {k: list(v) for k, v in self.levels.items()},
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: JsonMap):
        where = f"model {data.get('name')!r}" if isinstance(data, Mapping) else "model"

        def get(key: str) -> Any:
            return _field(data, key, where)

        return cls(
            name=str(get("name")),
            variables=tuple(str(v) for v in get("variables")),
            terms=tuple(Term.parse(t) for t in get("terms")),
            coef=_floats(get("coef")),
            se=_floats(get("se")),
            p=_floats(get("p")),
            means=_floats(get("means")),
            lp_centre=float(get("lp_centre")),
            baseline_survival={str(k): float(v) for k, v in get("baseline_survival").items()},
            loglik=float(get("loglik")),
            aic=float(get("aic")),
            levels={str(k): tuple(str(x) for x in v) for k, v in get("levels").items()},
            note=str(data.get("note", "")),
        )


@dataclass(frozen=True)
class StudyModels(_JsonFile):
    """results/models.json: the final Cox models by name, and the notes of their selection."""

    models: Mapping[str, CoxModel]
    selection_notes: tuple[str, ...] = ()
    provenance: JsonMap | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "models": {k: m.to_json() for k, m in self.models.items()},
            "selection_notes": list(self.selection_notes),
            **_optional("provenance", self.provenance),
        }

    @classmethod
    def from_json(cls, data: JsonMap, model: type[CoxModel] = CoxModel) -> StudyModels:
        """``model`` is the record type of each model (a subclass adds methods, no fields)."""
        models = _field(data, "models", "models.json")
        return cls(
            models={str(k): model.from_json(v) for k, v in models.items()},
            selection_notes=tuple(str(n) for n in data.get("selection_notes") or ()),
            provenance=data.get("provenance"),
        )


@dataclass(frozen=True)
class NomogramSpec(_JsonFile):
    """results/nomogram_<model>.json: a model's points scales (the calculator reads it).

    ``predictors`` are as docs/contracts.md shows them ("Nomogram JSON"): a categorical
    one with its ``levels`` (value, lp, points), a numeric one with ``coef``, ``min``,
    ``max``, ``points_at_min``, ``points_per_unit`` and ``ticks`` (value, points).
    """

    model: str
    time_unit: str
    points_per_lp: float
    lp_centre: float
    lp_at_zero_points: float
    baseline_survival: Mapping[str, float]
    predictors: tuple[JsonMap, ...]
    provenance: JsonMap | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "time_unit": self.time_unit,
            "points_per_lp": self.points_per_lp,
            "lp_centre": self.lp_centre,
            "lp_at_zero_points": self.lp_at_zero_points,
            "baseline_survival": dict(self.baseline_survival),
            "predictors": [dict(p) for p in self.predictors],
            **_optional("provenance", self.provenance),
        }

    @classmethod
    def from_json(cls, data: JsonMap) -> NomogramSpec:
        where = f"nomogram {data.get('model')!r}" if isinstance(data, Mapping) else "nomogram"

        def get(key: str) -> Any:
            return _field(data, key, where)

        return cls(
            model=str(get("model")),
            time_unit=str(get("time_unit")),
            points_per_lp=float(get("points_per_lp")),
            lp_centre=float(get("lp_centre")),
            lp_at_zero_points=float(get("lp_at_zero_points")),
            baseline_survival={str(k): float(v) for k, v in get("baseline_survival").items()},
            predictors=tuple(get("predictors")),
            provenance=data.get("provenance"),
        )


@dataclass(frozen=True)
class Stage:
    """One stage of a run (metrics.json's ``stages``): its name, seconds, and whether it was
    skipped because its inputs and settings were unchanged."""

    name: str
    seconds: float
    skipped: bool

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "seconds": self.seconds, "skipped": self.skipped}

    @classmethod
    def from_json(cls, data: JsonMap) -> Stage:
        def get(key: str) -> Any:
            return _field(data, key, "stage")

        return cls(str(get("name")), float(get("seconds")), bool(get("skipped")))


_METRICS_SECTIONS = (
    "cohort",
    "cindex",
    "comparisons",
    "calibration",
    "risk_groups",
    "td_auc",
    "median_survival",
)


@dataclass(frozen=True)
class Metrics(_JsonFile):
    """results/metrics.json: the validation stage's numbers, one section per kind.

    The nested sections are mappings as written (set -> model -> ...; docs/contracts.md
    shows each); ``stages`` and ``r_check_passed`` are added at the end of a run, and are
    None in a metrics.json written by the validation stage alone.
    """

    provenance: JsonMap
    cohort: JsonMap
    icc: IccSummary | None
    cindex: JsonMap
    comparisons: JsonMap
    calibration: JsonMap
    risk_groups: JsonMap
    td_auc: JsonMap
    median_survival: JsonMap
    selection_notes: tuple[str, ...] = ()
    accuracy: JsonMap | None = None
    fixed_model_validation: JsonMap | None = None
    stages: tuple[Stage, ...] | None = None
    r_check_passed: bool | None = None

    def to_json(self) -> dict[str, Any]:
        sections = {name: getattr(self, name) for name in _METRICS_SECTIONS}
        stages = None if self.stages is None else [s.to_json() for s in self.stages]
        return {
            "provenance": self.provenance,
            "cohort": sections.pop("cohort"),
            "icc": self.icc.to_json() if self.icc is not None else {},
            **sections,
            "selection_notes": list(self.selection_notes),
            **_optional("accuracy", self.accuracy),
            **_optional("fixed_model_validation", self.fixed_model_validation),
            **_optional("stages", stages),
            **_optional("r_check_passed", self.r_check_passed),
        }

    @classmethod
    def from_json(cls, data: JsonMap) -> Metrics:
        sections = {name: _field(data, name, "metrics") for name in _METRICS_SECTIONS}
        icc = _field(data, "icc", "metrics")
        stages = data.get("stages")
        passed = data.get("r_check_passed")
        return cls(
            provenance=_field(data, "provenance", "metrics"),
            icc=IccSummary.from_json(icc) if icc else None,
            selection_notes=tuple(str(n) for n in data.get("selection_notes") or ()),
            accuracy=data.get("accuracy"),
            fixed_model_validation=data.get("fixed_model_validation"),
            stages=None if stages is None else tuple(Stage.from_json(s) for s in stages),
            r_check_passed=None if passed is None else bool(passed),
            **sections,
        )


@dataclass(frozen=True)
class RCheckEntry:
    """One statistic of r_check.json: ours and R's values at the worst element, their
    absolute difference and the tolerance (None where R failed or a side is missing)."""

    name: str
    ours: float | None
    r: float | None
    diff: float | None
    tolerance: float | None
    passed: bool
    n_values: int | None = None
    message: str = ""
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ours": self.ours,
            "r": self.r,
            "diff": self.diff,
            "tolerance": self.tolerance,
            "passed": self.passed,
            **_optional("n_values", self.n_values),
            **_optional("message", self.message or None),
            **_optional("notes", list(self.notes) or None),
        }

    @classmethod
    def from_json(cls, data: JsonMap) -> RCheckEntry:
        where = f"check {data.get('name')!r}" if isinstance(data, Mapping) else "check"

        def number(key: str) -> float | None:
            value = _field(data, key, where)
            return None if value is None else float(value)

        n_values = data.get("n_values")
        return cls(
            name=str(_field(data, "name", where)),
            ours=number("ours"),
            r=number("r"),
            diff=number("diff"),
            tolerance=number("tolerance"),
            passed=bool(_field(data, "passed", where)),
            n_values=None if n_values is None else int(n_values),
            message=str(data.get("message", "")),
            notes=tuple(str(n) for n in data.get("notes", ())),
        )


@dataclass(frozen=True)
class RCheck(_JsonFile):
    """results/r_check.json: every R cross-check of the run; ``passed`` when all pass."""

    passed: bool
    checks: tuple[RCheckEntry, ...]
    provenance: JsonMap | None = None

    @property
    def failed(self) -> tuple[RCheckEntry, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "checks": [c.to_json() for c in self.checks],
            **_optional("provenance", self.provenance),
        }

    @classmethod
    def from_json(cls, data: JsonMap) -> RCheck:
        checks = _field(data, "checks", "r_check.json")
        return cls(
            passed=bool(_field(data, "passed", "r_check.json")),
            checks=tuple(RCheckEntry.from_json(c) for c in checks),
            provenance=data.get("provenance"),
        )


@dataclass(frozen=True)
class InternalValidation(_JsonFile):
    """results/internal_validation.json: the whole-procedure bootstrap's resamples.

    ``dropped`` lists each resample left out, as ``{"replicate": b, "reason": ...}``;
    ``refilled`` is the ``validation.missing`` rule each resample repeated to fill its
    missing clinical values ("" when the study filled none); the statistics themselves
    are in tables/internal_validation.parquet.
    """

    B: int
    seed: int
    n_used: int
    dropped: tuple[JsonMap, ...]
    refilled: str = ""
    provenance: JsonMap | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "B": self.B,
            "seed": self.seed,
            "n_used": self.n_used,
            "dropped": [dict(d) for d in self.dropped],
            **_optional("refilled", self.refilled or None),
            **_optional("provenance", self.provenance),
        }

    @classmethod
    def from_json(cls, data: JsonMap) -> InternalValidation:
        def get(key: str) -> Any:
            return _field(data, key, "internal_validation.json")

        return cls(
            B=int(get("B")),
            seed=int(get("seed")),
            n_used=int(get("n_used")),
            dropped=tuple(dict(d) for d in get("dropped")),
            refilled=str(data.get("refilled", "")),
            provenance=data.get("provenance"),
        )
