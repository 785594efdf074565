"""The whole-procedure bootstrap (study/internal.py) on a small seeded cohort.

Each resample re-runs the signature and the nomograms' selection; its record
depends on its number alone (not on the order, the other resamples or the
workers), a resample that cannot be used is named with its reason, and the
optimism is the mean of apparent minus test, checked by hand.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

from toolkit.config import InternalValidation, StudyInputError, loads_study, prepare_clinical
from toolkit.stats.concordance import harrell
from toolkit.study import internal
from toolkit.study import nomograms as nm
from toolkit.study.signature import fit_signature
from toolkit.synth.cohort import STUDY_TOML

READERS = ["reader1_a", "reader1_b", "reader2"]
FAST = STUDY_TOML.replace("mrmr_k = 30", "mrmr_k = 6").replace(
    "l1_ratios = [0.1, 0.5, 0.9]", "l1_ratios = [0.5]"
)


def _config(resamples: int = 50, missing: str = '"complete-case"'):
    text = FAST.replace(
        'missing = "complete-case"\n', f"missing = {missing}\nmin_events = 2\n"
    ).replace("\nB = 50\n", f"\nB = {resamples}\n")
    return loads_study(text)


def _cohort(n: int = 40, p: int = 24, seed: int = 0):
    """(features table, clinical frame): n training patients, 3 readers, p features a phase."""
    features, table = _tables(n, p, seed)
    return features, prepare_clinical(_config(), table).frame


def _tables(n: int, p: int, seed: int):
    """(features table, clinical table) of :func:`_cohort`."""
    rng = np.random.default_rng(seed)
    patients = [f"P{i:03d}" for i in range(n)]
    latent = rng.normal(size=(n, 3))
    base = latent @ rng.normal(size=(3, 2 * p)) + rng.normal(scale=0.5, size=(n, 2 * p))
    columns = [f"arterial_{i:04d}" for i in range(p)] + [f"portal_{i:04d}" for i in range(p)]
    blocks = []
    for k, reader in enumerate(READERS):
        values = base + rng.normal(scale=0.1 + 0.05 * k, size=base.shape)
        frame = pd.DataFrame(values, columns=columns)
        frame.insert(0, "reader", reader)
        frame.insert(0, "patient", patients)
        blocks.append(frame)
    t_event = rng.weibull(1.3, n) * 30 * np.exp(-0.7 * latent[:, 0])
    t_censor = np.where(rng.random(n) < 0.7, 200.0, rng.uniform(1, 5, n))
    time = np.maximum(np.minimum(t_event, t_censor).round(2), 0.01)
    time[0] = 60.0  # follow-up beyond the validation times
    table = pd.DataFrame(
        {
            "set": ["train"] * (n - 10) + ["validation"] * 10,
            "os_months": time,
            "os_event": (t_event <= t_censor).astype(int),
            "pfs_months": time,
            "pfs_event": 1,
            "ecog": rng.choice(["0", "1"], n),
            "child_pugh": rng.choice(["A", "B"], n),
            "tumour_number": rng.integers(1, 4, n),
            "tumour_size_cm": rng.lognormal(1.6, 0.5, n).round(1),
            "bclc": rng.choice(["A", "B", "C"], n),
            "hbv": rng.choice(["no", "yes"], n),
            "cirrhosis": rng.choice(["no", "yes"], n),
            "distribution": rng.choice(["unilobar", "bilobar"], n),
            "afp": rng.lognormal(5, 1.5, n).round(1),
            "alt": rng.lognormal(3.6, 0.5, n).round(1),
            "ast": rng.lognormal(3.7, 0.5, n).round(1),
            "hbsag": rng.choice(["negative", "positive"], n),
        },
        index=pd.Index(patients, name="patient"),
    )
    table.loc[patients[-10:], "os_event"] = 1  # the validation set's events
    features = pd.concat(blocks, ignore_index=True)
    return features, table


@pytest.fixture(scope="module")
def cohort():
    config = _config()
    features, frame = _cohort()
    return internal.training_data(features, frame, config), config


def _records(replicates) -> tuple[pd.DataFrame, pd.DataFrame]:
    return internal.replicate_table(replicates), internal.replicate_values(replicates)


def _assert_same(a, b) -> None:
    for x, y in zip(_records(a), _records(b), strict=True):
        pd.testing.assert_frame_equal(x.reset_index(drop=True), y.reset_index(drop=True))


def test_b_below_20_is_refused_with_the_reason():
    with pytest.raises(StudyInputError) as raised:
        _config(19)
    message = str(raised.value)
    assert "internal_validation.B: B must be at least 20, got 19" in message
    assert "Monte Carlo error" in message
    assert InternalValidation().B == 200
    assert _config().internal_validation.B == 50  # the demo's
    assert _config(20).internal_validation.B == 20


def test_a_resample_depends_on_its_number_alone(cohort, monkeypatch):
    from distributed import Client, LocalCluster

    data, config = cohort
    in_order = internal.run_replicates(data, [0, 1, 2], config)
    alone = [internal.replicate(data, 2, config)]
    _assert_same(in_order[2:], alone)
    # one worker thread: warnings.catch_warnings is per process, and the stage's workers are
    # processes; the point here is the order and the hand-off through Dask
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False) as cluster,
        Client(cluster) as client,
    ):
        keys, scatter = [], client.scatter

        def spy(*args, **kwargs):
            shared = scatter(*args, **kwargs)
            keys.append(shared.key)
            return shared

        monkeypatch.setattr(client, "scatter", spy)
        shuffled = internal.run_replicates(data, [2, 0, 1], config, client)
        # again on the same client: the first call's copy of the data, released as it
        # returned, must not be the one the second call's resamples wait for (a race that
        # cancelled them, "lost dependencies", when both had the data's hash as key)
        again = internal.run_replicates(data, [1, 2], config, client)
    assert len(keys) == 2 and keys[0] != keys[1]
    assert [r.number for r in shuffled] == [0, 1, 2]
    _assert_same(in_order[1:], again)
    _assert_same(in_order, shuffled)
    assert any(r.used for r in in_order), [r.reason for r in in_order]


def test_a_resample_without_events_is_dropped_and_named(cohort):
    data, config = cohort
    one_event = data.frame.assign(event=0.0)
    one_event.iloc[3, one_event.columns.get_loc("event")] = 1.0
    data = dataclasses.replace(data, frame=one_event)
    event = one_event["event"].to_numpy(float)
    empty = next(b for b in range(200) if not event[internal.resample_rows(len(event), 0, b)].any())
    record = internal.replicate(data, empty, config)
    assert not record.used
    assert record.reason == "no events in the resample"
    assert record.values == ()
    table = internal.dropped([record, internal.Replicate(empty + 1, "")])
    assert table.to_dict("records") == [{"reason": "no events in the resample", "n": 1}]


def test_optimism_is_the_mean_of_apparent_minus_test():
    """Worked by hand: optimism = ((0.82 - 0.75) + (0.78 - 0.74)) / 2 = 0.055,
    corrected = 0.80 - 0.055 = 0.745; the dropped resample counts in no mean."""
    nan = float("nan")
    original = {("clinical", "c_index", nan): 0.80, ("clinical", "brier", 12.0): 0.20}
    replicates = [
        internal.Replicate(
            0,
            "",
            (
                internal.Value("clinical", "c_index", nan, 0.82, 0.75),
                internal.Value("clinical", "brier", 12.0, 0.18, 0.21),
            ),
        ),
        internal.Replicate(1, "no events in the resample"),
        internal.Replicate(
            2,
            "",
            (
                internal.Value("clinical", "c_index", nan, 0.78, 0.74),
                internal.Value("clinical", "brier", 12.0, nan, 0.22),
            ),
        ),
    ]
    table = internal.summary(original, replicates).set_index("metric")
    c = table.loc["c_index"]
    assert c["apparent"] == 0.80 and c["n"] == 2
    assert c["training"] == pytest.approx(0.80, abs=1e-15)
    assert c["test"] == pytest.approx(0.745, abs=1e-15)
    assert c["optimism"] == pytest.approx(0.055, abs=1e-15)
    assert c["corrected"] == pytest.approx(0.745, abs=1e-15)
    brier = table.loc["brier"]  # resample 2 has no apparent Brier (horizon beyond follow-up)
    assert brier["n"] == 1
    assert brier["optimism"] == pytest.approx(0.18 - 0.21, abs=1e-15)
    assert brier["corrected"] == pytest.approx(0.20 - (0.18 - 0.21), abs=1e-15)


def test_a_resample_is_the_procedure_rerun_by_hand(cohort):
    """Resample 2 redone step by step with the stages' own functions: its C-indexes."""
    data, config = cohort
    record = internal.replicate(data, 2, config)
    assert record.used, record.reason
    rows = np.random.default_rng([0, 2]).integers(0, len(data.frame), len(data.frame))
    frame = data.frame
    t, e = frame["time"].to_numpy(float), frame["event"].to_numpy(float)
    built = fit_signature(data.ratings[rows], list(data.names), t[rows], e[rows], config.signature)
    index = [data.names.index(c) for c in built.signature.columns]
    score = built.signature.score(
        pd.DataFrame(data.ratings[:, 0, index], columns=built.signature.columns)
    )
    original = frame.assign(signature=score)
    resample = original.iloc[rows].set_axis([f"r{i}" for i in range(len(rows))])
    chosen = nm.select(resample, config)
    model = nm.fit_model("integrated", resample, chosen.integrated, chosen.levels, [12, 24, 36])
    apparent = harrell(t[rows], e[rows], model.linear_predictor(resample)).c
    test = harrell(t, e, model.linear_predictor(original)).c
    value = next(v for v in record.values if (v.model, v.metric) == ("integrated", "c_index"))
    assert value.apparent == pytest.approx(apparent, abs=1e-12)
    assert value.test == pytest.approx(test, abs=1e-12)
    assert record.features == tuple(built.signature.columns)
    assert record.integrated == tuple(chosen.integrated)


