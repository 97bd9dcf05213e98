"""feature_engineering: a typical tabular feature pipeline, in pure Python, pandas and polars.

Usage: python3 feature_engineering.py --impl loop|pandas|polars --input PATH [--iters K]

Input (``datagen feature-engineering``): magic ``RPBFEAT1``, u64 LE n, then 8 columns of n
little-endian values: x0, x1, x2, x3 (float64), cat_low, cat_high, grp, t (int64). Categories
and keys are arbitrary integers (hashed by every implementation, never used as indices).

Output columns, in this order:
- ``z_x0``..``z_x3``: (x - mean) / std, sample standard deviation (ddof=1);
- ``low_<v>``, one per distinct ``cat_low`` value ascending: one-hot indicators;
- ``freq_high``: the ``cat_high`` value's count divided by n (frequency encoding);
- ``grp_mean_x0``: the group's mean of x0, joined back to each row;
- ``roll_mean_x1``: within the group, ordered by ``t``, the mean of x1 over the last 5 rows
  up to this one (fewer at the start of a group).

Checksum: per output column the sum of absolute values (a plain sum of z-scores is 0 up to
rounding), compared with a relative tolerance of 1e-9. Each timed iteration builds the whole
output table and its checksum; setup reads the file into the implementation's own table.
"""

from __future__ import annotations

from collections import defaultdict, deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _tables
from _kernel import kernel_parser, run_kernel, time_setup

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

TASK = "feature_engineering"
IMPLS = {"loop": "py-loop", "pandas": "py-pandas", "polars": "py-polars"}
MAGIC = b"RPBFEAT1"
NUMERIC = ["x0", "x1", "x2", "x3"]
CATEGORIES = ["cat_low", "cat_high", "grp", "t"]
WINDOW = 5


def read_rows(path: Path) -> int:
    """n from the header; the file length must match."""
    (n,) = _tables.read_header(path, MAGIC, 1)
    _tables.check_length(path, 1, 8 * n)
    return n


def checksum(columns: Sequence[Sequence[float]]) -> str:
    """Per column the sum of absolute values, as shortest reprs."""
    return " ".join(repr(float(sum(abs(v) for v in col))) for col in columns)


# ---------------------------------------------------------------- pure Python


def load_loop(path: Path) -> dict[str, list[Any]]:
    n = read_rows(path)
    data = memoryview(path.read_bytes())
    start = _tables.header_bytes(1)
    table: dict[str, list[Any]] = {}
    for k, name in enumerate(NUMERIC + CATEGORIES):
        code = "d" if name in NUMERIC else "q"
        table[name] = _tables.read_column(data, code, start + 8 * n * k, n).tolist()
    return table


def engineer_loop(t: dict[str, list[Any]]) -> str:
    """py-loop: lists and dicts."""
    n = len(t["t"])
    out: list[list[float]] = []
    for name in NUMERIC:
        x = t[name]
        mean = sum(x) / n
        sd = (sum((v - mean) ** 2 for v in x) / (n - 1)) ** 0.5
        out.append([(v - mean) / sd for v in x])
    low = t["cat_low"]
    for level in sorted(set(low)):
        out.append([1.0 if v == level else 0.0 for v in low])
    counts: dict[int, int] = defaultdict(int)
    for v in t["cat_high"]:
        counts[v] += 1
    out.append([counts[v] / n for v in t["cat_high"]])
    sums: dict[int, float] = defaultdict(float)
    sizes: dict[int, int] = defaultdict(int)
    for g, v in zip(t["grp"], t["x0"], strict=True):
        sums[g] += v
        sizes[g] += 1
    means = {g: sums[g] / sizes[g] for g in sums}
    out.append([means[g] for g in t["grp"]])
    order = sorted(range(n), key=t["t"].__getitem__)
    windows: dict[int, deque[float]] = defaultdict(lambda: deque(maxlen=WINDOW))
    roll = [0.0] * n
    grp, x1 = t["grp"], t["x1"]
    for i in order:
        w = windows[grp[i]]
        w.append(x1[i])
        roll[i] = sum(w) / len(w)
    out.append(roll)
    return checksum(out)


