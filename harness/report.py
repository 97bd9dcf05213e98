"""Reports from a results bundle: Markdown, self-contained HTML and the summary CSV.

Every function returns a string; only the CLI or the results store writes files. Both reports
render one view model (`_context`) built from the manifest, `frames.summarize`,
`frames.speedups` and the case statuses, so they always say the same thing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from harness import frames
from harness.conclusions import (
    CLIENT_BUSY,
    Conclusion,
    Resolution,
    Scaling,
    Server,
    Speed,
    aa_resolution,
    conclude,
    conclusions_frame,
    export,
    resolution,
    round_size,
    scaling,
    servers,
)
from harness.host import engine_checks
from harness.suite import COLD_SUFFIX, RUST_ROUTES

TEMPLATES = Path(__file__).parent / "templates"
# The report's sections, in order: templates/html/NAME.j2 and templates/md/NAME.j2 each. A new
# section is one template per format and one name here.
SECTIONS = [
    "header",
    "summary",
    "aa",
    "startup_chart",
    "service",
    "startup",
    "overview",
    "tasks",
    "failures",
    "stops",
    "how_to_read",
    "host_images",
]
DASH = "—"
_TIME_UNITS = ((1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1.0, "ns"))
_KIB_UNITS = ((1024.0**2, "GiB"), (1024.0, "MiB"), (1.0, "KiB"))
_LINK_CLOSE = re.compile(r"\](?=[(\[:]|$)")
_KIND_TITLE = {"baseline": "baseline", "best_python": "best Python library"}


# --- formatting helpers (pure) ----------------------------------------------------------------


def _missing(x: Any) -> bool:
    if x is None:
        return True
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def sig(value: float, digits: int = 3) -> str:
    """`value` rounded to `digits` significant figures, in fixed-point notation."""
    if value == 0 or not math.isfinite(value):
        return f"{value:.{max(0, digits - 1)}f}" if value == 0 else str(value)
    exponent = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - exponent)
    text = f"{value:.{decimals}f}"
    # Rounding can carry into a new digit (9.996 -> 10.00): redo with the rounded magnitude.
    rounded = float(text)
    if rounded != 0 and math.floor(math.log10(abs(rounded))) != exponent:
        text = f"{rounded:.{max(0, digits - 1 - math.floor(math.log10(abs(rounded))))}f}"
    return text


def _time_unit(ns: float) -> tuple[float, str]:
    for i, (factor, unit) in enumerate(_TIME_UNITS):
        if abs(ns) >= factor or factor == 1.0:
            # 999.96 ns rounds to "1000 ns": show it as 1.00 µs instead.
            if i > 0 and abs(float(sig(ns / factor))) >= 1000:
                return _TIME_UNITS[i - 1]
            return factor, unit
    return _TIME_UNITS[-1]  # pragma: no cover - the loop always returns


def _num(x: Any) -> float | None:
    """`x` as a float, or None when it is missing (None, NaN, pd.NA)."""
    return None if _missing(x) else float(x)


def format_ns(ns: float | None) -> str:
    """A duration in nanoseconds with a human unit: '812 ns', '4.57 µs', '12.3 ms', '1.50 s'."""
    v = _num(ns)
    if v is None:
        return DASH
    factor, unit = _time_unit(v)
    return f"{sig(v / factor)} {unit}"


def format_ns_range(low: float | None, high: float | None) -> str:
    """A CI of durations in one unit (that of the larger bound): '[4.50, 4.62] µs'."""
    lo, hi = _num(low), _num(high)
    if lo is None or hi is None:
        return DASH
    factor, unit = _time_unit(max(abs(lo), abs(hi)))
    return f"[{sig(lo / factor)}, {sig(hi / factor)}] {unit}"


def format_ratio(x: float | None) -> str:
    """A speed-up: '2.01×', '0.500×', '1234×'."""
    v = _num(x)
    return DASH if v is None else f"{sig(v)}×"


def format_ratio_ci(low: float | None, high: float | None) -> str:
    """A speed-up CI: '[1.98, 2.05]'."""
    lo, hi = _num(low), _num(high)
    return DASH if lo is None or hi is None else f"[{sig(lo)}, {sig(hi)}]"


def format_percent(x: float | None, digits: int = 2) -> str:
    """A fraction as a percentage with `digits` significant figures: 0.0123 -> '1.2 %'."""
    v = _num(x)
    return DASH if v is None else f"{sig(100 * v, digits)} %"


def format_kib(kib: float | None) -> str:
    """A size in KiB (rusage's ru_maxrss on Linux) with a human unit: '19.5 MiB'."""
    v = _num(kib)
    if v is None:
        return DASH
    factor, unit = next((f, u) for f, u in _KIB_UNITS if abs(v) >= f or f == 1.0)
    return f"{sig(v / factor)} {unit}"


def format_size(n: int | None) -> str:
    """A problem size with thousands separators; '—' for tasks without one."""
    v = _num(n)
    return DASH if v is None else f"{int(v):,}"


def format_number(x: float | None, digits: int = 3) -> str:
    """A plain number to `digits` significant figures."""
    v = _num(x)
    return DASH if v is None else sig(v, digits)


def boundness(cpu_over_wall: float | None) -> str:
    """What CPU time over wall time says about a process: 'CPU', 'waits' or 'parallel'.

    Above 1.05: more than one core busy. 0.8 and up: CPU-bound. Below: the process spends a
    good part of its time waiting (I/O, sleep, locks).
    """
    v = _num(cpu_over_wall)
    if v is None:
        return DASH
    if v > 1.05:
        return "parallel"
    return "CPU" if v >= 0.8 else "waits"


def md_escape(text: Any) -> str:
    """Text for a Markdown table cell or heading: no HTML tags, no broken tables, no links.

    A `]` that could close a link or image (`](url)`, `][ref]`, `]: url`, or at the end of a
    value that a template follows with more text) is escaped, so a name from a bundle never
    becomes a `javascript:` link or a remote image.
    """
    s = "" if _missing(text) else str(text)
    s = " ".join(s.splitlines())
    for char, repl in (("\\", "\\\\"), ("|", "\\|"), ("`", "\\`"), ("<", "&lt;"), ("*", "\\*")):
        s = s.replace(char, repl)
    return _LINK_CLOSE.sub(r"\\]", s)


def md_fence(text: str) -> str:
    """A backtick fence longer than any backtick run in `text`, so the block cannot end early."""
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


# --- view model -------------------------------------------------------------------------------

HOW_TO_READ = (
    "Every time is a median over repeated measurements: a median resists the occasional slow "
    "run a busy host produces. CV (standard deviation over mean) shows the spread; outliers "
    "(modified z-score above 3.5) are counted in summary.csv, never dropped.",
    "A 95 % CI comes from a hierarchical bootstrap: container sessions are resampled, then "
    "process runs within each session, and the median is recomputed each time. It says how "
    "far the median could move if the benchmark were repeated on this host, not on another "
    "one: across hosts compare speed-ups, not absolute times. With few sessions the interval "
    "is widened (Hesterberg's expanded percentile interval): a handful of sessions understates "
    "how much sessions differ, so two sessions give the whole range of their medians.",
    "Speed-up = reference median / implementation median: 2× is twice as fast, 0.5× half as "
    "fast. The references are the plain-Python baseline and the fastest Python-library "
    "implementation (Rust called from Python does not count as one). Speed-ups use kernel time "
    "where both sides report iterations, else wall time. 'faster' or 'slower' is said only when "
    "the whole CI lies outside 1 ± {noise}; 'no difference' means the CI touches that band: the "
    "measurement cannot tell the two apart, which is not proof that they are equal.",
    "Wall time is the whole process: start-up of the interpreter or binary, imports, setup "
    "(reading or generating the input) and every iteration. Kernel time is one iteration of the "
    "timed region, warm-up iterations excluded. Start-up share = (wall − all iterations) / "
    "wall: what a short job pays before and around its work; it shrinks as the work grows. "
    "Setup is the input time the program reports.",
    "CPU/wall = (user + system CPU time) / wall time of the process: about 1 for CPU-bound "
    "work, well below 1 when the process waits (I/O, sleep, locks), above 1 when it keeps "
    "several cores busy. It covers the whole process: programs do not report CPU time per "
    "iteration. Peak RSS is the process's maximum resident set size.",
)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]


