"""A signature of one feature source: ICC filter -> mRMR -> elastic-net Cox with k-fold CV.

The feature source is a parameter (:class:`FeatureSource`): the deep features
(:data:`DEEP`, ``FeatureName`` columns) give the deep-learning signature, the PyRadiomics
features (:data:`RADIOMICS`, ``RadiomicsFeature`` columns) the radiomics signature, by the
same steps. A feature that is NaN for some patient of the table (PyRadiomics could not
compute it) is left out before step 1, and the build counts it (``n_incomplete``); the
deep features are never NaN.

1. **Reproducibility.** For every deep feature, ICC (``icc_type``, ICC(2,1) by
   default) across the readers' delineations on the training patients
   (``stats.icc.icc_many``); features below ``icc_threshold`` (or with an
   undefined ICC, e.g. constant) are left out before ranking.
2. **mRMR** (``stats.mrmr.rank``, mRMRe's classic survival scheme) ranks the kept
   features of the primary reader on the training set; the top ``mrmr_k`` go on.
3. **Elastic-net Cox** (``stats.coxnet.cv``) on the z-scored top features
   (training mean and SD, ``ddof = 0``), one CV per ``l1_ratio`` with the same
   folds; the l1_ratio whose chosen penalty (``penalty_min`` or ``penalty_1se``)
   has the lowest CV deviance wins. If that penalty keeps no feature (the
   signature would be constant), the penalty with the lowest CV deviance among
   those keeping at least one feature is used instead, and signature.json says so.

The signature is ``sum_k coef_k * (x_k - mean_k) / sd_k``: higher = worse.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from toolkit.config import Signature as SignatureSettings
from toolkit.config import StudyConfig
from toolkit.contracts import FeatureName, IccSummary, RadiomicsFeature, SignatureSpec
from toolkit.stats._checks import drop_redundant, listed
from toolkit.stats._rows import row_products


class SignatureError(ValueError):
    """The features cannot give a signature (too few reproducible features...)."""


@dataclass(frozen=True)
class FeatureSource:
    """Where a signature's features come from: their columns and the names of its files.

    ``name``: "deep" or "radiomics"; ``suffix``: added to the stem of every file of its
    signature ("" for the deep one: ``signature.json``; ``_radiomics``:
    ``signature_radiomics.json``, ``icc_radiomics.parquet``, ...); ``is_feature`` and
    ``parse``: the contract of its column names.
    """

    name: str
    suffix: str
    is_feature: Callable[[str], bool]
    parse: Callable[[str], FeatureName | RadiomicsFeature]

    def file(self, stem: str, extension: str) -> str:
        """The file name of ``stem`` for this source: ``icc.parquet``, ``icc_radiomics.parquet``."""
        return f"{stem}{self.suffix}.{extension}"


DEEP = FeatureSource("deep", "", FeatureName.is_feature, FeatureName.parse)
RADIOMICS = FeatureSource(
    "radiomics", "_radiomics", RadiomicsFeature.is_feature, RadiomicsFeature.parse
)


@dataclass(frozen=True)
class Signature:
    """The fitted signature, to score features tables; signature.json holds its
    ``SignatureSpec`` (``spec``, ``from_spec``)."""

    features: tuple[FeatureName | RadiomicsFeature, ...]
    coefficients: np.ndarray
    means: np.ndarray
    scales: np.ndarray
    l1_ratio: float
    penalty: str
    penalty_value: float
    note: str = ""

    @property
    def columns(self) -> list[str]:
        """The features' column names in a features table."""
        return [f.format() for f in self.features]

    def score(self, table: pd.DataFrame) -> np.ndarray:
        """The signature of each row of a features table (columns named as the features)."""
        missing = [c for c in self.columns if c not in table.columns]
        if missing:
            raise SignatureError(f"features table lacks signature features {listed(missing)}")
        x = table[self.columns].to_numpy(dtype=float)
        return row_products((x - self.means) / self.scales, self.coefficients)

    def formula(self) -> str:
        terms = [
            f"{c:+.6g} * ({f} - {m:.6g}) / {s:.6g}"
            for f, c, m, s in zip(
                self.columns, self.coefficients, self.means, self.scales, strict=True
            )
        ]
        return "signature = " + " ".join(terms)

    def spec(
        self,
        icc: IccSummary | None = None,
        provenance: Mapping[str, Any] | None = None,
        n_incomplete: int | None = None,
    ) -> SignatureSpec:
        """signature.json's record, with the ICC filter's counts, the provenance and (for a
        source whose features can be NaN) the count of features left out as incomplete."""
        return SignatureSpec(
            features=self.features,
            coefficients=tuple(float(c) for c in self.coefficients),
            l1_ratio=self.l1_ratio,
            penalty=self.penalty,
            penalty_value=self.penalty_value,
            formula=self.formula(),
            means=tuple(float(m) for m in self.means),
            scales=tuple(float(s) for s in self.scales),
            note=self.note,
            icc=icc,
            provenance=provenance,
            n_incomplete=n_incomplete,
        )

    @classmethod
    def from_spec(cls, spec: SignatureSpec) -> Signature:
        return cls(
            features=spec.features,
            coefficients=np.asarray(spec.coefficients, dtype=float),
            means=np.asarray(spec.means, dtype=float),
            scales=np.asarray(spec.scales, dtype=float),
            l1_ratio=spec.l1_ratio,
            penalty=spec.penalty,
            penalty_value=spec.penalty_value,
            note=spec.note,
        )

    def to_json(self) -> dict[str, Any]:
        """signature.json's mapping without the ICC counts and provenance."""
        return self.spec().to_json()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Signature:
        return cls.from_spec(SignatureSpec.from_json(data))


