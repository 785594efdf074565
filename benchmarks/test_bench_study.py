"""The study's statistics stages (signature, models, validation, R check) timed end to end.

A seeded synthetic feature table (patients x 3 readers x 2048 deep features
with reader noise, 8 latent tumour factors, some of which drive survival) and
clinical table; no imaging. `make bench` runs it at the 201-patient size of
the reference study and at 10,000 patients; stage times go to
benchmarks/README.md (## Study). The reference for every statistic is R (the
r_check stage recomputes them there), timed in the same run at 201 patients.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from toolkit.config import StudyConfig, loads_study
from toolkit.synth.cohort import STUDY_TOML

READERS = ["reader1_a", "reader1_b", "reader2"]


def _config() -> StudyConfig:
    return loads_study(STUDY_TOML)


def synthetic_study(n: int, seed: int = 0):
    """(features table, clinical frame) with the shapes the study stages expect."""
    from toolkit.config import prepare_clinical

    rng = np.random.default_rng(seed)
    n_train = round(n * 120 / 201)
    patients = [f"P{i:05d}" for i in range(n)]
    latent = rng.normal(size=(n, 8))
    loading = rng.normal(size=(8, 2048)) * (rng.random(2048) < 0.5)
    base = latent @ loading + rng.normal(scale=0.5, size=(n, 2048))
    blocks = []
    for k, reader in enumerate(READERS):
        noise = rng.normal(scale=0.3 + 0.1 * k, size=base.shape)
        values = np.maximum(base + noise, 0).astype(np.float32)
        frame = pd.DataFrame(
            values,
            columns=[f"arterial_{i:04d}" for i in range(1024)]
            + [f"portal_{i:04d}" for i in range(1024)],
        )
        frame.insert(0, "reader", reader)
        frame.insert(0, "patient", patients)
        blocks.append(frame)
    features = pd.concat(blocks, ignore_index=True)
    bclc = rng.choice(["A", "B", "C"], n, p=[0.2, 0.4, 0.4])
    alt = rng.lognormal(3.6, 0.5, n)
    size = rng.lognormal(1.6, 0.5, n)
    eta = 0.6 * latent[:, 0] + 0.4 * latent[:, 1] + 0.5 * (bclc == "C") + 0.3 * (alt > 40)
    t_event = rng.weibull(1.3, n) * 30 * np.exp(-eta / 1.3)
    t_censor = rng.uniform(6, 80, n)
    table = pd.DataFrame(
        {
            "set": ["train"] * n_train + ["validation"] * (n - n_train),
            "os_months": np.maximum(np.minimum(t_event, t_censor).round(2), 0.01),
            "os_event": (t_event <= t_censor).astype(int),
            "pfs_months": np.maximum((np.minimum(t_event, t_censor) * 0.5).round(2), 0.01),
            "pfs_event": 1,
            "ecog": rng.choice(["0", "1"], n),
            "child_pugh": rng.choice(["A", "B"], n, p=[0.8, 0.2]),
            "tumour_number": rng.integers(1, 4, n),
            "tumour_size_cm": size.round(1),
            "bclc": bclc,
            "hbv": rng.choice(["no", "yes"], n),
            "cirrhosis": rng.choice(["no", "yes"], n),
            "distribution": rng.choice(["unilobar", "bilobar"], n),
            "afp": rng.lognormal(5, 1.5, n).round(1),
            "alt": alt.round(1),
            "ast": rng.lognormal(3.7, 0.5, n).round(1),
            "hbsag": rng.choice(["negative", "positive"], n),
        },
        index=pd.Index(patients, name="patient"),
    )
    return features, prepare_clinical(_config(), table)


def run_statistics(features, clinical, config, *, r_check: bool) -> dict[str, float]:
    """The statistics stages as `sigkit study run` chains them; seconds per stage."""
    from toolkit.study import nomograms as nm
    from toolkit.study import signature as sig
    from toolkit.study import validate as val

    times: dict[str, float] = {}
    cpu = time.process_time()
    start = time.perf_counter()
    built = sig.build(features, clinical.frame, config)
    times["signature"] = time.perf_counter() - start

    start = time.perf_counter()
    primary = features[features["reader"] == READERS[0]].set_index("patient")
    frame = clinical.frame.copy()
    frame["signature"] = built.signature.score(primary.loc[frame.index])
    chosen = nm.select(frame, config)
    train = frame[frame["set"] == "train"]
    vt = config.validation.times
    models = {
        "signature": nm.fit_model("signature", train, ["signature"], chosen.levels, vt),
        "clinical": nm.fit_model("clinical", train, chosen.clinical, chosen.levels, vt),
        "integrated": nm.fit_model("integrated", train, chosen.integrated, chosen.levels, vt),
    }
    nomograms = {m: nm.nomogram_for(models[m], train, config) for m in ("clinical", "integrated")}
    times["models"] = time.perf_counter() - start

    start = time.perf_counter()
    sets = val.set_rows(frame, config)
    cindex, comparisons = val.cindex(sets, models, config)
    val.calibration(sets, models, config)
    td_auc, _ = val.td_auc(sets, models, config)
    val.decision(sets, models, config)
    val.risk_groups(sets, models)
    val.median_survival(sets, config)
    times["validate"] = time.perf_counter() - start

    if r_check:
        from toolkit.contracts import Metrics
        from toolkit.study.rcheck import r_check as check

        start = time.perf_counter()
        # the sections the R check reads; the others are not needed here
        unused = {"provenance": {}, "cohort": {}, "calibration": {}, "risk_groups": {}}
        metrics = Metrics(
            cindex=cindex,
            comparisons=comparisons,
            td_auc=td_auc,
            icc=None,
            median_survival={},
            **unused,
        )
        result = check(models, nomograms, metrics, sets, list(vt))
        times["r_check"] = time.perf_counter() - start
        assert result.passed, result.failed
    times["cpu_total"] = time.process_time() - cpu  # the machine is shared: CPU time too
    return times


@pytest.mark.parametrize("n", [201, 10_000])
def test_bench_study_statistics(benchmark, n):
    config = _config()
    features, clinical = synthetic_study(n)
    stages = benchmark.pedantic(
        run_statistics,
        args=(features, clinical, config),
        kwargs={"r_check": n <= 201},
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info.update({f"{k}_s": v for k, v in stages.items()})
    print(f"\nstudy statistics, n = {n}: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()))
