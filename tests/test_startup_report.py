"""The report's start-up section: warm start beside cold start (the `TASK_cold` twin), the
warm-up each session needed, the storage driver's cost and the per-import cost
(`-X importtime`), in Markdown and HTML; bundles from before these fields still render."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from harness import frames, report
from harness.importtime import parse_importtime
from tests.test_importtime import JSON_CSV, PANDAS
from tests.test_report import bundle, case_status, make_case, manifest, without_chart_bodies

WARM = {"py-bare": 12e6, "rs-hello": 0.6e6, "py-numpy": 60e6, "py-pandas": 250e6}
COLD = {"py-bare": 48e6, "rs-hello": 3e6, "py-numpy": 300e6}  # py-pandas: no cold case
WARMUP_RUNS = {
    "py-bare": ([12, 9, 15], [True, False, True]),
    "rs-hello": ([5, 5, 6], [True, True, True]),
    "py-numpy": ([3, 3, 3], [None, None, None]),
}


def cold_case(task: str, impl: str, wall: float, lang: str, n: int = 6) -> list[dict[str, Any]]:
    """`n` sessions of one run each, no warm-up: a cold case."""
    out = []
    for session, sample in enumerate(make_case(task, impl, None, wall=wall, lang=lang)[:n]):
        out.append({**sample, "session": session, "run": 0, "warmup": False})
    return out


def startup_bundle(
    *, driver: str = "fuse-overlayfs", importtime: dict[str, Any] | None = None, **extra: Any
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    samples: list[dict[str, Any]] = []
    cases: list[dict[str, Any]] = []
    for impl, wall in WARM.items():
        lang = "rust" if impl.startswith("rs-") else "python"
        samples += make_case("startup", impl, None, wall=wall, lang=lang)
        row = case_status("startup", impl, None)
        if impl in WARMUP_RUNS:
            runs, settled = WARMUP_RUNS[impl]
            row.update(warmup_runs=runs, warmup_settled=settled, sessions=3, stop_reason="done")
        cases.append(row)
    for impl, wall in COLD.items():
        lang = "rust" if impl.startswith("rs-") else "python"
        samples += cold_case("startup_cold", impl, wall, lang)
        cases.append(case_status("startup_cold", impl, None))
    samples += make_case("sum_squares", "py-loop", 1000, wall=30e6, kernel=60_000.0)
    kernel = case_status("sum_squares", "py-loop", 1000)
    kernel.update(
        warmup_iters=[1, 2, 1, 3],
        iters_settled=[True, True, True, False],
        sessions=2,
        stop_reason="converged",
    )
    cases.append(kernel)
    summary = frames.summarize(samples, cases, n_boot=200)
    baselines = {"startup": "py-bare", "startup_cold": "py-bare", "sum_squares": "py-loop"}
    speedups = frames.speedups(samples, summary, baselines, n_boot=200)
    m = {
        **manifest("complete"),
        "baselines": baselines,
        "engine": {"server_version": "28.0.0", "storage_driver": driver},
        "kind_state": {
            "process": {
                "importtime": importtime
                if importtime is not None
                else {
                    "py-pandas": parse_importtime(PANDAS, top=10),
                    "py-numpy": parse_importtime(JSON_CSV, top=10),
                    "py-polars": {"error": "exit status 1"},
                    "py-empty": parse_importtime(""),
                }
            }
        },
        **extra,
    }
    return m, summary, speedups, cases


def row_of(md: str, impl: str, after: str = "## Start-up") -> str:
    section = md[md.index(after) :]
    return next(line for line in section.splitlines() if line.startswith(f"| {impl} "))


def test_warm_and_cold_side_by_side_in_markdown() -> None:
    md = report.render_markdown(*startup_bundle())
    assert "## Start-up: warm and cold" in md
    assert "### startup and startup_cold" in md
    cells = [c.strip() for c in row_of(md, "py-bare").strip("|").split("|")]
    # Impl, warm, CI, cold, CI, cold runs, cold / warm, warm-up runs, settled
    assert cells[0] == "py-bare"
    assert cells[1] == "12.0 ms"
    assert re.fullmatch(r"\[\d+\.\d+, \d+\.\d+\] ms", cells[2])
    assert cells[3] == "48.0 ms"
    assert re.fullmatch(r"\[\d+\.?\d*, \d+\.?\d*\] ms", cells[4])
    assert cells[5] == "6"
    assert cells[6] == "4.00×"
    assert cells[7] == "12, 9 (cap), 15"
    assert cells[8] == "no: the cap ended 1 of 3 sessions"
    rs = row_of(md, "rs-hello")
    assert "| 600 µs |" in rs
    assert "| 3.00 ms |" in rs
    assert "| 5.00× |" in rs
    assert "| 5, 5, 6 | yes |" in rs
    assert "| 3, 3, 3 | fixed (no rule) |" in row_of(md, "py-numpy")
    # py-pandas has no cold case and no warm-up fields: dashes, not an error.
    pandas_row = row_of(md, "py-pandas")
    assert "250 ms" in pandas_row
    assert pandas_row.endswith("| 250 ms | [245, 255] ms | — | — | — | — | — | — |")
    assert "The warm-up was found from the data" in md
    assert "Cold start was not measured" not in md


def test_storage_driver_note() -> None:
    md = report.render_markdown(*startup_bundle())
    section = md[md.index("## Start-up") : md.index("### startup")]
    assert "> **Note:** Docker's storage driver is fuse-overlayfs" in section
    assert "every file a program opens goes through FUSE" in section
    for quiet in (
        startup_bundle(driver="overlay2"),
        startup_bundle(executor="local"),
    ):
        md = report.render_markdown(*quiet)
        assert "**Note:**" not in md[md.index("## Start-up") : md.index("### startup")]


def test_importtime_tables() -> None:
    md = report.render_markdown(*startup_bundle())
    imports = md[md.index("### Import cost") :]
    # In the start-up table's order: py-numpy before py-pandas.
    assert imports.index("**py-numpy**") < imports.index("**py-pandas**")
    assert "**py-numpy**: 41 modules, 79.5 ms of import time in all" in imports
    assert "| 1 | json | 50.4 ms | enum | 9.75 ms | 25.8 ms |" in imports
    assert "| 2 | encodings | 13.1 ms | json.scanner | 5.88 ms | 8.27 ms |" in imports
    # Fewer top-level imports than self times: the row keeps its place, left side empty.
    assert "| 9 |  |  | collections | 3.23 ms | 9.63 ms |" in imports
    assert "**py-pandas**: 18 modules, 27.2 ms" in imports
    assert "| 1 | pandas | 993 ms | pandas.io.pytables | 7.41 ms | 8.76 ms |" in imports
    # What the process kind keeps when the profiled run failed, or printed no import lines.
    assert "**py-polars**: not profiled (exit status 1)." in imports
    assert "**py-empty**: not profiled (no import-time lines in its output)." in imports


def test_html_section() -> None:
    html = report.render_html(*startup_bundle())
    assert "<h2>Start-up: warm and cold</h2>" in html
    assert "<h3>startup and startup_cold</h3>" in html
    assert '<td class="num">48.0 ms</td>' in html
    assert "<td>12, 9 (cap), 15</td>" in html
    assert '<td class="warn">no: the cap ended 1 of 3 sessions</td>' in html
    assert '<p class="flag">Docker&#39;s storage driver is fuse-overlayfs' in html
    assert "<strong>py-numpy</strong>: 41 modules, 79.5 ms" in html
    assert "<td>pandas.io.pytables</td>" in html
    assert "<p><strong>py-polars</strong>: not profiled (exit status 1).</p>" in html
    # The section sits with the per-kind sections, before the per-task tables.
    assert html.index("Start-up: warm and cold") < html.index("<h2>Task: startup</h2>")
    assert "http://" not in html
    assert "https://" not in html
    assert "<script" not in html.lower()
    assert not re.search(r"href=\"(?!#)", html)


def test_warm_up_column_in_how_each_case_stopped() -> None:
    md = report.render_markdown(*startup_bundle())
    stops = md[md.index("## How each case stopped") :]
    assert "| Case | Sessions | Stopped | Warm-up | Warnings |" in stops
    assert "| startup/py-bare/- | 3 | done | 9–15 runs (1 of 3 sessions capped) |" in stops
    assert "| startup/py-numpy/- | 3 | done | 3 runs |" in stops
    assert "| sum_squares/py-loop/1000 | 2 | converged | 1–3 iterations (1 of 4 runs not" in stops
    html = report.render_html(*startup_bundle())
    assert "<th>Warm-up</th>" in html
    assert "<td>1–3 iterations (1 of 4 runs not settled)</td>" in html


def test_a_bundle_without_the_new_fields_still_renders() -> None:
    """Before cold twins, found warm-up and importtime: the start-up task gets the section
    with dashes; "How each case stopped" keeps its old columns."""
    m, summary, speedups, cases = bundle()
    md = report.render_markdown(m, summary, speedups, cases)
    html = report.render_html(m, summary, speedups, cases)
    assert "## Start-up: warm and cold" in md
    assert "Cold start was not measured in this run" in md
    assert "records no warm-up found from the data" in md
    assert row_of(md, "py-bare").endswith("| 12.0 ms | [11.8, 12.2] ms | — | — | — | — | — | — |")
    assert "### Import cost" not in md
    assert "| Case | Sessions | Stopped | Warnings |" in md
    assert "<h2>Start-up: warm and cold</h2>" in html
    assert "<th>Warm-up</th>" not in html
    # Malformed fields from a bundle are shown as missing, never an error.
    odd = [
        {**c, "warmup_runs": "twelve", "warmup_settled": 3, "warmup_iters": [1.5]} for c in cases
    ]
    odd_manifest = {**m, "kind_state": {"process": {"importtime": {"py-hello": "oops"}}}}
    md = report.render_markdown(odd_manifest, summary, speedups, odd)
    assert row_of(md, "py-hello").endswith("| — | — |")
    assert "### Import cost" not in md


def test_no_section_without_a_start_up_task() -> None:
    m, summary, speedups, cases = bundle()
    kernel_only = summary[summary["task"] != "startup"]
    md = report.render_markdown(m, kernel_only, speedups, cases)
    assert "## Start-up: warm and cold" not in md


def test_hostile_module_names_are_escaped() -> None:
    evil = {
        "total_us": 10,
        "modules": 1,
        "top_self": [{"module": "<img src=x>", "self_us": 10, "cumulative_us": 10, "depth": 0}],
        "top_level": [{"module": "a|b](javascript:x)", "cumulative_us": 10}],
    }
    m, summary, speedups, cases = startup_bundle(importtime={"<script>": evil})
    html = report.render_html(m, summary, speedups, cases)
    assert "<img" not in html
    assert "<script" not in html.lower()
    assert "&lt;img src=x&gt;" in html
    md = report.render_markdown(m, summary, speedups, cases)
    assert "<img" not in md
    assert "<script" not in md
    assert "a\\|b\\](javascript:x)" in md


def test_startup_tasks() -> None:
    m, summary, _, _ = startup_bundle()
    rows = report._records(summary)
    assert report.startup_tasks(m, rows) == [("startup", "startup_cold")]
    # The manifest's routes name the kind: a kernel task is never taken for start-up.
    routes = {r["case_id"]: {"kind": "kernel"} for r in rows if r["task"] == "sum_squares"}
    routes |= {r["case_id"]: {"kind": "process"} for r in rows if r["task"] != "sum_squares"}
    assert report.startup_tasks({**m, "routes": routes}, rows) == [("startup", "startup_cold")]
    # A cold task without its warm one is a process task of its own.
    only_cold = [r for r in rows if r["task"] != "startup"]
    assert report.startup_tasks(m, only_cold) == [("startup_cold", None)]


def test_warmup_texts() -> None:
    assert report.warmup_runs_text(None, None) == "—"
    assert report.warmup_runs_text([4], None) == "4"
    assert report.warmup_runs_text([4, 30], [True, False]) == "4, 30 (cap)"
    many = list(range(3, 15))
    assert (
        report.warmup_runs_text(many, [True] * 11 + [False])
        == "3–14 (median 8.5, 12 sessions, 1 capped)"
    )
    assert report.settled_text([4, 5], [True, True]) == "yes"
    assert report.settled_text([4, 5], [None, None]) == "fixed (no rule)"
    assert report.settled_text([4, 5], None) == "fixed (no rule)"
    assert report.settled_text(None, None) == "—"
    assert report.warmup_text({"warmup_runs": [1], "warmup_settled": [True]}) == "1 run"
    assert report.warmup_text({"warmup_iters": [1, 1]}) == "1 iteration"
    assert report.warmup_text({}) == ""


def test_markdown_and_html_say_the_same() -> None:
    html = without_chart_bodies(report.render_html(*startup_bundle()))
    md = report.render_markdown(*startup_bundle())
    for text in ("12, 9 (cap), 15", "4.00×", "79.5 ms"):
        assert text in html
        assert text in md


def test_the_warm_up_rule_is_named_when_the_manifest_has_it() -> None:
    profile = {**manifest()["profile"], "warmup_cap": 30, "settle_k": 5, "settle_band": 0.1}
    md = report.render_markdown(*startup_bundle(profile=profile))
    assert "runs until the last 5 were within 10 % of each other, at most 30 runs;" in md
    md = report.render_markdown(*startup_bundle())
    assert "runs until the last few were within a band of each other, up to a cap;" in md
