"""Intraclass correlation (Shrout & Fleiss 1979), equal to ``psych::ICC(x, lmer=FALSE)``.

From the two-way ANOVA of an n subjects x k raters table (psych 2.2.9): mean
squares between subjects ``MSB``, between raters ``MSJ``, residual ``MSE`` and
within subjects ``MSW = (SSJ + SSE) / (dfJ + dfE)``,

- ICC1  = (MSB - MSW) / (MSB + (k-1) MSW),   ICC1k = (MSB - MSW) / MSB
- ICC2  = (MSB - MSE) / (MSB + (k-1) MSE + k (MSJ - MSE) / n),
  ICC2k = (MSB - MSE) / (MSB + (MSJ - MSE) / n)
- ICC3  = (MSB - MSE) / (MSB + (k-1) MSE),   ICC3k = (MSB - MSE) / MSB

with F tests ``MSB/MSW`` (ICC1, ICC1k) and ``MSB/MSE`` (the others) and psych's
confidence limits (exact F limits; Satterthwaite's df for ICC2/ICC2k).
psych's default ``lmer=TRUE`` takes the variance components from lme4 instead;
they differ from these ANOVA values by about 1e-5, so we match ``lmer=FALSE``.
Missing ratings are an error naming the subjects (psych stops as well).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from toolkit.stats._checks import listed

KINDS = ("ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k")


def _check(ratings: np.ndarray, subjects: np.ndarray) -> None:
    if ratings.shape[0] < 2 or ratings.shape[1] < 2:
        raise ValueError(
            f"ratings need at least 2 subjects and 2 raters, got shape {ratings.shape[:2]}"
        )
    bad = ~np.isfinite(ratings.reshape(ratings.shape[0], -1)).all(axis=1)
    if bad.any():
        shown = listed(subjects[bad])
        raise ValueError(
            f"ratings have missing or infinite values for {int(bad.sum())} subjects ({shown})"
        )


def _mean_squares(x: np.ndarray) -> dict[str, np.ndarray]:
    """Two-way ANOVA mean squares of x (n, k, features), one value per feature."""
    n, k = x.shape[:2]
    grand = x.mean(axis=(0, 1))
    centred = x - grand
    ss_total = np.einsum("ijf,ijf->f", centred, centred)
    subject = centred.mean(axis=1)
    rater = centred.mean(axis=0)
    ss_subjects = k * np.einsum("if,if->f", subject, subject)
    ss_raters = n * np.einsum("jf,jf->f", rater, rater)
    ss_error = ss_total - ss_subjects - ss_raters
    df_error = (n - 1) * (k - 1)
    return {
        "MSB": ss_subjects / (n - 1),
        "MSJ": ss_raters / (k - 1),
        "MSE": ss_error / df_error,
        "MSW": (ss_raters + ss_error) / (k - 1 + df_error),
    }


def _coefficients(ms: dict[str, np.ndarray], n: int, k: int) -> dict[str, np.ndarray]:
    msb, msj, mse, msw = ms["MSB"], ms["MSJ"], ms["MSE"], ms["MSW"]
    return {
        "ICC1": (msb - msw) / (msb + (k - 1) * msw),
        "ICC2": (msb - mse) / (msb + (k - 1) * mse + k * (msj - mse) / n),
        "ICC3": (msb - mse) / (msb + (k - 1) * mse),
        "ICC1k": (msb - msw) / msb,
        "ICC2k": (msb - mse) / (msb + (msj - mse) / n),
        "ICC3k": (msb - mse) / msb,
    }


def _icc2_limits(ms, icc2, n: int, k: int, alpha: float):
    """psych's limits for ICC2 (Satterthwaite df, Shrout & Fleiss eq. 10)."""
    msb, msj, mse = ms["MSB"], ms["MSJ"], ms["MSE"]
    fj = msj / mse
    vn = (k - 1) * (n - 1) * (k * icc2 * fj + n * (1 + (k - 1) * icc2) - k * icc2) ** 2
    vd = (n - 1) * k**2 * icc2**2 * fj**2 + (n * (1 + (k - 1) * icc2) - k * icc2) ** 2
    v = vn / vd
    f_upper = stats.f.ppf(1 - alpha / 2, n - 1, v)
    f_lower = stats.f.ppf(1 - alpha / 2, v, n - 1)
    denominator = k * msj + (k * n - k - n) * mse
    lower = n * (msb - f_upper * mse) / (f_upper * denominator + n * msb)
    upper = n * (f_lower * msb - mse) / (denominator + n * f_lower * msb)
    return lower, upper


