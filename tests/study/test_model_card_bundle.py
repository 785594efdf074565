"""The model card (model/MODEL_CARD.md): written with the bundle, hashed in its manifest,
its numbers those of the study's tables, its labels those of the run; the median
follow-up against R's reverse Kaplan-Meier and a case worked by hand."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from toolkit.report import model_card
from toolkit.study.bundle import BundleError, ModelBundle

_NUMBER = re.compile(r"-?\d+\.\d+")


def _card(study) -> str:
    return (study / "model" / "MODEL_CARD.md").read_text(encoding="utf-8")


def _table_after(card: str, heading: str, nth: int = 0) -> list[list[str]]:
    """The cells of the ``nth`` Markdown pipe table after ``heading`` (header row dropped)."""
    section = card.split(heading, 1)[1].split("\n## ", 1)[0]
    tables, current = [], []
    for line in section.splitlines():
        if line.startswith("|"):
            current.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables[nth][2:]


def _numbers(cell: str) -> list[float]:
    return [float(x) for x in _NUMBER.findall(cell.replace("\u2013", " "))]


def _close(cell: str, *expected: float) -> None:
    """The cell shows ``expected`` to 3 decimals (rounding half an ulp of the 3rd)."""
    shown = _numbers(cell)
    assert len(shown) == len(expected), (cell, expected)
    for value, want in zip(shown, expected, strict=True):
        assert abs(value - want) <= 5e-4 + 1e-12, (cell, expected)


def test_the_bundle_writes_its_card_hashed_and_it_loads_alone(study_copy, tmp_path):
    study = study_copy
    text = _card(study)
    manifest = json.loads((study / "model" / "model.json").read_text())
    from toolkit.artifacts import file_hash

    entry = manifest["files"]["model_card"]
    assert entry == {
        "path": "MODEL_CARD.md",
        "sha256": file_hash(study / "model" / "MODEL_CARD.md"),
    }
    shutil.copytree(study / "model", tmp_path / "locked")
    shutil.rmtree(study)
    loaded = ModelBundle.load(tmp_path / "locked")
    assert loaded.model_card == text and text.startswith(f"# Model card: {loaded.study}\n")
    card = tmp_path / "locked" / "MODEL_CARD.md"
    card.write_text(text.replace("0.", "0,", 1), encoding="utf-8")
    with pytest.raises(BundleError, match=r"MODEL_CARD\.md: its SHA-256 differs"):
        ModelBundle.load(tmp_path / "locked")
    card.unlink()
    with pytest.raises(BundleError, match=r"MODEL_CARD\.md: named by model\.json"):
        ModelBundle.load(tmp_path / "locked")


def test_the_card_is_the_one_function_of_the_study_results(study_run, study_frame):
    """Regenerated from the finished study's results and the model frame: the same text."""
    study, _, _ = study_run
    bundle = ModelBundle.load(study / "model")
    _, frame, _ = study_frame
    assert model_card.for_study(study, bundle, frame) == _card(study)


def test_the_cards_performance_equals_the_study_tables(study_run):
    """C-index and calibration slope per set and model against tables/cindex.parquet and
    tables/accuracy.parquet; AUC, Brier and IPA at each horizon likewise; every model of
    the tables shown (the list is the tables', not a fixed one)."""
    study, _, _ = study_run
    card = _card(study)
    tables = study / "results" / "tables"
    cindex = pd.read_parquet(tables / "cindex.parquet")
    accuracy = pd.read_parquet(tables / "accuracy.parquet")
    label = {v: k for k, v in model_card.MODEL_LABELS.items()}
    sets = {v: k for k, v in model_card.SET_LABELS.items()}

    def measure(s, m, name, horizon=None):
        rows = accuracy[(accuracy["set"] == s) & (accuracy["model"] == m)]
        rows = rows[rows["measure"] == name]
        if horizon is not None:
            rows = rows[rows["horizon"] == horizon]
        return float(rows["value"].iloc[0])

    rows = _table_after(card, "## Performance", 0)
    assert len(rows) == len(cindex)
    for s_label, m_label, c_cell, slope_cell in rows:
        s, m = sets[s_label], label[m_label]
        row = cindex[(cindex["set"] == s) & (cindex["model"] == m)].iloc[0]
        _close(c_cell, row["c"], row["lower"], row["upper"])
        slope = [measure(s, m, f"calibration_slope.{k}") for k in ("slope", "lower", "upper")]
        _close(slope_cell, *slope)
    horizons = sorted(accuracy["horizon"].dropna().unique())
    per_time = _table_after(card, "## Performance", 1)
    assert len(per_time) == len(cindex) * len(horizons)
    for s_label, m_label, time, auc, brier, ipa, _ in per_time:
        s, m, t = sets[s_label], label[m_label], float(time.split()[0])
        _close(auc, *(measure(s, m, f"auc.{k}", t) for k in ("auc", "lower", "upper")))
        _close(brier, *(measure(s, m, f"brier.{k}", t) for k in ("brier", "lower", "upper")))
        _close(ipa, measure(s, m, "brier.ipa", t))


