"""`harness compare`: tables on synthetic bundles with known answers, and the CLI's errors."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from harness import compare, frames
from harness.cli import app
from harness.store import Bundle
from tests.test_cli import error_line
from tests.test_frames import row
from tests.test_report import BASELINES, case_status, make_case
from tests.test_report import manifest as report_manifest

N_BOOT = 400
RUN_IDS = ("20260102T030405Z-a1b2c3", "20260103T040506Z-d4e5f6", "20260104T050607Z-0789ab")
KERNEL_IMPLS = (("py-loop", "python", 6e6), ("py-numpy", "python", 9e5), ("rs-scalar", "rust", 4e5))
runner = CliRunner()


def run_data(
    scale: float = 1.0,
    *,
    python_scale: float | None = None,
    drop: tuple[str, ...] = (),
    failed: tuple[str, ...] = (),
    invalid: tuple[str, ...] = (),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A run of sum_squares (kernel) at size 1000 and startup (wall only), every time times
    `scale` (Python implementations' times by `python_scale` when given). `drop`: impls not
    run; `failed`: impls that failed (no samples); `invalid`: impls with a wrong checksum."""
    samples: list[dict[str, Any]] = []
    cases: list[dict[str, Any]] = []
    for impl, lang, kernel in KERNEL_IMPLS:
        f = python_scale if python_scale is not None and lang == "python" else scale
        if impl in drop:
            continue
        if impl in failed:
            cases.append(case_status("sum_squares", impl, 1000, "failed", "exit status 101"))
            continue
        bad = impl in invalid
        samples += make_case(
            "sum_squares",
            impl,
            1000,
            wall=(25e6 + 4 * kernel) * f,
            kernel=kernel * f,
            lang=lang,
            checksum_ok=not bad,
        )
        reason = "checksum 99 != reference 1234" if bad else None
        cases.append(case_status("sum_squares", impl, 1000, "invalid" if bad else "ok", reason))
    for impl, lang, wall in (("py-bare", "python", 12e6), ("rs-hello", "rust", 6e5)):
        f = python_scale if python_scale is not None and lang == "python" else scale
        if impl not in drop:
            samples += make_case("startup", impl, None, wall=wall * f, lang=lang)
            cases.append(case_status("startup", impl, None))
    return samples, cases


def manifest(**fields: Any) -> dict[str, Any]:
    m = report_manifest("complete")
    m["baselines"] = dict(BASELINES)
    return {**m, **fields}


def sides(*runs: tuple[list[dict[str, Any]], list[dict[str, Any]]], **fields: Any):
    return [
        compare.side(
            f"B{i + 1}",
            f"results/bench-host/{RUN_IDS[i]}",
            manifest(run_id=RUN_IDS[i], **fields),
            s,
            c,
        )
        for i, (s, c) in enumerate(runs)
    ]


def comparison(*runs: Any, noise: float = 0.01) -> compare.Comparison:
    return compare.compare(sides(*runs), noise, n_boot=N_BOOT)


def write_bundle(
    root: Path,
    run_id: str,
    data: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    host: str = "bench-host",
    **fields: Any,
) -> Path:
    m = manifest(**fields)
    del m["run_id"], m["host"]
    b = Bundle.create(root, host, run_id, m)
    samples, cases = data
    b.append_samples(samples)
    for c in cases:
        b.append_case(c)
    return b.path


# --- table 1: medians -------------------------------------------------------------------------


def test_identical_bundles_give_ratio_one_and_same() -> None:
    c = comparison(run_data(), run_data())
    b2 = c.medians[c.medians["bundle"] == "B2"]
    assert len(b2) == 5
    assert (b2["ratio"] == 1.0).all()
    assert (b2["verdict"] == compare.SAME).all()
    assert (b2["ci_low"] <= 1).all()
    assert (b2["ci_high"] >= 1).all()
    assert (c.medians["spread"] == 0).all()
    assert c.warnings == []
    assert c.notes == []


def test_reference_rows_have_no_ratio() -> None:
    b1 = comparison(run_data(), run_data()).medians.query("bundle == 'B1'")
    assert b1["ratio"].isna().all()
    assert b1["verdict"].isna().all()


def test_a_bundle_ten_percent_slower_is_slower_by_1_1() -> None:
    c = comparison(run_data(), run_data(1.10))
    for r in c.medians[c.medians["bundle"] == "B2"].to_dict("records"):
        assert r["ratio"] == pytest.approx(1.10, rel=1e-5), r["case_id"]
        assert r["ci_low"] > 1.01, r["case_id"]
        assert r["verdict"] == compare.SLOWER
        assert r["spread"] == pytest.approx(0.10 / 1.05, rel=1e-5)
    # The other way round: B2 takes 1/1.1 of B1's time, and is faster.
    back = comparison(run_data(1.10), run_data()).medians.query("bundle == 'B2'")
    assert back["ratio"].to_numpy() == pytest.approx(1 / 1.10, rel=1e-5)
    assert (back["verdict"] == compare.FASTER).all()


