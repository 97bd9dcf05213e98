"""file_read: read a CSV, parse it and aggregate per category, in Python's idioms.

Usage: python3 file_read.py --impl csv|pandas|pandas-arrow|polars --input PATH [--iters K]

The input is a CSV with the header ``id,a,b,c,cat`` (an int id, three floats with six decimals,
one of 8 categories). Each of the K iterations reads the whole file (from the page cache once
the first run has warmed it), parses it and computes per category the row count and the sums of
``a``, ``b`` and ``c``:

- ``csv`` (py-csv): the standard library's ``csv.reader``, ``float()`` per field, a dict of
  per-category lists.
- ``pandas`` (py-pandas): ``pd.read_csv`` (C engine) and ``groupby``.
- ``pandas-arrow`` (py-pandas-arrow): ``pd.read_csv(engine="pyarrow")`` (multi-threaded
  parsing) and the same ``groupby``.
- ``polars`` (py-polars): ``pl.scan_csv(...).group_by("cat").agg(...)`` collected (lazy, so
  unused columns are skipped; multi-threaded).

The checksum lists the categories in sorted order, for each ``count sum_a sum_b sum_c`` as
shortest round-trip floats. Sums in different orders differ in the last bits: compare with a
relative tolerance. setup_ns only covers checking that the file opens.
"""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING

from _kernel import fail, kernel_parser, run_kernel, time_setup

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

TASK = "file_read"
IMPLS = {
    "csv": "py-csv",
    "pandas": "py-pandas",
    "pandas-arrow": "py-pandas-arrow",
    "polars": "py-polars",
}
HEADER = ["id", "a", "b", "c", "cat"]
REL_TOL = 1e-9
"""Iterations of a multi-threaded reader (polars) may sum in different orders."""

Row = tuple[str, float, float, float, float]
"""(category, count, sum_a, sum_b, sum_c)"""


def format_groups(rows: Iterable[Row]) -> str:
    """The checksum: groups sorted by category, four shortest round-trip floats each."""
    return " ".join(
        " ".join(repr(float(v)) for v in (count, a, b, c))
        for _, count, a, b, c in sorted(rows, key=lambda r: r[0])
    )


def aggregate_csv(path: Path) -> str:
    """py-csv."""
    groups: dict[str, list[float]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        if next(reader, None) != HEADER:
            fail(f"{path}: expected the header {','.join(HEADER)}")
        for _id, a, b, c, cat in reader:
            g = groups.get(cat)
            if g is None:
                g = groups[cat] = [0, 0.0, 0.0, 0.0]
            g[0] += 1
            g[1] += float(a)
            g[2] += float(b)
            g[3] += float(c)
    return format_groups((k, g[0], g[1], g[2], g[3]) for k, g in groups.items())


def pandas_kernel(path: Path, engine: str | None) -> Callable[[], str]:
    """py-pandas and py-pandas-arrow: read_csv, then groupby size and sums."""
    import pandas as pd

    kwargs = {} if engine is None else {"engine": engine}

    def kernel() -> str:
        df = pd.read_csv(path, **kwargs)
        g = df.groupby("cat", sort=True)
        out = g[["a", "b", "c"]].sum()
        out.insert(0, "count", g.size())
        return format_groups((str(r.Index), r.count, r.a, r.b, r.c) for r in out.itertuples())

    return kernel


def polars_kernel(path: Path) -> Callable[[], str]:
    """py-polars: a lazy scan, group_by and agg, collected."""
    import polars as pl

    def kernel() -> str:
        out = (
            pl.scan_csv(path)
            .group_by("cat")
            .agg(
                pl.len().alias("count"),
                pl.col("a").sum(),
                pl.col("b").sum(),
                pl.col("c").sum(),
            )
            .collect()
        )
        return format_groups(out.select("cat", "count", "a", "b", "c").iter_rows())

    return kernel


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, time the kernel, print the JSON line."""
    parser = kernel_parser(__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--impl", required=True, choices=list(IMPLS), help="implementation")
    args = parser.parse_args(argv)
    path: Path = args.input
    if args.impl == "csv":
        kernel: Callable[[], str] = lambda: aggregate_csv(path)  # noqa: E731
    elif args.impl == "pandas":
        kernel = pandas_kernel(path, None)
    elif args.impl == "pandas-arrow":
        kernel = pandas_kernel(path, "pyarrow")
    else:
        kernel = polars_kernel(path)

    def check_opens() -> None:
        with path.open("rb"):
            pass

    _, setup_ns = time_setup(check_opens)
    value = kernel()  # parse errors surface here, before the clocks, as one Error: line
    n = int(sum(float(x) for x in value.split()[0::4]))
    run_kernel(
        TASK, IMPLS[args.impl], n, setup_ns, iters=args.iters, kernel=kernel, rel_tol=REL_TOL
    )


if __name__ == "__main__":
    main()
