"""What a run's measurements conclude, per task: the MLOps summary of the report.

Pure functions from the frames of `harness.frames` (and, for service tasks, the raw samples) to
plain records: the best Rust route and the best Python-library route against plain Python, the
size where one route overtakes another, whether the work is CPU- or I/O-bound, its start-up
share and memory; the service tasks' throughput and latency; the smallest difference the run
can resolve. No I/O and no formatting: `harness.report` turns these into text, tables and
charts, and `export_json` into summary.json.

Every sentence the report says about a task is generated here from these numbers: nothing is
written by hand per task.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness import stats
from harness.suite import PYTHON_LIBRARY, RUST_ROUTES

# summary.json. History:
#   1: first version (conclusions, resolution, service, per-case summary, speed-ups).
SUMMARY_SCHEMA = 1
# CPU time over wall time: at least this is CPU-bound, above PARALLEL more than one core.
CPU_BOUND = 0.8
PARALLEL = 1.05
# A load generator busier than this share of a core may itself have been the bottleneck.
CLIENT_BUSY = 0.9
_SWEEP_NAME = re.compile(r"^(?P<family>.+)-p(?P<p>[0-9]+)$")

Row = Mapping[str, Any]


def _num(x: Any) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _size(x: Any) -> int | None:
    v = _num(x)
    return None if v is None else int(v)


def _threads(x: Any) -> int:
    v = _num(x)
    return 1 if v is None else max(1, int(v))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]


def boundness(cpu_over_wall: float | None) -> str:
    """'CPU-bound', 'I/O- or wait-bound' or 'parallel' from CPU time over wall time; '' when
    unknown."""
    v = _num(cpu_over_wall)
    if v is None:
        return ""
    if v > PARALLEL:
        return "parallel"
    return "CPU-bound" if v >= CPU_BOUND else "I/O- or wait-bound"


def family(impl: str, threads: int) -> tuple[str, int] | None:
    """(family, P) of a thread-sweep implementation named NAME-pP that ran on P threads."""
    m = _SWEEP_NAME.match(impl)
    if m is None or int(m["p"]) != threads:
        return None
    return m["family"], int(m["p"])


# --- speed-ups and routes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Speed:
    """One speed-up: `reference` time over `impl` time (above 1: impl is faster)."""

    impl: str
    route: str
    threads: int
    reference: str
    speedup: float
    ci_low: float
    ci_high: float
    verdict: str


def _speed(row: Row) -> Speed:
    return Speed(
        impl=str(row["impl"]),
        route=str(row["route"]),
        threads=_threads(row["threads"]),
        reference=str(row["reference"]),
        speedup=float(row["speedup"]),
        ci_low=float(row["ci_low"]),
        ci_high=float(row["ci_high"]),
        verdict=str(row["verdict"]),
    )


@dataclass(frozen=True)
class Crossover:
    """Between two sizes, route `overtaker` becomes faster than route `overtaken` (medians,
    interpolated on log-log axes)."""

    overtaker: str  # route
    overtaken: str
    size: float
    time_ns: float
    between: tuple[int, int]
    overtaker_impl: str
    overtaken_impl: str


def route_envelopes(summary_rows: Sequence[Row], task: str) -> dict[str, dict[int, Row]]:
    """Per route, its fastest comparable implementation at each size of `task`."""
    out: dict[str, dict[int, Row]] = {}
    for r in summary_rows:
        size, med = _size(r["size"]), _num(r["metric_median_ns"])
        if r["task"] != task or size is None or med is None or not _ok(r):
            continue
        best = out.setdefault(str(r["route"]), {})
        if size not in best or med < float(best[size]["metric_median_ns"]):
            best[size] = r
    return out


def _ok(r: Row) -> bool:
    checksum = r.get("checksum_ok")
    return (
        r["status"] == "ok"
        and checksum is not None
        and not pd.isna(checksum)
        and bool(checksum)
        and int(r["n_runs"]) > 0
    )


def crossovers(curves: Mapping[str, Mapping[int, Row]]) -> list[Crossover]:
    """Every size where one curve overtakes another: between two consecutive sizes that both
    curves measured, the sign of log(time A) - log(time B) changes. The crossing size is
    interpolated linearly on log-log axes (medians only: an estimate, not a measurement)."""
    names = sorted(curves)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            common = sorted(set(curves[a]) & set(curves[b]))
            for s0, s1 in itertools.pairwise(common):
                la0, lb0 = (math.log(float(curves[n][s0]["metric_median_ns"])) for n in (a, b))
                la1, lb1 = (math.log(float(curves[n][s1]["metric_median_ns"])) for n in (a, b))
                d0, d1 = la0 - lb0, la1 - lb1
                if d0 * d1 >= 0:
                    continue
                f = d0 / (d0 - d1)
                x = math.log(s0) + f * (math.log(s1) - math.log(s0))
                t = la0 + f * (la1 - la0)
                faster, slower = (a, b) if d1 < 0 else (b, a)
                out.append(
                    Crossover(
                        overtaker=faster,
                        overtaken=slower,
                        size=math.exp(x),
                        time_ns=math.exp(t),
                        between=(s0, s1),
                        overtaker_impl=str(curves[faster][s1]["impl"]),
                        overtaken_impl=str(curves[slower][s1]["impl"]),
                    )
                )
    return sorted(out, key=lambda c: c.size)


def _is_rust(route: str) -> bool:
    return route in RUST_ROUTES


# --- the conclusions table ---------------------------------------------------------------------


@dataclass(frozen=True)
class Conclusion:
    """One line of the summary table: what the measurements of one task say."""

    task: str
    metric: str
    size: int | None  # the size the speed-ups are read at (the largest with a baseline)
    sizes: list[int]
    baseline: str | None
    best_rust: Speed | None  # against the baseline (or the best library when there is none)
    best_python_lib: Speed | None  # against the baseline; None when the task has no library
    rust_vs_python_lib: Speed | None
    has_python_lib: bool
    crossovers: list[Crossover]
    cpu_over_wall: float | None  # of the baseline (else the median of single-core cases)
    bound: str
    startup_share: dict[str, float] = field(default_factory=dict)  # impl -> share
    maxrss_kb: dict[str, float] = field(default_factory=dict)  # impl -> peak RSS
    multicore: list[str] = field(default_factory=list)  # impls in this line that used >1 core
    verdict: str = ""
    missing: list[str] = field(default_factory=list)  # what this line lacks, and why


def _largest_with(speed_rows: Sequence[Row], task: str, kind: str) -> int | None:
    sizes = [_size(r["size"]) for r in speed_rows if r["task"] == task]
    sizes_kind = [
        _size(r["size"]) for r in speed_rows if r["task"] == task and r["reference_kind"] == kind
    ]
    pool = sizes_kind or sizes
    known = [s for s in pool if s is not None]
    return max(known) if known else None


def _at(rows: Iterable[Row], task: str, size: int | None) -> list[Row]:
    return [r for r in rows if r["task"] == task and _size(r["size"]) == size]


def _fastest(rows: Sequence[Row], routes: frozenset[str]) -> Row | None:
    candidates = [r for r in rows if str(r["route"]) in routes]
    return max(candidates, key=lambda r: float(r["speedup"]), default=None)


def _verdict(c: Conclusion) -> str:
    """One generated sentence: does the best Rust route pay off, against what, from where."""
    # Against the faster of plain Python and the best Python library: a library that loses
    # to plain Python (importing NumPy to print a line) is no reference for Rust.
    lib_wins = c.best_python_lib is not None and c.best_python_lib.speedup >= 1
    rust = (c.rust_vs_python_lib if lib_wins else None) or c.best_rust
    if rust is None:
        return "no Rust result to compare" if c.best_rust is None else ""
    cores = f" on {rust.threads} cores" if rust.threads > 1 else ""
    ref = rust.reference
    if rust.verdict == stats.FASTER:
        text = f"Rust pays off: {rust.impl}{cores} is {_x(rust.speedup)} faster than {ref}"
    elif rust.verdict == stats.SLOWER:
        text = (
            f"Rust does not pay off: {ref} is {_x(1 / rust.speedup)} faster than {rust.impl}{cores}"
        )
    else:
        text = f"no measurable difference between {rust.impl}{cores} and {ref}"
    overtakes = [x for x in c.crossovers if _is_rust(x.overtaker) and not _is_rust(x.overtaken)]
    if overtakes:
        x = overtakes[-1]
        text += f"; Rust ({x.overtaker}) overtakes {x.overtaken} from size ≈ {round_size(x.size)}"
    return text


def _x(v: float) -> str:
    exponent = math.floor(math.log10(abs(v))) if v else 0
    return f"{v:.{max(0, 2 - exponent)}f}×"


def round_size(size: float) -> str:
    """A crossing size to two significant figures: an estimate, not a measurement."""
    if size <= 0:
        return "0"
    r = round(size, 1 - math.floor(math.log10(size)))
    return f"{r:,.0f}" if r >= 10 else f"{r:.2g}"


def _bound(summary_at: Sequence[Row], baseline: str | None) -> float | None:
    base = next((r for r in summary_at if r["impl"] == baseline), None)
    if base is not None and _num(base["cpu_over_wall"]) is not None:
        return float(base["cpu_over_wall"])
    single = [
        float(r["cpu_over_wall"])
        for r in summary_at
        if _num(r["cpu_over_wall"]) is not None and _threads(r["threads"]) == 1
    ]
    return stats.median(single) if single else None


def conclude(
    summary: pd.DataFrame, speedups: pd.DataFrame, baselines: Mapping[str, str]
) -> list[Conclusion]:
    """One conclusion per task, in the summary's order.

    The speed-ups are read at the largest size where the task has speed-ups against its
    baseline. "Best Rust route": the fastest Rust program or Rust called from Python;
    "best Python-library route": the fastest `python-lib` implementation (none where the task
    has no such implementation; a JIT or PyPy never counts as one). Crossovers are between
    routes (each route's fastest implementation at each size), over the task's sizes.
    """
    summary_rows, speed_rows = _records(summary), _records(speedups)
    out = []
    for task in dict.fromkeys(str(r["task"]) for r in summary_rows):
        out.append(_conclude_task(task, summary_rows, speed_rows, baselines.get(task)))
    return out


def _conclude_task(
    task: str,
    summary_rows: list[dict[str, Any]],
    speed_rows: list[dict[str, Any]],
    base: str | None,
) -> Conclusion:
    task_rows = [r for r in summary_rows if r["task"] == task]
    sizes = sorted({s for r in task_rows if (s := _size(r["size"])) is not None})
    size = _largest_with(speed_rows, task, "baseline")
    if size is None and sizes:
        size = sizes[-1]
    at = _at(speed_rows, task, size)
    vs_base = [r for r in at if r["reference_kind"] == "baseline"]
    vs_lib = [r for r in at if r["reference_kind"] == "best_python"]
    has_lib = any(str(r["route"]) in PYTHON_LIBRARY for r in task_rows)
    missing = []
    rust_row = _fastest(vs_base, RUST_ROUTES) or _fastest(vs_lib, RUST_ROUTES)
    lib_row = _fastest(vs_base, PYTHON_LIBRARY)
    if not vs_base:
        missing.append(
            f"no speed-ups against the baseline {base}" if base else "the task has no baseline"
        )
    if rust_row is None:
        missing.append("no Rust route passed")
    if has_lib and lib_row is None and vs_base:
        missing.append("no Python-library route passed")
    rust_vs_lib = None
    if rust_row is not None:
        rust_vs_lib = next((_speed(r) for r in vs_lib if r["impl"] == rust_row["impl"]), None)
    summary_at = [r for r in task_rows if _size(r["size"]) == size]
    shown = [r for r in (base, rust_row and rust_row["impl"], lib_row and lib_row["impl"]) if r]
    by_impl = {str(r["impl"]): r for r in summary_at}
    cpu_wall = _bound(summary_at, base)
    c = Conclusion(
        task=task,
        metric=str(task_rows[0]["metric"]) if task_rows else "",
        size=size,
        sizes=sizes,
        baseline=base,
        best_rust=None if rust_row is None else _speed(rust_row),
        best_python_lib=None if lib_row is None else _speed(lib_row),
        rust_vs_python_lib=rust_vs_lib,
        has_python_lib=has_lib,
        crossovers=crossovers(route_envelopes(summary_rows, task)) if len(sizes) > 1 else [],
        cpu_over_wall=cpu_wall,
        bound=boundness(cpu_wall),
        startup_share={
            i: float(by_impl[i]["startup_share"])
            for i in shown
            if i in by_impl and _num(by_impl[i]["startup_share"]) is not None
        },
        maxrss_kb={
            i: float(by_impl[i]["maxrss_median_kb"])
            for i in shown
            if i in by_impl and _num(by_impl[i]["maxrss_median_kb"]) is not None
        },
        multicore=[i for i in shown if i in by_impl and _threads(by_impl[i]["threads"]) > 1],
        missing=missing,
    )
    return _with_verdict(c)


def _with_verdict(c: Conclusion) -> Conclusion:
    from dataclasses import replace

    return replace(c, verdict=_verdict(c))


# --- how small a difference the run resolves ---------------------------------------------------


@dataclass(frozen=True)
class Resolution:
    """The smallest difference this run can tell from noise."""

    source: str  # "ci" (this run's speed-up CIs) or "aa" (an A/A bundle's twin pairs)
    n: int
    noise: float  # the band a CI must clear to be called faster or slower
    median_half_width: float  # relative CI half-width, median over the ratios
    widest_half_width: float
    widest: str  # which ratio had the widest CI
    smallest_difference: float  # noise + median half-width, or the A/A pairs' largest gap
    flagged: int = 0  # A/A: pairs wrongly called faster or slower


def _half_width(r: Row) -> float | None:
    s, lo, hi = _num(r["speedup"]), _num(r["ci_low"]), _num(r["ci_high"])
    if s is None or lo is None or hi is None or s <= 0:
        return None
    return max(s - lo, hi - s) / s


def resolution(speedups: pd.DataFrame, noise: float = 0.01) -> Resolution | None:
    """From this run's speed-ups: a ratio clears the noise band only when it differs from 1 by
    more than the band plus its CI's half-width, so that sum at the median CI is the smallest
    difference the run resolves (a typical case; the widest CI is named)."""
    rows = [(r, w) for r in _records(speedups) if (w := _half_width(r)) is not None]
    if not rows:
        return None
    widths = [w for _, w in rows]
    worst, worst_w = max(rows, key=lambda rw: rw[1])
    band = _num(rows[0][0].get("noise")) or noise
    med = stats.median(widths)
    return Resolution(
        source="ci",
        n=len(rows),
        noise=band,
        median_half_width=med,
        widest_half_width=worst_w,
        widest=f"{worst['task']} {worst['impl']} vs {worst['reference']}",
        smallest_difference=band + med,
    )


def aa_resolution(aa_speedups: pd.DataFrame, noise: float = 0.01) -> Resolution | None:
    """From an A/A bundle's twin pairs (the same program twice): the largest gap between twins,
    or their CI half-width when larger, is what this host's noise alone produces."""
    from harness.frames import aa_pairs

    pairs = _records(aa_pairs(aa_speedups)) if not aa_speedups.empty else []
    rows = [(p, w) for p in pairs if (w := _half_width(p)) is not None]
    if not rows:
        return None
    gaps = [max(abs(float(p["speedup"]) - 1), w) for p, w in rows]
    worst, worst_w = max(rows, key=lambda rw: rw[1])
    return Resolution(
        source="aa",
        n=len(rows),
        noise=_num(rows[0][0].get("noise")) or noise,
        median_half_width=stats.median([w for _, w in rows]),
        widest_half_width=worst_w,
        widest=f"{worst['task']} {worst['impl']} vs {worst['reference']}",
        smallest_difference=max(gaps),
        flagged=sum(bool(p["flagged"]) for p, _ in rows),
    )


# --- service tasks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RateRow:
    target_rps: float
    achieved_rps: float | None
    latency_ns: dict[str, float]  # p50, p90, p99, p999, max: medians over sessions
    errors: float | None
    client_busy: float | None


@dataclass(frozen=True)
class Server:
    """One server of a service task: saturation throughput, latency at each fixed rate, CPU
    per request, peak memory, and whether the load generator may have been the bottleneck."""

    task: str
    impl: str
    route: str
    threads: int
    sessions: int
    rps: float | None
    rps_ci_low: float | None
    rps_ci_high: float | None
    server_cpu_per_request_ns: float | None
    server_maxrss_kb: float | None
    client_busy: float | None  # the load generator's CPU over wall at saturation
    rates: list[RateRow]
    busy_phases: list[str]  # phases where the load generator was above CLIENT_BUSY


def _median(values: Iterable[float | None]) -> float | None:
    v = [x for x in values if x is not None]
    return stats.median(v) if v else None


def _busy(s: Row) -> float | None:
    cpu, wall = _num(s.get("client_cpu_ns")), _num(s.get("wall_ns"))
    return cpu / wall if cpu is not None and wall else None


def _good(s: Row) -> bool:
    return s.get("exit_code") == 0 and not s.get("warmup") and not s.get("timed_out")


def servers(samples: Sequence[Row], seed: int = 0, n_boot: int = stats.N_BOOT) -> list[Server]:
    """One record per (service task, server), from the raw load-phase samples."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for s in samples:
        if s.get("kind") == "service" or s.get("phase") is not None:
            groups.setdefault((str(s["task"]), str(s["impl"])), []).append(s)
    out = []
    for (task, impl), rows in groups.items():
        sat = [s for s in rows if s.get("phase") == "saturate" and _good(s)]
        per_session: dict[int, list[float]] = {}
        for s in sat:
            if (rps := _num(s.get("rps"))) is not None:
                per_session.setdefault(int(s["session"]), []).append(rps)
        grouped = [[np.asarray([v]) for v in per_session[k]] for k in sorted(per_session)]
        rps, lo, hi = stats.hierarchical_median_ci(
            grouped, n_boot=n_boot, seed=stats.seed_for(seed, task, impl, "rps")
        )
        cpu_per_req = _median(
            (_num(s.get("server_cpu_ns")) or 0) / float(s["requests"])
            if _num(s.get("server_cpu_ns")) is not None and _num(s.get("requests"))
            else None
            for s in sat
        )
        rates = _rate_rows([s for s in rows if s.get("phase") == "rate" and _good(s)])
        busy = [
            _phase_name(s)
            for s in rows
            if _good(s) and (b := _busy(s)) is not None and b > CLIENT_BUSY
        ]
        rss = [v for s in rows if (v := _num(s.get("server_maxrss_kb"))) is not None]
        first = rows[0]
        out.append(
            Server(
                task=task,
                impl=impl,
                route=str(first.get("route") or ""),
                threads=_threads(first.get("threads")),
                sessions=len(per_session),
                rps=_num(rps),
                rps_ci_low=_num(lo),
                rps_ci_high=_num(hi),
                server_cpu_per_request_ns=cpu_per_req,
                server_maxrss_kb=max(rss) if rss else None,
                client_busy=_median(_busy(s) for s in sat),
                rates=rates,
                busy_phases=list(dict.fromkeys(busy)),
            )
        )
    return out


def _phase_name(s: Row) -> str:
    rate = _num(s.get("target_rps"))
    return str(s.get("phase")) + ("" if rate is None else f" at {rate:g} req/s")


def _rate_rows(rate_samples: Sequence[Row]) -> list[RateRow]:
    by_rate: dict[float, list[Row]] = {}
    for s in rate_samples:
        if (r := _num(s.get("target_rps"))) is not None:
            by_rate.setdefault(r, []).append(s)
    out = []
    for rate in sorted(by_rate):
        rows = by_rate[rate]
        keys = sorted({k for s in rows for k in (s.get("latency_ns") or {})})
        latency = {
            k: v
            for k in keys
            if (v := _median(_num((s.get("latency_ns") or {}).get(k)) for s in rows)) is not None
        }
        out.append(
            RateRow(
                target_rps=rate,
                achieved_rps=_median(_num(s.get("rps")) for s in rows),
                latency_ns=latency,
                errors=_median(_num(s.get("errors")) for s in rows),
                client_busy=_median(_busy(s) for s in rows),
            )
        )
    return out


# --- parallel scaling --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scaling:
    """A thread-sweep family (NAME-p1, NAME-p2, ...) of one task at one size: speed-up
    T(1) / T(P) and efficiency speed-up / P, from medians."""

    task: str
    family: str
    size: int | None
    points: list[tuple[int, float, float, float]]  # (P, median ns, speed-up, efficiency)


def scaling(summary: pd.DataFrame) -> list[Scaling]:
    """Every thread-sweep family that has P = 1 and at least one P > 1, at each size."""
    groups: dict[tuple[str, str, int | None], dict[int, float]] = {}
    for r in _records(summary):
        fam = family(str(r["impl"]), _threads(r["threads"]))
        med = _num(r["metric_median_ns"])
        if fam is None or med is None or not _ok(r):
            continue
        groups.setdefault((str(r["task"]), fam[0], _size(r["size"])), {})[fam[1]] = med
    out = []
    for (task, fam_name, size), by_p in groups.items():
        if 1 not in by_p or len(by_p) < 2:
            continue
        t1 = by_p[1]
        points = [(p, by_p[p], t1 / by_p[p], t1 / by_p[p] / p) for p in sorted(by_p)]
        out.append(Scaling(task, fam_name, size, points))
    return out


# --- exports ----------------------------------------------------------------------------------

CONCLUSION_COLUMNS = [
    "task",
    "metric",
    "size",
    "baseline",
    "best_rust",
    "best_rust_threads",
    "best_rust_speedup",
    "best_rust_ci_low",
    "best_rust_ci_high",
    "best_rust_verdict",
    "best_python_lib",
    "best_python_lib_speedup",
    "best_python_lib_ci_low",
    "best_python_lib_ci_high",
    "best_python_lib_verdict",
    "rust_vs_python_lib_speedup",
    "rust_vs_python_lib_ci_low",
    "rust_vs_python_lib_ci_high",
    "rust_vs_python_lib_verdict",
    "crossovers",
    "cpu_over_wall",
    "bound",
    "startup_share",
    "maxrss_kb",
    "multicore",
    "verdict",
    "missing",
]


def _flat_speed(prefix: str, s: Speed | None, name: bool = True) -> dict[str, Any]:
    cols: dict[str, Any] = {}
    if name:
        cols[prefix] = None if s is None else s.impl
    for k in ("speedup", "ci_low", "ci_high", "verdict"):
        cols[f"{prefix}_{k}"] = None if s is None else getattr(s, k)
    return cols


def conclusions_frame(conclusions: Sequence[Conclusion]) -> pd.DataFrame:
    """The summary table as one flat row per task (conclusions.csv)."""
    rows = []
    for c in conclusions:
        rows.append(
            {
                "task": c.task,
                "metric": c.metric,
                "size": c.size,
                "baseline": c.baseline,
                **_flat_speed("best_rust", c.best_rust),
                "best_rust_threads": None if c.best_rust is None else c.best_rust.threads,
                **_flat_speed("best_python_lib", c.best_python_lib),
                **_flat_speed("rust_vs_python_lib", c.rust_vs_python_lib, name=False),
                "crossovers": "; ".join(
                    f"{x.overtaker} overtakes {x.overtaken} at {x.size:.3g}" for x in c.crossovers
                ),
                "cpu_over_wall": c.cpu_over_wall,
                "bound": c.bound,
                "startup_share": "; ".join(f"{k} {v:.3g}" for k, v in c.startup_share.items()),
                "maxrss_kb": "; ".join(f"{k} {v:.0f}" for k, v in c.maxrss_kb.items()),
                "multicore": "; ".join(c.multicore),
                "verdict": c.verdict,
                "missing": "; ".join(c.missing),
            }
        )
    return pd.DataFrame.from_records(rows, columns=CONCLUSION_COLUMNS).astype({"size": "Int64"})


def _jsonable(x: Any) -> Any:
    """`x` with NaN, pd.NA and NumPy scalars turned into JSON values."""
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if x is None or x is pd.NA:
        return None
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def export(
    manifest: Mapping[str, Any],
    summary: pd.DataFrame,
    speedups: pd.DataFrame,
    conclusions: Sequence[Conclusion],
    *,
    res: Resolution | None = None,
    service: Sequence[Server] = (),
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """summary.json as a dict: versioned (`schema`), with the run's identity, the conclusions,
    the resolution, the service servers, the per-case summary and every speed-up. The raw
    samples stay in samples.jsonl."""
    return _jsonable(
        {
            "schema": SUMMARY_SCHEMA,
            "run_id": manifest.get("run_id"),
            "host": manifest.get("host"),
            "status": manifest.get("status"),
            "cpus": manifest.get("cpus"),
            "notes": list(notes),
            "conclusions": [asdict(c) for c in conclusions],
            "resolution": None if res is None else asdict(res),
            "service": [asdict(s) for s in service],
            "summary": _records(summary),
            "speedups": _records(speedups),
        }
    )
