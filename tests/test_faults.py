"""Reliability on the real engine: failing benchmarks, interrupted runs, killed containers and
two runs at once. The suite is tests/fixtures/faults.toml (the default suite's images).

Each test gives its runs their own lock folder (RPB_LOCK_DIR), so a `harness run` elsewhere on
the host neither blocks these tests nor is blocked by them; the lock test shares one folder
between its two runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.engine import RUN_LABEL
from harness.runner import data_volume_name
from harness.suite import load_suite
from tests.conftest import ROOT, harness

pytestmark = pytest.mark.docker

FAULTS = ROOT / "tests" / "fixtures" / "faults.toml"
SUITE = load_suite(FAULTS)
LONG = SUITE.profiles["long"]
PER_CASE = LONG.sessions * (LONG.runs + LONG.warmup)


def jsonl(path: Path) -> list[dict]:
    """Every line must parse: an interrupted run never leaves a torn one."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def bundles(results: Path) -> list[Path]:
    return sorted(p for p in results.glob("*/*") if (p / "manifest.json").is_file())


def manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


@pytest.fixture(scope="module", autouse=True)
def faults_volume(engine) -> Iterator[None]:
    """The faults suite has no inputs, but a run still makes its (empty) data volume."""
    name = data_volume_name(SUITE)
    existed = engine.volume_exists(name)
    yield
    if not existed:
        engine.remove_volume(name)