def test_selection_stability_counts_each_candidate():
    used = [
        internal.Replicate(0, "", features=("arterial_0001", "portal_0002"), clinical=("bclc",)),
        internal.Replicate(1, "", features=("arterial_0001",), clinical=("bclc", "alt")),
        internal.Replicate(2, "singular"),
    ]
    table = internal.selection_stability(
        used,
        ["portal_0002", "portal_0009"],
        {"clinical": ("bclc",), "integrated": ()},
        ["bclc", "alt"],
    )
    deep = table[table["kind"] == "deep feature"]
    assert deep["name"].tolist() == ["arterial_0001", "portal_0002", "portal_0009"]
    assert deep["n_selected"].tolist() == [2, 1, 0]
    assert deep["fraction"].tolist() == [1.0, 0.5, 0.0]
    assert deep["in_study_model"].tolist() == [False, True, True]
    clinical = table[(table["kind"] == "clinical variable") & (table["model"] == "clinical")]
    assert clinical.set_index("name")["n_selected"].to_dict() == {"bclc": 2, "alt": 1}
    assert set(table["n_used"]) == {2}


def test_the_study_writes_the_internal_validation(study_run):
    from toolkit.contracts import InternalValidation, Metrics

    study, _, lines = study_run
    results = study / "results"
    record = InternalValidation.read(results / "internal_validation.json")
    assert (record.B, record.seed) == (20, 0)
    assert record.refilled == ""  # the synthetic study has no missing clinical value
    assert record.n_used + len(record.dropped) == 20 and record.n_used > 0
    assert any(line.startswith(f"    {record.n_used} of 20 resamples used") for line in lines)
    summary = pd.read_parquet(results / "tables" / "internal_validation.parquet")
    assert set(summary["model"]) == set(internal.MODELS)
    assert set(summary["metric"]) == set(internal.METRICS)
    metrics = Metrics.read(results / "metrics.json")
    c = summary[summary["metric"] == "c_index"].set_index("model")
    for model in internal.MODELS:
        assert c.loc[model, "apparent"] == pytest.approx(
            metrics.cindex["train"][model]["c"], abs=1e-12
        )
    rmse = summary[(summary["metric"] == "calibration_rmse") & (summary["model"] != "signature")]
    for r in rmse.itertuples(index=False):
        entry = metrics.calibration["train"][r.model][f"{r.horizon:g}"]
        assert r.apparent == pytest.approx(entry["rmse"], abs=1e-12)
    np.testing.assert_allclose(summary["corrected"], summary["apparent"] - summary["optimism"])
    assert (summary["n"] <= record.n_used).all()
    resamples = pd.read_parquet(results / "tables" / "internal_validation_resamples.parquet")
    assert resamples["replicate"].tolist() == list(range(20))
    assert int(resamples["used"].sum()) == record.n_used
    stability = pd.read_parquet(results / "tables" / "selection_stability.parquet")
    assert stability["fraction"].between(0, 1).all()
    assert set(stability["kind"]) == {"deep feature", "clinical variable"}
    for suffix in ("png", "svg"):
        assert (results / "figures" / f"selection_stability.{suffix}").is_file()