def test_the_cards_internal_validation_equals_its_table(study_run):
    study, _, _ = study_run
    table = pd.read_parquet(study / "results" / "tables" / "internal_validation.parquet")
    rows = _table_after(_card(study), "## Internal validation")
    assert len(rows) == len(table)
    for cells, record in zip(rows, table.itertuples(index=False), strict=True):
        assert cells[0] == model_card.MODEL_LABELS.get(record.model, record.model)
        _close(cells[5], record.corrected)
        _close(cells[3], record.apparent)
        assert cells[6] == str(int(record.n))


def test_the_cards_cohort_counts_the_clinical_table(study_run):
    """Patients and events per set equal metrics.json's cohort; per centre, the patients
    of clinical.csv that have a score, counted here from the file."""
    study, _, _ = study_run
    card = _card(study)
    metrics = json.loads((study / "results" / "metrics.json").read_text())
    clinical = pd.read_csv(study / "cohort" / "clinical.csv", index_col="patient")
    scores = pd.read_parquet(study / "results" / "tables" / "scores.parquet")
    clinical = clinical.loc[scores.index]
    rows = _table_after(card, "## Training data and centres")
    by_name = {r[0]: r for r in rows}
    for s, label in model_card.SET_LABELS.items():
        assert by_name[f"**{label}**"][1:3] == [
            str(metrics["cohort"][s]["n"]),
            str(metrics["cohort"][s]["events"]),
        ]
        part = clinical[scores["set"].isin(["train"] if s == "train" else ["validation"])]
        for centre, group in part.groupby("centre"):
            row = by_name[f"{label}, centre {centre}"]
            assert row[1:3] == [str(len(group)), str(int(group["os_event"].sum()))]
    assert set(clinical["centre"]) == {r[0].rsplit(" ", 1)[1] for r in rows if "centre" in r[0]}
    bundle = ModelBundle.load(study / "model")
    for key in ("clinical_sha256", "manifest_sha256", "features_sha256", "model_frame_sha256"):
        assert f"`{bundle.training[key]}`" in card


def test_random_weights_and_synthetic_cohort_are_labelled_only_when_so(study_run, study_frame):
    study, _, _ = study_run
    card = _card(study)
    bundle = ModelBundle.load(study / "model")
    assert "**SYNTHETIC COHORT.**" in card and "**RANDOM WEIGHTS.**" in card
    assert f"SHA-256 `{bundle.weights['sha256']}`" in card
    from toolkit.report.study import load

    results = load(study, study / "results")
    real = replace(
        results,
        metrics=replace(results.metrics, provenance={**results.metrics.provenance} | {
            "synthetic": False, "weights": "imagenet"}),
    )  # fmt: skip
    trained = replace(
        bundle, synthetic=False, weights={"origin": "keras:imagenet", "sha256": "ab" * 32}
    )
    cohort = model_card.cohort_table(study_frame[1], ["train"])
    text = model_card.document(real, trained, cohort)
    assert "SYNTHETIC" not in text and "RANDOM" not in text
    assert "synthetic cohort" not in text.lower() and "random weights" not in text.lower()
    assert "network weights keras:imagenet, SHA-256 `" + "ab" * 32 + "`" in text


def test_median_follow_up_worked_by_hand():
    """Reverse KM: censoring is the event. times 1..4, events 1, 0, 1, 0: the censoring
    curve drops to 2/3 at 2 and 0 at 4, so the median is 4. All censored: the curve is
    0.75, 0.5, 0.25, 0 and sits at exactly 0.5 from 2 to 3, median (2 + 3) / 2 = 2.5. Only
    the first censored (events 0, 1, 1, 1): the curve stays at 0.75, median not reached."""
    assert model_card.median_follow_up([1, 2, 3, 4], [1, 0, 1, 0]) == 4.0
    assert model_card.median_follow_up([1, 2, 3, 4], [0, 0, 0, 0]) == 2.5
    assert np.isnan(model_card.median_follow_up([1, 2, 3, 4], [0, 1, 1, 1]))


def test_median_follow_up_equals_r_reverse_km(r, study_frame):
    _, frame, _ = study_frame
    fn = r.r_function(
        "function(t, e) unname(summary(survival::survfit(survival::Surv(t, 1 - e) ~ 1))"
        "$table['median'])",
        ["survival"],
    )
    for name, part in [*frame.groupby("set"), *frame.groupby("centre")]:
        ours = model_card.median_follow_up(part["time"], part["event"])
        value = r.call(fn, part["time"].to_numpy(float), part["event"].to_numpy(float))
        theirs = float(np.ravel(value)[0])
        assert abs(ours - theirs) <= 1e-12, name
