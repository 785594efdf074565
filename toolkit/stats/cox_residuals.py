"""Residuals and global tests of a fitted Cox model, equal to survival 3.5-3.

``residuals`` is ``residuals.coxph`` (types "martingale", "deviance", "score",
"schoenfeld", "scaledsch", "dfbeta", "dfbetas"), ``global_tests`` the likelihood
ratio, Wald and score (log-rank) tests of ``summary(coxph)``. Both read the data
from the fit (``CoxFit.risk_sets``, in the order ``CoxFit.order`` undoes), as R
reads them from the coxph object.

With event indicator :math:`d_i`, risk score :math:`r_i = e^{\\eta_i}` and the
Efron (or Breslow, :math:`f_j = 0`) sub-steps j of event time k, with mean
:math:`\\bar x_{kj}` and hazard increment :math:`c_{kj} = (W_k/m_k)/(S_0 - f_j D_0)`
of ``cox.event_moments``:

- martingale :math:`M_i = d_i - r_i \\sum_{k: t_k \\le t_i} \\sum_j \\phi_{ikj} c_{kj}`,
  :math:`\\phi = 1 - f_j` for the events tied at :math:`t_k`, 1 otherwise (coxmart);
- deviance :math:`\\operatorname{sign}(M_i)\\sqrt{-2\\,(M_i + d_i \\log(d_i - M_i))}`;
- score :math:`U_i` of ``cox.score_residuals`` (coxscore2);
- Schoenfeld, one row per event: :math:`x_i - \\bar x_k`, :math:`\\bar x_k` the average
  of the :math:`\\bar x_{kj}` (coxscho); scaled: :math:`d\\,(x_i - \\bar x_k) V + \\hat\\beta`
  with d the number of events and V the model-based variance;
- dfbeta :math:`U_i V`, dfbetas :math:`U_i V \\operatorname{diag}(V)^{-1/2}`.

Case weights enter every risk-set sum, as in the fit; ``weighted=True`` further
multiplies each residual by its row's weight (R's ``weighted=``, default True
for dfbeta and dfbetas only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from toolkit.stats import cox

ResidualType = Literal[
    "martingale", "deviance", "score", "schoenfeld", "scaledsch", "dfbeta", "dfbetas"
]
_TYPES = ("martingale", "deviance", "score", "schoenfeld", "scaledsch", "dfbeta", "dfbetas")
_PER_EVENT = ("schoenfeld", "scaledsch")


@dataclass(frozen=True, eq=False)
class CoxResiduals:
    """Residuals of one type (``residuals``' result).

    ``values`` has one entry per row for "martingale" and "deviance", one row per
    data row and a column per covariate for "score", "dfbeta" and "dfbetas" (both
    in the input's row order), and one row per event for "schoenfeld" and
    "scaledsch", sorted by stratum then time (R's order; R drops the matrix to a
    vector for a one-covariate model, we keep the column). ``rows`` is the input
    row of each value, ``time`` its time and ``strata`` its stratum label (None
    for an unstratified fit).
    """

    type: str
    values: np.ndarray
    rows: np.ndarray
    time: np.ndarray
    strata: np.ndarray | None
    names: tuple[str, ...]
    weighted: bool

    def to_frame(self) -> pd.DataFrame:
        """The values as a table, with ``row``, ``time`` (and ``strata``) columns first."""
        frame = pd.DataFrame({"row": self.rows, "time": self.time})
        if self.strata is not None:
            frame["strata"] = self.strata
        if self.values.ndim == 1:
            frame[self.type] = self.values
        else:
            for j, name in enumerate(self.names):
                frame[name] = self.values[:, j]
        return frame


@dataclass(frozen=True)
class ChiSquareTest:
    """A chi-square test: ``statistic`` on ``df`` degrees of freedom, its upper-tail ``p``."""

    statistic: float
    df: int
    p: float


def _chi_square(statistic: float, df: int) -> ChiSquareTest:
    return ChiSquareTest(float(statistic), int(df), float(stats.chi2.sf(statistic, df)))


@dataclass(frozen=True)
class GlobalTests:
    """The global tests of ``summary(coxph)`` (``global_tests``' result).

    ``likelihood_ratio`` is ``$logtest``, ``wald`` ``$waldtest`` (its statistic
    unrounded: summary rounds it to two decimals, ``fit$wald.test`` does not),
    ``score`` ``$sctest`` and ``robust_score`` ``$robscore`` (only for a fit with
    the robust variance; otherwise None).
    """

    likelihood_ratio: ChiSquareTest
    wald: ChiSquareTest
    score: ChiSquareTest
    robust_score: ChiSquareTest | None


def row_strata(fit: cox.CoxFit) -> tuple[np.ndarray, np.ndarray | None]:
    """Per sorted row of ``fit.risk_sets``: its stratum's code and label (None unstratified)."""
    end = fit.risk_sets.stratum_end
    codes = np.searchsorted(np.unique(end), end)
    if not fit.stratified:
        return codes, None
    levels = fit.baseline_cumulative_hazard["strata"].cat.categories
    return codes, np.asarray([str(v) for v in levels])[codes]


def residuals(
    fit: cox.CoxFit, type: ResidualType = "martingale", *, weighted: bool | None = None
) -> CoxResiduals:
    """Residuals of a Cox fit, as ``residuals(fit, type=, weighted=)`` of survival 3.5-3.

    Parameters
    ----------
    fit
        The ``cox.fit`` result (it holds its data).
    type
        One of "martingale", "deviance", "score", "schoenfeld", "scaledsch",
        "dfbeta", "dfbetas" (the module docstring gives each formula).
    weighted
        Multiply each residual by its case weight; None is R's default (True for
        "dfbeta" and "dfbetas", else False). For weighted Schoenfeld residuals
        each event's own weight is used; survival 3.5-3 takes ``weights[deaths]``
        with the event flags of the time-sorted rows against the weights in input
        order, so it agrees with this only when the input is already sorted.
        Weighted "deviance" residuals are refused (R computes them from the
        weighted martingale residuals, NaN where those reach 1).

    For a ``ties="exact"`` fit only "martingale" and "deviance" are given (from
    Breslow's hazard at the exact coefficients, as coxph's coxmart2); the others
    are refused, as R refuses them.

    Returns
    -------
    CoxResiduals. The variance in "scaledsch", "dfbeta" and "dfbetas" is the
    model-based one (``fit.naive_variance``, R's ``naive.var``) also for a robust fit.
    """
    if type not in _TYPES:
        raise ValueError(f"type must be one of {list(_TYPES)}, got {type!r}")
    if fit.ties == "exact" and type not in ("martingale", "deviance"):
        raise ValueError(
            f"{type} residuals are not available for ties='exact' (nor in R's coxph): "
            "the exact likelihood has no per-row score decomposition"
        )
    weighted = type in ("dfbeta", "dfbetas") if weighted is None else bool(weighted)
    if weighted and type == "deviance":
        raise ValueError(
            "weighted deviance residuals are not defined: R's weighted=TRUE puts w_i M_i "
            "into the deviance formula, which is NaN once w_i M_i >= 1"
        )
    if type in _PER_EVENT:
        return _schoenfeld(fit, type, weighted)
    values = _per_row(fit, type, weighted)
    order = fit.order
    unsorted = np.empty_like(values)
    unsorted[order] = values
    times = np.empty(len(order))
    times[order] = fit.risk_sets.time
    labels = row_strata(fit)[1]
    if labels is not None:
        labels = labels[np.argsort(order)]
    return CoxResiduals(type, unsorted, np.arange(len(order)), times, labels, fit.names, weighted)


def _per_row(fit: cox.CoxFit, type: str, weighted: bool) -> np.ndarray:
    """Martingale, deviance, score, dfbeta or dfbetas residuals of the sorted rows."""
    risk = fit.risk_sets
    if type in ("martingale", "deviance"):
        values = risk.event - _expected(risk, fit.coef)
    else:
        values = cox.score_residuals(risk, fit.coef)
        v = fit.naive_variance
        if type == "dfbeta":
            values = values @ v
        elif type == "dfbetas":
            values = (values @ v) / np.sqrt(np.diag(v))
    if weighted:
        values = values * (risk.weight if values.ndim == 1 else risk.weight[:, None])
    if type == "deviance":
        status = risk.event
        with np.errstate(divide="ignore"):  # log(0) at censored rows, not used
            log_term = np.where(status == 0, 0.0, status * np.log(status - values))
        values = np.sign(values) * np.sqrt(-2 * (values + log_term))
    return values


def _expected(risk: cox.RiskSets, beta: np.ndarray) -> np.ndarray:
    """Each sorted row's expected number of events :math:`r_i \\hat H(t_i)` (coxmart).

    A row censored at, or at risk beyond, event time k takes the whole increment
    :math:`\\sum_j c_{kj}`; an event tied at k takes :math:`\\sum_j (1 - f_j) c_{kj}`.
    """
    moments = cox.event_moments(risk, beta)
    g = len(risk.group_size)
    c = (risk.group_weight / risk.group_size)[risk.group] / moments.denom  # scaled by e^shift
    increment = np.bincount(risk.group, weights=c, minlength=g)
    own = np.bincount(risk.group, weights=c * (1 - risk.efron_fraction), minlength=g)
    hazard = cox.covering(risk, increment)  # per row: the increments of the risk sets holding it
    dead = risk.death_rows
    hazard[dead] += own[risk.group] - increment[risk.group]
    return moments.risk_score * hazard


def _schoenfeld(fit: cox.CoxFit, type: str, weighted: bool) -> CoxResiduals:
    risk = fit.risk_sets
    moments = cox.event_moments(risk, fit.coef)
    values = risk.x_dead - moments.time_mean[risk.group]
    if weighted:
        values = values * risk.weight_dead[:, None]
    if type == "scaledsch":
        values = len(risk.death_rows) * values @ fit.naive_variance + fit.coef
    dead = risk.death_rows
    labels = row_strata(fit)[1]
    labels = None if labels is None else labels[dead]
    return CoxResiduals(type, values, fit.order[dead], risk.time[dead], labels, fit.names, weighted)


def global_tests(fit: cox.CoxFit) -> GlobalTests:
    """The likelihood-ratio, Wald and score tests of ``summary(coxph)`` (survival 3.5-3).

    On p = number of coefficients degrees of freedom:
    likelihood ratio :math:`2(\\ell(\\hat\\beta) - \\ell(0))`; Wald
    :math:`\\hat\\beta^\\top V^{-1} \\hat\\beta` with the fit's variance (the robust one
    for a robust fit, as coxph); score :math:`U(0)^\\top I(0)^{-1} U(0)`, the score
    and information at :math:`\\beta = 0` (coxfit6's ``sctest``; with one binary
    covariate and no ties it is the log-rank test), so it is the same at
    ``max_iter=0``. For a robust fit also the robust score test
    :math:`u^\\top (D^\\top D)^{-1} u`, D the weighted score residuals at 0 and u
    their column sums (``fit$rscore``), summed within cluster for a fit with
    ``cluster=`` (R's ``collapse = cluster``).
    """
    risk, p = fit.risk_sets, len(fit.coef)
    zero = np.zeros(p)
    _, score, information = cox.partial_likelihood(risk, zero)
    robust_score = None
    if fit.robust:
        d = cox.collapse(cox.score_residuals(risk, zero) * risk.weight[:, None], fit.cluster)
        u = d.sum(axis=0)
        robust_score = _chi_square(u @ np.linalg.solve(d.T @ d, u), p)
    return GlobalTests(
        likelihood_ratio=_chi_square(2 * (fit.loglik - fit.loglik_null), p),
        wald=_chi_square(fit.coef @ np.linalg.solve(fit.variance, fit.coef), p),
        score=_chi_square(score @ np.linalg.solve(information, score), p),
        robust_score=robust_score,
    )
