"""The run loop's logic with a fake executor (the real engine is in test_integration.py)."""

from __future__ import annotations

import itertools
import json

from harness.engine import RunResult
from harness.runner import (
    RunOptions,
    case_status,
    run_cases,
    runner_argv,
    samples_from_output,
    schedule,
)
from harness.store import Bundle
from harness.suite import load_suite

SUITE = load_suite()
QUICK = SUITE.profiles["quick"]


def case(impl: str, task: str = "sum_squares"):
    return next(c for c in SUITE.cases(QUICK) if c.impl.name == impl and c.task.name == task)


def runner_line(run: int, *, warmup=False, exit_code=0, stdout="", timed_out=False, signal=None):
    return json.dumps(
        {
            "schema": 1,
            "run": run,
            "warmup": warmup,
            "wall_ns": 1000 + run,
            "user_ns": 500,
            "sys_ns": 100,
            "maxrss_kb": 2048,
            "exit_code": exit_code,
            "signal": signal,
            "timed_out": timed_out,
            "stdout": stdout,
            "stdout_bytes": len(stdout),
            "stderr_tail": "boom" if exit_code else "",
        }
    )


def kernel(checksum: str) -> str:
    return (
        json.dumps(
            {
                "schema": 1,
                "task": "sum_squares",
                "impl": "rs-scalar",
                "n": 100000,
                "setup_ns": 10,
                "iter_ns": [5, 4, 4],
                "checksum": checksum,
            }
        )
        + "\n"
    )


def test_schedule_interleaves_sessions_within_a_task():
    cases = SUITE.cases(QUICK)
    order = schedule(cases, sessions=3, seed=1)
    assert len(order) == 3 * len(cases)
    assert sorted((c.case_id, s) for c, s in order) == sorted(
        (c.case_id, s) for c in cases for s in range(3)
    )
    tasks = [c.task.name for c, _ in order]
    # Tasks run one after another ...
    assert tasks == sorted(tasks, key=list(dict.fromkeys(tasks)).index)
    # ... but inside a task, implementations alternate instead of A A A B B B.
    impls = [c.impl.name for c, _ in order if c.task.name == "sum_squares"]
    runs_of_same = sum(1 for a, b in itertools.pairwise(impls) if a == b)
    assert runs_of_same < len(impls) - len(set(impls))
    assert schedule(cases, 3, seed=1) == order
    assert schedule(cases, 3, seed=2) != order


def test_runner_argv_wraps_the_program():
    argv = runner_argv(QUICK, 5.0, ["/bin/x", "a b"])
    assert argv[:2] == ["/opt/rpb/bin/runner", "--runs"]
    assert argv[-3:] == ["--", "/bin/x", "a b"]


def test_good_kernel_samples():
    c = case("rs-scalar")
    out = "\n".join(runner_line(i, warmup=i == 0, stdout=kernel("8905216956603")) for i in range(4))
    samples, reason = samples_from_output(c, 0, "rust", "rust", RunResult(0, out, "", False))
    assert reason is None
    assert len(samples) == 4
    assert samples[0]["warmup"]
    assert not samples[1]["warmup"]
    assert all(s["checksum_ok"] for s in samples)
    assert samples[1]["iter_ns"] == [5, 4, 4]
    assert case_status(c, samples, [])["status"] == "ok"


def test_wrong_checksum_makes_the_case_invalid():
    c = case("rs-scalar")
    out = runner_line(0, stdout=kernel("42"))
    samples, reason = samples_from_output(c, 0, "rust", "rust", RunResult(0, out, "", False))
    assert reason is None
    row = case_status(c, samples, [])
    assert row["status"] == "invalid"
    assert "expected '8905216956603'" in row["reason"]


def test_startup_checksum_is_the_exact_greeting():
    c = case("py-bare", task="startup")
    good = runner_line(0, stdout="Hello, world!\n")
    bad = runner_line(1, stdout="Hello, world!\nextra\n")
    samples, _ = samples_from_output(
        c, 0, "python", "python", RunResult(0, f"{good}\n{bad}", "", False)
    )
    assert [s["checksum_ok"] for s in samples] == [True, False]


def test_failures_carry_a_reason_and_stderr():
    c = case("py-loop")
    for line, why in [
        (runner_line(0, exit_code=1), "exit status 1"),
        (runner_line(0, exit_code=None, signal=9, timed_out=True), "timed out"),
        (runner_line(0, exit_code=None, signal=11), "killed by signal 11"),
        ('{"schema":1,"error":"spawn failed: No such file","cmd":"x"}', "spawn failed"),
    ]:
        samples, reason = samples_from_output(
            c, 0, "python", "python", RunResult(0, line, "", False)
        )
        assert reason is not None
        assert why in reason
        row = case_status(c, samples, [reason])
        assert row["status"] == "failed"
    _, reason = samples_from_output(c, 0, "python", "python", RunResult(None, "", "", True))
    assert reason == "the container session timed out"
    _, reason = samples_from_output(c, 0, "python", "python", RunResult(137, "", "Killed", False))
    assert reason is not None
    assert "status 137" in reason


def test_run_cases_saves_after_every_session(tmp_path):
    cases = [case("rs-scalar"), case("rs-iter")]
    bundle = Bundle.create(tmp_path, "h", "20260101T000000Z-abcd", {"run_id": "x"})
    seen = []

    def fake(image, argv, c):
        # Everything before this session is already on disk.
        seen.append(len(bundle.samples()))
        lines = [runner_line(i, warmup=i == 0, stdout=kernel("8905216956603")) for i in range(4)]
        return RunResult(0, "\n".join(lines), "", False)

    prof = SUITE.profiles["default"]
    rows = run_cases(
        bundle, SUITE, cases, prof, {"rust": "img"}, execute=fake, opts=RunOptions(cpuset="1")
    )
    assert seen == [0, 4, 8, 12]
    assert len(bundle.samples()) == 16
    assert {r["case_id"] for r in bundle.cases()} == {c.case_id for c in cases}
    assert all(r["status"] == "ok" for r in rows)
