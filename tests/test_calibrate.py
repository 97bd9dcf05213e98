"""`harness calibrate`: the script it runs in a container (quoting), the parser of its output,
the statistics and verdicts, and one run on the real engine (marked docker)."""

from __future__ import annotations

import json
import math
import re
import shlex
import subprocess

import pytest

from harness.calibrate import (
    AGREES,
    DIFFERS,
    HYPERFINE,
    INCONCLUSIVE,
    TRUE,
    TRUE_NAME,
    Measured,
    Target,
    WarmupRule,
    calibration_script,
    calibration_verdict,
    hyperfine_command,
    parse_calibration,
    select_targets,
    summarize,
    summary_line,
    to_json,
)
from harness.errors import HarnessError, SuiteError, UsageError
from harness.runner import RUNNER
from harness.suite import Profile, load_suite
from tests.conftest import harness

RULE = WarmupRule(warmup=1, cap=30, settle_k=5, band=0.1)
HOSTILE = [
    "python3",
    "-c",
    "import numpy; print('Hello, world!')",
    'it\'s "quoted"',
    "",
    "$(touch pwned) `touch pwned` ; touch pwned && echo",
    "{x} * ? ~ \\ |",
]


# --- the script -------------------------------------------------------------------------------


def _lines_with(script: str, word: str) -> list[list[str]]:
    return [shlex.split(line) for line in script.splitlines() if line.startswith(word)]


def test_runner_lines_carry_the_exact_argv():
    script = calibration_script(HOSTILE, rounds=3, runs=7, rule=RULE)
    runner = _lines_with(script, RUNNER)
    assert len(runner) == 1 + 3  # the adaptive warm-up, then one per round
    for words in runner:
        assert words[words.index("--") + 1 :] == HOSTILE
    warm = runner[0]
    assert warm[: warm.index("--")] == [
        RUNNER,
        "--runs",
        "1",
        "--warmup",
        "1",
        "--warmup-cap",
        "30",
        "--settle",
        "5",
        "--band",
        "0.1",
    ]
    assert all(w[1:5] == ["--runs", "7", "--warmup", "1"] for w in runner[1:])


def test_hyperfine_gets_one_command_string_that_splits_back_into_the_argv():
    """hyperfine -N splits its command with the shell-words rules (POSIX quoting, no
    expansions), as shlex.split does."""
    script = calibration_script(HOSTILE, rounds=2, runs=5, rule=RULE)
    hyper = _lines_with(script, HYPERFINE)
    assert len(hyper) == 2
    for r, words in enumerate(hyper):
        assert words[:10] == [
            HYPERFINE,
            "-N",
            "--style",
            "none",
            "--warmup",
            "3",
            "--runs",
            "5",
            "--export-json",
            f"/tmp/h{r}.json",
        ]
        assert words[10] == "--"
        assert shlex.split(words[11]) == HOSTILE
        assert words[12:] == [">/dev/null"]
    assert shlex.split(hyperfine_command(HOSTILE)) == HOSTILE


def test_rounds_alternate_the_order_of_the_tools():
    script = calibration_script(["/bin/true"], rounds=4, runs=3, rule=RULE)
    marks = [line for line in script.splitlines() if line.startswith("echo '#")]
    assert marks == [
        "echo '#W'",
        "echo '#R 0'",
        "echo '#H 0'",
        "echo '#H 1'",
        "echo '#R 1'",
        "echo '#R 2'",
        "echo '#H 2'",
        "echo '#H 3'",
        "echo '#R 3'",
        "echo '#E'",
    ]
    assert script.startswith("set -eu\n")


def test_the_script_passes_hostile_words_through_a_real_shell_unchanged(tmp_path):
    """Run the script with sh, the runner and hyperfine replaced by shell functions that print
    the words they got: nothing is expanded, split or executed."""
    stubs = (
        'runner() { for a in "$@"; do printf \'<%s>\' "$a"; done; echo; }\n'
        # The script sends hyperfine's stdout to /dev/null: this one prints on stderr.
        'hyperfine() { for a in "$@"; do printf \'<%s>\' "$a" >&2; done; echo >&2; }\n'
        "cat() { :; }\n"
    )
    script = calibration_script(HOSTILE, rounds=2, runs=3, rule=RULE).replace(RUNNER, "runner")
    proc = subprocess.run(
        ["sh", "-c", stubs + script], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "pwned").exists()
    got = [line for line in proc.stdout.splitlines() if line.startswith("<")]
    tail = "".join(f"<{w}>" for w in HOSTILE)
    runner_lines = [g for g in got if g.startswith("<--runs>")]
    assert len(runner_lines) == 3
    assert all(g.endswith("<-->" + tail) for g in runner_lines)
    hyper_lines = [g for g in proc.stderr.splitlines() if g.startswith("<-N>")]
    assert len(hyper_lines) == 2
    assert all(g.endswith(f"<-->{'<' + shlex.join(HOSTILE) + '>'}") for g in hyper_lines)