class Runs:
    """`harness run` processes started by a test, with their own lock folder; whatever they
    leave (processes, containers) is removed afterwards."""

    def __init__(self, engine, tmp_path: Path) -> None:
        self.engine = engine
        self.env = {**os.environ, "RPB_LOCK_DIR": str(tmp_path / "locks")}
        self.results = tmp_path / "results"
        self.procs: list[subprocess.Popen] = []

    def start(self, *args: str, results: Path | None = None) -> subprocess.Popen:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "harness.cli", "run", "--suite", str(FAULTS)),
                *("--results", str(results or self.results), *args),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        return proc

    def run(self, *args: str) -> subprocess.CompletedProcess:
        env = {"RPB_LOCK_DIR": self.env["RPB_LOCK_DIR"]}
        return harness("run", "--results", str(self.results), *args, env=env, timeout=600)

    def wait_for(self, proc: subprocess.Popen, what: str, timeout: float = 180) -> Path:
        """The bundle, once its `what` file has a line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = bundles(self.results)
            if found and (found[0] / what).is_file() and (found[0] / what).read_text().strip():
                return found[0]
            if proc.poll() is not None:
                _, err = proc.communicate()
                pytest.fail(f"the run ended (status {proc.returncode}) too early:\n{err[-3000:]}")
            time.sleep(0.1)
        pytest.fail(f"no line in {what} after {timeout} s")

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        for bundle in bundles(self.results):
            for c in self.engine.kit_containers(bundle.name):
                c.remove(force=True)


@pytest.fixture
def runs(engine, built_images, tmp_path) -> Iterator[Runs]:
    r = Runs(engine, tmp_path)
    yield r
    r.cleanup()


# ----- failing benchmarks ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def faults_run(engine, built_images, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("faults")
    r = Runs(engine, tmp)
    proc = r.run(
        "--suite",
        str(FAULTS),
        "--profile",
        "faults",
        "--task",
        "faults",
        "--timeout",
        "2",
        "--memory",
        "256m",
    )
    r.cleanup()
    assert proc.returncode == 0, proc.stderr[-4000:]
    bundle = Path(proc.stdout.strip().splitlines()[-1])
    return bundle, proc


def test_each_fault_is_recorded_with_its_reason(faults_run):
    bundle, proc = faults_run
    rows = {r["impl"]: r for r in jsonl(bundle / "cases.jsonl")}
    assert set(rows) == {"ok", "crash", "exit3", "hang", "oom", "wrong"}

    assert rows["ok"]["status"] == "ok"
    assert rows["crash"]["status"] == "failed"
    assert rows["crash"]["reason"] == "killed by signal 6 (SIGABRT)"
    assert rows["exit3"]["status"] == "failed"
    assert rows["exit3"]["reason"] == "exit status 3"
    assert "fault: giving up with status 3" in rows["exit3"]["stderr_tail"]
    assert rows["hang"]["status"] == "failed"
    assert rows["hang"]["reason"] == "timed out (killed by the runner at the per-run --timeout)"
    assert rows["oom"]["status"] == "failed"
    # Either the engine said so (State.OOMKilled) or the peak RSS reached the limit.
    assert rows["oom"]["reason"].startswith("killed by signal 9 (SIGKILL): out of memory, ")
    assert rows["oom"]["reason"].endswith("memory limit")
    assert rows["wrong"]["status"] == "invalid"
    assert rows["wrong"]["reason"] == (
        "checksum mismatch (exact text): expected 'Hello, world!\\n', got 'Hello, world?\\n'"
    )

    samples = jsonl(bundle / "samples.jsonl")
    prof = SUITE.profiles["faults"]
    assert Counter(s["impl"] for s in samples) == dict.fromkeys(rows, prof.runs)
    hang = [s for s in samples if s["impl"] == "hang"]
    assert all(s["timed_out"] and s["wall_ns"] >= 2e9 for s in hang)
    assert all(s["signal"] == 9 and not s["timed_out"] for s in samples if s["impl"] == "oom")

    m = manifest(bundle)
    assert m["status"] == "complete"
    assert m["limits"]["memory"] == "256m"
    assert m["timeout_s"] == 2
    # The run finished, so it exits 0, and says which cases did not pass.
    assert (
        "5 of 6 cases did not pass: failed: faults/crash/-, faults/exit3/-, faults/hang/-, "
        "faults/oom/-; invalid: faults/wrong/-"
    ) in proc.stderr
    assert "1 of 6 cases ok." in proc.stderr


def test_report_lists_the_failures_with_their_reasons(faults_run):
    bundle, _ = faults_run
    proc = harness("report", str(bundle))
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (bundle / "report.md").read_text()
    html = (bundle / "report.html").read_text()
    for case_id, reason in [
        ("faults/crash/-", "killed by signal 6 (SIGABRT)"),
        ("faults/exit3/-", "exit status 3"),
        ("faults/hang/-", "timed out"),
        ("faults/oom/-", "killed by signal 9 (SIGKILL)"),
        ("faults/wrong/-", "checksum mismatch"),
    ]:
        assert case_id in md
        assert reason in md
        assert case_id in html
    assert "fault: giving up with status 3" in md


# ----- SIGINT / SIGTERM and --resume -----------------------------------------------------------
@pytest.mark.parametrize(
    ("signum", "status", "wait_for", "tasks"),
    [
        # Right after the first session: the case in flight is dropped and redone.
        (signal.SIGTERM, 143, "samples.jsonl", ["slow"]),
        # After the first finished case (task `first`, a comparison group of its own, runs
        # before `slow`): that case must not run again.
        (signal.SIGINT, 130, "cases.jsonl", ["first", "slow"]),
    ],
    ids=["SIGTERM", "SIGINT"],
)
def test_interrupted_run_is_saved_and_resumed(runs, engine, signum, status, wait_for, tasks):
    selection = [a for t in tasks for a in ("--task", t)]
    proc = runs.start("--profile", "long", *selection, "--seed", "0")
    bundle = runs.wait_for(proc, wait_for)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    name = signal.Signals(signum).name
    assert proc.returncode == status, err[-3000:]
    assert f"Interrupted ({name}):" in err
    run_id = bundle.name
    assert f"harness run --resume {run_id} --results {runs.results}" in err
    assert "Traceback" not in err

    m = manifest(bundle)
    assert m["status"] == "incomplete"
    assert m["interrupted"] is True
    assert m["interruptions"][-1]["signal"] == name
    left = engine.client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})
    assert left == [], err[-3000:]
    before_samples = jsonl(bundle / "samples.jsonl")
    before_cases = jsonl(bundle / "cases.jsonl")
    assert before_samples
    if wait_for == "cases.jsonl":
        assert [c["case_id"] for c in before_cases] == ["first/ok/-"]
    n_cases = len(tasks) + 1

    done = runs.run("--resume", run_id)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "did not pass" not in done.stderr, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == str(bundle)
    assert f"resuming run {run_id}: {len(before_cases)} of {n_cases} cases finished" in done.stderr

    m = manifest(bundle)
    assert m["status"] == "complete"
    assert m["interrupted"] is False
    assert len(m["resumed"]) == 1
    assert m["resumed"][0]["finished_cases"] == len(before_cases)
    cases = jsonl(bundle / "cases.jsonl")
    assert sorted(c["impl"] for c in cases) == sorted(["slow", *["ok"] * len(tasks)])
    assert all(c["status"] == "ok" for c in cases), cases
    assert cases[: len(before_cases)] == before_cases  # finished cases are kept as they were
    samples = jsonl(bundle / "samples.jsonl")
    for case_id in {c["case_id"] for c in cases}:
        mine = [s for s in samples if s["case_id"] == case_id]
        assert len(mine) == PER_CASE
        assert len({(s["session"], s["run"]) for s in mine}) == PER_CASE  # no duplicates
    finished_before = {c["case_id"] for c in before_cases}
    kept = [s for s in before_samples if s["case_id"] in finished_before]
    assert [s for s in samples if s["case_id"] in finished_before] == kept  # not run again

    again = runs.run("--resume", run_id)
    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"Error: run {run_id} is already complete, there is nothing to resume. Write its "
        f"report with `harness report {bundle}`, or start a new run."
    )


# ----- a container killed from outside ---------------------------------------------------------
def test_container_killed_from_outside_fails_its_case_only(runs, engine):
    proc = runs.start("--profile", "long", "--task", "slow", "--seed", "0")
    deadline = time.monotonic() + 180
    killed = None
    while killed is None and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        found = bundles(runs.results)
        if found:
            running = engine.client.containers.list(
                filters={
                    "label": [f"{RUN_LABEL}={found[0].name}", "rpb.case=slow/slow/-"],
                    "status": "running",
                }
            )
            for c in running:
                time.sleep(0.5)  # inside its first process run
                try:
                    c.kill()
                except Exception:  # ended meanwhile: take the next session
                    continue
                killed = c
                break
        time.sleep(0.1)
    assert killed is not None, "no running container of slow/slow/- to kill"
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-3000:]
    bundle = Path(out.strip().splitlines()[-1])
    assert manifest(bundle)["status"] == "complete"
    rows = {r["impl"]: r for r in jsonl(bundle / "cases.jsonl")}
    assert rows["ok"]["status"] == "ok"
    assert rows["slow"]["status"] == "failed"
    reason = rows["slow"]["reason"]
    assert reason.startswith(
        "the container was killed by signal 9 (SIGKILL) from outside the run (exit status 137) "
        "after "
    )
    assert "1 of 2 cases did not pass: failed: slow/slow/-" in err
    # The other sessions of the case ran and were saved.
    slow = [s for s in jsonl(bundle / "samples.jsonl") if s["impl"] == "slow"]
    assert len({s["session"] for s in slow}) >= LONG.sessions - 1


# ----- two runs at once ------------------------------------------------------------------------
def test_second_run_on_the_same_cores_is_refused(runs, tmp_path):
    core = str(max(os.sched_getaffinity(0)))
    first = runs.start("--profile", "long", "--task", "slow", "--cpuset", core)
    bundle = runs.wait_for(first, "samples.jsonl")
    other = tmp_path / "other-results"
    second = harness(
        "run",
        "--suite",
        str(FAULTS),
        "--profile",
        "long",
        "--task",
        "slow",
        "--cpuset",
        core,
        "--results",
        str(other),
        env={"RPB_LOCK_DIR": runs.env["RPB_LOCK_DIR"]},
    )
    assert second.returncode == 1
    line = second.stderr.strip()
    assert "\n" not in line
    assert line.startswith(
        f"Error: core {core} is in use by another harness run (pid {first.pid}, run "
        f"{bundle.name}). Wait for it to finish, or pick"
    )
    assert not bundles(other)  # refused before any bundle was made
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=120)
    assert first.returncode == 143