# --- missing values: filled again in every resample ---------------------------------------

_HOLES = {"afp": [1, 4, 7, 11, 15, 22], "bclc": [2, 5, 9, 20], "alt": [3, 8]}


def _with_holes(rule: str, holes: dict[str, list[int]] = _HOLES):
    """(config, ClinicalData as the clinical stage hands it on, features): training
    patients' values of ``holes`` missing, filled by ``rule``."""
    from toolkit.study.imputed import impute_cohort

    config = _config(missing=rule)
    features, table = _tables(40, 24, 0)
    for column, rows in holes.items():
        table.loc[table.index[rows], column] = np.nan
    clinical = prepare_clinical(config, table)
    if config.validation.missing == "multiple-imputation":
        v = config.validation
        cohort = impute_cohort(config, clinical.frame, m=v.m, seed=v.imputation_seed)
        clinical = dataclasses.replace(clinical, completed=cohort.completed, missing=cohort.missing)
    return config, clinical, features


def _training(config, clinical, features):
    return internal.training_data_of(features, clinical, config)


def _resample_by_hand(data, config, number: int):
    """The original training set scored by resample ``number``'s signature, the resample's
    rows before any fill (with that score), and the rows drawn."""
    rows = internal.resample_rows(len(data.frame), config.internal_validation.seed, number)
    t, e = data.frame["time"].to_numpy(float), data.frame["event"].to_numpy(float)
    built = fit_signature(data.ratings[rows], list(data.names), t[rows], e[rows], config.signature)
    index = [data.names.index(c) for c in built.signature.columns]
    score = built.signature.score(
        pd.DataFrame(data.ratings[:, 0, index], columns=built.signature.columns)
    )
    original = data.frame.assign(signature=score)
    labels = [f"r{i}" for i in range(len(rows))]
    incomplete = data.incomplete.iloc[rows].set_axis(labels).assign(signature=score[rows])
    return original, incomplete, rows


