"""glmnet's early stop of a default penalty path, as every solver applies it.

glmnet's Fortran ``coxnet1`` stops a path when the deviance ratio exceeds
0.99 or changed by less than 0.1 % (relative) over the last 5 penalties; the
penalty that triggers the stop is kept and the later ones are not fitted. A
user-given sequence is never cut short (``early_stop`` false).
"""

from __future__ import annotations

from toolkit._jax import jax

jnp = jax.numpy

_FDEV = 1e-3  # glmnet: fdev (1e-5) * 100 in coxnet1
_DEVMAX = 0.99  # glmnet: devmax (0.999) * 0.99 / 0.999 in coxnet1
MNLAM = 5  # glmnet: mnlam, the penalties the flatness test looks back over


def deviance_stop(devs, i, dev, early_stop, mnl):
    """Record penalty i's deviance ratio; glmnet's stop: flat over ``mnl`` penalties or > 0.99."""
    devs = devs.at[i].set(dev)
    back = devs[jnp.maximum(i - mnl + 1, 0)]
    stop_now = early_stop & (i + 1 >= mnl) & (((dev - back) / dev < _FDEV) | (dev > _DEVMAX))
    return devs, stop_now