def _size(x: Any) -> int | None:
    return None if _missing(x) else int(x)


def _text(x: Any) -> str:
    if _missing(x):
        return ""
    if isinstance(x, Mapping | list | tuple):
        return json.dumps(x, sort_keys=True, default=str)
    return str(x)


def _speed_cell(sp: Mapping[str, Any] | None) -> dict[str, str]:
    if sp is None:
        return {"ratio": DASH, "ci": "", "verdict": "", "text": DASH, "cores": ""}
    ratio, ci = format_ratio(sp["speedup"]), format_ratio_ci(sp["ci_low"], sp["ci_high"])
    return {
        "ratio": ratio,
        "ci": ci,
        "verdict": str(sp["verdict"]),
        "text": f"{ratio} {ci} {sp['verdict']}",
        "cores": "",
    }


def _order_key(row: Mapping[str, Any]) -> tuple[int, float]:
    """Comparable cases slowest first (speed-ups grow down the table); failures last."""
    if row["status"] != "ok" or _missing(row["metric_median_ns"]):
        return (1, 0.0)
    return (0, -float(row["metric_median_ns"]))


def _checksum_text(x: Any) -> str:
    if _missing(x):
        return DASH
    return "ok" if bool(x) else "MISMATCH"


def _task_sections(
    summary: list[dict[str, Any]], speed: list[dict[str, Any]], baselines: Mapping[str, Any]
) -> list[dict[str, Any]]:
    lookup = {(r["task"], _size(r["size"]), r["impl"], r["reference_kind"]): r for r in speed}
    refs: dict[tuple[str, int | None, str], str] = {
        (r["task"], _size(r["size"]), r["reference_kind"]): str(r["reference"]) for r in speed
    }
    tasks: dict[str, list[dict[str, Any]]] = {}
    for row in summary:
        tasks.setdefault(str(row["task"]), []).append(row)

    sections = []
    for task, rows in tasks.items():
        sizes = sorted({_size(r["size"]) for r in rows}, key=lambda s: -1 if s is None else s)
        table = []
        for size in sizes:
            at_size = sorted((r for r in rows if _size(r["size"]) == size), key=_order_key)
            for r in at_size:
                cells: dict[str, Any] = {}
                for kind in ("baseline", "best_python"):
                    if refs.get((task, size, kind)) == r["impl"]:
                        title = f"({_KIND_TITLE[kind]})"
                        cells[kind] = {
                            "ratio": title,
                            "ci": "",
                            "verdict": "",
                            "text": title,
                            "cores": "",
                        }
                    else:
                        cells[kind] = _speed_cell(lookup.get((task, size, r["impl"], kind)))
                cpu_wall = r["cpu_over_wall"]
                n_threads = 1 if _missing(r["threads"]) else int(r["threads"])
                if n_threads > 1:  # a figure that used several cores says so
                    for kind in ("baseline", "best_python"):
                        if cells[kind]["ci"]:
                            note = f"on {n_threads} cores"
                            cells[kind] = {
                                **cells[kind],
                                "cores": note,
                                "text": f"{cells[kind]['text']} ({note})",
                            }
                table.append(
                    {
                        "impl": _text(r["impl"]),
                        "lang": _text(r["lang"]) or DASH,
                        "route": _text(r["route"]) or DASH,
                        "cores": cores_text(r["threads"]),
                        "size": format_size(size),
                        "status": _text(r["status"]),
                        "wall": format_ns(r["wall_median_ns"]),
                        "wall_ci": format_ns_range(r["wall_ci_low_ns"], r["wall_ci_high_ns"]),
                        "wall_cv": format_percent(r["wall_cv"]),
                        "kernel": format_ns(r["kernel_median_ns"]),
                        "kernel_ci": format_ns_range(r["kernel_ci_low_ns"], r["kernel_ci_high_ns"]),
                        "setup": format_ns(r["setup_median_ns"]),
                        "cpu_wall": DASH
                        if _missing(cpu_wall)
                        else f"{format_number(cpu_wall, 2)} ({boundness(cpu_wall)})",
                        "startup_share": format_percent(r["startup_share"], 3),
                        "rss": format_kib(r["maxrss_median_kb"]),
                        "vs_baseline": cells["baseline"],
                        "vs_best": cells["best_python"],
                        "checksum": _checksum_text(r["checksum_ok"]),
                        "runs": f"{int(r['n_runs'])} ({int(r['n_sessions'])})",
                    }
                )
        baseline = next((v for (t, _, k), v in refs.items() if t == task and k == "baseline"), "")
        if not baseline and baselines.get(task):
            baseline = f"{baselines[task]} (no usable result: no speed-ups against it)"
        best_by_size = {s: v for (t, s, k), v in refs.items() if t == task and k == "best_python"}
        best = (
            sorted(set(best_by_size.values()))
            if len(set(best_by_size.values())) <= 1
            else [f"{v} (size {format_size(s)})" for s, v in best_by_size.items()]
        )
        ratios = [float(r["cpu_over_wall"]) for r in rows if not _missing(r["cpu_over_wall"])]
        sections.append(
            {
                "name": task,
                "baseline": baseline,
                "best_python": ", ".join(best),
                "cpu_wall_range": _range_text(ratios),
                "rows": table,
            }
        )
    return sections


