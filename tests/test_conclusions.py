"""The summary's logic on synthetic frames (crossover size, boundness, best routes, scaling,
servers, resolution), the exports, the charts' markup, and `report`/`compare` on bad input.

`rich_bundle` is a run with every kind of section: a kernel task swept over three sizes where
Rust called from Python overtakes the Python library, a thread sweep, a start-up task, a task
with no Python library and a service task. tests/test_browser.py renders it too.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness import charts, conclusions, frames, report
from harness.cli import app
from tests.test_cli import error_line
from tests.test_hostile import write_bundle
from tests.test_report import case_status, make_case
from tests.test_report import manifest as report_manifest

N_BOOT = 200
BASELINES = {"sum_squares": "py-loop", "parallel": "py-loop", "startup": "py-bare"}
BASELINES |= {"concurrency": "py-threads", "serving_api": "py-flask"}
ROUTES = {
    "py-loop": "python",
    "py-bare": "python",
    "py-threads": "python",
    "py-processes": "python",
    "py-asyncio": "python",
    "py-flask": "python",
    "py-numpy": "python-lib",
    "py-rs-pyo3": "rust-from-python",
}
runner = CliRunner()


def _kernel(task: str, impl: str, size: int, kernel: float, *, threads: int = 1) -> list[dict]:
    lang = "rust" if impl.startswith("rs-") else "python"
    wall = (25e6 if lang == "python" else 1e6) + 4 * kernel
    out = make_case(task, impl, size, wall=wall, kernel=kernel, lang=lang)
    route = ROUTES.get(re.sub(r"-p[0-9]+$", "", impl), "rust" if lang == "rust" else "python-lib")
    for s in out:
        s.update(route=route, threads=threads)
        if threads > 1:  # a parallel process: CPU time above its wall time
            s.update(user_ns=s["wall_ns"] * threads * 0.9)
    return out


def _service(impl: str, rps: float, *, busy: bool = False, threads: int = 1) -> list[dict]:
    out = []
    for session in range(2):
        phases = [("check", None), ("saturate", None), ("rate", 500.0), ("rate", 1000.0)]
        for run, (phase, rate) in enumerate(phases):
            wall = 2_000_000_000
            got = rps * (1 + 0.01 * session) if phase == "saturate" else rate
            p50 = 1e6 * (1 + (rate or 0) / rps)
            out.append(
                {
                    "schema": 2,
                    "kind": "service",
                    "case_id": f"serving_api/{impl}/-",
                    "task": "serving_api",
                    "impl": impl,
                    "lang": "rust" if impl.startswith("rs-") else "python",
                    "route": ROUTES.get(impl, "rust"),
                    "threads": threads,
                    "size": None,
                    "session": session,
                    "run": run,
                    "warmup": False,
                    "phase": phase,
                    "target_rps": rate,
                    "wall_ns": wall,
                    "requests": None if got is None else got * 2,
                    "errors": 0,
                    "rps": got,
                    "per_request_ns": 1e9 / got if phase == "saturate" else None,
                    "latency_ns": {}
                    if rate is None
                    else {"p50": p50, "p99": 4 * p50, "p999": 9 * p50},
                    "client_cpu_ns": wall * (0.95 if busy else 0.4),
                    "server_cpu_ns": wall * 0.9,
                    "server_maxrss_kb": 30_000 if impl.startswith("py") else 4_000,
                    "exit_code": 0,
                    "signal": None,
                    "timed_out": False,
                    "checksum": "pass",
                    "checksum_ok": True,
                }
            )
    return out


def rich_data(scale: float = 1.0) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """Samples, cases and manifest of the rich run (times multiplied by `scale`)."""
    samples: list[dict] = []
    # sum_squares: pyo3 pays a fixed call cost, so NumPy wins small and pyo3 wins large.
    for size in (1000, 10_000, 100_000):
        for impl, k in (
            ("py-loop", 60.0 * size),
            ("py-numpy", 0.9 * size + 2_000),
            ("py-rs-pyo3", 0.4 * size + 8_000),
            ("rs-scalar", 0.4 * size),
        ):
            samples += _kernel("sum_squares", impl, size, k * scale)
    for impl, p, k in (
        ("py-loop", 1, 9e6),
        ("rs-rayon-p1", 1, 1e6),
        ("rs-rayon-p2", 2, 0.55e6),
        ("py-processes-p1", 1, 9.2e6),
        ("py-processes-p2", 2, 5.5e6),
    ):
        samples += _kernel("parallel", impl, 10_000, k * scale, threads=p)
    for impl, k, threads in (("py-threads", 5e6, 2), ("py-asyncio", 4e6, 1), ("rs-tokio", 2e6, 1)):
        samples += _kernel("concurrency", impl, 100, k * scale, threads=threads)
    for impl, wall in (("py-bare", 12e6), ("py-numpy", 90e6), ("rs-hello", 0.6e6)):
        got = make_case(
            "startup", impl, None, wall=wall * scale, lang="rust" if "rs" in impl else "python"
        )
        for s in got:
            s["route"] = ROUTES.get(impl, "rust")
        samples += got
    samples += _service("py-flask", 2000 / scale, busy=True)
    samples += _service("rs-axum", 20000 / scale, threads=2)
    keys = dict.fromkeys((s["task"], s["impl"], s["size"]) for s in samples)
    cases = [case_status(t, i, n) for t, i, n in keys]
    manifest = report_manifest("complete")
    manifest["baselines"] = BASELINES
    return samples, cases, manifest


def frames_of(samples, cases, manifest):
    summary = frames.summarize(samples, cases, n_boot=N_BOOT)
    speed = frames.speedups(samples, summary, manifest["baselines"], n_boot=N_BOOT)
    return summary, speed


@pytest.fixture(scope="module")
def rich() -> tuple[dict, pd.DataFrame, pd.DataFrame, list[dict], list[dict]]:
    samples, cases, manifest = rich_data()
    summary, speed = frames_of(samples, cases, manifest)
    return manifest, summary, speed, cases, samples


def by_task(cs: list[conclusions.Conclusion]) -> dict[str, conclusions.Conclusion]:
    return {c.task: c for c in cs}


# --- the conclusion logic ---------------------------------------------------------------------


def test_crossover_is_interpolated_on_log_log_axes() -> None:
    curves = {
        "python-lib": {
            10: {"metric_median_ns": 10.0, "impl": "a"},
            1000: {"metric_median_ns": 1000.0, "impl": "a"},
        },
        "rust": {
            10: {"metric_median_ns": 100.0, "impl": "b"},
            1000: {"metric_median_ns": 100.0, "impl": "b"},
        },
    }
    (x,) = conclusions.crossovers(curves)
    assert (x.overtaker, x.overtaken) == ("rust", "python-lib")
    assert x.size == pytest.approx(100.0)
    assert x.time_ns == pytest.approx(100.0)
    assert x.between == (10, 1000)
    assert conclusions.round_size(12_345) == "12,000"
    assert conclusions.round_size(3.14159) == "3.1"


def test_no_crossover_when_one_curve_stays_ahead() -> None:
    curves = {
        "a": {
            10: {"metric_median_ns": 1.0, "impl": "a"},
            100: {"metric_median_ns": 2.0, "impl": "a"},
        },
        "b": {
            10: {"metric_median_ns": 5.0, "impl": "b"},
            100: {"metric_median_ns": 9.0, "impl": "b"},
        },
    }
    assert conclusions.crossovers(curves) == []


def test_boundness() -> None:
    assert conclusions.boundness(0.99) == "CPU-bound"
    assert conclusions.boundness(0.3) == "I/O- or wait-bound"
    assert conclusions.boundness(1.8) == "parallel"
    assert conclusions.boundness(None) == ""


def test_best_routes_and_crossover_of_a_size_sweep(rich) -> None:
    manifest, summary, speed, _, _ = rich
    c = by_task(conclusions.conclude(summary, speed, manifest["baselines"]))["sum_squares"]
    assert c.size == 100_000
    assert c.sizes == [1000, 10_000, 100_000]
    assert c.best_rust is not None
    assert c.best_rust.impl == "rs-scalar"
    assert c.best_rust.reference == "py-loop"
    assert c.best_python_lib is not None
    assert c.best_python_lib.impl == "py-numpy"
    assert c.rust_vs_python_lib is not None
    assert c.rust_vs_python_lib.reference == "py-numpy"
    assert c.best_rust.ci_low < c.best_rust.speedup < c.best_rust.ci_high
    # py-rs-pyo3 (0.4 n + 8000) overtakes py-numpy (0.9 n + 2000) at n = 12,000.
    x = next(x for x in c.crossovers if x.overtaker == "rust-from-python")
    assert x.overtaken == "python-lib"
    assert x.between == (10_000, 100_000)
    assert 10_000 < x.size < 20_000
    assert c.bound == "CPU-bound"
    assert set(c.startup_share) == {"py-loop", "rs-scalar", "py-numpy"}
    assert c.verdict.startswith("Rust pays off: rs-scalar is ")
    assert "than py-numpy" in c.verdict


def test_a_task_without_a_python_library_says_so(rich) -> None:
    manifest, summary, speed, _, _ = rich
    cs = by_task(conclusions.conclude(summary, speed, manifest["baselines"]))
    c = cs["concurrency"]
    assert not c.has_python_lib
    assert c.best_python_lib is None
    assert c.rust_vs_python_lib is None
    row = report._conclusion_row(c)
    assert row["python_lib"]["name"] == "no Python-library implementation"
    # py-threads used 2 cores: named wherever it appears.
    assert c.multicore == ["py-threads"]


def test_startup_is_judged_against_plain_python_not_a_slower_library(rich) -> None:
    manifest, summary, speed, _, _ = rich
    c = by_task(conclusions.conclude(summary, speed, manifest["baselines"]))["startup"]
    assert c.best_python_lib is not None
    assert c.best_python_lib.speedup < 1
    assert "than py-bare" in c.verdict


def test_parallel_scaling_and_multicore_marks(rich) -> None:
    manifest, summary, speed, _, _ = rich
    (rayon,) = [s for s in conclusions.scaling(summary) if s.family == "rs-rayon"]
    assert [p for p, *_ in rayon.points] == [1, 2]
    p2 = rayon.points[1]
    assert p2[2] == pytest.approx(1e6 / 0.55e6, rel=0.02)
    assert p2[3] == pytest.approx(p2[2] / 2)
    c = by_task(conclusions.conclude(summary, speed, manifest["baselines"]))["parallel"]
    assert c.best_rust is not None
    assert c.best_rust.impl == "rs-rayon-p2"
    assert c.best_rust.threads == 2
    assert "on 2 cores" in c.verdict
    md = report.render_markdown(manifest, summary, speed, [])
    line = next(x for x in md.splitlines() if x.startswith("| parallel |"))
    assert "(on 2 cores)" in line


def test_servers_throughput_latency_and_busy_load_generator(rich) -> None:
    *_, samples = rich
    srv = {s.impl: s for s in conclusions.servers(samples, n_boot=N_BOOT)}
    flask, axum = srv["py-flask"], srv["rs-axum"]
    assert flask.rps is not None
    assert 1990 < flask.rps < 2030
    assert flask.rps_ci_low is not None
    assert flask.rps_ci_low <= flask.rps
    assert [r.target_rps for r in flask.rates] == [500.0, 1000.0]
    assert set(flask.rates[0].latency_ns) == {"p50", "p99", "p999"}
    assert flask.server_cpu_per_request_ns == pytest.approx(2e9 * 0.9 / (2 * 2000), rel=0.02)
    assert flask.server_maxrss_kb == 30_000
    assert flask.busy_phases
    assert not axum.busy_phases
    assert axum.threads == 2


def test_resolution_from_cis_and_from_an_aa_bundle(rich) -> None:
    _, _, speed, _, _ = rich
    res = conclusions.resolution(speed)
    assert res is not None
    assert res.source == "ci"
    assert res.smallest_difference == pytest.approx(res.noise + res.median_half_width)
    aa = pd.DataFrame(
        [
            {
                "task": "t",
                "size": 1,
                "impl": "x.b",
                "reference": "x.a",
                "reference_kind": "baseline",
                "speedup": 1.03,
                "ci_low": 0.99,
                "ci_high": 1.05,
                "verdict": "no difference",
                "noise": 0.01,
            }
        ]
    )
    res = conclusions.aa_resolution(aa)
    assert res is not None
    assert res.source == "aa"
    assert res.n == 1
    # The CI's half-width (0.04 / 1.03) exceeds the gap of 3 %.
    assert res.smallest_difference == pytest.approx(0.04 / 1.03)


# --- rendering, exports and charts ------------------------------------------------------------


def test_every_chart_is_labelled_and_self_contained(rich) -> None:
    manifest, summary, speed, cases, samples = rich
    html = report.render_html(manifest, summary, speed, cases, report.Extras(samples=samples))
    svgs = re.findall(r"<svg\b[^>]*>", html)
    labels = [re.search(r'aria-label="([^"]*)"', s).group(1) for s in svgs]  # type: ignore[union-attr]
    assert "Chart: start-up against kernel time" in labels
    assert "Chart: sum_squares, size sweep" in labels
    assert "Chart: parallel, parallel speed-up and efficiency against P" in labels
    assert "Chart: serving_api, latency percentiles per request rate" in labels
    assert sum(label.endswith("per implementation") for label in labels) == 5
    assert html.count("<title id=") == len(svgs)
    assert html.count("<desc id=") == len(svgs)
    assert "href" not in html
    assert "<script" not in html
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "ids repeat across charts"
    assert "overtakes" in html  # the crossover is marked and said


def test_chart_text_from_a_bundle_is_escaped_and_never_mathtext() -> None:
    rows = [
        {
            "label": "<b>$x^2$</b>",
            "size": 10,
            "metric_median_ns": 5e3,
            "metric_ci_low_ns": 4e3,
            "metric_ci_high_ns": 6e3,
        },
    ]
    c = charts.medians_chart(
        "<script>",
        "kernel",
        rows,
        fmt_ns=report.format_ns,
        fmt_range=report.format_ns_range,
        fmt_size=report.format_size,
    )
    assert c is not None
    assert "<b>" not in str(c.svg)
    assert "<script>" not in str(c.svg)
    assert "&lt;script&gt;" in str(c.svg)


def test_service_section_warns_about_a_busy_load_generator(rich) -> None:
    manifest, summary, speed, cases, samples = rich
    md = report.render_markdown(manifest, summary, speed, cases, report.Extras(samples=samples))
    assert "## Service: serving_api" in md
    assert "py-flask: the load generator's CPU/wall was above 0.9" in md
    assert "rs-axum (2 cores)" in md
    assert "Geometric mean" not in md


def test_exports_have_a_schema_and_one_row_per_task(rich) -> None:
    manifest, summary, speed, _, samples = rich
    data = json.loads(
        report.render_summary_json(manifest, summary, speed, report.Extras(samples=samples))
    )
    assert data["schema"] == conclusions.SUMMARY_SCHEMA
    assert [c["task"] for c in data["conclusions"]] == list(dict.fromkeys(summary["task"]))
    assert data["resolution"]["source"] == "ci"
    assert {s["impl"] for s in data["service"]} == {"py-flask", "rs-axum"}
    rows = list(
        csv.DictReader(io.StringIO(report.render_conclusions_csv(manifest, summary, speed)))
    )
    assert list(rows[0]) == conclusions.CONCLUSION_COLUMNS
    assert len(rows) == len(data["conclusions"])


# --- bad input: one Error: line, or a report that marks what is missing -------------------------


def _rich_bundle(root: Path, scale: float = 1.0, **manifest: Any) -> Path:
    samples, cases, m = rich_data(scale)
    m = {k: v for k, v in m.items() if k not in ("run_id", "host")}
    return write_bundle(
        root, manifest={**m, **manifest}, samples=samples, cases=cases, host="bench"
    )


def test_report_of_another_bundle_schema_is_one_error_line(tmp_path: Path) -> None:
    b = _rich_bundle(tmp_path, schema=7)
    r = runner.invoke(app, ["report", str(b)])
    assert r.exit_code == 1
    assert error_line(r).startswith("Error: ")
    assert "bundle schema 7" in error_line(r)


def test_report_of_another_sample_schema_is_one_error_line(tmp_path: Path) -> None:
    b = _rich_bundle(tmp_path)
    lines = (b / "samples.jsonl").read_text().splitlines()
    lines[3] = lines[3].replace('"schema": 2', '"schema": 9')
    (b / "samples.jsonl").write_text("\n".join(lines) + "\n")
    for args in (["report", str(b)], ["compare", str(b), str(b)]):
        r = runner.invoke(app, args)
        assert r.exit_code == 1
        assert "sample schema 9" in error_line(r)


def test_a_missing_manifest_is_one_error_line(tmp_path: Path) -> None:
    b = _rich_bundle(tmp_path)
    (b / "manifest.json").unlink()
    for args in (["report", str(b)], ["compare", str(b), str(b)]):
        r = runner.invoke(app, args)
        assert r.exit_code == 1
        assert error_line(r) == (
            f"Error: {b} is not a results bundle (no manifest.json). "
            "Pass a folder like results/<host>/<run-id>."
        )


def test_a_truncated_samples_file_is_marked_in_the_report(tmp_path: Path) -> None:
    b = _rich_bundle(tmp_path)
    text = (b / "samples.jsonl").read_text()
    (b / "samples.jsonl").write_text(text[: len(text) - 40])  # the last line cut
    r = runner.invoke(app, ["report", str(b)])
    assert r.exit_code == 0, r.output
    for name in ("report.html", "report.md", "summary.json"):
        assert "the last line of samples.jsonl is cut off" in (b / name).read_text()


def test_an_incomplete_run_marks_the_cases_it_did_not_measure(tmp_path: Path) -> None:
    _, cases, _ = rich_data()
    planned = [c["case_id"] for c in cases] + ["drift/rs-psi/1000", "drift/py-numpy/1000"]
    b = _rich_bundle(tmp_path, status="incomplete", interrupted=True, cases=planned)
    r = runner.invoke(app, ["report", str(b)])
    assert r.exit_code == 0, r.output
    html = (b / "report.html").read_text()
    md = (b / "report.md").read_text()
    assert "This bundle is incomplete" in html
    assert "2 planned cases not measured" in html
    assert "drift/rs-psi/1000, drift/py-numpy/1000" in md


def test_report_aa_option_needs_an_aa_bundle(tmp_path: Path) -> None:
    b = _rich_bundle(tmp_path / "a")
    other = _rich_bundle(tmp_path / "b")
    r = runner.invoke(app, ["report", str(b), "--aa", str(other)])
    assert r.exit_code == 1
    assert "is not an A/A bundle" in error_line(r)


def test_compare_html_against_a_reference_bundle(tmp_path: Path) -> None:
    ref = _rich_bundle(tmp_path / "ref")
    new = _rich_bundle(tmp_path / "new", scale=1.3)
    m = json.loads((new / "manifest.json").read_text())
    m["images"]["rust"]["versions"]["rustc"] = "1.98.0"
    (new / "manifest.json").write_text(json.dumps(m))
    out = tmp_path / "cmp.html"
    r = runner.invoke(app, ["compare", str(ref), str(new), "--html", str(out)])
    assert r.exit_code == 0, r.output
    html = out.read_text()
    assert "Different toolchains:</strong> rust: rustc (1.97.1 vs 1.98.0)" in html
    assert "Speed-ups compared" in html
    assert html.count('aria-label="Chart: ') >= 4
    assert "href" not in html
    assert "<script" not in html
