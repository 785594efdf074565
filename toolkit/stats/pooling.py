"""Rubin's rules: one estimate from the fits on ``m`` imputed data sets, as ``mice::pool``.

For each coefficient, with :math:`\\hat Q_j` and :math:`U_j` (its squared standard error)
from completed data set :math:`j = 1..m` (Rubin 1987; mice 3.15 ``pool``, rule
``"rubin1987"``):

.. math::

    \\bar Q = \\frac1m \\sum_j \\hat Q_j, \\quad
    \\bar U = \\frac1m \\sum_j U_j, \\quad
    B = \\frac1{m-1} \\sum_j (\\hat Q_j - \\bar Q)^2, \\quad
    T = \\bar U + (1 + \\tfrac1m) B,

the relative increase in variance :math:`r = (1 + 1/m) B / \\bar U`, the proportion of the
variance due to the missing data :math:`\\lambda = (1 + 1/m) B / T`, and the Barnard-Rubin
(1999) small-sample degrees of freedom, with :math:`\\nu_{com}` the complete-data df
(``mice:::barnard.rubin``; :math:`\\lambda` floored at 1e-4):

.. math::

    \\nu_{old} = \\frac{m - 1}{\\lambda^2}, \\quad
    \\nu_{obs} = \\frac{\\nu_{com} + 1}{\\nu_{com} + 3} \\nu_{com} (1 - \\lambda), \\quad
    \\nu = \\frac{\\nu_{old} \\nu_{obs}}{\\nu_{old} + \\nu_{obs}}

(:math:`\\nu = \\nu_{old}` when :math:`\\nu_{com} = \\infty`), and the fraction of missing
information :math:`\\gamma = (r + 2 / (\\nu + 3)) / (r + 1)`. Tests use Student's t on
:math:`\\nu` df. For a Cox model mice takes :math:`\\nu_{com}` = events minus coefficients
(``mice:::get.dfcom`` on a ``coxph``); :func:`pool_cox` does the same.

The full matrices :math:`\\bar U`, :math:`B` and :math:`T` are kept too (``mice::pool``
keeps only their diagonals), for predictions and Wald tests of several terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from toolkit.stats.cox import CoxFit

LAMBDA_FLOOR = 1e-4
"""The smallest lambda in the df formula (``mice:::barnard.rubin``)."""


@dataclass(frozen=True)
class PooledEstimate:
    """Rubin's rules over ``m`` fits; per coefficient unless named ``*_matrix``."""

    names: tuple[str, ...]
    m: int
    estimate: np.ndarray
    within: np.ndarray
    between: np.ndarray
    total: np.ndarray
    se: np.ndarray
    dfcom: float
    df: np.ndarray
    riv: np.ndarray
    lambda_: np.ndarray
    fmi: np.ndarray
    within_matrix: np.ndarray
    between_matrix: np.ndarray
    total_matrix: np.ndarray

    @property
    def statistic(self) -> np.ndarray:
        return self.estimate / self.se

    @property
    def p(self) -> np.ndarray:
        """Two-sided p-values on Student's t with the Barnard-Rubin df (``summary(pool)``)."""
        return 2 * stats.t.sf(np.abs(self.statistic), self.df)

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        """The table of ``summary(pool(fits), conf.int = TRUE)``, plus exp(coef)."""
        q = stats.t.ppf((1 + level) / 2, self.df)
        return pd.DataFrame(
            {
                "coef": self.estimate,
                "exp(coef)": np.exp(self.estimate),
                "se(coef)": self.se,
                "t": self.statistic,
                "df": self.df,
                "p": self.p,
                "lower": self.estimate - q * self.se,
                "upper": self.estimate + q * self.se,
                "fmi": self.fmi,
            },
            index=pd.Index(self.names, name="term"),
        )


def rubin(
    estimates: np.ndarray,
    variances: np.ndarray,
    *,
    names: Sequence[str] | None = None,
    dfcom: float = np.inf,
) -> PooledEstimate:
    """Pool ``estimates`` (m x p) with their covariance matrices ``variances`` (m x p x p).

    ``dfcom`` is the complete-data degrees of freedom (infinite: the large-sample df).
    """
    q = np.atleast_2d(np.asarray(estimates, dtype=float))
    u = np.asarray(variances, dtype=float).reshape(q.shape[0], q.shape[1], q.shape[1])
    m, p = q.shape
    if m < 2:
        raise ValueError(f"Rubin's rules need at least 2 imputations, got {m}")
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(u))):
        bad = [j + 1 for j in range(m) if not (np.isfinite(q[j]).all() and np.isfinite(u[j]).all())]
        raise ValueError(f"non-finite estimates or variances in imputations {bad}")
    if not dfcom > 0:
        raise ValueError(f"dfcom must be positive, got {dfcom}")
    names = tuple(names) if names is not None else tuple(f"x{k + 1}" for k in range(p))
    estimate = q.mean(axis=0)
    within_matrix = u.mean(axis=0)
    centred = q - estimate
    between_matrix = centred.T @ centred / (m - 1)
    total_matrix = within_matrix + (1 + 1 / m) * between_matrix
    within, between, total = (
        np.diag(a).copy() for a in (within_matrix, between_matrix, total_matrix)
    )
    df = barnard_rubin(m, between, total, dfcom)
    riv = (1 + 1 / m) * between / within
    return PooledEstimate(
        names=names,
        m=m,
        estimate=estimate,
        within=within,
        between=between,
        total=total,
        se=np.sqrt(total),
        dfcom=float(dfcom),
        df=df,
        riv=riv,
        lambda_=(1 + 1 / m) * between / total,
        fmi=(riv + 2 / (df + 3)) / (riv + 1),
        within_matrix=within_matrix,
        between_matrix=between_matrix,
        total_matrix=total_matrix,
    )


