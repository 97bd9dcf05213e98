"""batch_scoring: a batch job that scores N rows with a logistic regression and writes the scores.

Usage: python3 batch_scoring.py --impl loop|numpy|polars|pyo3 --input PATH --out-dir DIR
       [--iters K]

Input (``datagen batch-scoring``): magic ``RPBSCORE``, u64 LE n and d (= 32), then n rows of 32
float64 values (row-major). Model: weights w_j = sin(j + 1), bias 0.1,
``score = 1 / (1 + exp(-(0.1 + sum_j w_j x_j)))``. Each timed iteration scores every row and
writes the n scores as little-endian float64 to ``DIR/batch_scoring-<impl>.f64`` (overwritten
each iteration); the checksum is the sum of the scores and the row count. Setup reads the input
into the implementation's own structure (``array('d')``, a NumPy array, a polars DataFrame).

- ``loop`` (py-loop): pure Python, row by row.
- ``numpy`` (py-numpy): ``X @ w``, ``np.exp``, ``ndarray.tofile``.
- ``polars`` (py-polars): one ``select`` over the 32 columns (``sum_horizontal``), the result
  column written through ``to_numpy().tofile``.
- ``pyo3`` (py-rs-pyo3): ``rpb_native.batch_scores(X)`` (zero-copy view, GIL released), then
  ``tofile``.
"""

from __future__ import annotations

import math
from array import array
from operator import mul
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _tables
from _kernel import fail, kernel_parser, run_kernel, time_setup

if TYPE_CHECKING:
    from collections.abc import Callable

TASK = "batch_scoring"
IMPLS = {"loop": "py-loop", "numpy": "py-numpy", "polars": "py-polars", "pyo3": "py-rs-pyo3"}
MAGIC = b"RPBSCORE"
FEATURES = 32
BIAS = 0.1
WEIGHTS = [math.sin(j + 1) for j in range(FEATURES)]


def read_rows(path: Path) -> int:
    """n from the header; d must be 32 and the file length must match."""
    n, d = _tables.read_header(path, MAGIC, 2)
    if d != FEATURES:
        fail(f"{path}: {d} features per row, expected {FEATURES}")
    _tables.check_length(path, 2, n * d)
    return n


def checksum(total: float, n: int) -> str:
    return f"{float(total)!r} {float(n)!r}"


def load_loop(path: Path) -> array[float]:
    n = read_rows(path)
    return _tables.read_column(path.read_bytes(), "d", _tables.header_bytes(2), n * FEATURES)


def score_loop(x: array[float], out: Path) -> str:
    """py-loop."""
    w = WEIGHTS
    scores = array("d")
    for i in range(0, len(x), FEATURES):
        z = BIAS + sum(map(mul, w, x[i : i + FEATURES]))
        scores.append(1.0 / (1.0 + math.exp(-z)))
    with out.open("wb") as f:
        scores.tofile(f)
    return checksum(sum(scores), len(scores))


def load_matrix(path: Path) -> Any:
    import numpy as np

    n = read_rows(path)
    x = np.fromfile(path, dtype="<f8", count=n * FEATURES, offset=_tables.header_bytes(2))
    return x.reshape(n, FEATURES)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, load the input, time the kernel, print the JSON line."""
    parser = kernel_parser(__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--impl", required=True, choices=list(IMPLS), help="implementation")
    parser.add_argument("--out-dir", type=Path, required=True, metavar="DIR", help="output folder")
    args = parser.parse_args(argv)
    path: Path = args.input
    if not args.out_dir.is_dir():
        fail(f"--out-dir {args.out_dir}: not a directory")
    impl_name = IMPLS[args.impl]
    out: Path = args.out_dir / f"{TASK}-{impl_name}.f64"
    kernel: Callable[[], str]
    if args.impl == "loop":
        x, setup_ns = time_setup(lambda: load_loop(path))
        n = len(x) // FEATURES
        kernel = lambda: score_loop(x, out)  # noqa: E731
    elif args.impl in ("numpy", "pyo3"):
        import numpy as np

        if args.impl == "pyo3":
            import rpb_native
        m, setup_ns = time_setup(lambda: load_matrix(path))
        n = len(m)
        w = np.array(WEIGHTS)

        def kernel() -> str:
            if args.impl == "numpy":
                scores = 1.0 / (1.0 + np.exp(-(m @ w + BIAS)))
            else:
                scores = rpb_native.batch_scores(m)
            scores.tofile(out)
            return checksum(scores.sum(), len(scores))

    else:
        import polars as pl

        names = [f"x{j}" for j in range(FEATURES)]
        df, setup_ns = time_setup(lambda: pl.from_numpy(load_matrix(path), schema=names))
        n = df.height
        logit = pl.sum_horizontal(pl.col(c) * w for c, w in zip(names, WEIGHTS, strict=True)) + BIAS
        expr = (1.0 / (1.0 + (-logit).exp())).alias("score")

        def kernel() -> str:
            scores = df.select(expr).to_series()
            scores.to_numpy().tofile(out)
            return checksum(scores.sum(), scores.len())

    run_kernel(TASK, impl_name, n, setup_ns, iters=args.iters, kernel=kernel)


if __name__ == "__main__":
    main()
