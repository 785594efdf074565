"""Overall and progression-free survival from a proportional-hazards (Weibull) model.

The true linear predictor of death is

    eta = 0.70 log2(size_cm / 6) + 1.50 necrosis + 0.030 (heterogeneity_HU - 18)
          + 0.35 [BCLC B] + 0.85 [BCLC C] + 0.45 [ALT >= 40 U/L] + 0.15 [AFP >= 400 ng/mL]

(size, necrotic-core fraction and texture heterogeneity are the image
phenotype of the largest tumour; BCLC and ALT the clinical part; AFP a weak
extra). The hazard is Weibull proportional hazards,

    h(t | eta) = lambda k t^(k - 1) exp(eta),   k = 1.4,

so T = (-log U / (lambda exp(eta)))^(1/k) with U uniform. lambda is set so
that the cohort's marginal median survival, mean_i S(t | eta_i) = 0.5, is
19.2 months (the paper's median OS); it depends on the cohort's eta only,
never on the outcome. Progression has the same eta, shape 1.2 and a median
time to progression of 10 months, and PFS is the earlier of progression and
death.

Censoring is administrative, as in the paper: accrual uniform over 72 months
(2011-2016), database lock at month 105 (September 2019), plus loss to
follow-up at 0.8 % per month; PFS is censored at the same time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Coefficients of the true linear predictor (see module docstring).
COEFFICIENTS = {
    "log2_size_over_6cm": 0.70,
    "necrosis": 1.50,
    "heterogeneity_minus_18hu": 0.030,
    "bclc_B": 0.35,
    "bclc_C": 0.85,
    "alt_ge_40": 0.45,
    "afp_ge_400": 0.15,
}
OS_SHAPE = 1.4
PFS_SHAPE = 1.2
OS_MEDIAN = 19.2
PROGRESSION_MEDIAN = 10.0
ACCRUAL_MONTHS = 72.0
LOCK_MONTH = 105.0
LOSS_RATE = 0.008


@dataclass(frozen=True)
class Outcomes:
    linear_predictor: np.ndarray
    os_months: np.ndarray
    os_event: np.ndarray
    pfs_months: np.ndarray
    pfs_event: np.ndarray
    os_scale: float
    progression_scale: float


def linear_predictor(size_cm, necrosis, heterogeneity, bclc, alt, afp) -> np.ndarray:
    """The true eta of each patient (module docstring)."""
    c = COEFFICIENTS
    bclc = np.asarray(bclc)
    return (
        c["log2_size_over_6cm"] * np.log2(np.asarray(size_cm) / 6.0)
        + c["necrosis"] * np.asarray(necrosis)
        + c["heterogeneity_minus_18hu"] * (np.asarray(heterogeneity) - 18.0)
        + c["bclc_B"] * (bclc == "B")
        + c["bclc_C"] * (bclc == "C")
        + c["alt_ge_40"] * (np.asarray(alt) >= 40.0)
        + c["afp_ge_400"] * (np.asarray(afp) >= 400.0)
    )


def weibull_scale_for_median(eta: np.ndarray, shape: float, median: float) -> float:
    """lambda such that mean_i exp(-lambda exp(eta_i) median^shape) = 1/2 (bisection in log)."""
    risk = np.exp(eta)
    lo, hi = -30.0, 10.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        survival = np.mean(np.exp(-np.exp(mid) * risk * median**shape))
        lo, hi = (mid, hi) if survival > 0.5 else (lo, mid)
    return float(np.exp(0.5 * (lo + hi)))


def _weibull(rng, eta, scale, shape) -> np.ndarray:
    u = rng.random(eta.size)
    return (-np.log(u) / (scale * np.exp(eta))) ** (1.0 / shape)


def draw_outcomes(eta: np.ndarray, rng: np.random.Generator) -> Outcomes:
    """OS and PFS (months, event 1/0) for linear predictors `eta` (module docstring)."""
    eta = np.asarray(eta, dtype=float)
    n = eta.size
    os_scale = weibull_scale_for_median(eta, OS_SHAPE, OS_MEDIAN)
    prog_scale = weibull_scale_for_median(eta, PFS_SHAPE, PROGRESSION_MEDIAN)
    death = _weibull(rng, eta, os_scale, OS_SHAPE)
    progression = _weibull(rng, eta, prog_scale, PFS_SHAPE)
    administrative = LOCK_MONTH - rng.uniform(0.0, ACCRUAL_MONTHS, n)
    lost = rng.exponential(1.0 / LOSS_RATE, n)
    censor = np.minimum(administrative, lost)
    os_time = np.minimum(death, censor)
    first = np.minimum(progression, death)
    pfs_time = np.minimum(first, censor)
    # times are recorded to a hundredth of a month, never zero
    return Outcomes(
        linear_predictor=eta,
        os_months=np.maximum(np.round(os_time, 2), 0.01),
        os_event=(death <= censor).astype(int),
        pfs_months=np.maximum(np.round(pfs_time, 2), 0.01),
        pfs_event=(first <= censor).astype(int),
        os_scale=os_scale,
        progression_scale=prog_scale,
    )
