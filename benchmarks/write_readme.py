"""Write benchmarks/README.md's measured tables from the JSON in benchmarks/results/.

The tables between the two marker lines are generated, nothing else is touched:
``python benchmarks/write_readme.py`` rewrites them, ``--check`` exits 1 when the README
does not match the JSON (tests/reports/test_benchmark_records.py runs the check).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toolkit.report.benchmarks import markdown, read_runs

HERE = Path(__file__).resolve().parent
BEGIN = "<!-- measured: begin (benchmarks/write_readme.py writes this from results/*.json) -->"
END = "<!-- measured: end -->"


def expected(readme: str, results: Path) -> str:
    """`readme` with its marked block replaced by the tables of the runs in `results`."""
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n\n{markdown(read_runs(results))}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the README is stale")
    args = parser.parse_args(argv)
    readme = HERE / "README.md"
    text = readme.read_text(encoding="utf-8")
    new = expected(text, HERE / "results")
    if args.check:
        if new != text:
            print(f"{readme} is stale: run python benchmarks/write_readme.py", file=sys.stderr)
            return 1
        return 0
    readme.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
