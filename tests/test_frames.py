"""Summaries and ratios of samples whose answers are known in advance."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness import frames, stats
from harness.errors import BundleError
from harness.kinds import metric_of


def sample(
    task: str = "sum_squares",
    impl: str = "py-loop",
    size: int | None = 1000,
    *,
    session: int = 0,
    run: int = 0,
    warmup: bool = False,
    wall_ns: int | None = 1_000_000,
    iter_ns: list[int] | None = None,
    lang: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One schema-1 sample dict as the runner writes it."""
    s: dict[str, Any] = {
        "schema": 1,
        "case_id": f"{task}/{impl}/{'-' if size is None else size}",
        "task": task,
        "impl": impl,
        "lang": lang or ("rust" if impl.startswith("rs-") else "python"),
        "image": "rust" if impl.startswith("rs-") else "python",
        "size": size,
        "session": session,
        "run": run,
        "warmup": warmup,
        "wall_ns": wall_ns,
        "user_ns": None if wall_ns is None else wall_ns // 2,
        "sys_ns": None if wall_ns is None else wall_ns // 4,
        "maxrss_kb": 10_000,
        "exit_code": 0,
        "signal": None,
        "timed_out": False,
        "setup_ns": 500,
        "iter_ns": list(iter_ns) if iter_ns is not None else [],
        "checksum": "42",
        "checksum_ok": True,
    }
    s.update(extra)
    return s


def case_samples(
    impl: str,
    *,
    wall: float,
    kernel: float | None = None,
    task: str = "sum_squares",
    size: int | None = 1000,
    sessions: int = 2,
    runs: int = 4,
    iters: int = 4,
    jitter: float = 0.0,
    lang: str | None = None,
) -> list[dict[str, Any]]:
    """A case: `sessions` x (1 warm-up + `runs`) runs, each with `iters` iterations (the first a
    warm-up iteration), with deterministic relative jitter.
    """
    out = []
    k = 0
    for s in range(sessions):
        for r in range(runs + 1):
            k += 1
            f = 1 + jitter * (((k * 7) % 5) - 2) / 2
            it = [] if kernel is None else [round(kernel * f)] * iters
            out.append(
                sample(
                    task,
                    impl,
                    size,
                    session=s,
                    run=r,
                    warmup=r == 0,
                    wall_ns=round(wall * f),
                    iter_ns=it,
                    lang=lang,
                )
            )
    return out


def row(frame: pd.DataFrame, impl: str, **eq: Any) -> dict[str, Any]:
    sel = frame[frame["impl"] == impl]
    for k, v in eq.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, sel
    return {str(k): v for k, v in sel.iloc[0].to_dict().items()}


def test_unknown_sample_schema_is_refused() -> None:
    with pytest.raises(BundleError, match="schema 99"):
        frames.summarize([sample(schema=99)], [])


# --- summarize --------------------------------------------------------------------------------


def test_summarize_excludes_warmup_runs_and_iterations() -> None:
    samples = [
        sample(run=0, warmup=True, wall_ns=999_999_999, iter_ns=[10**9, 10**9]),
        sample(run=1, wall_ns=1000, iter_ns=[10**6, 100, 100]),
        sample(run=2, wall_ns=1000, iter_ns=[10**6, 100, 100]),
        sample(session=1, run=0, warmup=True, wall_ns=888_888_888, iter_ns=[10**9]),
        sample(session=1, run=1, wall_ns=1000, iter_ns=[10**6, 100, 100]),
    ]
    r = row(frames.summarize(samples, []), "py-loop")
    assert r["n_runs"] == 3
    assert r["n_warmup_runs"] == 2
    assert r["n_sessions"] == 2
    assert r["n_iters"] == 6
    assert (r["wall_median_ns"], r["wall_ci_low_ns"], r["wall_ci_high_ns"]) == (1000, 1000, 1000)
    assert (r["kernel_median_ns"], r["kernel_ci_low_ns"], r["kernel_ci_high_ns"]) == (100,) * 3
    assert r["wall_min_ns"] == 1000
    assert r["wall_mad_ns"] == 0


def test_summarize_known_process_figures() -> None:
    samples = [sample(run=i, wall_ns=1000, iter_ns=[100, 200, 300]) for i in range(3)]
    r = row(frames.summarize(samples, []), "py-loop")
    assert r["startup_share"] == pytest.approx(0.4)  # (1000 - 600) / 1000
    assert r["cpu_median_ns"] == 750
    assert r["cpu_over_wall"] == pytest.approx(0.75)
    assert r["maxrss_median_kb"] == 10_000
    assert r["setup_median_ns"] == 500
    assert r["kernel_median_ns"] == 250  # iterations 200, 300 of each run
    assert bool(r["checksum_ok"]) is True
    assert r["status"] == "ok"