def _range_text(values: list[float]) -> str:
    if not values:
        return ""
    low, high = sig(min(values), 2), sig(max(values), 2)
    return low if low == high else f"{low}–{high}"


def cores_text(threads: Any) -> str:
    """How many cores a figure used: "1", or "N (parallel)" so it is never read as a
    single-core result."""
    n = 1 if _missing(threads) else int(threads)
    return f"{n} (parallel)" if n > 1 else "1"


def _is_rust_route(row: Mapping[str, Any]) -> bool:
    return str(row.get("route")) in RUST_ROUTES


def _overview(speed: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Per (task, size): what the Python-library route gets, and what the best Rust route adds."""
    groups: dict[tuple[str, int | None], list[dict[str, Any]]] = {}
    for r in speed:
        groups.setdefault((str(r["task"]), _size(r["size"])), []).append(r)
    out = []
    for (task, size), rows in groups.items():
        vs_base = [r for r in rows if r["reference_kind"] == "baseline"]
        vs_best = {r["impl"]: r for r in rows if r["reference_kind"] == "best_python"}
        best_name = next((str(r["reference"]) for r in vs_best.values()), None)
        best_row = next((r for r in vs_base if r["impl"] == best_name), None)
        rust = [r for r in vs_base if _is_rust_route(r)]
        if not rust:  # no baseline: rank the Rust routes against the best Python library
            rust = [r for r in vs_best.values() if _is_rust_route(r)]
        top = max(rust, key=lambda r: float(r["speedup"]), default=None)
        top_vs_best = vs_best.get(top["impl"]) if top is not None else None
        out.append(
            {
                "task": task,
                "size": format_size(size),
                "metric": str(rows[0]["metric"]),
                "best_python": best_name or DASH,
                "best_python_vs_baseline": _speed_cell(best_row)["text"],
                "rust": _with_cores(top),
                "rust_vs_baseline": (
                    _speed_cell(top)["text"]
                    if top is not None and top["reference_kind"] == "baseline"
                    else DASH
                ),
                "rust_vs_best_python": _speed_cell(top_vs_best)["text"],
            }
        )
    return out


def _with_cores(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return DASH
    n = 1 if _missing(row.get("threads")) else int(row["threads"])
    return f"{row['impl']} ({n} cores)" if n > 1 else str(row["impl"])


def _failures(
    summary: list[dict[str, Any]], cases: Sequence[Mapping[str, Any]]
) -> list[dict[str, str]]:
    by_id = {str(c.get("case_id")): c for c in cases}
    out = []
    for r in summary:
        bad_checksum = not _missing(r["checksum_ok"]) and not bool(r["checksum_ok"])
        if r["status"] == "ok" and not bad_checksum:
            continue
        case = by_id.get(str(r["case_id"]), {})
        out.append(
            {
                "case_id": str(r["case_id"]),
                "status": str(r["status"]) if r["status"] != "ok" else "invalid",
                "reason": _text(r["reason"]) or _text(case.get("reason")) or "checksum mismatch",
                "stderr_tail": _text(case.get("stderr_tail")).rstrip("\n"),
            }
        )
    return out


def _mode_text(manifest: Mapping[str, Any]) -> str:
    """How the benchmarks ran: in containers or not, pinned or not."""
    where = (
        "no container (local: the images' files, chroot)"
        if manifest.get("executor") == "local"
        else "Docker containers"
    )
    pinned = "pinned to the cpuset" if manifest.get("pinned", True) else "NOT pinned (any core)"
    return f"{where}, {pinned}"


def _stops(cases: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Per case: sessions, why it stopped adding sessions, the warm-up found from its data
    ("" when the bundle has none) and its warnings."""
    return [
        {
            "case_id": _text(c.get("case_id")),
            "sessions": _text(c.get("sessions")) or DASH,
            "stop_reason": _text(c.get("stop_reason")) or DASH,
            "warmup": warmup_text(c),
            "warnings": " ".join(_text(w) for w in c.get("warnings") or []),
        }
        for c in cases
        if c.get("stop_reason") is not None
    ]


def _aa(speedups: pd.DataFrame) -> dict[str, Any] | None:
    """The A/A section of a `harness run --aa` bundle: each twin pair's ratio and verdict."""
    pairs = _records(frames.aa_pairs(speedups))
    if not pairs:
        return None
    return {
        "n": len(pairs),
        "contains_1": sum(bool(p["contains_1"]) for p in pairs),
        "flagged": sum(bool(p["flagged"]) for p in pairs),
        "pairs": [
            {
                "task": str(p["task"]),
                "size": format_size(_size(p["size"])),
                "metric": str(p["metric"]),
                **_speed_cell(p),
            }
            for p in pairs
        ],
    }


def _cores_text(cpus: Any) -> str:
    n = _num(cpus) if isinstance(cpus, int | float) and not isinstance(cpus, bool) else None
    if n is None:
        return "? cores"
    return f"{int(n)} core{'s' if int(n) != 1 else ''}"


def _profile_text(profile: Any) -> str:
    """The profile name with its repetition counts, when the manifest records them."""
    if not isinstance(profile, Mapping):
        return _text(profile) or DASH
    counts = [
        f"{label} {profile[key]}"
        for key, label in (
            ("sessions", "sessions"),
            ("runs", "runs"),
            ("warmup", "warm-up"),
            ("iters", "iterations"),
        )
        if key in profile
    ]
    name = _text(profile.get("name")) or DASH
    return f"{name} ({', '.join(counts)})" if counts else name


def _suite_text(suite: Any) -> str:
    if not isinstance(suite, Mapping):
        return _text(suite) or DASH
    name = _text(suite.get("name")) or DASH
    digest = _text(suite.get("sha256"))
    return f"{name} (sha256 {digest[:12]})" if digest else name


def _harness_text(manifest: Mapping[str, Any]) -> str:
    version, commit = _text(manifest.get("harness_version")), _text(manifest.get("git_commit"))
    if commit:
        return f"{version or DASH} (commit {commit[:12]})"
    return version or DASH


@dataclass(frozen=True)
class Extras:
    """What a report shows besides the frames: the raw samples (for service tasks), an A/A
    bundle's speed-ups (for the resolution), and problems found reading the bundle."""

    samples: Sequence[Mapping[str, Any]] = ()
    aa_speedups: pd.DataFrame | None = None
    aa_source: str = ""
    notes: Sequence[str] = ()


def analyse(
    manifest: Mapping[str, Any],
    summary: pd.DataFrame,
    speedups: pd.DataFrame,
    extras: Extras = Extras(),
) -> dict[str, Any]:
    """The conclusions, resolution, servers and scaling of a bundle (no formatting)."""
    noise = float(speedups["noise"].iloc[0]) if not speedups.empty else 0.01
    aa = bool(manifest.get("aa"))
    res = None
    if extras.aa_speedups is not None:
        res = aa_resolution(extras.aa_speedups, noise)
    elif aa:
        res = aa_resolution(speedups, noise)
    if res is None:
        res = resolution(speedups, noise)
    return {
        "conclusions": [] if aa else conclude(summary, speedups, manifest.get("baselines") or {}),
        "resolution": res,
        "servers": servers(extras.samples),
        "scaling": scaling(summary),
    }


def _context(
    manifest: Mapping[str, Any],
    summary: pd.DataFrame,
    speedups: pd.DataFrame,
    cases: Sequence[Mapping[str, Any]],
    extras: Extras = Extras(),
    *,
    with_charts: bool = False,
) -> dict[str, Any]:
    summary_rows, speed_rows = _records(summary), _records(speedups)
    found = analyse(manifest, summary, speedups, extras)
    conclusions: list[Conclusion] = found["conclusions"]
    service = _service(found["servers"])
    task_charts: dict[str, dict[str, Any]] = {}
    startup_chart = None
    if with_charts:
        from harness import charts

        task_charts = _task_charts(summary_rows, conclusions, found["scaling"])
        startup_chart = _chart_view(
            charts.startup_chart(_startup_points(summary_rows), fmt_ns=format_ns)
        )
        by_task: dict[str, list[Server]] = {}
        for srv in found["servers"]:
            by_task.setdefault(srv.task, []).append(srv)
        for sec in service:
            sec["chart"] = _chart_view(
                charts.latency_chart(sec["task"], by_task[sec["task"]], fmt_ns=format_ns)
            )
    missing = _missing_cases(manifest, summary_rows)
    status = str(manifest.get("status") or "unknown")
    n_bad = sum(1 for r in summary_rows if r["status"] != "ok")
    images = manifest.get("images") or {}
    noise = float(speed_rows[0]["noise"]) if speed_rows else 0.01
    aa = _aa(speedups) if manifest.get("aa") else None
    stops = _stops(cases)
    return {
        "run": {
            "run_id": _text(manifest.get("run_id")) or DASH,
            "host": _text(manifest.get("host")) or DASH,
            "status": status,
            "incomplete": status != "complete",
            "cpus": _text(manifest.get("cpus")) or DASH,
            "cores_text": _cores_text(manifest.get("cpus")),
            "cpuset": _text(manifest.get("cpuset")) or DASH,
            "mode": _mode_text(manifest),
            "profile": _profile_text(manifest.get("profile")),
            "suite": _suite_text(manifest.get("suite")),
            "harness": _harness_text(manifest),
            "interrupted": bool(manifest.get("interrupted")),
            "error": _text(manifest.get("error")),
            "started": _text(manifest.get("started")) or DASH,
            "finished": _text(manifest.get("finished")) or DASH,
            "n_cases": len(summary_rows),
            "n_bad": n_bad,
        },
        "warnings": [_text(w) for w in manifest.get("warnings") or []],
        "fingerprint": [
            {"key": str(k), "value": _text(v)}
            for k, v in sorted((manifest.get("fingerprint") or {}).items())
        ],
        "images": [
            {
                "name": str(name),
                "tag": _text(spec.get("tag")) or DASH,
                "id": _text(spec.get("id")) or DASH,
                "versions": ", ".join(
                    f"{k} {v}" for k, v in sorted((spec.get("versions") or {}).items())
                )
                or DASH,
            }
            for name, spec in sorted(images.items())
        ],
        "aa": aa,
        # An A/A bundle compares twins: no "where Rust pays off".
        "overview": [] if aa else _overview(speed_rows),
        "conclusions": [_conclusion_row(c) for c in conclusions],
        "host_line": _host_text(manifest),
        "noise_warnings": _noise_warnings(manifest, cases),
        "resolution": _resolution_text(found["resolution"]),
        "resolution_source": extras.aa_source,
        "problems": [_text(n) for n in extras.notes],
        "missing_cases": missing,
        "service": service,
        "startup": _startup(manifest, summary_rows, cases),
        "startup_chart": startup_chart,
        "charts": task_charts,
        "n_charts": sum(1 for t in task_charts.values() for c in t.values() if c)
        + (1 if startup_chart else 0)
        + sum(1 for sec in service if sec["chart"]),
        "stops": stops,
        "stops_warmup": any(c["warmup"] for c in stops),
        "tasks": _task_sections(summary_rows, speed_rows, manifest.get("baselines") or {}),
        "failures": _failures(summary_rows, cases),
        "how_to_read": [p.format(noise=format_percent(noise, 2)) for p in HOW_TO_READ],
        "sections": SECTIONS,
    }


# --- the summary: conclusions, host, noise, resolution -----------------------------------------


def _cores_suffix(threads: int) -> str:
    return f" ({threads} cores)" if threads > 1 else ""


def impl_label(impl: Any, threads: Any) -> str:
    """An implementation's name, with the cores it used when more than one."""
    n = 1 if _missing(threads) else int(threads)
    return f"{impl}{_cores_suffix(n)}"


def _speed_text(sp: Speed | None, *, name: bool = True) -> dict[str, str]:
    """A summary speed-up in parts: who, the figure with its CI, the cores, the verdict."""
    if sp is None:
        return {"name": "", "figure": DASH, "cores": "", "verdict": ""}
    return {
        "name": sp.impl if name else "",
        "figure": f"{format_ratio(sp.speedup)} {format_ratio_ci(sp.ci_low, sp.ci_high)}",
        "cores": f"on {sp.threads} cores" if sp.threads > 1 else "",
        "verdict": sp.verdict,
    }


def _per_impl(values: Mapping[str, float], fmt: Any) -> str:
    return ", ".join(f"{k} {fmt(v)}" for k, v in values.items()) or DASH


def _crossover_text(c: Conclusion) -> str:
    if len(c.sizes) < 2:
        return "one size measured"
    if not c.crossovers:
        return (
            f"no route overtakes another between {format_size(c.sizes[0])} and "
            f"{format_size(c.sizes[-1])}"
        )
    return "; ".join(
        f"{x.overtaker} overtakes {x.overtaken} at ≈ {round_size(x.size)}" for x in c.crossovers
    )


def _conclusion_row(c: Conclusion) -> dict[str, Any]:
    lib: dict[str, str]
    if not c.has_python_lib:
        lib = {"name": "no Python-library implementation", "figure": "", "cores": "", "verdict": ""}
    else:
        lib = _speed_text(c.best_python_lib)
    startup = (
        "all of it (a start-up task)"
        if c.metric == "wall"
        else _per_impl(c.startup_share, lambda v: format_percent(v, 2))
    )
    return {
        "task": c.task,
        "size": format_size(c.size) + (f" (largest of {len(c.sizes)})" if len(c.sizes) > 1 else ""),
        "baseline": c.baseline or DASH,
        "rust": _speed_text(c.best_rust),
        "python_lib": lib,
        "rust_vs_lib": _speed_text(c.rust_vs_python_lib, name=False)
        if c.has_python_lib
        else _speed_text(None),
        "crossover": _crossover_text(c),
        "bound": DASH
        if c.cpu_over_wall is None
        else f"{c.bound} ({format_number(c.cpu_over_wall, 2)})",
        "startup": startup,
        "memory": _per_impl(c.maxrss_kb, format_kib),
        "multicore": ", ".join(c.multicore),
        "verdict": c.verdict or DASH,
        "missing": "; ".join(c.missing),
    }


def _resolution_text(res: Resolution | None) -> str:
    if res is None:
        return (
            "No speed-up has a confidence interval here, so the run says nothing about how small "
            "a difference it can resolve."
        )
    if res.source == "aa":
        return (
            f"From the A/A check ({res.n} twin pairs of the same program, {res.flagged} wrongly "
            f"flagged): twins differed by up to {format_percent(res.smallest_difference)} "
            f"(95 % CI half-widths up to ±{format_percent(res.widest_half_width)}). Treat "
            f"differences below {format_percent(res.smallest_difference)} as this host's noise."
        )
    return (
        f"Differences below about {format_percent(res.smallest_difference)} cannot be resolved "
        f"by this run: a speed-up is called faster or slower only when its 95 % CI clears "
        f"1 ± {format_percent(res.noise)}, and the median CI half-width over {res.n} speed-ups "
        f"is ±{format_percent(res.median_half_width)} (widest ±"
        f"{format_percent(res.widest_half_width)}: {res.widest})."
    )


def _host_text(manifest: Mapping[str, Any]) -> str:
    fp = manifest.get("fingerprint") or {}
    engine = manifest.get("engine") or {}
    parts = [
        _text(fp.get("cpu_model")) or "unknown CPU",
        f"{_cores_text(manifest.get('cpus'))} used "
        f"(cpuset {_text(manifest.get('cpuset')) or DASH})",
    ]
    if fp.get("kernel"):
        parts.append(f"Linux {_text(fp['kernel'])}")
    if engine.get("server_version"):
        parts.append(f"Docker {_text(engine['server_version'])}")
    parts.append(_mode_text(manifest))
    return "; ".join(parts)


def _noise_warnings(manifest: Mapping[str, Any], cases: Sequence[Mapping[str, Any]]) -> list[str]:
    out = [_text(w) for w in manifest.get("warnings") or []]
    noisy = [_text(c.get("case_id")) for c in cases if c.get("warnings")]
    if noisy:
        out.append(
            f"{len(noisy)} case{'s' if len(noisy) != 1 else ''} had statistical outliers (kept): "
            f"{', '.join(noisy[:6])}{' ...' if len(noisy) > 6 else ''}; see How each case stopped"
        )
    return out


def _missing_cases(manifest: Mapping[str, Any], summary_rows: list[dict[str, Any]]) -> list[str]:
    """Planned cases (manifest `cases`) that have neither samples nor a status."""
    planned = [str(c) for c in manifest.get("cases") or []]
    seen = {str(r["case_id"]) for r in summary_rows}
    return [c for c in planned if c not in seen]


# --- service tasks ----------------------------------------------------------------------------


def _service(servers: Sequence[Server]) -> list[dict[str, Any]]:
    tasks: dict[str, list[Server]] = {}
    for s in servers:
        tasks.setdefault(s.task, []).append(s)
    out = []
    for task, group in tasks.items():
        warnings = [
            f"{impl_label(s.impl, s.threads)}: the load generator's CPU/wall was above "
            f"{CLIENT_BUSY:g} during {', '.join(s.busy_phases)}: it may have been the "
            "bottleneck, and the server may be faster than shown"
            for s in group
            if s.busy_phases
        ]
        out.append(
            {
                "task": task,
                "servers": [
                    {
                        "impl": impl_label(s.impl, s.threads),
                        "route": s.route or DASH,
                        "sessions": str(s.sessions),
                        "rps": DASH if s.rps is None else f"{sig(s.rps)} req/s",
                        "rps_ci": format_ratio_ci(s.rps_ci_low, s.rps_ci_high).replace("—", "")
                        if s.rps_ci_low is not None
                        else "",
                        "cpu_per_request": format_ns(s.server_cpu_per_request_ns),
                        "rss": format_kib(s.server_maxrss_kb),
                        "client_busy": format_number(s.client_busy, 2),
                        "busy": s.client_busy is not None and s.client_busy > CLIENT_BUSY,
                    }
                    for s in group
                ],
                "rates": [
                    {
                        "impl": impl_label(s.impl, s.threads),
                        "rate": f"{r.target_rps:g}",
                        "achieved": DASH if r.achieved_rps is None else sig(r.achieved_rps),
                        "p50": format_ns(r.latency_ns.get("p50")),
                        "p99": format_ns(r.latency_ns.get("p99")),
                        "p999": format_ns(r.latency_ns.get("p999")),
                        "errors": format_number(r.errors, 3),
                        "client_busy": format_number(r.client_busy, 2),
                        "busy": r.client_busy is not None and r.client_busy > CLIENT_BUSY,
                    }
                    for s in group
                    for r in s.rates
                ],
                "warnings": warnings,
                "chart": None,
            }
        )
    return out


# --- start-up: warm and cold, warm-up, imports -------------------------------------------------

# Warm-up runs of more sessions than this are summarised (range and median), not listed.
_LIST_SESSIONS = 10


def _case_rows(cases: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], Mapping[str, Any]]:
    """Each case's row of cases.jsonl by (task, impl); a later row of a case replaces an
    earlier one (as in `frames.summarize`)."""
    out: dict[tuple[str, str], Mapping[str, Any]] = {}
    for c in cases:
        if c.get("task") is not None and c.get("impl") is not None:
            out[str(c["task"]), str(c["impl"])] = c
    return out


