"""Two or more results bundles side by side, for three questions:

- stability: several runs on one host; per case, the spread of their medians;
- settings A vs B on one host (pinned or not, Docker or local runner): per case, each bundle's
  median and CV and its ratio to the first bundle, with a hierarchical-bootstrap CI and verdict;
- hosts: the speed-ups of each bundle side by side. Across hosts compare these ratios (Python
  over Rust on the same host), not absolute times (docs/methodology.md §5).

Everything is computed by frames.py and stats.py, as for `harness report`: a case's median, CV and
speed-ups here are those of its bundle's report. The metric of a case is kernel time per
iteration when it reports iterations in every bundle where it passed, else wall time per
process (the rule of `frames.speedups`).

`load` is the only function that reads files; the others are pure and return pandas frames,
strings or rich renderables. The first bundle (B1) is the reference of every ratio.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich import box
from rich.console import RenderableType
from rich.table import Column, Table
from rich.text import Text

from harness import frames, stats
from harness.errors import BundleError
from harness.host import machine_identity
from harness.report import (
    DASH,
    format_ns,
    format_percent,
    format_ratio,
    format_ratio_ci,
    format_size,
    md_escape,
)
from harness.store import Bundle

SAME = "same"
FASTER = "faster"
SLOWER = "slower"
# `stats.verdict` judges a speed-up (above 1: faster). A ratio of times is the other way round.
_TIME_VERDICT = {
    stats.FASTER: SLOWER,
    stats.SLOWER: FASTER,
    stats.NO_DIFFERENCE: SAME,
}
_STYLE = {FASTER: "green", SLOWER: "red", stats.FASTER: "green", stats.SLOWER: "red"}
# C0 and C1 control characters: a name from another host's bundle must not drive the terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

BUNDLE_COLUMNS = [
    "bundle",
    "label",
    "host",
    "run_id",
    "settings",
    "executor",
    "pinned",
    "aa",
    "cpuset",
    "profile",
    "status",
    "path",
]

MEDIAN_COLUMNS = [
    "task",
    "size",
    "impl",
    "case_id",
    "metric",
    "bundle",
    "label",
    "status",
    "reason",
    "median_ns",
    "cv",
    "n_runs",
    "ratio",
    "ci_low",
    "ci_high",
    "verdict",
    "spread",
]

SPEEDUP_COLUMNS = [
    *frames.SPEEDUP_COLUMNS[:6],  # task, size, impl, lang, reference_kind, reference
    "bundle",
    "label",
    "status",
    "metric",
    "speedup",
    "ci_low",
    "ci_high",
    "verdict",
    "spread",
]


# --- bundles ----------------------------------------------------------------------------------


def _text(x: Any) -> str:
    """`x` as one line of printable text ('' when missing)."""
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return ""
    return _CONTROL.sub(" ", str(x)).strip()


def short_run_id(run_id: str) -> str:
    """'20260102T030405Z-1a2b3c' -> '20260102T0304-1a2b': to the minute, with the random part
    cut to 4 digits (enough to tell apart the runs of one host)."""
    stamp, _, rand = run_id.partition("-")
    return f"{stamp[:13]}-{rand[:4]}" if rand and len(stamp) >= 13 else run_id


def _profile_name(profile: Any) -> str:
    return _text(profile.get("name")) if isinstance(profile, Mapping) else _text(profile)


@dataclass(frozen=True, eq=False)
class Side:
    """One bundle of a comparison, summarised once (`frames.summarize`)."""

    name: str  # B1, B2, ...: the position on the command line; B1 is the reference
    path: str
    manifest: Mapping[str, Any]
    samples: Sequence[frames.Sample]
    cases: Sequence[Mapping[str, Any]]
    summary: pd.DataFrame

    @property
    def host(self) -> str:
        return _text(self.manifest.get("host")) or Path(self.path).parent.name or "?"

    @property
    def run_id(self) -> str:
        return _text(self.manifest.get("run_id")) or Path(self.path).name

    @property
    def label(self) -> str:
        """Host and short run id: 'bench-host 20260102T0304-1a2b'."""
        return f"{self.host} {short_run_id(self.run_id)}"

    @property
    def executor(self) -> str:
        """How the benchmarks ran: 'docker' (bundles from before the key: docker) or 'local'."""
        return _text(self.manifest.get("executor")) or "docker"

    @property
    def pinned(self) -> bool:
        """Whether the processes were pinned to the cpuset (bundles from before the key: yes)."""
        return self.manifest.get("pinned") is not False

    @property
    def settings(self) -> str:
        """The settings that make runs of one host differ: 'docker, pinned, cpuset 2-3, ...'."""
        parts = [self.executor, "pinned" if self.pinned else "unpinned"]
        if self.manifest.get("cpuset"):
            parts.append(f"cpuset {_text(self.manifest['cpuset'])}")
        if self.manifest.get("aa") is True:
            parts.append("A/A")
        if profile := _profile_name(self.manifest.get("profile")):
            parts.append(f"profile {profile}")
        return ", ".join(parts)


def side(
    name: str,
    path: str | Path,
    manifest: Mapping[str, Any],
    samples: Sequence[frames.Sample],
    cases: Sequence[Mapping[str, Any]],
    *,
    seed: int = 0,
    n_boot: int = stats.N_BOOT,
    warmup_iters: int = 1,
) -> Side:
    """A bundle's contents as one side of a comparison."""
    summary = frames.summarize(samples, cases, warmup_iters, seed, n_boot=n_boot)
    return Side(name, str(path), manifest, samples, cases, summary)


