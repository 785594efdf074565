"""Radiomics against preprocess at the demo's full size: issue 17's target, measured.

The demo's SYNTHETIC cohort (201 patients, seed 0, as ``make study`` generates it), each
stage's work as the study runs it, one round each (a round takes one to two minutes), in
this order:

* ``test_preprocess_stage``: ``preprocess_cohort`` with the study's settings (QC pictures
  on) and the volumes' boxes the radiomics stage reads (``volumes=True``, what the
  preprocess stage passes when radiomics is enabled), 2 Dask workers, into a new folder;
* ``test_radiomics_stage_ours``: ``radiomics_cohort`` on those crops with the study's
  ``[radiomics]`` (3 readers x 2 phases x 2 modes), 2 Dask workers.

The target is a radiomics stage no slower than preprocess: its "speed-up" in the table is
preprocess / radiomics (1x or more meets it). Each test records the load average before
and after (the machine is shared: only the ratio of one run counts). The cohort's
generation is not timed. The small 6-patient comparison with a plain PyRadiomics loop is
``test_bench_radiomics.py``.
"""

from __future__ import annotations

import os
import shutil

import pytest

PATIENTS = 201  # the demo's size (toolkit.cli.study demo)
WORKERS = 2
GROUP = f"radiomics vs preprocess stage, {PATIENTS} patients (the demo cohort)"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from toolkit.config import load_study
    from toolkit.imaging import radiomics as rad
    from toolkit.imaging.manifest import read_manifest
    from toolkit.imaging.preprocess import PreprocessSettings
    from toolkit.synth import generate_cohort

    root = tmp_path_factory.mktemp("bench_radiomics_full")
    generate_cohort(root / "cohort", PATIENTS, seed=0, workers=WORKERS)
    config = load_study(root / "cohort")
    settings = PreprocessSettings.from_config(config)
    three_d = rad.parameters_from_settings(config.radiomics)
    return {
        "root": root,
        "preprocess": settings,
        "radiomics": rad.RadiomicsSettings(
            tuple(config.imaging.phases), rad.extractor_parameters(three_d, config.radiomics.modes)
        ),
        "rows": read_manifest(root / "cohort" / "manifest.csv", settings.readers).rows(),
    }


def _timed(benchmark, function, demo):
    benchmark.group = GROUP
    benchmark.extra_info["loadavg_before"] = list(os.getloadavg())
    out = benchmark.pedantic(function, (demo,), rounds=1, iterations=1)
    benchmark.extra_info["loadavg_after"] = list(os.getloadavg())
    return out


def _preprocess(demo):
    from toolkit.imaging.preprocess import preprocess_cohort

    out = demo["root"] / "crops"
    shutil.rmtree(out, ignore_errors=True)
    return preprocess_cohort(
        demo["root"] / "cohort" / "manifest.csv", out, workers=WORKERS, progress=False,
        settings=demo["preprocess"], volumes=True,
    )  # fmt: skip


def _radiomics(demo):
    from toolkit.imaging.radiomics import radiomics_cohort

    return radiomics_cohort(
        demo["rows"], demo["root"] / "crops", demo["preprocess"], demo["radiomics"],
        workers=WORKERS, progress=False,
    )  # fmt: skip


def test_preprocess_stage(benchmark, demo):
    summary = _timed(benchmark, _preprocess, demo)
    assert summary.n_failed == 0
    assert len(list((demo["root"] / "crops" / "volumes").glob("*.npz"))) == PATIENTS


def test_radiomics_stage_ours(benchmark, demo):
    if not (demo["root"] / "crops" / "manifest.json").is_file():
        _preprocess(demo)  # run alone: the crops first, untimed
    cohort = _timed(benchmark, _radiomics, demo)
    assert cohort.failures.empty
    assert cohort.features["patient"].nunique() == PATIENTS
    benchmark.extra_info["features"] = len(cohort.features.columns) - 2
