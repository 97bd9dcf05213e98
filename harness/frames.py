"""From raw samples to the bundle's tables: per-case summaries, speed-ups with confidence
intervals, geometric means and A/A pairs (pandas frames; the numbers come from `stats`).

No file I/O, no clock, no global random state (every bootstrap draws from a generator seeded
from the caller's seed and the case's name, so a result does not depend on which other cases
were analysed alongside it).

Levels, after Kalibera and Jones (docs/methodology.md): container *sessions* > process *runs* >
in-process *iterations*. Warm-up runs and the first `warmup_iters` iterations of every run are
kept in the raw samples, marked, and left out of every summary. A case's metric and the numbers
it is made of come from its kind (`harness.kinds.metric_values`): one rule for every table.

Input: the sample dicts of samples.jsonl (see harness/schema.py) and the case statuses of
cases.jsonl.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from harness.errors import BundleError
from harness.kinds import metric_of, metric_values
from harness.schema import SAMPLE_SCHEMAS
from harness.stats import (
    N_BOOT,
    NO_DIFFERENCE,
    FloatArray,
    Sessions,
    array,
    clusters,
    cv,
    geomean,
    hierarchical_median_ci,
    hierarchical_medians,
    mad,
    median,
    outlier_flags,
    percentiles,
    pooled,
    rng_for,
    sd,
    seed_for,
    verdict,
)
from harness.suite import AA_SUFFIXES, PYTHON_LIBRARY, RUST_ROUTES

Sample = Mapping[str, Any]
CaseKey = tuple[str, str, int | None]

SUMMARY_COLUMNS = [
    "task",
    "impl",
    "size",
    "case_id",
    "lang",
    "image",
    "route",
    "threads",
    "status",
    "reason",
    "n_sessions",
    "n_runs",
    "n_warmup_runs",
    "n_failed_runs",
    "n_iters",
    "metric",
    "metric_median_ns",
    "metric_ci_low_ns",
    "metric_ci_high_ns",
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
    "route",
    "threads",
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


# --- samples -----------------------------------------------------------------------------------


def _check_schema(samples: Iterable[Sample]) -> None:
    for s in samples:
        if s.get("schema") not in SAMPLE_SCHEMAS:
            raise BundleError(
                f"sample {s.get('case_id', '?')} has schema {s.get('schema')!r}, but this "
                f"harness reads schemas {', '.join(map(str, SAMPLE_SCHEMAS))}. Analyse the "
                "bundle with the harness version that wrote it."
            )


def run_ok(sample: Sample) -> bool:
    """The process (or load phase) ended with status 0 on its own, in time: its numbers
    describe the benchmark."""
    return (
        sample.get("exit_code") == 0
        and sample.get("signal") is None
        and not sample.get("timed_out", False)
    )


def _key(sample: Mapping[str, Any]) -> CaseKey:
    size = sample.get("size")
    return str(sample["task"]), str(sample["impl"]), None if size is None else int(size)


def measured(case_samples: Iterable[Sample]) -> list[Sample]:
    """Non-warm-up runs that completed, ordered by (session, run)."""
    runs = [s for s in case_samples if run_ok(s) and not s.get("warmup", False)]
    return sorted(runs, key=lambda s: (int(s["session"]), int(s.get("run") or 0)))


def route_of(sample: Sample, baseline: str | None = None) -> str:
    """The implementation's route. Bundles from before routes were recorded: Rust images are
    "rust", `py-rs-*` is Rust called from Python, the baseline pure Python, the rest a
    Python library (what those bundles' reports assumed)."""
    route = sample.get("route")
    if isinstance(route, str) and route:
        return route
    impl = str(sample.get("impl", ""))
    if sample.get("lang") == "rust":
        return "rust"
    if impl.startswith("py-rs-"):
        return "rust-from-python"
    return "python" if impl == baseline else "python-lib"


# --- summaries --------------------------------------------------------------------------------


def _cpu_ns(s: Sample) -> int | None:
    user, sys_ = s.get("user_ns"), s.get("sys_ns")
    return None if user is None or sys_ is None else int(user) + int(sys_)


def by_case(samples: Iterable[Sample]) -> dict[CaseKey, list[Sample]]:
    out: dict[CaseKey, list[Sample]] = {}
    for s in samples:
        out.setdefault(_key(s), []).append(s)
    return out


def sessions_of(runs: Sequence[Sample], metric: str, warmup_iters: int = 1) -> Sessions:
    """Measured runs grouped by session, each run reduced to the values of `metric` ("wall":
    its wall time; otherwise its kind's metric values); empty runs dropped."""
    grouped: dict[int, list[FloatArray]] = {}
    for s in runs:
        if metric == "wall":
            raw = [] if s.get("wall_ns") is None else [float(s["wall_ns"])]
        else:
            raw = metric_values(s, warmup_iters)
        v = np.asarray(raw, dtype=np.float64)
        if v.size:
            grouped.setdefault(int(s["session"]), []).append(v)
    return [grouped[k] for k in sorted(grouped)]


def case_sessions(case_samples: Sequence[Sample], warmup_iters: int = 1) -> Sessions:
    """One case's measured runs as sessions > runs > values of its kind's metric."""
    runs = measured(case_samples)
    return sessions_of(runs, metric_of(runs), warmup_iters)


# hyperfine's rule for its outlier warning: more than 10 standard deviations away, with the
# MAD as the estimate of the standard deviation (modified z-score above 10). Kernels of a few
# microseconds have MADs of a few nanoseconds, so a value must also be 5 % off the median.
SEVERE_OUTLIER = 10.0
SEVERE_SHARE = 0.05


def case_warnings(case_samples: Sequence[Sample], warmup_iters: int = 1) -> list[str]:
    """What a reader of one finished case's numbers should be told, as hyperfine does: severe
    outliers among its measured process runs' wall times and among its metric's values
    (kept, never dropped). Empty when none."""
    runs = measured(case_samples)
    if not runs:
        return []
    parts = []
    metric = metric_of(runs)
    checks = [("process runs' wall times", list(pooled(sessions_of(runs, "wall"))))]
    if metric != "wall":
        checks.append((f"{metric} values", list(pooled(sessions_of(runs, metric, warmup_iters)))))
    for what, values in checks:
        if not values:
            continue
        x = array(values)
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


def ordered_keys(keys: Iterable[CaseKey]) -> list[CaseKey]:
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


def _status(
    key: CaseKey, case_samples: Sequence[Sample], case: Mapping[str, Any] | None, n_measured: int
) -> dict[str, Any]:
    first = case_samples[0] if case_samples else {}
    checks = [s.get("checksum_ok") for s in case_samples]
    checksum_ok = all(c is True for c in checks) if checks else None
    if case is not None:
        status, reason = str(case.get("status", "ok")), case.get("reason")
    elif checksum_ok is False:
        status, reason = "invalid", "checksum mismatch"
    else:
        status, reason = ("ok", None) if n_measured else ("failed", "no completed run")
    return {
        "case_id": str(first.get("case_id") or (case or {}).get("case_id") or _case_id(key)),
        "lang": first.get("lang"),
        "image": first.get("image"),
        "route": route_of(first) if first else None,
        "threads": first.get("threads") or 1,
        "status": status,
        "reason": reason,
        "checksum_ok": checksum_ok,
    }


def _process_columns(runs: Sequence[Sample]) -> dict[str, Any]:
    """CPU, memory, setup and start-up share of the measured process runs."""
    cpu = [c for c in (_cpu_ns(s) for s in runs) if c is not None]
    cpu_over_wall = [
        c / s["wall_ns"] for s in runs if (c := _cpu_ns(s)) is not None and s.get("wall_ns")
    ]
    # Start-up share: the part of a process's wall time spent outside its timed iterations
    # (interpreter start, imports, setup such as loading input), for runs that report iterations.
    startup = [
        (s["wall_ns"] - sum(s["iter_ns"])) / s["wall_ns"]
        for s in runs
        if s.get("iter_ns") and s.get("wall_ns")
    ]
    setup = [s["setup_ns"] for s in runs if s.get("setup_ns") is not None]
    rss = [s["maxrss_kb"] for s in runs if s.get("maxrss_kb") is not None]
    return {
        "cpu_median_ns": median(cpu),
        "cpu_over_wall": median(cpu_over_wall),
        "maxrss_median_kb": median(rss),
        "setup_median_ns": median(setup),
        "startup_share": median(startup),
    }


def _ci_columns(
    prefix: str, sessions: Sessions, *, n_boot: int, seed: Any
) -> tuple[dict[str, float], FloatArray]:
    values = pooled(sessions)
    med, lo, hi = hierarchical_median_ci(sessions, n_boot=n_boot, seed=seed)
    cols = {f"{prefix}_median_ns": med, f"{prefix}_ci_low_ns": lo, f"{prefix}_ci_high_ns": hi}
    return cols, values


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
    runs = measured(case_samples)
    head = _status(key, case_samples, case, len(runs))
    case_id = head["case_id"]
    metric = metric_of(case_samples)
    wall_cols, wall = _ci_columns(
        "wall", sessions_of(runs, "wall"), n_boot=n_boot, seed=seed_for(seed, case_id, "wall")
    )
    kernel_sessions = sessions_of(runs, "kernel", warmup_iters) if metric == "kernel" else []
    kernel_cols, kernel = _ci_columns(
        "kernel", kernel_sessions, n_boot=n_boot, seed=seed_for(seed, case_id, "kernel")
    )
    if metric in ("wall", "kernel"):
        own = wall_cols if metric == "wall" else kernel_cols
        metric_cols = {k.replace(metric, "metric", 1): v for k, v in own.items()}
    else:
        metric_cols, _ = _ci_columns(
            "metric",
            sessions_of(runs, metric, warmup_iters),
            n_boot=n_boot,
            seed=seed_for(seed, case_id, metric),
        )
    return {
        "task": task,
        "impl": impl,
        "size": size,
        **head,
        "n_sessions": len({s["session"] for s in runs}),
        "n_runs": len(runs),
        "n_warmup_runs": sum(1 for s in case_samples if s.get("warmup", False)),
        "n_failed_runs": sum(1 for s in case_samples if not run_ok(s)),
        "n_iters": int(kernel.size),
        "metric": metric,
        **metric_cols,
        **wall_cols,
        **_describe("wall", wall),
        **_process_columns(runs),
        **kernel_cols,
        **_describe("kernel", kernel),
        "n_outliers": int(np.sum(outlier_flags(wall))),
        "n_kernel_outliers": int(np.sum(outlier_flags(kernel))),
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
    `metric` names the case kind's metric and `metric_*` is its median and CI: what speed-ups
    compare. `route` and `threads` say how the implementation gets its speed.
    `status` comes from `cases`; a case without an entry is "ok", or "invalid" on a checksum
    mismatch, or "failed" with no completed run.
    """
    _check_schema(samples)
    per_case = by_case(samples)
    case_by_key = {_key(c): c for c in cases}
    keys = ordered_keys([*case_by_key, *per_case])
    rows = [
        _summary_row(
            k,
            per_case.get(k, []),
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
            "threads": "int64",
            "checksum_ok": "boolean",
        }
    )


# --- speed-ups --------------------------------------------------------------------------------


def present(x: Any) -> bool:
    return x is not None and not pd.isna(x)


def size_of(x: Any) -> int | None:
    return int(x) if present(x) else None


def comparable(row: Mapping[Any, Any]) -> bool:
    """A case that may enter a ratio: status ok, every checksum right, measured runs."""
    return (
        row["status"] == "ok"
        and present(row["checksum_ok"])
        and bool(row["checksum_ok"])
        and int(row["n_runs"]) > 0
        and present(row["metric_median_ns"])
    )


def best_of(
    rows: Sequence[Mapping[Any, Any]], routes: frozenset[str], baseline: str | None = None
) -> Mapping[Any, Any] | None:
    """The fastest comparable row of one (task, size) whose route is in `routes` (the
    baseline aside), by the metric's median."""
    candidates = [r for r in rows if r["impl"] != baseline and r["route"] in routes]
    return min(candidates, key=lambda r: float(r["metric_median_ns"]), default=None)


def best_python(
    rows: Sequence[Mapping[Any, Any]], baseline: str | None
) -> Mapping[Any, Any] | None:
    """The fastest Python-library implementation other than the baseline (never Rust called
    from Python, a JIT or another interpreter: those are routes of their own)."""
    return best_of(rows, PYTHON_LIBRARY, baseline)


def best_rust(rows: Sequence[Mapping[Any, Any]]) -> Mapping[Any, Any] | None:
    """The fastest Rust route: a Rust program or Rust called from Python."""
    return best_of(rows, RUST_ROUTES)


class _Boots:
    """One bootstrap distribution per (case, metric), drawn with the seed `summarize` uses for
    it, so a speed-up's CI comes from the same resamples as the CIs of its two medians."""

    def __init__(
        self, samples: Sequence[Sample], seed: int, warmup_iters: int, n_boot: int
    ) -> None:
        self.per_case = by_case(samples)
        self.seed, self.warmup_iters, self.n_boot = seed, warmup_iters, n_boot
        self.cache: dict[tuple[str, str], tuple[float, FloatArray, int]] = {}

    def __call__(self, row: Mapping[Any, Any], metric: str) -> tuple[float, FloatArray, int]:
        case_id = str(row["case_id"])
        if (case_id, metric) not in self.cache:
            key = (str(row["task"]), str(row["impl"]), size_of(row["size"]))
            runs = measured(self.per_case[key])
            sessions = sessions_of(runs, metric, self.warmup_iters)
            rng = rng_for(seed_for(self.seed, case_id, metric))
            self.cache[case_id, metric] = (
                float(np.median(pooled(sessions))),
                hierarchical_medians(sessions, n_boot=self.n_boot, rng=rng),
                clusters(sessions),
            )
        return self.cache[case_id, metric]


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

    speedup = reference median / impl median (above 1: the impl is faster), on the metric of
    the task's kind (kernel time per iteration, wall time per process, time per request).
    CI: 95 % hierarchical bootstrap of both sides independently, percentile interval of the
    ratio of resampled medians; each case's resamples are those behind its own CI in
    `summarize` (same seed and `n_boot`). `verdict` is "no difference" when the CI touches
    [1 - noise, 1 + noise]. Failed and invalid cases, and cases with a wrong checksum, never
    enter a ratio; no row compares an implementation with itself. `warmup_iters` must match
    the one given to `summarize`. `threads` is the implementation's: above 1, the figure used
    more than one core.
    """
    _check_schema(samples)
    groups: dict[tuple[str, int | None], list[dict[Any, Any]]] = {}
    for row in summary.to_dict("records"):
        if comparable(row):
            groups.setdefault((str(row["task"]), size_of(row["size"])), []).append(row)
    boot = _Boots(samples, seed, warmup_iters, n_boot)
    out: list[dict[str, Any]] = []
    for (task, _), rows in groups.items():
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
                if row["impl"] != ref["impl"]:
                    out.append(_speedup_row(row, kind, ref, boot=boot, noise=noise))
    return pd.DataFrame.from_records(out, columns=SPEEDUP_COLUMNS).astype(
        {"size": "Int64", "threads": "int64"}
    )


def _speedup_row(
    row: Mapping[Any, Any],
    kind: str,
    ref: Mapping[Any, Any],
    *,
    boot: _Boots,
    noise: float,
) -> dict[str, Any]:
    metric = str(row["metric"])
    ref_median, ref_boot, ref_k = boot(ref, metric)
    impl_median, impl_boot, impl_k = boot(row, metric)
    lo, hi = percentiles(ref_boot / impl_boot, min(ref_k, impl_k))
    return {
        "task": row["task"],
        "size": size_of(row["size"]),
        "impl": row["impl"],
        "lang": row["lang"],
        "reference_kind": kind,
        "reference": ref["impl"],
        "route": row["route"],
        "threads": row["threads"],
        "metric": metric,
        "impl_median_ns": impl_median,
        "reference_median_ns": ref_median,
        "speedup": ref_median / impl_median,
        "ci_low": lo,
        "ci_high": hi,
        "noise": noise,
        "verdict": verdict(lo, hi, noise),
    }


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
    a, b = AA_SUFFIXES
    rows = speedups[
        (speedups["reference_kind"] == "baseline")
        & speedups["impl"].astype(str).str.endswith(b)
        & speedups["reference"].astype(str).str.endswith(a)
    ].copy()
    rows["contains_1"] = (rows["ci_low"] <= 1.0) & (rows["ci_high"] >= 1.0)
    rows["flagged"] = rows["verdict"] != NO_DIFFERENCE
    return rows.reset_index(drop=True)