def read(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """A bundle folder's manifest, samples and cases, validated (`Bundle.open`); BundleError
    when it has no samples."""
    bundle = Bundle.open(path)
    samples = bundle.samples()
    if not samples:
        raise BundleError(
            f"{path} has no samples yet. Run `harness run` (or resume it) first, or leave the "
            "bundle out of the comparison"
        )
    return bundle.manifest(), samples, bundle.cases()


def bundles_table(sides: Sequence[Side]) -> pd.DataFrame:
    """One row per bundle: its name in the tables (B1, B2...), label and settings."""
    rows = [
        {
            "bundle": s.name,
            "label": s.label,
            "host": s.host,
            "run_id": s.run_id,
            "settings": s.settings,
            "executor": s.executor,
            "pinned": s.pinned,
            "aa": s.manifest.get("aa") is True,
            "cpuset": _text(s.manifest.get("cpuset")) or None,
            "profile": _profile_name(s.manifest.get("profile")) or None,
            "status": _text(s.manifest.get("status")) or "unknown",
            "path": s.path,
        }
        for s in sides
    ]
    return pd.DataFrame.from_records(rows, columns=BUNDLE_COLUMNS)


def _image_ids(manifest: Mapping[str, Any]) -> dict[str, str]:
    images = manifest.get("images") or {}
    return {str(k): _text(v.get("id")) for k, v in images.items() if isinstance(v, Mapping)}


def _suite_digest(manifest: Mapping[str, Any]) -> str:
    suite = manifest.get("suite")
    return _text(suite.get("sha256")) if isinstance(suite, Mapping) else ""


def _profile_fields(manifest: Mapping[str, Any]) -> dict[str, str]:
    profile = manifest.get("profile")
    if isinstance(profile, Mapping):
        return {str(k): _text(v) for k, v in profile.items()}
    return {"name": _text(profile)} if profile is not None else {}


def _short(value: str, n: int = 19) -> str:
    return value[:n] or "none"


def _differing(a: Mapping[str, str], b: Mapping[str, str], n: int = 19) -> str:
    keys = sorted(k for k in {*a, *b} if a.get(k) != b.get(k))
    return ", ".join(f"{k} {_short(b.get(k, ''), n)} vs {_short(a.get(k, ''), n)}" for k in keys)


def differences(sides: Sequence[Side]) -> list[str]:
    """One warning per bundle and per difference from B1 that makes absolute times not
    comparable (other images, another suite definition, another profile), or that keeps
    cases from matching (an A/A run against a normal one)."""
    ref = sides[0]
    out = []
    tail = "absolute times are not comparable (the speed-ups still are)"
    for s in sides[1:]:
        a, b = _image_ids(ref.manifest), _image_ids(s.manifest)
        if a != b:
            out.append(f"{s.name} ran other images than {ref.name} ({_differing(a, b)}): {tail}")
        da, db = _suite_digest(ref.manifest), _suite_digest(s.manifest)
        if da != db:
            out.append(
                f"{s.name} ran another suite definition than {ref.name} (sha256 "
                f"{_short(db, 12)} vs {_short(da, 12)}): {tail}"
            )
        if (ref.manifest.get("aa") is True) != (s.manifest.get("aa") is True):
            which, other = (s, ref) if s.manifest.get("aa") is True else (ref, s)
            out.append(
                f"{which.name} is an A/A run and {other.name} is not: A/A runs name their "
                "implementations as twins (IMPL.a, IMPL.b), so their cases do not match"
            )
        pa, pb = _profile_fields(ref.manifest), _profile_fields(s.manifest)
        if pa != pb:
            out.append(
                f"{s.name} ran another profile than {ref.name} ({_differing(pa, pb, 40)}): {tail}"
            )
    return out


def label_clashes(sides: Sequence[Side]) -> list[str]:
    """A warning for each pair of bundles with one host label but different machines (CPU
    model or cores): their label does not tell them apart (e.g. two VMs both called `vm`,
    labelled before labels carried a hash of the CPU)."""
    out = []
    first: dict[str, tuple[Side, tuple[str, int]]] = {}
    for s in sides:
        ident = machine_identity(dict(s.manifest))
        if ident is None:
            continue
        seen = first.setdefault(s.host, (s, ident))
        if seen[1] != ident:
            ref, (model, ncpu) = seen
            out.append(
                f"{ref.name} and {s.name} share the host label '{s.host}' but not the machine "
                f"({_text(model)}, {ncpu} cores vs {_text(ident[0])}, {ident[1]} cores): they "
                "are different hosts. Label runs apart with `harness run --host`"
            )
    return out


# --- table 1: medians -------------------------------------------------------------------------


def _status(row: Mapping[str, Any] | None) -> tuple[str, str | None]:
    """(status, reason) of one case in one bundle: 'ok' when it may enter a ratio."""
    if row is None:
        return "missing", "not in this bundle"
    if frames.comparable(row):
        return "ok", None
    status, reason = _text(row["status"]), _text(row["reason"]) or None
    if status == "ok":  # cases.jsonl says ok, but the samples say otherwise
        checksum_ok = row["checksum_ok"]
        if frames.present(checksum_ok) and not bool(checksum_ok):
            return "invalid", "checksum mismatch"
        return "failed", "no completed run"
    return status or "failed", reason


def _by_key(summary: pd.DataFrame) -> dict[frames.CaseKey, dict[Any, Any]]:
    return {
        (str(r["task"]), str(r["impl"]), frames.size_of(r["size"])): r
        for r in summary.to_dict("records")
    }


def _spread(values: Sequence[float]) -> float:
    """(max - min) / median of `values`; NaN when one is missing or the median is 0."""
    if len(values) < 2 or any(math.isnan(v) for v in values):
        return math.nan
    mid = stats.median(values)
    return (max(values) - min(values)) / mid if mid > 0 else math.nan


def medians(
    sides: Sequence[Side],
    noise: float = 0.01,
    *,
    seed: int = 0,
    n_boot: int = stats.N_BOOT,
    warmup_iters: int = 1,
) -> pd.DataFrame:
    """Table 1, one row per (case, bundle), for every case of any bundle.

    `median_ns` and `cv` are the bundle's summary figures of the case's metric. `ratio` is
    median(Bk) / median(B1), a ratio of times (above 1: slower in Bk), with the 95 % CI of a
    hierarchical bootstrap of both bundles (sessions, then runs; independent streams);
    `verdict` is "same" when that CI touches 1 ± noise, else "faster" or "slower" (Bk against
    B1). B1's own rows have no ratio. `spread` = (max - min) / median of the case's medians over
    all bundles, NaN unless the case passed in every bundle. A case that is missing, failed or
    invalid in a bundle keeps its row there, with `status` and `reason` and no figures, and
    enters no ratio.
    """
    tables = [_by_key(s.summary) for s in sides]
    by_case = [frames.by_case(s.samples) for s in sides]
    out: list[dict[str, Any]] = []
    for key in frames.ordered_keys(k for t in tables for k in t):
        rows = [t.get(key) for t in tables]
        states = [_status(r) for r in rows]
        ok = [status == "ok" for status, _ in states]
        passed = [r for r, good in zip(rows, ok, strict=True) if good and r is not None]
        # The kind's metric where every bundle measured it (older bundles: kernel or wall).
        metrics = {str(r["metric"]) for r in passed}
        metric = metrics.pop() if len(metrics) == 1 else ("wall" if passed else None)
        meds = [
            float(r["metric_median_ns" if r["metric"] == metric else "wall_median_ns"])
            if good and r is not None
            else math.nan
            for r, good in zip(rows, ok, strict=True)
        ]
        spread = _spread(meds)
        case_id = next(str(r["case_id"]) for r in rows if r is not None)

        sessions = [
            frames.sessions_of(frames.measured(bc.get(key, [])), metric, warmup_iters)
            if good and metric is not None
            else []
            for bc, good in zip(by_case, ok, strict=True)
        ]
        for i, (s, row, (status, reason)) in enumerate(zip(sides, rows, states, strict=True)):
            ratio = low = high = math.nan
            verdict = None
            if i and ok[0] and ok[i] and metric is not None:
                ratio, low, high = stats.hierarchical_ratio_ci(
                    sessions[i],
                    sessions[0],
                    n_boot=n_boot,
                    seed=stats.seed_for(seed, case_id, metric, s.name),
                )
                verdict = _TIME_VERDICT[stats.verdict(low, high, noise)]
            out.append(
                {
                    "task": key[0],
                    "size": key[2],
                    "impl": key[1],
                    "case_id": case_id,
                    "metric": metric,
                    "bundle": s.name,
                    "label": s.label,
                    "status": status,
                    "reason": reason,
                    "median_ns": meds[i],
                    "cv": float(row.get(f"{metric}_cv", math.nan))
                    if ok[i] and row is not None
                    else math.nan,
                    "n_runs": int(row["n_runs"]) if row is not None else 0,
                    "ratio": ratio,
                    "ci_low": low,
                    "ci_high": high,
                    "verdict": verdict,
                    "spread": spread,
                }
            )
    frame = pd.DataFrame.from_records(out, columns=MEDIAN_COLUMNS)
    return frame.astype({"size": "Int64", "n_runs": "int64"})


# --- table 2: speed-ups -----------------------------------------------------------------------

_SpeedKey = tuple[str, int | None, str, str]


def speedups(
    sides: Sequence[Side],
    noise: float = 0.01,
    *,
    seed: int = 0,
    n_boot: int = stats.N_BOOT,
    warmup_iters: int = 1,
) -> pd.DataFrame:
    """Table 2, one row per (task, size, impl, reference kind, bundle): every speed-up that
    `frames.speedups` finds in any bundle (against the baselines of that bundle's manifest
    and its best Python library), side by side. A ratio a bundle lacks (the case or its
    reference did not pass there) has status "missing". `spread` is that of table 1, over the
    speed-ups, NaN unless every bundle has the ratio. The best Python library may differ
    between bundles: `reference` says which it was in each.
    """
    tables: list[dict[_SpeedKey, dict[Any, Any]]] = []
    for s in sides:
        frame = frames.speedups(
            s.samples,
            s.summary,
            s.manifest.get("baselines") or {},
            seed,
            noise,
            warmup_iters=warmup_iters,
            n_boot=n_boot,
            against_best_python=not s.manifest.get("aa"),
        )
        tables.append(
            {
                (
                    str(r["task"]),
                    frames.size_of(r["size"]),
                    str(r["impl"]),
                    str(r["reference_kind"]),
                ): r
                for r in frame.to_dict("records")
            }
        )
    keys = list(dict.fromkeys(k for t in tables for k in t))
    task_rank = {t: i for i, t in enumerate(dict.fromkeys(k[0] for k in keys))}
    keys.sort(key=lambda k: (task_rank[k[0]], -1 if k[1] is None else k[1]))
    out: list[dict[str, Any]] = []
    for key in keys:
        rows = [t.get(key) for t in tables]
        first = next(r for r in rows if r is not None)
        spread = _spread([math.nan if r is None else float(r["speedup"]) for r in rows])
        for s, row in zip(sides, rows, strict=True):
            r = row or {}
            out.append(
                {
                    "task": key[0],
                    "size": key[1],
                    "impl": key[2],
                    "lang": first["lang"],
                    "reference_kind": key[3],
                    "reference": r.get("reference"),
                    "bundle": s.name,
                    "label": s.label,
                    "status": "ok" if row is not None else "missing",
                    "metric": r.get("metric"),
                    "speedup": r.get("speedup", math.nan),
                    "ci_low": r.get("ci_low", math.nan),
                    "ci_high": r.get("ci_high", math.nan),
                    "verdict": r.get("verdict"),
                    "spread": spread,
                }
            )
    frame = pd.DataFrame.from_records(out, columns=SPEEDUP_COLUMNS)
    return frame.astype({"size": "Int64", "speedup": "float64"})


# --- the whole comparison ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Comparison:
    bundles: pd.DataFrame
    medians: pd.DataFrame
    speedups: pd.DataFrame
    warnings: list[str]  # differences that make absolute times not comparable
    notes: list[str]  # cases left out of ratios, hosts that differ
    noise: float


def _reason(r: Mapping[Any, Any]) -> str:
    """Why a case did not pass in a bundle ('' for a missing case: its status says it all)."""
    return _text(r["reason"]) if r["status"] != "missing" else ""


def _case_notes(medians: pd.DataFrame) -> list[str]:
    """One note per case that some bundle lacks or did not pass."""
    notes = []
    for case_id, rows in medians.groupby("case_id", sort=False):
        bad = rows[rows["status"] != "ok"]
        if bad.empty:
            continue
        why: dict[str, list[str]] = {}
        for r in bad.to_dict("records"):
            reason = _reason(r)
            text = str(r["status"]) + (f" ({reason})" if reason else "")
            why.setdefault(text, []).append(str(r["bundle"]))
        parts = [
            f"missing from {', '.join(b)}" if text == "missing" else f"{text} in {', '.join(b)}"
            for text, b in why.items()
        ]
        notes.append(f"{_text(case_id)}: {'; '.join(parts)}; left out of the ratios there")
    return notes


def compare(
    sides: Sequence[Side],
    noise: float = 0.01,
    *,
    seed: int = 0,
    n_boot: int = stats.N_BOOT,
    warmup_iters: int = 1,
) -> Comparison:
    """Both tables, the bundles' legend, warnings and notes for two or more bundles."""
    if len(sides) < 2:
        raise ValueError(f"a comparison needs at least two bundles, not {len(sides)}")
    kw: dict[str, Any] = {"seed": seed, "n_boot": n_boot, "warmup_iters": warmup_iters}
    table1 = medians(sides, noise, **kw)
    notes = _case_notes(table1)
    hosts = list(dict.fromkeys(s.host for s in sides))
    if len(hosts) > 1:
        notes.append(
            f"the bundles come from {len(hosts)} hosts ({', '.join(hosts)}): their absolute "
            "times differ with the hardware; compare the speed-ups"
        )
    return Comparison(
        bundles=bundles_table(sides),
        medians=table1,
        speedups=speedups(sides, noise, **kw),
        warnings=differences(sides) + label_clashes(sides),
        notes=notes,
        noise=noise,
    )


# --- rendering --------------------------------------------------------------------------------


def _groups(frame: pd.DataFrame, key: Iterable[str]) -> list[list[dict[str, Any]]]:
    """The rows of a long table grouped by `key`, in the table's order (one group per line)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    cols = list(key)
    for r in frame.to_dict("records"):
        groups.setdefault(tuple(str(r[c]) for c in cols), []).append(
            {str(k): v for k, v in r.items()}
        )
    return list(groups.values())


def _not_ok(r: Mapping[str, Any]) -> str:
    """'failed: exit status 101', 'invalid: checksum mismatch', 'missing'."""
    reason = _reason(r)
    return str(r["status"]) + (f": {reason}" if reason else "")


def _median_text(r: Mapping[str, Any]) -> str:
    return f"{format_ns(r['median_ns'])} ({format_percent(r['cv'])})"


def _ratio_text(r: Mapping[str, Any]) -> str:
    return f"{format_ratio(r['ratio'])} {format_ratio_ci(r['ci_low'], r['ci_high'])}"


def _speed_text(r: Mapping[str, Any]) -> str:
    return f"{format_ratio(r['speedup'])} {format_ratio_ci(r['ci_low'], r['ci_high'])}"


def _medians_cell(r: Mapping[str, Any], reference: Mapping[str, Any]) -> Text:
    """Median (CV) and, below it, the ratio to the reference bundle with CI and verdict."""
    if r["status"] != "ok":
        return Text(_not_ok(r), style="yellow")
    cell = Text(_median_text(r))
    if frames.present(r["ratio"]):
        cell.append(f"\n{_ratio_text(r)} ")
        cell.append(str(r["verdict"]), style=_STYLE.get(str(r["verdict"]), ""))
    elif r["bundle"] != reference["bundle"]:
        cell.append(f"\nno {reference['bundle']} value to compare", style="yellow")
    return cell


def _percent(x: Any) -> str:
    return format_percent(x) if frames.present(x) else DASH


def _spread_text(x: Any) -> str:
    """A spread to 0.1 %: finer differences between runs are noise, not information."""
    return f"{100 * float(x):.1f} %" if frames.present(x) else DASH


def _speed_cell(r: Mapping[str, Any], reference: str) -> Text:
    if r["status"] != "ok":
        return Text(DASH)
    cell = Text(_speed_text(r) + "\n")
    cell.append(str(r["verdict"]), style=_STYLE.get(str(r["verdict"]), ""))
    if _text(r["reference"]) != reference:
        cell.append(f" (vs {_text(r['reference'])})")
    return cell


def terminal(c: Comparison) -> list[RenderableType]:
    """The bundles' legend and both tables as rich tables (no markup is read from a bundle)."""
    names = list(c.bundles["bundle"])
    legend = Table("", "host", "run", "settings", "status", title="Bundles", box=box.SIMPLE)
    for b in c.bundles.to_dict("records"):
        legend.add_row(
            *(Text(_text(b[k])) for k in ("bundle", "host", "run_id", "settings", "status"))
        )

    t1 = Table(
        Column("case\nmetric", overflow="fold"),
        *(f"{n}\nmedian (CV)" + ("" if n == names[0] else f"; ÷ {names[0]}") for n in names),
        Column("spread", justify="right"),
        title=f"Medians: ratio = time in Bk / time in {names[0]}, 95 % CI; "
        f"'same' when the CI reaches into 1 ± {format_percent(c.noise)}",
        box=box.SIMPLE,
    )
    for rows in _groups(c.medians, ["case_id"]):
        first = rows[0]
        t1.add_row(
            Text(f"{_text(first['case_id'])}\n{_text(first['metric']) or DASH}"),
            *(_medians_cell(r, first) for r in rows),
            Text(_spread_text(first["spread"]), justify="right"),
        )

    t2 = Table(
        "task",
        "size",
        "impl\nvs reference",
        *names,
        Column("spread", justify="right"),
        title="Speed-ups: reference time / impl time in each bundle (above 1: faster), 95 % CI",
        box=box.SIMPLE,
    )
    for rows in _groups(c.speedups, ["task", "size", "impl", "reference_kind"]):
        first = rows[0]
        reference = next(_text(r["reference"]) for r in rows if r["status"] == "ok")
        t2.add_row(
            Text(_text(first["task"])),
            Text(format_size(first["size"])),
            Text(f"{_text(first['impl'])}\nvs {reference}"),
            *(_speed_cell(r, reference) for r in rows),
            Text(_spread_text(first["spread"]), justify="right"),
        )
    if c.speedups.empty:
        t2.add_row(Text("none: no task has two implementations that passed in a bundle"))
    return [legend, t1, t2]


def _md(x: Any) -> str:
    """Text from a bundle for a Markdown cell: one printable line, escaped."""
    return md_escape(_text(x))


def _md_row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    return [
        _md_row(header),
        _md_row("---" for _ in header),
        *(_md_row(r) for r in rows),
        "",
    ]


def _md_medians_cells(r: Mapping[str, Any], reference: bool) -> list[str]:
    """B1: median, CV. Other bundles: median, CV, ratio to B1 with CI, verdict."""
    width = 2 if reference else 4
    if r["status"] != "ok":
        return [_md(_not_ok(r)), *[""] * (width - 1)]
    cells = [format_ns(r["median_ns"]), _percent(r["cv"])]
    if not reference:
        present = frames.present(r["ratio"])
        cells += [_ratio_text(r) if present else DASH, str(r["verdict"]) if present else DASH]
    return cells


def render_markdown(c: Comparison) -> str:
    """The comparison as Markdown: legend, warnings, both tables and notes."""
    names = list(c.bundles["bundle"])
    ref = names[0]
    lines = ["# Comparison of results bundles", ""]
    lines += _md_table(
        ["bundle", "host", "run", "settings", "status", "path"],
        (
            [_md(b[k]) for k in ("bundle", "host", "run_id", "settings", "status")]
            + [_md(b["path"])]
            for b in c.bundles.to_dict("records")
        ),
    )
    if c.warnings:
        lines += [*(f"- Warning: {_md(w)}" for w in c.warnings), ""]
    lines += [
        "## Medians",
        "",
        f"Kernel time per iteration where the case reports iterations, else wall time per "
        f"process. Ratio = time in the bundle / time in {ref} (above 1: slower), with a 95 % "
        f"hierarchical-bootstrap CI; 'same' when the CI reaches into 1 ± "
        f"{format_percent(c.noise)}. Spread = (max − min) / median of the medians.",
        "",
    ]
    header = ["case", "metric", f"{ref} median", f"{ref} CV"]
    for n in names[1:]:
        header += [f"{n} median", f"{n} CV", f"{n} / {ref}", f"{n} verdict"]
    lines += _md_table(
        [*header, "spread"],
        (
            [_md(rows[0]["case_id"]), _text(rows[0]["metric"]) or DASH]
            + [cell for r in rows for cell in _md_medians_cells(r, r["bundle"] == ref)]
            + [_spread_text(rows[0]["spread"])]
            for rows in _groups(c.medians, ["case_id"])
        ),
    )
    lines += [
        "## Speed-ups",
        "",
        "Reference time / implementation time within each bundle (above 1: faster), with a 95 % "
        "CI. Across hosts, compare these rather than absolute times.",
        "",
    ]
    speed_rows = []
    for rows in _groups(c.speedups, ["task", "size", "impl", "reference_kind"]):
        reference = next(_text(r["reference"]) for r in rows if r["status"] == "ok")
        cells = [
            _md(rows[0]["task"]),
            format_size(rows[0]["size"]),
            _md(rows[0]["impl"]),
            _md(reference),
        ]
        for r in rows:
            if r["status"] != "ok":
                cells.append(DASH)
                continue
            other = _text(r["reference"])
            vs = f" (vs {_md(other)})" if other != reference else ""
            cells.append(f"{_speed_text(r)} {r['verdict']}{vs}")
        speed_rows.append([*cells, _spread_text(rows[0]["spread"])])
    lines += _md_table(["task", "size", "impl", "vs", *names, "spread"], speed_rows)
    if c.notes:
        lines += ["## Notes", "", *(f"- {_md(n)}" for n in c.notes), ""]
    return "\n".join(lines)


def render_csv(frame: pd.DataFrame) -> str:
    """A table of the comparison as CSV, one row per (case, bundle)."""
    return frame.to_csv(index=False, lineterminator="\n")


# --- HTML -------------------------------------------------------------------------------------


def _versions(manifest: Mapping[str, Any]) -> dict[str, str]:
    """Every toolchain version of a bundle's images, flattened: 'python: python' -> '3.13.5'."""
    out: dict[str, str] = {}
    images = manifest.get("images") or {}
    for name, spec in images.items() if isinstance(images, Mapping) else ():
        versions = spec.get("versions") if isinstance(spec, Mapping) else None
        for key, value in (versions or {}).items():
            if isinstance(value, Mapping):
                for sub, v in value.items():
                    out[f"{name}: {key} {sub}"] = _text(v)
            else:
                out[f"{name}: {key}"] = _text(value)
    return out


def toolchains(sides: Sequence[Side]) -> list[dict[str, Any]]:
    """One row per toolchain or package version found in any bundle's images: its value in
    each bundle and whether they differ."""
    per = [_versions(s.manifest) for s in sides]
    keys = sorted({k for v in per for k in v})
    return [
        {
            "key": k,
            "values": [v.get(k, "") or DASH for v in per],
            "differs": len({v.get(k, "") for v in per}) > 1,
        }
        for k in keys
    ]


def _host_facts(s: Side) -> dict[str, str]:
    fp = s.manifest.get("fingerprint") or {}
    engine = s.manifest.get("engine") or {}
    fp = fp if isinstance(fp, Mapping) else {}
    engine = engine if isinstance(engine, Mapping) else {}
    return {
        "CPU": _text(fp.get("cpu_model")) or DASH,
        "Cores used": _text(s.manifest.get("cpus")) or DASH,
        "Kernel": _text(fp.get("kernel")) or DASH,
        "Docker": _text(engine.get("server_version")) or DASH,
        "Storage driver": _text(engine.get("storage_driver")) or DASH,
        "Status": _text(s.manifest.get("status")) or "unknown",
        "Finished": _text(s.manifest.get("finished")) or DASH,
    }


def _overlap(rows: Sequence[Mapping[str, Any]]) -> str:
    """'consistent' when every bundle's speed-up CI overlaps B1's, else 'differs' (with which)."""
    ok = [r for r in rows if r["status"] == "ok"]
    if len(ok) < 2 or ok[0]["bundle"] != rows[0]["bundle"]:
        return DASH
    ref = ok[0]
    apart = [
        str(r["bundle"])
        for r in ok[1:]
        if float(r["ci_low"]) > float(ref["ci_high"]) or float(r["ci_high"]) < float(ref["ci_low"])
    ]
    return f"differs in {', '.join(apart)}" if apart else "consistent"


def _speed_chart(task: str, groups: list[list[dict[str, Any]]], names: list[str]) -> Any:
    """Speed-ups with CIs, one marker per bundle, per (impl vs reference) of a task."""
    from harness import charts

    return charts.compare_chart(
        task,
        [
            (
                f"{_text(rows[0]['impl'])} vs {_text(rows[0]['reference_kind'])}"
                + (f" ({format_size(rows[0]['size'])})" if frames.present(rows[0]["size"]) else ""),
                [
                    (str(r["bundle"]), float(r["speedup"]), float(r["ci_low"]), float(r["ci_high"]))
                    for r in rows
                    if r["status"] == "ok"
                ],
            )
            for rows in groups
        ],
        names,
    )


def render_html(c: Comparison, sides: Sequence[Side]) -> str:
    """The comparison as one self-contained HTML page in the report's style: the bundles side
    by side (host, settings, toolchains), flags where they differ, the speed-ups compared with
    their CIs (tables and charts) and the medians."""
    from harness.report import _environment

    names = list(c.bundles["bundle"])
    speed_groups = _groups(c.speedups, ["task", "size", "impl", "reference_kind"])
    tasks: dict[str, list[list[dict[str, Any]]]] = {}
    for rows in speed_groups:
        tasks.setdefault(_text(rows[0]["task"]), []).append(rows)
    speed_sections = []
    for task, groups in tasks.items():
        chart = _speed_chart(task, groups, names)
        speed_sections.append(
            {
                "task": task,
                "chart": None
                if chart is None
                else {
                    "id": chart.id,
                    "label": chart.label,
                    "description": chart.description,
                    "svg": chart.svg,
                    "header": chart.header,
                    "rows": chart.rows,
                },
                "rows": [
                    {
                        "size": format_size(rows[0]["size"]),
                        "impl": _text(rows[0]["impl"]),
                        "reference": next(
                            (_text(r["reference"]) for r in rows if r["status"] == "ok"), DASH
                        ),
                        "cells": [
                            {
                                "text": _speed_text(r) if r["status"] == "ok" else DASH,
                                "verdict": _text(r["verdict"]) if r["status"] == "ok" else "",
                            }
                            for r in rows
                        ],
                        "overlap": _overlap(rows),
                        "spread": _spread_text(rows[0]["spread"]),
                    }
                    for rows in groups
                ],
            }
        )
    tool_rows = toolchains(sides)
    image_ids = [_image_ids(s.manifest) for s in sides]
    context = {
        "names": names,
        "noise": format_percent(c.noise),
        "bundles": [{k: _text(v) for k, v in b.items()} for b in c.bundles.to_dict("records")],
        "facts": [
            {"key": k, "values": [_host_facts(s)[k] for s in sides]} for k in _host_facts(sides[0])
        ],
        "toolchains": tool_rows,
        "toolchain_flag": [
            f"{r['key']} ({' vs '.join(r['values'])})" for r in tool_rows if r["differs"]
        ],
        "images_differ": any(ids != image_ids[0] for ids in image_ids[1:]),
        "warnings": [_text(w) for w in c.warnings],
        "notes": [_text(n) for n in c.notes],
        "speed_sections": speed_sections,
        "medians": [
            {
                "case_id": _text(rows[0]["case_id"]),
                "metric": _text(rows[0]["metric"]) or DASH,
                "cells": [
                    {
                        "median": _median_text(r) if r["status"] == "ok" else _not_ok(r),
                        "ratio": _ratio_text(r) if frames.present(r["ratio"]) else "",
                        "verdict": _text(r["verdict"]),
                        "ok": r["status"] == "ok",
                    }
                    for r in rows
                ],
                "spread": _spread_text(rows[0]["spread"]),
            }
            for rows in _groups(c.medians, ["case_id"])
        ],
    }
    return _environment().get_template("compare.html.j2").render(**context)
