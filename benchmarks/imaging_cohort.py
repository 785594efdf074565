"""End-to-end timing of the synthetic cohort and its preprocessing (not a pytest file).

    .venv/bin/python benchmarks/imaging_cohort.py --patients 201 --out runs/bench-imaging

Generates the cohort (timed), preprocesses it with 1 and with 2 Dask workers
into separate folders (timed, QC pictures included), and reports per-patient
registration and cropping seconds and the registration errors against the
ground truth, as JSON on stdout and in OUT/imaging_benchmark.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=201)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-imaging"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    from toolkit.artifacts import write_json
    from toolkit.imaging.preprocess import preprocess_cohort
    from toolkit.synth import generate_cohort
    from toolkit.synth.truth import registration_errors

    shutil.rmtree(args.out, ignore_errors=True)
    cohort = args.out / "cohort"
    start = time.perf_counter()
    generate_cohort(cohort, args.patients, seed=0)
    result = {"patients": args.patients, "synth_seconds": time.perf_counter() - start, "runs": {}}
    for workers in args.workers:
        crops = args.out / f"crops_w{workers}"
        start = time.perf_counter()
        summary = preprocess_cohort(cohort / "manifest.csv", crops, workers=workers, progress=False)
        seconds = time.perf_counter() - start
        timings = summary.timings
        result["runs"][str(workers)] = {
            "seconds": seconds,
            "n_ok": summary.n_ok,
            "n_failed": summary.n_failed,
            "register_s_median": float(timings["register_s"].median()),
            "crop_s_median": float(timings["crop_s"].median()),
            "read_s_median": float(timings["read_s"].median()),
            "total_s_median": float(timings["total_s"].median()),
        }
    errors = registration_errors(cohort, args.out / f"crops_w{args.workers[-1]}")
    result["registration"] = {
        "translation_mm_p95": float(errors["translation_error_mm"].quantile(0.95)),
        "translation_mm_max": float(errors["translation_error_mm"].max()),
        "rotation_deg_p95": float(errors["rotation_error_deg"].quantile(0.95)),
        "rotation_deg_max": float(errors["rotation_error_deg"].max()),
        "share_within_1mm_1deg": float(
            ((errors["translation_error_mm"] < 1) & (errors["rotation_error_deg"] < 1)).mean()
        ),
        "unregistered_shift_mm_median": float(errors["unregistered_shift_mm"].median()),
    }
    if len(args.workers) > 1:
        one, two = (result["runs"][str(w)]["seconds"] for w in args.workers[:2])
        result["speedup"] = one / two
    write_json(args.out / "imaging_benchmark.json", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
