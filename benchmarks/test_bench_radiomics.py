"""Radiomics: the stage's extraction for a cohort vs a plain loop of PyRadiomics, and vs preprocess.

One small synthetic cohort on the full grid (``PATIENTS`` patients, 40 x 256 x 256,
0.8 x 0.8 x 2.5 mm, 3 readers), preprocessed once. In one group, same run:

* ``test_radiomics_ours``: ``imaging.radiomics.radiomics_cohort``, what the radiomics stage
  runs (2 Dask workers, the LocalCluster's start included; each patient's registered
  volumes rebuilt from its crop, then 3 readers x 2 phases x 2 modes);
* ``test_plain_extractor_loop``: the same volumes (``registered_volumes``), then a plain
  sequential loop of ``RadiomicsFeatureExtractor.execute`` with the same parameters on
  the whole volumes and masks, in this process;
* ``test_preprocess_same_cohort``: the preprocess stage's work on the same cohort
  (``preprocess_cohort``, 2 workers, QC pictures off): issue 17's target is a radiomics
  stage no slower than this, so its "speed-up" is preprocess / radiomics.

The timer must be wall-clock (pytest-benchmark's default, ``time.perf_counter``): the
Dask workers' CPU time is not this process's. Both extractions are checked equal after
the timing. 201 patients are extrapolated from this size, never measured here.
"""

from __future__ import annotations

import copy
import shutil

import pytest

PATIENTS = 6
ROUNDS = 3
WORKERS = 2
GROUP = f"radiomics, {PATIENTS} patients x 3 readers x 2 phases x 2 modes (40x256x256)"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from toolkit.config import load_study
    from toolkit.imaging import radiomics as rad
    from toolkit.imaging.manifest import read_manifest
    from toolkit.imaging.preprocess import PreprocessSettings, preprocess_cohort
    from toolkit.synth import generate_cohort

    root = tmp_path_factory.mktemp("bench_radiomics")
    generate_cohort(root / "cohort", PATIENTS, seed=0, workers=1)
    config = load_study(root / "cohort")
    settings = PreprocessSettings.from_config(config, qc=False)
    summary = preprocess_cohort(
        root / "cohort" / "manifest.csv", root / "crops", workers=0, progress=False,
        settings=settings,
    )  # fmt: skip
    assert summary.n_failed == 0
    params = rad.extractor_parameters(
        rad.parameters_from_settings(config.radiomics), config.radiomics.modes
    )
    return {
        "root": root,
        "config": config,
        "preprocess": settings,
        "settings": rad.RadiomicsSettings(tuple(config.imaging.phases), params),
        "rows": read_manifest(root / "cohort" / "manifest.csv", settings.readers).rows(),
    }


def _ours(prepared):
    from toolkit.imaging.radiomics import radiomics_cohort

    return radiomics_cohort(
        prepared["rows"], prepared["root"] / "crops", prepared["preprocess"],
        prepared["settings"], workers=WORKERS, progress=False,
    ).features  # fmt: skip


def _plain(prepared):
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    from toolkit.contracts import RadiomicsFeature
    from toolkit.imaging.preprocess import registered_volumes

    params = prepared["settings"].parameters
    out = {}
    for row in prepared["rows"]:
        crop = prepared["root"] / "crops" / f"{row['patient']}.npz"
        volumes = registered_volumes(row, prepared["preprocess"], crop)
        for reader, mask in volumes.masks.items():
            for phase in ("arterial", "portal"):
                for mode in ("3d", "2d"):
                    image, roi = volumes.phase(phase), mask
                    if mode == "2d":
                        k = volumes.slice_index[reader]
                        image, roi = image[:, :, k : k + 1], roi[:, :, k : k + 1]
                    extractor = RadiomicsFeatureExtractor(copy.deepcopy(params[mode]))
                    result = extractor.execute(image, roi)
                    for name, value in result.items():
                        if not name.startswith("diagnostics_"):
                            column = RadiomicsFeature.of(phase, mode, name).format()
                            out[(row["patient"], reader, column)] = float(value)
    return out


def test_radiomics_ours(benchmark, prepared):
    benchmark.group = GROUP
    table = benchmark.pedantic(_ours, (prepared,), rounds=ROUNDS, iterations=1)
    prepared["ours"] = table
    assert len(table) == PATIENTS * 3


def test_plain_extractor_loop(benchmark, prepared):
    benchmark.group = GROUP
    plain = benchmark.pedantic(_plain, (prepared,), rounds=ROUNDS, iterations=1)
    ours = prepared.get("ours")
    if ours is None:
        ours = _ours(prepared)
    indexed = ours.set_index(["patient", "reader"])
    for (patient, reader, column), value in plain.items():
        assert indexed.loc[(patient, reader), column] == value, (patient, reader, column)
    assert len(plain) == indexed.size


def _preprocess(prepared):
    from toolkit.imaging.preprocess import preprocess_cohort

    out = prepared["root"] / "crops_again"
    shutil.rmtree(out, ignore_errors=True)
    return preprocess_cohort(
        prepared["root"] / "cohort" / "manifest.csv", out, workers=WORKERS, progress=False,
        settings=prepared["preprocess"],
    )  # fmt: skip


def test_preprocess_same_cohort(benchmark, prepared):
    benchmark.group = GROUP
    summary = benchmark.pedantic(_preprocess, (prepared,), rounds=ROUNDS, iterations=1)
    assert summary.n_failed == 0
