"""Decision curves for survival outcomes: net benefit at a time horizon (Vickers et al. 2008).

Vickers, Cronin, Elkin and Gonen, "Extensions to decision curve analysis",
BMC Med Inform Decis Mak 2008;8:53, the Kaplan-Meier formula (their ``stdca``).
At horizon :math:`t` and threshold probability :math:`p_t`, patients whose
predicted risk of an event by :math:`t` exceeds the threshold (:math:`r_i > p_t`,
strictly, as ``stdca``) are "treated". With :math:`n` patients, a fraction
:math:`\\pi = n_+ / n` treated and :math:`\\hat S_+(t)` the Kaplan-Meier survival
among the treated,

.. math::

    \\mathrm{NB}(p_t) = \\{1 - \\hat S_+(t)\\}\\,\\pi
        - \\hat S_+(t)\\,\\pi\\,\\frac{p_t}{1 - p_t}

(true positives :math:`\\{1 - \\hat S_+(t)\\} n_+`, false positives
:math:`\\hat S_+(t) n_+`, both per patient). Treat all uses the whole cohort's
Kaplan-Meier :math:`\\hat S(t)`: :math:`1 - \\hat S(t) - \\hat S(t) p_t / (1 - p_t)`;
treat none is 0. A group whose follow-up ends before :math:`t` carries its
last Kaplan-Meier value forward (``summary(survfit(...), extend = TRUE)``);
net benefit is 0 when nobody is treated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from toolkit.stats._checks import check_survival
from toolkit.stats._km import km_at


def net_benefit(
    time: Any, event: Any, risk: Any, horizon: float, thresholds: Sequence[float]
) -> np.ndarray:
    """Net benefit of treating patients with predicted risk above each threshold.

    Parameters
    ----------
    time, event : follow-up and event indicator.
    risk : predicted probability of an event by ``horizon`` (``1 - S(horizon | x)``).
    horizon : the time point.
    thresholds : threshold probabilities in [0, 1).
    """
    t, e, r = check_survival(time, event, risk, names=["time", "event", "risk"])
    pt = _thresholds(thresholds)
    n = len(t)
    out = np.zeros(len(pt))
    for k, p in enumerate(pt):
        treated = r > p
        if not treated.any():
            continue
        share = treated.sum() / n
        surv = km_at(t[treated], e[treated], np.array([horizon]))[0]
        out[k] = (1 - surv) * share - surv * share * p / (1 - p)
    return out


def treat_all(time: Any, event: Any, horizon: float, thresholds: Sequence[float]) -> np.ndarray:
    """Net benefit of treating everyone: ``1 - S(t) - S(t) p / (1 - p)`` with KM ``S``."""
    t, e = check_survival(time, event, names=["time", "event"])
    pt = _thresholds(thresholds)
    surv = km_at(t, e, np.array([horizon]))[0]
    return (1 - surv) - surv * pt / (1 - pt)


def _thresholds(thresholds: Sequence[float]) -> np.ndarray:
    pt = np.asarray(thresholds, dtype=float)
    if pt.ndim != 1 or np.any(pt < 0) or np.any(pt >= 1):
        raise ValueError("thresholds must be probabilities in [0, 1)")
    return pt


def decision_table(
    time: Any,
    event: Any,
    risks: Mapping[str, Mapping[float, Any]],
    horizons: Sequence[float],
    thresholds: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Long table of net benefit: columns horizon, threshold, model, net_benefit.

    ``risks`` maps a model name to {horizon: predicted risk by that horizon};
    the rows "treat all" and "treat none" are added.
    """
    pt = np.round(np.arange(0.01, 1.0, 0.01), 2) if thresholds is None else thresholds
    pt = _thresholds(pt)
    frames = []
    for horizon in horizons:
        curves = {"treat all": treat_all(time, event, horizon, pt), "treat none": 0.0 * pt}
        for name, by_time in risks.items():
            curves[name] = net_benefit(time, event, by_time[horizon], horizon, pt)
        for name, values in curves.items():
            frames.append(
                pd.DataFrame(
                    {
                        "horizon": float(horizon),
                        "threshold": pt,
                        "model": name,
                        "net_benefit": values,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)
