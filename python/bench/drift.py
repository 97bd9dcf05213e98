"""drift: per-feature drift metrics between a reference and a current sample.

Usage: python3 drift.py --impl loop|numpy|scipy|pyo3 --input PATH [--iters K]

Input (``datagen drift``): magic ``RPBDRIFT``, u64 LE F, n_ref, n_cur, then the reference as F
rows of n_ref float64 (feature-major), then the current sample as F rows of n_cur float64.

Per feature: PSI on the reference's decile bins (NumPy's default ``linear`` quantiles at k/10;
a value x is in bin #{edges <= x}; an empty bin's proportion is taken as 1e-4), the two-sample
KS statistic, the Wasserstein-1 distance, and the Jensen-Shannon distance (natural log) of the
same bins' proportions. The checksum lists PSI KS W1 JS for feature 0, then feature 1, ...

Fitting (sorting the reference, its decile edges and bin proportions) is done once, timed apart
and reported as ``phases_ns.fit``; each timed iteration scores the current sample against the
fitted reference. Setup (``setup_ns``) reads the file.

- ``loop`` (py-loop): pure Python: ``sorted``, ``bisect``, one merge walk for KS and W1.
- ``numpy`` (py-numpy): vectorised NumPy on the sorted reference (``np.quantile``,
  ``np.searchsorted``, a stable sort to merge the two sorted samples).
- ``scipy`` (py-scipy): what a SciPy user writes: ``scipy.stats.ks_2samp``,
  ``scipy.stats.wasserstein_distance`` and ``scipy.spatial.distance.jensenshannon`` per feature
  (these take raw samples, so they sort the reference again in every iteration), PSI in NumPy.
- ``pyo3`` (py-rs-pyo3): ``rpb_native.DriftReference(reference)`` fits in Rust,
  ``.score(current)`` scores every feature one after the other (GIL released, zero-copy views).
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _tables
from _kernel import fail, kernel_parser, run_kernel, time_setup

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

TASK = "drift"
IMPLS = {"loop": "py-loop", "numpy": "py-numpy", "scipy": "py-scipy", "pyo3": "py-rs-pyo3"}
MAGIC = b"RPBDRIFT"
BINS = 10
EMPTY_BIN = 1e-4


def read_shape(path: Path) -> tuple[int, int, int]:
    """(F, n_ref, n_cur) from the header; the file length must match."""
    f, n_ref, n_cur = _tables.read_header(path, MAGIC, 3)
    if not (f and n_ref and n_cur):
        fail(f"{path}: empty sample in header ({f}, {n_ref}, {n_cur})")
    _tables.check_length(path, 3, f * (n_ref + n_cur))
    return f, n_ref, n_cur


def format_metrics(rows: Sequence[Sequence[float]]) -> str:
    """The checksum: PSI KS W1 JS per feature, each as its shortest repr."""
    return " ".join(repr(float(v)) for row in rows for v in row)


# ---------------------------------------------------------------- pure Python


def quantile_sorted(s: Sequence[float], q: float) -> float:
    """NumPy's ``linear`` quantile of sorted ``s`` at ``q``, including its two-sided lerp."""
    h = (len(s) - 1) * q
    lo = math.floor(h)
    g = h - lo
    a = s[lo]
    b = s[min(lo + 1, len(s) - 1)]
    d = b - a
    return b - d * (1 - g) if g >= 0.5 else a + d * g


def proportions(s: Sequence[float], edges: Sequence[float]) -> list[float]:
    """Bin proportions of sorted ``s``: bin b holds #{edges <= x} == b."""
    n = len(s)
    below = [0, *(bisect_left(s, e) for e in edges), n]
    return [(below[b + 1] - below[b]) / n for b in range(BINS)]


def psi(r: Sequence[float], c: Sequence[float]) -> float:
    """Population stability index, empty bins as 1e-4."""
    total = 0.0
    for p_raw, q_raw in zip(r, c, strict=True):
        p = p_raw or EMPTY_BIN
        q = q_raw or EMPTY_BIN
        total += (q - p) * math.log(q / p)
    return total


