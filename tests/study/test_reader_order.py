"""The order of ``imaging.readers`` in study.toml changes nothing: the signature is
ranked, fitted and scored on the primary reader wherever it is listed.

Two runs of the same study differ in the network's float32 features by ~1e-7
(relative) whatever the reader order (measured: run-to-run, XLA's CPU reductions),
so numbers are compared to 1e-3 relative; the chosen features, ICC-kept sets and
every categorical result are compared exactly. Before the fix the signature was
fitted on the first listed reader: other features, other coefficients."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from toolkit.artifacts import read_json
from toolkit.synth.cohort import STUDY_TOML

RTOL, ATOL = 1e-3, 1e-9
PRIMARY_FIRST = 'readers = ["reader1_a", "reader1_b", "reader2"]'
PRIMARY_LAST = 'readers = ["reader2", "reader1_b", "reader1_a"]'
# A number written into text (signature.json's formula, to 6 significant digits): the
# words around it compare exactly, the number itself to RTOL like any other.
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def _without_provenance(value):
    if isinstance(value, dict):
        kept = {k: v for k, v in value.items() if k not in ("provenance", "seconds")}
        return {k: _without_provenance(v) for k, v in kept.items()}
    if isinstance(value, list):
        return [_without_provenance(v) for v in value]
    return value


@pytest.fixture(scope="module")
def reordered_study(study_run, tmp_path_factory):
    """The session's study again, with the readers listed primary-last in study.toml."""
    from toolkit.study.run import run_study

    study, _, _ = study_run
    target = tmp_path_factory.mktemp("reordered") / "study"
    shutil.copytree(study / "cohort", target / "cohort")
    toml = target / "cohort" / "study.toml"
    listed = PRIMARY_FIRST
    text = toml.read_text(encoding="utf-8")
    assert listed in text and 'primary_reader = "reader1_a"' in text
    toml.write_text(text.replace(listed, PRIMARY_LAST), encoding="utf-8")
    run_study(target, weights="random", workers=0, report=False, echo=lambda line: None)
    return study, target


def _readers_study(n: int = 60, n_features: int = 12, seed: int = 0):
    """(features, clinical frame) in which each reader rates the same latent features
    with its own noise, so a signature fitted on another reader differs."""
    from toolkit.contracts import feature_names

    rng = np.random.default_rng(seed)
    patients = [f"P{i:03d}" for i in range(n)]
    latent = rng.normal(size=(n, 2 * n_features))
    names = feature_names("arterial", n_features) + feature_names("portal", n_features)
    blocks = []
    for k, reader in enumerate(("reader1_a", "reader1_b", "reader2")):
        values = latent + rng.normal(scale=0.2 + 0.2 * k, size=latent.shape)
        block = pd.DataFrame(values, columns=names)
        block.insert(0, "reader", reader)
        block.insert(0, "patient", patients)
        blocks.append(block)
    hazard = np.exp(latent[:, 0] - 0.8 * latent[:, 3] + 0.5 * latent[:, n_features])
    time = rng.exponential(20 / hazard)
    censor = rng.uniform(5, 60, n)
    clinical = pd.DataFrame(
        {
            "set": ["train"] * 40 + ["validation"] * (n - 40),
            "time": np.minimum(time, censor),
            "event": (time <= censor).astype(float),
        },
        index=pd.Index(patients, name="patient"),
    )
    return pd.concat(blocks, ignore_index=True), clinical