@dataclass(frozen=True)
class SignatureBuild:
    signature: Signature
    icc: np.ndarray  # per feature column, in the features table's order
    feature_names: tuple[str, ...]
    kept: tuple[str, ...]
    n_copies: int
    ranking: pd.DataFrame  # mRMR order of the top features
    cv: pd.DataFrame  # per l1_ratio: chosen penalty, CV deviance, features kept
    n_incomplete: int = 0  # features NaN for some patient, left out before the ICC filter


def feature_names(
    table: pd.DataFrame, phases: list[str], source: FeatureSource = DEEP
) -> list[str]:
    """The table's feature columns of ``source`` in ``phases``, in the table's order."""
    wanted = set(phases)
    return [c for c in table.columns if source.is_feature(c) and source.parse(c).phase in wanted]


def complete_features(table: pd.DataFrame, names: list[str]) -> tuple[list[str], list[str]]:
    """``names`` split into those with a value for every row of ``table`` and the others."""
    present = table[names].notna().all(axis=0).to_numpy() if names else np.zeros(0, bool)
    complete = [n for n, ok in zip(names, present, strict=True) if ok]
    return complete, [n for n, ok in zip(names, present, strict=True) if not ok]


def reader_array(
    table: pd.DataFrame, patients: list[str], readers: list[str], names: list[str]
) -> np.ndarray:
    """(patients, readers, features) ratings for the ICC; errors name missing rows."""
    indexed = table.set_index(["patient", "reader"])
    wanted = pd.MultiIndex.from_product([patients, readers], names=["patient", "reader"])
    absent = wanted.difference(indexed.index)
    if len(absent):
        shown = listed([f"{p}/{r}" for p, r in absent])
        raise SignatureError(f"features table lacks {len(absent)} patient/reader rows: {shown}")
    values = indexed.loc[wanted, names].to_numpy(dtype=float)
    return values.reshape(len(patients), len(readers), len(names))