def startup_tasks(
    manifest: Mapping[str, Any], summary_rows: Sequence[Mapping[str, Any]]
) -> list[tuple[str, str | None]]:
    """(warm task, its cold twin or None) for each start-up task of a bundle: a task with a
    `TASK_cold` twin, or of the process kind (the manifest's routes say so; bundles without
    kinds there: every measured case's metric is the process's wall time)."""
    routes = manifest.get("routes")
    kinds: dict[str, set[str]] = {}
    rows: dict[str, list[Mapping[str, Any]]] = {}
    for r in summary_rows:
        task = str(r["task"])
        rows.setdefault(task, []).append(r)
        route = routes.get(str(r["case_id"])) if isinstance(routes, Mapping) else None
        if isinstance(route, Mapping) and route.get("kind"):
            kinds.setdefault(task, set()).add(str(route["kind"]))
    twins = {t for t in rows if t.endswith(COLD_SUFFIX) and t[: -len(COLD_SUFFIX)] in rows}
    out: list[tuple[str, str | None]] = []
    for task, group in rows.items():
        if task in twins:
            continue
        cold = task + COLD_SUFFIX if task + COLD_SUFFIX in twins else None
        if task in kinds:
            process = kinds[task] == {"process"}
        else:
            ran = [r for r in group if int(r["n_runs"]) > 0]
            process = bool(ran) and all(r["metric"] == "wall" for r in ran)
        if cold is not None or process:
            out.append((task, cold))
    return out


