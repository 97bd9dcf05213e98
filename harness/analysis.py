"""From raw samples to summaries, speed-ups with confidence intervals and geometric means.

Pure pandas/NumPy functions: no file I/O, no clock, no global random state (every bootstrap
draws from a `numpy.random.Generator` seeded from the caller's seed and the case's name, so a
result does not depend on which other cases were analysed alongside it).

Levels, after Kalibera and Jones (MEASUREMENT.md §3): container *sessions* > process *runs* >
in-process *iterations*. Warm-up runs and the first `warmup_iters` iterations of every run are
kept in the raw frames, marked, and left out of every summary.

Input: the sample dicts of samples.jsonl (schema 1) and the case statuses of cases.jsonl.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from harness.errors import BundleError

SAMPLE_SCHEMA = 1
N_BOOT = 2000
CONFIDENCE = 0.95
# Multiplying the raw MAD by this makes it a consistent estimator of the standard deviation for
# normally distributed data. Iglewicz and Hoaglin's 0.6745 is its inverse.
MAD_TO_SD = 1.4826
IGLEWICZ_HOAGLIN = 0.6745
# When the MAD is 0 (more than half the values are equal) the modified z-score is undefined;
# the mean absolute deviation scaled by sqrt(pi/2) takes its place.
MEANAD_TO_SD = 1.253314
# Implementations named like this are Rust called from Python (PyO3, a subprocess): they run in a
# Python image but are not "the Python-library route", so they never count as best Python.
RUST_FROM_PYTHON_PREFIX = "py-rs-"
# Upper bound on the floats one bootstrap chunk holds (32 MiB of float64).
_CHUNK_FLOATS = 1 << 22

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Sample = Mapping[str, Any]
CaseKey = tuple[str, str, int | None]
# sessions -> runs -> values of one run (one wall time, or the measured iterations)
Sessions = Sequence[Sequence[Sequence[float] | FloatArray]]

RUN_COLUMNS = [
    "case_id",
    "task",
    "impl",
    "lang",
    "image",
    "size",
    "session",
    "run",
    "warmup",
    "run_ok",
]

# dtypes of the run-identity columns that carry numbers or flags (nullable where missing)
_RUN_DTYPES = {
    "size": "Int64",
    "session": "int64",
    "run": "Int64",
    "warmup": "bool",
    "run_ok": "bool",
}

SAMPLE_COLUMNS = [
    *RUN_COLUMNS,
    "wall_ns",
    "user_ns",
    "sys_ns",
    "cpu_ns",
    "maxrss_kb",
    "exit_code",
    "signal",
    "timed_out",
    "setup_ns",
    "n_iters",
    "iter_total_ns",
    "checksum",
    "checksum_ok",
    "wall_outlier",
]

ITERATION_COLUMNS = [
    *RUN_COLUMNS,
    "iteration",
    "warmup_iter",
    "iter_ns",
]

SUMMARY_COLUMNS = [
    "task",
    "impl",
    "size",
    "case_id",
    "lang",
    "image",
    "status",
    "reason",
    "n_sessions",
    "n_runs",
    "n_warmup_runs",
    "n_failed_runs",
    "n_iters",
    "wall_median_ns",
    "wall_ci_low_ns",
    "wall_ci_high_ns",
    "wall_mean_ns",
    "wall_sd_ns",
    "wall_mad_ns",
    "wall_cv",
    "wall_min_ns",
    "cpu_median_ns",
    "cpu_over_wall",
    "maxrss_median_kb",
    "kernel_median_ns",
    "kernel_ci_low_ns",
    "kernel_ci_high_ns",
    "kernel_mean_ns",
    "kernel_sd_ns",
    "kernel_mad_ns",
    "kernel_cv",
    "kernel_min_ns",
    "setup_median_ns",
    "startup_share",
    "n_outliers",
    "n_kernel_outliers",
    "checksum_ok",
]

SPEEDUP_COLUMNS = [
    "task",
    "size",
    "impl",
    "lang",
    "reference_kind",
    "reference",
    "metric",
    "impl_median_ns",
    "reference_median_ns",
    "speedup",
    "ci_low",
    "ci_high",
    "noise",
    "verdict",
]

GEOMEAN_COLUMNS = ["reference_kind", "impl", "lang", "n_tasks", "n_ratios", "geomean", "tasks"]

FASTER = "faster"
SLOWER = "slower"
NO_DIFFERENCE = "no difference"


# --- descriptive statistics ---------------------------------------------------------------


def _array(x: Iterable[float] | FloatArray) -> FloatArray:
    return np.asarray(list(x) if not isinstance(x, np.ndarray) else x, dtype=np.float64).ravel()


def median(x: Iterable[float] | FloatArray) -> float:
    """The median; NaN for no data."""
    a = _array(x)
    return float(np.median(a)) if a.size else math.nan


def mad(x: Iterable[float] | FloatArray, *, scaled: bool = False) -> float:
    """Median absolute deviation from the median.

    Unscaled by default (the `*_mad_ns` columns are unscaled); `scaled=True` multiplies by
    1.4826 so that it estimates the standard deviation of normal data.
    """
    a = _array(x)
    if not a.size:
        return math.nan
    raw = float(np.median(np.abs(a - np.median(a))))
    return raw * MAD_TO_SD if scaled else raw


def sd(x: Iterable[float] | FloatArray) -> float:
    """Sample standard deviation (n - 1 in the denominator); NaN below 2 values."""
    a = _array(x)
    return float(np.std(a, ddof=1)) if a.size >= 2 else math.nan


def cv(x: Iterable[float] | FloatArray) -> float:
    """Coefficient of variation: sample SD over mean; NaN below 2 values or for a zero mean."""
    a = _array(x)
    if a.size < 2:
        return math.nan
    m = float(np.mean(a))
    return sd(a) / m if m != 0 else math.nan


def modified_z(x: Iterable[float] | FloatArray) -> FloatArray:
    """Iglewicz-Hoaglin modified z-score: 0.6745 (x - median) / MAD.

    With a zero MAD the mean absolute deviation stands in (scaled by 1.253314); when that is
    zero too, every value equals the median and every score is 0.
    """
    a = _array(x)
    if not a.size:
        return a
    dev = a - np.median(a)
    m = float(np.median(np.abs(dev)))
    if m > 0:
        return IGLEWICZ_HOAGLIN * dev / m
    mean_ad = float(np.mean(np.abs(dev)))
    if mean_ad > 0:
        return dev / (MEANAD_TO_SD * mean_ad)
    return np.zeros_like(a)


def outlier_flags(x: Iterable[float] | FloatArray, threshold: float = 3.5) -> BoolArray:
    """True where |modified z-score| > threshold. Flags only: callers never drop flagged data."""
    return np.asarray(np.abs(modified_z(x)) > threshold, dtype=np.bool_)


def geomean(x: Iterable[float] | FloatArray) -> float:
    """Geometric mean of positive values; NaN for no data or a non-positive value."""
    a = _array(x)
    if not a.size or np.any(a <= 0):
        return math.nan
    return float(np.exp(np.mean(np.log(a))))


# --- bootstrap --------------------------------------------------------------------------------


def _rng(seed: int | np.random.SeedSequence) -> np.random.Generator:
    return np.random.default_rng(seed)


def _seed_for(seed: int, *parts: object) -> np.random.SeedSequence:
    """A seed for one named quantity, independent of the order in which quantities are computed."""
    name = "\x1f".join(str(p) for p in parts)
    return np.random.SeedSequence([seed, zlib.crc32(name.encode())])


def _chunks(n_boot: int, width: int) -> Iterator[tuple[int, int]]:
    step = max(1, _CHUNK_FLOATS // max(1, width))
    for start in range(0, n_boot, step):
        yield start, min(n_boot, start + step)


# Student's t, 97.5 % quantile, for 1 to 30 degrees of freedom.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def expanded_alpha(clusters: int | None) -> float:
    """The tail probability of a 95 % percentile interval, widened for few clusters.

    A percentile bootstrap over k sessions is too narrow when k is small: it never sees more
    between-session spread than the k sessions show. Hesterberg's expanded percentile interval
    ("What teachers should know about the bootstrap", 2015) fixes that: use the quantiles at
    alpha'/2 and 1 - alpha'/2, where Phi^-1(alpha'/2) = -sqrt(k / (k - 1)) * t(0.975, k - 1).
    With 2 sessions the interval spans the whole bootstrap distribution; with 4, alpha' is
    0.00024; it grows back towards 0.05 with more sessions (0.038 at 31, 0.046 at 100).
    """
    alpha = 1 - CONFIDENCE
    if clusters is None or clusters < 2:
        return alpha
    df = clusters - 1
    t = _T975[df - 1] if df <= len(_T975) else 1.96 + 2.37 / df
    return math.erfc(math.sqrt(clusters / df) * t / math.sqrt(2))


def _percentiles(values: FloatArray, clusters: int | None = None) -> tuple[float, float]:
    """The percentile interval of a bootstrap distribution; expanded for few `clusters`."""
    alpha = expanded_alpha(clusters)
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _row_nanmedian(a: FloatArray) -> FloatArray:
    """Median of each row ignoring NaN padding (np.nanmedian loops in Python per row)."""
    s = np.sort(a, axis=1)  # NaN sorts last
    n = np.sum(~np.isnan(a), axis=1)
    rows = np.arange(a.shape[0])
    return np.asarray((s[rows, (n - 1) // 2] + s[rows, n // 2]) / 2, dtype=np.float64)


def median_ci(
    x: Iterable[float] | FloatArray, *, n_boot: int = N_BOOT, seed: int = 0
) -> tuple[float, float, float]:
    """Median and its 95 % percentile-bootstrap CI, resampling values independently.

    Returns (median, low, high); NaN triple for no data. Constant data gives a degenerate CI.
    """
    a = _array(x)
    if not a.size:
        return math.nan, math.nan, math.nan
    rng = _rng(seed)
    meds = np.empty(n_boot)
    for start, stop in _chunks(n_boot, a.size):
        idx = rng.integers(0, a.size, size=(stop - start, a.size))
        meds[start:stop] = np.median(a[idx], axis=1)
    lo, hi = _percentiles(meds)
    return float(np.median(a)), lo, hi


def _pack(sessions: Sessions) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """Sessions as a NaN-padded (session, run, value) array and the run count of each session."""
    packed = [[np.asarray(r, dtype=np.float64) for r in s] for s in sessions]
    packed = [[r for r in s if r.size] for s in packed]
    packed = [s for s in packed if s]
    if not packed:
        raise ValueError("no data to bootstrap: every session is empty")
    n_runs = max(len(s) for s in packed)
    n_vals = max(r.size for s in packed for r in s)
    out = np.full((len(packed), n_runs, n_vals), np.nan)
    for i, s in enumerate(packed):
        for j, r in enumerate(s):
            out[i, j, : r.size] = r
    return out, np.array([len(s) for s in packed], dtype=np.intp)


def _clusters(sessions: Sessions) -> int:
    """How many sessions hold data: the top-level sample size of a hierarchical bootstrap."""
    return sum(1 for s in sessions if any(np.asarray(r).size for r in s))


def _pooled(sessions: Sessions) -> FloatArray:
    parts = [np.asarray(r, dtype=np.float64) for s in sessions for r in s]
    return np.concatenate(parts) if parts else np.empty(0)


def hierarchical_medians(
    sessions: Sessions, *, n_boot: int, rng: np.random.Generator
) -> FloatArray:
    """Bootstrap distribution of the pooled median: draw sessions with replacement, then runs
    with replacement within each drawn session. The values of a drawn run (its iterations) stay
    together: they share one process, so they are not independent draws.
    """
    values, run_counts = _pack(sessions)
    n_sess, n_runs, n_vals = values.shape
    out = np.empty(n_boot)
    for start, stop in _chunks(n_boot, n_sess * n_runs * n_vals):
        b = stop - start
        sess = rng.integers(0, n_sess, size=(b, n_sess))
        counts = run_counts[sess]  # (b, n_sess)
        runs = (rng.random((b, n_sess, n_runs)) * counts[..., None]).astype(np.intp)
        drawn = values[sess[..., None], runs]  # (b, n_sess, n_runs, n_vals)
        # A session with fewer runs than the widest one draws only as many runs as it has.
        used = np.arange(n_runs) < counts[..., None]
        drawn = np.where(used[..., None], drawn, np.nan)
        out[start:stop] = _row_nanmedian(drawn.reshape(b, -1))
    return out


def hierarchical_median_ci(
    sessions: Sessions, *, n_boot: int = N_BOOT, seed: int | np.random.SeedSequence = 0
) -> tuple[float, float, float]:
    """Pooled median and its 95 % CI by hierarchical bootstrap (sessions, then runs)."""
    pooled = _pooled(sessions)
    if not pooled.size:
        return math.nan, math.nan, math.nan
    meds = hierarchical_medians(sessions, n_boot=n_boot, rng=_rng(seed))
    lo, hi = _percentiles(meds, _clusters(sessions))
    return float(np.median(pooled)), lo, hi


def hierarchical_ratio_ci(
    numerator: Sessions,
    denominator: Sessions,
    *,
    n_boot: int = N_BOOT,
    seed: int | np.random.SeedSequence = 0,
) -> tuple[float, float, float]:
    """median(numerator) / median(denominator) and its 95 % CI.

    Each side is resampled on its own (hierarchical bootstrap, independent streams); the CI is
    the percentile interval of the ratio of the resampled medians.
    """
    num, den = _pooled(numerator), _pooled(denominator)
    if not num.size or not den.size:
        return math.nan, math.nan, math.nan
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    seq_num, seq_den = seq.spawn(2)
    boot = hierarchical_medians(numerator, n_boot=n_boot, rng=_rng(seq_num)) / (
        hierarchical_medians(denominator, n_boot=n_boot, rng=_rng(seq_den))
    )
    lo, hi = _percentiles(boot, min(_clusters(numerator), _clusters(denominator)))
    return float(np.median(num) / np.median(den)), lo, hi


def verdict(ci_low: float, ci_high: float, noise: float = 0.01) -> str:
    """Verdict on a speed-up CI: "faster" or "slower" when it is clear of [1 - noise, 1 + noise],
    else "no difference" (a CI touching that band cannot tell the two apart).
    """
    if ci_low > 1 + noise:
        return FASTER
    if ci_high < 1 - noise:
        return SLOWER
    return NO_DIFFERENCE


# --- raw frames -------------------------------------------------------------------------------


def _check_schema(samples: Iterable[Sample]) -> None:
    for s in samples:
        if s.get("schema") != SAMPLE_SCHEMA:
            raise BundleError(
                f"sample {s.get('case_id', '?')} has schema {s.get('schema')!r}, but this "
                f"harness reads schema {SAMPLE_SCHEMA}. Analyse the bundle with the harness "
                "version that wrote it."
            )


def run_ok(sample: Sample) -> bool:
    """The process exited 0 on its own, in time: its timings describe the benchmark."""
    return (
        sample.get("exit_code") == 0
        and sample.get("wall_ns") is not None
        and sample.get("signal") is None
        and not sample.get("timed_out", False)
    )


def _key(sample: Mapping[str, Any]) -> CaseKey:
    size = sample.get("size")
    return str(sample["task"]), str(sample["impl"]), None if size is None else int(size)


def _measured(case_samples: Iterable[Sample]) -> list[Sample]:
    """Non-warm-up runs that completed, ordered by (session, run)."""
    runs = [s for s in case_samples if run_ok(s) and not s.get("warmup", False)]
    return sorted(runs, key=lambda s: (int(s["session"]), int(s.get("run") or 0)))


def _wall_outlier_ids(samples: Sequence[Sample]) -> set[int]:
    """id() of the measured runs whose wall time is an outlier within their case."""
    flagged: set[int] = set()
    for runs in _by_case(samples).values():
        measured = _measured(runs)
        flags = outlier_flags([s["wall_ns"] for s in measured])
        flagged.update(id(s) for s, f in zip(measured, flags, strict=True) if f)
    return flagged


def _run_identity(s: Sample) -> dict[str, Any]:
    """The columns that say which process run a row belongs to (both frames start with them)."""
    return {
        "case_id": s.get("case_id"),
        "task": s["task"],
        "impl": s["impl"],
        "lang": s.get("lang"),
        "image": s.get("image"),
        "size": s.get("size"),
        "session": s["session"],
        "run": s.get("run"),
        "warmup": bool(s.get("warmup", False)),
        "run_ok": run_ok(s),
    }


def samples_frame(samples: Sequence[Sample]) -> pd.DataFrame:
    """Process level: one row per process run, warm-up runs included and marked.

    `cpu_ns` = user + sys; `iter_total_ns` sums every iteration (warm-up ones too);
    `wall_outlier` flags measured runs whose wall time is an outlier within their case.
    """
    _check_schema(samples)
    outliers = _wall_outlier_ids(samples)
    rows = []
    for s in samples:
        iters = list(s.get("iter_ns") or [])
        rows.append(
            {
                **_run_identity(s),
                "wall_ns": s.get("wall_ns"),
                "user_ns": s.get("user_ns"),
                "sys_ns": s.get("sys_ns"),
                "cpu_ns": _cpu_ns(s),
                "maxrss_kb": s.get("maxrss_kb"),
                "exit_code": s.get("exit_code"),
                "signal": s.get("signal"),
                "timed_out": bool(s.get("timed_out", False)),
                "setup_ns": s.get("setup_ns"),
                "n_iters": len(iters),
                "iter_total_ns": sum(iters) if iters else None,
                "checksum": s.get("checksum"),
                "checksum_ok": s.get("checksum_ok"),
                "wall_outlier": id(s) in outliers,
            }
        )
    frame = pd.DataFrame.from_records(rows, columns=SAMPLE_COLUMNS)
    return frame.astype(
        {
            **_RUN_DTYPES,
            "wall_ns": "Int64",
            "user_ns": "Int64",
            "sys_ns": "Int64",
            "cpu_ns": "Int64",
            "maxrss_kb": "Int64",
            "exit_code": "Int64",
            "signal": "Int64",
            "timed_out": "bool",
            "setup_ns": "Int64",
            "n_iters": "int64",
            "iter_total_ns": "Int64",
            "checksum_ok": "boolean",
            "wall_outlier": "bool",
        }
    )


def iterations_frame(samples: Sequence[Sample], warmup_iters: int = 1) -> pd.DataFrame:
    """Kernel level: one row per in-process iteration of every run (warm-up runs included).

    `iteration` counts from 0 within its run; `warmup_iter` marks the first `warmup_iters`.
    """
    _check_schema(samples)
    rows = []
    for s in samples:
        for i, ns in enumerate(s.get("iter_ns") or []):
            rows.append(
                {
                    **_run_identity(s),
                    "iteration": i,
                    "warmup_iter": i < warmup_iters,
                    "iter_ns": ns,
                }
            )
    frame = pd.DataFrame.from_records(rows, columns=ITERATION_COLUMNS)
    return frame.astype(
        {
            **_RUN_DTYPES,
            "iteration": "int64",
            "warmup_iter": "bool",
            "iter_ns": "int64",
        }
    )


# --- summaries --------------------------------------------------------------------------------


def _cpu_ns(s: Sample) -> int | None:
    user, sys_ = s.get("user_ns"), s.get("sys_ns")
    return None if user is None or sys_ is None else int(user) + int(sys_)


def _by_case(samples: Iterable[Sample]) -> dict[CaseKey, list[Sample]]:
    out: dict[CaseKey, list[Sample]] = {}
    for s in samples:
        out.setdefault(_key(s), []).append(s)
    return out


def _sessions(runs: Sequence[Sample], values: Callable[[Sample], Sequence[float]]) -> Sessions:
    """Measured runs grouped by session, each run reduced to its values; empty runs dropped."""
    grouped: dict[int, list[FloatArray]] = {}
    for s in runs:
        v = np.asarray(values(s), dtype=np.float64)
        if v.size:
            grouped.setdefault(int(s["session"]), []).append(v)
    return [grouped[k] for k in sorted(grouped)]


def _wall_values(s: Sample) -> list[float]:
    return [float(s["wall_ns"])]


def _kernel_values(warmup_iters: int) -> Callable[[Sample], list[float]]:
    def values(s: Sample) -> list[float]:
        return [float(v) for v in (s.get("iter_ns") or [])[warmup_iters:]]

    return values


def _metric_sessions(runs: Sequence[Sample], metric: str, warmup_iters: int) -> Sessions:
    if metric == "kernel":
        return _sessions(runs, _kernel_values(warmup_iters))
    return _sessions(runs, _wall_values)


def case_sessions(case_samples: Sequence[Sample], warmup_iters: int = 1) -> Sessions:
    """One case's measured runs as sessions > runs > values of its metric: the kernel
    iterations past the warm-up ones where the program reports them, else wall time."""
    runs = _measured(case_samples)
    return _metric_sessions(runs, case_metric(runs), warmup_iters)


def case_metric(case_samples: Sequence[Sample]) -> str:
    """The metric of a case: "kernel" when its program reports iterations, else "wall"."""
    return "kernel" if any(s.get("iter_ns") for s in case_samples) else "wall"


# hyperfine's rule for its outlier warning: more than 10 standard deviations away, with the
# MAD as the estimate of the standard deviation (modified z-score above 10). Kernels of a few
# microseconds have MADs of a few nanoseconds, so a value must also be 5 % off the median.
SEVERE_OUTLIER = 10.0
SEVERE_SHARE = 0.05


def case_warnings(case_samples: Sequence[Sample], warmup_iters: int = 1) -> list[str]:
    """What a reader of one finished case's numbers should be told, as hyperfine does: severe
    outliers among its measured process runs' wall times and, when the program reports
    iterations, among its kernel times (kept, never dropped). Empty when none."""
    runs = _measured(case_samples)
    if not runs:
        return []
    parts = []
    metric = case_metric(runs)
    checks = [("process runs' wall times", [float(s["wall_ns"]) for s in runs])]
    if metric == "kernel":
        checks.append(("kernel iterations", list(_pooled(case_sessions(runs, warmup_iters)))))
    for what, values in checks:
        x = _array(values)
        far = np.abs(x - np.median(x)) > SEVERE_SHARE * np.median(x)
        n = int((outlier_flags(x, SEVERE_OUTLIER) & far).sum())
        if n:
            parts.append(f"{n} of {len(values)} {what}")
    if not parts:
        return []
    return [
        f"statistical outliers (over 10 MADs and 5 % from the median; kept): {', '.join(parts)}. "
        "Something else may have run meanwhile: rerun on a quiet host (`harness doctor`)"
    ]


def _describe(prefix: str, values: FloatArray) -> dict[str, float]:
    if not values.size:
        return {f"{prefix}_{k}": math.nan for k in ("mean_ns", "sd_ns", "mad_ns", "cv", "min_ns")}
    return {
        f"{prefix}_mean_ns": float(np.mean(values)),
        f"{prefix}_sd_ns": sd(values),
        f"{prefix}_mad_ns": mad(values),
        f"{prefix}_cv": cv(values),
        f"{prefix}_min_ns": float(np.min(values)),
    }


def _ordered_keys(keys: Iterable[CaseKey]) -> list[CaseKey]:
    """Tasks and implementations in order of first appearance; sizes ascending within a task."""
    seen: dict[CaseKey, None] = dict.fromkeys(keys)
    task_rank: dict[str, int] = {}
    impl_rank: dict[str, int] = {}
    for task, impl, _ in seen:
        task_rank.setdefault(task, len(task_rank))
        impl_rank.setdefault(impl, len(impl_rank))
    return sorted(
        seen,
        key=lambda k: (task_rank[k[0]], -1 if k[2] is None else k[2], impl_rank[k[1]]),
    )


def _case_id(key: CaseKey) -> str:
    task, impl, size = key
    return f"{task}/{impl}/{'-' if size is None else size}"


def _summary_row(
    key: CaseKey,
    case_samples: Sequence[Sample],
    case: Mapping[str, Any] | None,
    *,
    warmup_iters: int,
    seed: int,
    n_boot: int,
) -> dict[str, Any]:
    task, impl, size = key
    first = case_samples[0] if case_samples else {}
    measured = _measured(case_samples)
    checks = [s.get("checksum_ok") for s in case_samples]
    checksum_ok = all(c is True for c in checks) if checks else None
    if case is not None:
        status, reason = str(case.get("status", "ok")), case.get("reason")
    elif checksum_ok is False:
        status, reason = "invalid", "checksum mismatch"
    else:
        status, reason = ("ok", None) if measured else ("failed", "no completed run")
    case_id = str(first.get("case_id") or (case or {}).get("case_id") or _case_id(key))

    wall = np.array([float(s["wall_ns"]) for s in measured])
    wall_med, wall_lo, wall_hi = hierarchical_median_ci(
        _sessions(measured, _wall_values), n_boot=n_boot, seed=_seed_for(seed, case_id, "wall")
    )
    kernel_sessions = _sessions(measured, _kernel_values(warmup_iters))
    kernel = _pooled(kernel_sessions)
    kern_med, kern_lo, kern_hi = hierarchical_median_ci(
        kernel_sessions, n_boot=n_boot, seed=_seed_for(seed, case_id, "kernel")
    )
    cpu = [c for c in (_cpu_ns(s) for s in measured) if c is not None]
    cpu_over_wall = [
        c / s["wall_ns"] for s in measured if (c := _cpu_ns(s)) is not None and s["wall_ns"] > 0
    ]
    # Start-up share: the part of a process's wall time spent outside its timed iterations
    # (interpreter start, imports, setup such as loading input), for runs that report iterations.
    startup = [
        (s["wall_ns"] - sum(s["iter_ns"])) / s["wall_ns"]
        for s in measured
        if s.get("iter_ns") and s["wall_ns"] > 0
    ]
    setup = [s["setup_ns"] for s in measured if s.get("setup_ns") is not None]
    rss = [s["maxrss_kb"] for s in measured if s.get("maxrss_kb") is not None]
    return {
        "task": task,
        "impl": impl,
        "size": size,
        "case_id": case_id,
        "lang": first.get("lang"),
        "image": first.get("image"),
        "status": status,
        "reason": reason,
        "n_sessions": len({s["session"] for s in measured}),
        "n_runs": len(measured),
        "n_warmup_runs": sum(1 for s in case_samples if s.get("warmup", False)),
        "n_failed_runs": sum(1 for s in case_samples if not run_ok(s)),
        "n_iters": int(kernel.size),
        "wall_median_ns": wall_med,
        "wall_ci_low_ns": wall_lo,
        "wall_ci_high_ns": wall_hi,
        **_describe("wall", wall),
        "cpu_median_ns": median(cpu),
        "cpu_over_wall": median(cpu_over_wall),
        "maxrss_median_kb": median(rss),
        "kernel_median_ns": kern_med,
        "kernel_ci_low_ns": kern_lo,
        "kernel_ci_high_ns": kern_hi,
        **_describe("kernel", kernel),
        "setup_median_ns": median(setup),
        "startup_share": median(startup),
        "n_outliers": int(np.sum(outlier_flags(wall))),
        "n_kernel_outliers": int(np.sum(outlier_flags(kernel))),
        "checksum_ok": checksum_ok,
    }


def summarize(
    samples: Sequence[Sample],
    cases: Sequence[Mapping[str, Any]],
    warmup_iters: int = 1,
    seed: int = 0,
    *,
    n_boot: int = N_BOOT,
) -> pd.DataFrame:
    """One row per (task, impl, size), failed and invalid cases included (with NaN timings).

    Timings cover the measured runs: not warm-up, exit status 0, no signal, not timed out.
    `wall_*` and `cpu_*` are per process; `kernel_*` pool the non-warm-up iterations of those
    runs (NaN where the program reports none). The medians' CIs are 95 % hierarchical
    bootstrap intervals (sessions, then runs). `*_mad_ns` is the unscaled MAD; `*_cv` is
    SD / mean. `cpu_over_wall` is the median over runs of (user + sys) / wall: near 1 for
    CPU-bound work, well below 1 for work waiting on I/O, above 1 for parallel work.
    `startup_share` is the median over runs of (wall - all iterations) / wall, so it includes
    setup (input loading). `n_outliers` counts flagged wall times (none are dropped).
    `status` comes from `cases`; a case without an entry is "ok", or "invalid" on a checksum
    mismatch, or "failed" with no completed run.
    """
    _check_schema(samples)
    by_case = _by_case(samples)
    case_by_key = {_key(c): c for c in cases}
    keys = _ordered_keys([*case_by_key, *by_case])
    rows = [
        _summary_row(
            k,
            by_case.get(k, []),
            case_by_key.get(k),
            warmup_iters=warmup_iters,
            seed=seed,
            n_boot=n_boot,
        )
        for k in keys
    ]
    frame = pd.DataFrame.from_records(rows, columns=SUMMARY_COLUMNS)
    return frame.astype(
        {
            "size": "Int64",
            "n_sessions": "int64",
            "n_runs": "int64",
            "n_warmup_runs": "int64",
            "n_failed_runs": "int64",
            "n_iters": "int64",
            "n_outliers": "int64",
            "n_kernel_outliers": "int64",
            "checksum_ok": "boolean",
        }
    )


# --- speed-ups --------------------------------------------------------------------------------


def _present(x: Any) -> bool:
    return x is not None and not pd.isna(x)


def _size(x: Any) -> int | None:
    return int(x) if _present(x) else None


def _comparable(row: Mapping[Any, Any]) -> bool:
    """A case that may enter a ratio: status ok, every checksum right, measured runs."""
    return (
        row["status"] == "ok"
        and _present(row["checksum_ok"])
        and bool(row["checksum_ok"])
        and int(row["n_runs"]) > 0
    )


def is_python_library(impl: str, lang: str | None) -> bool:
    """A Python implementation that is not Rust called from Python."""
    return lang == "python" and not impl.startswith(RUST_FROM_PYTHON_PREFIX)


def best_python(
    rows: Sequence[Mapping[Any, Any]], baseline: str | None
) -> Mapping[Any, Any] | None:
    """The fastest Python-library implementation other than the baseline among comparable rows
    of one (task, size): by kernel median when every candidate reports iterations, else by wall.
    """
    candidates = [
        r for r in rows if r["impl"] != baseline and is_python_library(str(r["impl"]), r["lang"])
    ]
    if not candidates:
        return None
    if all(_present(r["kernel_median_ns"]) for r in candidates):
        return min(candidates, key=lambda r: float(r["kernel_median_ns"]))
    return min(candidates, key=lambda r: float(r["wall_median_ns"]))


def speedups(
    samples: Sequence[Sample],
    summary: pd.DataFrame,
    baselines: Mapping[str, str],
    seed: int = 0,
    noise: float = 0.01,
    *,
    warmup_iters: int = 1,
    n_boot: int = N_BOOT,
    against_best_python: bool = True,
) -> pd.DataFrame:
    """Speed-up of every comparable case against the task's baseline and against the best
    Python-library implementation, at the same size (not in an A/A bundle, whose twins have
    only each other: `against_best_python=False`).

    speedup = reference median / impl median (above 1: the impl is faster), on kernel time when
    both report iterations, else on wall time. CI: 95 % hierarchical bootstrap of both sides
    independently, percentile interval of the ratio of resampled medians; each case's resamples
    are those behind its own CI in `summarize` (same seed and `n_boot`). `verdict` is
    "no difference" when the CI touches [1 - noise, 1 + noise]. Failed and invalid cases, and
    cases with a wrong checksum, never enter a ratio; no row compares an implementation with
    itself. `warmup_iters` must match the one given to `summarize`.
    """
    _check_schema(samples)
    by_case = _by_case(samples)
    groups: dict[tuple[str, int | None], list[dict[Any, Any]]] = {}
    for row in summary.to_dict("records"):
        if _comparable(row):
            groups.setdefault((str(row["task"]), _size(row["size"])), []).append(row)

    # One bootstrap distribution per (case, metric), drawn with the seed `summarize` uses for it,
    # so a speed-up's CI comes from the same resamples as the CIs of its two medians.
    boots: dict[tuple[str, str], tuple[float, FloatArray, int]] = {}

    def boot(row: Mapping[Any, Any], metric: str) -> tuple[float, FloatArray, int]:
        case_id = str(row["case_id"])
        if (case_id, metric) not in boots:
            runs = _measured(by_case[(str(row["task"]), str(row["impl"]), _size(row["size"]))])
            sessions = _metric_sessions(runs, metric, warmup_iters)
            rng = _rng(_seed_for(seed, case_id, metric))
            boots[case_id, metric] = (
                float(np.median(_pooled(sessions))),
                hierarchical_medians(sessions, n_boot=n_boot, rng=rng),
                _clusters(sessions),
            )
        return boots[case_id, metric]

    out: list[dict[str, Any]] = []
    for (task, size), rows in groups.items():
        base_name = baselines.get(task)
        refs: list[tuple[str, Mapping[Any, Any]]] = []
        base = next((r for r in rows if r["impl"] == base_name), None)
        if base is not None:
            refs.append(("baseline", base))
        best = best_python(rows, base_name) if against_best_python else None
        if best is not None:
            refs.append(("best_python", best))
        for row in rows:
            for kind, ref in refs:
                if row["impl"] == ref["impl"]:
                    continue
                both_kernel = _present(row["kernel_median_ns"]) and _present(
                    ref["kernel_median_ns"]
                )
                metric = "kernel" if both_kernel else "wall"
                (ref_median, ref_boot, ref_k), (impl_median, impl_boot, impl_k) = (
                    boot(ref, metric),
                    boot(row, metric),
                )
                lo, hi = _percentiles(ref_boot / impl_boot, min(ref_k, impl_k))
                out.append(
                    {
                        "task": task,
                        "size": size,
                        "impl": row["impl"],
                        "lang": row["lang"],
                        "reference_kind": kind,
                        "reference": ref["impl"],
                        "metric": metric,
                        "impl_median_ns": impl_median,
                        "reference_median_ns": ref_median,
                        "speedup": ref_median / impl_median,
                        "ci_low": lo,
                        "ci_high": hi,
                        "noise": noise,
                        "verdict": verdict(lo, hi, noise),
                    }
                )
    return pd.DataFrame.from_records(out, columns=SPEEDUP_COLUMNS).astype({"size": "Int64"})


def geomean_speedups(speedups: pd.DataFrame) -> pd.DataFrame:
    """Geometric mean of speed-ups per (reference kind, impl) across tasks.

    Sizes of one task are first combined by their own geometric mean, so a task with a size
    sweep weighs as much as a task with one size. `n_ratios` counts the (task, size) ratios.
    """
    per_impl: dict[tuple[str, str], dict[str, list[float]]] = {}
    langs: dict[str, Any] = {}
    for row in speedups.to_dict("records"):
        kind, impl = str(row["reference_kind"]), str(row["impl"])
        langs.setdefault(impl, row["lang"])
        per_impl.setdefault((kind, impl), {}).setdefault(str(row["task"]), []).append(
            float(row["speedup"])
        )
    out = [
        {
            "reference_kind": kind,
            "impl": impl,
            "lang": langs[impl],
            "n_tasks": len(tasks),
            "n_ratios": sum(len(v) for v in tasks.values()),
            "geomean": geomean([geomean(v) for v in tasks.values()]),
            "tasks": ", ".join(tasks),
        }
        for (kind, impl), tasks in per_impl.items()
    ]
    frame = pd.DataFrame.from_records(out, columns=GEOMEAN_COLUMNS)
    return frame.sort_values(["reference_kind", "impl"], kind="stable").reset_index(drop=True)


def aa_pairs(speedups: pd.DataFrame) -> pd.DataFrame:
    """The A/A pairs of a `harness run --aa` bundle: each twin `IMPL.b` against its baseline
    `IMPL.a` (the same program), with `contains_1` (the ratio's CI holds 1) and `flagged` (the
    verdict is not "no difference": a false flag, since the two cannot differ)."""
    from harness.suite import AA_SUFFIXES

    a, b = AA_SUFFIXES
    rows = speedups[
        (speedups["reference_kind"] == "baseline")
        & speedups["impl"].astype(str).str.endswith(b)
        & speedups["reference"].astype(str).str.endswith(a)
    ].copy()
    rows["contains_1"] = (rows["ci_low"] <= 1.0) & (rows["ci_high"] >= 1.0)
    rows["flagged"] = rows["verdict"] != NO_DIFFERENCE
    return rows.reset_index(drop=True)
