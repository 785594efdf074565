"""The typed names of toolkit/contracts.py, and docs/contracts.md kept in step with them."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from toolkit import contracts
from toolkit.contracts import ContractError, FeatureName, Term, feature_names

DOC = Path(__file__).resolve().parents[1] / "docs" / "contracts.md"


def _records() -> dict[str, type]:
    return {
        name: obj
        for name, obj in vars(contracts).items()
        if dataclasses.is_dataclass(obj) and obj.__module__ == contracts.__name__
    }


def _doc_section(name: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"### `{name}`")
    end = text.find("\n#", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_every_record_and_field_is_documented():
    text = DOC.read_text(encoding="utf-8")
    for name, record in _records().items():
        assert f"### `{name}`" in text, f"docs/contracts.md has no section for {name}"
        section = _doc_section(name)
        for field in dataclasses.fields(record):
            assert f"| `{field.name}` |" in section, f"{name}.{field.name} is not in the doc"


def test_every_documented_record_exists_with_exactly_its_fields():
    records = _records()
    documented = re.findall(r"^### `(\w+)`", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert documented, "docs/contracts.md documents no record"
    for name in documented:
        assert name in records, f"docs/contracts.md documents {name}, not in toolkit/contracts.py"
        rows = re.findall(r"^\| `(\w+)` \|", _doc_section(name), flags=re.MULTILINE)
        assert rows == [f.name for f in dataclasses.fields(records[name])]


@pytest.mark.parametrize(
    ("text", "record"),
    [
        ("arterial_0012", FeatureName("arterial", 12)),
        ("portal_1023", FeatureName("portal", 1023)),
        ("phase2_0000", FeatureName("phase2", 0)),
    ],
)
def test_feature_name_round_trips(text, record):
    assert FeatureName.parse(text) == record
    assert record.format() == text


def test_feature_names_are_the_columns_in_index_order():
    assert feature_names("portal", 3) == ["portal_0000", "portal_0001", "portal_0002"]
    assert FeatureName.is_feature("arterial_0007")
    assert not FeatureName.is_feature("patient")
    assert not FeatureName.is_feature("arterial_7")


@pytest.mark.parametrize(
    "text", ["arterial_12", "arterial_00012", "late_arterial_0001", "_0001", "arterial0001", ""]
)
def test_feature_name_refuses_bad_text_naming_it(text):
    with pytest.raises(ContractError, match=re.escape(repr(text))):
        FeatureName.parse(text)


@pytest.mark.parametrize(
    ("phase", "index", "message"),
    [
        ("late_arterial", 1, "underscore"),
        ("", 1, "letters and digits"),
        ("arterial", -1, "0 to 9999"),
        ("arterial", 10_000, "0 to 9999"),
        ("arterial", 1.0, "not an integer"),
        ("arterial", True, "not an integer"),
    ],
)
def test_feature_name_refuses_bad_fields(phase, index, message):
    with pytest.raises(ContractError, match=message):
        FeatureName(phase, index)


@pytest.mark.parametrize(
    ("text", "record"),
    [
        ("bclc[C]", Term("bclc", "C")),
        ("alt", Term("alt")),
        ("signature", Term("signature", None)),
        ("afp[>=400]", Term("afp", ">=400")),
        ("tumour_number[2_or_more]", Term("tumour_number", "2_or_more")),
        ("child.pugh[B 7]", Term("child.pugh", "B 7")),
    ],
)
def test_term_round_trips(text, record):
    assert Term.parse(text) == record
    assert record.format() == text


@pytest.mark.parametrize("text", ["bclc[C", "bclc[C]x", "bclc[[C]]", "bclc[]", "[C]", "1bclc"])
def test_term_refuses_bad_text(text):
    with pytest.raises(ContractError, match=re.escape(repr(text))):
        Term.parse(text)


@pytest.mark.parametrize(
    ("variable", "level", "message"),
    [
        ("bclc", "C]", "square brackets"),
        ("bclc", "[C", "square brackets"),
        ("bclc", "", "non-empty"),
        ("bclc", " C", "spaces"),
        ("bclc", 3, "not a string"),
        ("bc lc", "C", "letters, digits"),
        ("_bclc", "C", "starting with a letter"),
    ],
)
def test_term_refuses_bad_fields(variable, level, message):
    with pytest.raises(ContractError, match=message):
        Term(variable, level)
