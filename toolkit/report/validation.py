"""What templates/validation.qmd shows: the Python-vs-R cross-checks and the benchmarks.

Reads the per-suite JSON that `sigkit validate` writes (validation/_registry.py
``run_suites``) and the pytest-benchmark JSON of ``benchmarks/results/*.json``
(:mod:`toolkit.report.benchmarks`).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.report import benchmarks as bench
from toolkit.report import formatting as fmt


@dataclass(frozen=True)
class Suite:
    name: str
    passed: bool
    seconds: float
    errors: list[str]
    comparisons: list[dict[str, Any]]


def _env_path(name: str, default: str) -> Path:
    return Path(os.environ.get(name, default))


def load_suites(results_dir: str | Path | None = None) -> list[Suite]:
    """Every suite's JSON in the results folder (default $SIGKIT_VALIDATION_RESULTS)."""
    folder = (
        Path(results_dir)
        if results_dir
        else _env_path("SIGKIT_VALIDATION_RESULTS", "validation/results")
    )
    suites = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if "comparisons" not in data:
            continue
        suites.append(
            Suite(
                name=str(data.get("suite", path.stem)),
                passed=bool(data.get("passed", False)),
                seconds=float(data.get("seconds") or 0.0),
                errors=list(data.get("errors", [])),
                comparisons=list(data["comparisons"]),
            )
        )
    return suites


def _tolerance(c: dict[str, Any]) -> str:
    return f"{float(c['tolerance']):.0e} {'rel' if c.get('relative') else 'abs'}"


def _value(x: Any) -> str:
    return fmt.DASH if x is None else f"{float(x):.8g}"


def _verdict(passed: bool) -> str:
    return '<span class="pass">pass</span>' if passed else '<span class="fail">FAIL</span>'


def summary_sentence(suites: list[Suite]) -> str:
    n = sum(len(s.comparisons) for s in suites)
    failed = sum(not c.get("passed") for s in suites for c in s.comparisons)
    errors = sum(len(s.errors) for s in suites)
    if not suites:
        return "No cross-check results were found: run `sigkit validate` first."
    verdict = (
        "all within tolerance"
        if not failed and not errors
        else (f"**{failed} outside tolerance, {errors} suite errors**")
    )
    return f"{n} comparisons in {len(suites)} suites: {verdict}."


def _with_marks(statistic: str, notes: list[str], numbers: dict[str, int]) -> str:
    """The statistic, escaped, with the numbers of its notes (numbered as first met)."""
    marks = [numbers.setdefault(str(note), len(numbers) + 1) for note in notes]
    sup = f"<sup>{','.join(map(str, marks))}</sup>" if marks else ""
    return html.escape(statistic) + sup


def _table_notes(numbers: dict[str, int]) -> str:
    """R's notes (its warnings during the comparisons) as the table's numbered notes."""
    if not numbers:
        return ""
    items = "".join(f"<li>{html.escape(note)}</li>" for note in numbers)
    heading = '<p class="table-notes">What R said while computing the marked comparisons:</p>'
    return f'\n{heading}<ol class="table-notes">{items}</ol>'


def comparison_table(suites: list[Suite]) -> str:
    """Every comparison, grouped by suite, sorted by statistic then dataset.

    A comparison during which R warned carries a superscript number; the notes
    below the table give R's words, each naming the R computation.
    """
    rows: list[list[Any]] = []
    groups = []
    numbers: dict[str, int] = {}
    for suite in suites:
        passed = sum(bool(c.get("passed")) for c in suite.comparisons)
        groups.append(len(rows))
        rows.append(
            [f"{suite.name}: {passed}/{len(suite.comparisons)} pass ({suite.seconds:.1f} s)"]
        )
        ordered = sorted(suite.comparisons, key=lambda c: (c["statistic"], c["dataset"]))
        for c in ordered:
            rows.append(
                [
                    _with_marks(c["statistic"], list(c.get("notes") or []), numbers),
                    c["dataset"],
                    _value(c.get("ours")),
                    _value(c.get("r")),
                    fmt.DASH if c.get("diff") is None else f"{float(c['diff']):.1e}",
                    _tolerance(c),
                    c.get("n_values", 1),
                    html.escape(str(c.get("reference", ""))),
                    _verdict(bool(c.get("passed"))),
                ]
            )
        for error in suite.errors:
            rows.append([html.escape(error), "", "", "", "", "", "", "", _verdict(False)])
    if not rows:
        return '<p class="missing">No cross-check results (validation/results/*.json).</p>'
    header = ["Statistic", "Dataset", "sigkit", "R", "|Difference|", "Tolerance", "Values",
              "R reference", "Result"]  # fmt: skip
    table = fmt.html_table(header, rows, group_rows=groups, raw_columns=(0, 7, 8))
    return table + _table_notes(numbers)


