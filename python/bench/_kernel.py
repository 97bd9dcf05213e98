"""Kernel-level timing shared by the Python benchmark programs (standard library only).

Measures, inside one process, the setup time (loading the input) and the time of each of K
iterations of a kernel, with ``time.perf_counter_ns`` around the kernel call only, so argument
parsing, loading and the checksum comparison are never in an iteration's time. Every iteration
must return the same checksum; the result is one JSON line, the last line of stdout::

    {"schema":1,"task":"sum_squares","impl":"py-loop","n":100000,"setup_ns":123,
     "iter_ns":[1,2,3],"checksum":"2684354560"}

(one line in reality). Any failure is a single ``Error: ...`` line on stderr and exit status 1
(exit status 2 for a bad command line).

A benchmark script in this folder uses it like this::

    from _kernel import fail, kernel_parser, run_kernel, time_setup

    args = kernel_parser(__doc__).parse_args()
    data, setup_ns = time_setup(lambda: load(args.input))
    run_kernel("task", "py-x", len(data), setup_ns, iters=args.iters, kernel=lambda: f(data))

The scripts import this module from their own folder (``sys.path[0]``), so run them as
``python3 path/to/script.py``, not with ``-I`` or ``-P``, which leave that folder off the path.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

SCHEMA = 1
"""Version of the JSON line's format."""

T = TypeVar("T")
Checksum = int | float | str
"""What a kernel returns: an exact integer, a float or an already formatted string."""


def fail(message: str) -> NoReturn:
    """Print one ``Error: ...`` line on stderr and exit with status 1."""
    sys.stdout.flush()
    print(f"Error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one ``Error: ...`` line (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        print(f"Error: {self.prog}: {message}", file=sys.stderr, flush=True)
        sys.exit(2)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def kernel_parser(
    description: str | None, default_iters: int = 5, *, with_input: bool = True
) -> argparse.ArgumentParser:
    """Return a parser with the options every kernel benchmark takes.

    ``--input PATH`` (required; left out when ``with_input`` is false, for a task without an
    input file) is the input file; ``--iters K`` (default ``default_iters``) is the number of
    timed kernel iterations. A script adds its own options (``--impl``, ...).
    """
    parser = _Parser(description=description)
    if with_input:
        parser.add_argument("--input", type=Path, required=True, metavar="PATH", help="input file")
    parser.add_argument(
        "--iters",
        type=_positive_int,
        default=default_iters,
        metavar="K",
        help=f"timed iterations of the kernel (default {default_iters})",
    )
    return parser


def time_setup(setup: Callable[[], T]) -> tuple[T, int]:
    """Call ``setup()`` once; return its result and its duration in nanoseconds.

    An ``OSError`` (missing or unreadable input) becomes an ``Error:`` line and exit 1.
    """
    start = time.perf_counter_ns()
    try:
        result = setup()
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename is not None else ""
        fail(f"cannot read input{where}: {exc.strerror or exc}")
    return result, time.perf_counter_ns() - start


def format_checksum(value: Checksum) -> str:
    """The checksum as printed: an int in decimal, a float as its shortest repr, a str as is."""
    if isinstance(value, bool):
        raise TypeError("a checksum must be an int, float or str, not bool")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return value


def floats_agree(a: str, b: str, rel_tol: float) -> bool:
    """Whether two whitespace-separated float lists agree element-wise within ``rel_tol``."""
    xs, ys = a.split(), b.split()
    if len(xs) != len(ys):
        return False
    for x, y in zip(xs, ys, strict=True):
        fx, fy = float(x), float(y)
        if abs(fx - fy) > rel_tol * max(abs(fx), abs(fy)):
            return False
    return True


def run_kernel(
    task: str,
    impl: str,
    n: int,
    setup_ns: int,
    *,
    iters: int,
    kernel: Callable[[], Checksum],
    phases: dict[str, int] | None = None,
    rel_tol: float = 0.0,
) -> list[int]:
    """Time ``iters`` calls of ``kernel()`` and print the result line; return the times (ns).

    Only the call itself is inside the clock readings. Every call must return the same
    checksum, otherwise this prints an ``Error:`` line and exits with status 1. ``phases``
    (name -> ns) are one-off phases timed apart, e.g. ``{"pool_start": ...}``. With
    ``rel_tol > 0`` the checksums are whitespace-separated floats and agree when each pair is
    within that relative tolerance (a multi-threaded float sum changes its order run to run);
    the first iteration's checksum is printed.
    """
    if iters < 1:
        fail(f"iters must be at least 1, got {iters}")
    clock = time.perf_counter_ns
    iter_ns: list[int] = []
    first: str | None = None
    for i in range(iters):
        start = clock()
        value = kernel()
        elapsed = clock() - start
        iter_ns.append(elapsed)
        checksum = format_checksum(value)
        if first is None:
            first = checksum
        elif checksum != first and not (rel_tol > 0 and floats_agree(checksum, first, rel_tol)):
            fail(
                f"{task}/{impl}: iteration {i} returned checksum {checksum}, "
                f"iteration 0 returned {first}"
            )
    assert first is not None
    print_result(task, impl, n, setup_ns=setup_ns, iter_ns=iter_ns, checksum=first, phases=phases)
    return iter_ns


def reported_name(impl: str) -> str:
    """The implementation's name as reported: ``py-x`` becomes ``pypy-x`` under PyPy, so the
    same script serves both images under the suite's names."""
    if platform.python_implementation() == "PyPy" and impl.startswith("py-"):
        return "pypy-" + impl.removeprefix("py-")
    return impl


def print_result(
    task: str,
    impl: str,
    n: int,
    *,
    setup_ns: int,
    iter_ns: list[int],
    checksum: str,
    phases: dict[str, int] | None = None,
) -> None:
    """Print the result line (the last line of stdout) and flush.

    For a program that runs its own timing loop (e.g. one that checks each iteration's output
    outside the clock); ``run_kernel`` uses it too.
    """
    record: dict[str, object] = {
        "schema": SCHEMA,
        "task": task,
        "impl": reported_name(impl),
        "n": n,
        "setup_ns": setup_ns,
        "iter_ns": iter_ns,
        "checksum": checksum,
    }
    if phases:
        record["phases_ns"] = dict(phases)
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    sys.stdout.flush()