def test_noise_decides_what_counts_as_the_same() -> None:
    c = comparison(run_data(), run_data(1.10), noise=0.5)
    assert (c.medians.query("bundle == 'B2'")["verdict"] == compare.SAME).all()


def test_spread_of_three_runs_is_known_exactly() -> None:
    c = comparison(run_data(), run_data(1.05), run_data(1.10))
    spreads = c.medians.drop_duplicates("case_id")["spread"]
    # (1.10 m - m) / median(m, 1.05 m, 1.10 m)
    assert spreads.to_numpy() == pytest.approx(0.10 / 1.05, rel=1e-5)
    b3 = row(c.medians, "rs-scalar", bundle="B3")
    assert b3["ratio"] == pytest.approx(1.10, rel=1e-5)


def test_medians_and_cv_are_those_of_the_bundles_summary() -> None:
    data = run_data()
    c = comparison(data, run_data(2.0))
    summary = frames.summarize(*data).set_index("impl")
    kernel = row(c.medians, "rs-scalar", bundle="B1")
    assert kernel["metric"] == "kernel"
    assert kernel["median_ns"] == summary.loc["rs-scalar", "kernel_median_ns"]
    assert kernel["cv"] == summary.loc["rs-scalar", "kernel_cv"]
    wall = row(c.medians, "rs-hello", bundle="B1")
    assert wall["metric"] == "wall"
    assert wall["median_ns"] == summary.loc["rs-hello", "wall_median_ns"]
    assert row(c.medians, "rs-hello", bundle="B2")["ratio"] == pytest.approx(2.0, rel=1e-5)


def test_a_case_missing_from_a_bundle_is_listed_not_dropped() -> None:
    c = comparison(run_data(), run_data(drop=("rs-scalar",)))
    b2 = row(c.medians, "rs-scalar", bundle="B2")
    assert b2["status"] == "missing"
    assert math.isnan(b2["median_ns"])
    assert math.isnan(b2["ratio"])
    assert pd.isna(b2["verdict"])
    assert math.isnan(b2["spread"])
    assert row(c.medians, "rs-scalar", bundle="B1")["status"] == "ok"
    assert c.notes == ["sum_squares/rs-scalar/1000: missing from B2; left out of the ratios there"]
    # A case only the second bundle has is listed too.
    c = comparison(run_data(drop=("py-numpy",)), run_data())
    assert row(c.medians, "py-numpy", bundle="B1")["status"] == "missing"
    assert row(c.medians, "py-numpy", bundle="B2")["status"] == "ok"


def test_failed_and_invalid_cases_enter_no_ratio_and_get_a_note() -> None:
    c = comparison(run_data(), run_data(failed=("rs-scalar",)), run_data(invalid=("py-numpy",)))
    failed = row(c.medians, "rs-scalar", bundle="B2")
    assert (failed["status"], failed["reason"]) == ("failed", "exit status 101")
    assert math.isnan(failed["median_ns"])
    assert math.isnan(failed["ratio"])
    invalid = row(c.medians, "py-numpy", bundle="B3")
    assert invalid["status"] == "invalid"
    assert math.isnan(invalid["median_ns"])
    # The third bundle's rs-scalar still compares with B1.
    assert row(c.medians, "rs-scalar", bundle="B3")["verdict"] == compare.SAME
    assert c.notes == [
        "sum_squares/py-numpy/1000: invalid (checksum 99 != reference 1234) in B3; "
        "left out of the ratios there",
        "sum_squares/rs-scalar/1000: failed (exit status 101) in B2; left out of the ratios there",
    ]


def test_a_failed_reference_leaves_no_ratio() -> None:
    c = comparison(run_data(failed=("rs-scalar",)), run_data())
    b2 = row(c.medians, "rs-scalar", bundle="B2")
    assert b2["status"] == "ok"
    assert not math.isnan(b2["median_ns"])
    assert math.isnan(b2["ratio"])
    assert pd.isna(b2["verdict"])


# --- table 2: speed-ups -----------------------------------------------------------------------


