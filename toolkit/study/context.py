"""What the stages of one study run share: the study folder's paths and the run's context.

``StudyPaths`` names every place a stage reads or writes under STUDY_DIR;
``Context`` carries the validated study.toml, the run's options and the stage
log. Results themselves are not kept here: a stage hands them on to the
stages after it (``toolkit.study.pipeline``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.artifacts import file_hash, provenance
from toolkit.config import StudyConfig
from toolkit.study._stages import StageLog


@dataclass(frozen=True)
class StudyPaths:
    """The study folder and, within it, the cohort folder (the one holding study.toml)."""

    study_dir: Path
    cohort: Path

    @property
    def crops(self) -> Path:
        return self.study_dir / "crops"

    @property
    def features(self) -> Path:
        return self.study_dir / "features" / "features.parquet"

    @property
    def model(self) -> Path:
        """The locked model bundle (``toolkit.study.bundle``)."""
        return self.study_dir / "model"

    @property
    def results(self) -> Path:
        return self.study_dir / "results"

    @property
    def tables(self) -> Path:
        return self.results / "tables"

    @property
    def figures(self) -> Path:
        return self.results / "figures"


def resolve(study_dir: str | os.PathLike[str]) -> StudyPaths:
    """STUDY_DIR with study.toml, or with a cohort/ folder holding it."""
    study_dir = Path(study_dir)
    for cohort in (study_dir, study_dir / "cohort"):
        if (cohort / "study.toml").is_file():
            return StudyPaths(study_dir, cohort)
    raise FileNotFoundError(f"no study.toml in {study_dir} or {study_dir / 'cohort'}")


@dataclass
class Context:
    """What the stages share within one run.

    ``weights_origin`` and ``weights_sha256`` are those of the network weights
    the features were extracted with: the extract stage sets them from the
    features' provenance, so a run that skips extraction labels its outputs as
    the run that extracted them did.
    """

    paths: StudyPaths
    config: StudyConfig
    raw_settings: dict[str, Any]
    weights_source: str | None
    workers: int | None
    batch_size: int
    echo: Callable[[str], None]
    log: StageLog
    weights_origin: str = "unknown"
    weights_sha256: str = ""

    @property
    def synthetic(self) -> bool:
        return bool(self.config.study.synthetic)

    def prov(self, key: str, inputs: dict[str, str] | None = None) -> dict[str, Any]:
        """The provenance block of a stage's artifacts: its key, study.toml, the weights."""
        block = provenance(
            inputs=inputs or {},
            settings={"stage_key": key, "study_toml": self.raw_settings},
            weights=self.weights_origin,
            synthetic=self.synthetic,
        )
        block["weights_sha256"] = self.weights_sha256
        return block

    def stamp(self, network: bool = True):
        """The figure stamp; ``network=False`` for figures the network played no part in."""
        from toolkit.plots._stamp import Stamp

        return Stamp(synthetic=self.synthetic, weights=self.weights_origin if network else None)

    def clinical_hash(self) -> str:
        """The clinical table's file hash, part of the key of every stage that reads it."""
        return file_hash(self.paths.cohort / self.config.study.clinical)
