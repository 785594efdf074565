"""Turn a parsed and executed .qmd into one self-contained HTML page.

Floats (figures and tables) are numbered per kind in document order, like
Quarto's cross-references: ``fig-`` → "Figure N", ``tbl-`` → "Table N", and
custom float kinds declared under ``crossref: custom:`` in the YAML (sigkit's
reports declare ``suptbl-`` → "Table S1"). Images are inlined as base64 data
URIs; the page's CSS is inlined; nothing is loaded from anywhere.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.report import _markdown
from toolkit.report._qmd import Cell, Div, Document, Markdown


@dataclass(frozen=True)
class FloatKind:
    key: str
    reference_prefix: str
    caption_prefix: str
    caption_on_top: bool


def float_kinds(meta: dict[str, Any]) -> dict[str, FloatKind]:
    """Quarto's built-in figure and table kinds plus the YAML's custom float kinds."""
    kinds = {
        "fig": FloatKind("fig", "Figure ", "Figure ", False),
        "tbl": FloatKind("tbl", "Table ", "Table ", True),
    }
    for custom in (meta.get("crossref") or {}).get("custom", []) or []:
        if custom.get("kind", "float") != "float":
            continue
        space = "" if custom.get("space-before-numbering") is False else " "
        ref = str(custom.get("reference-prefix", custom["key"])).rstrip() + space
        cap = str(custom.get("caption-prefix", custom.get("reference-prefix", ""))).rstrip()
        on_top = "tbl" in custom["key"] or "table" in ref.lower()
        kinds[custom["key"]] = FloatKind(custom["key"], ref, cap + space, on_top)
    return kinds


def _kind_of(ident: str | None, kinds: dict[str, FloatKind]) -> FloatKind | None:
    if not ident or "-" not in ident:
        return None
    return kinds.get(ident.split("-", 1)[0])


_SEC_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*\{[^}]*#(sec-[\w-]+)[^}]*\}\s*$", re.MULTILINE)


@dataclass
class _State:
    kinds: dict[str, FloatKind]
    refs: dict[str, str] = field(default_factory=dict)
    numbers: dict[str, str] = field(default_factory=dict)
    headings: list[tuple[int, str, str]] = field(default_factory=list)
    outputs: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    cell_index: dict[int, int] = field(default_factory=dict)
    echo: bool = False
    warning: bool = False


def _number(blocks, state: _State, counters: dict[str, int]) -> None:
    for block in blocks:
        ident = None
        if isinstance(block, Cell):
            ident = block.label
        elif isinstance(block, Div):
            ident = block.id
        elif isinstance(block, Markdown):
            for title, sec in _SEC_HEADING.findall(block.text):
                state.refs[sec] = title
        kind = _kind_of(ident, state.kinds)
        if kind is not None and ident not in state.numbers:
            counters[kind.key] = counters.get(kind.key, 0) + 1
            number = str(counters[kind.key])
            state.numbers[ident] = number
            state.refs[ident] = f"{kind.reference_prefix}{number}"
        if isinstance(block, Div):
            _number(block.children, state, counters)


def _image(mime: str, data: str) -> str:
    if mime == "image/svg+xml":
        data = base64.b64encode(data.encode()).decode()
    else:
        data = "".join(data.split())
    return f'<img src="data:{mime};base64,{data}" alt="">'


def _render_data(bundle: dict[str, Any], state: _State) -> str:
    if "text/html" in bundle:
        return _as_text(bundle["text/html"])
    for mime in ("image/svg+xml", "image/png", "image/jpeg"):
        if mime in bundle:
            return _image(mime, _as_text(bundle[mime]))
    if "text/markdown" in bundle:
        return _markdown.to_html(_as_text(bundle["text/markdown"]), state.refs, state.headings)
    if "text/plain" in bundle:
        return f'<pre class="cell-output">{html.escape(_as_text(bundle["text/plain"]))}</pre>'
    return ""


def _as_text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _render_outputs(cell: Cell, outputs: list[dict[str, Any]], state: _State) -> str:
    mode = cell.options.get("output", True)
    if mode is False:
        return ""
    warning = cell.options.get("warning", state.warning)
    parts: list[str] = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream" and output.get("name") == "stdout":
            text = _as_text(output.get("text", ""))
            if mode == "asis":
                parts.append(_markdown.to_html(text, state.refs, state.headings))
            else:
                parts.append(f'<pre class="cell-output">{html.escape(text)}</pre>')
        elif kind == "stream" and warning:
            text = html.escape(_as_text(output.get("text", "")))
            parts.append(f'<pre class="cell-stderr">{text}</pre>')
        elif kind in ("display_data", "execute_result"):
            parts.append(_render_data(output.get("data", {}), state))
    return "\n".join(parts)


def _render_cell(cell: Cell, index: int, state: _State) -> str:
    if cell.options.get("include", True) is False:
        return ""
    parts = []
    if cell.options.get("echo", state.echo) is True:
        parts.append(f'<pre class="cell-code"><code>{html.escape(cell.source)}</code></pre>')
    parts.append(_render_outputs(cell, state.outputs.get(index, []), state))
    body = "\n".join(p for p in parts if p)
    kind = _kind_of(cell.label, state.kinds)
    caption = cell.options.get(f"{kind.key}-cap") if kind else None
    if kind is not None and caption is not None:
        caption_html = _inline(str(caption), state)
        return _float(cell.label, kind, body, caption_html, state)
    ident = f' id="{cell.label}"' if cell.label else ""
    return f'<div class="cell"{ident}>\n{body}\n</div>' if body or ident else ""


def _inline(text: str, state: _State) -> str:
    rendered = _markdown.to_html(text, state.refs).strip()
    if rendered.startswith("<p>") and rendered.endswith("</p>") and rendered.count("<p>") == 1:
        rendered = rendered[3:-4]
    return rendered


def _float(ident: str, kind: FloatKind, body: str, caption_html: str, state: _State) -> str:
    label = f"{kind.caption_prefix}{state.numbers[ident]}"
    caption = f'<figcaption><span class="float-label">{label}:</span> {caption_html}</figcaption>'
    inner = f"{caption}\n{body}" if kind.caption_on_top else f"{body}\n{caption}"
    return f'<figure id="{ident}" class="float float-{kind.key}">\n{inner}\n</figure>'


def _split_caption(children: list) -> tuple[list, str | None]:
    """A float div's caption is its last paragraph (Quarto's rule for div floats)."""
    if not children or not isinstance(children[-1], Markdown):
        return children, None
    paragraphs = re.split(r"\n\s*\n", children[-1].text.strip())
    rest = "\n\n".join(paragraphs[:-1]).strip()
    head = [*children[:-1], Markdown(rest)] if rest else list(children[:-1])
    return head, paragraphs[-1]


def _render_div(div: Div, state: _State) -> str:
    kind = _kind_of(div.id, state.kinds)
    if kind is not None:
        children, caption = _split_caption(div.children)
        body = _render_blocks(children, state)
        return _float(div.id, kind, body, _inline(caption or "", state), state)
    body = _render_blocks(div.children, state)
    attrs = "".join(f' data-{html.escape(k)}="{html.escape(v)}"' for k, v in div.attributes.items())
    ident = f' id="{div.id}"' if div.id else ""
    cls = f' class="{" ".join(div.classes)}"' if div.classes else ""
    return f"<div{ident}{cls}{attrs}>\n{body}\n</div>"


def _render_blocks(blocks, state: _State) -> str:
    parts = []
    for block in blocks:
        if isinstance(block, Markdown):
            parts.append(_markdown.to_html(block.text, state.refs, state.headings))
        elif isinstance(block, Cell):
            parts.append(_render_cell(block, state.cell_index[id(block)], state))
        else:
            parts.append(_render_div(block, state))
    return "\n".join(p for p in parts if p)


def render_body(
    document: Document, outputs: dict[int, list[dict[str, Any]]]
) -> tuple[str, list[tuple[int, str, str]]]:
    """The document's body HTML and its headings (level, id, html) for the contents."""
    execute_options = document.meta.get("execute") or {}
    state = _State(
        kinds=float_kinds(document.meta),
        outputs=outputs,
        echo=execute_options.get("echo", True) is True,
        warning=execute_options.get("warning", True) is not False,
    )
    state.cell_index = {id(cell): index for index, cell in enumerate(document.cells())}
    _number(document.blocks, state, {})
    body = _render_blocks(document.blocks, state)
    return body, state.headings