def _ints(x: Any) -> list[int] | None:
    """A list of whole numbers from a bundle, or None when it is not one."""
    if not isinstance(x, list) or not x:
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in x):
        return None
    return list(x)


def _flags(x: Any, n: int) -> list[bool | None]:
    """`n` settled flags (True, False, or None for a fixed warm-up) from a bundle's list."""
    got = list(x) if isinstance(x, list) else []
    return [v if isinstance(v, bool) else None for v in got[:n]] + [None] * (n - len(got))


def warmup_runs_text(runs: Any, settled: Any) -> str:
    """Each session's warm-up runs, "(cap)" where the cap ended the warm-up: "12, 9 (cap), 15";
    with many sessions, their range and median. '—' when the case row has none (old bundles)."""
    counts = _ints(runs)
    if counts is None:
        return DASH
    flags = _flags(settled, len(counts))
    if len(counts) > _LIST_SESSIONS:
        capped = sum(1 for f in flags if f is False)
        text = f"{_range_int(counts)} (median {sig(median_of(counts), 2)}, {len(counts)} sessions"
        return text + (f", {capped} capped)" if capped else ")")
    return ", ".join(
        f"{n} (cap)" if f is False else str(n) for n, f in zip(counts, flags, strict=True)
    )


def settled_text(runs: Any, settled: Any) -> str:
    """Whether the warm-up settled in every session: "yes", "no: the cap ended 1 of 3
    sessions", "fixed (no rule)" for a fixed warm-up count, '—' without data."""
    counts = _ints(runs)
    if counts is None and not isinstance(settled, list):
        return DASH
    flags = _flags(settled, len(counts) if counts is not None else len(settled))
    if not flags:
        return DASH
    capped = sum(1 for f in flags if f is False)
    if capped:
        return f"no: the cap ended {capped} of {len(flags)} sessions"
    if all(f is None for f in flags):
        return "fixed (no rule)"
    return "yes"


