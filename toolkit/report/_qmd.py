"""Parse the subset of Quarto markdown (.qmd) that sigkit's reports use.

The subset (documented in docs/reports.md):

- a YAML front matter block between ``---`` lines;
- ``{{< include FILE >}}`` shortcodes, expanded relative to the including file;
- executable cells fenced with ```` ```{python} ```` whose leading ``#|`` lines are
  YAML cell options (``label``, ``echo``, ``eval``, ``include``, ``output``,
  ``warning``, ``fig-cap``, ``tbl-cap``);
- fenced divs ``::: {#id .class key="value"}`` … ``:::`` (nesting allowed, by
  the number of colons as in Pandoc); a div whose id starts with a cross-reference
  prefix (``fig-``, ``tbl-`` or a custom float key from ``crossref.custom``) is a
  float whose last paragraph is its caption;
- everything else is Markdown, rendered by :mod:`toolkit.report._markdown`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class QmdError(ValueError):
    """A .qmd file that the sigkit renderer cannot parse; names the file and line."""


@dataclass(frozen=True)
class Markdown:
    text: str


@dataclass(frozen=True)
class Cell:
    source: str
    options: dict[str, Any]
    origin: str  # "file:line" for error messages

    @property
    def label(self) -> str | None:
        label = self.options.get("label")
        return str(label) if label is not None else None


@dataclass
class Div:
    id: str | None
    classes: tuple[str, ...]
    attributes: dict[str, str]
    children: list[Markdown | Cell | Div] = field(default_factory=list)


@dataclass
class Document:
    meta: dict[str, Any]
    blocks: list[Markdown | Cell | Div]
    path: Path

    def cells(self) -> list[Cell]:
        """Every executable cell in document order."""
        return list(_walk_cells(self.blocks))


def _walk_cells(blocks):
    for block in blocks:
        if isinstance(block, Cell):
            yield block
        elif isinstance(block, Div):
            yield from _walk_cells(block.children)


_INCLUDE = re.compile(r"^\s*\{\{<\s*include\s+(\S+)\s*>\}\}\s*$")
_CELL_OPEN = re.compile(r"^```\s*\{python[^}]*\}\s*$")
_FENCE = re.compile(r"^(`{3,}|~{3,})")
_DIV_OPEN = re.compile(r"^(:{3,})\s*(\{(?P<attrs>[^}]*)\}|(?P<cls>[\w-]+))\s*$")
_DIV_CLOSE = re.compile(r"^(:{3,})\s*$")
_OPTION = re.compile(r"^#\|\s?(.*)$")


def parse_attributes(text: str) -> tuple[str | None, tuple[str, ...], dict[str, str]]:
    """Parse a Pandoc attribute list ``#id .class key="value"``."""
    ident: str | None = None
    classes: list[str] = []
    attributes: dict[str, str] = {}
    for token in shlex.split(text):
        if token.startswith("#"):
            ident = token[1:]
        elif token.startswith("."):
            classes.append(token[1:])
        elif "=" in token:
            key, value = token.split("=", 1)
            attributes[key] = value
    return ident, tuple(classes), attributes


def read_lines(path: Path, _seen: tuple[Path, ...] = ()) -> list[tuple[str, str]]:
    """The file's lines with includes expanded, each with its "file:line" origin."""
    path = path.resolve()
    if path in _seen:
        raise QmdError(f"{path}: include cycle through {' -> '.join(map(str, _seen))}")
    if not path.is_file():
        raise QmdError(f"{path}: file not found")
    out: list[tuple[str, str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = _INCLUDE.match(line)
        if match:
            out.extend(read_lines(path.parent / match.group(1), (*_seen, path)))
        else:
            out.append((line, f"{path.name}:{number}"))
    return out


def _split_front_matter(lines: list[tuple[str, str]]) -> tuple[dict[str, Any], int]:
    if not lines or lines[0][0].strip() != "---":
        return {}, 0
    for index in range(1, len(lines)):
        if lines[index][0].strip() in ("---", "..."):
            text = "\n".join(line for line, _ in lines[1:index])
            try:
                meta = yaml.safe_load(text) or {}
            except yaml.YAMLError as exc:
                raise QmdError(f"{lines[0][1]}: front matter is not valid YAML: {exc}") from exc
            return meta, index + 1
    raise QmdError(f"{lines[0][1]}: front matter has no closing '---'")


def _cell_options(body: list[str], origin: str) -> tuple[dict[str, Any], str]:
    option_lines = []
    index = 0
    while index < len(body) and _OPTION.match(body[index]):
        option_lines.append(_OPTION.match(body[index]).group(1))
        index += 1
    try:
        options = yaml.safe_load("\n".join(option_lines)) if option_lines else {}
    except yaml.YAMLError as exc:
        raise QmdError(f"{origin}: cell options are not valid YAML: {exc}") from exc
    options = options or {}
    if not isinstance(options, dict):
        raise QmdError(f"{origin}: cell options must be 'key: value' lines")
    return options, "\n".join(body[index:]).strip("\n")


class _Builder:
    """Accumulates blocks into the open div (a stack) while scanning lines."""

    def __init__(self) -> None:
        self.root: list[Markdown | Cell | Div] = []
        self.stack: list[tuple[Div, int, str]] = []
        self.text: list[str] = []

    @property
    def target(self) -> list:
        return self.stack[-1][0].children if self.stack else self.root

    def flush(self) -> None:
        if any(line.strip() for line in self.text):
            self.target.append(Markdown("\n".join(self.text).strip("\n")))
        self.text = []

    def open_div(self, attrs: str | None, cls: str | None, colons: int, origin: str) -> None:
        self.flush()
        ident, classes, attributes = (
            parse_attributes(attrs)
            if attrs is not None
            else (
                None,
                (cls,),
                {},
            )
        )
        div = Div(ident, classes, attributes)
        self.target.append(div)
        self.stack.append((div, colons, origin))

    def close_div(self, origin: str) -> None:
        if not self.stack:
            raise QmdError(f"{origin}: ':::' closes no open div")
        self.flush()
        self.stack.pop()


def parse(path: str | Path) -> Document:
    """Parse a .qmd file into its front matter and a tree of blocks."""
    path = Path(path)
    lines = read_lines(path)
    meta, start = _split_front_matter(lines)
    builder = _Builder()
    index = start
    while index < len(lines):
        line, origin = lines[index]
        index += 1
        if _CELL_OPEN.match(line):
            builder.flush()
            body, index = _take_fence(lines, index, "```", origin)
            options, source = _cell_options(body, origin)
            builder.target.append(Cell(source, options, origin))
        elif fence := _FENCE.match(line):
            body, index = _take_fence(lines, index, fence.group(1), origin)
            builder.text.extend([line, *body, fence.group(1)])
        elif match := _DIV_OPEN.match(line):
            builder.open_div(match.group("attrs"), match.group("cls"), len(match.group(1)), origin)
        elif _DIV_CLOSE.match(line):
            builder.close_div(origin)
        else:
            builder.text.append(line)
    builder.flush()
    if builder.stack:
        raise QmdError(f"{builder.stack[-1][2]}: fenced div is never closed")
    return Document(meta, builder.root, path)


def _take_fence(lines, index: int, fence: str, origin: str) -> tuple[list[str], int]:
    body: list[str] = []
    while index < len(lines):
        line = lines[index][0]
        index += 1
        stripped = line.strip()
        if len(stripped) >= len(fence) and stripped == fence[0] * len(stripped):
            return body, index
        body.append(line)
    raise QmdError(f"{origin}: code block is never closed")
