"""The normal quantile of Wald confidence intervals, :math:`estimate \\pm z\\,se`.

``Z_975`` is ``scipy.stats.norm.ppf(0.975)`` = 1.959963984540054 (not the
rounded 1.96): R's ``qnorm(0.975)``, which ``summary(coxph)``, ``survfit`` and
``concordance`` use for 95% intervals, to two units in the last place (R's
AS 241 gives 1.9599639845400536, 4.4e-16 less; a bound moves by under 1e-15 se).
Earlier sigkit results used scipy's value, so it is kept.
"""

from __future__ import annotations

from scipy import stats

Z_975 = float(stats.norm.ppf(0.975))


def quantile(level: float = 0.95) -> float:
    """:math:`z_{(1+level)/2}`, the multiplier of a two-sided ``level`` interval."""
    return Z_975 if level == 0.95 else float(stats.norm.ppf(0.5 + level / 2))