def matrix_table(suites: list[Suite]) -> str:
    """Each statistic, by suite, with the datasets it was checked on: pass when all passed.

    A long table (a subheading per suite, one row per statistic) rather than a
    statistic x dataset matrix, which with some 40 datasets was mostly empty.
    """
    rows: list[list[Any]] = []
    groups: list[int] = []
    for suite in suites:
        by_statistic: dict[str, dict[str, bool]] = {}
        for c in suite.comparisons:
            datasets = by_statistic.setdefault(c["statistic"], {})
            datasets[c["dataset"]] = datasets.get(c["dataset"], True) and bool(c.get("passed"))
        if not by_statistic:
            continue
        groups.append(len(rows))
        rows.append([suite.name, "", ""])
        for statistic, datasets in by_statistic.items():
            listed = "; ".join(
                html.escape(name) + ("" if ok else ' <span class="fail">(FAIL)</span>')
                for name, ok in datasets.items()
            )
            rows.append([statistic, listed, _verdict(all(datasets.values()))])
    if not rows:
        return '<p class="missing">No cross-check results (validation/results/*.json).</p>'
    return fmt.html_table(
        ["Statistic", "Datasets", "Result"], rows, group_rows=groups, raw_columns=(1, 2)
    )


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=130, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img class="figure-img" src="data:image/png;base64,{data}" alt="">'


def margin_figure(suites: list[Suite]) -> str:
    """|difference| / tolerance of every comparison, one row of points per suite, log axis.

    Below 1 passes. Ratios under 1e-12 (exact agreement included) sit at 1e-12.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    floor = 1e-12
    rows = []
    for suite in suites:
        ratios = [
            float(c["diff"]) / float(c["tolerance"]) if c.get("diff") is not None else np.inf
            for c in suite.comparisons
            if float(c.get("tolerance") or 0) > 0
        ]
        if ratios:
            rows.append((suite.name, np.clip(np.asarray(ratios, dtype=float), floor, 1e3)))
    if not rows:
        return '<p class="missing">No cross-check results to plot.</p>'
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(rows) + 1.2))
    for y, (_, ratios) in enumerate(rows):
        spread = np.linspace(-0.25, 0.25, len(ratios)) if len(ratios) > 1 else np.zeros(1)
        colours = np.where(ratios <= 1, "#1b7a36", "#b3261e")
        ax.scatter(ratios, y + spread, c=colours, s=12, alpha=0.8, zorder=3)
    ax.set_xscale("log")
    ax.set_xlim(floor / 3, 1e3)
    ax.axvline(1.0, color="#333", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(rows)), [f"{name} ({len(r)})" for name, r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("|sigkit − R| / tolerance (log scale; dashed line = tolerance)")
    fig.tight_layout()
    out = _png(fig)
    plt.close(fig)
    return out


# ---------------------------------------------------------------- benchmarks


def load_benchmarks(folder: str | Path | None = None) -> list[bench.Run]:
    """The pytest-benchmark runs in ``FOLDER/results`` (default $SIGKIT_BENCHMARKS/results)."""
    folder = Path(folder) if folder else _env_path("SIGKIT_BENCHMARKS", "benchmarks")
    return bench.read_runs(folder / "results")


def _inline_code(text: str) -> str:
    """A Markdown table cell as HTML: escaped, with `code` spans kept as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def benchmark_tables_html(runs: list[bench.Run]) -> str:
    """Each run's medians and speed-ups, as its JSON records them."""
    if not runs:
        return '<p class="missing">No benchmark records (benchmarks/results/*.json).</p>'
    parts = []
    for run in runs:
        title = f"<h4>{_inline_code(bench.run_title(run))}</h4>"
        rows = [[html.escape(c) for c in row] for row in bench.comparison_rows(run)]
        parts.append(title + fmt.html_table(bench.HEADER, rows, raw_columns=range(7)))
    return "\n".join(parts)


def ratio_figure(runs: list[bench.Run]) -> str:
    """Every sigkit-vs-reference speed-up of every run as bars on a log axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = [
        (f"{c.sigkit.group}: {c.sigkit.test} vs {c.reference.test}", c.speedup)
        for run in runs
        for c in run.comparisons()
    ]
    if not bars:
        return '<p class="missing">No sigkit-vs-reference pair in the benchmark records.</p>'
    fig, ax = plt.subplots(figsize=(7.5, max(2.0, 0.28 * len(bars) + 0.9)))
    values = [v for _, v in bars]
    ax.hlines(range(len(bars)), 1.0, values, color="#2c5d8a", linewidth=2)
    ax.plot(values, range(len(bars)), "o", color="#2c5d8a")
    for y, v in enumerate(values):
        ax.annotate(f"{v:.3g}", (v, y), textcoords="offset points", xytext=(6, 3), fontsize=7)
    ax.set_xscale("log")
    low, high = min([*values, 1.0]), max([*values, 1.0])
    ax.set_xlim(low / 1.6, high * 3)
    ax.axvline(1.0, color="#333", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(bars)), [label for label, _ in bars], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(
        "speed-up over the reference tool (its median / sigkit's; > 1: sigkit faster; log scale)"
    )
    fig.tight_layout()
    out = _png(fig)
    plt.close(fig)
    return out
