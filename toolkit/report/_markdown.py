"""Markdown to HTML for the sigkit renderer (mistune, plus Quarto's small extras).

Beyond CommonMark with pipe tables and strikethrough (mistune 3), it handles:
heading attributes ``## Methods {#sec-methods .unnumbered}``, cross-references
``@fig-km``/``@tbl-baseline``/``@sec-methods`` (rendered as links reading
"Figure 2", "Table 1" or the section's title), and raw HTML passed through.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

import mistune

_HEADING_ATTRS = re.compile(r"\s*\{([^}]*)\}\s*$")
_CROSSREF = re.compile(r"(?<![\w@./-])@([A-Za-z]+-[\w-]*\w)")


def slugify(text: str) -> str:
    """Pandoc-style identifier for a heading without an explicit id."""
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"[^\w\s-]", "", text.lower()).strip()
    return re.sub(r"[\s]+", "-", text) or "section"


class _Renderer(mistune.HTMLRenderer):
    def __init__(self, headings: list[tuple[int, str, str]]) -> None:
        super().__init__(escape=False)
        self.headings = headings

    def heading(self, text: str, level: int, **attrs) -> str:
        from toolkit.report._qmd import parse_attributes

        classes: tuple[str, ...] = ()
        ident = None
        match = _HEADING_ATTRS.search(text)
        if match:
            ident, classes, _ = parse_attributes(html.unescape(match.group(1)))
            text = text[: match.start()]
        ident = ident or slugify(text)
        self.headings.append((level, ident, text))
        cls = f' class="{" ".join(classes)}"' if classes else ""
        return f'<h{level} id="{ident}"{cls}>{text}</h{level}>\n'

    def table(self, text: str) -> str:
        return f'<table class="md-table">\n{text}</table>\n'


def to_html(
    text: str,
    refs: Mapping[str, str] | None = None,
    headings: list[tuple[int, str, str]] | None = None,
) -> str:
    """Render Markdown; `refs` maps cross-reference ids to their display text.

    Headings found are appended to `headings` as (level, id, html) for the table
    of contents. An unknown ``@xyz-name`` reference is left as written, like Quarto's
    "?@xyz-name" warning, so a typo stays visible.
    """
    refs = refs or {}

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in refs:
            return f"?@{key}"
        return f'<a class="xref" href="#{key}">{refs[key]}</a>'

    text = _CROSSREF.sub(replace, text)
    renderer = _Renderer(headings if headings is not None else [])
    markdown = mistune.create_markdown(renderer=renderer, plugins=["table", "strikethrough"])
    return markdown(text)