def _value(record, model: str, metric: str, horizon: float = np.nan):
    """The record's value of ``metric`` (at ``horizon``; NaN: the C-index and the slope)."""
    return next(
        v
        for v in record.values
        if (v.model, v.metric) == (model, metric)
        and (v.horizon == horizon or (np.isnan(v.horizon) and np.isnan(horizon)))
    )


def test_incomplete_frame_puts_back_exactly_the_values_the_study_filled():
    config, clinical, _ = _with_holes('"impute-median-mode"')
    assert len(clinical.imputations) == sum(len(r) for r in _HOLES.values())
    assert not clinical.frame[list(_HOLES)].isna().any().any()
    back = internal.incomplete_frame(clinical, config)
    for column in clinical.frame.columns:
        expected = clinical.frame.index[_HOLES.get(column, [])]
        assert back.index[back[column].isna()].tolist() == expected.tolist(), column
    pd.testing.assert_frame_equal(back.fillna(clinical.frame), clinical.frame)
    assert (
        internal.incomplete_frame(prepare_clinical(_config(), _tables(40, 24, 0)[1]), config)
        is None
    )
    mi_config, mi, _ = _with_holes('"multiple-imputation"\nm = 3')
    assert internal.incomplete_frame(mi, mi_config) is mi.frame
    # values missing in the validation set alone: no training value to fill again
    config, clinical, _ = _with_holes('"impute-median-mode"', {"afp": [31, 35]})
    assert len(clinical.imputations) == 2
    assert internal.incomplete_frame(clinical, config) is None


