"""io_impact: sum_squares with each element's x*x written out as a decimal line.

Usage: python3 io_impact.py --impl print|print-buf|write-buf|file-unbuf|file-buf --input PATH
       [--out-dir DIR] [--iters K]

The input is the sum_squares file (N little-endian int64 values). Each of the K iterations writes
every ``x*x`` as a line ("unbuffered" here means: flushed after every line, so one ``write(2)``
per line, the same as Rust's line-buffered ``println!``):

- ``print`` (py-print): ``print(v, flush=True)`` per element: what ``python3 -u`` or a terminal
  gives, one write per line.
- ``print-buf`` (py-print-buf): ``print(v)`` per element with Python's default buffering of a
  pipe or file (a block buffer of ``io.DEFAULT_BUFFER_SIZE``), flushed at the end.
- ``write-buf`` (py-write-buf): lines joined in chunks of 2^16 elements, one
  ``sys.stdout.write`` per chunk.
- ``file-unbuf`` (py-file-unbuf): ``DIR/<file>`` opened as text, ``f.write(line)`` then
  ``f.flush()`` per line (what someone who wants each line on disk-cache at once writes).
- ``file-buf`` (py-file-buf): ``DIR/<file>`` opened as text with default buffering, one
  ``f.write(line)`` per element.

A file is created (truncated) in every iteration and removed at the end; it is not fsynced.
The checksum, computed outside the timed region, is ``"BYTES CRC"``: the bytes one iteration
writes and their CRC-32 (``zlib.crc32``) in 8 lower-case hex digits; for a file from the file
read back after every iteration, for stdout from the same lines formatted again in memory.
The JSON line is the last line of stdout.
"""

from __future__ import annotations

import os
import sys
import time
import zlib
from array import array
from pathlib import Path
from typing import TYPE_CHECKING

from _kernel import fail, kernel_parser, print_result, time_setup

if TYPE_CHECKING:
    from collections.abc import Callable

TASK = "io_impact"
IMPLS = {
    "print": "py-print",
    "print-buf": "py-print-buf",
    "write-buf": "py-write-buf",
    "file-unbuf": "py-file-unbuf",
    "file-buf": "py-file-buf",
}
FILE_IMPLS = {"file-unbuf", "file-buf"}
ITEM_SIZE = 8
CHUNK = 1 << 16


def load_array(path: Path) -> array[int]:
    """The file as an ``array.array('q')``; a size not a multiple of 8 is an error."""
    size = path.stat().st_size
    if size % ITEM_SIZE:
        fail(f"{path}: size {size} bytes is not a multiple of {ITEM_SIZE} (int64 values)")
    data: array[int] = array("q")
    with path.open("rb") as f:
        data.fromfile(f, size // ITEM_SIZE)
    if sys.byteorder != "little":
        data.byteswap()
    return data


def print_each(data: array[int]) -> None:
    """py-print: ``print`` per element, flushed per line."""
    for x in data:
        print(x * x, flush=True)


def print_buffered(data: array[int]) -> None:
    """py-print-buf: ``print`` per element into stdout's block buffer."""
    for x in data:
        print(x * x)
    sys.stdout.flush()


def write_chunks(data: array[int]) -> None:
    """py-write-buf: one ``write`` of joined lines per chunk of elements."""
    write = sys.stdout.write
    for start in range(0, len(data), CHUNK):
        write("".join([f"{x * x}\n" for x in data[start : start + CHUNK]]))
    sys.stdout.flush()


def file_unbuffered(path: Path, data: array[int]) -> None:
    """py-file-unbuf: write and flush each line."""
    with path.open("w", encoding="ascii") as f:
        for x in data:
            f.write(f"{x * x}\n")
            f.flush()


def file_buffered(path: Path, data: array[int]) -> None:
    """py-file-buf: write each line into the file object's buffer."""
    with path.open("w", encoding="ascii") as f:
        for x in data:
            f.write(f"{x * x}\n")


def render(data: array[int]) -> bytes:
    """One iteration's output, formatted in memory (for the stdout checksum)."""
    return "".join([f"{x * x}\n" for x in data]).encode("ascii")


def checksum(text: bytes) -> str:
    return f"{len(text)} {zlib.crc32(text):08x}"


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, load the input, time the writes, print the JSON line."""
    parser = kernel_parser(__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--impl", required=True, choices=list(IMPLS), help="implementation")
    parser.add_argument("--out-dir", type=Path, metavar="DIR", help="folder for the file sinks")
    args = parser.parse_args(argv)
    impl = IMPLS[args.impl]
    out: Path | None = None
    if args.impl in FILE_IMPLS:
        if args.out_dir is None:
            fail(f"--impl {args.impl} writes a file: give --out-dir DIR")
        if not args.out_dir.is_dir():
            fail(f"--out-dir {args.out_dir}: not a directory")
        out = args.out_dir / f"io_impact-{impl}-{os.getpid()}.txt"
    data, setup_ns = time_setup(lambda: load_array(args.input))

    write: Callable[[], None]
    if args.impl == "print":
        write = lambda: print_each(data)  # noqa: E731
    elif args.impl == "print-buf":
        write = lambda: print_buffered(data)  # noqa: E731
    elif args.impl == "write-buf":
        write = lambda: write_chunks(data)  # noqa: E731
    elif args.impl == "file-unbuf":
        write = lambda: file_unbuffered(out, data)  # type: ignore[arg-type]  # noqa: E731
    else:
        write = lambda: file_buffered(out, data)  # type: ignore[arg-type]  # noqa: E731

    clock = time.perf_counter_ns
    iter_ns: list[int] = []
    first: str | None = None
    try:
        for i in range(args.iters):
            start = clock()
            try:
                write()
            except OSError as exc:
                fail(f"cannot write to {out or 'stdout'}: {exc.strerror or exc}")
            iter_ns.append(clock() - start)
            # Untimed: the checksum of what this iteration wrote.
            if out is not None:
                got = checksum(out.read_bytes())
            elif first is None:
                got = checksum(render(data))
            else:
                continue  # stdout: the same lines as iteration 0, not re-read
            if first is None:
                first = got
            elif got != first:
                fail(f"checksum mismatch: iteration {i} wrote {got}, iteration 0 wrote {first}")
    finally:
        if out is not None:
            out.unlink(missing_ok=True)
    assert first is not None
    print_result(TASK, impl, len(data), setup_ns=setup_ns, iter_ns=iter_ns, checksum=first)


if __name__ == "__main__":
    main()
