"""Active-column buffers: the sizes a compiled program switches between, and a memo of sizes.

jax compiles fixed shapes, so a solver that works on the active columns only
gathers them into a buffer of fixed size and runs the branch (``lax.switch``)
whose size holds them; the columns beyond the active ones are padding. The
active-set solver's largest buffer ``k`` is a static argument of its program:
:class:`BufferSizes` remembers, per problem, the ``k`` that sufficed.
"""

from __future__ import annotations

from collections.abc import Hashable


def bucket_sizes(k: int) -> tuple[int, ...]:
    """Active-set buffer sizes tried in turn: 64, 128, 256, 384, 512, 768, ... up to ``k``.

    Fewer, larger sizes trace and compile faster; below 64 columns a Newton
    step costs little whatever the buffer; above 256 (where a step costs
    O(n^2 K) or more) the sizes grow by 1.5 and 4/3 to pad less.
    """
    sizes = []
    size = 64
    while size < k:
        sizes.append(size)
        if size < 256:
            size *= 2
        else:
            size = size * 4 // 3 if size % 3 == 0 else size * 3 // 2
    return (*sizes, k)


class BufferSizes:
    """The largest active-column buffer that sufficed, per problem: a memo for the process.

    The active-set solver starts from a generous buffer and doubles it (a new
    compilation) while the active set overflows it. Keyed by the program and
    the problem's shapes (rows, columns, penalties), the size that sufficed is
    where the next fit of that shape starts, so that a repeated fit (the CV
    folds, several l1_ratios, benchmarks) compiles and runs once. A fit that
    starts from a larger buffer pads its Newton systems more, which can move
    the last bits of its result; the memo only ever grows.

    Lifetime: the one instance, :data:`BUFFERS`, lives as long as the process
    (as jax's own cache of compiled programs) and is used by
    :mod:`toolkit.stats.coxnet._solvers.active_set` alone; :meth:`clear`
    forgets every size (the cold-start benchmarks).
    """

    def __init__(self) -> None:
        self._sizes: dict[Hashable, int] = {}

    def start(self, key: Hashable, k: int) -> int:
        """The buffer to start a fit from: ``k``, or the larger one that sufficed before."""
        return max(k, self._sizes.get(key, 0))

    def sufficed(self, key: Hashable, k: int) -> None:
        """Remember that a buffer of ``k`` columns sufficed for ``key``."""
        self._sizes[key] = k

    def clear(self) -> None:
        """Forget every size (the next fits start from their generous first buffer)."""
        self._sizes.clear()


BUFFERS = BufferSizes()