def _limits(ms, icc, n: int, k: int, alpha: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    df_b, df_w, df_e = n - 1, n * (k - 1), (n - 1) * (k - 1)
    f1 = ms["MSB"] / ms["MSW"]
    f3 = ms["MSB"] / ms["MSE"]
    f1_lower = f1 / stats.f.ppf(1 - alpha / 2, df_b, df_w)
    f1_upper = f1 * stats.f.ppf(1 - alpha / 2, df_w, df_b)
    f3_lower = f3 / stats.f.ppf(1 - alpha / 2, df_b, df_e)
    f3_upper = f3 * stats.f.ppf(1 - alpha / 2, df_e, df_b)
    l2, u2 = _icc2_limits(ms, icc["ICC2"], n, k, alpha)
    return {
        "ICC1": ((f1_lower - 1) / (f1_lower + k - 1), (f1_upper - 1) / (f1_upper + k - 1)),
        "ICC2": (l2, u2),
        "ICC3": ((f3_lower - 1) / (f3_lower + k - 1), (f3_upper - 1) / (f3_upper + k - 1)),
        "ICC1k": (1 - 1 / f1_lower, 1 - 1 / f1_upper),
        "ICC2k": (l2 * k / (1 + l2 * (k - 1)), u2 * k / (1 + u2 * (k - 1))),
        "ICC3k": (1 - 1 / f3_lower, 1 - 1 / f3_upper),
    }


def icc(ratings: Any, alpha: float = 0.05) -> pd.DataFrame:
    """All six Shrout-Fleiss ICCs with F tests and CIs, as ``psych::ICC(x, lmer=FALSE)``.

    Parameters
    ----------
    ratings
        Subjects x raters (array or DataFrame; a DataFrame's index names the
        subjects in error messages).
    alpha
        1 - confidence level of the limits.

    Returns
    -------
    DataFrame indexed ICC1, ICC2, ICC3, ICC1k, ICC2k, ICC3k with columns ICC, F,
    df1, df2, p, lower, upper (psych's ``$results``, renamed).
    """
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"ratings must be subjects x raters (2-D), got shape {x.shape}")
    subjects = np.asarray(ratings.index) if isinstance(ratings, pd.DataFrame) else np.arange(len(x))
    _check(x, subjects)
    n, k = x.shape
    ms = {key: float(v[0]) for key, v in _mean_squares(x[:, :, None]).items()}
    values = _coefficients(ms, n, k)
    limits = _limits(ms, values, n, k, alpha)
    df_b, df_w, df_e = n - 1, n * (k - 1), (n - 1) * (k - 1)
    f1, f3 = ms["MSB"] / ms["MSW"], ms["MSB"] / ms["MSE"]
    p1, p3 = stats.f.sf(f1, df_b, df_w), stats.f.sf(f3, df_b, df_e)
    tests = {"1": (f1, df_b, df_w, p1), "2": (f3, df_b, df_e, p3), "3": (f3, df_b, df_e, p3)}
    rows = []
    for kind in KINDS:
        f, df1, df2, p = tests[kind[3]]
        lower, upper = limits[kind]
        rows.append([values[kind], f, df1, df2, p, float(lower), float(upper)])
    return pd.DataFrame(
        rows,
        index=pd.Index(KINDS, name="type"),
        columns=["ICC", "F", "df1", "df2", "p", "lower", "upper"],
    )


def icc_many(ratings: Any, kind: str = "ICC2") -> np.ndarray:
    """One ICC per feature for a (subjects, raters, features) array, vectorised.

    The same ANOVA arithmetic as :func:`icc`, one pass over all features (the
    study screens 2048 deep features at once). Returns an array (features,).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 3:
        raise ValueError(f"ratings must be (subjects, raters, features), got shape {x.shape}")
    _check(x, np.arange(len(x)))
    n, k = x.shape[:2]
    return _coefficients(_mean_squares(x), n, k)[kind]