def test_an_empty_argv_is_refused():
    with pytest.raises(ValueError):
        calibration_script([], rounds=2, runs=3, rule=RULE)


# --- the warm-up rule -------------------------------------------------------------------------


def _profile(**extra) -> Profile:
    return Profile(name="p", size="default", sessions=1, runs=2, warmup=1, iters=1, **extra)


def test_warmup_rule_comes_from_the_profile():
    p = _profile()
    for name, value in (("warmup_cap", 40), ("settle_k", 4), ("settle_band", 0.05)):
        object.__setattr__(p, name, value)
    rule = WarmupRule.of(p)
    assert rule == WarmupRule(warmup=1, cap=40, settle_k=4, band=0.05)
    assert rule.args() == ["--warmup", "1", "--warmup-cap", "40", "--settle", "4", "--band", "0.05"]


def test_a_fixed_warmup_profile_still_warms_the_container():
    p = _profile()
    if hasattr(p, "warmup_cap"):
        object.__setattr__(p, "warmup_cap", 0)  # 0: no rule, exactly `warmup` runs
    rule = WarmupRule.of(p)
    assert rule.cap == 30
    assert rule.settle_k == 5
    assert rule.band == pytest.approx(0.10)


# --- parsing ----------------------------------------------------------------------------------


def _run(i: int, wall: float, warmup: bool = False, **extra) -> str:
    obj = {
        "schema": 1,
        "run": i,
        "warmup": warmup,
        "wall_ns": wall,
        "exit_code": 0,
        "signal": None,
        "timed_out": False,
        "stdout": "Hello, world!\n",
        **extra,
    }
    return json.dumps(obj)


def _hyper(times: list[float], codes: list[int] | None = None) -> list[str]:
    doc = {"results": [{"command": "x", "times": times, "exit_codes": codes or [0] * len(times)}]}
    return json.dumps(doc, indent=2).splitlines()


def _output(rounds: int = 2) -> str:
    lines = [
        "#W",
        _run(0, 9e6, True),
        _run(1, 5e6, True),
        _run(2, 4e6, warmup_runs=2, settled=True),
    ]
    for r in range(rounds):
        runner = [f"#R {r}", _run(0, 9e6, True), _run(1, 1e6 * (r + 1)), _run(2, 3e6 * (r + 1))]
        hyper = [f"#H {r}", *_hyper([1e-3 * (r + 1), 2e-3 * (r + 1)]), ""]
        lines += runner + hyper if r % 2 == 0 else hyper + runner
    return "\n".join([*lines, "#E", ""])


def test_parse_keeps_measured_runs_per_round_and_the_warmup():
    m = parse_calibration(_output(), "py-bare", "Hello, world!\n")
    assert m.warmup_runs == 2
    assert m.settled is True
    assert m.runner == [[1e6, 3e6], [2e6, 6e6]]
    assert m.hyperfine == [pytest.approx([1e6, 2e6]), pytest.approx([2e6, 4e6])]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"exit_code": 1, "stderr_tail": "ImportError: numpy"}, "exited with status 1"),
        ({"exit_code": None, "signal": 9}, "killed by signal 9"),
        ({"timed_out": True}, "timed out"),
        ({"stdout": "Hi\n"}, "printed 'Hi\\n'"),
    ],
)
def test_a_failed_run_names_the_implementation(bad, message):
    out = "\n".join(["#R 0", _run(1, 1e6, **bad)])
    with pytest.raises(HarnessError, match=rf"calibrating py-numpy failed: .*{re.escape(message)}"):
        parse_calibration(out, "py-numpy", "Hello, world!\n")