def test_summarize_without_iterations_has_no_kernel_figures() -> None:
    samples = case_samples("py-bare", task="startup", size=None, wall=20e6)
    r = row(frames.summarize(samples, []), "py-bare")
    assert math.isnan(r["kernel_median_ns"])
    assert math.isnan(r["startup_share"])
    assert r["n_iters"] == 0
    assert r["wall_median_ns"] == 20e6
    assert pd.isna(r["size"])


def test_summarize_counts_outliers_and_skips_failed_runs() -> None:
    walls = [100, 101, 99, 100, 102, 5000]
    samples = [sample(run=i, wall_ns=w) for i, w in enumerate(walls)]
    samples.append(sample(run=6, wall_ns=1, exit_code=1))
    samples.append(sample(run=7, wall_ns=1, timed_out=True))
    r = row(frames.summarize(samples, []), "py-loop")
    assert r["n_outliers"] == 1
    assert r["n_runs"] == 6
    assert r["n_failed_runs"] == 2
    assert r["wall_median_ns"] == 100.5
    assert r["wall_min_ns"] == 99


def test_a_run_without_timings_is_kept_raw_but_not_summarised() -> None:
    samples = [sample(run=0, wall_ns=1000), sample(run=1, wall_ns=None, exit_code=None)]
    assert [frames.run_ok(s) for s in samples] == [True, False]
    r = row(frames.summarize(samples, []), "py-loop")
    assert (r["n_runs"], r["n_failed_runs"], r["wall_median_ns"]) == (1, 1, 1000)


def test_summarize_lists_failed_cases_from_the_case_statuses() -> None:
    samples = case_samples("py-loop", wall=1000)
    cases = [
        {
            "case_id": "sum_squares/rs-rayon/1000",
            "task": "sum_squares",
            "impl": "rs-rayon",
            "size": 1000,
            "status": "failed",
            "reason": "exit status 101",
            "stderr_tail": "thread 'main' panicked",
        }
    ]
    summary = frames.summarize(samples, cases)
    assert list(summary.columns) == frames.SUMMARY_COLUMNS
    failed = row(summary, "rs-rayon")
    assert failed["status"] == "failed"
    assert failed["reason"] == "exit status 101"
    assert failed["n_runs"] == 0
    assert math.isnan(failed["wall_median_ns"])


def test_summarize_marks_a_checksum_mismatch_invalid() -> None:
    samples = [sample(run=i, checksum_ok=i != 1) for i in range(3)]
    r = row(frames.summarize(samples, []), "py-loop")
    assert r["status"] == "invalid"
    assert bool(r["checksum_ok"]) is False


def test_summary_of_a_case_does_not_depend_on_other_cases() -> None:
    a = case_samples("py-loop", wall=1000, kernel=100, jitter=0.05)
    b = case_samples("rs-scalar", wall=500, kernel=10, jitter=0.05)
    alone = row(frames.summarize(a, []), "py-loop")
    together = row(frames.summarize(b + a, []), "py-loop")
    assert alone["wall_ci_low_ns"] == together["wall_ci_low_ns"]
    assert alone["kernel_ci_high_ns"] == together["kernel_ci_high_ns"]


def test_summarize_orders_sizes_ascending_within_a_task() -> None:
    samples = (
        case_samples("py-loop", wall=2000, size=10_000)
        + case_samples("py-loop", wall=1000, size=100)
        + case_samples("py-bare", wall=1000, task="startup", size=None)
    )
    summary = frames.summarize(samples, [])
    assert summary["task"].tolist() == ["sum_squares", "sum_squares", "startup"]
    assert summary["size"].tolist()[:2] == [100, 10_000]


# --- speed-ups --------------------------------------------------------------------------------


BASELINES = {"sum_squares": "py-loop", "startup": "py-bare"}


def run_speedups(samples: list[dict[str, Any]], cases: list[dict[str, Any]] | None = None):
    summary = frames.summarize(samples, cases or [])
    return frames.speedups(samples, summary, BASELINES, n_boot=500)


def test_speedup_of_constant_samples_is_exactly_two() -> None:
    samples = case_samples("py-loop", wall=4000, kernel=2000) + case_samples(
        "rs-scalar", wall=3000, kernel=1000
    )
    sp = run_speedups(samples)
    assert list(sp.columns) == frames.SPEEDUP_COLUMNS
    r = row(sp, "rs-scalar", reference_kind="baseline")
    assert r["metric"] == "kernel"
    assert (r["speedup"], r["ci_low"], r["ci_high"]) == (2.0, 2.0, 2.0)
    assert r["verdict"] == "faster"
    assert r["reference"] == "py-loop"


