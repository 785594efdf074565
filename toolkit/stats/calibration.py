"""Calibration of predicted survival: grouped RMSE, ICI/E50/E90, slope, calibration-in-the-large.

**Grouped calibration and RMSE** (the paper's "RMSE between observed and
predicted survival", Figure 4C; the grouping of ``rms::calibrate(cmethod =
"KM")`` / ``rms::groupkm``). Patients are sorted by predicted survival
:math:`\\hat S_i(t)` and split into :math:`G` groups of (almost) equal size
(``numpy.array_split`` of the sorted order; ties are split by row order). For
group :math:`g`, the predicted survival is the mean :math:`\\bar S_g` of
:math:`\\hat S_i(t)` and the observed survival :math:`O_g` is the group's
Kaplan-Meier estimate at :math:`t` (carried forward past the group's last
follow-up, as ``summary(survfit(...), extend = TRUE)``). Then

.. math::

    \\mathrm{RMSE}(t) = \\sqrt{\\frac1G \\sum_{g=1}^{G} (O_g - \\bar S_g)^2}

with every group weighted equally (a point on the calibration plot each).

**ICI, E50, E90** (Austin, Harrell and van Klaveren, Stat Med 2020;39:2714).
The smoother is their Cox alternative to hazard regression (``polspline::hare``
has no Python equivalent): the outcome is regressed on the complementary log-log
of the predicted risk, :math:`c_i = \\log(-\\log \\hat S_i(t))`, with a restricted
cubic spline of 3 knots (``coxph(Surv(time, event) ~ rcs(c, 3))``, knots placed
as ``Hmisc::rcspline.eval``: quantiles 0.1, 0.5, 0.9, the outer ones at the 5th
smallest and largest values when n < 100). The smoothed observed risk is
:math:`\\tilde F_i = 1 - \\tilde S(t \\mid c_i)` (``survfit.coxph``); with predicted
risk :math:`\\hat F_i = 1 - \\hat S_i(t)`, ICI is the mean of
:math:`|\\tilde F_i - \\hat F_i|`, E50 its median and E90 its 90th percentile
(R's default quantile). When the predictions take fewer than 5 distinct values the
spline is dropped and the smoother is linear in :math:`c` (``rcspline.eval`` would
stop or warn there).

**Calibration slope** (Cox 1958; van Houwelingen 2000): the coefficient
:math:`\\hat\\beta` of the model's linear predictor :math:`\\eta` in a Cox model
refitted on the set, ``coxph(Surv(time, event) ~ lp)`` (Efron ties), with its
Wald interval :math:`\\hat\\beta \\pm z\\, \\mathrm{se}` (``confint``). 1 on the
set the model was fitted on; below 1, predictions are too extreme (overfitting).
Any shift of :math:`\\eta` (centring) leaves it unchanged.

**Calibration-in-the-large** at each horizon: the ratio of the observed risk,
one minus the Kaplan-Meier estimate :math:`O(t) = 1 - \\hat S_{KM}(t)`, to the
expected risk, the mean predicted risk :math:`E(t) = \\frac1n \\sum_i (1 - \\hat
S_i(t))`: :math:`O/E < 1` means the model over-predicts risk. The point estimate
is McLernon et al.'s (Ann Intern Med 2023;176:105) O/E; its interval here is the
Kaplan-Meier's own (Greenwood, log scale: ``survfit``'s default ``conf.type =
"log"``) carried to the risk scale, :math:`[1 - U(t), 1 - L(t)] / E(t)`, with
:math:`E(t)` held fixed (theirs is :math:`O/E \\cdot \\exp(\\pm z / \\sqrt{d})` with
:math:`d` events, a Poisson approximation): the same interval that the
calibration figure draws on each group's observed value.

**Optimism correction** (Harrell's bootstrap, as ``rms::validate``): for each of
``n_bootstrap`` resamples of the training set, the model is refitted on the
resample (the same variables: selection is not repeated), and the metric is
computed on the resample (apparent) and on the original training set (test);
corrected = apparent - mean(apparent_b - test_b).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from toolkit.stats._checks import check_survival
from toolkit.stats._km import km_at
from toolkit.stats._predicted import check_horizons, check_survival_matrix, row_names


@dataclass(frozen=True)
class Calibration:
    """Calibration at one horizon: grouped table, RMSE and the ICI family."""

    horizon: float
    groups: pd.DataFrame  # group, n, events, predicted, observed
    rmse: float
    ici: float
    e50: float
    e90: float
    smoothed_observed: np.ndarray  # per patient: 1 - smoothed observed risk (survival scale)


def _groups(time, event, survival, horizon, n_groups):
    """Per group: members, mean predicted survival, KM observed survival."""
    if n_groups < 1 or n_groups > len(time):
        raise ValueError(f"n_groups must be between 1 and {len(time)}, got {n_groups}")
    order = np.argsort(survival, kind="stable")
    members = np.array_split(order, n_groups)
    predicted = np.array([survival[m].mean() for m in members])
    observed = np.array([km_at(time[m], event[m], np.array([horizon]))[0] for m in members])
    return members, predicted, observed


def calibration_groups(
    time: np.ndarray, event: np.ndarray, survival: np.ndarray, horizon: float, n_groups: int
) -> pd.DataFrame:
    """Groups of predicted survival with their mean prediction and KM observed survival."""
    members, predicted, observed = _groups(time, event, survival, horizon, n_groups)
    return pd.DataFrame(
        {
            "group": np.arange(1, len(members) + 1),
            "n": [len(m) for m in members],
            "events": [int(event[m].sum()) for m in members],
            "predicted": predicted,
            "observed": observed,
        }
    )


def grouped_rmse(groups: pd.DataFrame) -> float:
    """sqrt(mean over groups of (observed - predicted)^2)."""
    diff = groups["observed"].to_numpy() - groups["predicted"].to_numpy()
    return float(np.sqrt(np.mean(diff**2)))


def rcs_knots(x: np.ndarray) -> np.ndarray:
    """Three knots as ``Hmisc::rcspline.eval(x, nk = 3)`` (without its tie rules)."""
    xs = np.sort(x)
    knots = np.quantile(xs, [0.1, 0.5, 0.9])
    if len(xs) < 100:
        knots[0], knots[2] = xs[4], xs[-5]
    return np.unique(knots)


def rcs_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Restricted cubic spline basis ``[x, s1(x), ...]`` (``rcspline.eval``, norm = 2)."""
    k = np.asarray(knots, dtype=float)
    scale = (k[-1] - k[0]) ** (2 / 3)
    cols = [x]
    for j in range(len(k) - 2):
        term = (
            np.maximum((x - k[j]) / scale, 0) ** 3
            - np.maximum((x - k[-2]) / scale, 0) ** 3 * (k[-1] - k[j]) / (k[-1] - k[-2])
            + np.maximum((x - k[-1]) / scale, 0) ** 3 * (k[-2] - k[j]) / (k[-1] - k[-2])
        )
        cols.append(term)
    return np.column_stack(cols)


