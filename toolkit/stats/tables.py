"""The baseline-characteristics table (a paper's Table 1), with the tests R would give.

Numeric variables: median (IQR, R's default type-7 quartiles) per group and the
Mann-Whitney p of ``wilcox.test(x ~ group, exact=FALSE, correct=TRUE)`` (normal
approximation with tie and continuity corrections); with more than two groups,
``kruskal.test``. Categorical variables: n (%) per level and group and the p of
``fisher.test`` on the group x level table (r x c included, computed exactly by
:func:`toolkit.stats._fisher.fisher_exact`). Missing values are counted and
reported on a "missing" row, and left out of percentages and tests (as R's
``table`` and ``wilcox.test`` do); nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from toolkit.stats._checks import listed
from toolkit.stats._fisher import fisher_exact

COLUMNS = ("variable", "level", "p", "test")


def _groups(df: pd.DataFrame, group: str) -> pd.Categorical:
    if group not in df.columns:
        raise ValueError(f"group column {group!r} is not in the table")
    values = df[group]
    labels = pd.Categorical(values) if not isinstance(values.dtype, pd.CategoricalDtype) else values
    labels = pd.Categorical(labels).remove_unused_categories()
    missing = pd.isna(labels)
    if missing.any():
        rows = listed(df.index[missing])
        raise ValueError(
            f"group column {group!r} is missing for {int(missing.sum())} rows ({rows})"
        )
    if len(labels.categories) < 2:
        raise ValueError(f"group column {group!r} needs at least two groups")
    return labels


def _format_number(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"


def _numeric_rows(x: pd.Series, labels: pd.Categorical, name: str, digits: int) -> list[dict]:
    if not pd.api.types.is_numeric_dtype(x):
        raise ValueError(f"numeric variable {name!r} has non-numeric values")
    values = x.to_numpy(dtype=float)
    if np.isinf(values).any():
        rows = listed(x.index[np.isinf(values)])
        raise ValueError(f"numeric variable {name!r} has infinite values (rows {rows})")
    samples = [values[(labels == g) & ~np.isnan(values)] for g in labels.categories]
    row: dict = {"variable": name, "level": "median (IQR)"}
    for g, sample in zip(labels.categories, samples, strict=True):
        if sample.size:
            q1, med, q3 = np.quantile(sample, [0.25, 0.5, 0.75])
            cell = f"{_format_number(med, digits)} ({_format_number(q1, digits)}-"
            row[str(g)] = cell + f"{_format_number(q3, digits)})"
        else:
            row[str(g)] = "-"
    if len(samples) == 2:
        row["p"] = mann_whitney(samples[0], samples[1])
        row["test"] = "Mann-Whitney U"
    else:
        row["p"] = float(stats.kruskal(*samples).pvalue)
        row["test"] = "Kruskal-Wallis"
    return [row, *_missing_row(np.isnan(values), labels, name)]


def _missing_row(missing: np.ndarray, labels: pd.Categorical, name: str) -> list[dict]:
    if not missing.any():
        return []
    row: dict = {"variable": name, "level": "missing", "p": np.nan, "test": ""}
    for g in labels.categories:
        row[str(g)] = str(int((missing & (labels == g)).sum()))
    return [row]


def _categorical_rows(x: pd.Series, labels: pd.Categorical, name: str, digits: int) -> list[dict]:
    values = pd.Categorical(x) if not isinstance(x.dtype, pd.CategoricalDtype) else x.array
    missing = np.asarray(pd.isna(values))
    table = pd.crosstab(pd.Categorical(values), labels, dropna=True)
    table = table.reindex(columns=labels.categories, fill_value=0)
    p = fisher_exact(table.to_numpy()) if table.shape[0] >= 2 else np.nan
    rows: list[dict] = [{"variable": name, "level": "", "p": p, "test": "Fisher exact"}]
    totals = table.sum(axis=0)
    for level, counts in table.iterrows():
        row: dict = {"variable": name, "level": str(level), "p": np.nan, "test": ""}
        for g in labels.categories:
            share = 100 * counts[g] / totals[g] if totals[g] else np.nan
            row[str(g)] = f"{int(counts[g])} ({_format_number(share, digits)}%)"
        rows.append(row)
    return rows + _missing_row(missing, labels, name)


def mann_whitney(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided p of ``wilcox.test(x, y, exact=FALSE, correct=TRUE)``.

    :math:`z = (W - n_x n_y/2 - 0.5\\,\\mathrm{sign}) / \\sigma`, with
    :math:`\\sigma^2 = \\frac{n_x n_y}{12}\\big(n+1 - \\sum (t^3-t)/(n(n-1))\\big)`.
    """
    return float(
        stats.mannwhitneyu(
            x, y, use_continuity=True, alternative="two-sided", method="asymptotic"
        ).pvalue
    )


def baseline(
    df: pd.DataFrame,
    group: str,
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    digits: int = 1,
) -> pd.DataFrame:
    """Table 1: per-group summaries and the p-value of the between-group test.

    Parameters
    ----------
    df
        One row per patient.
    group
        Column defining the groups (e.g. training vs validation set); a pandas
        categorical keeps its level order. Missing group labels are an error.
    numeric, categorical
        Columns summarised as median (IQR) and as n (%).
    digits
        Decimals of medians, quartiles and percentages.

    Returns
    -------
    DataFrame with columns variable, level, one column per group (headed by the
    group's label) holding formatted text, p (float; on the variable's first row)
    and test. The first row, variable "n", gives the group sizes.
    """
    labels = _groups(df, group)
    unknown = [c for c in [*numeric, *categorical] if c not in df.columns]
    if unknown:
        raise ValueError(f"columns not in the table: {unknown}")
    rows: list[dict] = [
        {
            "variable": "n",
            "level": "",
            "p": np.nan,
            "test": "",
            **{str(g): str(int((labels == g).sum())) for g in labels.categories},
        }
    ]
    for name in numeric:
        rows.extend(_numeric_rows(df[name], labels, name, digits))
    for name in categorical:
        rows.extend(_categorical_rows(df[name], labels, name, digits))
    order = ["variable", "level", *(str(g) for g in labels.categories), "p", "test"]
    return pd.DataFrame(rows, columns=order)