def test_speedup_falls_back_to_wall_time_without_iterations() -> None:
    samples = case_samples("py-bare", task="startup", size=None, wall=20e6) + case_samples(
        "rs-hello", task="startup", size=None, wall=1e6
    )
    r = row(run_speedups(samples), "rs-hello", reference_kind="baseline")
    assert r["metric"] == "wall"
    assert r["speedup"] == 20.0
    assert r["verdict"] == "faster"


def test_a_slower_implementation_is_called_slower() -> None:
    samples = case_samples("py-loop", wall=1000, kernel=100) + case_samples(
        "py-slow", wall=1000, kernel=400
    )
    r = row(run_speedups(samples), "py-slow", reference_kind="baseline")
    assert r["speedup"] == 0.25
    assert r["verdict"] == "slower"


def test_an_aa_pair_gives_no_difference() -> None:
    same = case_samples("py-loop", wall=1000, kernel=100, jitter=0.05)
    twin = [{**s, "impl": "py-loop-copy", "case_id": "sum_squares/py-loop-copy/1000"} for s in same]
    r = row(run_speedups(same + twin), "py-loop-copy", reference_kind="baseline")
    assert r["speedup"] == 1.0
    assert r["ci_low"] < 1.0 < r["ci_high"]
    assert r["verdict"] == "no difference"


def test_an_aa_pair_of_independent_noisy_draws_gives_no_difference() -> None:
    rng = np.random.default_rng(11)

    def noisy(impl: str) -> list[dict[str, Any]]:
        return [
            sample(
                impl=impl,
                session=s,
                run=r,
                warmup=r == 0,
                iter_ns=[int(x) for x in rng.normal(10_000, 300, size=5)],
            )
            for s in range(3)
            for r in range(6)
        ]

    # No baseline here: the faster of the two is "best Python" and the other is compared to it.
    sp = run_speedups(noisy("py-a") + noisy("py-b"))
    assert len(sp) == 1
    assert sp["verdict"].tolist() == ["no difference"]


def test_best_python_is_the_fastest_python_library_not_rust_from_python() -> None:
    samples = (
        case_samples("py-loop", wall=1000, kernel=1000)
        + case_samples("py-numpy", wall=1000, kernel=20)
        + case_samples("py-pandas", wall=1000, kernel=50)
        + case_samples("py-rs-pyo3", wall=1000, kernel=5)
        + case_samples("rs-scalar", wall=1000, kernel=10)
    )
    sp = run_speedups(samples)
    best = sp[sp["reference_kind"] == "best_python"]
    assert set(best["reference"]) == {"py-numpy"}
    assert "py-numpy" not in set(best["impl"])  # never compared with itself
    assert row(sp, "rs-scalar", reference_kind="best_python")["speedup"] == 2.0
    assert row(sp, "py-numpy", reference_kind="baseline")["speedup"] == 50.0
    assert "py-loop" not in set(sp[sp["reference_kind"] == "baseline"]["impl"])


def test_failed_and_invalid_cases_never_enter_a_ratio() -> None:
    samples = (
        case_samples("py-loop", wall=1000, kernel=1000)
        + case_samples("py-numpy", wall=1000, kernel=20)
        + case_samples("rs-scalar", wall=1000, kernel=10)
        + case_samples("rs-wrong", wall=1000, kernel=1)
        + case_samples("py-broken", wall=1000, kernel=2)
    )
    for s in samples:
        if s["impl"] == "rs-wrong":
            s["checksum_ok"] = False
    cases = [
        {"task": "sum_squares", "impl": i, "size": 1000, "status": st, "reason": "r"}
        for i, st in [
            ("py-loop", "ok"),
            ("py-numpy", "ok"),
            ("rs-scalar", "failed"),
            ("rs-wrong", "ok"),  # the runner said ok, but a checksum disagrees
            ("py-broken", "invalid"),
        ]
    ]
    sp = run_speedups(samples, cases)
    for bad in ("rs-scalar", "rs-wrong", "py-broken"):
        assert bad not in set(sp["impl"])
        assert bad not in set(sp["reference"])
    assert set(sp["impl"]) == {"py-loop", "py-numpy"}


def test_a_failed_baseline_leaves_only_best_python_ratios() -> None:
    samples = case_samples("py-numpy", wall=1000, kernel=20) + case_samples(
        "rs-scalar", wall=1000, kernel=10
    )
    sp = run_speedups(samples)
    assert set(sp["reference_kind"]) == {"best_python"}


def test_ratios_compare_the_same_size_only() -> None:
    samples = (
        case_samples("py-loop", wall=1000, kernel=100, size=10)
        + case_samples("rs-scalar", wall=1000, kernel=50, size=10)
        + case_samples("py-loop", wall=1000, kernel=1000, size=100)
        + case_samples("rs-scalar", wall=1000, kernel=100, size=100)
    )
    sp = run_speedups(samples)
    assert row(sp, "rs-scalar", size=10)["speedup"] == 2.0
    assert row(sp, "rs-scalar", size=100)["speedup"] == 10.0


