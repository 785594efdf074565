"""mRMR cross-checks: mRMRe 2.1.2 mRMR.classic rules (R loop re-implementation) and pymrmr."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys

import numpy as np
import pandas as pd

from validation import check, compare, datasets

_MRMRE = "mRMRe 2.1.2 mRMR.classic rules, re-implemented as R loops (mRMRe not installable)"
_PBC = datasets.MRMR_PBC


def _pbc():
    from toolkit import rbridge

    return datasets.mrmr_pbc(rbridge.dataset("pbc"))


def _colon():
    from toolkit import rbridge

    return datasets.mrmr_colon(rbridge.dataset("colon"))


def _classic(name: str, X: pd.DataFrame, time: np.ndarray, event: np.ndarray, k: int):
    from toolkit.rbridge import mrmr as r_mrmr
    from toolkit.stats import mrmr

    ours = mrmr.rank(X, (time, event), k)
    ref = r_mrmr.mrmr_classic(X.to_numpy(float), time, event, k)
    d = mrmr.somers_d(X.to_numpy(float), time, event)
    return [
        compare("mRMR classic selection (indices)", name, ours.indices, ref["indices"], 0.0,
                reference=_MRMRE),
        compare("mRMR classic scores", name, ours.scores, ref["scores"], 1e-12, relative=True,
                reference=_MRMRE),
        compare("Somers' D (mRMRe pair rules)", name, d, ref["somers_d"], 1e-14,
                reference=_MRMRE),
    ]  # fmt: skip


@check("mrmr", fast=True)
def classic_pbc():
    X, time, event = _pbc()
    return _classic("pbc", X, time, event, 12)


@check("mrmr")
def classic_colon():
    X, time, event = _colon()
    return _classic("colon (deaths)", X, time, event, 8)


@contextlib.contextmanager
def _silent_file_descriptor_1():
    """Send file descriptor 1 to /dev/null: pymrmr's C++ prints its banner there.

    ``contextlib.redirect_stdout`` only replaces Python's ``sys.stdout``; C's
    buffered output is flushed before the descriptor is restored.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w", encoding="utf-8") as sink:
            os.dup2(sink.fileno(), 1)
            yield
    finally:
        ctypes.CDLL(None).fflush(None)
        os.dup2(saved, 1)
        os.close(saved)


@check("mrmr", fast=True)
def mid_miq_pbc():
    import pymrmr

    from toolkit.stats import mrmr

    X, time, event = _pbc()
    x = X.to_numpy(float)
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    codes = np.where(z > 0.5, 1, np.where(z < -0.5, -1, 0))
    target = ((event == 1) & (time < 2000)).astype(int)
    frame = pd.DataFrame(np.column_stack([target, codes]), columns=["y", *_PBC])
    out = []
    for method in ("MID", "MIQ"):
        ours = mrmr.rank(codes, target, 8, names=_PBC, method=method)
        with _silent_file_descriptor_1():
            ref = pymrmr.mRMR(frame, method, 8)
        out.append(
            compare(f"mRMR {method} selection (indices)", "pbc, discretised",
                    ours.indices, [_PBC.index(n) for n in ref], 0.0, reference="pymrmr 0.1.11")
        )  # fmt: skip
    return out