def test_a_spawn_error_and_hyperfine_failures_name_the_implementation():
    out = '#W\n{"schema":1,"error":"spawn failed: No such file or directory (os error 2)"}\n'
    with pytest.raises(HarnessError, match="py-polars failed: the runner could not start it"):
        parse_calibration(out, "py-polars")
    out = "\n".join(["#H 0", *_hyper([1e-3, 1e-3], [0, 2])])
    with pytest.raises(HarnessError, match="py-polars failed: it exited with status 2 under hyper"):
        parse_calibration(out, "py-polars")
    with pytest.raises(HarnessError, match="unreadable"):
        parse_calibration("#H 0\n{not json\n", "py-polars")


def test_true_has_no_expected_output():
    out = "\n".join(["#R 0", _run(1, 5e5, stdout="")])
    assert parse_calibration(out, TRUE_NAME, None).runner == [[5e5]]


# --- statistics and verdicts ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lo", "hi", "verdict"),
    [
        (0.96, 1.04, AGREES),
        (0.95, 1.05, AGREES),
        (0.94, 1.01, INCONCLUSIVE),
        (0.99, 1.06, INCONCLUSIVE),
        (0.80, 1.20, INCONCLUSIVE),
        (1.06, 1.20, DIFFERS),
        (0.70, 0.94, DIFFERS),
        (math.nan, math.nan, INCONCLUSIVE),
    ],
)
def test_verdict_against_the_tolerance(lo, hi, verdict):
    assert calibration_verdict(lo, hi, 0.05) == verdict


def _measured(ratios: list[float], base: float = 20e6) -> Measured:
    m = Measured(warmup_runs=11, settled=True)
    for q in ratios:
        m.runner.append([base * q * f for f in (0.99, 1.0, 1.01)])
        m.hyperfine.append([base * f for f in (0.98, 1.0, 1.02)])
    return m


TARGET = Target(name="py-bare", image="python", argv=("python3", "-I", "-S", "-c", "pass"))


def test_paired_ratios_that_agree():
    row = summarize(TARGET, _measured([1.00, 1.01, 0.99, 1.02, 1.00, 0.98]), 0.05)
    assert row["round_ratios"] == pytest.approx([1.00, 1.01, 0.99, 1.02, 1.00, 0.98])
    assert row["ratio"] == pytest.approx(1.0)
    lo, hi = row["ratio_ci"]
    assert 0.98 <= lo <= 1.0 <= hi <= 1.02
    assert row["verdict"] == AGREES
    assert row["runner_median_ns"] == pytest.approx(20e6, rel=0.02)
    assert row["hyperfine_median_ns"] == pytest.approx(20e6)
    assert row["difference_pct"] == pytest.approx(0.0, abs=1e-9)
    assert (row["warmup_runs"], row["warmup_settled"], row["rounds"]) == (11, True, 6)


def test_paired_ratios_that_differ_and_that_cannot_tell():
    differ = summarize(TARGET, _measured([1.50, 1.45, 1.55, 1.52, 1.48, 1.50]), 0.05)
    assert differ["verdict"] == DIFFERS
    assert differ["difference_pct"] == pytest.approx(50.0, abs=1.0)
    noisy = summarize(TARGET, _measured([0.90, 1.10, 1.00, 0.92, 1.08, 1.00]), 0.05)
    assert noisy["verdict"] == INCONCLUSIVE


def test_the_ratio_is_paired_per_round_not_pooled():
    """A host that slows down between rounds moves both tools alike: the pooled medians drift,
    the per-round ratios do not."""
    m = Measured()
    for r in range(6):
        slow = 1 + r  # each round slower than the last
        m.runner.append([10e6 * slow] * 3)
        m.hyperfine.append([10e6 * slow] * 3)
    row = summarize(TARGET, m, 0.05)
    assert row["round_ratios"] == pytest.approx([1.0] * 6)
    assert row["ratio_ci"] == pytest.approx([1.0, 1.0])
    assert row["verdict"] == AGREES


def test_the_ci_is_reproducible():
    m = _measured([1.0, 1.03, 0.97, 1.05, 0.99, 1.01])
    assert summarize(TARGET, m, 0.05)["ratio_ci"] == summarize(TARGET, m, 0.05)["ratio_ci"]


