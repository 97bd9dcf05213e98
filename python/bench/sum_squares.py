"""sum_squares: time the exact sum of x*x over N int64 values, in five Python idioms.

Usage: python3 sum_squares.py --impl loop|builtin|numpy|numpy-sum|numba --input PATH [--iters K]

The input file holds N little-endian int64 values in [0, 2^14). Setup (``setup_ns``) loads it:
into an ``array.array('q')`` for ``loop`` (py-loop) and ``builtin`` (py-builtin), with
``np.fromfile`` for ``numpy`` (py-numpy: ``np.dot(a, a)``), ``numpy-sum`` (py-numpy-sum: the
other idiom, ``(a * a).sum()``) and ``numba`` (py-numba: an ``@njit`` loop, compiled before the
iterations and timed apart as ``phases_ns.jit``; no on-disk cache). Each of the K iterations
(``iter_ns``) runs the kernel over the loaded data; the checksum is the exact integer sum in
decimal. NumPy and Numba are imported only by the implementations that use them, and before
setup is timed: import cost belongs to the startup task.
"""

from __future__ import annotations

import sys
import time
from array import array
from typing import TYPE_CHECKING

from _kernel import fail, kernel_parser, run_kernel, time_setup

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

TASK = "sum_squares"
IMPLS = {
    "loop": "py-loop",
    "builtin": "py-builtin",
    "numpy": "py-numpy",
    "numpy-sum": "py-numpy-sum",
    "numba": "py-numba",
}
ITEM_SIZE = 8  # bytes per little-endian int64


def count_values(path: Path) -> int:
    """Number of int64 values in the file; a size that is not a multiple of 8 is an error."""
    size = path.stat().st_size
    if size % ITEM_SIZE:
        fail(f"{path}: size {size} bytes is not a multiple of {ITEM_SIZE} (int64 values)")
    return size // ITEM_SIZE


def load_array(path: Path) -> array[int]:
    """Load the file into an ``array.array('q')`` in native byte order."""
    n = count_values(path)
    data: array[int] = array("q")
    if data.itemsize != ITEM_SIZE:  # C long long is 8 bytes on every CPython platform
        fail(f"array('q') has {data.itemsize}-byte items, need {ITEM_SIZE}")
    with path.open("rb") as f:
        data.fromfile(f, n)
    if sys.byteorder != "little":
        data.byteswap()
    return data


def sum_squares_loop(data: Iterable[int]) -> int:
    """py-loop: the plain loop."""
    total = 0
    for x in data:
        total += x * x
    return total


def sum_squares_builtin(data: Iterable[int]) -> int:
    """py-builtin: builtin ``sum`` over a generator expression."""
    return sum(x * x for x in data)


def prepare_pure(
    path: Path, func: Callable[[Iterable[int]], int]
) -> tuple[int, int, Callable[[], int]]:
    """Load for a pure-Python kernel; return (n, setup_ns, kernel)."""
    data, setup_ns = time_setup(lambda: load_array(path))
    return len(data), setup_ns, lambda: func(data)


def load_numpy(path: Path):  # -> np.ndarray (NumPy is not imported at module level)
    """Load with ``np.fromfile``, timed as setup; return (array, setup_ns)."""
    import numpy as np

    def load() -> np.ndarray:
        count_values(path)
        return np.fromfile(path, dtype="<i8")

    return time_setup(load)


def prepare_numpy(path: Path) -> tuple[int, int, Callable[[], int]]:
    """Import NumPy (untimed), load with ``np.fromfile``; return (n, setup_ns, kernel)."""
    import numpy as np

    a, setup_ns = load_numpy(path)

    def kernel() -> int:
        # np.dot of two int64 vectors is one pass over the data with no temporary array;
        # (a * a).sum() would first write an N-element int64 array of squares (another 8N
        # bytes to allocate, write and read back) and then reduce it. Exact in int64 here:
        # N * (2^14 - 1)^2 < 2^63 for N < 2^35.
        return int(np.dot(a, a))

    return len(a), setup_ns, kernel


def prepare_numpy_sum(path: Path) -> tuple[int, int, Callable[[], int]]:
    """py-numpy-sum: ``(a * a).sum()``, a temporary array of squares, then a reduction."""
    a, setup_ns = load_numpy(path)
    return len(a), setup_ns, lambda: int((a * a).sum())


def prepare_numba(path: Path) -> tuple[int, int, Callable[[], int], int]:
    """py-numba: an ``@njit`` loop; return (n, setup_ns, kernel, jit_ns)."""
    import numba

    @numba.njit
    def sum_squares_numba(a):  # type: ignore[no-untyped-def]
        total = 0
        for x in a:
            total += x * x
        return total

    a, setup_ns = load_numpy(path)
    start = time.perf_counter_ns()
    sum_squares_numba(a[:1])  # compile for a 1-d int64 array before the clocks
    jit_ns = time.perf_counter_ns() - start
    return len(a), setup_ns, lambda: int(sum_squares_numba(a)), jit_ns


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, load the input, time the kernel, print the JSON line."""
    parser = kernel_parser(__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--impl", required=True, choices=list(IMPLS), help="implementation")
    args = parser.parse_args(argv)
    path: Path = args.input
    phases: dict[str, int] = {}
    if args.impl == "numpy":
        n, setup_ns, kernel = prepare_numpy(path)
    elif args.impl == "numpy-sum":
        n, setup_ns, kernel = prepare_numpy_sum(path)
    elif args.impl == "numba":
        n, setup_ns, kernel, phases["jit"] = prepare_numba(path)
    elif args.impl == "builtin":
        n, setup_ns, kernel = prepare_pure(path, sum_squares_builtin)
    else:
        n, setup_ns, kernel = prepare_pure(path, sum_squares_loop)
    run_kernel(TASK, IMPLS[args.impl], n, setup_ns, iters=args.iters, kernel=kernel, phases=phases)


if __name__ == "__main__":
    main()