def _date(value: Any) -> str:
    if value in (None, ""):
        return ""
    if str(value).lower() == "today":
        return _dt.date.today().isoformat()
    return str(value)


def _toc(headings: list[tuple[int, str, str]], depth: int, title: str) -> str:
    items = [
        f'<li class="toc-level-{level}"><a href="#{ident}">{text}</a></li>'
        for level, ident, text in headings
        if 2 <= level <= depth + 1 or (level == 1 and depth >= 1)
    ]
    if not items:
        return ""
    return f'<nav id="TOC" class="toc"><h2>{html.escape(title)}</h2><ul>{"".join(items)}</ul></nav>'


def page(document: Document, body: str, headings, *, generator: str, css: str) -> str:
    """The whole HTML page: title block, contents, body; CSS inline, no external URL."""
    meta = document.meta
    html_options = (
        ((meta.get("format") or {}).get("html") or {})
        if isinstance(meta.get("format"), dict)
        else {}
    )
    title = str(meta.get("title", document.path.stem))
    parts = [f'<h1 class="title">{html.escape(title)}</h1>']
    if meta.get("subtitle"):
        parts.append(f'<p class="subtitle">{html.escape(str(meta["subtitle"]))}</p>')
    author = meta.get("author")
    if author:
        names = author if isinstance(author, list) else [author]
        names = [a.get("name", "") if isinstance(a, dict) else str(a) for a in names]
        parts.append(f'<p class="author">{html.escape(", ".join(names))}</p>')
    if meta.get("date"):
        parts.append(f'<p class="date">{html.escape(_date(meta["date"]))}</p>')
    toc = ""
    if html_options.get("toc", meta.get("toc", False)):
        toc_title = html_options.get("toc-title", "Contents")
        toc = _toc(headings, int(html_options.get("toc-depth", 2)), toc_title)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="{html.escape(generator)}">\n'
        f"<title>{html.escape(title)}</title>\n<style>\n{css}\n</style>\n</head>\n<body>\n"
        f'<header id="title-block-header">\n{"".join(parts)}\n</header>\n{toc}\n'
        f'<main class="content">\n{body}\n</main>\n</body>\n</html>\n'
    )


def read_css(document: Document) -> str:
    """The stylesheets named by ``format: html: css:`` (relative to the .qmd), concatenated."""
    fmt = document.meta.get("format")
    options = (fmt.get("html") or {}) if isinstance(fmt, dict) else {}
    sheets = options.get("css") or []
    sheets = [sheets] if isinstance(sheets, str) else sheets
    return "\n".join(Path(document.path.parent, s).read_text(encoding="utf-8") for s in sheets)