def median_of(values: Sequence[int]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _range_int(values: Sequence[int]) -> str:
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}–{high}"


def warmup_text(case: Mapping[str, Any]) -> str:
    """A case's warm-up found from the data, in a few characters: "9–15 runs" (process runs per
    session), "1–2 iterations" (in-process iterations per run), with how many ended at the cap
    or did not settle; "" for a case row without them (fixed warm-up, old bundles)."""
    runs = _ints(case.get("warmup_runs"))
    if runs is not None:
        flags = _flags(case.get("warmup_settled"), len(runs))
        capped = sum(1 for f in flags if f is False)
        text = f"{_range_int(runs)} run{'s' if max(runs) != 1 else ''}"
        return text + (f" ({capped} of {len(runs)} sessions capped)" if capped else "")
    iters = _ints(case.get("warmup_iters"))
    if iters is not None:
        flags = _flags(case.get("iters_settled"), len(iters))
        unsettled = sum(1 for f in flags if f is False)
        text = f"{_range_int(iters)} iteration{'s' if max(iters) != 1 else ''}"
        return text + (f" ({unsettled} of {len(iters)} runs not settled)" if unsettled else "")
    return ""


def _us(x: Any) -> str:
    """Microseconds from a bundle as a duration: '12.3 ms'; '—' when not a number."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return DASH
    return format_ns(float(x) * 1e3)


def _import_view(impl: str, found: Mapping[str, Any]) -> dict[str, Any]:
    """One implementation's `parse_importtime` result as rows: the i-th top-level import (by
    cumulative time) beside the i-th largest self time."""
    top_level = [e for e in found.get("top_level") or [] if isinstance(e, Mapping)]
    top_self = [e for e in found.get("top_self") or [] if isinstance(e, Mapping)]
    rows = []
    for i in range(max(len(top_level), len(top_self))):
        a = top_level[i] if i < len(top_level) else {}
        b = top_self[i] if i < len(top_self) else {}
        rows.append(
            {
                "rank": str(i + 1),
                "top_module": _text(a.get("module")),
                "top_cumulative": _us(a.get("cumulative_us")) if a else "",
                "self_module": _text(b.get("module")),
                "self": _us(b.get("self_us")) if b else "",
                "self_cumulative": _us(b.get("cumulative_us")) if b else "",
            }
        )
    modules = found.get("modules")
    error = _text(found.get("error"))
    if not error and not rows:
        error = "no import-time lines in its output"
    return {
        "impl": impl,
        "error": error,
        "total": _us(found.get("total_us")),
        "modules": str(modules) if isinstance(modules, int) else DASH,
        "rows": rows,
    }


def _importtimes(manifest: Mapping[str, Any], order: Sequence[str]) -> list[dict[str, Any]]:
    """`kind_state.process.importtime` of the manifest, one view per implementation, in the
    order of the start-up table (others after, by name)."""
    state = manifest.get("kind_state")
    process = state.get("process") if isinstance(state, Mapping) else None
    found = process.get("importtime") if isinstance(process, Mapping) else None
    if not isinstance(found, Mapping):
        return []
    rank = {impl: i for i, impl in enumerate(order)}
    impls = sorted(found, key=lambda k: (rank.get(str(k), len(rank)), str(k)))
    return [_import_view(str(k), found[k]) for k in impls if isinstance(found[k], Mapping)]


def _storage_note(manifest: Mapping[str, Any]) -> str:
    """What the engine's storage driver adds to start-up, when it adds something."""
    engine = manifest.get("engine")
    if manifest.get("executor") == "local" or not isinstance(engine, Mapping):
        return ""
    return " ".join(engine_checks(dict(engine)))


