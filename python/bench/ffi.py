"""ffi: what crossing from Python into Rust costs, per call and per batch.

Usage: python3 ffi.py --impl NAME --input PATH [--iters K] [--bin PATH]

Every implementation computes the same thing, the exact sum of x*x over the N int64 values of
PATH (the sum_squares input), so all print the same checksum; they differ in how often and how
they cross a boundary:

- ``loop`` (py-loop): the plain loop, no call; the base line of the per-call figures.
- ``noop`` (py-noop) / ``pyo3-noop`` (py-rs-pyo3-noop): the loop plus one call of a no-op
  function per element, Python ``def`` vs ``rpb_native.noop``.
- ``call`` (py-call) / ``pyo3-call`` (py-rs-pyo3-call): ``total = add(total, x * x)`` per
  element, Python ``def add`` vs ``rpb_native.add`` (i64, i64) -> i64.
  Per-call cost = (iteration time - py-loop's) / N.
- ``numpy`` (py-numpy): ``np.dot(a, a)`` on the array from ``np.fromfile``.
- ``pyo3`` (py-rs-pyo3): ``rpb_native.sum_squares(a)`` on the same array: one call, a zero-copy
  read-only view, the GIL released around the Rust loop. Against py-numpy over N: the size where
  the call's fixed cost stops mattering.
- ``subprocess`` (py-rs-subprocess): one batch per iteration: spawn ``--bin`` (default
  /opt/rpb/bin/ffi_pipe), write the N values (8N bytes) to its stdin, read the sum from its
  stdout. Spawn plus transfer.

Setup loads the file: ``array('q')`` for the loops, ``np.fromfile`` for numpy/pyo3, the raw bytes
for subprocess. Libraries are imported before setup is timed.
"""

from __future__ import annotations

import subprocess
from array import array
from pathlib import Path
from typing import TYPE_CHECKING

from _kernel import fail, kernel_parser, run_kernel, time_setup

if TYPE_CHECKING:
    from collections.abc import Callable

TASK = "ffi"
IMPLS = {
    "loop": "py-loop",
    "noop": "py-noop",
    "pyo3-noop": "py-rs-pyo3-noop",
    "call": "py-call",
    "pyo3-call": "py-rs-pyo3-call",
    "numpy": "py-numpy",
    "pyo3": "py-rs-pyo3",
    "subprocess": "py-rs-subprocess",
}
DEFAULT_BIN = "/opt/rpb/bin/ffi_pipe"
ITEM_SIZE = 8


def load_bytes(path: Path) -> bytes:
    """The file's bytes; a length that is not a multiple of 8 is an error."""
    data = path.read_bytes()
    if len(data) % ITEM_SIZE:
        fail(f"{path}: size {len(data)} bytes is not a multiple of {ITEM_SIZE} (int64 values)")
    return data


def load_array(path: Path) -> array[int]:
    """The values as ``array('q')`` (native order; the file is little-endian)."""
    import sys

    data: array[int] = array("q")
    data.frombytes(load_bytes(path))
    if sys.byteorder != "little":
        data.byteswap()
    return data


def py_noop() -> None:
    """The Python no-op."""


def py_add(a: int, b: int) -> int:
    """The Python add."""
    return a + b


def loop(data: array[int]) -> int:
    """py-loop."""
    total = 0
    for x in data:
        total += x * x
    return total


def with_noop(data: array[int], noop: Callable[[], object]) -> int:
    """py-noop / py-rs-pyo3-noop: one call of ``noop`` per element."""
    total = 0
    for x in data:
        noop()
        total += x * x
    return total


def with_add(data: array[int], add: Callable[[int, int], int]) -> int:
    """py-call / py-rs-pyo3-call: the running sum through ``add``."""
    total = 0
    for x in data:
        total = add(total, x * x)
    return total


def subprocess_kernel(binary: str, payload: bytes) -> int:
    """py-rs-subprocess: one process per batch, data through a pipe."""
    try:
        proc = subprocess.run([binary], input=payload, capture_output=True, check=False)
    except OSError as exc:
        fail(f"cannot run {binary}: {exc.strerror or exc}. Pass the ffi_pipe binary with --bin")
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()
        why = tail[-1] if tail else "no message"
        fail(f"{binary} exited with status {proc.returncode}: {why}")
    try:
        return int(proc.stdout)
    except ValueError:
        fail(f"{binary} printed {proc.stdout[:80]!r}, not an integer")


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, load the input, time the kernel, print the JSON line."""
    parser = kernel_parser(__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--impl", required=True, choices=list(IMPLS), help="implementation")
    parser.add_argument(
        "--bin", default=DEFAULT_BIN, metavar="PATH", help=f"subprocess binary ({DEFAULT_BIN})"
    )
    args = parser.parse_args(argv)
    path: Path = args.input
    impl: str = args.impl
    kernel: Callable[[], int]
    if impl in ("numpy", "pyo3"):
        import numpy as np

        if impl == "pyo3":
            import rpb_native

        def load() -> np.ndarray:
            load_bytes(path)  # the same size check
            return np.fromfile(path, dtype="<i8")

        a, setup_ns = time_setup(load)
        n = len(a)
        if impl == "numpy":
            kernel = lambda: int(np.dot(a, a))  # noqa: E731
        else:
            kernel = lambda: rpb_native.sum_squares(a)  # noqa: E731
    elif impl == "subprocess":
        payload, setup_ns = time_setup(lambda: load_bytes(path))
        n = len(payload) // ITEM_SIZE
        binary: str = args.bin
        kernel = lambda: subprocess_kernel(binary, payload)  # noqa: E731
    else:
        noop: Callable[[], object] = py_noop
        add: Callable[[int, int], int] = py_add
        if impl.startswith("pyo3-"):
            import rpb_native

            noop, add = rpb_native.noop, rpb_native.add
        data, setup_ns = time_setup(lambda: load_array(path))
        n = len(data)
        if impl == "loop":
            kernel = lambda: loop(data)  # noqa: E731
        elif impl.endswith("noop"):
            kernel = lambda: with_noop(data, noop)  # noqa: E731
        else:
            kernel = lambda: with_add(data, add)  # noqa: E731
    run_kernel(TASK, IMPLS[impl], n, setup_ns, iters=args.iters, kernel=kernel)


if __name__ == "__main__":
    main()