def smoothed_observed(
    time: np.ndarray, event: np.ndarray, survival: np.ndarray, horizon: float
) -> np.ndarray:
    """Smoothed observed survival at ``horizon`` per patient (Austin et al.'s Cox + RCS)."""
    from toolkit.stats._efron import efron_fit

    # only exact 0 and 1 (infinite cll) are moved, to the nearest representable values
    clipped = np.clip(survival, np.finfo(float).tiny, np.nextafter(1.0, 0.0))
    cll = np.log(-np.log(clipped))
    if len(np.unique(cll)) >= 5:
        basis = rcs_basis(cll, rcs_knots(cll))
    else:
        basis = cll[:, None]
    return efron_fit(basis, time, event).survival(basis, [horizon])[:, 0]


def calibrate(
    time: Any,
    event: Any,
    survival: Any,
    horizon: float,
    *,
    n_groups: int = 3,
) -> Calibration:
    """Grouped calibration, RMSE and ICI/E50/E90 of predicted survival at ``horizon``.

    Parameters
    ----------
    time, event : follow-up and event indicator.
    survival : each patient's predicted survival at ``horizon``.
    horizon : the time point (in the cohort's time unit).
    n_groups : groups of predicted survival for the calibration plot and RMSE.
    """
    t, e, s = check_survival(time, event, survival, names=["time", "event", "survival"])
    if np.any((s < 0) | (s > 1)):
        raise ValueError("predicted survival must lie in [0, 1]")
    groups = calibration_groups(t, e, s, horizon, n_groups)
    observed = smoothed_observed(t, e, s, horizon)
    error = np.abs((1 - observed) - (1 - s))
    return Calibration(
        horizon=float(horizon),
        groups=groups,
        rmse=grouped_rmse(groups),
        ici=float(np.mean(error)),
        e50=float(np.median(error)),
        e90=float(np.quantile(error, 0.9)),
        smoothed_observed=observed,
    )