def _warmup_rule(manifest: Mapping[str, Any]) -> str:
    profile = manifest.get("profile")
    prof = profile if isinstance(profile, Mapping) else {}
    k, band, cap = prof.get("settle_k"), prof.get("settle_band"), prof.get("warmup_cap")
    if isinstance(k, int) and isinstance(band, int | float) and isinstance(cap, int) and cap:
        return (
            f"until the last {k} were within {format_percent(band, 2)} of each other, at most "
            f"{cap} runs"
        )
    return "until the last few were within a band of each other, up to a cap"


def _start_cells(row: Mapping[str, Any] | None) -> tuple[str, str, float | None]:
    """A start-up case's median, CI and (when it may enter a ratio) median in ns."""
    if row is None:
        return DASH, DASH, None
    median = _num(row["wall_median_ns"])
    return (
        format_ns(median),
        format_ns_range(row["wall_ci_low_ns"], row["wall_ci_high_ns"]),
        median if frames.comparable(row) and median else None,
    )


def _startup(
    manifest: Mapping[str, Any],
    summary_rows: Sequence[Mapping[str, Any]],
    cases: Sequence[Mapping[str, Any]],
) -> dict[str, Any] | None:
    """The start-up section: per start-up task, warm start beside cold start (the `_cold`
    twin's rows, by implementation) with the warm-up each session needed; the storage driver's
    cost; each implementation's slowest imports. None without a start-up task."""
    pairs = startup_tasks(manifest, summary_rows)
    if not pairs:
        return None
    by_case = _case_rows(cases)
    tasks: list[dict[str, Any]] = []
    order: list[str] = []
    for warm, cold in pairs:
        warm_rows = {str(r["impl"]): r for r in summary_rows if r["task"] == warm}
        cold_rows = {str(r["impl"]): r for r in summary_rows if cold and r["task"] == cold}
        table = []
        for impl in dict.fromkeys([*warm_rows, *cold_rows]):
            w, c = warm_rows.get(impl), cold_rows.get(impl)
            head = w if w is not None else c
            if head is None:  # pragma: no cover - every impl comes from one of the two
                continue
            bad = [
                f"{which}: {r['status']}"
                for which, r in (("warm", w), ("cold", c))
                if r is not None and r["status"] != "ok"
            ]
            warm_text, warm_ci, warm_ns = _start_cells(w)
            cold_text, cold_ci, cold_ns = _start_cells(c)
            case = by_case.get((warm, impl), {})
            table.append(
                {
                    "impl": impl_label(impl, head["threads"]),
                    "status": ", ".join(bad),
                    "warm": warm_text,
                    "warm_ci": warm_ci,
                    "cold": cold_text,
                    "cold_ci": cold_ci,
                    "cold_runs": DASH if c is None else str(int(c["n_runs"])),
                    "ratio": DASH
                    if warm_ns is None or cold_ns is None
                    else format_ratio(cold_ns / warm_ns),
                    "warmup": warmup_runs_text(case.get("warmup_runs"), case.get("warmup_settled")),
                    "settled": settled_text(case.get("warmup_runs"), case.get("warmup_settled")),
                }
            )
            order.append(impl)
        tasks.append({"task": warm, "cold_task": cold or "", "rows": table})
    return {
        "tasks": tasks,
        "has_cold": any(t["cold_task"] for t in tasks),
        "has_warmup": any(r["warmup"] != DASH for t in tasks for r in t["rows"]),
        "warmup_rule": _warmup_rule(manifest),
        "storage_note": _storage_note(manifest),
        "imports": _importtimes(manifest, list(dict.fromkeys(order))),
    }


