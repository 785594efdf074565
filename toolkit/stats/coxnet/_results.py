"""The results of the elastic-net Cox model: a penalty path, its cross-validation, a warning."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class CoxnetWarning(UserWarning):
    """Input or result of the elastic-net Cox model that the user should know about."""


@dataclass(frozen=True)
class CoxnetPath:
    """Coefficients along a penalty path (``glmnet(family="cox")``).

    ``coef`` is ``(n_penalties, p)`` on the scale of the columns given;
    columns dropped as constant or duplicated have coefficient 0.
    ``deviance_ratio`` is glmnet's ``dev.ratio`` (fraction of the null
    deviance explained; saturated log-likelihood ``-sum_k D_k log D_k``), and
    ``null_deviance`` glmnet's ``nulldev``.
    """

    penalties: np.ndarray
    coef: np.ndarray
    n_nonzero: np.ndarray
    deviance_ratio: np.ndarray
    null_deviance: float
    l1_ratio: float
    feature_names: tuple[str, ...]
    dropped: tuple[str, ...] = ()
    standardize: bool = True
    stopped_early: bool = False


@dataclass(frozen=True)
class CoxnetCV:
    """K-fold cross-validation of the penalty (``cv.glmnet(family="cox")``).

    ``cv_mean``/``cv_se`` are cv.glmnet's ``cvm``/``cvsd``; ``penalty_min`` the
    penalty with the best mean (largest penalty among ties) and
    ``penalty_1se`` the largest penalty within one standard error of it.
    """

    penalties: np.ndarray
    cv_mean: np.ndarray
    cv_se: np.ndarray
    penalty_min: float
    penalty_1se: float
    path: CoxnetPath
    measure: str
    fold_id: np.ndarray
    fold_values: np.ndarray = field(repr=False)

    @property
    def index_min(self) -> int:
        return int(np.flatnonzero(self.penalties == self.penalty_min)[0])

    @property
    def index_1se(self) -> int:
        return int(np.flatnonzero(self.penalties == self.penalty_1se)[0])
