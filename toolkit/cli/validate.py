"""`sigkit validate`: run the Python-vs-R suite and present it (a table, R's notes, the report)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table


def validate(
    fast: bool = typer.Option(False, "--fast", help="Only the quick subset the tests run."),
    only: list[str] = typer.Option(None, "--only", help="Run only these suites."),
    out: Path = typer.Option(Path("validation/results"), help="Where the JSON results go."),
    report: bool = typer.Option(True, help="Render validation/report/validation.html."),
) -> None:
    """Cross-check every statistic against R on datasets that ship with R."""
    raise typer.Exit(run_validation(fast=fast, only=only, out=out, report=report))


def _fmt(value: float) -> str:
    return f"{value:.10g}"


def _marked(statistic: str, notes: tuple[str, ...], numbers: dict[str, int]) -> str:
    """The statistic with the numbers of its notes, numbering notes as first seen."""
    marks = [numbers.setdefault(note, len(numbers) + 1) for note in notes]
    return escape(statistic) + (f" [{', '.join(map(str, marks))}]" if marks else "")


def _table(results) -> tuple[Table, int, dict[str, int]]:
    """The comparisons table, the number failed, and R's notes numbered as the table meets them."""
    table = Table(title="sigkit vs R", show_lines=False)
    for column in ("statistic", "dataset", "ours", "R", "|diff|", "tolerance", "pass"):
        table.add_column(
            column, justify="right" if column not in ("statistic", "dataset") else "left"
        )
    failed = 0
    numbers: dict[str, int] = {}
    for result in results:
        for c in result.comparisons:
            failed += not c.passed
            tol = f"{c.tolerance:.0e}" + (" rel" if c.relative else " abs")
            mark = "[green]pass[/]" if c.passed else "[red]FAIL[/]"
            statistic = _marked(c.statistic, c.notes, numbers)
            dataset = escape(c.dataset)
            table.add_row(statistic, dataset, _fmt(c.ours), _fmt(c.r), f"{c.diff:.2e}", tol, mark)
        for error in result.errors:
            failed += 1
            table.add_row(result.suite, "-", "-", "-", "-", "-", f"[red]ERROR[/] {escape(error)}")
    return table, failed, numbers


def run_validation(*, fast: bool, only: list[str] | None, out: Path, report: bool) -> int:
    """Run the suites, print the table and R's notes, return the exit status (1 on any failure)."""
    from validation import run_suites

    console = Console()
    if not console.is_terminal:  # a log file or CI: do not squeeze the table to 80 columns
        console = Console(width=160)
    results = run_suites(fast=fast, only=only, out_dir=out)
    table, failed, numbers = _table(results)
    console.print(table)
    for note, number in numbers.items():
        console.print(escape(f"[{number}] {note}"), soft_wrap=True)
    n = sum(len(r.comparisons) for r in results)
    console.print(f"{n} comparisons in {len(results)} suites; {failed} failed. Results in {out}/")
    if report:
        from toolkit.report import render_validation_report

        path = render_validation_report(results_dir=out)
        console.print(f"report: {path}")
    if n == 0:  # nothing checked is not a pass
        console.print("[red]no comparisons were made[/]: no suite matched or every suite was empty")
        return 1
    return 1 if failed else 0
