"""The study report and the Python-vs-R validation report.

`render_study_report` and `render_validation_report` render toolkit/report/templates/study.qmd
and toolkit/report/templates/validation.qmd into self-contained HTML: with Quarto
(``embed-resources``) when it is installed, otherwise with sigkit's own
Jupyter renderer, which runs the same cells through nbclient and supports the
Quarto subset described in docs/reports.md.
"""

from __future__ import annotations

from toolkit.report._render import RenderError, find_quarto, render
from toolkit.report.api import render_study_report, render_validation_report

__all__ = [
    "RenderError",
    "find_quarto",
    "render",
    "render_study_report",
    "render_validation_report",
]