def test_json_and_summary_line():
    rows = [
        summarize(TARGET, _measured([1.0] * 4), 0.05),
        summarize(Target("py-numpy", "python", ("x",)), _measured([1.5] * 4), 0.05),
        {**summarize(Target("rs-hello", "rust", ("y",)), Measured(), 0.05)},
    ]
    doc = json.loads(to_json(rows, {"tolerance": 0.05}))
    assert doc["schema"] == 1
    assert doc["rows"][2]["ratio"] is None  # NaN as null
    assert summary_line(rows, 0.05) == (
        "1 of 3 agree within ±5 %; differ: py-numpy; inconclusive (more rounds): rs-hello."
    )


# --- selection --------------------------------------------------------------------------------


def test_default_selection_is_every_startup_impl_and_true():
    suite = load_suite()
    targets = select_targets(suite, suite.profiles["default"])
    names = [t.name for t in targets]
    startup = [i.name for i in suite.tasks["startup"].impls]
    assert names == [TRUE_NAME, *startup]
    assert targets[0].argv == (TRUE,)
    assert targets[0].image == "rust"
    by_name = {t.name: t for t in targets}
    assert by_name["py-numpy"].argv == ("python3", "-c", "import numpy; print('Hello, world!')")
    assert by_name["py-numpy"].expected_stdout == "Hello, world!\n"


def test_filters_and_their_errors():
    suite = load_suite()
    p = suite.profiles["default"]
    assert [t.name for t in select_targets(suite, p, impls=["py-bare", "rs-hello"])] == [
        "rs-hello",
        "py-bare",
    ]
    assert [t.name for t in select_targets(suite, p, impls=["true"])] == [TRUE_NAME]
    python = select_targets(suite, p, images=["python"])
    assert (python[0].name, python[0].image) == (TRUE_NAME, "python")
    assert all(t.image == "python" for t in python)
    with pytest.raises(SuiteError, match="unknown implementation 'nope'"):
        select_targets(suite, p, impls=["nope"])
    with pytest.raises(SuiteError, match="unknown task 'nope'"):
        select_targets(suite, p, tasks=["nope"])
    with pytest.raises(UsageError, match="'sum_squares' is a kernel task"):
        select_targets(suite, p, tasks=["sum_squares"])
    with pytest.raises(UsageError, match="'py-loop' is not one of a start-up"):
        select_targets(suite, p, impls=["py-loop"])
    with pytest.raises(UsageError, match="no start-up implementation matches"):
        select_targets(suite, p, images=["loadgen"])


# --- on the real engine -----------------------------------------------------------------------


def _built_tags(names: list[str]) -> dict[str, str]:
    """The current tags of these images, or skip when the engine or an image is missing."""
    from harness.engine import connect
    from harness.errors import EngineUnavailable, ImageMissing
    from harness.images import resolve_tags

    try:
        engine = connect()
        tags = resolve_tags(engine, load_suite(), names)
    except (EngineUnavailable, ImageMissing) as e:
        pytest.skip(f"no engine or base image: {e}")
    missing = [tags[n] for n in names if engine.image(tags[n]) is None]
    if missing:
        pytest.skip(f"images not built: {', '.join(missing)} (run `harness build`)")
    return tags


@pytest.mark.docker
def test_calibrate_python_and_rust_on_the_real_engine(tmp_path):
    _built_tags(["rust", "python"])
    out = tmp_path / "calibrate.json"
    proc = harness(
        "calibrate",
        "--impl",
        "py-bare",
        "--impl",
        "rs-hello",
        "--rounds",
        "3",
        "--runs",
        "5",
        "--json",
        str(out),
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    verdicts = (AGREES, DIFFERS, INCONCLUSIVE)
    for name in ("py-bare", "rs-hello"):
        row = next((ln for ln in proc.stdout.splitlines() if f" {name} " in ln), None)
        assert row is not None, proc.stdout
        assert any(v.split()[0] in row for v in verdicts), row
        assert f": {name} in rpb-" in proc.stderr  # the progress line
    assert "tolerance ±5 %" in proc.stdout
    assert "of 2 agree within ±5 %" in proc.stdout
    doc = json.loads(out.read_text())
    rows = {r["impl"]: r for r in doc["rows"]}
    assert set(rows) == {"py-bare", "rs-hello"}
    for r in rows.values():
        assert r["rounds"] == 3
        assert r["runs_per_round"] == 5
        assert r["verdict"] in verdicts
        assert r["warmup_runs"] >= 1
        assert min(r["runner_median_ns"], r["hyperfine_median_ns"]) > 0
