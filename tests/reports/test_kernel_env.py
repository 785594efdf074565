"""The report kernel runs this interpreter even after embedded R changed LD_LIBRARY_PATH."""

from __future__ import annotations

import os


def test_render_works_after_r_has_started(r, tmp_path):
    from toolkit.report import render

    r.dataset("lung")  # starts embedded R, which extends LD_LIBRARY_PATH for this process
    assert "/usr/lib/R/lib" in os.environ.get("LD_LIBRARY_PATH", "")
    qmd = tmp_path / "doc.qmd"
    qmd.write_text("---\ntitle: t\n---\n\n```{python}\nimport pyarrow, ssl\nprint('ok')\n```\n")
    page = render(qmd, tmp_path / "doc.html", {}, "jupyter").read_text()
    assert '<pre class="cell-output">ok\n</pre>' in page