@dataclass(frozen=True)
class CalibrationSlope:
    """The calibration slope with its SE and Wald interval (module docstring)."""

    slope: float
    se: float
    lower: float
    upper: float
    conf_level: float
    n: int
    n_events: int


def calibration_slope(
    time: Any, event: Any, linear_predictor: Any, conf_level: float = 0.95
) -> CalibrationSlope:
    """Coefficient of the linear predictor in ``coxph(Surv(time, event) ~ lp)``, with its CI.

    Equal to ``coef``, ``sqrt(vcov)`` and ``confint(fit, level = conf_level)`` of
    that fit (survival 3.5-3, Efron ties), through :func:`toolkit.stats.cox.fit`.

    Parameters
    ----------
    time, event : follow-up and event indicator of the set being assessed.
    linear_predictor : the model's linear predictor for each patient of the set.
    conf_level : level of the Wald interval.
    """
    from toolkit.stats import cox
    from toolkit.stats.wald import quantile

    t, e, lp = check_survival(
        time, event, linear_predictor, names=["time", "event", "linear_predictor"]
    )
    if lp.ndim != 1:
        raise ValueError(f"linear_predictor must be one value per patient, got shape {lp.shape}")
    fit = cox.fit(lp[:, None], t, e, names=["linear_predictor"])
    slope, se = float(fit.coef[0]), float(fit.se[0])
    z = quantile(conf_level)
    return CalibrationSlope(
        slope, se, slope - z * se, slope + z * se, conf_level, fit.n, fit.n_events
    )


@dataclass(frozen=True)
class CalibrationInTheLarge:
    """Observed over expected risk at each horizon, with the Kaplan-Meier interval.

    ``observed`` is :math:`1 - \\hat S_{KM}(t)` with ``observed_lower``/``observed_upper``
    its interval, ``expected`` the mean predicted risk, ``ratio`` = observed / expected
    with ``lower``/``upper`` (module docstring); ``n_events`` the events by each horizon.
    """

    times: np.ndarray
    observed: np.ndarray
    observed_lower: np.ndarray
    observed_upper: np.ndarray
    expected: np.ndarray
    ratio: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n_events: np.ndarray
    conf_level: float