def test_geomean_speedups_across_tasks() -> None:
    sp = pd.DataFrame(
        [
            {"task": "a", "size": 1, "impl": "rs-x", "lang": "rust", "reference_kind": "baseline",
             "speedup": 2.0},
            {"task": "b", "size": 1, "impl": "rs-x", "lang": "rust", "reference_kind": "baseline",
             "speedup": 8.0},
            # Two sizes of one task count as one task: geomean(4, 16) = 8, then with 2: 4.
            {"task": "a", "size": 1, "impl": "rs-y", "lang": "rust", "reference_kind": "baseline",
             "speedup": 2.0},
            {"task": "b", "size": 1, "impl": "rs-y", "lang": "rust", "reference_kind": "baseline",
             "speedup": 4.0},
            {"task": "b", "size": 2, "impl": "rs-y", "lang": "rust", "reference_kind": "baseline",
             "speedup": 16.0},
        ]
    )  # fmt: skip
    g = frames.geomean_speedups(sp)
    assert list(g.columns) == frames.GEOMEAN_COLUMNS
    x = row(g, "rs-x")
    assert x["geomean"] == pytest.approx(4.0)
    assert (x["n_tasks"], x["n_ratios"]) == (2, 2)
    y = row(g, "rs-y")
    assert y["geomean"] == pytest.approx(4.0)
    assert (y["n_tasks"], y["n_ratios"]) == (2, 3)


def test_aa_pairs_count_false_flags_and_cis_that_hold_one() -> None:
    frame = pd.DataFrame.from_records(
        [
            # (impl, reference, kind, ci_low, ci_high, verdict)
            ("x.b", "x.a", "baseline", 0.99, 1.01, stats.NO_DIFFERENCE),
            ("y.b", "y.a", "baseline", 1.02, 1.05, stats.FASTER),
            ("z.b", "z.a", "baseline", 1.002, 1.008, stats.NO_DIFFERENCE),
            ("x.a", "x.b", "best_python", 0.99, 1.01, stats.NO_DIFFERENCE),
        ],
        columns=["impl", "reference", "reference_kind", "ci_low", "ci_high", "verdict"],
    )
    pairs = frames.aa_pairs(frame)
    assert pairs["impl"].tolist() == ["x.b", "y.b", "z.b"]
    assert pairs["contains_1"].tolist() == [True, False, False]
    assert pairs["flagged"].tolist() == [False, True, False]


def test_case_warnings_name_severe_outliers_and_stay_quiet_on_clean_data() -> None:
    clean = case_samples("py-loop", wall=1000, kernel=100, jitter=0.01)
    assert frames.case_warnings(clean) == []
    noisy = [dict(s) for s in clean]
    measured = [s for s in noisy if not s["warmup"]]
    measured[0]["wall_ns"] *= 2  # 100 % off where the spread is 1 %: severe
    measured[1]["iter_ns"] = [v * 3 for v in measured[1]["iter_ns"]]
    [warning] = frames.case_warnings(noisy)
    assert warning.startswith("statistical outliers (over 10 MADs and 5 % from the median; kept): ")
    assert f"1 of {len(measured)} process runs' wall times, 3 of " in warning
    # A wall-time case is checked once, on its wall times.
    startup = case_samples("py-bare", task="startup", size=None, wall=1000, jitter=0.01)
    startup[1]["wall_ns"] *= 2
    [warning] = frames.case_warnings(startup)
    assert "1 of 8 process runs' wall times." in warning
    # 10 MADs but only 3 % off: the jitter of a microsecond kernel, not worth a warning.
    startup[1]["wall_ns"] = startup[2]["wall_ns"] * 1.03
    assert frames.case_warnings(startup) == []


def test_case_metric_is_kernel_only_when_iterations_are_reported() -> None:
    assert metric_of(case_samples("py-loop", wall=1000, kernel=100)) == "kernel"
    assert metric_of(case_samples("py-bare", wall=1000, kernel=None)) == "wall"


def test_an_aa_bundle_compares_twins_only_with_each_other() -> None:
    samples = case_samples("py-numpy.a", task="t.py-numpy", wall=1000, kernel=100) + case_samples(
        "py-numpy.b", task="t.py-numpy", wall=1000, kernel=100
    )
    summary = frames.summarize(samples, [])
    both = frames.speedups(samples, summary, {"t.py-numpy": "py-numpy.a"}, n_boot=200)
    assert sorted(both["reference_kind"]) == ["baseline", "best_python"]
    twins = frames.speedups(
        samples, summary, {"t.py-numpy": "py-numpy.a"}, n_boot=200, against_best_python=False
    )
    assert twins["reference_kind"].tolist() == ["baseline"]
    assert frames.aa_pairs(twins)["flagged"].tolist() == [False]
