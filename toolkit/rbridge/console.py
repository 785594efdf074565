"""What R says during a reference computation, raised as Python warnings that name it.

R speaks in three ways: conditions (``warning()``, ``message()``), text written
to its console (``print``, ``cat``, C code's ``Rprintf``/``REprintf``) and errors.
Left alone, rpy2 prints the first two raw (``R[write to console]: Warning
message: ...``), deferred to the next R call, with nothing saying which
computation they came from. Here every R call runs inside ``CAPTURE``, which
collects the conditions with ``withCallingHandlers`` (muffling them) and turns an
error into a value, while rpy2's console callbacks collect what is written.
Each piece is then raised as an :class:`RWarning` (or an
:class:`RComputationError`) whose message starts with the computation's name.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

# Called as CAPTURE(f, args): f's value, what R said (warnings and messages, in
# order) and the error's message, if any.
CAPTURE = """
function(f, args) {
  said <- character(0)
  keep <- function(restart) function(condition) {
    said <<- c(said, sub("\\n$", "", conditionMessage(condition)))
    invokeRestart(restart)
  }
  out <- tryCatch(
    list(value = withCallingHandlers(do.call(f, args),
                                     warning = keep("muffleWarning"),
                                     message = keep("muffleMessage")),
         error = NULL),
    error = function(e) list(value = NULL, error = conditionMessage(e)))
  out$said <- said
  out
}
"""


class RWarning(UserWarning):
    """A warning, message or console output of R during a reference computation.

    The message names the computation first, e.g. ``"R glmnet::glmnet (coxnet
    path, l1_ratio 0.5): from glmnet C++ code (error code -66); ..."``.
    """


class RComputationError(RuntimeError):
    """An R reference computation failed; the message names it and carries R's error."""


@contextlib.contextmanager
def console_collected() -> Iterator[list[str]]:
    """Collect what R writes to its console inside the block instead of printing it."""
    from rpy2.rinterface_lib import callbacks

    written: list[str] = []
    with (
        callbacks.obj_in_module(callbacks, "consolewrite_print", written.append),
        callbacks.obj_in_module(callbacks, "consolewrite_warnerror", written.append),
    ):
        yield written


def surface(
    out: Any, written: list[str], computation: str, to_user: Callable[[str], str] = str
) -> Any:
    """The value of a ``CAPTURE`` result; what R said raised as :class:`RWarning`.

    ``to_user`` rewrites R's text before it is shown (the safe R names of a
    data frame's columns back to the user's names).
    """
    for text in _strings(out.rx2("said")):
        _warn(f"R {computation}: {to_user(text)}")
    printed = "".join(written).strip()
    if printed:
        _warn(f"R {computation} wrote to the console: {to_user(printed)}")
    error = _strings(out.rx2("error"))
    if error:
        raise RComputationError(f"R {computation} failed: {to_user(error[0])}")
    return out.rx2("value")


def _strings(value: Any) -> list[str]:
    from rpy2.rinterface_lib.sexp import NULLType

    return [] if isinstance(value, NULLType) else [str(v) for v in value]


def _warn(message: str) -> None:
    # past surface() and rbridge's _evaluate() and call(), to the R computation's function
    warnings.warn(message, RWarning, stacklevel=5)


@contextlib.contextmanager
def noting_r_warnings() -> Iterator[list[str]]:
    """Record the :class:`RWarning` messages raised inside the block, once each, in order.

    The list is filled when the block ends (also when it raises); other
    warnings pass on as if the block had not been there.
    """
    notes: list[str] = []
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RWarning)
            yield notes
    finally:
        said = (str(w.message) for w in caught if issubclass(w.category, RWarning))
        notes.extend(dict.fromkeys(said))
        for w in caught:
            if not issubclass(w.category, RWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
