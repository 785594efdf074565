"""Safe R names for a user's column names, and the way back.

R formulas are R code: ``reformulate("age (years)", y)`` parses into a call of
``age`` and ``"sex;drop"`` does not parse at all. So no user column name enters
R. Each call that builds a data frame or formula renames the columns to
``sigkit_v1``, ``sigkit_v2``, ... (zero-padded to one width, so no safe name is
a prefix of another) and maps R's answer back: a coefficient ``sigkit_v2female``
is the user's variable 2 at level ``female``, a step ``- sigkit_v3`` drops
variable 3, and R's messages read with the user's names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

PREFIX = "sigkit_v"


@dataclass(frozen=True)
class SafeNames:
    """The user's column names, each with its safe R name ``sigkit_v<k>`` (k from 1)."""

    names: tuple[str, ...]

    @classmethod
    def of(cls, names: Iterable[Any]) -> SafeNames:
        """Safe names for these column names (as strings, duplicates once)."""
        return cls(tuple(dict.fromkeys(str(name) for name in names)))

    @property
    def _width(self) -> int:
        return len(str(len(self.names)))

    def r(self, name: Any) -> str:
        """The safe R name of one of the user's names."""
        try:
            index = self.names.index(str(name))
        except ValueError:
            raise KeyError(f"{name!r} is not a column of the data frame") from None
        return f"{PREFIX}{index + 1:0{self._width}d}"

    def r_all(self, names: Sequence[Any]) -> list[str]:
        return [self.r(name) for name in names]

    def frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` with its columns renamed to their safe names (values untouched)."""
        renamed = frame.copy(deep=False)
        renamed.columns = self.r_all(list(frame.columns))
        return renamed

    def user(self, text: str) -> str:
        """R's text with every safe name replaced by the user's name (one pass)."""
        pattern = re.escape(PREFIX) + rf"(\d{{{self._width}}})"

        def back(match: re.Match[str]) -> str:
            index = int(match.group(1)) - 1
            return self.names[index] if 0 <= index < len(self.names) else match.group(0)

        return re.sub(pattern, back, text)

    def user_all(self, texts: Iterable[str]) -> list[str]:
        return [self.user(str(text)) for text in texts]