# ---------------------------------------------------------------- pandas, polars


def load_numpy_columns(path: Path) -> dict[str, Any]:
    import numpy as np

    n = read_rows(path)
    start = _tables.header_bytes(1)
    return {
        name: np.fromfile(
            path, dtype="<f8" if name in NUMERIC else "<i8", count=n, offset=start + 8 * n * k
        )
        for k, name in enumerate(NUMERIC + CATEGORIES)
    }


def engineer_pandas(df: Any) -> str:
    """py-pandas: vectorised pandas."""
    import pandas as pd

    nums = df[NUMERIC]
    out = ((nums - nums.mean()) / nums.std()).add_prefix("z_")
    out = out.join(pd.get_dummies(df["cat_low"], prefix="low", dtype="float64"))
    out["freq_high"] = df["cat_high"].map(df["cat_high"].value_counts(normalize=True))
    means = df.groupby("grp")["x0"].mean().rename("grp_mean_x0")
    out["grp_mean_x0"] = df[["grp"]].join(means, on="grp")["grp_mean_x0"]
    out["roll_mean_x1"] = (
        df.sort_values("t")
        .groupby("grp")["x1"]
        .rolling(WINDOW, min_periods=1)
        .mean()
        .reset_index(level=0, drop=True)
    )  # aligned back on the original row index
    return " ".join(repr(float(v)) for v in out.abs().sum())


def engineer_polars(df: Any) -> str:
    """py-polars: expressions on the eager DataFrame (window functions, a join, to_dummies)."""
    import polars as pl

    means = df.group_by("grp").agg(pl.col("x0").mean().alias("grp_mean_x0"))
    out = df.join(means, on="grp", how="left", maintain_order="left").select(
        *[((pl.col(c) - pl.col(c).mean()) / pl.col(c).std()).alias(f"z_{c}") for c in NUMERIC],
        pl.col("cat_low"),
        (pl.len().over("cat_high") / pl.len()).alias("freq_high"),
        pl.col("grp_mean_x0"),
        pl.col("x1")
        .rolling_mean(WINDOW, min_samples=1)
        .over("grp", order_by="t")
        .alias("roll_mean_x1"),
    )
    dummies = out.select(pl.col("cat_low")).to_dummies(separator="_")
    dummies = dummies.select(sorted(dummies.columns, key=lambda c: int(c.rsplit("_", 1)[1])))
    out = pl.concat(
        [
            out.select(pl.col("^z_.*$")),
            dummies,
            out.select("freq_high", "grp_mean_x0", "roll_mean_x1"),
        ],
        how="horizontal",
    )
    sums = out.select(pl.all().cast(pl.Float64).abs().sum()).row(0)
    return " ".join(repr(float(v)) for v in sums)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, load the input, time the kernel, print the JSON line."""
    parser = kernel_parser(__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--impl", required=True, choices=list(IMPLS), help="implementation")
    args = parser.parse_args(argv)
    path: Path = args.input
    kernel: Callable[[], str]
    if args.impl == "loop":
        table, setup_ns = time_setup(lambda: load_loop(path))
        n = len(table["t"])
        kernel = lambda: engineer_loop(table)  # noqa: E731
    elif args.impl == "pandas":
        import pandas as pd

        df, setup_ns = time_setup(lambda: pd.DataFrame(load_numpy_columns(path)))
        n = len(df)
        kernel = lambda: engineer_pandas(df)  # noqa: E731
    else:
        import polars as pl

        df, setup_ns = time_setup(lambda: pl.DataFrame(load_numpy_columns(path)))
        n = df.height
        kernel = lambda: engineer_polars(df)  # noqa: E731
    run_kernel(TASK, IMPLS[args.impl], n, setup_ns, iters=args.iters, kernel=kernel)


if __name__ == "__main__":
    main()
