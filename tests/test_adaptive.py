"""Adaptive stopping (docs/methodology.md section 3) with a fake executor: logic, not timing."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest

from harness.engine import RunResult
from harness.runner import RunOptions, run_cases, stop_reason
from harness.store import Bundle
from harness.suite import load_suite

SUITE = load_suite()
BASE = SUITE.profiles["quick"]
CASE = next(c for c in SUITE.cases(BASE) if c.impl.name == "rs-scalar")
REF = CASE.expected_checksum()


def fake_executor(spread: float, *, fail: bool = False, seed: int = 1):
    """Runs whose kernel iterations are 1000 ns times (1 +- spread), or a crash."""
    rng = random.Random(seed)

    def execute(image, argv, case):
        lines = []
        for r in range(BASE.runs + 1):
            iters = [round(1000 * (1 + rng.uniform(-spread, spread))) for _ in range(4)]
            k = {"schema": 1, "setup_ns": 1, "iter_ns": iters, "checksum": REF}
            lines.append(
                json.dumps(
                    {
                        "schema": 1,
                        "run": r,
                        "warmup": r == 0,
                        "wall_ns": 5000,
                        "user_ns": 1,
                        "sys_ns": 1,
                        "maxrss_kb": 1,
                        "exit_code": 1 if fail else 0,
                        "signal": None,
                        "timed_out": False,
                        "stdout": json.dumps(k) + "\n",
                        "stderr_tail": "",
                    }
                )
            )
        return RunResult(0, "\n".join(lines), "", False)

    return execute


def run(tmp_path, profile, execute):
    bundle = Bundle.create(tmp_path, "h", "20260101T000000Z-abcd", {"run_id": "x"})
    rows = run_cases(
        bundle,
        SUITE,
        [CASE],
        profile,
        {"rust": "img"},
        execute=execute,
        opts=RunOptions(cpuset="1"),
    )
    return rows[0], bundle


def test_a_stable_case_stops_at_the_minimum(tmp_path):
    prof = dataclasses.replace(BASE, sessions=2, max_sessions=6, target_ci=0.01)
    row, _ = run(tmp_path, prof, fake_executor(0.0))
    assert row["sessions"] == 2
    assert row["stop_reason"].startswith("converged: 95 % CI of the median ±0.00%")


def test_a_noisy_case_gets_more_sessions_up_to_the_cap(tmp_path):
    prof = dataclasses.replace(BASE, sessions=2, max_sessions=5, target_ci=0.001)
    row, bundle = run(tmp_path, prof, fake_executor(0.5))
    assert row["sessions"] == 5
    assert row["stop_reason"].startswith("session cap 5 reached")
    sessions = {s["session"] for s in bundle.samples()}
    assert sessions == {0, 1, 2, 3, 4}


def test_the_time_budget_stops_a_noisy_case(tmp_path):
    prof = dataclasses.replace(BASE, sessions=2, max_sessions=9, target_ci=0.001, budget_s=1e-9)
    row, _ = run(tmp_path, prof, fake_executor(0.5))
    assert row["sessions"] == 2
    assert row["stop_reason"].startswith("time budget")


def test_fixed_profiles_and_failures(tmp_path):
    row, _ = run(tmp_path, dataclasses.replace(BASE, sessions=1), fake_executor(0.5))
    assert row["stop_reason"] == "fixed number of sessions (1)"
    prof = dataclasses.replace(BASE, sessions=2, max_sessions=5)
    row, _ = run(tmp_path / "f", prof, fake_executor(0.0, fail=True))
    assert row["status"] == "failed"
    assert (row["sessions"], row["stop_reason"]) == (2, "failed")


def test_stop_reason_waits_for_the_minimum():
    prof = dataclasses.replace(BASE, sessions=3, max_sessions=5)
    assert stop_reason([], prof, 2, 0.0, []) is None
    assert stop_reason([], prof, 3, 0.0, []) == "no valid samples"


@pytest.mark.parametrize(("field", "value"), [("target_ci", 0.0), ("budget_s", -1.0)])
def test_bad_knobs_are_refused(field, value):
    import tomllib
    from pathlib import Path

    from harness.errors import SuiteError
    from harness.suite import DEFAULT_SUITE, parse_suite

    raw = tomllib.loads(DEFAULT_SUITE.read_text())
    raw["profiles"]["quick"][field] = value
    with pytest.raises(SuiteError, match="target_ci must be in"):
        parse_suite(raw, Path("x.toml"), "0")


def test_each_finished_case_is_announced_with_its_median(tmp_path):
    seen = []
    bundle = Bundle.create(tmp_path, "h", "20260101T000000Z-abcd", {"run_id": "x"})
    prof = dataclasses.replace(BASE, sessions=2, max_sessions=2)
    rows = run_cases(
        bundle,
        SUITE,
        [CASE],
        prof,
        {"rust": "img"},
        execute=fake_executor(0.0),
        opts=RunOptions(cpuset="1"),
        on_case=seen.append,
    )
    assert seen == rows == bundle.cases()
    assert (rows[0]["metric"], rows[0]["median_ns"], rows[0]["warnings"]) == ("kernel", 1000, [])


def test_a_twin_pair_runs_interleaved_and_both_twins_stop(tmp_path):
    from harness.suite import twin_cases

    bundle = Bundle.create(tmp_path, "h", "20260101T000000Z-abcd", {"run_id": "x"})
    prof = dataclasses.replace(BASE, sessions=3, max_sessions=3)
    rows = run_cases(
        bundle,
        SUITE,
        twin_cases([CASE]),
        prof,
        {"rust": "img"},
        execute=fake_executor(0.01),
        opts=RunOptions(cpuset="1", seed=3),
    )
    assert [r["impl"] for r in sorted(rows, key=lambda r: r["impl"])] == [
        "rs-scalar.a",
        "rs-scalar.b",
    ]
    order = [s["impl"] for s in bundle.samples() if s["run"] == 0]
    assert sorted(order) == ["rs-scalar.a"] * 3 + ["rs-scalar.b"] * 3
    assert order != sorted(order)  # interleaved, not all of a then all of b


def test_a_comparison_group_goes_on_together_until_every_member_stops(tmp_path):
    """rs-scalar converges at once, rs-iter is noisy: both get the noisy one's sessions, in the
    same rounds, so their ratio compares sessions run at the same times."""
    other = next(c for c in SUITE.cases(BASE) if c.impl.name == "rs-iter")
    stable, noisy = fake_executor(0.0), fake_executor(0.5)

    def execute(image, argv, case):
        return (stable if case.impl.name == "rs-scalar" else noisy)(image, argv, case)

    bundle = Bundle.create(tmp_path, "h", "20260101T000000Z-abcd", {"run_id": "x"})
    prof = dataclasses.replace(BASE, sessions=2, max_sessions=5, target_ci=0.01)
    rows = run_cases(
        bundle,
        SUITE,
        [CASE, other],
        prof,
        {"rust": "img"},
        execute=execute,
        opts=RunOptions(cpuset="1"),
    )
    by_impl = {r["impl"]: r for r in rows}
    assert by_impl["rs-scalar"]["sessions"] == by_impl["rs-iter"]["sessions"] == 5
    assert by_impl["rs-scalar"]["stop_reason"].startswith("converged")
    assert by_impl["rs-iter"]["stop_reason"].startswith("session cap 5 reached")
    # Every extra round holds a session of both.
    rounds = [s["impl"] for s in bundle.samples() if s["run"] == 0]
    assert sorted(rounds[4:6]) == sorted(rounds[6:8]) == ["rs-iter", "rs-scalar"]