def jensen_shannon(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen-Shannon distance, natural log, 0 ln 0 = 0."""
    left = right = 0.0
    for a, b in zip(p, q, strict=True):
        m = (a + b) / 2
        if a > 0:
            left += a * math.log(a / m)
        if b > 0:
            right += b * math.log(b / m)
    return math.sqrt((left + right) / 2)


def ks_w1(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """KS statistic and W1 distance of two sorted samples in one merge walk."""
    na, nb = len(a), len(b)
    i = j = 0
    ks = w1 = 0.0
    while i < na or j < nb:
        v = a[i] if i < na and (j >= nb or a[i] <= b[j]) else b[j]
        while i < na and a[i] <= v:
            i += 1
        while j < nb and b[j] <= v:
            j += 1
        d = abs(i / na - j / nb)
        ks = max(ks, d)
        if i < na and (j >= nb or a[i] <= b[j]):
            nxt = a[i]
        elif j < nb:
            nxt = b[j]
        else:
            break
        w1 += d * (nxt - v)
    return ks, w1


def fit_loop(reference: list[list[float]]) -> list[tuple[list[float], list[float], list[float]]]:
    """Per feature: (sorted reference, decile edges, bin proportions)."""
    fitted = []
    for row in reference:
        s = sorted(row)
        edges = [quantile_sorted(s, k / BINS) for k in range(1, BINS)]
        fitted.append((s, edges, proportions(s, edges)))
    return fitted


def score_loop(
    fitted: list[tuple[list[float], list[float], list[float]]], current: list[list[float]]
) -> str:
    rows = []
    for (s, edges, r), cur in zip(fitted, current, strict=True):
        c_sorted = sorted(cur)
        c = proportions(c_sorted, edges)
        ks, w1 = ks_w1(s, c_sorted)
        rows.append((psi(r, c), ks, w1, jensen_shannon(r, c)))
    return format_metrics(rows)


def load_loop(path: Path) -> tuple[list[list[float]], list[list[float]]]:
    f, n_ref, n_cur = read_shape(path)
    data = memoryview(path.read_bytes())
    start = _tables.header_bytes(3)
    ref = [_tables.read_column(data, "d", start + 8 * n_ref * k, n_ref).tolist() for k in range(f)]
    start += 8 * n_ref * f
    cur = [_tables.read_column(data, "d", start + 8 * n_cur * k, n_cur).tolist() for k in range(f)]
    return ref, cur


# ---------------------------------------------------------------- NumPy / SciPy / PyO3


def load_numpy(path: Path) -> tuple[Any, Any]:
    import numpy as np

    f, n_ref, n_cur = read_shape(path)
    start = _tables.header_bytes(3)
    ref = np.fromfile(path, dtype="<f8", count=f * n_ref, offset=start).reshape(f, n_ref)
    cur = np.fromfile(path, dtype="<f8", count=f * n_cur, offset=start + 8 * f * n_ref)
    return ref, cur.reshape(f, n_cur)


def numpy_impl(ref: Any, cur: Any) -> tuple[Callable[[], object], Callable[[], str]]:
    """(fit, score) for py-numpy."""
    import numpy as np

    qs = np.arange(1, BINS) / BINS
    fitted: dict[str, Any] = {}

    def counts_below(sorted_rows: Any, edges: Any) -> Any:
        # #{x < e_k} per feature and edge, then per-bin proportions.
        n = sorted_rows.shape[1]
        below = np.array(
            [np.searchsorted(s, e, side="left") for s, e in zip(sorted_rows, edges, strict=True)]
        )
        full = np.concatenate(
            [np.zeros((len(below), 1), dtype=below.dtype), below, np.full((len(below), 1), n)],
            axis=1,
        )
        return np.diff(full, axis=1) / n

    def fit() -> None:
        s = np.sort(ref, axis=1)
        edges = np.quantile(s, qs, axis=1).T
        fitted.update(sorted=s, edges=edges, props=counts_below(s, edges))

    def score() -> str:
        s, edges, r = fitted["sorted"], fitted["edges"], fitted["props"]
        c_sorted = np.sort(cur, axis=1)
        c = counts_below(c_sorted, edges)
        rf = np.where(r == 0, EMPTY_BIN, r)
        cf = np.where(c == 0, EMPTY_BIN, c)
        psi_v = np.sum((cf - rf) * np.log(cf / rf), axis=1)
        m = (r + c) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(r > 0, r * np.log(r / m), 0.0).sum(axis=1) + np.where(
                c > 0, c * np.log(c / m), 0.0
            ).sum(axis=1)
        js_v = np.sqrt(kl / 2)
        ks_v = np.empty(len(s))
        w1_v = np.empty(len(s))
        n1, n2 = s.shape[1], c_sorted.shape[1]
        for k, (a, b) in enumerate(zip(s, c_sorted, strict=True)):
            pooled = np.sort(np.concatenate([a, b]), kind="stable")  # merges the two sorted runs
            d = np.abs(
                np.searchsorted(a, pooled, side="right") / n1
                - np.searchsorted(b, pooled, side="right") / n2
            )
            ks_v[k] = d.max()
            w1_v[k] = np.sum(d[:-1] * np.diff(pooled))
        return format_metrics(np.column_stack([psi_v, ks_v, w1_v, js_v]).tolist())

    return fit, score


def scipy_impl(ref: Any, cur: Any) -> tuple[Callable[[], object], Callable[[], str]]:
    """(fit, score) for py-scipy."""
    import numpy as np
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import ks_2samp, wasserstein_distance

    qs = np.arange(1, BINS) / BINS
    fitted: dict[str, Any] = {}

    def fit() -> None:
        edges = np.quantile(ref, qs, axis=1).T
        props = np.array(
            [
                np.bincount(np.searchsorted(e, x, side="right"), minlength=BINS) / len(x)
                for e, x in zip(edges, ref, strict=True)
            ]
        )
        fitted.update(edges=edges, props=props)

    def score() -> str:
        rows = []
        for a, b, e, r in zip(ref, cur, fitted["edges"], fitted["props"], strict=True):
            c = np.bincount(np.searchsorted(e, b, side="right"), minlength=BINS) / len(b)
            rf = np.where(r == 0, EMPTY_BIN, r)
            cf = np.where(c == 0, EMPTY_BIN, c)
            rows.append(
                (
                    float(np.sum((cf - rf) * np.log(cf / rf))),
                    float(ks_2samp(a, b, method="asymp").statistic),
                    float(wasserstein_distance(a, b)),
                    float(jensenshannon(r, c)),
                )
            )
        return format_metrics(rows)

    return fit, score


def pyo3_impl(ref: Any, cur: Any) -> tuple[Callable[[], object], Callable[[], str]]:
    """(fit, score) for py-rs-pyo3."""
    import rpb_native

    fitted: dict[str, Any] = {}

    def fit() -> None:
        fitted["ref"] = rpb_native.DriftReference(ref)

    def score() -> str:
        return format_metrics(fitted["ref"].score(cur).tolist())

    return fit, score


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, load, fit (timed apart), time the scoring, print the JSON line."""
    parser = kernel_parser(__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--impl", required=True, choices=list(IMPLS), help="implementation")
    args = parser.parse_args(argv)
    path: Path = args.input
    fit: Callable[[], object]
    score: Callable[[], str]
    if args.impl == "loop":
        (ref, cur), setup_ns = time_setup(lambda: load_loop(path))
        n = len(ref[0])
        fitted: list[Any] = []
        fit = lambda: fitted.extend(fit_loop(ref))  # noqa: E731
        score = lambda: score_loop(fitted, cur)  # noqa: E731
    else:
        make = {"numpy": numpy_impl, "scipy": scipy_impl, "pyo3": pyo3_impl}[args.impl]
        if args.impl == "scipy":
            import scipy.spatial.distance
            import scipy.stats  # noqa: F401  (imported before the clocks)
        if args.impl == "pyo3":
            import rpb_native  # noqa: F401
        (ref, cur), setup_ns = time_setup(lambda: load_numpy(path))
        n = ref.shape[1]
        fit, score = make(ref, cur)
    start = time.perf_counter_ns()
    fit()
    fit_ns = time.perf_counter_ns() - start
    run_kernel(
        TASK,
        IMPLS[args.impl],
        n,
        setup_ns,
        iters=args.iters,
        kernel=score,
        phases={"fit": fit_ns},
    )


if __name__ == "__main__":
    main()
