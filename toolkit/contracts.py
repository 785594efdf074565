"""Typed names that sigkit's stages hand on: the one place their text form is made or read.

A deep feature is ``FeatureName(phase, index)``, written ``arterial_0012``; a model term is
``Term(variable, level)``, written ``bclc[C]`` for a level of a categorical variable (treatment
coding against its first level) and ``alt`` for a numeric one. Every column, JSON key and
table row that carries such a name is made by ``format`` and read back by ``parse``; nothing
else splits or matches these strings. docs/contracts.md describes them (a test keeps the two
in step).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PHASE = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_FEATURE = re.compile(r"(?P<phase>[A-Za-z][A-Za-z0-9]*)_(?P<index>[0-9]{4})")
_VARIABLE = re.compile(r"[A-Za-z][A-Za-z0-9_.]*")
_TERM = re.compile(r"(?P<variable>[^\[\]]+)(\[(?P<level>[^\[\]]*)\])?")
_INDEX_LIMIT = 10_000  # four digits in the text form


class ContractError(ValueError):
    """A name that does not follow its contract; the message quotes it and says why."""


def _fullmatch(pattern: re.Pattern[str], text: str, expected: str) -> re.Match[str]:
    match = pattern.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ContractError(f"{text!r}: expected {expected}")
    return match


@dataclass(frozen=True, order=True)
class FeatureName:
    """One deep feature: the CT ``phase`` it comes from and its ``index`` in the network's output.

    ``phase`` is letters and digits (no underscore, which separates it from the index);
    ``index`` is 0 to 9999 and is written with four digits.
    """

    phase: str
    index: int

    def __post_init__(self) -> None:
        if not isinstance(self.phase, str) or not _PHASE.fullmatch(self.phase):
            raise ContractError(
                f"feature phase {self.phase!r}: use letters and digits only, starting with a "
                "letter (an underscore would make the feature name ambiguous)"
            )
        if isinstance(self.index, bool) or not isinstance(self.index, int):
            raise ContractError(f"feature index {self.index!r} of {self.phase}: not an integer")
        if not 0 <= self.index < _INDEX_LIMIT:
            raise ContractError(
                f"feature index {self.index} of {self.phase}: must be 0 to {_INDEX_LIMIT - 1}"
            )

    def format(self) -> str:
        return f"{self.phase}_{self.index:04d}"

    @classmethod
    def parse(cls, text: str) -> FeatureName:
        match = _fullmatch(
            _FEATURE, text, "a feature name <phase>_<4-digit index>, e.g. arterial_0012"
        )
        return cls(match["phase"], int(match["index"]))

    @classmethod
    def is_feature(cls, text: str) -> bool:
        """Whether ``text`` is a feature name (for picking feature columns out of a table)."""
        return isinstance(text, str) and _FEATURE.fullmatch(text) is not None


def feature_names(phase: str, n_features: int) -> list[str]:
    """The column names of one phase's ``n_features`` deep features, in index order."""
    return [FeatureName(phase, i).format() for i in range(n_features)]


@dataclass(frozen=True)
class Term:
    """One model term: a ``variable`` and, for a categorical one, the ``level`` it codes.

    ``variable`` is a clinical variable's name (letters, digits, ``_`` and ``.``, starting with
    a letter) or ``signature``; ``level`` is ``None`` for a numeric variable, else a non-empty
    string without square brackets or surrounding spaces (``C``, ``>=400``, ``2_or_more``).
    """

    variable: str
    level: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.variable, str) or not _VARIABLE.fullmatch(self.variable):
            raise ContractError(
                f"term variable {self.variable!r}: use letters, digits, '_' and '.', "
                "starting with a letter"
            )
        if self.level is None:
            return
        if not isinstance(self.level, str):
            raise ContractError(f"level {self.level!r} of {self.variable}: not a string")
        if not self.level or self.level != self.level.strip() or re.search(r"[\[\]]", self.level):
            raise ContractError(
                f"level {self.level!r} of {self.variable}: must be non-empty, without square "
                "brackets or leading/trailing spaces"
            )

    def format(self) -> str:
        return self.variable if self.level is None else f"{self.variable}[{self.level}]"

    @classmethod
    def parse(cls, text: str) -> Term:
        match = _fullmatch(
            _TERM, text, "a model term <variable> or <variable>[<level>], e.g. bclc[C]"
        )
        try:
            return cls(match["variable"], match["level"])
        except ContractError as error:
            raise ContractError(f"model term {text!r}: {error}") from None
