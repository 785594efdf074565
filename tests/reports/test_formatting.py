"""Numbers as the report prints them."""

from __future__ import annotations

import math

from toolkit.report import formatting as fmt


def test_p_values_print_like_a_journal():
    assert fmt.pvalue(0.0004) == "< 0.001"
    assert fmt.pvalue(0.001) == "0.001"
    assert fmt.pvalue(0.0234) == "0.023"
    assert fmt.pvalue(None) == fmt.pvalue(math.nan) == "–"


def test_estimates_with_confidence_intervals():
    assert fmt.with_ci(1.234, 0.981, 1.552, digits=2) == "1.23 (0.98–1.55)"
    assert fmt.with_ci(0.7171, 0.7093, 0.7262) == "0.717 (0.709–0.726)"
    assert fmt.with_ci(0.7, None, 0.8) == "0.700"
    assert fmt.with_ci(35.64, 1.16, 1100.0, digits=2, hazard_ratio=True) == "36 (1.2–1.1e+03)"
    assert fmt.with_ci(1.9e7, 0.0, math.inf, digits=2, hazard_ratio=True) == "1.9e+07 (0–∞)"


def test_tables_escape_text_and_right_align_numbers():
    table = fmt.html_table(
        ["Variable", "HR (95% CI)", "P"], [["AFP <400", "1.20 (0.90–1.60)", 0.5]]
    )
    assert "<td>AFP &lt;400</td>" in table
    assert '<td class="num">1.20 (0.90–1.60)</td>' in table
    assert '<th class="num">P</th>' in table and '<td class="num">0.500</td>' in table