# --- charts -----------------------------------------------------------------------------------


def _chart_view(chart: Any) -> dict[str, Any] | None:
    if chart is None:
        return None
    return {
        "id": chart.id,
        "label": chart.label,
        "description": chart.description,
        "svg": chart.svg,
        "header": chart.header,
        "rows": chart.rows,
    }


def _task_charts(
    summary_rows: list[dict[str, Any]],
    conclusions: Sequence[Conclusion],
    scalings: Sequence[Scaling],
) -> dict[str, dict[str, Any]]:
    """Per task: its medians chart, its size sweep and its parallel scaling, when it has them."""
    from harness import charts
    from harness.conclusions import family

    by_task = {c.task: c for c in conclusions}
    out: dict[str, dict[str, Any]] = {}
    for task in dict.fromkeys(str(r["task"]) for r in summary_rows):
        rows = [
            {**r, "label": impl_label(r["impl"], r["threads"])}
            for r in summary_rows
            if r["task"] == task and frames.comparable(r)
        ]
        metric = str(rows[0]["metric"]) if rows else "wall"
        fams: dict[str, int] = {}
        for r in rows:
            if (f := family(str(r["impl"]), int(r["threads"]))) is not None:
                fams[f[0]] = max(fams.get(f[0], 0), f[1])
        curves: dict[str, list[tuple[int, float]]] = {}
        for r in rows:
            f = family(str(r["impl"]), int(r["threads"]))
            if _missing(r["size"]) or (f is not None and f[1] != fams[f[0]]):
                continue  # a thread sweep is drawn at its largest P only
            curves.setdefault(str(r["label"]), []).append(
                (int(r["size"]), float(r["metric_median_ns"]))
            )
        c = by_task.get(task)
        out[task] = {
            "medians": _chart_view(
                charts.medians_chart(
                    task,
                    metric,
                    rows,
                    fmt_ns=format_ns,
                    fmt_range=format_ns_range,
                    fmt_size=format_size,
                )
            ),
            "sweep": _chart_view(
                charts.sweep_chart(
                    task,
                    metric,
                    curves,
                    c.crossovers if c else [],
                    fmt_ns=format_ns,
                    fmt_size=format_size,
                )
            ),
            "scaling": _chart_view(
                charts.scaling_chart(
                    task,
                    [s for s in scalings if s.task == task],
                    fmt_ns=format_ns,
                    fmt_size=format_size,
                )
            ),
        }
    return out


def _startup_points(
    summary_rows: list[dict[str, Any]],
) -> list[tuple[str, str, float, float, str]]:
    """(task, label, kernel ns, start-up ns, route) of each kernel case at its task's largest
    size."""
    largest: dict[str, int] = {}
    for r in summary_rows:
        if r["metric"] == "kernel" and not _missing(r["size"]):
            largest[str(r["task"])] = max(largest.get(str(r["task"]), 0), int(r["size"]))
    out = []
    for r in summary_rows:
        if r["metric"] != "kernel" or _missing(r["size"]) or not frames.comparable(r):
            continue
        if int(r["size"]) != largest[str(r["task"])]:
            continue
        share, wall, kernel = (
            _num(r["startup_share"]),
            _num(r["wall_median_ns"]),
            _num(r["kernel_median_ns"]),
        )
        if share is None or wall is None or kernel is None:
            continue
        label = impl_label(r["impl"], r["threads"])
        out.append((str(r["task"]), label, kernel, share * wall, _text(r["route"]) or "?"))
    return out


# --- renderers --------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        # HTML escapes everything it interpolates; Markdown escapes through the `md` filter.
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2",), disabled_extensions=("md.j2",), default=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_escape
    env.filters["md_fence"] = md_fence
    return env


def render_markdown(
    manifest: Mapping[str, Any],
    summary: pd.DataFrame,
    speedups: pd.DataFrame,
    cases: Sequence[Mapping[str, Any]],
    extras: Extras = Extras(),
) -> str:
    """The report as Markdown (GitHub-flavoured tables; the charts' tables, no charts)."""
    template = _environment().get_template("report.md.j2")
    return template.render(**_context(manifest, summary, speedups, cases, extras))


def render_html(
    manifest: Mapping[str, Any],
    summary: pd.DataFrame,
    speedups: pd.DataFrame,
    cases: Sequence[Mapping[str, Any]],
    extras: Extras = Extras(),
) -> str:
    """The report as one self-contained HTML page: inline CSS and inline SVG charts, no
    scripts, nothing fetched."""
    template = _environment().get_template("report.html.j2")
    context = _context(manifest, summary, speedups, cases, extras, with_charts=True)
    return template.render(**context)


def render_conclusions_csv(
    manifest: Mapping[str, Any], summary: pd.DataFrame, speedups: pd.DataFrame
) -> str:
    """The summary table (one row per task) as CSV; its columns are documented in
    `conclusions.CONCLUSION_COLUMNS` and in summary.json."""
    found = analyse(manifest, summary, speedups)
    frame = conclusions_frame(found["conclusions"])
    return frame.to_csv(index=False, lineterminator="\n")


def render_summary_json(
    manifest: Mapping[str, Any],
    summary: pd.DataFrame,
    speedups: pd.DataFrame,
    extras: Extras = Extras(),
) -> str:
    """summary.json: the conclusions, resolution, servers, per-case summary and speed-ups,
    with a schema version (`conclusions.SUMMARY_SCHEMA`)."""
    found = analyse(manifest, summary, speedups, extras)
    data = export(
        manifest,
        summary,
        speedups,
        found["conclusions"],
        res=found["resolution"],
        service=found["servers"],
        notes=extras.notes,
    )
    return json.dumps(data, indent=1, sort_keys=True, allow_nan=False) + "\n"


def render_summary_csv(summary: pd.DataFrame) -> str:
    """The summary table as CSV, one row per (task, impl, size), columns as in `summarize`."""
    return summary.to_csv(index=False, lineterminator="\n")
