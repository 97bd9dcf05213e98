"""The report's charts: matplotlib figures rendered to inline SVG markup.

No JavaScript and nothing fetched: each chart is an `<svg>` element for the HTML report, with
`role="img"`, an `aria-label`, and a `<title>` and `<desc>` that say what it shows; its data is
also returned as a small table that the report prints beside it (the text alternative).
Text stays text (`svg.fonttype = none`), names from a bundle are never read as mathtext, and
element ids are salted with the chart's own id, so several charts in one page never collide and
the same data always gives the same bytes.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import matplotlib as mpl

mpl.use("Agg")

from markupsafe import Markup, escape
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from harness.conclusions import Crossover, Scaling, Server, round_size

# Colour-blind-safe (Okabe-Ito) colours, one per series; markers tell series apart in grey too.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 72,
}


def _rc(salt: str | None = None) -> Any:
    """The charts' matplotlib settings, for a `with` block (never changed globally)."""
    settings = dict(_RC) if salt is None else {**_RC, "svg.hashsalt": salt}
    return mpl.rc_context(cast(Any, settings))


_DROP = (
    re.compile(r"<\?xml.*?\?>\s*", re.DOTALL),
    re.compile(r"<!DOCTYPE.*?>\s*", re.DOTALL),
    re.compile(r"<!--.*?-->\s*", re.DOTALL),
    re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL),
    re.compile(r'\s+xmlns(:\w+)?="[^"]*"'),
)
_MARKER_DEF = re.compile(r'<path id="(m[0-9a-f]+)" d="([^"]*)"[^>]*/>\s*', re.DOTALL)
_MARKER_USE = re.compile(
    r'<use xlink:href="#(m[0-9a-f]+)" x="([-0-9.e]+)" y="([-0-9.e]+)"( style="[^"]*")?\s*/>'
)
_ID = re.compile(r'\sid="([^"]*)"')
_REF = re.compile(r'(?:url\(#|href="#)([^)"]+)')
_SVG_OPEN = re.compile(r'<svg\b[^>]*?\swidth="([0-9.]+)pt"\s+height="([0-9.]+)pt"[^>]*>')


@dataclass(frozen=True)
class Chart:
    """One chart: inline SVG and the table that says the same in text."""

    id: str
    label: str  # the aria-label: what kind of chart, of what
    description: str
    svg: Markup
    header: list[str]
    rows: list[list[str]]


