"""Cox proportional-hazards regression, equal to ``survival::coxph`` (survival 3.5-3).

The partial log-likelihood with case weights :math:`w_i`, linear predictor
:math:`\\eta_i = x_i^\\top\\beta` and, at each distinct event time :math:`t_k` of
a stratum, :math:`m_k` events of total weight :math:`W_k`, risk-set sums
:math:`S_0 = \\sum_{R_k} w_i e^{\\eta_i}` and event sums :math:`D_0 = \\sum_{\\text{events}}
w_i e^{\\eta_i}`, is (Efron)

.. math::

    \\ell(\\beta) = \\sum_{\\text{events}} w_i\\eta_i
        - \\sum_k \\sum_{j=0}^{m_k-1} \\frac{W_k}{m_k} \\log\\big(S_0 - \\tfrac{j}{m_k} D_0\\big)

and, with Breslow's approximation, :math:`\\sum_k W_k \\log S_0`. This is exactly
``coxfit6``'s likelihood. It is maximised by Newton-Raphson with step halving,
exactly as ``coxph`` iterates in survival 3.5-3 (same start, steps, halving and
stopping rule: relative log-likelihood change <= 1e-9, at most 20 iterations; a
step to a lower or non-finite log-likelihood pulled back towards the best point,
harder on each consecutive failure; convergence accepted in the midst of
halving; ``max_iter = 0`` gives the fit at the start), so that both stop at the
same point and agree to rounding error (see ``newton``).

A covariate that separates events perfectly has no finite maximum (monotone
likelihood); ``coxph`` warns "Loglik converged before variable ...; coefficient
may be infinite". We apply R's rule (the last Newton step is still larger than
``sqrt(1e-9) * |coef|``), emit a ``RuntimeWarning`` naming the covariates and
return ``converged=False``; running out of iterations warns as ``coxph`` does.

Beside this, as coxph: ``cluster=`` (the robust variance of the dfbeta residuals
summed within cluster), ``offset=``, counting-process data ``(start, stop]`` through
``entry=`` (risk set of t: start < t <= stop) with ``id=``, and ``ties="exact"`` (the
exact partial likelihood of tied events, ``toolkit.stats._coxexact``, iterated as
coxexact.c; see ``newton_exact``).

Deliberate differences from R: rows with missing values raise a ``ValueError``
naming them instead of being dropped by ``na.omit``. The variance follows
``coxph``: model-based, except with non-integer case weights (or ``robust=True``),
where it is the robust sandwich :math:`D^\\top D` of the weighted dfbeta residuals.
When the iterations run out, ``variance`` is the inverse information at the
returned coefficients; R's ``fit$var`` there is not (coxfit6 inverts the
recomputed information without factoring it first, and returns a diagonal
matrix), so compare it with ``coxph(init = coef, iter.max = 0)$var`` instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from toolkit.stats import _coxexact, _coxinput
from toolkit.stats._blas import one_blas_thread
from toolkit.stats._checks import check_survival, listed
from toolkit.stats._coxsurv import (
    ConfType,
    PredictedSurvival,
    check_level,
    check_rows,
    check_times,
    predicted_survival,
    stratum_index,
)
from toolkit.stats._rows import row_products
from toolkit.stats.wald import quantile

Ties = Literal["efron", "breslow", "exact"]

_MAX_ITER = 20  # coxph.control()$iter.max
_EPS = 1e-9  # coxph.control()$eps


@dataclass(frozen=True, eq=False)
class CoxFit:
    """A fitted Cox model (what ``coxph`` returns, plus the baseline hazard).

    ``baseline_cumulative_hazard`` is ``basehaz(fit, centered=FALSE)``: columns
    ``time``, ``hazard`` (and ``strata`` for a stratified fit), at every distinct
    observed time of each stratum, for a subject whose covariates are all zero.
    ``means`` are the (weighted) column means that ``coxph`` centres on.
    ``risk_sets`` are the fit's data (centred, sorted), which the uncertainty of
    predicted survival needs (``predict_survival_ci``), as survfit reads coxph's;
    sorted row k is input row ``order[k]`` (residuals are given in input order).
    With offsets the baseline is at covariates zero and the mean offset (R's basehaz).
    ``cluster`` holds each sorted row's cluster code for a fit with ``cluster=``
    (None otherwise); ``se`` is then the robust se and ``naive_se`` R's se(coef).
    """

    coef: np.ndarray
    se: np.ndarray
    z: np.ndarray
    p: np.ndarray
    variance: np.ndarray
    naive_variance: np.ndarray
    robust: bool
    loglik: float
    loglik_null: float
    aic: float
    n: int
    n_events: int
    converged: bool
    iterations: int
    names: tuple[str, ...]
    means: np.ndarray
    ties: str
    risk_sets: RiskSets = field(repr=False)
    order: np.ndarray = field(repr=False)
    cluster: np.ndarray | None = field(default=None, repr=False)
    baseline_centre: float = field(default=0.0, repr=False)
    """The linear predictor of the baseline subject (``basehaz``'s centring, :func:`_centre`)."""
    strata_levels: np.ndarray | None = field(default=None, repr=False)

    @cached_property
    def baseline_cumulative_hazard(self) -> pd.DataFrame:
        """``basehaz(fit, centered=FALSE)`` (see the class docstring), computed when first
        read: the univariate screens and stepwise steps fit many models that never need it."""
        return _baseline(self.risk_sets, self.coef, self.baseline_centre, self.strata_levels)

    @property
    def stratified(self) -> bool:
        return self.strata_levels is not None

    def require_plain(self, what: str) -> None:
        """Refuse `what` for a fit with (start, stop] data or offsets, which it does not
        cover yet (its risk-set sums assume right-censored rows without offsets)."""
        risk = self.risk_sets
        given = [n for n, v in (("entry=", risk.entry), ("offset=", risk.offset)) if v is not None]
        if given:
            raise ValueError(f"{what} is not available for a fit with {' and '.join(given)}")

    @property
    def naive_se(self) -> np.ndarray:
        """Model-based standard errors (``se(coef)`` of a robust coxph's summary)."""
        return np.sqrt(np.diag(self.naive_variance))

    def predict_linear(self, X: Any) -> np.ndarray:
        """Linear predictor :math:`x^\\top\\beta` (uncentred; R's ``predict(type="lp")``
        subtracts ``sum(means * coef)``)."""
        x, _ = _design(X, self.names)
        return row_products(x, self.coef)

    def predict_survival(self, X: Any, times: Any, strata: Any = None) -> np.ndarray:
        """Survival curves :math:`S(t|x) = \\exp(-H_0(t) e^{x^\\top\\beta})`, shape (rows, times).

        Equal to ``summary(survfit(fit, newdata), times)``: survfit.coxph's default
        (``stype=2``, and ``ctype`` matching the ties: Efron's hazard increments for
        ``ties="efron"``, Breslow's for ``"breslow"``). ``H_0`` is a right-continuous
        step function; times before the first event give 1, after the last observed
        time the last value. ``strata`` (one label per row) is required for a
        stratified fit. ``predict_survival_ci`` adds the standard errors and limits.
        """
        lp = self.predict_linear(X)
        t = np.atleast_1d(np.asarray(times, dtype=float))
        base = self.baseline_cumulative_hazard
        if not self.stratified:
            cumhaz = _step(base["time"].to_numpy(), base["hazard"].to_numpy(), t)
            return np.exp(-np.outer(np.exp(lp), cumhaz))
        if strata is None:
            raise ValueError("this fit is stratified: pass strata (one label per row)")
        labels = np.asarray(strata).astype(str)
        if len(labels) != len(lp):
            raise ValueError(f"strata has {len(labels)} labels for {len(lp)} rows")
        out = np.empty((len(lp), len(t)))
        for level, rows in base.groupby("strata", observed=True):
            here = labels == str(level)
            cumhaz = _step(rows["time"].to_numpy(), rows["hazard"].to_numpy(), t)
            out[here] = np.exp(-np.outer(np.exp(lp[here]), cumhaz))
        unknown = ~np.isin(labels, base["strata"].astype(str).unique())
        if unknown.any():
            raise ValueError(f"unknown strata {sorted(set(labels[unknown]))}")
        return out

    def predict_survival_ci(
        self,
        X: Any,
        times: Any,
        strata: Any = None,
        conf_type: ConfType = "log",
        conf_int: float = 0.95,
    ) -> PredictedSurvival:
        """``predict_survival`` with its standard error and confidence limits.

        ``summary(survfit(fit, newdata, conf.type=, conf.int=), times, extend = TRUE)``
        of survival 3.5-3 (see ``toolkit.stats._coxsurv`` for the variance, with the
        coefficients' variance term and Efron's correction). ``conf_type`` is
        ``"log"`` (R's default), ``"log-log"`` or ``"plain"``; ``times`` are any
        times >= 0; ``strata`` as for ``predict_survival``. A row with a missing
        covariate, a negative or missing time, or an unknown ``conf_type`` raises a
        ``ValueError`` naming it. A fit with ``entry=`` or ``offset=`` is refused.
        """
        self.require_plain("predict_survival_ci")
        check_level(conf_type, conf_int)
        t = check_times(times)
        x, _ = _design(X, self.names)
        check_rows(x, X.index if isinstance(X, pd.DataFrame) else None)
        stratum = stratum_index(self.baseline_cumulative_hazard, strata, len(x))
        return predicted_survival(self, x, t, stratum, conf_type, conf_int)

    def hazard_ratio(self, level: float = 0.95) -> pd.DataFrame:
        """Hazard ratios with Wald confidence intervals (``summary(fit)$conf.int``)."""
        return hazard_ratios(self.coef, self.se, self.names, level)

    def summary(self) -> pd.DataFrame:
        """The coefficient table of ``print(coxph)``: coef, exp(coef), se(coef), z, p."""
        return pd.DataFrame(
            {
                "coef": self.coef,
                "exp(coef)": np.exp(self.coef),
                "se(coef)": self.se,
                "z": self.z,
                "p": self.p,
            },
            index=pd.Index(self.names, name="covariate"),
        )


def hazard_ratios(
    coef: np.ndarray, se: np.ndarray, names: Sequence[str], level: float = 0.95
) -> pd.DataFrame:
    """:math:`e^{\\beta}` and its Wald interval :math:`e^{\\beta \\mp z_{(1+level)/2}\\,se}`.

    ``summary(coxph)$conf.int``'s columns ``exp(coef)``, ``lower .95``, ``upper .95``
    as ``hazard_ratio``, ``lower``, ``upper``, indexed by covariate; an infinite
    coefficient gives an infinite ratio.
    """
    coef, se, q = np.asarray(coef, dtype=float), np.asarray(se, dtype=float), quantile(level)
    with np.errstate(over="ignore"):
        return pd.DataFrame(
            {
                "hazard_ratio": np.exp(coef),
                "lower": np.exp(coef - q * se),
                "upper": np.exp(coef + q * se),
            },
            index=pd.Index(list(names), name="covariate"),
        )


def _step(knots: np.ndarray, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    i = np.searchsorted(knots, t, side="right") - 1
    return np.where(i >= 0, values[np.maximum(i, 0)], 0.0)


def _design(X: Any, names: Sequence[str] | None) -> tuple[np.ndarray, tuple[str, ...]]:
    if isinstance(X, pd.DataFrame):
        bad = [str(c) for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
        if bad:
            raise ValueError(f"covariates must be numeric (dummy-code them first): {bad}")
        cols = tuple(str(c) for c in X.columns)
        if names is not None and tuple(names) != cols:
            raise ValueError(f"columns {list(cols)} differ from the model's {list(names)}")
        return X.to_numpy(dtype=float), cols
    x = np.asarray(X, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"X must be 2-D (rows x covariates), got shape {x.shape}")
    if names is None:
        names = tuple(f"x{i + 1}" for i in range(x.shape[1]))
    if len(names) != x.shape[1]:
        raise ValueError(f"X has {x.shape[1]} columns for {len(names)} names")
    return x, tuple(str(n) for n in names)


@dataclass(frozen=True)
class RiskSets:
    """Data sorted by stratum then time, with the event-time bookkeeping."""

    x: np.ndarray  # centred covariates, sorted
    time: np.ndarray
    event: np.ndarray
    weight: np.ndarray
    first: np.ndarray  # per row: index of the first row of its risk set (same stratum, time >= t)
    stratum_end: np.ndarray  # per row: one past the last row of its stratum
    death_rows: np.ndarray  # rows with an event, sorted
    group: np.ndarray  # per event row: index of its distinct event time
    group_first: np.ndarray  # per distinct event time: first row of its risk set
    group_end: np.ndarray  # per distinct event time: end of its stratum
    efron_fraction: np.ndarray  # per event row: j / m_k (0 for Breslow)
    group_size: np.ndarray  # m_k per distinct event time
    group_weight: np.ndarray  # W_k per distinct event time
    group_start: np.ndarray  # per distinct event time: its first position in death_rows
    x_dead: np.ndarray  # covariates of the event rows
    weight_dead: np.ndarray  # case weights of the event rows
    offset: np.ndarray | None = None  # per row: the offset (coxph's offset()), sorted
    entry: Entry | None = None  # (start, stop] data: who has not yet entered each risk set
    exact_ties: bool = False  # ties="exact": tied event times take the exact likelihood


@dataclass(frozen=True)
class Entry:
    """(start, stop] bookkeeping: rows whose start is at or after an event time are
    not in its risk set (``RiskSets.entry``; see ``at_risk_sums`` and ``covering``)."""

    start: np.ndarray  # per sorted row: its start time
    late_order: np.ndarray  # the sorted rows ordered by stratum, then start time
    group_late: np.ndarray  # per event time: first late_order position with start >= t_k
    first_group: np.ndarray  # per sorted row: first event time of its stratum
    entered_group: np.ndarray  # per sorted row: one past the last event time <= its start


def _rank(keys: tuple[np.ndarray, np.ndarray], query: tuple[np.ndarray, np.ndarray], right: bool):
    """Per query (stratum, value): how many of the sorted keys come before it in
    (stratum, value) order; with ``right``, keys equal to the query count too."""
    m = len(keys[0])
    stratum, value = np.r_[keys[0], query[0]], np.r_[keys[1], query[1]]
    is_query = np.r_[np.zeros(m), np.ones(len(query[0]))]
    merged = np.lexsort((is_query if right else 1 - is_query, value, stratum))
    before = np.cumsum(merged < m)
    out = np.empty(len(query[0]), dtype=np.int64)
    queries = merged >= m
    out[merged[queries] - m] = before[queries]
    return out


def _entry(start: np.ndarray, strata: np.ndarray, group_time: np.ndarray, group_stratum) -> Entry:
    """The Entry of sorted rows (start times, stratum codes) and the event times."""
    late = np.lexsort((start, strata))
    group_late = _rank((strata[late], start[late]), (group_stratum, group_time), right=False)
    groups = (group_stratum, group_time)
    first = _rank(groups, (strata, np.full(len(start), -np.inf)), right=False)
    entered = _rank(groups, (strata, start), right=True)
    return Entry(start, late, group_late, first, entered)


def risk_sets(
    x, time, event, weight, strata_codes, ties: str, entry=None, offset=None
) -> tuple[RiskSets, np.ndarray]:
    """The risk sets of (already centred, checked) data, and the order that sorted it.

    Rows are sorted by stratum, then time, events before censorings at a tie
    (coxfit6's order); ``ties`` sets Efron's fractions ``j / m_k`` or Breslow's 0.
    With ``entry`` (start times of (start, stop] data; ``time`` is then the stop)
    a row is in the risk set of event time t when start < t <= stop; ``offset``
    adds a fixed term to each row's linear predictor.
    """
    order = np.lexsort((-event, time, strata_codes))
    xs, ts, es, ws, ss = x[order], time[order], event[order], weight[order], strata_codes[order]
    n = len(ts)
    new_block = np.r_[True, (ts[1:] != ts[:-1]) | (ss[1:] != ss[:-1])]
    block_id = np.cumsum(new_block) - 1
    block_start = np.flatnonzero(new_block)
    first = block_start[block_id]
    new_stratum = np.r_[True, ss[1:] != ss[:-1]]
    stratum_start = np.flatnonzero(new_stratum)
    stratum_end_by = np.r_[stratum_start[1:], n]
    stratum_end = stratum_end_by[np.cumsum(new_stratum) - 1]
    death_rows = np.flatnonzero(es == 1)
    _, group, group_size = np.unique(block_id[death_rows], return_inverse=True, return_counts=True)
    group_weight = np.bincount(group, weights=ws[death_rows])
    starts = np.r_[0, np.cumsum(group_size)[:-1]]
    j = np.arange(len(death_rows)) - starts[group]
    fraction = j / group_size[group] if ties == "efron" else np.zeros(len(death_rows))
    group_rows = death_rows[starts]
    risk = RiskSets(
        x=xs,
        time=ts,
        event=es,
        weight=ws,
        first=first,
        stratum_end=stratum_end,
        death_rows=death_rows,
        group=group,
        group_first=first[group_rows],
        group_end=stratum_end[group_rows],
        efron_fraction=fraction,
        group_size=group_size,
        group_weight=group_weight,
        group_start=starts,
        x_dead=xs[death_rows],
        weight_dead=ws[death_rows],
        offset=None if offset is None else offset[order],
        entry=None if entry is None else _entry(entry[order], ss, ts[group_rows], ss[group_rows]),
        exact_ties=ties == "exact",
    )
    return risk, order


def linear_predictor(risk: RiskSets, beta: np.ndarray) -> np.ndarray:
    """Per sorted row: :math:`x_i^\\top\\beta`, plus its offset when the fit has one."""
    eta = risk.x @ beta
    return eta if risk.offset is None else eta + risk.offset


def at_risk_sums(risk: RiskSets, values: np.ndarray) -> np.ndarray:
    """Per event time: the sum of `values` (per sorted row) over its risk set.

    The rows of the stratum with time >= t_k, less (for (start, stop] data) those
    with start >= t_k, each a contiguous range of a sorted order.
    """
    sums = range_sums(values, risk.group_first, risk.group_end)
    if risk.entry is None:
        return sums
    late = values[risk.entry.late_order]
    return sums - range_sums(late, risk.entry.group_late, risk.group_end)


def not_yet_entered(risk: RiskSets, per_group: np.ndarray) -> np.ndarray:
    """Per sorted row of (start, stop] data: the sum of `per_group` over the event
    times of its stratum at or before its start (risk sets it has not entered)."""
    entry = risk.entry
    return range_sums(per_group, entry.first_group, entry.entered_group)


def covering(risk: RiskSets, per_group: np.ndarray) -> np.ndarray:
    """Per sorted row: the sum of ``per_group`` over the event times whose risk set holds it
    (the groups from its stratum's first to its own, less those before its entry)."""
    n = len(risk.time)
    placed = np.bincount(risk.group_first, weights=per_group, minlength=n + 1)
    placed -= np.bincount(risk.group_end, weights=per_group, minlength=n + 1)
    out = np.cumsum(placed)[:n]
    if risk.entry is not None:
        out -= not_yet_entered(risk, per_group)
    return out


def range_sums(values: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Sums of `values` over rows [start, end) via one cumulative sum (axis 0)."""
    c = np.concatenate([np.zeros((1, *values.shape[1:])), np.cumsum(values, axis=0)])
    return c[end] - c[start]


def partial_likelihood(risk: RiskSets, beta: np.ndarray, *, derivatives: bool = True):
    """Log-likelihood, score and information at `beta` (coxfit6's arithmetic, vectorised).

    The module docstring's likelihood; score and information are None when
    ``derivatives`` is False. With ``risk.exact_ties``, the exact likelihood of
    ``toolkit.stats._coxexact`` at the event times with tied events.
    """
    if risk.exact_ties:
        return _exact_likelihood(risk, beta, derivatives)
    eta = linear_predictor(risk, beta)
    shift = eta.max()
    we = risk.weight * np.exp(eta - shift)
    s0 = at_risk_sums(risk, we)
    dead_we = we[risk.death_rows]
    d0 = np.bincount(risk.group, weights=dead_we, minlength=len(s0))
    meanwt = (risk.group_weight / risk.group_size)[risk.group]
    denom = s0[risk.group] - risk.efron_fraction * d0[risk.group]
    dead_w = risk.weight_dead
    loglik = float(dead_w @ eta[risk.death_rows] - meanwt @ (np.log(denom) + shift))
    if not derivatives:
        return loglik, None, None
    c = np.bincount(risk.group, weights=meanwt / denom, minlength=len(s0))
    h = np.bincount(risk.group, weights=meanwt * risk.efron_fraction / denom, minlength=len(s0))
    coverage = covering(risk, c)
    row_weight = we * coverage
    row_weight[risk.death_rows] -= dead_we * h[risk.group]
    xd = risk.x_dead
    score = np.dot(dead_w, xd) - np.dot(row_weight, risk.x)
    s1 = at_risk_sums(risk, we[:, None] * risk.x)
    d1 = np.add.reduceat(dead_we[:, None] * xd, risk.group_start, axis=0)
    # sum over event rows of meanwt * a a^T with a = (s1 - f d1) / denom, expanded in f so
    # that the products run over distinct event times, not over every event.
    g = len(s0)
    inv2 = meanwt / denom**2
    alpha = np.bincount(risk.group, weights=inv2, minlength=g)
    information = np.dot(risk.x.T * row_weight, risk.x) - np.dot(s1.T * alpha, s1)
    if risk.efron_fraction.any():
        f = risk.efron_fraction
        beta_ = np.bincount(risk.group, weights=inv2 * f, minlength=g)
        gamma = np.bincount(risk.group, weights=inv2 * f * f, minlength=g)
        cross = np.dot(s1.T * beta_, d1)
        information += cross + cross.T - np.dot(d1.T * gamma, d1)
    return loglik, score, information


def _exact_likelihood(risk: RiskSets, beta: np.ndarray, derivatives: bool):
    """Breslow's terms, with each tied event time's replaced by its exact one."""
    loglik, score, info = partial_likelihood(replace(risk, exact_ties=False), beta)
    extra_loglik, extra_score, extra_info = _coxexact.tied_corrections(
        risk, linear_predictor(risk, beta)
    )
    if not derivatives:
        return loglik + extra_loglik, None, None
    return loglik + extra_loglik, score + extra_score, info + extra_info


@dataclass(frozen=True)
class EventMoments:
    """The weighted covariate means of the risk sets at `beta` (``event_moments``' result).

    Per event row (sorted as ``risk.death_rows``), for Efron's sub-step j of its
    event time k: ``denom`` :math:`= S_0 - f_j D_0` and ``mean``
    :math:`\\bar x_{kj} = (S_1 - f_j D_1) / (S_0 - f_j D_0)`; per distinct event
    time, ``time_mean`` is the average of its :math:`\\bar x_{kj}` (coxscho's mean).
    ``risk_score`` is :math:`e^{\\eta_i - s}` per row; ``denom`` carries the same
    factor :math:`e^{-s}` (s the largest linear predictor, against overflow), which
    cancels in every residual.
    """

    risk_score: np.ndarray
    denom: np.ndarray
    mean: np.ndarray
    time_mean: np.ndarray


def event_moments(risk: RiskSets, beta: np.ndarray) -> EventMoments:
    """Risk-set sums and weighted covariate means at each event, Efron's sub-steps included."""
    eta = linear_predictor(risk, beta)
    shift = eta.max()
    risk_score = np.exp(eta - shift)
    we = risk.weight * risk_score
    s0 = at_risk_sums(risk, we)
    s1 = at_risk_sums(risk, we[:, None] * risk.x)
    dead_we = we[risk.death_rows]
    d0 = np.bincount(risk.group, weights=dead_we, minlength=len(s0))
    d1 = np.add.reduceat(dead_we[:, None] * risk.x_dead, risk.group_start, axis=0)
    f = risk.efron_fraction
    denom = s0[risk.group] - f * d0[risk.group]
    mean = (s1[risk.group] - f[:, None] * d1[risk.group]) / denom[:, None]
    time_mean = np.add.reduceat(mean, risk.group_start, axis=0) / risk.group_size[:, None]
    return EventMoments(risk_score, denom, mean, time_mean)


def score_residuals(risk: RiskSets, beta: np.ndarray) -> np.ndarray:
    """Per-row score residuals (rows in sorted order), as ``residuals(fit, "score")``.

    U_i = d_i (x_i - xbar_k(i)) - exp(eta_i) sum_{k,j} c_kj phi_ikj (x_i - xbar_kj), over
    the event times k whose risk set holds row i and Efron's sub-steps j: mean
    xbar_kj = (S1 - f_j D1) / (S0 - f_j D0), weight c_kj = (W_k / m_k) / (S0 - f_j D0),
    phi = 1 for rows at risk and 1 - f_j for the events tied at t_k, xbar_k the
    average of the xbar_kj (coxscore2's arithmetic; Breslow has f_j = 0).
    """
    moments = event_moments(risk, beta)
    risk_score, mean = moments.risk_score, moments.mean
    g = len(risk.group_size)
    f = risk.efron_fraction
    c = (risk.group_weight / risk.group_size)[risk.group] / moments.denom  # scaled by e^shift
    n, p = risk.x.shape
    c_k = np.bincount(risk.group, weights=c, minlength=g)
    m_k = np.add.reduceat(c[:, None] * mean, risk.group_start, axis=0)
    h_k = np.bincount(risk.group, weights=c * f, minlength=g)
    mh_k = np.add.reduceat((c * f)[:, None] * mean, risk.group_start, axis=0)
    placed = np.zeros((n + 1, p + 1))
    np.add.at(placed, risk.group_first, np.c_[c_k, m_k])
    np.subtract.at(placed, risk.group_end, np.c_[c_k, m_k])
    cover = np.cumsum(placed, axis=0)[:n]
    if risk.entry is not None:
        cover -= not_yet_entered(risk, np.c_[c_k, m_k])
    coverage, mean_cover = cover[:, 0], cover[:, 1:]
    expected = risk.x * coverage[:, None] - mean_cover
    dead = risk.death_rows
    expected[dead] -= risk.x_dead * h_k[risk.group][:, None] - mh_k[risk.group]
    residual = -risk_score[:, None] * expected  # the e^shift factors cancel
    residual[dead] += risk.x_dead - moments.time_mean[risk.group]
    return residual


@dataclass(frozen=True)
class Newton:
    """Where coxfit6's iteration stopped: the point, its terms and how it got there
    (``newton``'s result)."""

    beta: np.ndarray
    loglik: float
    information: np.ndarray
    step: np.ndarray  # the next Newton step from beta (coxph.fit's ``u %*% var``)
    iterations: int
    converged: bool
    halvings: int  # steps that were shortened, over the whole iteration


def _finite(loglik: float, score: np.ndarray, info: np.ndarray) -> bool:
    return bool(np.isfinite(loglik) and np.all(np.isfinite(score)) and np.all(np.isfinite(info)))


def newton(risk: RiskSets, start: tuple, eps: float, max_iter: int) -> Newton:
    """coxfit6's Newton-Raphson (survival 3.5-3), step for step, halving included.

    ``start`` is ``partial_likelihood(risk, 0)``. From beta = 0: evaluate the
    candidate ``beta + I^{-1} U``. It has converged when
    its log-likelihood, score and information are finite and
    ``|1 - loglik_best / loglik_new| <= eps``; that is accepted in the midst of
    halving too. A candidate whose log-likelihood is lower than the best so far,
    or not finite, is pulled back towards the best point, harder each time:
    the k-th consecutive halving takes ``(candidate + k beta) / (k + 1)``. Otherwise
    it becomes the best point and the next candidate is its Newton step.
    With ``max_iter = 0`` the fit is the start (beta = 0, its information and
    score, 0 iterations), as ``coxph(..., iter.max = 0)``. When the iterations run
    out, the fit is the best point with its terms recomputed there (for
    ``max_iter > 1``; at ``max_iter = 1`` coxfit6 leaves the last terms, and so
    do we). Copying the iteration, not just the optimum, makes our coefficients
    equal to R's to rounding error rather than to R's tolerance (about 1e-9).
    """
    loglik, score, info = start  # the terms at beta = 0
    beta = np.zeros(len(score))
    if max_iter == 0:
        return Newton(beta, loglik, info, _solve(info, score), 0, False, 0)
    candidate = beta + _solve(info, score)
    halving = halvings = 0
    for iteration in range(1, max_iter + 1):
        new_loglik, score, info = partial_likelihood(risk, candidate)
        finite = _finite(new_loglik, score, info)
        if finite and abs(1 - loglik / new_loglik) <= eps:
            return Newton(
                candidate, new_loglik, info, _solve(info, score), iteration, True, halvings
            )
        if not finite or new_loglik < loglik:
            halving += 1
            halvings += 1
            candidate = (candidate + halving * beta) / (halving + 1)
        else:
            halving = 0
            loglik, beta = new_loglik, candidate
            candidate = candidate + _solve(info, score)
    if max_iter > 1:
        loglik, score, info = partial_likelihood(risk, beta)
    # coxfit6 leaves its loop counter at max_iter + 1, and coxph reports that as $iter
    return Newton(beta, loglik, info, _solve(info, score), max_iter + 1, False, halvings)


def newton_exact(risk: RiskSets, start: tuple, eps: float, max_iter: int) -> Newton:
    """coxexact.c's Newton-Raphson (survival 3.5-3), the iteration of ``ties="exact"``.

    As ``newton`` but with coxexact's older rules: a candidate whose log-likelihood
    is lower than the best (or not finite) is replaced by the midpoint of it and
    the best point, convergence is not accepted in the midst of halving, and when
    the iterations run out the fit is the last candidate evaluated, with
    ``iterations = max_iter``.
    """
    loglik, score, info = start
    beta = np.zeros(len(score))
    if max_iter == 0:
        return Newton(beta, loglik, info, _solve(info, score), 0, False, 0)
    candidate = beta + _solve(info, score)
    halving = False
    halvings = 0
    for iteration in range(1, max_iter + 1):
        new_loglik, score, info = partial_likelihood(risk, candidate)
        step = _solve(info, score)
        if not halving and abs(1 - loglik / new_loglik) <= eps:
            return Newton(candidate, new_loglik, info, step, iteration, True, halvings)
        if iteration == max_iter:
            break
        halving = not np.isfinite(new_loglik) or new_loglik < loglik
        if halving:
            halvings += 1
            candidate = (beta + candidate) / 2
        else:
            loglik, beta = new_loglik, candidate
            candidate = candidate + step
    return Newton(candidate, new_loglik, info, step, max_iter, False, halvings)


def _solve(info: np.ndarray, score: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(info, score)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(info, score, rcond=None)[0]


def _strata_codes(strata: Any, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    if strata is None:
        return np.zeros(n, dtype=np.int64), None
    values = _coxinput.labels_of(strata, "strata", n, np.arange(n))
    codes, levels = pd.factorize(values, sort=True)
    return codes.astype(np.int64), np.asarray(levels).astype(str)


def _weights(weights: Any, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"weights has shape {w.shape}, expected ({n},)")
    bad = ~np.isfinite(w) | (w <= 0)
    if bad.any():
        raise ValueError(
            f"weights must be finite and positive (rows {listed(np.flatnonzero(bad))})"
        )
    return w


def hazard_increments(risk: RiskSets, beta: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """Baseline hazard increments at each distinct event time (per stratum, in time order).

    :math:`dH_0(t_k) = \\sum_{j=0}^{m_k-1} (W_k / m_k) / (S_0 - \\tfrac{j}{m_k} D_0)`, Efron's
    (Breslow's with the fractions 0) increment of ``survfit.coxph``, at the linear
    predictor ``risk.x @ beta + offset`` (``offset = means @ beta`` for covariates
    all zero; 0 for covariates at their means).
    """
    eta = linear_predictor(risk, beta) + offset
    we = risk.weight * np.exp(eta)
    s0 = at_risk_sums(risk, we)
    d0 = np.bincount(risk.group, weights=we[risk.death_rows], minlength=len(s0))
    meanwt = (risk.group_weight / risk.group_size)[risk.group]
    denom = s0[risk.group] - risk.efron_fraction * d0[risk.group]
    return np.bincount(risk.group, weights=meanwt / denom, minlength=len(s0))


def _baseline(risk: RiskSets, beta: np.ndarray, offset: float, levels) -> pd.DataFrame:
    """basehaz(fit, centered=FALSE): hazard increments at every distinct time, cumulated."""
    n = len(risk.time)
    blocks = np.flatnonzero(risk.first == np.arange(n))
    increment = np.zeros(len(blocks))
    increment[np.searchsorted(blocks, risk.group_first)] = hazard_increments(risk, beta, offset)
    stratum = np.searchsorted(np.unique(risk.stratum_end), risk.stratum_end[blocks])
    hazard = pd.Series(increment).groupby(stratum).cumsum().to_numpy()
    frame = pd.DataFrame({"time": risk.time[blocks], "hazard": hazard})
    if levels is not None:
        frame["strata"] = pd.Categorical.from_codes(stratum, categories=list(levels))
    return frame


def fit(
    X: Any,
    time: Any,
    event: Any,
    ties: Ties = "efron",
    weights: Any = None,
    strata: Any = None,
    names: Sequence[str] | None = None,
    eps: float = _EPS,
    max_iter: int = _MAX_ITER,
    robust: bool | None = None,
    cluster: Any = None,
    offset: Any = None,
    entry: Any = None,
    id: Any = None,
) -> CoxFit:
    """Fit a Cox model as ``coxph(Surv(time, event) ~ X + strata(strata), weights=, ties=)``.

    With ``entry``, as ``coxph(Surv(entry, time, event) ~ X + offset(offset), cluster=, id=)``.

    Parameters
    ----------
    X
        Covariates, rows x columns: a numeric numpy array or DataFrame (its column
        names are kept; categorical variables must be dummy-coded beforehand).
    time, event
        Follow-up time and event indicator (1 = event, 0 = censored); with
        ``entry``, the stop time of each (start, stop] interval and whether it
        ends in an event.
    ties
        ``"efron"`` (coxph's default), ``"breslow"`` or ``"exact"``: the exact
        partial likelihood of tied events (``toolkit.stats._coxexact``), without
        case weights or ``entry``; an event time with too many tied events for its
        recursion is refused, naming it. Its baseline hazard is Breslow's, as
        survfit.coxph's for an exact fit.
    weights
        Positive case weights (coxph's ``weights=``), or None.
    strata
        One stratum label per row (``strata()`` term), or None.
    names
        Covariate names for an array X (default ``x1, x2, ...``).
    eps, max_iter
        ``coxph.control(eps=, iter.max=)``: stop when the relative change of the
        log-likelihood is <= eps. ``max_iter = 0`` returns the fit at beta = 0
        (its log-likelihood, information and variance; ``converged=False``, no
        warning), as ``coxph(..., iter.max = 0)``; ``iterations`` is R's
        ``fit$iter`` (``max_iter + 1`` when the iterations ran out, as coxfit6
        counts). The defaults are coxph's; at eps = 1e-9 the
        coefficients can still be ~1e-7 (relative) from the exact maximum, so
        to compare with an R fit run at another eps (e.g. ``rms::cph(eps=1e-12)``)
        pass the same eps here.
    robust
        Robust (sandwich) variance for ``se``; None means coxph's default: robust
        exactly when the weights are not all integers. ``naive_variance`` always
        holds the model-based one (``fit$naive.var``). With ``cluster`` the
        default is robust, and ``robust=False`` is refused (R ignores the cluster then).
    cluster
        One cluster label per row (``coxph(..., cluster = centre)``): the robust
        variance :math:`D^\\top D` with D the weighted dfbeta residuals summed
        within each cluster (coxph's ``residuals(fit, "dfbeta", collapse = cluster,
        weighted = TRUE)``). At least two clusters; a cluster may have one row.
    offset
        A fixed term per row added to the linear predictor (``offset()``), finite.
    entry
        The start times of counting-process data (``Surv(start, stop, event)``):
        the row is at risk on (entry, time], so in the risk set of event time t
        when entry < t <= time (time-varying covariates: one row per interval;
        delayed entry). Each entry must be < its time.
    id
        The subject of each row (coxph's ``id=``). Intervals of one subject that
        overlap are refused. As coxph: when a subject has more than one event the
        default variance is robust, and a robust fit without ``cluster`` clusters
        on ``id``.

    Returns
    -------
    CoxFit with Wald z and p, ``aic = -2 loglik + 2 p`` (R's ``AIC(fit)``).
    """
    if ties not in ("efron", "breslow", "exact"):
        raise ValueError(f"ties must be 'efron', 'breslow' or 'exact', got {ties!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) or max_iter < 0:
        raise ValueError(f"max_iter must be a whole number >= 0, got {max_iter!r}")
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    x, cols = _design(X, names)
    rows = X.index if isinstance(X, pd.DataFrame) else None
    t, e, x = check_survival(time, event, x, names=("time", "event", "covariates"), rows=rows)
    n, p = x.shape
    w = _weights(weights, n)
    extras = _extras(t, e, rows, cluster, offset, entry, id)
    codes, levels = _strata_codes(strata, n)
    means = np.average(x, axis=0, weights=w)
    risk, order = risk_sets(x - means, t, e, w, codes, ties, extras.start, extras.offset)
    if ties == "exact":
        _check_exact(risk, weights, extras, robust)
    # The products are n x p by p x p: one BLAS thread is fastest, and idle BLAS
    # threads spinning on a busy machine cost more than the work itself.
    with one_blas_thread():
        start = partial_likelihood(risk, np.zeros(p))
        result = (newton_exact if ties == "exact" else newton)(risk, start, eps, max_iter)
    beta, loglik, info = result.beta, result.loglik, result.information
    iterations = result.iterations
    loglik_null = start[0]
    converged = _convergence(result, cols, eps, max_iter)
    variance = np.linalg.pinv(info) if not np.all(np.isfinite(info)) else _inverse(info)
    naive_variance = variance
    robust = _robust_default(robust, weights, w, extras)
    clusters = extras.cluster if extras.cluster is not None or not robust else extras.subject
    clusters = None if clusters is None else clusters[order]
    if robust:
        variance = robust_variance(risk, beta, variance, clusters)
    se = np.sqrt(np.diag(variance))
    z = beta / se
    return CoxFit(
        coef=beta,
        se=se,
        z=z,
        p=2 * stats.norm.sf(np.abs(z)),
        variance=variance,
        naive_variance=naive_variance,
        robust=bool(robust),
        loglik=loglik,
        loglik_null=loglik_null,
        aic=-2 * loglik + 2 * p,
        n=n,
        n_events=int(e.sum()),
        converged=bool(converged),
        iterations=iterations,
        names=cols,
        means=means,
        ties=ties,
        risk_sets=risk,
        order=order,
        cluster=clusters,
        baseline_centre=_centre(means, beta, extras, w),
        strata_levels=levels,
    )


@dataclass(frozen=True)
class _Extras:
    """fit's checked per-row extras (input order); each None when not given."""

    start: np.ndarray | None
    offset: np.ndarray | None
    cluster: np.ndarray | None
    subject: np.ndarray | None
    repeated_events: bool  # some subject (id) has more than one event (coxph's anyDuplicated)


def _extras(t: np.ndarray, e: np.ndarray, rows: Any, cluster, offset, entry, subject) -> _Extras:
    n = len(t)
    labels = _coxinput.row_labels(rows, n)
    start = _coxinput.entry_times(entry, t, labels)
    subjects = _coxinput.subject_codes(subject, n, labels)
    _coxinput.check_overlaps(start, t, subjects, labels)
    repeated = subjects is not None and np.bincount(subjects[e == 1]).max(initial=0) > 1
    return _Extras(
        start,
        _coxinput.offsets(offset, n, labels),
        _coxinput.cluster_codes(cluster, n, labels),
        subjects,
        bool(repeated),
    )


def _check_exact(risk: RiskSets, weights: Any, extras: _Extras, robust: bool | None) -> None:
    """What ties="exact" covers, as coxph: no case weights, no robust variance (it has
    no score residuals), right-censored rows."""
    if weights is not None and np.any(risk.weight != 1):
        raise ValueError("ties='exact' does not take case weights (coxph refuses them too)")
    if robust or extras.cluster is not None or extras.repeated_events:
        raise ValueError(
            "ties='exact' has no robust variance: it needs the score (dfbeta) residuals, "
            "which the exact likelihood does not define (coxph refuses them too)"
        )
    if extras.start is not None:
        raise ValueError("ties='exact' is not available for (start, stop] data (entry=)")
    _coxexact.check_tractable(risk)


def _centre(means: np.ndarray, beta: np.ndarray, extras: _Extras, w: np.ndarray) -> float:
    """The linear predictor of the baseline subject: covariates 0 and, with offsets, the
    (weighted) mean offset, as ``basehaz(fit, centered = FALSE)`` (survfit.coxph's
    ``offset.mean``)."""
    centre = float(means @ beta)
    if extras.offset is None:
        return centre
    return centre - float(np.sum(extras.offset * (w / w.sum())))


def _robust_default(robust: bool | None, weights: Any, w: np.ndarray, extras: _Extras) -> bool:
    """coxph's choice, unless told: robust with a cluster, with non-integer weights,
    or with a subject (id) that has more than one event."""
    clusters = extras.cluster
    if robust is None:
        fractional = weights is not None and not np.all(w == np.round(w))
        return clusters is not None or fractional or extras.repeated_events
    if clusters is not None and not robust:
        raise ValueError("cluster= needs the robust variance: drop robust=False or the cluster")
    return bool(robust)


def collapse(values: np.ndarray, clusters: np.ndarray | None) -> np.ndarray:
    """Per-row values summed within each cluster (R's ``rowsum(values, cluster)``);
    the values themselves when there are no clusters."""
    if clusters is None:
        return values
    out = np.zeros((int(clusters.max()) + 1, values.shape[1]))
    np.add.at(out, clusters, values)
    return out


def robust_variance(risk: RiskSets, beta: np.ndarray, variance: np.ndarray, clusters):
    """The sandwich :math:`D^\\top D`, D the weighted dfbeta residuals :math:`w_i U_i V`
    (collapsed within cluster when ``clusters`` gives each sorted row's code)."""
    dfbeta = score_residuals(risk, beta) @ variance * risk.weight[:, None]
    dfbeta = collapse(dfbeta, clusters)
    return dfbeta.T @ dfbeta


def _convergence(result: Newton, cols: tuple[str, ...], eps: float, max_iter: int) -> bool:
    """``converged``, with coxph.fit's warnings (given only when ``max_iter > 1``, as R).

    Out of iterations: R's "Ran out of iterations and did not converge". Converged
    but some coefficient's next Newton step still larger than both eps and
    ``sqrt(eps) * |coef|`` (``toler.inf`` of coxph.control): "Loglik converged
    before variable ...; coefficient may be infinite", and ``converged=False``.
    """
    if max_iter <= 1:
        return result.converged
    if not result.converged:
        warnings.warn(
            f"Cox partial likelihood: ran out of iterations (max_iter={max_iter}) and did "
            "not converge; the fit is the best point reached (R's coxph warns the same)",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    step, beta = np.abs(result.step), np.abs(result.beta)
    infinite = (step > eps) & (step > np.sqrt(eps) * beta)
    if infinite.any():
        which = [cols[i] for i in np.flatnonzero(infinite)]
        warnings.warn(
            f"Cox partial likelihood converged before {', '.join(which)}: "
            "coefficient may be infinite (monotone likelihood; R's coxph warns the same)",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    return True


def _inverse(info: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(info)