def test_speedups_are_those_of_each_bundle_side_by_side() -> None:
    data = run_data()
    c = comparison(data, run_data(1.5))
    summary = frames.summarize(*data)
    own = frames.speedups(data[0], summary, BASELINES, n_boot=N_BOOT)
    b1 = c.speedups[c.speedups["bundle"] == "B1"]
    assert len(b1) == len(own)
    for r in own.to_dict("records"):
        mine = row(b1, r["impl"], bundle="B1", reference_kind=r["reference_kind"], task=r["task"])
        assert mine["speedup"] == r["speedup"]
        assert (mine["ci_low"], mine["ci_high"]) == (r["ci_low"], r["ci_high"])
        assert mine["reference"] == r["reference"]
    # Everything 1.5 times slower: the same speed-ups.
    rs = row(c.speedups, "rs-scalar", bundle="B2", reference_kind="baseline")
    same = row(b1, "rs-scalar", bundle="B1", reference_kind="baseline")
    assert rs["speedup"] == pytest.approx(same["speedup"], rel=1e-5)
    assert rs["spread"] == pytest.approx(0, abs=1e-9)


def test_cross_host_speedups_differ_where_python_gains_more() -> None:
    # Host B runs the Python side twice as fast, Rust alike: Rust's speed-up over the
    # Python baseline halves there.
    c = comparison(run_data(), run_data(python_scale=0.5))
    a = row(c.speedups, "rs-scalar", bundle="B1", reference_kind="baseline")
    b = row(c.speedups, "rs-scalar", bundle="B2", reference_kind="baseline")
    assert b["speedup"] == pytest.approx(a["speedup"] / 2, rel=1e-5)
    assert b["spread"] == pytest.approx((a["speedup"] - b["speedup"]) / (0.75 * a["speedup"]))


def test_a_speedup_a_bundle_lacks_is_missing() -> None:
    c = comparison(run_data(), run_data(failed=("rs-scalar",)))
    lacks = row(c.speedups, "rs-scalar", bundle="B2", reference_kind="baseline")
    assert lacks["status"] == "missing"
    assert math.isnan(lacks["speedup"])
    assert math.isnan(lacks["spread"])


# --- labels and warnings ----------------------------------------------------------------------


def test_labels_and_settings_default_to_docker_and_pinned() -> None:
    s = sides(run_data(), run_data())
    assert s[0].label == "bench-host 20260102T0304-a1b2"
    assert s[0].settings == "docker, pinned, cpuset 2-3, profile quick"
    local = compare.side("B2", "x", manifest(executor="local", pinned=False, aa=True), *run_data())
    assert local.settings == "local, unpinned, cpuset 2-3, A/A, profile quick"
    table = compare.bundles_table([s[0], local])
    assert list(table["executor"]) == ["docker", "local"]
    assert list(table["pinned"]) == [True, False]
    assert compare.short_run_id("not-a-run-id") == "not-a-run-id"


def test_differences_in_images_suite_and_profile_warn_once_each() -> None:
    base = manifest()
    other = manifest(
        images={**base["images"], "rust": {"id": "sha256:9999", "tag": "rpb-rust:new"}},
        suite={**base["suite"], "sha256": "cd" * 32},
        profile={**base["profile"], "name": "default", "sessions": 3},
    )
    data = run_data()
    a = compare.side("B1", "a", base, *data)
    b = compare.side("B2", "b", other, *data)
    assert compare.differences([a, b]) == [
        "B2 ran other images than B1 (rust sha256:9999 vs sha256:2222): absolute times are "
        "not comparable (the speed-ups still are)",
        f"B2 ran another suite definition than B1 (sha256 {'cd' * 6} vs {'ab' * 6}): absolute "
        "times are not comparable (the speed-ups still are)",
        "B2 ran another profile than B1 (name default vs quick, sessions 3 vs 2): absolute "
        "times are not comparable (the speed-ups still are)",
    ]
    assert compare.differences([a, compare.side("B2", "c", manifest(), *data)]) == []
    aa = compare.side("B2", "d", manifest(aa=True), *data)
    assert compare.differences([a, aa]) == [
        "B2 is an A/A run and B1 is not: A/A runs name their implementations as twins "
        "(IMPL.a, IMPL.b), so their cases do not match"
    ]


def test_other_hosts_get_a_note() -> None:
    a = compare.side("B1", "a", manifest(), *run_data())
    b = compare.side("B2", "b", manifest(host="other-host"), *run_data())
    c = compare.compare([a, b], n_boot=N_BOOT)
    assert any("2 hosts (bench-host, other-host)" in n for n in c.notes)


# --- rendering --------------------------------------------------------------------------------


def rendered(c: compare.Comparison, width: int = 120) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None)
    for r in compare.terminal(c):
        console.print(r)
    return buf.getvalue()


def test_terminal_tables_fit_120_columns_and_show_every_case() -> None:
    c = comparison(run_data(), run_data(1.10), run_data(failed=("rs-scalar",)))
    text = rendered(c)
    assert max(len(line) for line in text.splitlines()) <= 120
    for case in ("sum_squares/rs-scalar/1000", "startup/rs-hello/-", "failed: exit status 101"):
        assert case in text
    assert "1.10× [" in text
    assert "slower" in text


