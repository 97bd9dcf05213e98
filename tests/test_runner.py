"""The run loop's logic with a fake executor (the real engine is in test_integration.py)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.engine import RunResult
from harness.locks import LOCK_DIR_ENV, CoreLocks, CoresBusy, Holder, lock_dir
from harness.runner import (
    RunInterrupted,
    RunOptions,
    case_status,
    interrupt_handler,
    prepare_resume,
    run_cases,
    runner_argv,
    samples_from_output,
    schedule,
    signals_held,
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


# ----- failures and their reasons --------------------------------------------------------------
def test_signals_and_killed_containers_are_named():
    c = case("py-bare", task="startup")
    for line, result, why in [
        (runner_line(0, exit_code=None, signal=6), {}, "killed by signal 6 (SIGABRT)"),
        (
            runner_line(0, exit_code=None, signal=9),
            {"oom_killed": True},
            "killed by signal 9 (SIGKILL): out of memory, the container hit its memory limit",
        ),
        (
            runner_line(0, exit_code=None, signal=9),
            {},
            "killed by signal 9 (SIGKILL), not by the runner's timeout: the memory limit or a "
            "kill from outside",
        ),
        (runner_line(0, exit_code=3), {}, "exit status 3"),
    ]:
        _, reason = samples_from_output(
            c, 0, "python", "python", RunResult(0, line, "", False, **result)
        )
        assert reason == why
    # No word from the engine, but the peak RSS (2048 KiB here) reached the limit.
    _, reason = samples_from_output(
        c,
        0,
        "python",
        "python",
        RunResult(0, runner_line(0, exit_code=None, signal=9), "", False),
        memory="2100k",
    )
    assert reason == (
        "killed by signal 9 (SIGKILL): out of memory, its peak RSS 2 MiB reached the "
        "container's 2100k memory limit"
    )
    _, reason = samples_from_output(
        c,
        0,
        "python",
        "python",
        RunResult(0, runner_line(0, exit_code=None, signal=9), "", False),
        memory="4g",
    )
    assert reason is not None
    assert "out of memory" not in reason
    # The runner itself (PID 1) killed from outside after one of its runs.
    out = runner_line(0, stdout="Hello, world!\n")
    samples, reason = samples_from_output(c, 0, "python", "python", RunResult(137, out, "", False))
    assert len(samples) == 1
    assert reason == (
        "the container was killed by signal 9 (SIGKILL) from outside the run (exit status 137) "
        "after 1 process runs"
    )
    _, reason = samples_from_output(c, 0, "python", "python", RunResult(137, "", "", False, True))
    assert reason == "the container ran out of memory (exit status 137) after 0 process runs"
    _, reason = samples_from_output(c, 0, "python", "python", RunResult(None, "", "", False))
    assert reason == "the container ended without an exit status (removed from outside?)"


def test_a_failing_case_does_not_stop_the_run(tmp_path):
    cases = [case("rs-scalar"), case("rs-iter")]
    bundle = Bundle.create(tmp_path, "h", "20260101T000000Z-abcd", {"run_id": "x"})

    def fake(image, argv, c):
        if c.impl.name == "rs-scalar":
            return RunResult(137, "", "", False)  # killed from outside
        lines = [runner_line(i, warmup=i == 0, stdout=kernel("8905216956603")) for i in range(4)]
        return RunResult(0, "\n".join(lines), "", False)

    rows = run_cases(
        bundle, SUITE, cases, QUICK, {"rust": "img"}, execute=fake, opts=RunOptions(cpuset="1")
    )
    status = {r["case_id"]: (r["status"], r["reason"]) for r in rows}
    assert status["sum_squares/rs-iter/100000"] == ("ok", None)
    assert status["sum_squares/rs-scalar/100000"][0] == "failed"
    assert "killed by signal 9" in status["sum_squares/rs-scalar/100000"][1]


# ----- interruption and resume -----------------------------------------------------------------
PROF = SUITE.profiles["default"]  # 2 sessions of 1 warm-up + 5 runs


def good_session(image, argv, c):
    n = PROF.warmup + PROF.runs
    ref = c.expected_checksum()
    lines = [runner_line(i, warmup=i < PROF.warmup, stdout=kernel(ref)) for i in range(n)]
    return RunResult(0, "\n".join(lines), "", False)


def test_run_cases_skips_finished_cases(tmp_path):
    cases = [case("rs-scalar"), case("rs-iter"), case("py-loop")]
    bundle = Bundle.create(tmp_path, "h", "20260101T000000Z-abcd", {"run_id": "x"})
    ran = []

    def fake(image, argv, c):
        ran.append(c.case_id)
        return good_session(image, argv, c)

    tags = {"rust": "r", "python": "p"}
    done = {"sum_squares/rs-iter/100000"}
    rows = run_cases(
        bundle, SUITE, cases, PROF, tags, execute=fake, opts=RunOptions(cpuset="1"), finished=done
    )
    assert "sum_squares/rs-iter/100000" not in ran
    assert len(ran) == 2 * PROF.sessions
    assert {r["case_id"] for r in rows} == {c.case_id for c in cases} - done
    # The others keep their places in the full run's order.
    full = [c.case_id for c, _ in schedule(cases, PROF.sessions, 0)]
    assert ran == [cid for cid in full if cid not in done]


def test_resume_redoes_only_the_cases_in_flight(tmp_path):
    # Two comparison groups: startup's (finished after its 4 sessions) and sum_squares' (in
    # flight when the run is interrupted).
    cases = [
        case("rs-hello", "startup"),
        case("py-bare", "startup"),
        case("rs-scalar"),
        case("py-numpy"),
    ]
    tags = {"rust": "r", "python": "p"}
    bundle = Bundle.create(tmp_path, "h", "20260101T000000Z-abcd", {"run_id": "x"})
    calls = []

    def interrupted_after(n):
        def fake(image, argv, c):
            if len(calls) == n:
                raise KeyboardInterrupt  # Ctrl-C while this session's container runs
            calls.append(c.case_id)
            return good_session(image, argv, c)

        return fake

    with pytest.raises(KeyboardInterrupt):
        run_cases(
            bundle,
            SUITE,
            cases,
            PROF,
            tags,
            execute=interrupted_after(5),
            opts=RunOptions(cpuset="1"),
        )
    per_session = PROF.warmup + PROF.runs
    assert len(bundle.samples()) == 5 * per_session  # every finished session is on disk
    finished_before = {r["case_id"] for r in bundle.cases()}
    assert finished_before
    assert len(finished_before) < len(cases)

    state = prepare_resume(bundle, [c.case_id for c in cases])
    assert state.finished == finished_before
    assert state.kept_samples == len(finished_before) * PROF.sessions * per_session
    assert state.dropped_samples == 5 * per_session - state.kept_samples
    assert {s["case_id"] for s in bundle.samples()} == finished_before

    calls.clear()
    run_cases(
        bundle,
        SUITE,
        cases,
        PROF,
        tags,
        execute=interrupted_after(-1),
        opts=RunOptions(cpuset="1"),
        finished=state.finished,
    )
    assert not set(calls) & finished_before
    samples = bundle.samples()
    for c in cases:
        mine = [s for s in samples if s["case_id"] == c.case_id]
        assert len(mine) == PROF.sessions * per_session
        assert len({(s["session"], s["run"]) for s in mine}) == len(mine)  # no duplicates
    rows = bundle.cases()
    assert sorted(r["case_id"] for r in rows) == sorted(c.case_id for c in cases)


def test_prepare_resume_drops_torn_lines_and_unknown_cases(tmp_path):
    bundle = Bundle.create(tmp_path, "h", "20260101T000000Z-abcd", {"run_id": "x"})
    a, b = "startup/py-bare/-", "startup/rs-hello/-"

    def sample(cid):
        _, impl, _ = cid.split("/")
        return {
            "schema": 1,
            "case_id": cid,
            "task": "startup",
            "impl": impl,
            "session": 0,
            "run": 0,
            "wall_ns": 1000,
        }

    def row(cid):
        _, impl, _ = cid.split("/")
        return {"case_id": cid, "task": "startup", "impl": impl, "status": "ok"}

    bundle.append_samples([sample(a), sample(b)])
    bundle.append_case(row(a))
    bundle.append_case(row("startup/gone/-"))
    with (bundle.path / "cases.jsonl").open("a") as f:
        f.write('{"case_id": "startup/rs-he')  # a hard kill mid-append
    with (bundle.path / "samples.jsonl").open("a") as f:
        f.write('{"case_id": "startup/py-ba')
    state = prepare_resume(bundle, [a, b])
    assert state.finished == {a}
    assert (state.kept_samples, state.dropped_samples) == (1, 1)
    assert bundle.samples() == [sample(a)]
    assert (bundle.path / "samples.jsonl").read_text().count("\n") == 1
    assert [r["case_id"] for r in bundle.cases()] == [a]
    bundle.append_case(row(b))  # appending after it stays readable
    assert [r["case_id"] for r in bundle.cases()] == [a, b]


def test_signals_are_held_while_rows_are_written():
    events = []

    def write_rows():
        with signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            events.append("written")
        events.append("not reached")

    previous = signal.signal(signal.SIGTERM, interrupt_handler)
    try:
        with pytest.raises(RunInterrupted) as e:
            write_rows()
        assert e.value.signum == signal.SIGTERM
        with pytest.raises(RunInterrupted):  # outside the held block: at once
            signal.raise_signal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert events == ["written"]


# ----- core locks ------------------------------------------------------------------------------
def test_core_locks_refuse_a_second_holder_and_name_the_first(tmp_path):
    first = CoreLocks([0], "run-a", tmp_path)
    first.acquire()
    try:
        # flock is per open file description: a second open in this process conflicts.
        with pytest.raises(CoresBusy) as e, CoreLocks([0], "run-b", tmp_path):
            pass
        assert str(e.value).startswith(
            f"core 0 is in use by another harness run (pid {os.getpid()}, run run-a). "
            "Wait for it to finish, or pick"
        )
        assert e.value.busy == {0: Holder(os.getpid(), "run-a")}
        assert 0 not in e.value.free
    finally:
        first.release()
    # Released: the next run takes it, and writes itself in as the holder.
    with CoreLocks([0], "run-b", tmp_path) as second:
        assert json.loads(second.path(0).read_text())["run_id"] == "run-b"
    assert (tmp_path / "cpu0.lock").read_text() == ""


def test_core_locks_take_all_cores_or_none(tmp_path):
    with CoreLocks([1], "run-a", tmp_path):
        with pytest.raises(CoresBusy) as e:
            CoreLocks([0, 1, 2], "run-b", tmp_path).acquire()
        assert str(e.value).startswith("core 1 is in use by another harness run")
        # Cores 0 and 2 were let go again when 1 could not be had.
        with CoreLocks([0, 2], "run-c", tmp_path):
            pass
    two = CoreLocks([3, 4], "run-a", tmp_path)
    two.acquire()
    try:
        with pytest.raises(CoresBusy, match=r"^cores 3-4 are in use by another harness run"):
            CoreLocks([2, 3, 4], "run-b", tmp_path).acquire()
    finally:
        two.release()


def test_core_locks_suggest_free_cores(tmp_path, monkeypatch):
    monkeypatch.setattr("harness.locks.available_cpus", lambda: [0, 1, 2, 3])
    with CoreLocks([2, 3], "run-a", tmp_path):
        with pytest.raises(CoresBusy) as e:
            CoreLocks([3], "run-b", tmp_path).acquire()
        assert str(e.value).endswith("Wait for it to finish, or pick free cores with --cpuset 0-1.")
    with CoreLocks([0, 1, 2, 3], "run-a", tmp_path), pytest.raises(CoresBusy) as e:
        CoreLocks([3], "run-b", tmp_path).acquire()
    assert "pick other cores with --cpuset when some are free" in str(e.value)


def test_lock_dir_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path / "locks"))
    assert lock_dir() == tmp_path / "locks"
    assert (tmp_path / "locks").is_dir()


# ----- `harness run --resume` refusals (no engine needed) --------------------------------------
FAULTS = Path(__file__).parent / "fixtures" / "faults.toml"
NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def fake_bundle(results: Path, suite_file: Path, **fields) -> Path:
    suite = load_suite(suite_file)
    manifest = {
        "run_id": "20260101T000000Z-abcdef",
        "host": "h",
        "status": "incomplete",
        "cpuset": "0",
        "profile": {"name": "faults"},
        "seed": 0,
        "timeout_s": 2.0,
        "suite": {"name": suite.name, "path": str(suite_file), "sha256": suite.digest},
        "cases": [c.case_id for c in suite.cases(suite.profiles["faults"])],
        **fields,
    }
    return Bundle.create(results, "h", manifest["run_id"], manifest).path


def cli_error(*args: str) -> str:
    r = CliRunner().invoke(app, list(args), env=NO_ENGINE)
    assert r.exit_code == 1, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1, r.output
    return lines[0]


def test_resume_refuses_an_unknown_run(tmp_path):
    line = cli_error("run", "--resume", "20990101T000000Z-000000", "--results", str(tmp_path))
    assert line.startswith(f"Error: no run 20990101T000000Z-000000 under {tmp_path}/. Give the id")


def test_resume_refuses_a_complete_run(tmp_path):
    path = fake_bundle(tmp_path, FAULTS, status="complete")
    line = cli_error("run", "--resume", path.name, "--results", str(tmp_path))
    assert line == (
        f"Error: run {path.name} is already complete, there is nothing to resume. Write its "
        f"report with `harness report {path}`, or start a new run."
    )


def test_resume_refuses_a_changed_suite(tmp_path):
    suite_file = tmp_path / "faults.toml"
    # A copy elsewhere: its `extends` must still find the default suite.
    text = FAULTS.read_text().replace(
        '"../../harness/suites/default.toml"',
        f'"{FAULTS.parent.parent.parent}/harness/suites/default.toml"',
    )
    suite_file.write_text(text)
    path = fake_bundle(tmp_path / "results", suite_file)
    suite_file.write_text(text + "\n# edited\n")
    line = cli_error("run", "--resume", path.name, "--results", str(tmp_path / "results"))
    assert line.startswith(f"Error: the suite file {suite_file} changed since run {path.name}")
    assert line.endswith(
        "Restore the suite the run started with (--suite names where it is), or start a new run."
    )
    before = (path / "manifest.json").read_text()
    assert (path / "manifest.json").read_text() == before


def test_resume_refuses_settings_of_its_own(tmp_path):
    path = fake_bundle(tmp_path, FAULTS)
    line = cli_error(
        "run",
        "--resume",
        path.name,
        "--results",
        str(tmp_path),
        "--profile",
        "quick",
        "--cpus",
        "1",
    )
    assert line == (
        "Error: --resume continues a run with the settings in its manifest. Drop --cpus, --profile."
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--memory", "lots"], "Error: --memory lots is not a size. Give a number"),
        (["--memory", "1m"], "Error: --memory 1m is below Docker's minimum of 6m."),
        (["--cpuset", "9999"], "Error: --cpuset 9999 names cores this process may not use"),
        (["--cpuset", "x"], "Error: 'x' is not a CPU list."),
    ],
)
def test_run_checks_memory_and_cpuset(args, message, tmp_path):
    line = cli_error("run", "--suite", str(FAULTS), "--results", str(tmp_path / "r"), *args)
    assert line.startswith(message)
    assert not (tmp_path / "r").exists()