def _modes_filled(incomplete: pd.DataFrame) -> pd.DataFrame:
    """``incomplete`` filled by its own modes (every study variable here is categorical:
    the numeric ones have cutoffs)."""
    return incomplete.fillna({c: incomplete[c].dropna().mode().iloc[0] for c in _HOLES})


def _clinical_c_indexes(resample, original, rows, config) -> dict[str, tuple[float, float]]:
    """(apparent, test) Harrell's C of the clinical and integrated models selected and
    fitted on ``resample``, by the study's functions."""
    chosen = nm.select(resample, config)
    t, e = original["time"].to_numpy(float), original["event"].to_numpy(float)
    out = {}
    for name, variables in (("clinical", chosen.clinical), ("integrated", chosen.integrated)):
        model = nm.fit_model(name, resample, variables, chosen.levels, [12, 24, 36])
        out[name] = (
            harrell(t[rows], e[rows], model.linear_predictor(resample)).c,
            harrell(t, e, model.linear_predictor(original)).c,
        )
    return out


def test_median_mode_is_refitted_on_each_resample():
    """A resample by hand: its own modes fill it, then the study's selection. The resample
    is one where a fill by the training set's modes gives other C-indexes, so the test
    tells the two apart."""
    config, clinical, features = _with_holes('"impute-median-mode"')
    data = _training(config, clinical, features)
    for number in range(50):
        original, incomplete, rows = _resample_by_hand(data, config, number)
        by_study = original.iloc[rows].set_axis(incomplete.index)  # the training set's fill
        try:
            own = _clinical_c_indexes(_modes_filled(incomplete), original, rows, config)
            theirs = _clinical_c_indexes(by_study, original, rows, config)
        except nm.ModelError:
            continue
        record = internal.replicate(data, number, config)
        if record.used and own != theirs:
            break
    assert record.used and own != theirs, "no resample tells the two fills apart"
    for name, (apparent, test) in own.items():
        value = _value(record, name, "c_index")
        assert value.apparent == pytest.approx(apparent, abs=1e-12), name
        assert value.test == pytest.approx(test, abs=1e-12), name


def test_multiple_imputation_is_rerun_on_each_resample():
    """Resample 2 by hand: m chained equations fitted on the resample (seeded from the
    imputation seed and the resample's number), majority rule, pooled models; scored at the
    linear predictor averaged over the resample's m completed sets (apparent) and over the
    study's m completed training sets (test), as the validate stage scores the study's."""
    from toolkit.stats.brier import brier_score
    from toolkit.stats.calibration import calibration_groups, calibration_slope, grouped_rmse
    from toolkit.study.imputed import impute_cohort, study_models

    config, clinical, features = _with_holes('"multiple-imputation"\nm = 3')
    data = _training(config, clinical, features)
    train = [c[c["set"] == "train"] for c in clinical.completed]
    pd.testing.assert_frame_equal(data.frame, train[0])
    assert len(data.completed) == 3
    for mine, theirs in zip(data.completed, train, strict=True):
        pd.testing.assert_frame_equal(mine, theirs)
    record = internal.replicate(data, 2, config)
    assert record.used, record.reason
    original, incomplete, rows = _resample_by_hand(data, config, 2)
    seed = int(np.random.SeedSequence([0, 2]).generate_state(1)[0])
    cohort = impute_cohort(config, incomplete, m=3, seed=seed)
    models = study_models(cohort.completed, config).models
    score = original["signature"].to_numpy()
    originals = [c.assign(signature=score) for c in train]
    t, e = data.frame["time"].to_numpy(float), data.frame["event"].to_numpy(float)
    horizon = config.validation.times[0]
    moved = {"apparent": 0.0, "test": 0.0}
    for name in internal.MODELS:
        model = models[name]
        sides = {
            "apparent": (t[rows], e[rows], cohort.completed),
            "test": (t, e, originals),
        }
        for side, (tt, ee, sets) in sides.items():
            lps = np.array([model.linear_predictor(c) for c in sets])
            lp = lps.mean(axis=0)  # by hand: the pooled coefficients on every completed set
            expected = {"c_index": harrell(tt, ee, lp).c}
            expected["calibration_slope"] = calibration_slope(tt, ee, lp).slope
            base = model.baseline_survival[f"{float(horizon):g}"]
            survival = base ** np.exp(lp - model.lp_centre)
            brier = brier_score(tt, ee, survival[:, None], [horizon])
            expected["brier"], expected["ipa"] = brier.brier[0], brier.ipa[0]
            groups = calibration_groups(
                tt, ee, survival, horizon, config.validation.calibration_groups
            )
            expected["calibration_rmse"] = grouped_rmse(groups)
            for metric, want in expected.items():
                at = horizon if metric in ("brier", "ipa", "calibration_rmse") else np.nan
                got = getattr(_value(record, name, metric, at), side)
                assert got == pytest.approx(want, abs=1e-10), (name, side, metric)
            # the first completed set alone (what was scored before) gives another C-index
            moved[side] = max(moved[side], abs(harrell(tt, ee, lps[0]).c - expected["c_index"]))
    assert min(moved.values()) > 1e-6, moved
    assert record.clinical == tuple(models["clinical"].variables)
    assert record.integrated == tuple(models["integrated"].variables)
    assert internal.replicate(data, 2, config) == record  # its number alone decides