def test_names_from_a_bundle_cannot_drive_the_terminal_or_the_markdown() -> None:
    samples, cases = run_data()
    hostile = "[bold]x\x1b[31m|<script>"
    for r in (*samples, *cases):
        if r["impl"] == "rs-hello":
            r["impl"] = hostile
    c = comparison((samples, cases), (samples, cases))
    text = rendered(c)
    assert "\x1b" not in text
    assert "[bold]x" in text
    md = compare.render_markdown(c)
    assert "<script>" not in md
    assert "\x1b" not in md


def test_markdown_and_csv_hold_both_tables() -> None:
    c = comparison(run_data(), run_data(1.10))
    md = compare.render_markdown(c)
    assert "## Medians" in md
    assert "## Speed-ups" in md
    assert "| sum_squares/rs-scalar/1000 | kernel |" in md
    assert "1.10× [" in md
    back = pd.read_csv(io.StringIO(compare.render_csv(c.medians)))
    assert list(back.columns) == compare.MEDIAN_COLUMNS
    assert len(back) == 2 * 5


# --- the command ------------------------------------------------------------------------------


def invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def test_compare_prints_tables_and_writes_csv_and_markdown(tmp_path: Path) -> None:
    a = write_bundle(tmp_path / "results", RUN_IDS[0], run_data())
    b = write_bundle(tmp_path / "results", RUN_IDS[1], run_data(1.10), pinned=False)
    out = tmp_path / "out"
    out.mkdir()
    r = invoke("compare", a, b, "--csv", out / "cmp.csv", "--markdown", out / "cmp.md")
    assert r.exit_code == 0, r.output
    assert "Medians" in r.stdout
    assert "Speed-ups" in r.stdout
    assert "docker, unpinned" in r.stdout
    assert "B2: bench-host 20260103T0405-d4e5 (docker, unpinned" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "cmp-medians.csv",
        "cmp-speedups.csv",
        "cmp.md",
    ]
    medians = pd.read_csv(out / "cmp-medians.csv")
    assert medians.query("bundle == 'B2'")["verdict"].eq("slower").all()


def test_compare_warns_about_other_images(tmp_path: Path) -> None:
    a = write_bundle(tmp_path, RUN_IDS[0], run_data())
    b = write_bundle(tmp_path, RUN_IDS[1], run_data(), images={"python": {"id": "sha256:77"}})
    r = invoke("compare", a, b)
    assert r.exit_code == 0, r.output
    assert "warning: B2 ran other images than B1" in r.stderr


def test_compare_has_help() -> None:
    r = invoke("compare", "--help")
    assert r.exit_code == 0
    assert "Compare two or more results bundles" in r.output


@pytest.mark.parametrize("n", [0, 1])
def test_fewer_than_two_bundles_is_an_error(tmp_path: Path, n: int) -> None:
    paths = [write_bundle(tmp_path, RUN_IDS[0], run_data())][:n]
    r = invoke("compare", *paths)
    assert r.exit_code == 1
    assert error_line(r).startswith(f"Error: compare needs at least two bundles, got {n}.")


def test_a_folder_that_is_not_a_bundle_is_an_error(tmp_path: Path) -> None:
    a = write_bundle(tmp_path, RUN_IDS[0], run_data())
    r = invoke("compare", a, tmp_path)
    assert r.exit_code == 1
    assert error_line(r) == (
        f"Error: {tmp_path} is not a results bundle (no manifest.json). "
        "Pass a folder like results/<host>/<run-id>."
    )


def test_a_bundle_without_samples_is_an_error(tmp_path: Path) -> None:
    a = write_bundle(tmp_path, RUN_IDS[0], run_data())
    empty = write_bundle(tmp_path, RUN_IDS[1], ([], []))
    r = invoke("compare", a, empty)
    assert r.exit_code == 1
    assert error_line(r) == (
        f"Error: {empty} has no samples yet. Run `harness run` (or resume it) first, or leave "
        "the bundle out of the comparison."
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--noise", "1.5"], "Error: --noise 1.5 is not a fraction. Give e.g. 0.01 for 1 %."),
        (["--noise", "-0.1"], "Error: --noise -0.1 is not a fraction. Give e.g. 0.01 for 1 %."),
        (["--csv", "/nonexistent/dir/x"], "Error: --csv /nonexistent/dir/x: the folder"),
        (["--markdown", "/nonexistent/dir/x.md"], "Error: --markdown /nonexistent/dir/x.md:"),
    ],
)
def test_bad_options_are_one_error_line(tmp_path: Path, args: list[str], message: str) -> None:
    a = write_bundle(tmp_path, RUN_IDS[0], run_data())
    b = write_bundle(tmp_path, RUN_IDS[1], run_data())
    r = invoke("compare", a, b, *args)
    assert r.exit_code == 1
    assert error_line(r).startswith(message)