def _over(numerator: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """numerator / expected; NaN where no risk is expected (every prediction 1)."""
    return np.divide(numerator, expected, out=np.full_like(expected, np.nan), where=expected > 0)


def calibration_in_the_large(
    time: Any, event: Any, survival: Any, times: Sequence[float], conf_level: float = 0.95
) -> CalibrationInTheLarge:
    """Observed (Kaplan-Meier) over expected (mean predicted) risk at each horizon.

    Equal to ``summary(survfit(Surv(time, event) ~ 1, conf.int = conf_level),
    times)``'s ``1 - surv``, ``1 - upper``, ``1 - lower`` over ``mean(1 - S)``.

    Parameters
    ----------
    time, event : follow-up and event indicator of the set being assessed.
    survival : predicted survival, (n, len(times)) (a vector for one horizon), in
        [0, 1] and non-increasing along each row.
    times : strictly increasing horizons, none beyond the last follow-up.
    conf_level : level of the Kaplan-Meier interval.
    """
    from toolkit.stats.survival import kaplan_meier

    t, e, s = check_survival(time, event, survival, names=["time", "event", "survival"])
    horizons = check_horizons(times, t, "calibration-in-the-large")
    s = check_survival_matrix(s, row_names(survival, len(t)), "survival", len(horizons))
    km = kaplan_meier(t, e, conf_level)
    at = np.searchsorted(km.time, horizons, side="right") - 1
    started = at >= 0
    pick = np.maximum(at, 0)
    observed = 1.0 - np.where(started, km.survival[pick], 1.0)
    observed_lower = 1.0 - np.where(started, km.upper[pick], 1.0)
    observed_upper = 1.0 - np.where(started, km.lower[pick], 1.0)
    expected = (1.0 - s).mean(axis=0)
    return CalibrationInTheLarge(
        times=horizons,
        observed=observed,
        observed_lower=observed_lower,
        observed_upper=observed_upper,
        expected=expected,
        ratio=_over(observed, expected),
        lower=_over(observed_lower, expected),
        upper=_over(observed_upper, expected),
        n_events=np.array([int(e[t <= h].sum()) for h in horizons]),
        conf_level=conf_level,
    )


Predictor = Callable[[np.ndarray], np.ndarray]
"""rows -> predicted survival, shape (len(rows), len(horizons))."""


def optimism_corrected(
    time: Any,
    event: Any,
    refit: Callable[[np.ndarray], Predictor],
    horizons: Sequence[float],
    *,
    n_bootstrap: int,
    seed: int,
    n_groups: int = 3,
    apparent_survival: np.ndarray | None = None,
) -> dict[float, dict[str, float]]:
    """Bootstrap optimism-corrected RMSE, ICI, E50 and E90 at each horizon.

    ``refit(rows)`` fits the model on the training rows ``rows`` (indices, with
    repeats) and returns a predictor mapping row indices of the training set to
    predicted survival at ``horizons``. Resamples in which the refit or a metric
    fails (for example no event in the resample) are skipped and counted.
    ``apparent_survival`` (rows, horizons) is the final model's own prediction on
    the training set (default: ``refit`` on all rows).
    Returns {horizon: {"rmse": ..., "ici": ..., "e50": ..., "e90": ..., "n_used": ...}}.
    """
    t, e = check_survival(time, event, names=["time", "event"])
    n = len(t)
    everyone = np.arange(n)
    rng = np.random.default_rng(seed)
    keys = ("rmse", "ici", "e50", "e90")
    if apparent_survival is None:
        apparent_survival = refit(everyone)(everyone)
    apparent = _metrics(t, e, apparent_survival, horizons, n_groups)
    optimism = {h: {k: [] for k in keys} for h in horizons}
    for _ in range(n_bootstrap):
        rows = rng.integers(0, n, n)
        try:
            predict = refit(rows)
            boot = _metrics(t[rows], e[rows], predict(rows), horizons, n_groups)
            test = _metrics(t, e, predict(everyone), horizons, n_groups)
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            continue
        for h in horizons:
            for k in keys:
                optimism[h][k].append(boot[h][k] - test[h][k])
    out: dict[float, dict[str, float]] = {}
    for h in horizons:
        used = len(optimism[h]["rmse"])
        out[h] = {k: apparent[h][k] - float(np.mean(optimism[h][k])) for k in keys} if used else {}
        out[h]["n_used"] = used
    return out


def _metrics(t, e, survival, horizons, n_groups) -> dict[float, dict[str, float]]:
    out = {}
    for j, h in enumerate(horizons):
        s = survival[:, j]
        _, predicted, observed = _groups(t, e, s, h, n_groups)
        error = np.abs(smoothed_observed(t, e, s, h) - s)
        if not (np.all(np.isfinite(error)) and np.all(np.isfinite(observed))):
            raise ValueError("calibration undefined in this resample")
        out[h] = {
            "rmse": float(np.sqrt(np.mean((observed - predicted) ** 2))),
            "ici": float(np.mean(error)),
            "e50": float(np.median(error)),
            "e90": float(np.quantile(error, 0.9)),
        }
    return out
