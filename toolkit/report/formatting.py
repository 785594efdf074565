"""Numbers and tables formatted the way a journal prints them.

``1.23 (0.98–1.55)`` for an estimate with its 95% CI (en dash between the
limits), ``< 0.001`` for small p-values and three decimals otherwise, and HTML
tables whose numeric columns are right-aligned.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

DASH = "\u2013"


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def number(value: Any, digits: int = 3) -> str:
    """A number with `digits` decimals; "–" when missing."""
    if _missing(value):
        return DASH
    return f"{float(value):.{digits}f}"


def pvalue(value: Any) -> str:
    """A p-value as journals print it: "< 0.001", else three decimals."""
    if _missing(value):
        return DASH
    value = float(value)
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def ratio(value: Any, digits: int = 2) -> str:
    """A hazard ratio: `digits` decimals between 0.01 and 1000, else two significant digits
    in exponent form (``6.2e+05``), as a separated (near-infinite) estimate would need."""
    if _missing(value):
        return DASH
    value = float(value)
    if math.isinf(value):
        return "∞"
    if 0.01 <= abs(value) < 1000 or value == 0:
        return f"{value:.{digits}f}"
    return f"{value:.2g}"


def with_ci(
    estimate: Any, lower: Any, upper: Any, digits: int = 3, *, hazard_ratio: bool = False
) -> str:
    """``estimate (lower–upper)``, e.g. ``0.717 (0.709–0.726)``; hazard ratios via :func:`ratio`."""
    show = (lambda x: ratio(x, digits)) if hazard_ratio else (lambda x: number(x, digits))
    values = [v for v in (estimate, lower, upper) if not _missing(v)]
    if hazard_ratio and any(not 0.01 <= abs(float(v)) < 1000 for v in values if float(v) != 0):
        # one scale for the whole triple: 2 significant digits throughout
        show = lambda x: "∞" if math.isinf(float(x)) else f"{float(x):.2g}"  # noqa: E731
    if _missing(estimate):
        return DASH
    if _missing(lower) or _missing(upper):
        return show(estimate)
    return f"{show(estimate)} ({show(lower)}{DASH}{show(upper)})"


def count_percent(count: int, total: int) -> str:
    return f"{count} ({100 * count / total:.1f}%)" if total else str(count)


def cell(value: Any, digits: int = 3) -> str:
    """A table cell's text: floats with `digits` decimals, integers as such, text as is."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return number(value, digits)
    if value is None:
        return DASH
    try:
        if _missing(value):
            return DASH
    except TypeError:
        pass
    if hasattr(value, "item"):  # numpy scalars
        return cell(value.item(), digits)
    return str(value)


def _is_numeric_text(text: str) -> bool:
    stripped = text.replace("<", "").replace(DASH, "").replace("(", "").replace(")", "")
    stripped = (
        stripped.replace("%", "")
        .replace(" ", "")
        .replace("−", "-")
        .replace("e", "")
        .replace("×", "")
        .replace("∞", "0")
        .replace("P=", "")
        .replace("P", "")
    )
    return bool(stripped) and all(ch.isdigit() or ch in ".-+" for ch in stripped)


def _numeric_columns(header, rows, group_rows) -> set[int]:
    """Columns (after the first) whose non-empty cells are all numbers: right-aligned."""
    out = set()
    for column in range(1, len(header)):
        texts = [
            cell(row[column])
            for index, row in enumerate(rows)
            if index not in group_rows and column < len(row)
        ]
        texts = [t for t in texts if t not in ("", DASH)]
        if texts and all(_is_numeric_text(t) for t in texts):
            out.add(column)
    return out


def html_table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    table_class: str = "report-table",
    group_rows: Sequence[int] = (),
    raw_columns: Sequence[int] = (),
) -> str:
    """An HTML table; cells are escaped (except `raw_columns`) and numeric ones right-aligned.

    `group_rows` are row indices rendered as a spanning subheading row (their
    first cell is the group's title).
    """
    numeric = _numeric_columns(header, rows, group_rows)
    num = ' class="num"'
    head = "".join(
        f"<th{num if i in numeric else ''}>{html.escape(str(h))}</th>" for i, h in enumerate(header)
    )
    body = []
    for index, row in enumerate(rows):
        if index in group_rows:
            title = html.escape(str(row[0]))
            body.append(f'<tr class="group"><th colspan="{len(header)}">{title}</th></tr>')
            continue
        cells = []
        for column, value in enumerate(row):
            text = str(value) if column in raw_columns else html.escape(cell(value))
            align = ' class="num"' if column in numeric else ""
            cells.append(f"<td{align}>{text}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<table class="{table_class}">\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{chr(10).join(body)}\n</tbody>\n</table>"
    )