def test_multiple_imputation_without_the_completed_sets_is_refused():
    """Each resample's test is averaged over the study's completed sets: without them the
    training data is refused, not scored on one set."""
    config, clinical, features = _with_holes('"multiple-imputation"\nm = 3')
    incomplete = internal.incomplete_frame(clinical, config)
    with pytest.raises(ValueError, match="completed sets are needed"):
        internal.training_data(features, clinical.completed[0], config, incomplete)
    with pytest.raises(ValueError, match="must be the first completed set"):
        internal.training_data(
            features, clinical.completed[1], config, incomplete, clinical.completed
        )


def test_a_resample_with_a_variable_it_never_observes_is_dropped_naming_it():
    for rule in ('"impute-median-mode"', '"multiple-imputation"\nm = 3'):
        holes = {"afp": [i for i in range(30) if i != 6]}  # afp observed in patient 6 alone
        config, clinical, features = _with_holes(rule, holes)
        data = _training(config, clinical, features)
        event = data.frame["event"].to_numpy(float)
        number = next(
            b
            for b in range(100)
            if 6 not in (rows := internal.resample_rows(len(data.frame), 0, b))
            and event[rows].any()
        )
        record = internal.replicate(data, number, config)
        assert not record.used, rule
        assert record.reason.startswith("imputation: "), record.reason
        assert "afp" in record.reason and "no observed value" in record.reason, record.reason


def test_internal_validation_json_keeps_the_refill_rule(tmp_path):
    import json

    from toolkit.contracts import InternalValidation as Record

    path = tmp_path / "internal_validation.json"
    dropped = ({"replicate": 3, "reason": "imputation: afp: no observed value"},)
    Record(B=20, seed=1, n_used=19, dropped=dropped, refilled="impute-median-mode").write(path)
    assert Record.read(path).refilled == "impute-median-mode"
    Record(B=20, seed=1, n_used=20, dropped=()).write(path)
    assert "refilled" not in json.loads(path.read_text())  # nothing filled: not written
    assert Record.read(path).refilled == ""


def test_a_pooled_fit_that_did_not_converge_drops_the_resample_naming_the_imputation():
    """Under multiple imputation a final Cox fit is one fit per completed set: one that ran
    out of iterations drops the resample as it does on complete data, naming the imputation;
    no resample used has such a fit (its warning would be in the notes)."""
    config, clinical, features = _with_holes('"multiple-imputation"\nm = 3')
    data = _training(config, clinical, features)
    records = internal.run_replicates(data, range(12), config)
    stuck = [r for r in records if "did not converge" in r.reason]
    assert stuck, [r.reason for r in records]
    for record in stuck:
        assert re.fullmatch(
            r"the (signature|clinical|integrated) model's Cox fit: imputation \d+: Cox partial "
            r"likelihood: ran out of iterations \(max_iter=20\) and did not converge.*",
            record.reason,
        ), record.reason
    used = [r for r in records if r.used]
    assert used and not any("did not converge" in n for r in used for n in r.notes)
