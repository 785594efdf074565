"""Elastic-net Cox regression: penalty path, k-fold cross-validation, prediction.

The objective is glmnet 4.1-6's ``family="cox"`` (Breslow ties), minimised over
the coefficients ``b`` at each penalty ``lambda``::

    -loglik(b) / n  +  lambda * sum_j v_j * ((1 - a) / 2 * b_j**2 + a * |b_j|)

    loglik(b) = sum_i w_i d_i eta_i - sum_k D_k log( sum_{j: t_j >= t_k} w_j exp(eta_j) )

with ``eta = X b``, observation weights ``w`` scaled to sum to n, ``D_k`` the
weighted number of deaths at the k-th distinct death time, ``a = l1_ratio``
(glmnet's ``alpha``), ``lambda = penalty`` and penalty factors ``v`` scaled to
sum to p (the number of columns given, as glmnet's ``vp * ni / sum(vp)``).
With ``standardize=True`` the columns are scaled by their weighted 1/n
standard deviation before fitting and the coefficients are returned on the
original scale (glmnet's ``standardize=TRUE``).

The default penalty sequence is glmnet's (``_sequence``: 100 penalties from
the smallest that keeps every penalised coefficient 0 down to ``min_ratio``
times it). Like glmnet, the path stops early when the deviance ratio exceeds
0.99 or changed by less than 0.1 % (relative) over the last 5 penalties; a
user-given sequence is never cut short. ``CoxnetPath.penalties`` has the
penalties actually fitted.

The algorithms are ours, not glmnet's (``_solvers``): a semismooth Newton
method in the linear predictor for p > n, preconditioned steps with a reused
Hessian for n > p, proximal Newton on the active columns otherwise and when
either of those fails to converge. All converge to the minimiser that
glmnet's coordinate descent approaches, to ~1e-10 on the standardised scale;
each path is one ``jax.jit`` program and the cross-validation folds are that
program mapped over folds, one compiled program.

Deliberate differences from R:

- Tied censored and death times: a censored time equal to a death time is in
  that death's risk set (Breslow, as survival::coxph). glmnet means the same
  (it adds ``100 * .Machine$double.eps`` to censored times) but for times above
  about 100 (days, say) the addition is lost in rounding and glmnet's unstable
  sort decides; on pbc in days its coefficients then move by up to 2e-4. With
  times in months or years glmnet and this module agree to 1e-6.
- Constant columns are dropped with a warning (glmnet drops them silently);
  duplicated columns are also dropped with a warning, keeping the first copy
  (glmnet keeps both and splits the coefficient). Dropped columns get
  coefficient 0. Missing values raise an error naming rows and columns.
- Cross-validation folds drawn from ``seed`` are stratified by event status
  (numpy's generator, not R's ``sample``); pass ``fold_id`` to reproduce
  cv.glmnet.

Layout: ``_data`` (input checks, sorting, standardisation), ``_likelihood``
(the objective and its derivatives), ``_sequence`` (the penalty sequence),
``_solvers`` (one module per solver; the choice between them in its
``__init__``), ``_path`` (:func:`path`, :func:`predict`), ``_cv``
(:func:`cv`), ``_results`` (the result records).
"""

from toolkit.stats.coxnet._cv import cv
from toolkit.stats.coxnet._path import interpolate, path, penalty_sequence, predict
from toolkit.stats.coxnet._results import CoxnetCV, CoxnetPath, CoxnetWarning
from toolkit.stats.coxnet._sequence import default_penalties

__all__ = [
    "CoxnetCV",
    "CoxnetPath",
    "CoxnetWarning",
    "cv",
    "default_penalties",
    "interpolate",
    "path",
    "penalty_sequence",
    "predict",
]
