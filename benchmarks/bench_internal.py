"""The whole-procedure bootstrap at the study's size: sigkit's stage vs a plain Python loop.

Both arms run the same resamples (``study.internal.resample_rows``) of the same
seeded synthetic training set (``test_bench_study.synthetic_study(201)``: 120
training patients, 3 readers, 2048 deep features, the synthetic study's
clinical table and study.toml) through the same procedure: ICC filter, mRMR,
elastic-net CV and the signature, the univariate screen and stepwise AIC of
both nomograms, the three final fits, and every statistic on the resample and
on the training set.

* ``sigkit``: ``study.internal.run_replicates`` as the internal_validation
  stage calls it: the training ratings prepared once, the resamples fanned
  out over a Dask LocalCluster of ``--workers`` processes.
* ``plain``: what a user would write with sigkit's public functions, one
  resample after another in one process: build the resample's features table
  (every reader's row of each drawn patient) and clinical table, then
  ``study.signature.build``, ``study.nomograms.select`` / ``fit_model`` and
  ``study.internal.evaluate``.

One run with a small ``--B`` per arm; B = 1000 is *extrapolated* from it
(fixed start-up + 1000 x the measured seconds per resample), not measured.
Compilation is kept out of the per-resample times of both arms alike: the
resamples are run once untimed first (XLA compiles the CV kernels once per
penalty-path length, at most 100 of them, so at B = 1000 compilation is a
fixed cost), the plain arm then runs in that warm process, and each sigkit
worker's first resample (imports, compilations read from
``JAX_COMPILATION_CACHE_DIR``) counts as its start-up.
Writes ``benchmarks/internal_runs/internal_<time>_<host>.json`` and rewrites
the marked block of benchmarks/README.md from every JSON there
(``--readme-only`` rewrites it without running).

    python benchmarks/bench_internal.py --B 8 --workers 2
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
RUNS = HERE / "internal_runs"
BEGIN = "<!-- internal: begin (benchmarks/bench_internal.py writes this from internal_runs/) -->"
END = "<!-- internal: end -->"
TARGET_B = 1000


def plain_replicate(features, clinical, config, number: int) -> dict:
    """One resample of the procedure written as a plain loop over sigkit's public functions."""
    from toolkit.study import internal
    from toolkit.study import nomograms as nm
    from toolkit.study import signature as sig

    train = clinical[clinical["set"].isin(config.study.train_sets)]
    rows = internal.resample_rows(len(train), config.internal_validation.seed, number)
    drawn = train.index[rows]
    labels = pd.Index([f"{p}~{i}" for i, p in enumerate(drawn)], name="patient")
    indexed = features.set_index(["patient", "reader"])
    blocks = []
    for reader in config.imaging.reader_order:
        block = indexed.xs(reader, level="reader").loc[drawn].set_axis(labels)
        blocks.append(block.reset_index().assign(reader=reader))
    boot_features = pd.concat(blocks, ignore_index=True)
    boot = train.iloc[rows].set_axis(labels)
    built = sig.build(boot_features, boot, config)
    primary = indexed.xs(config.imaging.primary_reader, level="reader")
    original = train.assign(signature=built.signature.score(primary.loc[train.index]))
    boot = boot.assign(signature=original["signature"].to_numpy()[rows])
    chosen = nm.select(boot, config)
    times = config.validation.times
    models = {
        "signature": nm.fit_model("signature", boot, ["signature"], chosen.levels, times),
        "clinical": nm.fit_model("clinical", boot, chosen.clinical, chosen.levels, times),
        "integrated": nm.fit_model("integrated", boot, chosen.integrated, chosen.levels, times),
    }
    return {
        "apparent": internal.evaluate(models, boot, config),
        "test": internal.evaluate(models, original, config),
    }


def _sigkit(data, config, B: int, workers: int) -> dict:
    from distributed import Client, LocalCluster

    from toolkit.study import internal

    start = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)
    client = Client(cluster)
    # each worker's first resample (imports, compilations loaded from the cache) is start-up
    client.run(internal.replicate, data, B + 1, config)
    startup = time.perf_counter() - start
    try:
        begin = time.perf_counter()
        replicates = internal.run_replicates(data, range(B), config, client)
        seconds = time.perf_counter() - begin
    finally:
        client.close()
        cluster.close()
    return {"startup_s": startup, "seconds": seconds, "replicates": replicates}


