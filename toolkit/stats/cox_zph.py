"""Test of proportional hazards, equal to ``cox.zph`` of survival 3.5-3 (the score test).

For each term of a fitted Cox model, the score test of adding
:math:`\\gamma\\, g(t)\\, x` to it (Grambsch and Therneau's test of a time-varying
coefficient), at :math:`(\\hat\\beta, \\gamma = 0)`: with :math:`g` the transformed
event time centred on its mean over the events,

.. math::

    U_\\gamma = \\sum_{\\text{events}} g(t_i)\\,(w_i x_i - \\tfrac{W_k}{m_k}\\bar x_{kj}),
    \\qquad
    \\mathcal I = \\sum_{k,j} \\tfrac{W_k}{m_k}
        \\begin{pmatrix} V_{kj} & g_k V_{kj} \\\\ g_k V_{kj} & g_k^2 V_{kj} \\end{pmatrix},

the sums over the Efron (or Breslow) sub-steps j of each event time k, with
:math:`\\bar x_{kj}` and :math:`V_{kj}` the weighted mean and covariance of x over
the sub-step's risk set (zph1's arithmetic). The statistic of a term with columns
J is :math:`u^\\top \\mathcal I_{KK}^{-1} u` with :math:`K` the p columns of
:math:`\\beta` and the columns J of :math:`\\gamma`, :math:`u = (0, U_{\\gamma,J})`, on
:math:`|J|` df; GLOBAL uses every column, on p df. This is the form introduced in
survival 3.0, not the older correlation test of scaled Schoenfeld residuals
against time.

``transform`` is g: "km" (one minus the unweighted Kaplan-Meier curve of all
rows just before t), "rank" (the rank of t among all rows' times, ties averaged),
"identity" or "log". ``residuals`` are cox.zph's ``y``: the Schoenfeld residuals
scaled by the inverse of the average information, plus the coefficient (plus 1
for a term of several columns, after combining them with the coefficients),
``x`` the transformed event times; R plots them (``plot.cox.zph``) to show
:math:`\\beta(t)`. One deliberate difference: R assigns the events to strata by
counting, which misplaces them when every covariate is constant in a stratum;
here each event keeps its own stratum (the same in every other case).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from toolkit.stats import cox
from toolkit.stats._km import km_at
from toolkit.stats.cox_residuals import row_strata

Transform = Literal["km", "rank", "identity", "log"]


@dataclass(frozen=True, eq=False)
class Zph:
    """``cox.zph(fit, transform)``: the test table and the scaled Schoenfeld residuals.

    ``table`` has columns ``chisq``, ``df``, ``p``, one row per term and a last row
    ``GLOBAL`` (R's ``$table``). ``residuals`` (events x terms, R's ``$y``) belong
    to the events at ``time`` (R's ``$time``), in stratum-then-time order, at
    transformed times ``x``; ``strata`` labels them (None without strata).
    ``variance`` is R's ``$var``.
    """

    table: pd.DataFrame
    transform: str
    terms: tuple[str, ...]
    x: np.ndarray
    time: np.ndarray
    strata: np.ndarray | None
    residuals: np.ndarray
    variance: np.ndarray


def zph(
    fit: cox.CoxFit,
    transform: Transform = "km",
    *,
    terms: Mapping[str, Sequence[str]] | None = None,
) -> Zph:
    """The proportional-hazards score test of each term and GLOBAL, as ``cox.zph``.

    Parameters
    ----------
    fit
        A ``cox.fit`` result (it holds its data).
    transform
        The time scale g (module docstring): "km" (R's default), "rank",
        "identity" or "log".
    terms
        Term name -> its covariates (the dummy columns of a categorical
        variable form one term, tested on their df as R tests a factor); None
        makes every covariate its own term. Every covariate belongs to exactly one.
        A fit with ``entry=`` or ``offset=`` is refused (``fit.require_plain``).
    """
    fit.require_plain("the proportional-hazards test (zph)")
    if transform not in ("km", "rank", "identity", "log"):
        raise ValueError(f"transform must be 'km', 'rank', 'identity' or 'log', got {transform!r}")
    groups = _terms(fit.names, terms)
    risk = fit.risk_sets
    stratum, labels = row_strata(fit)
    scale = _transformed(risk.time, risk.event, transform)
    g = scale - scale[risk.event == 1].mean()
    moments = cox.event_moments(risk, fit.coef)
    score, information = _score_and_information(risk, moments, g[risk.death_rows])
    p = len(fit.coef)
    rows = []
    for columns in [*groups.values(), list(range(p))]:
        keep = np.r_[np.arange(p), p + np.asarray(columns)]
        u = np.r_[np.zeros(p), score[columns]]
        statistic = float(u @ np.linalg.solve(information[np.ix_(keep, keep)], u))
        rows.append((statistic, len(columns), float(stats.chi2.sf(statistic, len(columns)))))
    table = pd.DataFrame(rows, columns=["chisq", "df", "p"], index=[*groups, "GLOBAL"])
    scaled, variance = _scaled_residuals(fit, moments, stratum, information[:p, :p], groups)
    dead = risk.death_rows
    return Zph(
        table=table,
        transform=transform,
        terms=tuple(groups),
        x=scale[dead],
        time=risk.time[dead],
        strata=None if labels is None else labels[dead],
        residuals=scaled,
        variance=variance,
    )


def _terms(names: tuple[str, ...], terms: Mapping[str, Sequence[str]] | None) -> dict:
    """Term name -> column indices, every covariate in exactly one term."""
    if terms is None:
        return {name: [j] for j, name in enumerate(names)}
    index = {name: j for j, name in enumerate(names)}
    unknown = sorted({c for cols in terms.values() for c in cols} - set(index))
    if unknown:
        raise ValueError(f"terms name covariates the fit does not have: {unknown}")
    listed = [c for cols in terms.values() for c in cols]
    twice = sorted({c for c in listed if listed.count(c) > 1})
    missing = [n for n in names if n not in listed]
    if twice or missing or any(len(cols) == 0 for cols in terms.values()):
        raise ValueError(
            "every covariate must belong to exactly one non-empty term: "
            f"in several {twice}, in none {missing}"
        )
    return {str(term): [index[c] for c in cols] for term, cols in terms.items()}


def _transformed(time: np.ndarray, event: np.ndarray, transform: str) -> np.ndarray:
    """g(t) of every row before centring (cox.zph's ``ttimes``)."""
    if transform == "identity":
        return time.astype(float)
    if transform == "log":
        return np.log(time)
    if transform == "rank":
        return stats.rankdata(time)
    distinct = np.unique(time)  # "km"
    before = np.r_[1.0, km_at(time, event, distinct)]
    return 1 - before[np.searchsorted(distinct, time, side="left")]


def _score_and_information(
    risk: cox.RiskSets, moments: cox.EventMoments, g: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:math:`U_\\gamma` (p) and the 2p x 2p information of :math:`(\\beta, \\gamma)`.

    ``g`` is the centred time scale of each event row; ``moments`` the fit's
    ``cox.event_moments`` at its coefficients.
    """
    x, f = risk.x, risk.efron_fraction
    we = risk.weight * moments.risk_score
    outer = x[:, :, None] * x[:, None, :]
    s2 = cox.range_sums(we[:, None, None] * outer, risk.group_first, risk.group_end)
    d2 = np.add.reduceat(we[risk.death_rows, None, None] * outer[risk.death_rows],
                         risk.group_start, axis=0)  # fmt: skip
    second = (s2[risk.group] - f[:, None, None] * d2[risk.group]) / moments.denom[:, None, None]
    mean = moments.mean
    covariance = second - mean[:, :, None] * mean[:, None, :]
    meanwt = (risk.group_weight / risk.group_size)[risk.group]
    score = g @ (risk.weight_dead[:, None] * risk.x_dead - meanwt[:, None] * mean)
    blocks = [np.einsum("e,eij->ij", meanwt * g**k, covariance) for k in range(3)]
    information = np.block([[blocks[0], blocks[1]], [blocks[1], blocks[2]]])
    return score, information


def _used(risk: cox.RiskSets, stratum: np.ndarray, groups: dict) -> np.ndarray:
    """Strata x covariates: the stratum's events where the covariate varies in it, else 0."""
    n_strata = int(stratum.max()) + 1
    used = np.zeros((n_strata, risk.x.shape[1]))
    for s in range(n_strata):
        here = stratum == s
        varies = np.any(risk.x[here] != risk.x[here][0], axis=0)
        used[s] = np.where(varies, risk.event[here].sum(), 0.0)
    for columns in groups.values():
        if len(columns) > 1:
            used[:, columns] = used[:, columns].max(axis=1, keepdims=True)
    return used


def _scaled_residuals(fit: cox.CoxFit, moments, stratum: np.ndarray, information, groups):
    """cox.zph's ``y`` and ``var``: Schoenfeld residuals over the average information."""
    risk = fit.risk_sets
    schoenfeld = risk.x_dead - moments.time_mean[risk.group]
    used = _used(risk, stratum, groups)
    counts = sum(np.minimum.outer(row, row) for row in used)
    average = information / np.where(counts == 0, 1, counts)
    combine = np.zeros((len(fit.coef), len(groups)))
    for i, columns in enumerate(groups.values()):
        combine[columns, i] = 1.0 if len(columns) == 1 else fit.coef[columns]
    scaled = schoenfeld @ combine
    average = combine.T @ average @ combine
    used = used[:, [columns[0] for columns in groups.values()]]
    # R assigns the events to strata by counts (rep(strata, max used)), which shifts them
    # when every covariate is constant in some stratum; each event's own stratum is meant
    stratum_of_event = stratum[risk.death_rows]
    for s, row in enumerate(used):
        k = np.flatnonzero(row > 0)
        if len(k) == 0:
            continue
        j = stratum_of_event == s
        block = scaled[np.ix_(j, k)]
        scaled[np.ix_(j, k)] = np.linalg.solve(average[np.ix_(k, k)], block.T).T
        scaled[np.ix_(j, np.setdiff1d(np.arange(len(groups)), k))] = np.nan
    shift = [fit.coef[c[0]] if len(c) == 1 else 1.0 for c in groups.values()]
    return scaled + np.asarray(shift), np.linalg.inv(average)
