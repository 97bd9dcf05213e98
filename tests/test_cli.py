"""The CLI's contract: help everywhere, one `Error:` line and exit 1 for bad input."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from harness.cli import app

runner = CliRunner()
COMMANDS = ["build", "run", "report", "compare", "calibrate", "doctor", "clean"]


def invoke(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env)


def error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_top_level_help_lists_every_command():
    r = invoke("--help")
    assert r.exit_code == 0
    for c in COMMANDS:
        assert c in r.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    r = invoke(command, "--help")
    assert r.exit_code == 0
    assert "Usage:" in r.output
    assert len(r.output.splitlines()) > 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "--task", "nope"],
            "Error: unknown task 'nope'. Known tasks: batch_scoring, concurrency, drift, "
            "feature_engineering, ffi, file_read, io_impact, parallel, serving_api, startup, "
            "startup_cold, sum_squares.",
        ),
        (
            ["run", "--image", "nope"],
            "Error: unknown image 'nope'. Known images: loadgen, pypy, python, runner, rust.",
        ),
        (["run", "--cpus", "0"], "Error: --cpus 0 is not allowed. Give at least 1."),
        (["run", "--cpus", "999"], "Error: --cpus 999 exceeds the"),
        (
            ["run", "--profile", "huge"],
            "Error: unknown profile 'huge'. Known profiles: default, quick, sweep.",
        ),
        (["build", "--extra-ca", "/nonexistent/ca.pem"], "Error: "),
        (["run", "--target-ci", "5"], "Error: --target-ci 5.0 is not a fraction."),
        (["run", "--budget", "0"], "Error: --budget 0.0 must be a positive number of seconds."),
        (["run", "--sessions", "0"], "Error: --sessions must be at least 1"),
        (["run", "--cold-sessions", "-1"], "Error: --cold-sessions must be 0 (no cold start)"),
        (["run", "--resume", "x", "--max-sessions", "3"], "Error: --resume continues a run"),
        (["calibrate", "--image", "nope"], "Error: unknown image 'nope'."),
        (["run", "--no-pin", "--cpus", "1"], "Error: --no-pin lets the benchmarks run on any"),
        (["run", "--resume", "x", "--aa"], "Error: --resume continues a run"),
        (["run", "--impl", "rs-nope"], "Error: unknown implementation 'rs-nope'. Known"),
    ],
)
def test_bad_input_gives_one_error_line_and_exit_1(args, message, tmp_path):
    results = tmp_path / "results"
    extra = ["--results", str(results)] if args[0] == "run" else []
    r = invoke(*args, *extra, env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert r.exit_code == 1, r.output
    assert error_line(r).startswith(message)
    assert not results.exists()  # nothing written


def test_unreachable_engine(tmp_path):
    results = tmp_path / "results"
    r = invoke(
        "run",
        "--profile",
        "quick",
        "--results",
        str(results),
        env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    assert r.exit_code == 1
    line = error_line(r)
    assert line.startswith("Error: the Docker engine is not reachable")
    assert line.endswith("Start Docker or set DOCKER_HOST to a running engine.")
    assert not any(results.rglob("*.json*"))  # no bundle half-written


def test_report_without_bundles(tmp_path):
    r = invoke("report", "--results", str(tmp_path))
    assert r.exit_code == 1
    assert error_line(r).startswith("Error: no results bundle under")


def test_report_on_a_folder_that_is_not_a_bundle(tmp_path):
    r = invoke("report", str(tmp_path))
    assert r.exit_code == 1
    assert "is not a results bundle" in error_line(r)


def test_doctor_reports_facts_and_warns_without_failing(tmp_path):
    r = invoke(
        "doctor",
        env={"DOCKER_HOST": "unix:///nonexistent/docker.sock", "RPB_LOCK_DIR": str(tmp_path)},
    )
    assert r.exit_code == 0, r.output
    assert "runnable_threads" in r.output
    assert "cores free of other harness runs" in r.output
    assert "warning: the Docker engine is not reachable" in r.output