def barnard_rubin(m: int, between: np.ndarray, total: np.ndarray, dfcom: float) -> np.ndarray:
    """The Barnard-Rubin (1999) degrees of freedom (module docstring)."""
    lam = np.maximum((1 + 1 / m) * np.asarray(between) / np.asarray(total), LAMBDA_FLOOR)
    old = (m - 1) / lam**2
    if np.isinf(dfcom):
        return old
    observed = (dfcom + 1) / (dfcom + 3) * dfcom * (1 - lam)
    return old * observed / (old + observed)


def pool_cox(fits: Sequence[CoxFit]) -> PooledEstimate:
    """Rubin's rules over Cox fits of the same terms, dfcom = events - coefficients.

    The complete-data df is mice's for a ``coxph`` (``max(nevent - p, 1)`` of the
    first fit), so this equals ``pool(as.mira(fits))``.
    """
    if not fits:
        raise ValueError("no Cox fits to pool")
    names = fits[0].names
    differ = [j + 1 for j, f in enumerate(fits) if f.names != names]
    if differ:
        raise ValueError(f"the Cox fits of imputations {differ} have other terms than {names}")
    dfcom = max(fits[0].n_events - len(names), 1)
    return rubin(
        np.stack([f.coef for f in fits]),
        np.stack([f.variance for f in fits]),
        names=names,
        dfcom=dfcom,
    )


@dataclass(frozen=True, eq=False)
class PooledSurvival:
    """Predicted survival pooled over ``m`` imputations (:func:`pool_survival`).

    Every matrix is (rows, times). ``estimate``, ``within``, ``between``, ``total`` and
    ``df`` are Rubin's quantities on the log cumulative hazard scale; a cell whose
    cumulative hazard is 0 in every imputation (before the first event) has survival and
    limits 1 and NaN there.
    """

    times: np.ndarray
    m: int
    survival: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    estimate: np.ndarray
    within: np.ndarray
    between: np.ndarray
    total: np.ndarray
    df: np.ndarray
    conf_int: float


def pool_survival(curves: Sequence[Any], conf_int: float = 0.95) -> PooledSurvival:
    """Pool predicted survival curves of ``m`` imputations by Rubin's rules on log(-log S).

    ``curves`` are ``PredictedSurvival`` (``CoxFit.predict_survival_ci``) of the same rows
    and times, one per imputation. Each cell is pooled on :math:`Q = \\log H`, the log
    cumulative hazard, with within-imputation variance :math:`(\\mathrm{se}(H) / H)^2` (the
    delta method; ``std_err`` is survfit's standard error of H), as Marshall et al. (2009,
    BMC Med Res Methodol 9:57) advise for a quantity that is not normal on its own scale:
    pooled survival :math:`\\exp(-\\exp \\bar Q)` and limits
    :math:`\\exp(-\\exp(\\bar Q \\pm t_{\\nu} \\sqrt{T}))`, with the large-sample
    Barnard-Rubin df (:math:`\\nu_{com} = \\infty`). Per cell this equals
    ``mice::pool.scalar(Q, U)`` (its default ``n = Inf``). The pooled survival is not the
    mean of the imputations' survival; the limits are log-log limits, not survfit's
    default log limits of a single fit.
    """
    if len(curves) < 2:
        raise ValueError(f"pooling survival needs at least 2 imputations, got {len(curves)}")
    times = np.asarray(curves[0].times, dtype=float)
    shape = curves[0].survival.shape
    differ = [
        j + 1
        for j, c in enumerate(curves)
        if c.survival.shape != shape or not np.array_equal(c.times, times)
    ]
    if differ:
        raise ValueError(f"the curves of imputations {differ} have other rows or times")
    if not 0 < conf_int < 1:
        raise ValueError(f"conf_int must be in (0, 1), got {conf_int}")
    cumhaz = np.stack([np.asarray(c.cumulative_hazard, dtype=float) for c in curves])
    std_err = np.stack([np.asarray(c.std_err, dtype=float) for c in curves])
    started = np.all(cumhaz > 0, axis=0)
    never = np.all(cumhaz == 0, axis=0)
    mixed = ~(started | never)
    if mixed.any():
        rows, cols = np.nonzero(mixed)
        raise ValueError(
            "the cumulative hazard is 0 in some imputations and not in others at "
            f"row {rows[0]}, time {times[cols[0]]}"
        )
    m = len(curves)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(started, np.log(cumhaz), np.nan)
        u = np.where(started, (std_err / cumhaz) ** 2, np.nan)
    estimate = q.mean(axis=0)
    within = u.mean(axis=0)
    between = q.var(axis=0, ddof=1)
    total = within + (1 + 1 / m) * between
    with np.errstate(divide="ignore", invalid="ignore"):
        df = barnard_rubin(m, between, total, np.inf)
    half = stats.t.ppf((1 + conf_int) / 2, df) * np.sqrt(total)
    survival = np.where(started, np.exp(-np.exp(estimate)), 1.0)
    lower = np.where(started, np.exp(-np.exp(estimate + half)), 1.0)
    upper = np.where(started, np.exp(-np.exp(estimate - half)), 1.0)
    return PooledSurvival(
        times=times,
        m=m,
        survival=survival,
        lower=lower,
        upper=upper,
        estimate=estimate,
        within=within,
        between=between,
        total=total,
        df=np.where(started, df, np.nan),
        conf_int=float(conf_int),
    )
