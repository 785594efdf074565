"""The Quarto subset sigkit's Jupyter renderer supports, and the hand-off to real Quarto."""

from __future__ import annotations

import os
import stat
import textwrap

import pytest

from toolkit.report import RenderError, render
from toolkit.report._qmd import Cell, Div, Markdown, QmdError, parse

DOCUMENT = textwrap.dedent(
    """\
    ---
    title: "Subset"
    format:
      html:
        toc: true
    execute:
      echo: false
    crossref:
      custom:
        - kind: float
          key: suptbl
          reference-prefix: "Table S"
          space-before-numbering: false
    ---

    {{< include _part.qmd >}}

    ## Results {#sec-results}

    See @fig-line, @tbl-first, @suptbl-extra and @sec-results.

    ```{python}
    #| label: fig-line
    #| fig-cap: "A line, drawn with *matplotlib*."
    import matplotlib.pyplot as plt
    from IPython.display import display
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    display(fig)
    plt.close(fig)
    ```

    ::: {#tbl-first}
    ```{python}
    from IPython.display import HTML
    HTML("<table><tr><td>" + os.environ["SIGKIT_TEST_VALUE"] + "</td></tr></table>")
    ```

    The first table.
    :::

    ::: {#suptbl-extra .wide}
    ```{python}
    #| output: asis
    print("| a | b |\\n|---|--:|\\n| 1 | 2 |")
    ```

    A supplementary table.
    :::

    ```{python}
    #| echo: true
    print("shown with its code")
    ```

    ```{python}
    #| include: false
    print("never shown")
    ```

    ```{python}
    #| eval: false
    raise RuntimeError("never run")
    ```

    ```{python}
    #| output: false
    print("ran, output hidden")
    ```

    ::: {.callout-note}
    ```text
    ::: not a div inside a code block
    ```
    :::
    """
)

PART = "```{python}\n#| include: false\nimport os\n```\n"


@pytest.fixture
def qmd(tmp_path):
    (tmp_path / "_part.qmd").write_text(PART)
    path = tmp_path / "doc.qmd"
    path.write_text(DOCUMENT)
    return path


def test_parse_reads_cells_divs_and_includes(qmd):
    document = parse(qmd)
    assert document.meta["title"] == "Subset"
    cells = document.cells()
    assert cells[0].source == "import os" and cells[0].options == {"include": False}
    assert cells[1].label == "fig-line"
    assert cells[1].options["fig-cap"] == "A line, drawn with *matplotlib*."
    assert cells[1].origin == "doc.qmd:22"
    divs = [b for b in document.blocks if isinstance(b, Div)]
    assert [(d.id, d.classes) for d in divs] == [
        ("tbl-first", ()),
        ("suptbl-extra", ("wide",)),
        (None, ("callout-note",)),
    ]
    assert isinstance(divs[0].children[0], Cell)
    assert divs[0].children[1] == Markdown("The first table.")
    assert "::: not a div" in divs[2].children[0].text


def test_unclosed_div_names_file_and_line(tmp_path):
    path = tmp_path / "bad.qmd"
    path.write_text("Text\n\n::: {#fig-x}\nno end\n")
    with pytest.raises(QmdError, match=r"bad.qmd:3: fenced div is never closed"):
        parse(path)


def test_jupyter_renderer_numbers_and_embeds(qmd, tmp_path):
    out = render(qmd, tmp_path / "out" / "doc.html", {"SIGKIT_TEST_VALUE": "42.5"}, "jupyter")
    page = out.read_text()
    assert '<a class="xref" href="#fig-line">Figure 1</a>' in page
    assert '<a class="xref" href="#tbl-first">Table 1</a>' in page
    assert '<a class="xref" href="#suptbl-extra">Table S1</a>' in page
    assert '<a class="xref" href="#sec-results">Results</a>' in page
    assert "Figure 1:</span> A line, drawn with <em>matplotlib</em>." in page
    assert "Table S1:</span> A supplementary table." in page
    assert "<td>42.5</td>" in page
    assert '<td style="text-align:right">2</td>' in page
    assert "data:image/png;base64," in page
    assert "print(&quot;shown with its code&quot;)" in page and "shown with its code\n" in page
    assert "never shown" not in page and "never run" not in page
    assert "ran, output hidden" not in page
    assert '<nav id="TOC"' in page and 'href="#sec-results"' in page
    assert "sigkit Jupyter renderer (nbclient" in page
    assert page.index("Table 1:") < page.index("<td>42.5</td>"), "table captions go on top"


def test_failing_cell_is_named(tmp_path):
    path = tmp_path / "fail.qmd"
    path.write_text("---\ntitle: x\n---\n\n```{python}\n#| label: tbl-broken\n1 / 0\n```\n")
    with pytest.raises(RenderError, match=r"cell 'tbl-broken' at fail.qmd:5 raised ZeroDivision"):
        render(path, tmp_path / "fail.html", {}, "jupyter")


FAKE_QUARTO = """#!/bin/sh
if [ "$1" = "--version" ]; then echo 9.8.7; exit 0; fi
printf '%s\\n' "$@" > "$SIGKIT_FAKE_LOG"
echo "$QUARTO_PYTHON|$SIGKIT_RENDERER|$SIGKIT_TEST_VALUE" >> "$SIGKIT_FAKE_LOG"
echo "<html>quarto output</html>" > report.html
"""


def test_quarto_is_used_when_installed(qmd, tmp_path, monkeypatch):
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    quarto = bin_dir / "quarto"
    quarto.write_text(FAKE_QUARTO)
    quarto.chmod(quarto.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "quarto.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SIGKIT_FAKE_LOG", str(log))
    out = render(qmd, tmp_path / "q" / "doc.html", {"SIGKIT_TEST_VALUE": "7"}, "auto")
    assert out.read_text() == "<html>quarto output</html>\n"
    args, env = log.read_text().splitlines()[:-1], log.read_text().splitlines()[-1]
    assert args == ["render", "doc.qmd", "--to", "html", "-M", "embed-resources:true",
                    "--output", "report.html"]  # fmt: skip
    assert env == f"{sys.executable}|Quarto 9.8.7|7"
    assert [p.name for p in out.parent.iterdir()] == ["doc.html"]


def test_quarto_requested_but_absent(qmd, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("toolkit.report._render.sys.executable", str(tmp_path / "python"))
    with pytest.raises(RenderError, match="no Quarto binary"):
        render(qmd, tmp_path / "doc.html", {}, "quarto")


def test_broken_quarto_falls_back_to_jupyter_in_auto_mode(qmd, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    quarto = bin_dir / "quarto"
    quarto.write_text(
        '#!/bin/sh\n[ "$1" = "--version" ] && echo 9.8.7 && exit 0\necho boom >&2\nexit 1\n'
    )
    quarto.chmod(quarto.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(RenderError, match=r"quarto render doc\.qmd failed:\nboom"):
        render(qmd, tmp_path / "q.html", {"SIGKIT_TEST_VALUE": "1"}, "quarto")
    with pytest.warns(RuntimeWarning, match="falling back to the sigkit Jupyter renderer"):
        out = render(qmd, tmp_path / "a.html", {"SIGKIT_TEST_VALUE": "1"}, "auto")
    assert "sigkit Jupyter renderer (nbclient" in out.read_text()