def test_readers_written_primary_last_give_the_primary_first_signature():
    """readers = ["reader2", "reader1_b", "reader1_a"] with primary_reader = "reader1_a":
    the config stores the readers primary-first, so no stage sees the written order and
    the signature is the primary-first study's (one fitted on reader2 would differ)."""
    from toolkit.config import loads_study
    from toolkit.study.signature import build

    toml = STUDY_TOML.replace("mrmr_k = 30", "mrmr_k = 8")
    assert PRIMARY_FIRST in toml and 'primary_reader = "reader1_a"' in toml
    first = loads_study(toml)
    last = loads_study(toml.replace(PRIMARY_FIRST, PRIMARY_LAST))
    assert last.imaging.readers == ["reader1_a", "reader1_b", "reader2"]
    assert last.model_dump() == first.model_dump()
    assert last.as_written()["imaging"]["readers"] == ["reader2", "reader1_b", "reader1_a"]
    features, clinical = _readers_study()
    built = build(features, clinical, first).signature.to_json()
    assert build(features, clinical, last).signature.to_json() == built
    on_reader2 = loads_study(
        toml.replace('primary_reader = "reader1_a"', 'primary_reader = "reader2"')
    )
    assert build(features, clinical, on_reader2).signature.to_json() != built


def test_readers_given_in_code_are_primary_first_too_and_a_repeat_is_refused():
    from toolkit.config import Imaging

    imaging = Imaging(readers=("reader2", "reader1_b", "reader1_a"), primary_reader="reader1_a")
    assert imaging.readers == ["reader1_a", "reader1_b", "reader2"]
    assert imaging.reader_order == ("reader1_a", "reader1_b", "reader2")
    with pytest.raises(ValueError, match=r"readers lists \['reader2'\] more than once"):
        Imaging(readers=["reader2", "reader1_a", "reader2"], primary_reader="reader1_a")
    with pytest.raises(ValueError, match=r"readers lists \['reader1_a'\] more than once"):
        Imaging(readers=["reader1_a", "reader2", "reader1_a"], primary_reader="reader1_a")


def test_reader_order_changes_neither_signature_nor_scores(reordered_study):
    first, second = reordered_study
    a = read_json(first / "results" / "signature.json")
    b = read_json(second / "results" / "signature.json")
    assert a["features"] == b["features"]
    np.testing.assert_allclose(a["coefficients"], b["coefficients"], rtol=RTOL)
    pd.testing.assert_frame_equal(
        pd.read_parquet(first / "results" / "tables" / "scores.parquet"),
        pd.read_parquet(second / "results" / "tables" / "scores.parquet"),
        check_exact=False, rtol=RTOL, atol=ATOL,
    )  # fmt: skip


def test_reader_order_changes_no_result_the_report_reads(reordered_study):
    """Every table and JSON in results/ (what the report is built from) is the same,
    provenance (hashes of a differently worded study.toml) and stage timings aside."""
    first, second = reordered_study
    tables = sorted(p.name for p in (first / "results" / "tables").glob("*.parquet"))
    assert tables == sorted(p.name for p in (second / "results" / "tables").glob("*.parquet"))
    for name in tables:
        pd.testing.assert_frame_equal(
            pd.read_parquet(first / "results" / "tables" / name),
            pd.read_parquet(second / "results" / "tables" / name),
            obj=name, check_exact=False, rtol=RTOL, atol=ATOL,
        )  # fmt: skip
    # r_check.json is left out: each check's "ours"/"r" is the value at its largest
    # difference from R (both ~1e-16 here), so which of the 144 survival values it shows
    # moves with rounding noise (0.325 in one run, 0.416 in the other; both passed).
    documents = sorted(
        p.name for p in (first / "results").glob("*.json") if p.name != "r_check.json"
    )
    for name in documents:
        a = _without_provenance(json.loads((first / "results" / name).read_text(encoding="utf-8")))
        b = _without_provenance(json.loads((second / "results" / name).read_text(encoding="utf-8")))
        _assert_close(a, b, name)


def _assert_close(a, b, where: str) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), where
        for key in a:
            _assert_close(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float | int):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=where)
    elif isinstance(a, str) and isinstance(b, str):
        assert _NUMBER.sub("#", a) == _NUMBER.sub("#", b), where
        numbers_a = [float(x) for x in _NUMBER.findall(a)]
        numbers_b = [float(x) for x in _NUMBER.findall(b)]
        np.testing.assert_allclose(numbers_a, numbers_b, rtol=RTOL, atol=ATOL, err_msg=where)
    else:
        assert a == b, where
