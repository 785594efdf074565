"""Python-vs-R cross-check suite on real datasets that ship with R.

Each ``validation/suite_*.py`` module registers checks with :func:`check`. A
check function returns :class:`Comparison` rows: one statistic on one dataset,
our value, R's value, the tolerance and whether it is absolute or relative.
``sigkit validate`` runs every suite, writes ``validation/results/<suite>.json``
and prints a table; tests run the checks marked ``fast``.
"""

from validation._registry import Comparison, SuiteResult, check, compare, run_suites

__all__ = ["Comparison", "SuiteResult", "check", "compare", "run_suites"]
