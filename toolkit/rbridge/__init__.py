"""rpy2 glue: R reference computations for the cross-checks.

Data always travel to R as R objects (numeric/integer/character vectors and
data frames built from them), never pasted into R source. R code strings here
are fixed function bodies that take those objects as arguments.

Every call runs inside `toolkit.rbridge.console`'s capture: what R says (its
warnings, messages and console output) comes back as an `RWarning` naming the
computation, an R error as an `RComputationError`; nothing is printed raw.

Debian's R is 4.2.2; rpy2 3.6 needs R >= 4.4 (it fails to load with
``undefined symbol: R_getVar``), so sigkit pins rpy2 to 3.5.x.

Column names never reach R: a call that builds a data frame or formula renames
the columns with `SafeNames` (``sigkit_v1``, ...) and maps R's answer back.

R reference computations live in one module per area beside this one
(`toolkit.rbridge.survival`, `.coxnet`, ...), built on the glue here.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from toolkit.rbridge import console
from toolkit.rbridge.console import RComputationError, RWarning, noting_r_warnings
from toolkit.rbridge.names import SafeNames

__all__ = [
    "RComputationError",
    "RUnavailableError",
    "RWarning",
    "SafeNames",
    "call",
    "data_frame",
    "dataset",
    "factor",
    "noting_r_warnings",
    "r_available",
    "r_function",
    "require",
    "to_py",
    "to_r",
]

# R package -> Debian package that brings it.
DEBIAN_PACKAGES: dict[str, str] = {
    "survival": "r-cran-survival",
    "rms": "r-cran-rms",
    "glmnet": "r-cran-glmnet",
    "MASS": "r-cran-mass",
    "psych": "r-cran-psych",
    "riskRegression": "r-cran-riskregression",
    "mice": "r-cran-mice",
    "stats": "r-base-core",
}


class RUnavailableError(RuntimeError):
    """R, rpy2 or an R package needed for a cross-check is missing."""


@functools.cache
def r_available() -> bool:
    """True when R and rpy2 load in this process."""
    if shutil.which("R") is None:
        return False
    try:
        import rpy2.robjects  # noqa: F401
    except Exception:
        return False
    return True


def _robjects():
    if not r_available():
        raise RUnavailableError(
            "R (with rpy2 3.5.x) is not available. Install it with "
            "'apt-get install r-base-core' (or run 'make test', which does), "
            "then 'pip install \"rpy2>=3.5.13,<3.6\"'."
        )
    import rpy2.robjects as ro

    _keep_child_pythons_on_our_libpython()
    return ro


@functools.cache
def _keep_child_pythons_on_our_libpython() -> None:
    """Put this interpreter's LIBDIR first on LD_LIBRARY_PATH after R has started.

    Embedded R (rpy2) prepends R's library folders and /usr/lib/x86_64-linux-gnu
    to LD_LIBRARY_PATH. Every Python started afterwards (Dask workers, the report's
    Jupyter kernel) then finds the system's libpython of the same minor version
    before ours, and its extension modules (_ssl, pyarrow) fail to load: Dask's
    nanny "failed to start". R itself is already loaded in this process, so
    reordering the variable changes nothing for it.
    """
    import sysconfig

    libdir = sysconfig.get_config_var("LIBDIR")
    current = os.environ.get("LD_LIBRARY_PATH", "")
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and libdir and current:
        parts = [p for p in current.split(os.pathsep) if p and p != libdir]
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join([libdir, *parts])


@functools.cache
def require(package: str) -> None:
    """Load an R package or raise naming the Debian package that brings it."""
    ro = _robjects()
    loaded = call(
        ro.r["requireNamespace"],
        package,
        quietly=True,
        computation=f'requireNamespace("{package}")',
    )
    ok = bool(loaded[0])
    if not ok:
        deb = DEBIAN_PACKAGES.get(package, f"r-cran-{package.lower()}")
        raise RUnavailableError(
            f"R package '{package}' is not installed; install the Debian package "
            f"'{deb}' (apt-get install {deb})."
        )


def r_function(code: str, packages: Sequence[str] = ()):
    """Compile an R function from a fixed code string, after loading `packages`."""
    ro = _robjects()
    for package in packages:
        require(package)
    return ro.r(code)


def to_r(value: Any):
    """Convert numpy arrays, pandas objects and scalars to R objects; R objects pass as is."""
    from rpy2.rinterface_lib.sexp import Sexp

    if isinstance(value, Sexp):
        return value
    if isinstance(value, pd.DataFrame):
        return data_frame(value)
    if isinstance(value, pd.Categorical) or (
        isinstance(value, pd.Series) and isinstance(value.dtype, pd.CategoricalDtype)
    ):
        return factor(value)
    if isinstance(value, (pd.Series, list, tuple)):
        value = np.asarray(value)
    if isinstance(value, np.ndarray):
        return _array_to_r(value)
    return _scalar_to_r(value)


def _array_to_r(value: np.ndarray):
    ro = _robjects()
    if value.ndim == 2:
        vec = _array_to_r(value.ravel(order="F"))
        return ro.r["matrix"](vec, nrow=value.shape[0], ncol=value.shape[1])
    if value.dtype.kind == "b":
        return ro.BoolVector(value.tolist())
    if value.dtype.kind in "iu":
        return ro.IntVector(value.astype(int).tolist())
    if value.dtype.kind == "f":
        return ro.FloatVector(value.astype(float).tolist())
    return ro.StrVector([str(v) for v in value.tolist()])


def _scalar_to_r(value: Any):
    ro = _robjects()
    if value is None:
        return ro.NULL
    # bool before int: bool is a subclass of int.
    for kinds, vector, cast in (
        ((bool, np.bool_), ro.BoolVector, bool),
        ((int, np.integer), ro.IntVector, int),
        ((float, np.floating), ro.FloatVector, float),
        ((str,), ro.StrVector, str),
    ):
        if isinstance(value, kinds):
            return vector([cast(value)])
    raise TypeError(f"cannot pass {type(value).__name__} to R")


def factor(values: pd.Series | pd.Categorical):
    """An R factor with the same levels, in the same order, as a pandas categorical."""
    ro = _robjects()
    cat = pd.Categorical(values)
    levels = [str(v) for v in cat.categories]
    strings = ro.StrVector([str(v) if v == v else ro.NA_Character for v in cat.astype(object)])
    return ro.r["factor"](strings, levels=ro.StrVector(levels))


def data_frame(frame: pd.DataFrame):
    """An R data.frame built column by column (categoricals become factors)."""
    ro = _robjects()
    columns = {str(name): to_r(frame[name]) for name in frame.columns}
    return ro.r["data.frame"](**columns, check_names=False, stringsAsFactors=False)


def to_py(value: Any) -> Any:
    """Convert an R result (vector, matrix, named list) to numpy/dict."""
    ro = _robjects()
    from rpy2.rinterface_lib.sexp import NULLType

    if isinstance(value, NULLType):
        return None
    if isinstance(value, ro.vectors.ListVector):
        names = list(value.names) if value.names is not ro.NULL else None
        items = [to_py(v) for v in value]
        return dict(zip(names, items, strict=True)) if names else items
    if isinstance(value, ro.vectors.DataFrame):
        return {str(k): to_py(v) for k, v in value.items()}
    if isinstance(value, ro.vectors.Matrix):
        dims = tuple(int(d) for d in ro.r["dim"](value))
        return np.asarray(value).reshape(dims, order="F")
    if isinstance(value, ro.vectors.StrVector):
        return [str(v) for v in value]
    if isinstance(value, ro.vectors.Vector):
        return np.asarray(value)
    return value


def call(
    fn,
    *args: Any,
    computation: str = "function",
    safe_names: SafeNames | None = None,
    **kwargs: Any,
) -> Any:
    """Call an R function with Python arguments converted by `to_r`; return `to_py`.

    ``computation`` names the call in what R says during it: each R warning,
    message and console output is raised as an :class:`RWarning` starting
    ``"R <computation>: "``, an R error as an :class:`RComputationError`.
    With ``safe_names`` (the columns the arguments were renamed with), R's
    words are shown with the user's names. Keyword arguments go to R under
    their names as given.
    """
    r_args = [to_r(a) for a in args]
    r_kwargs = {k: to_r(v) for k, v in kwargs.items()}
    to_user = safe_names.user if safe_names is not None else str
    return to_py(_evaluate(fn, r_args, r_kwargs, computation, to_user))


@functools.cache
def _capture():
    return _robjects().r(console.CAPTURE)


def _evaluate(fn, r_args: list, r_kwargs: dict[str, Any], computation: str, to_user=str):
    """``fn(*r_args, **r_kwargs)`` in R inside the capture; R's own value."""
    ro = _robjects()
    arguments = ro.r["list"](*r_args, **r_kwargs)
    with console.console_collected() as written:
        out = _capture()(fn, arguments)
    return console.surface(out, written, computation, to_user)


def dataset(name: str, package: str = "survival") -> pd.DataFrame:
    """A dataset that ships with an R package, as a pandas DataFrame.

    Factors become pandas categoricals with R's level order; R's NA becomes NaN.
    """
    ro = _robjects()
    require(package)
    getter = ro.r("function(name, package) as.data.frame(getExportedValue(package, name))")
    frame = _evaluate(getter, [to_r(name), to_r(package)], {}, f"{package}::{name} (dataset)")
    out: dict[str, Any] = {}
    for column, vector in frame.items():
        out[str(column)] = _column_to_pandas(ro, vector)
    return pd.DataFrame(out)


def _column_to_pandas(ro, vector) -> Any:
    if ro.r["is.factor"](vector)[0]:
        levels = [str(v) for v in ro.r["levels"](vector)]
        codes = np.asarray(ro.r["as.integer"](vector))
        codes = np.where(codes == ro.NA_Integer, -1, codes - 1)
        return pd.Categorical.from_codes(codes, categories=levels)
    if isinstance(vector, ro.vectors.StrVector):
        return [None if v is ro.NA_Character else str(v) for v in vector]
    numeric = np.asarray(ro.r["as.numeric"](vector), dtype=float)
    return numeric
