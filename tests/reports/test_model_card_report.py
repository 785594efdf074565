"""The study report's model-card section: the bundle's MODEL_CARD.md, shown as written,
and linked from the TRIPOD+AI checklist's items it answers."""

from __future__ import annotations

import re

from toolkit.report import model_card


def _cells(markdown: str) -> list[str]:
    """Every cell of every pipe table of a Markdown text (separator rows left out)."""
    cells = []
    for line in markdown.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells += [c.strip() for c in line.strip().strip("|").split("|")]
    return cells


def _section_text(page: str, ident: str) -> str:
    """The text from the h2 with id ``ident`` to the next h2."""
    from bs4 import BeautifulSoup

    heading = BeautifulSoup(page, "html.parser").find(id=ident)
    assert heading is not None and heading.name == "h2", ident
    parts = []
    for node in heading.find_next_siblings():
        if node.name == "h2":
            break
        parts.append(node.get_text(" ", strip=True))
    return " ".join(parts)


def test_the_report_shows_the_bundles_model_card(study_report, study_dir):
    page = study_report.read_text()
    section = _section_text(page, model_card.SECTION)
    card = (study_dir / "model" / "MODEL_CARD.md").read_text(encoding="utf-8")
    for heading in (
        "Intended use",
        "Training data and centres",
        "Predictors",
        "Performance",
        "Internal validation",
        "Known limitations",
        "TRIPOD+AI items answered",
    ):
        assert heading in section
        assert f"\n## {heading}\n" in card
    cells = [c.replace("**", "").replace("`", "") for c in _cells(card) if c]
    missing = [c for c in cells if c not in section]
    assert not missing, missing[:5]
    assert "SYNTHETIC COHORT." in section and "RANDOM WEIGHTS." in section
    assert "# Model card:" not in section


def test_tripod_items_link_the_model_card(study_report):
    page = study_report.read_text()
    table = page.split('id="suptbl-tripod"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    linked = set()
    for row in rows:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        if cells and f'href="#{model_card.SECTION}"' in row:
            linked.add(re.sub(r"<[^>]+>", "", cells[0]).strip())
    assert linked == set(model_card.TRIPOD_ITEMS)
    assert f'id="{model_card.SECTION}"' in page
