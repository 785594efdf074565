"""radiomics: the crops' volumes and masks -> PyRadiomics features.

Writes ``results/tables/radiomics_features.parquet``.
``imaging.radiomics.radiomics_cohort`` does the work (see there): every patient with a
crop, every reader, phase and mode of study.toml's ``[radiomics]``, on the registered
volumes the crops were cut from. One row per patient and reader (``patient``, ``reader``,
then ``RadiomicsFeature`` columns such as ``portal_3d_original_shape_VoxelVolume``); the
features PyRadiomics could not compute are NaN, each listed in
``results/tables/radiomics_warnings.parquet`` (patient, reader, phase, mode, warning) and
warned of (``RadiomicsWarning``). The provenance records PyRadiomics' version and every
mode's parameters.
Keyed on the crops' manifest, the settings, PyRadiomics' version and sigkit's changes to
its extractor (``imaging.radiomics.EXTRACTOR``); with
``enabled = false`` nothing is computed and ``radiomics`` is None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from toolkit.artifacts import file_hash, write_parquet
from toolkit.study._stages import Cached
from toolkit.study.context import Context


def settings_of(ctx: Context):
    """The study's ``RadiomicsSettings``: study.toml's [radiomics], or its parameter file."""
    from toolkit.imaging import radiomics as rad

    section = ctx.config.radiomics
    if section.parameter_file is not None:
        three_d = rad.read_parameter_file(ctx.paths.cohort / section.parameter_file)
    else:
        three_d = rad.parameters_from_settings(section)
    return rad.RadiomicsSettings(
        phases=tuple(ctx.config.imaging.phases),
        parameters=rad.extractor_parameters(three_d, section.modes),
    )


def _table(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({"patient": str, "reader": str})


def run(ctx: Context, given: Mapping[str, Any]) -> Cached | Mapping[str, Any]:
    """Hands on ``radiomics``: the features table (None when ``[radiomics] enabled = false``)."""
    if not ctx.config.radiomics.enabled:
        ctx.echo("    radiomics disabled ([radiomics] enabled = false)")
        return {"radiomics": None}
    from toolkit.imaging import radiomics as rad
    from toolkit.imaging.manifest import study_manifest
    from toolkit.imaging.preprocess import PreprocessSettings

    crops = given["crops"]
    settings = settings_of(ctx)
    features_path = ctx.paths.tables / "radiomics_features.parquet"
    warnings_path = ctx.paths.tables / "radiomics_warnings.parquet"
    inputs = {"crops": file_hash(crops / "manifest.json")}

    def compute(key: str) -> dict[str, pd.DataFrame]:
        cohort = rad.radiomics_cohort(
            study_manifest(ctx.config, ctx.paths.cohort).rows(),
            crops,
            PreprocessSettings.from_config(ctx.config),
            settings,
            workers=ctx.workers if ctx.workers is not None else 2,
            progress=False,
        )
        ctx.echo(f"    {cohort}")
        for _, failure in cohort.failures.iterrows():
            ctx.echo(f"    radiomics failed for {failure['patient']}: {failure['reason']}")
        prov = ctx.prov(key, inputs) | {"radiomics": settings.as_dict()}
        write_parquet(warnings_path, cohort.warnings, prov)
        write_parquet(features_path, cohort.features, prov)
        return {"radiomics": _table(cohort.features)}

    return Cached(
        inputs=inputs,
        settings=settings.as_dict(),
        files=(features_path, warnings_path),
        compute=compute,
        load=lambda: {"radiomics": _table(pd.read_parquet(features_path))},
    )