def chart_id(*parts: Any) -> str:
    """An id safe for HTML and SVG: 'chart-sum-squares-sweep'."""
    text = "-".join(str(p) for p in parts)
    return "chart-" + (re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x")


def _svg(fig: Figure, cid: str, label: str, description: str) -> Markup:
    """The figure as an `<svg>` element for an HTML page, labelled for screen readers."""
    buf = io.StringIO()
    with _rc(cid):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    for pattern in _DROP:
        text = pattern.sub("", text)
    match = _SVG_OPEN.search(text)
    if match is None:  # pragma: no cover - matplotlib always writes width and height in pt
        raise ValueError("unexpected SVG from matplotlib")
    width, height = (float(v) for v in match.groups())
    head = (
        f'<svg class="chart" id="{escape(cid)}" role="img" aria-label="{escape(label)}" '
        f'aria-labelledby="{escape(cid)}-title {escape(cid)}-desc" '
        f'viewBox="0 0 {width:g} {height:g}" width="{width:g}" height="{height:g}">'
        f'<title id="{escape(cid)}-title">{escape(label)}</title>'
        f'<desc id="{escape(cid)}-desc">{escape(description)}</desc>'
    )
    body = _inline_markers(text[match.end() :])
    # Only ids that something refers to (clip paths, markers: salted hashes) are kept; the
    # others (figure_1, axes_1, ...) would repeat in every chart of the page.
    used = set(_REF.findall(body))
    body = _ID.sub(lambda m: m.group(0) if m.group(1) in used else "", body)
    return Markup(head + body.strip())  # noqa: S704 - matplotlib escapes the text it writes


def _inline_markers(body: str) -> str:
    """Markers drawn as paths where they are used, instead of `<use xlink:href>` to a shared
    definition: the page then holds no link of any kind."""
    shapes = {m.group(1): m.group(2) for m in _MARKER_DEF.finditer(body)}
    body = _MARKER_DEF.sub("", body)

    def path(m: re.Match[str]) -> str:
        d = shapes.get(m.group(1))
        if d is None:  # pragma: no cover - matplotlib defines every marker it uses
            return ""
        return f'<path d="{d}" transform="translate({m.group(2)} {m.group(3)})"{m.group(4)}/>'

    return _MARKER_USE.sub(path, body)


def _figure(width: float, height: float) -> Figure:
    with _rc():
        return Figure(figsize=(width, height), layout="constrained")


def _axes(fig: Figure) -> Axes:
    with _rc():
        return fig.add_subplot()


def _log(ax: Axes, which: str) -> None:
    """A log axis with plain tick labels ('0.01', '10', '1e+04'): no mathtext."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _style(i: int) -> dict[str, Any]:
    return {"color": COLOURS[i % len(COLOURS)], "marker": MARKERS[i % len(MARKERS)]}


Fmt = Callable[[Any], str]


# --- per task: medians with CIs ----------------------------------------------------------------


def medians_chart(
    task: str,
    metric: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    fmt_ns: Fmt,
    fmt_range: Callable[[Any, Any], str],
    fmt_size: Fmt,
) -> Chart | None:
    """Each implementation's median of the task's metric with its 95 % CI, log scale; one
    series per size. `rows`: comparable summary rows with `label` (impl and cores)."""
    rows = [r for r in rows if _pos(r["metric_median_ns"])]
    if not rows:
        return None
    labels = list(dict.fromkeys(str(r["label"]) for r in rows))
    sizes = list(dict.fromkeys(r["size"] for r in rows))
    fig = _figure(7.0, 0.6 + 0.32 * len(labels) * max(1, min(len(sizes), 3)) ** 0.5)
    ax = _axes(fig)
    step = 0.6 / max(1, len(sizes))
    for i, size in enumerate(sizes):
        pts = [r for r in rows if r["size"] == size]
        ys = [labels.index(str(r["label"])) + (i - (len(sizes) - 1) / 2) * step for r in pts]
        xs = [float(r["metric_median_ns"]) / 1e6 for r in pts]
        lo = [
            max(0.0, x - _or(r["metric_ci_low_ns"], x * 1e6) / 1e6)
            for x, r in zip(xs, pts, strict=True)
        ]
        hi = [
            max(0.0, _or(r["metric_ci_high_ns"], x * 1e6) / 1e6 - x)
            for x, r in zip(xs, pts, strict=True)
        ]
        name = "one size" if size is None else f"size {fmt_size(size)}"
        ax.errorbar(xs, ys, xerr=[lo, hi], linestyle="none", capsize=3, label=name, **_style(i))
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    _log(ax, "x")
    ax.set_xlabel(f"{_metric_label(metric)} (ms, log scale; whiskers: 95 % CI)")
    if len(sizes) > 1:
        ax.legend(loc="best", fontsize=8)
    cid = chart_id(task, "medians")
    label = f"Chart: {task}, median {_metric_label(metric)} per implementation"
    desc = (
        f"Dot plot, log scale: the median {_metric_label(metric)} of each implementation of "
        f"{task} with its 95 % confidence interval as whiskers; shorter is faster. The table "
        "beside it has the same numbers."
    )
    table = [
        [
            str(r["label"]),
            fmt_size(r["size"]),
            fmt_ns(r["metric_median_ns"]),
            fmt_range(r["metric_ci_low_ns"], r["metric_ci_high_ns"]),
        ]
        for r in rows
    ]
    return Chart(
        cid,
        label,
        desc,
        _svg(fig, cid, label, desc),
        ["Implementation", "Size", "Median", "95 % CI"],
        table,
    )


def _or(x: Any, default: float) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) else default


def _pos(x: Any) -> bool:
    return _or(x, math.nan) > 0


def _metric_label(metric: str) -> str:
    return {
        "kernel": "time per iteration",
        "wall": "wall time per process",
        "per_request": "time per request at saturation",
    }.get(metric, metric)


# --- size sweeps ------------------------------------------------------------------------------


def sweep_chart(
    task: str,
    metric: str,
    curves: Mapping[str, Sequence[tuple[int, float]]],
    crossings: Sequence[Crossover],
    *,
    fmt_ns: Fmt,
    fmt_size: Fmt,
) -> Chart | None:
    """Time against size on log-log axes, one curve per implementation (label -> [(size,
    median ns)]), with the sizes where one route overtakes another marked."""
    curves = {k: sorted(v) for k, v in curves.items() if len(v) > 1}
    if not curves:
        return None
    fig = _figure(7.0, 4.0)
    ax = _axes(fig)
    for i, (name, pts) in enumerate(curves.items()):
        ax.plot([s for s, _ in pts], [t / 1e6 for _, t in pts], label=name, **_style(i))
    for x in crossings:
        ax.plot(
            [x.size],
            [x.time_ns / 1e6],
            marker="X",
            markersize=11,
            color="#B00020",
            linestyle="none",
            zorder=5,
        )
        ax.annotate(
            f"{x.overtaker} overtakes {x.overtaken}\n≈ {round_size(x.size)}",
            (x.size, x.time_ns / 1e6),
            textcoords="offset points",
            xytext=(6, -16),
            fontsize=7,
            color="#B00020",
        )
    _log(ax, "x")
    _log(ax, "y")
    ax.set_xlabel("size (log scale)")
    ax.set_ylabel(f"{_metric_label(metric)} (ms, log)")
    ax.legend(loc="upper left", fontsize=7, ncols=2)
    cid = chart_id(task, "sweep")
    label = f"Chart: {task}, size sweep"
    crossing_text = (
        "; ".join(
            f"{x.overtaker} overtakes {x.overtaken} at about size {round_size(x.size)}"
            for x in crossings
        )
        or "no route overtakes another between the measured sizes"
    )
    desc = (
        f"Line chart, log-log: median {_metric_label(metric)} of each implementation of {task} "
        f"against the problem size. Crossovers (red crosses): {crossing_text}."
    )
    sizes = sorted({s for pts in curves.values() for s, _ in pts})
    header = ["Implementation", *(f"size {fmt_size(s)}" for s in sizes)]
    table = [[name, *(fmt_ns(dict(pts).get(s)) for s in sizes)] for name, pts in curves.items()]
    table += [
        [
            f"crossover: {x.overtaker} overtakes {x.overtaken}",
            f"≈ {round_size(x.size)}",
            *([""] * (len(sizes) - 1)),
        ]
        for x in crossings
    ]
    return Chart(cid, label, desc, _svg(fig, cid, label, desc), header, table)


# --- start-up against kernel time -------------------------------------------------------------


def startup_chart(
    points: Sequence[tuple[str, str, float, float, str]], *, fmt_ns: Fmt
) -> Chart | None:
    """Start-up time (wall time outside the timed iterations) against the time of one
    iteration, per (task, implementation): above the diagonal, a one-shot job spends more on
    starting than on its work. `points`: (task, label, kernel ns, start-up ns, route), one
    colour per route."""
    pts = [p for p in points if p[2] > 0 and p[3] > 0]
    if not pts:
        return None
    fig = _figure(7.0, 4.2)
    ax = _axes(fig)
    groups = list(dict.fromkeys(p[4] for p in pts))
    for i, group in enumerate(groups):
        mine = [p for p in pts if p[4] == group]
        ax.plot(
            [p[2] / 1e6 for p in mine],
            [p[3] / 1e6 for p in mine],
            linestyle="none",
            label=group,
            **_style(i),
        )
    lo = min(min(p[2], p[3]) for p in pts) / 1e6
    hi = max(max(p[2], p[3]) for p in pts) / 1e6
    ax.plot(
        [lo, hi],
        [lo, hi],
        color="#888888",
        linestyle="--",
        linewidth=1,
        label="start-up = one iteration",
    )
    _log(ax, "x")
    _log(ax, "y")
    ax.set_xlabel("time of one iteration (ms, log)")
    ax.set_ylabel("start-up + setup (ms, log)")
    ax.legend(loc="best", fontsize=7)
    cid = chart_id("startup", "vs", "kernel")
    label = "Chart: start-up against kernel time"
    desc = (
        "Scatter plot, log-log, one colour per route: for each kernel task and implementation, "
        "the time spent outside "
        "the timed iterations (interpreter or binary start-up, imports, loading the input) "
        "against the time of one iteration. Points above the dashed diagonal spend more on "
        "starting than on one run of their work."
    )
    table = [[t, name, r, fmt_ns(k), fmt_ns(s), f"{s / k:.3g}"] for t, name, k, s, r in pts]
    header = ["Task", "Implementation", "Route", "One iteration", "Start-up + setup", "Ratio"]
    return Chart(cid, label, desc, _svg(fig, cid, label, desc), header, table)


# --- parallel scaling -------------------------------------------------------------------------


def scaling_chart(
    task: str, families: Sequence[Scaling], *, fmt_ns: Fmt, fmt_size: Fmt
) -> Chart | None:
    """Speed-up T(1)/T(P) and efficiency speed-up/P against P, one curve per family."""
    if not families:
        return None
    fig = _figure(7.0, 3.4)
    with _rc():
        ax1, ax2 = fig.subplots(1, 2)
    ps = sorted({p for f in families for p, *_ in f.points})
    for i, f in enumerate(families):
        name = (
            f.family if len({g.size for g in families}) == 1 else f"{f.family} ({fmt_size(f.size)})"
        )
        ax1.plot([p for p, *_ in f.points], [s for _, _, s, _ in f.points], label=name, **_style(i))
        ax2.plot([p for p, *_ in f.points], [e for *_, e in f.points], label=name, **_style(i))
    ax1.plot(ps, ps, color="#888888", linestyle="--", linewidth=1, label="ideal")
    ax2.axhline(1.0, color="#888888", linestyle="--", linewidth=1)
    ax1.set_xlabel("P (threads or processes = cores used)")
    ax1.set_ylabel("speed-up T(1) / T(P)")
    ax2.set_xlabel("P (cores used)")
    ax2.set_ylabel("efficiency = speed-up / P")
    ax2.set_ylim(0, max(1.1, max(e for f in families for *_, e in f.points) * 1.1))
    for ax in (ax1, ax2):
        ax.set_xticks(ps)
    ax1.legend(loc="upper left", fontsize=7)
    cid = chart_id(task, "scaling")
    label = f"Chart: {task}, parallel speed-up and efficiency against P"
    desc = (
        f"Two line charts: for each parallel implementation of {task}, its speed-up over its own "
        "P = 1 run (left, dashed: ideal) and its efficiency, speed-up divided by P (right, "
        "dashed: 1). Every point with P above 1 used P cores."
    )
    table = [
        [f.family, fmt_size(f.size), str(p), fmt_ns(t), f"{s:.3g}×", f"{e:.0%}"]
        for f in families
        for p, t, s, e in f.points
    ]
    header = ["Family", "Size", "P (cores)", "Median", "Speed-up vs P = 1", "Efficiency"]
    return Chart(cid, label, desc, _svg(fig, cid, label, desc), header, table)


# --- service latency --------------------------------------------------------------------------

_PERCENTILES = (("p50", "p50", "-"), ("p99", "p99", "--"), ("p999", "p99.9", ":"))


def latency_chart(task: str, servers: Sequence[Server], *, fmt_ns: Fmt) -> Chart | None:
    """Latency percentiles (p50, p99, p99.9) against the fixed request rate, per server."""
    if not any(s.rates for s in servers):
        return None
    fig = _figure(7.0, 4.0)
    ax = _axes(fig)
    table = []
    for i, s in enumerate(servers):
        style = _style(i)
        name = s.impl + (f" ({s.threads} cores)" if s.threads > 1 else "")
        for key, shown, line in _PERCENTILES:
            pts = [(r.target_rps, r.latency_ns[key]) for r in s.rates if key in r.latency_ns]
            if pts:
                ax.plot(
                    [x for x, _ in pts],
                    [y / 1e6 for _, y in pts],
                    linestyle=line,
                    label=f"{name} {shown}",
                    **style,
                )
        for r in s.rates:
            table.append(
                [
                    name,
                    f"{r.target_rps:g}",
                    "" if r.achieved_rps is None else f"{r.achieved_rps:.4g}",
                    *(fmt_ns(r.latency_ns.get(k)) for k, _, _ in _PERCENTILES),
                ]
            )
    _log(ax, "y")
    ax.set_xlabel("offered load (requests per second, open loop)")
    ax.set_ylabel("latency (ms, log)")
    ax.legend(loc="upper left", fontsize=7, ncols=2)
    cid = chart_id(task, "latency")
    label = f"Chart: {task}, latency percentiles per request rate"
    desc = (
        f"Line chart: for each server of {task}, its p50 (solid), p99 (dashed) and p99.9 "
        "(dotted) latency at each fixed request rate, measured open loop so queueing is not "
        "hidden; log scale."
    )
    header = ["Server", "Offered req/s", "Achieved req/s", "p50", "p99", "p99.9"]
    return Chart(cid, label, desc, _svg(fig, cid, label, desc), header, table)


# --- compare: speed-ups of several bundles ----------------------------------------------------


def compare_chart(
    task: str,
    rows: Sequence[tuple[str, Sequence[tuple[str, float, float, float]]]],
    bundles: Sequence[str],
) -> Chart | None:
    """Each speed-up of a task in every bundle, with its 95 % CI, on a log scale: `rows` is
    [(what, [(bundle, speed-up, CI low, CI high)])]."""
    rows = [(name, pts) for name, pts in rows if pts]
    if not rows:
        return None
    labels = [name for name, _ in rows]
    fig = _figure(7.0, 0.8 + 0.3 * len(labels) * max(1.0, len(bundles) ** 0.5))
    ax = _axes(fig)
    step = 0.6 / max(1, len(bundles))
    for i, bundle in enumerate(bundles):
        ys, xs, lo, hi = [], [], [], []
        for j, (_, pts) in enumerate(rows):
            for b, s, low, high in pts:
                if b == bundle and s > 0:
                    ys.append(j + (i - (len(bundles) - 1) / 2) * step)
                    xs.append(s)
                    lo.append(max(0.0, s - low))
                    hi.append(max(0.0, high - s))
        if xs:
            ax.errorbar(
                xs, ys, xerr=[lo, hi], linestyle="none", capsize=3, label=bundle, **_style(i)
            )
    ax.axvline(1.0, color="#888888", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    _log(ax, "x")
    ax.set_xlabel("speed-up (reference time / implementation time, log; whiskers: 95 % CI)")
    ax.legend(loc="best", fontsize=8)
    cid = chart_id("compare", task)
    label = f"Chart: {task}, speed-ups in each bundle"
    desc = (
        f"Dot plot, log scale: each speed-up of {task} in every bundle with its 95 % confidence "
        "interval; the dashed line is 1 (as fast as the reference). Markers of one row that "
        "do not overlap are a real difference between the bundles."
    )
    table = [
        [name, b, f"{s:.3g}×", f"[{low:.3g}, {high:.3g}]"]
        for name, pts in rows
        for b, s, low, high in pts
    ]
    header = ["Speed-up", "Bundle", "Value", "95 % CI"]
    return Chart(cid, label, desc, _svg(fig, cid, label, desc), header, table)
