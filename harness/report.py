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
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from harness import frames
from harness.suite import RUST_ROUTES

TEMPLATES = Path(__file__).parent / "templates"
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
        return {"ratio": DASH, "ci": "", "verdict": "", "text": DASH}
    ratio, ci = format_ratio(sp["speedup"]), format_ratio_ci(sp["ci_low"], sp["ci_high"])
    return {
        "ratio": ratio,
        "ci": ci,
        "verdict": str(sp["verdict"]),
        "text": f"{ratio} {ci} {sp['verdict']}",
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
                        cells[kind] = {"ratio": title, "ci": "", "verdict": "", "text": title}
                    else:
                        cells[kind] = _speed_cell(lookup.get((task, size, r["impl"], kind)))
                cpu_wall = r["cpu_over_wall"]
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


def _geomeans(speed: pd.DataFrame) -> list[dict[str, str]]:
    if speed.empty:
        return []
    table: dict[str, dict[str, str]] = {}
    for r in _records(frames.geomean_speedups(speed)):
        row = table.setdefault(
            str(r["impl"]),
            {"impl": str(r["impl"]), "lang": _text(r["lang"]), "baseline": "", "best_python": ""},
        )
        row[str(r["reference_kind"])] = (
            f"{format_ratio(r['geomean'])} ({int(r['n_tasks'])} task"
            f"{'s' if int(r['n_tasks']) != 1 else ''})"
        )
    return [
        {**row, "baseline": row["baseline"] or DASH, "best_python": row["best_python"] or DASH}
        for row in sorted(table.values(), key=lambda r: r["impl"])
    ]


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
    """Per case: sessions, why it stopped adding sessions, and its warnings."""
    return [
        {
            "case_id": _text(c.get("case_id")),
            "sessions": _text(c.get("sessions")) or DASH,
            "stop_reason": _text(c.get("stop_reason")) or DASH,
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


def _context(
    manifest: Mapping[str, Any],
    summary: pd.DataFrame,
    speedups: pd.DataFrame,
    cases: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    summary_rows, speed_rows = _records(summary), _records(speedups)
    status = str(manifest.get("status") or "unknown")
    n_bad = sum(1 for r in summary_rows if r["status"] != "ok")
    images = manifest.get("images") or {}
    noise = float(speed_rows[0]["noise"]) if speed_rows else 0.01
    aa = _aa(speedups) if manifest.get("aa") else None
    return {
        "run": {
            "run_id": _text(manifest.get("run_id")) or DASH,
            "host": _text(manifest.get("host")) or DASH,
            "status": status,
            "incomplete": status != "complete",
            "cpus": _text(manifest.get("cpus")) or DASH,
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
        # An A/A bundle compares twins: no "where Rust pays off" or means across tasks.
        "overview": [] if aa else _overview(speed_rows),
        "geomeans": [] if aa else _geomeans(speedups),
        "stops": _stops(cases),
        "tasks": _task_sections(summary_rows, speed_rows, manifest.get("baselines") or {}),
        "failures": _failures(summary_rows, cases),
        "how_to_read": [p.format(noise=format_percent(noise, 2)) for p in HOW_TO_READ],
    }


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
) -> str:
    """The report as Markdown (GitHub-flavoured tables)."""
    template = _environment().get_template("report.md.j2")
    return template.render(**_context(manifest, summary, speedups, cases))


def render_html(
    manifest: Mapping[str, Any],
    summary: pd.DataFrame,
    speedups: pd.DataFrame,
    cases: Sequence[Mapping[str, Any]],
) -> str:
    """The report as one self-contained HTML page: inline CSS, no scripts, nothing fetched."""
    template = _environment().get_template("report.html.j2")
    return template.render(**_context(manifest, summary, speedups, cases))


def render_summary_csv(summary: pd.DataFrame) -> str:
    """The summary table as CSV, one row per (task, impl, size), columns as in `summarize`."""
    return summary.to_csv(index=False, lineterminator="\n")