def icc_filter(ratings: np.ndarray, kind: str, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """ICC per feature and the mask of features kept (ICC >= threshold)."""
    from toolkit.stats.icc import icc_many

    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.asarray(icc_many(ratings, kind=kind), dtype=float)
    return values, np.isfinite(values) & (values >= threshold)


def redundant_features(x: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """Mask of features that are an affine copy of an earlier one or nearly constant.

    An affine copy (|r| = 1: z-scores equal to 10 decimals up to sign) gives an
    infinite mutual information in mRMR, whose scores become NaN, and a
    duplicated column to the elastic net after z-scoring; random-weight
    networks produce such copies (dead channels). A feature with fewer than
    max(5, fraction * n) distinct values is nearly constant: sparse ReLU
    features (zero for almost every patient) give degenerate rankings, as a
    feature non-zero in two patients can have Somers' D of +/-1 with survival.
    """
    min_distinct = max(5, int(np.ceil(fraction * x.shape[0])))
    return drop_redundant(x, min_distinct=min_distinct, affine=True).dropped


def _choose(fits: dict[float, Any], penalty: str) -> tuple[float, int, str]:
    """The l1_ratio and penalty index to use (see the module docstring)."""
    best = None
    for ratio, fit in fits.items():
        index = fit.index_min if penalty == "min" else fit.index_1se
        score = float(fit.cv_mean[index])
        if best is None or score < best[0]:
            best = (score, ratio, index)
    _, ratio, index = best
    fit = fits[ratio]
    if np.any(fit.path.coef[index] != 0):
        return ratio, index, ""
    nonzero = np.flatnonzero(np.any(fit.path.coef != 0, axis=1))
    if not len(nonzero):
        raise SignatureError("the elastic-net path keeps no feature at any penalty")
    index = int(nonzero[np.argmin(fit.cv_mean[nonzero])])
    note = (
        f"penalty_{penalty} kept no feature; used the penalty with the lowest CV deviance "
        f"among those keeping at least one ({fit.penalties[index]:.4g})"
    )
    return ratio, index, note


def training_ratings(
    features: pd.DataFrame,
    clinical: pd.DataFrame,
    config: StudyConfig,
    source: FeatureSource = DEEP,
    names: list[str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """The training patients' (patients, readers, features) ratings and the feature names.

    Patients in the clinical frame's order, readers primary-first
    (``config.imaging.reader_order``): ``ratings[:, 0]`` is the reader the
    signature is ranked and fitted on, and the one run.py scores and the CAMs draw.
    ``names``: the feature columns to take (default: every feature of ``source``).
    """
    train = clinical.index[clinical["set"].isin(config.study.train_sets)].astype(str).tolist()
    if names is None:
        names = feature_names(features, config.imaging.phases, source)
    return reader_array(features, train, list(config.imaging.reader_order), names), names


def build(
    features: pd.DataFrame,
    clinical: pd.DataFrame,
    config: StudyConfig,
    source: FeatureSource = DEEP,
) -> SignatureBuild:
    """Build the signature of ``source``'s features on the training patients (see the
    module docstring); features NaN for some patient of ``features`` are left out first."""
    names, incomplete = complete_features(
        features, feature_names(features, config.imaging.phases, source)
    )
    ratings, names = training_ratings(features, clinical, config, source, names)
    train = clinical[clinical["set"].isin(config.study.train_sets)]
    time = train["time"].to_numpy(float)
    event = train["event"].to_numpy(float)
    built = fit_signature(ratings, names, time, event, config.signature, source)
    return dataclasses.replace(built, n_incomplete=len(incomplete))


def fit_signature(
    ratings: np.ndarray,
    names: list[str],
    time: np.ndarray,
    event: np.ndarray,
    settings: SignatureSettings,
    source: FeatureSource = DEEP,
) -> SignatureBuild:
    """The signature of ``ratings`` (patients, readers, features; primary reader first).

    Every step of the module docstring on these patients alone: what
    :func:`build` runs on the training set, and ``study.internal`` on each
    bootstrap resample of it. ``names`` are the features' column names,
    ``time``/``event`` the patients' outcome, ``source`` their contract.
    """
    from toolkit.stats import coxnet, mrmr

    icc, kept_mask = icc_filter(ratings, settings.icc_type, settings.icc_threshold)
    kept = [n for n, k in zip(names, kept_mask, strict=True) if k]
    if len(kept) < 2:
        raise SignatureError(
            f"only {len(kept)} of {len(names)} features have {settings.icc_type} >= "
            f"{settings.icc_threshold}; lower signature.icc_threshold or check the masks"
        )
    primary = ratings[:, 0, :][:, kept_mask]
    copies = redundant_features(primary)
    kept = [n for n, c in zip(kept, copies, strict=True) if not c]
    primary = primary[:, ~copies]
    ranked = mrmr.rank(primary, (time, event), min(settings.mrmr_k, len(kept)), names=kept)
    top = list(ranked.names)
    x = primary[:, np.asarray(ranked.indices)]
    means, scales = x.mean(axis=0), x.std(axis=0)
    scales = np.where(scales > 0, scales, 1.0)
    z = (x - means) / scales
    fits = {
        ratio: coxnet.cv(z, time, event, ratio, n_folds=settings.n_folds, seed=settings.seed)
        for ratio in settings.l1_ratios
    }
    ratio, index, note = _choose(fits, settings.penalty)
    coef = np.asarray(fits[ratio].path.coef[index], dtype=float)
    chosen = np.flatnonzero(coef != 0)
    signature = Signature(
        features=tuple(source.parse(top[i]) for i in chosen),
        coefficients=coef[chosen],
        means=means[chosen],
        scales=scales[chosen],
        l1_ratio=float(ratio),
        penalty=settings.penalty,
        penalty_value=float(fits[ratio].penalties[index]),
        note=note,
    )
    ranking = pd.DataFrame(
        {
            "rank": np.arange(1, len(top) + 1),
            "feature": top,
            "mrmr_score": np.asarray(ranked.scores, dtype=float),
            "icc": icc[[names.index(f) for f in top]],
        }
    )
    cv_rows = []
    for r, fit in fits.items():
        i = fit.index_min if settings.penalty == "min" else fit.index_1se
        cv_rows.append(
            {
                "l1_ratio": r,
                "penalty": float(fit.penalties[i]),
                "cv_deviance": float(fit.cv_mean[i]),
                "cv_se": float(fit.cv_se[i]),
                "n_features": int(np.sum(fit.path.coef[i] != 0)),
                "chosen": r == ratio,
            }
        )
    n_copies = int(copies.sum())
    cv_table = pd.DataFrame(cv_rows)
    return SignatureBuild(signature, icc, tuple(names), tuple(kept), n_copies, ranking, cv_table)


def feature_table(build_result: SignatureBuild) -> pd.DataFrame:
    """signature_features.parquet: feature, phase, coefficient, ICC, mRMR rank."""
    sig = build_result.signature
    names = list(build_result.feature_names)
    ranks = dict(zip(build_result.ranking["feature"], build_result.ranking["rank"], strict=True))
    return pd.DataFrame(
        {
            "feature": sig.columns,
            "phase": [f.phase for f in sig.features],
            "coefficient": sig.coefficients,
            "icc": [float(build_result.icc[names.index(f)]) for f in sig.columns],
            "mrmr_rank": [int(ranks[f]) for f in sig.columns],
        }
    )
