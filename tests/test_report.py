"""Report rendering: formatting helpers, golden files, escaping, self-containment.

The Markdown and HTML renderings of a small synthetic bundle are compared with the files in
tests/golden/. After an intended change to the report, regenerate them and review the diff:

    UPDATE_GOLDEN=1 pytest tests/test_report.py
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness import frames, report

GOLDEN = Path(__file__).parent / "golden"
BASELINES = {"sum_squares": "py-loop", "startup": "py-bare"}
HOSTILE_TASK = "<script>alert(1)</script>"
HOSTILE_STDERR = '<img src=x onerror="alert(2)">\nTraceback: boom & bust'


ROUTES = {
    "py-loop": "python",
    "py-bare": "python",
    "py-hello": "python",
    "py-rs-pyo3": "rust-from-python",
    "rs-scalar": "rust",
    "rs-bad": "rust",
    "rs-hello": "rust",
}


def make_case(
    task: str,
    impl: str,
    size: int | None,
    *,
    wall: float,
    kernel: float | None = None,
    lang: str = "python",
    checksum_ok: bool = True,
) -> list[dict[str, Any]]:
    """2 sessions x (1 warm-up + 4 runs) x 4 iterations, with deterministic jitter (no RNG)."""
    out = []
    k = 0
    for session in range(2):
        for run in range(5):
            k += 1
            f = 1 + 0.01 * (((k * 7) % 5) - 2)
            iters = (
                [] if kernel is None else [round(kernel * f * (1 + 0.002 * i)) for i in range(4)]
            )
            out.append(
                {
                    "schema": 2,
                    "kind": "process" if kernel is None else "kernel",
                    "route": ROUTES.get(impl, "python-lib"),
                    "threads": 1,
                    "case_id": f"{task}/{impl}/{'-' if size is None else size}",
                    "task": task,
                    "impl": impl,
                    "lang": lang,
                    "image": lang,
                    "size": size,
                    "session": session,
                    "run": run,
                    "warmup": run == 0,
                    "wall_ns": round(wall * f),
                    "user_ns": round(wall * f * 0.9),
                    "sys_ns": round(wall * f * 0.05),
                    "maxrss_kb": 20_000 if lang == "python" else 3_000,
                    "exit_code": 0,
                    "signal": None,
                    "timed_out": False,
                    "setup_ns": None if kernel is None else 250_000,
                    "iter_ns": iters,
                    "checksum": "1234",
                    "checksum_ok": checksum_ok,
                }
            )
    return out


def case_status(
    task: str,
    impl: str,
    size: int | None,
    status: str = "ok",
    reason: str | None = None,
    stderr_tail: str | None = None,
) -> dict[str, Any]:
    return {
        "case_id": f"{task}/{impl}/{'-' if size is None else size}",
        "task": task,
        "impl": impl,
        "size": size,
        "status": status,
        "reason": reason,
        "stderr_tail": stderr_tail,
    }


def manifest(status: str = "incomplete") -> dict[str, Any]:
    return {
        "run_id": "20260102T030405Z-test",
        "host": "bench-host",
        "started": "2026-01-02T03:04:05Z",
        "finished": "2026-01-02T03:14:05Z" if status == "complete" else None,
        "status": status,
        "cpus": 2,
        "cpuset": "2-3",
        "profile": {
            "name": "quick",
            "size": "test",
            "sessions": 2,
            "runs": 4,
            "warmup": 1,
            "iters": 4,
        },
        "suite": {"name": "default", "path": "/x/default.toml", "sha256": "ab" * 32},
        "baselines": BASELINES,
        "harness_version": "0.1.0",
        "git_commit": "0123456789abcdef",
        "images": {
            "python": {
                "tag": "rpb-python:test",
                "id": "sha256:1111",
                "versions": {"python": "3.13.5"},
            },
            "rust": {"tag": "rpb-rust:test", "id": "sha256:2222", "versions": {"rustc": "1.97.1"}},
        },
        "fingerprint": {
            "cpu_model": "Example CPU @ 3.0GHz",
            "cores": 8,
            "kernel": "6.12.0",
            "docker_version": "28.0.0",
        },
        "warnings": ["load average 1.7 on 8 cores: the host looks busy"],
    }


def bundle(
    task: str = "sum_squares", stderr: str = "thread 'main' panicked at src/main.rs:3"
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """A small run: a kernel task at two sizes with a failed and an invalid case, and startup."""
    samples: list[dict[str, Any]] = []
    cases: list[dict[str, Any]] = []
    for size, scale in ((1000, 1), (100_000, 100)):
        for impl, lang, kernel in (
            ("py-loop", "python", 60_000.0),
            ("py-numpy", "python", 900.0),
            ("rs-scalar", "rust", 400.0),
            ("py-rs-pyo3", "python", 420.0),
        ):
            wall = (25e6 if lang == "python" else 1e6) + 4 * kernel * scale
            samples += make_case(task, impl, size, wall=wall, kernel=kernel * scale, lang=lang)
            cases.append(case_status(task, impl, size))
    samples += make_case(
        task, "rs-bad", 1000, wall=1e6, kernel=10.0, lang="rust", checksum_ok=False
    )
    cases.append(case_status(task, "rs-bad", 1000, "invalid", "checksum 99 != reference 1234"))
    cases.append(case_status(task, "rs-rayon", 1000, "failed", "exit status 101", stderr))
    for impl, lang, wall in (
        ("py-bare", "python", 12e6),
        ("rs-hello", "rust", 0.6e6),
        ("py-hello", "python", 12.1e6),
    ):
        samples += make_case("startup", impl, None, wall=wall, lang=lang)
        cases.append(case_status("startup", impl, None))
        cases[-1].update(
            sessions=2,
            stop_reason="converged: 95 % CI of the median ±0.40% (target ±1.0%)",
            warnings=["2 of 8 process runs' wall times are statistical outliers"]
            if impl == "py-hello"
            else [],
        )
    summary = frames.summarize(samples, cases)
    speedups = frames.speedups(samples, summary, {**BASELINES, task: "py-loop"}, n_boot=400)
    return manifest(), summary, speedups, cases


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == path.read_text(encoding="utf-8")


# --- formatting helpers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ns", "expected"),
    [
        (0, "0.00 ns"),
        (5, "5.00 ns"),
        (812, "812 ns"),
        (999.96, "1.00 µs"),
        (4567, "4.57 µs"),
        (999_999, "1.00 ms"),
        (12_345_678, "12.3 ms"),
        (1.5e9, "1.50 s"),
        (3.6e12, "3600 s"),
        (None, "—"),
        (math.nan, "—"),
        (pd.NA, "—"),
    ],
)
def test_format_ns(ns: Any, expected: str) -> None:
    assert report.format_ns(ns) == expected


def test_format_helpers() -> None:
    assert report.format_ns_range(4500, 4620) == "[4.50, 4.62] µs"
    assert report.format_ns_range(999_000, 1_010_000) == "[0.999, 1.01] ms"
    assert report.format_ns_range(None, 3) == "—"
    assert report.format_ratio(2.0) == "2.00×"
    assert report.format_ratio(0.5) == "0.500×"
    assert report.format_ratio(1234.4) == "1234×"
    assert report.format_ratio(9.996) == "10.0×"
    assert report.format_ratio_ci(1.984, 2.05) == "[1.98, 2.05]"
    assert report.format_percent(0.0123) == "1.2 %"
    assert report.format_percent(0.998, 3) == "99.8 %"
    assert report.format_kib(20_000) == "19.5 MiB"
    assert report.format_kib(512) == "512 KiB"
    assert report.format_kib(3 * 1024**2) == "3.00 GiB"
    assert report.format_size(1_000_000) == "1,000,000"
    assert report.format_size(None) == "—"
    assert report.boundness(0.99) == "CPU"
    assert report.boundness(0.3) == "waits"
    assert report.boundness(3.8) == "parallel"


def test_md_escape_keeps_tables_and_drops_tags() -> None:
    assert report.md_escape("a|b") == "a\\|b"
    assert report.md_escape(HOSTILE_TASK) == "&lt;script>alert(1)&lt;/script>"
    assert report.md_escape("two\nlines") == "two lines"
    assert report.md_escape(None) == ""
    assert report.md_fence("no ticks") == "```"
    assert report.md_fence("a ```` b") == "`````"


# --- rendering --------------------------------------------------------------------------------


def test_markdown_matches_golden() -> None:
    check_golden("report.md", report.render_markdown(*bundle()))


def without_chart_bodies(html: str) -> str:
    """The HTML with each chart's drawing cut to its <svg> tag, <title> and <desc>: the golden
    file checks the page, tests/test_charts.py the drawings."""
    return re.sub(r"(</desc>).*?(</svg>)", r"\1…\2", html, flags=re.DOTALL)


def test_html_matches_golden() -> None:
    check_golden("report.html", without_chart_bodies(report.render_html(*bundle())))


def test_summary_csv_matches_golden() -> None:
    _, summary, _, _ = bundle()
    text = report.render_summary_csv(summary)
    assert text.splitlines()[0] == ",".join(frames.SUMMARY_COLUMNS)
    assert len(text.splitlines()) == len(summary) + 1
    check_golden("summary.csv", text)


def test_report_content() -> None:
    md = report.render_markdown(*bundle())
    assert "**This bundle is incomplete**" in md
    assert "load average 1.7" in md
    assert "## Failed and invalid cases" in md
    assert "sum_squares/rs-rayon/1000 (failed)" in md
    assert "Reason: exit status 101" in md
    assert "thread 'main' panicked" in md
    assert "sum_squares/rs-bad/1000 (invalid)" in md
    assert "## How to read this" in md
    assert "no difference" in md
    # Failed and invalid cases are in the tables, but never in a ratio.
    rs_bad = next(line for line in md.splitlines() if line.startswith("| rs-bad |"))
    assert "×" not in rs_bad
    assert "MISMATCH" in rs_bad


def test_incomplete_banner_says_why() -> None:
    _, summary, speedups, cases = bundle()
    stopped = {**manifest(), "interrupted": True, "error": "engine went away <b>"}
    md = report.render_markdown(stopped, summary, speedups, cases)
    html = report.render_html(stopped, summary, speedups, cases)
    assert "(status: incomplete, interrupted)" in md
    assert "> Stopped by: engine went away &lt;b>" in md
    assert "<p>Stopped by: engine went away &lt;b&gt;</p>" in html


def test_complete_bundle_has_no_incomplete_banner() -> None:
    _, summary, speedups, cases = bundle()
    md = report.render_markdown(manifest("complete"), summary, speedups, cases)
    html = report.render_html(manifest("complete"), summary, speedups, cases)
    assert "incomplete" not in md
    assert "incomplete" not in html


def test_hostile_names_and_stderr_are_escaped_in_html() -> None:
    html = report.render_html(*bundle(task=HOSTILE_TASK, stderr=HOSTILE_STDERR))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in html
    assert "boom &amp; bust" in html
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert 'onerror="' not in html


def test_hostile_names_are_escaped_in_markdown() -> None:
    md = report.render_markdown(*bundle(task=HOSTILE_TASK, stderr=HOSTILE_STDERR))
    outside_fences = re.sub(r"```.*?```", "", md, flags=re.DOTALL)
    assert "<script" not in outside_fences
    assert "<img" not in outside_fences
    assert "## Task: &lt;script>alert(1)&lt;/script>" in md


def test_html_is_self_contained() -> None:
    for html in (
        report.render_html(*bundle()),
        report.render_html(*bundle(task=HOSTILE_TASK, stderr=HOSTILE_STDERR)),
    ):
        assert "http://" not in html
        assert "https://" not in html
        assert "<script" not in html.lower()
        assert "<link" not in html.lower()
        assert "@import" not in html
        # Charts refer to their own clip paths (url(#id)); nothing else is referenced.
        assert not re.search(r"url\((?!#)", html)
        assert not re.search(r"href=\"(?!#)", html)
        assert "<svg" in html


def test_renderers_cope_with_an_empty_bundle() -> None:
    empty_summary = frames.summarize([], [])
    empty_speedups = frames.speedups([], empty_summary, BASELINES)
    minimal = {"run_id": "r1", "status": "incomplete"}
    md = report.render_markdown(minimal, empty_summary, empty_speedups, [])
    html = report.render_html(minimal, empty_summary, empty_speedups, [])
    assert "This bundle is incomplete" in md
    assert "This bundle is incomplete" in html
    assert report.render_summary_csv(empty_summary).strip() == ",".join(frames.SUMMARY_COLUMNS)


def test_a_missing_baseline_is_named() -> None:
    m, summary, speedups, cases = bundle()
    only_best = speedups[speedups["reference_kind"] == "best_python"]
    md = report.render_markdown(m, summary, only_best, cases)
    assert "Baseline: py-loop (no usable result: no speed-ups against it)." in md
