"""Warm-up found from the data: the settling rule, cold-start twins, and what a run records."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from harness.engine import RunResult
from harness.errors import SuiteError
from harness.kinds import case_profile, metric_values
from harness.runner import RunOptions, run_cases, runner_argv, samples_from_output
from harness.settle import agree, iteration_warmup, online_warmup
from harness.store import Bundle
from harness.suite import load_suite, parse_suite

SUITE = load_suite()
QUICK = SUITE.profiles["quick"]
DEFAULT = SUITE.profiles["default"]
# The first runs of `python3 -I -S` in a fresh container on a fuse-overlayfs host (ms).
FRESH = [94, 34, 41, 27, 26, 29, 26, 40, 23, 22, 18, 17, 18, 14, 13, 13, 14, 13, 13, 14, 13, 13]


def test_agree_is_the_slowest_within_the_band_of_the_fastest():
    assert agree([10, 10.9, 10.5], 0.10)
    assert not agree([10, 11.1], 0.10)
    assert not agree([], 0.10)
    assert not agree([0, 0], 0.10)


def test_online_warmup_waits_for_the_falling_runs_to_stop_falling():
    # Five in a row within 10 %: 14, 13, 13, 14, 13 (runs 14..18), so 18 warm-up runs; a
    # window of three would have stopped at 18, 17, 18 ms, 30 % above the settled value.
    assert online_warmup(FRESH, 5, 0.10, least=1, cap=40) == 18
    assert online_warmup(FRESH, 3, 0.10, least=1, cap=40) == 13
    assert online_warmup(FRESH, 5, 0.10, least=1, cap=8) == 8
    assert online_warmup([5.0] * 10, 5, 0.10, least=7, cap=40) == 7


def test_iteration_warmup_keeps_the_settled_window_measured():
    assert iteration_warmup([10, 5, 5.1, 5.2, 5], 5, 0.1, fallback=1) == (1, True)
    assert iteration_warmup([5, 5, 5], 5, 0.1, fallback=1) == (0, True)
    assert iteration_warmup([9, 5, 7], 5, 0.1, fallback=1) == (1, False)
    assert iteration_warmup([9], 5, 0.1, fallback=1) == (0, False)


def test_kernel_values_drop_the_iterations_the_rule_found():
    sample = {"kind": "kernel", "iter_ns": [10, 5, 5], "warmup_iters": 0}
    assert metric_values(sample, 1) == [10.0, 5.0, 5.0]
    del sample["warmup_iters"]
    assert metric_values(sample, 1) == [5.0, 5.0]


def test_a_cold_twin_follows_each_task_with_cold_true():
    names = list(SUITE.tasks)
    assert names[names.index("startup") + 1] == "startup_cold"
    cold = SUITE.tasks["startup_cold"]
    assert (cold.start, cold.warm_of, cold.baseline) == ("cold", "startup", "py-bare")
    assert [i.name for i in cold.impls] == [i.name for i in SUITE.tasks["startup"].impls]
    # Selecting the task selects its twin.
    picked = {c.task.name for c in SUITE.cases(QUICK, tasks=["startup"])}
    assert picked == {"startup", "startup_cold"}


def test_a_cold_case_is_many_fresh_containers_of_one_run():
    c = next(c for c in SUITE.cases(DEFAULT) if c.task.name == "startup_cold")
    own = case_profile(c, DEFAULT)
    n = DEFAULT.cold_sessions
    assert (own.sessions, own.session_cap, own.runs, own.warmup) == (n, n, 1, 0)
    assert not own.adaptive_warmup
    warm = next(c for c in SUITE.cases(DEFAULT) if c.task.name == "startup")
    assert case_profile(warm, DEFAULT) is DEFAULT
    # A profile without cold sessions has no cold cases.
    none = replace(DEFAULT, cold_sessions=0)
    assert not [c for c in SUITE.cases(none) if c.task.name == "startup_cold"]


def test_the_runner_gets_the_settling_rule_for_start_up_only():
    argv = runner_argv(DEFAULT, 60, ["x"], settle=True)
    assert argv[argv.index("--warmup-cap") + 1] == str(DEFAULT.warmup_cap)
    assert argv[argv.index("--settle") + 1] == "5"
    assert argv[argv.index("--band") + 1] == "0.1"
    assert "--warmup-cap" not in runner_argv(DEFAULT, 60, ["x"])
    fixed = replace(DEFAULT, warmup_cap=0)
    assert "--warmup-cap" not in runner_argv(fixed, 60, ["x"], settle=True)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r["tasks"]["sum_squares"].update(cold=True), "cold = true is for process"),
        (
            lambda r: r["tasks"]["startup"].update(importtime=["nope"]),
            "importtime names 'nope'",
        ),
        (
            lambda r: r["tasks"].update(startup_cold=dict(r["tasks"]["startup"], cold=False)),
            "makes a task 'startup_cold', which the suite already has",
        ),
        (lambda r: r["profiles"]["quick"].update(warmup_cap=0.5), "'warmup_cap' must be"),
        (lambda r: r["profiles"]["quick"].update(warmup=3, warmup_cap=2), "warmup_cap (2)"),
        (lambda r: r["profiles"]["quick"].update(settle_k=1), "settle_k must be >= 2"),
        (lambda r: r["profiles"]["quick"].update(settle_band=1.5), "settle_band in (0, 1)"),
    ],
)
def test_bad_warmup_and_cold_settings_are_refused(edit, message):
    import tomllib

    raw = tomllib.loads(SUITE.path.read_text())
    edit(raw)
    with pytest.raises(SuiteError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_suite(raw, SUITE.path, "x")


def _line(run: int, wall: int, *, warmup: bool, extra: dict | None = None) -> str:
    return json.dumps(
        {
            "schema": 1,
            "run": run,
            "warmup": warmup,
            "wall_ns": wall,
            "exit_code": 0,
            "signal": None,
            "timed_out": False,
            "stdout": "Hello, world!\n",
            **(extra or {}),
        }
    )


def test_a_session_records_its_warmup_runs_and_the_case_row_keeps_them(tmp_path):
    warm = next(c for c in SUITE.cases(QUICK) if c.case_id == "startup/py-bare/-")
    cold = next(c for c in SUITE.cases(QUICK) if c.case_id == "startup_cold/py-bare/-")
    seen: dict[str, list[list[str]]] = {}

    def fake(image, argv, case):
        seen.setdefault(case.task.name, []).append(argv)
        if case.task.start == "cold":
            return RunResult(
                0, _line(0, 40_000_000, warmup=False, extra={"warmup_runs": 0}), "", False
            )
        n = 7 if len(seen[case.task.name]) == 1 else 9
        lines = [_line(i, 20_000_000 - i, warmup=True) for i in range(n)]
        info = {"warmup_runs": n, "settled": n == 7}
        lines += [_line(n + i, 14_000_000, warmup=False, extra=info) for i in range(2)]
        return RunResult(0, "\n".join(lines), "", False)

    quick = replace(QUICK, sessions=2)
    bundle = Bundle.create(tmp_path, "h", "20260101T000000Z-abcd", {"run_id": "x"})
    rows = run_cases(
        bundle,
        SUITE,
        [warm, cold],
        quick,
        {"python": "p"},
        execute=fake,
        opts=RunOptions(cpuset="1"),
    )
    by_id = {r["case_id"]: r for r in rows}
    assert by_id["startup/py-bare/-"]["warmup_runs"] == [7, 9]
    assert by_id["startup/py-bare/-"]["warmup_settled"] == [True, False]
    assert by_id["startup/py-bare/-"]["median_ns"] == 14_000_000
    # Cold: QUICK.cold_sessions fresh containers, one run each, no warm-up to record.
    assert len(seen["startup_cold"]) == QUICK.cold_sessions == by_id[cold.case_id]["sessions"]
    assert all(
        a[a.index("--runs") + 1] == "1" and a[a.index("--warmup") + 1] == "0"
        for a in seen["startup_cold"]
    )
    assert "warmup_runs" not in by_id[cold.case_id]
    assert all("--warmup-cap" in a for a in seen["startup"])


def test_a_kernel_sample_records_the_iterations_the_rule_dropped():
    c = next(c for c in SUITE.cases(QUICK) if c.case_id == "sum_squares/rs-scalar/100000")
    out = json.dumps({"setup_ns": 1, "iter_ns": [900, 500, 510], "checksum": "8905216956603"})
    line = _line(1, 5000, warmup=False, extra={"stdout": out + "\n"})
    samples, why = samples_from_output(
        c, 0, "rust", "rust", RunResult(0, line, "", False), profile=QUICK
    )
    assert why is None
    assert (samples[0]["warmup_iters"], samples[0]["iters_settled"]) == (1, True)
    assert metric_values(samples[0]) == [500.0, 510.0]


def test_cold_sessions_on_the_command_line_override_the_profile():
    from harness.pipeline import _with_knobs

    none = _with_knobs(DEFAULT, {"cold_sessions": 0, "sessions": None})
    assert none.cold_sessions == 0
    assert none.sessions == DEFAULT.sessions
    assert not [c for c in SUITE.cases(none, tasks=["startup"]) if c.task.start == "cold"]
    five = _with_knobs(DEFAULT, {"cold_sessions": 5})
    cold = next(c for c in SUITE.cases(five, tasks=["startup"]) if c.task.start == "cold")
    assert case_profile(cold, five).sessions == 5


def test_each_kind_keeps_its_state_in_the_manifest(tmp_path, monkeypatch):
    """The process kind's import profile and the service kind's rates both stay (a later
    kind's update once dropped an earlier one's)."""
    from harness.kinds import service

    monkeypatch.setattr(service.KIND, "prepare", lambda cases, ctx: {"rates": [1.0]})
    stderr = "import time: self [us] | cumulative | imported package\n"
    stderr += "import time:       120 |        300 | numpy\n"

    def fake(image, argv, case):
        return RunResult(0, "Hello, world!\n", stderr, False)

    cases = [
        next(c for c in SUITE.cases(QUICK) if c.case_id == "startup/py-numpy/-"),
        next(c for c in SUITE.cases(QUICK) if c.task.kind == "service"),
    ]
    bundle = Bundle.create(tmp_path, "h", "20260101T000000Z-abcd", {"run_id": "x"})
    from harness.kinds.context import SessionContext
    from harness.runner import _prepare_kinds

    ctx = SessionContext(SUITE, QUICK, RunOptions(cpuset="1"), {"python": "p"}, fake)
    _prepare_kinds(bundle, cases, ctx)
    state = bundle.manifest()["kind_state"]
    assert state["service"] == {"rates": [1.0]}
    assert state["process"]["importtime"]["py-numpy"]["total_us"] == 120