def _plain(features, clinical, config, B: int) -> dict:
    """The plain loop; a resample the procedure cannot run on gives None (as sigkit drops it)."""
    from toolkit.study.internal import PROCEDURE_ERRORS

    begin = time.perf_counter()
    results = []
    for b in range(B):
        try:
            results.append(plain_replicate(features, clinical, config, b))
        except PROCEDURE_ERRORS:
            results.append(None)
    return {"startup_s": 0.0, "seconds": time.perf_counter() - begin, "results": results}


def _same(replicates, plain) -> float:
    """Largest difference between the two arms' C-indexes of the resamples both used."""
    worst = 0.0
    for record, result in zip(replicates, plain, strict=True):
        if not record.used or result is None:
            continue
        # the C-index's horizon is NaN, which is no dictionary key once pickled: match on
        # model and metric
        theirs = {
            side: {(m, k): value for (m, k, _), value in result[side].items() if k == "c_index"}
            for side in ("apparent", "test")
        }
        for v in record.values:
            if v.metric == "c_index":
                key = (v.model, v.metric)
                worst = max(worst, abs(v.apparent - theirs["apparent"][key]))
                worst = max(worst, abs(v.test - theirs["test"][key]))
    return worst


def run(B: int, workers: int) -> Path:
    sys.path.insert(0, str(HERE))
    from test_bench_study import _config, synthetic_study

    from toolkit.study import internal

    config = _config()
    features, clinical = synthetic_study(201)
    data = internal.training_data(features, clinical.frame, config)
    # outside the clock, the same resamples once: every XLA compilation they need (the CV's
    # kernels are compiled per penalty-path length) is then in this process's memory, for
    # the plain arm, and in the persistent cache, for the sigkit arm's fresh workers
    internal.run_replicates(data, range(B + 2), config)
    load = os.getloadavg()[0]
    cpu = time.process_time()
    ours = _sigkit(data, config, B, workers)
    plain = _plain(features, clinical.frame, config, B)
    used = [r for r in ours["replicates"] if r.used]
    arms = {}
    for name, arm in (("sigkit", ours), ("plain", plain)):
        per = arm["seconds"] / B
        arms[name] = {
            "B": B,
            "startup_s": arm["startup_s"],
            "seconds": arm["seconds"],
            "per_resample_s": per,
            "extrapolated_B1000_s": arm["startup_s"] + TARGET_B * per,
        }
    record = {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_average_1min": load,
        "workers": workers,
        "n_train": len(data.frame),
        "n_features": len(data.names),
        "resamples_used": len(used),
        "max_c_index_difference": _same(ours["replicates"], plain["results"]),
        "process_cpu_s": time.process_time() - cpu,
        "arms": arms,
        "speedup": arms["plain"]["extrapolated_B1000_s"] / arms["sigkit"]["extrapolated_B1000_s"],
    }
    RUNS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M")
    path = RUNS / f"internal_{stamp}_{socket.gethostname().split('.')[0]}.json"
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path


def markdown(runs: list[dict]) -> str:
    lines = [
        "| run | B measured | workers | load | sigkit s/resample | plain s/resample "
        "| sigkit B=1000 (extrapolated) | plain B=1000 (extrapolated) | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        ours, plain = r["arms"]["sigkit"], r["arms"]["plain"]
        lines.append(
            f"| {r['when']} | {ours['B']} | {r['workers']} | {r['load_average_1min']:.1f} "
            f"| {ours['per_resample_s']:.2f} | {plain['per_resample_s']:.2f} "
            f"| {ours['extrapolated_B1000_s'] / 60:.1f} min "
            f"| {plain['extrapolated_B1000_s'] / 60:.1f} min | {r['speedup']:.2f}x |"
        )
    return "\n".join(lines)


def write_readme() -> None:
    readme = HERE / "README.md"
    text = readme.read_text(encoding="utf-8")
    runs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(RUNS.glob("*.json"))]
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n\n{markdown(runs)}\n\n{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--B", type=int, default=8, help="resamples per arm (measured)")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    parser.add_argument("--readme-only", action="store_true", help="rewrite the README only")
    args = parser.parse_args(argv)
    if not args.readme_only:
        path = run(args.B, args.workers)
        print(path.read_text(encoding="utf-8"))
    write_readme()
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
