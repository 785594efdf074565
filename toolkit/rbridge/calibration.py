"""R references for the calibration slope and calibration-in-the-large (``coxph``, ``survfit``)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from toolkit.rbridge import call, r_function

_CALIBRATION = """
function(time, event, lp, survival, times, conf) {
  fit <- survival::coxph(survival::Surv(time, event) ~ lp)
  ci <- confint(fit, level = conf)
  km <- summary(survival::survfit(survival::Surv(time, event) ~ 1, conf.int = conf),
                times = times)
  list(slope = unname(coef(fit)), se = sqrt(fit$var[1, 1]), lower = ci[1, 1], upper = ci[1, 2],
       observed = 1 - km$surv, observed_lower = 1 - km$upper, observed_upper = 1 - km$lower,
       expected = colMeans(1 - survival))
}
"""


@functools.cache
def _calibration():
    return r_function(_CALIBRATION, ["survival"])


def slope_and_large(
    time: Any,
    event: Any,
    linear_predictor: Any,
    survival: np.ndarray,
    times: Sequence[float],
    conf_level: float = 0.95,
) -> dict[str, np.ndarray]:
    """``coxph(Surv(time, event) ~ lp)``'s slope, SE and ``confint``; the KM at ``times``.

    Returns ``slope``, ``se``, ``lower``, ``upper``; ``observed`` (``1 - surv``),
    ``observed_lower`` (``1 - upper``), ``observed_upper`` (``1 - lower``) of
    ``summary(survfit(...), times)``; ``expected`` the mean predicted risk.
    """
    matrix = np.asarray(survival, dtype=float)
    return call(
        _calibration(),
        np.asarray(time, dtype=float),
        np.asarray(event, dtype=float),
        np.asarray(linear_predictor, dtype=float),
        matrix[:, None] if matrix.ndim == 1 else matrix,
        np.asarray(times, dtype=float),
        float(conf_level),
        computation="survival::coxph (calibration slope) and survfit",
    )
