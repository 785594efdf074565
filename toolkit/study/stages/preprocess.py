"""preprocess: the cohort's images -> one crop file per patient in ``STUDY_DIR/crops``.

``imaging.preprocess.preprocess_cohort`` registers, selects the largest-ROI
slice (and, with ``[imaging] slices`` other than 1, the slices around it), crops
and z-scores (see there). The stage is keyed on the manifest and every image's
size and modification time, and on [imaging] less ``pooling`` (the crops do not
depend on it) and less ``slices = 1`` (so a one-slice study keeps the key it had
before the setting existed); it hands on the crops folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.artifacts import file_hash, settings_hash
from toolkit.imaging.manifest import study_manifest
from toolkit.study._stages import Cached
from toolkit.study.context import Context

if TYPE_CHECKING:
    from toolkit.config import StudyConfig


def image_fingerprint(ctx: Context) -> str:
    """Manifest hash plus every image's size and mtime (hashing gigabytes each run is slow)."""
    manifest_path = ctx.paths.cohort / ctx.config.study.manifest
    manifest = study_manifest(ctx.config, ctx.paths.cohort).frame
    columns = [*ctx.config.imaging.phases, *(f"mask_{r}" for r in ctx.config.imaging.reader_order)]
    parts = [file_hash(manifest_path)]
    for column in columns:
        for rel in manifest[column].astype(str):
            path = manifest_path.parent / rel
            stat = path.stat() if path.exists() else None
            parts.append(f"{rel}:{stat.st_size}:{stat.st_mtime_ns}" if stat else f"{rel}:absent")
    return settings_hash({"files": parts})


def crop_settings(config: StudyConfig) -> dict[str, Any]:
    """[imaging] as the crops depend on it: without ``pooling``, and without ``slices`` at 1."""
    imaging = config.imaging
    leave_out = {"pooling"} | ({"slices"} if imaging.slices == 1 else set())
    return imaging.model_dump(by_alias=True, exclude=leave_out)


def keeps_volumes(config: StudyConfig) -> bool:
    """Whether preprocessing keeps each patient's box of the registered volumes for the
    radiomics stage: when that stage runs and reads only the masks' box (the Original image
    alone, without normalisation or resampling: ``imaging.radiomics.crop_safe``)."""
    if not config.radiomics.enabled:
        return False
    from toolkit.imaging import radiomics as rad

    if config.radiomics.parameter_file is not None:
        return False  # read by the radiomics stage, relative to the cohort: it rebuilds
    three_d = rad.parameters_from_settings(config.radiomics)
    return all(
        rad.crop_safe(p) for p in rad.extractor_parameters(three_d, config.radiomics.modes).values()
    )


def run(ctx: Context, given: Mapping[str, Any]) -> Cached:
    """Crop every patient; hands on ``crops``, the folder (its manifest.json lists the crops)."""
    from toolkit.imaging.preprocess import PreprocessSettings, preprocess_cohort

    manifest_path = ctx.paths.cohort / ctx.config.study.manifest
    volumes = keeps_volumes(ctx.config)

    def compute(key: str) -> dict[str, Path]:
        workers = ctx.workers if ctx.workers is not None else 2
        summary = preprocess_cohort(
            manifest_path,
            ctx.paths.crops,
            workers=workers,
            progress=False,
            settings=PreprocessSettings.from_config(ctx.config),
            volumes=volumes,
        )
        ctx.echo(f"    {summary}")
        return {"crops": ctx.paths.crops}

    return Cached(
        inputs={"images": image_fingerprint(ctx)},
        settings=crop_settings(ctx.config) | ({"volumes": True} if volumes else {}),
        files=(ctx.paths.crops / "manifest.json",),
        compute=compute,
        load=lambda: {"crops": ctx.paths.crops},
    )
