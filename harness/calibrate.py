"""Checking the instrument: the runner against `hyperfine -N`, per start-up implementation.

Both tools measure wall time from spawn to reaping the child (docs/methodology.md section 1), so
on the same process in the same container they should agree within a few percent. For every
implementation of the suite's `process` tasks (and `/bin/true`, the floor) one hardened,
pinned container runs a fixed shell script:

1. the runner once with the profile's adaptive warm-up (warm-up runs until the last K agree
   within a factor 1 + B, or the cap), so that the container is warm: a fresh container on an
   overlay filesystem takes ~10 runs of `python3` to settle, and a tool measuring those runs
   disagrees with one that does not;
2. R rounds, each one runner block (`--runs N --warmup 1`) and one hyperfine block
   (`--warmup 3 --runs N`), in the order ABBA (runner first in even rounds, hyperfine first in
   odd ones), so slow drift of the host and the container's own settling hit both tools alike.

Per round: the median of each tool and their ratio runner / hyperfine (paired: same container,
seconds apart). Overall: the median of the R ratios and its 95 % CI by bootstrap over rounds
(`harness/stats.py`, with the interval widened for few rounds), and the verdict against a stated
tolerance: "agrees" when the whole CI is within [1 - tol, 1 + tol], "differs" when it is wholly
outside, else "inconclusive (more rounds)".

The script holds no user strings but the implementation's argv words, each shell-quoted. hyperfine
with `-N` runs no shell either: it splits its command string with the shell-words rules (POSIX
quoting), so the argv joined with `shlex.join` is split back into exactly the same words; that
string is then shell-quoted once more as one word of the script.
"""

from __future__ import annotations

import json
import math
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness import stats
from harness.engine import Engine
from harness.errors import EngineUnavailable, HarnessError, UsageError
from harness.runner import RUNNER, warmup_args
from harness.suite import Profile, Suite

TRUE = "/bin/true"
# Fixed commands calibrated besides the suite's implementations: the floor of process start-up.
COMMANDS = (TRUE,)
# The name of the /bin/true row (`--impl true`) and the image it runs in.
TRUE_NAME = "true"
TRUE_IMAGE = "rust"
HYPERFINE = "hyperfine"
HYPERFINE_WARMUP = 3
ROUND_WARMUP = 1
# The warm-up cap where a profile has a fixed warm-up: the calibration needs a warm container
# whatever the profile does.
DEFAULT_WARMUP_CAP = 30
AGREES = "agrees"
DIFFERS = "differs"
INCONCLUSIVE = "inconclusive (more rounds)"
TAIL = 800


@dataclass(frozen=True)
class Target:
    """One command to calibrate: an implementation of a process task, or /bin/true."""

    name: str
    image: str
    argv: tuple[str, ...]
    task: str | None = None
    expected_stdout: str | None = None


@dataclass(frozen=True)
class WarmupRule:
    """The runner's adaptive warm-up: at least `warmup` runs, at most `cap`, until the last
    `settle_k` are within a factor 1 + `band` of each other."""

    warmup: int
    cap: int
    settle_k: int
    band: float

    @classmethod
    def of(cls, profile: Profile) -> WarmupRule:
        warmup = max(1, profile.warmup)
        cap = profile.warmup_cap
        if cap <= warmup:  # a fixed warm-up in the profile: the calibration still warms up
            cap = max(warmup + 1, DEFAULT_WARMUP_CAP)
        return cls(warmup, cap, profile.settle_k, profile.settle_band)

    def args(self) -> list[str]:
        return warmup_args(self.warmup, self.cap, self.settle_k, self.band)

    def describe(self) -> str:
        return (
            f"warm-up {self.warmup}..{self.cap} runs until {self.settle_k} in a row are within "
            f"+{self.band * 100:g} %"
        )


@dataclass
class Measured:
    """What one container gave: the adaptive warm-up and, per round, each tool's wall times."""

    warmup_runs: int | None = None
    settled: bool | None = None
    runner: list[list[float]] = field(default_factory=list)  # ns, per round
    hyperfine: list[list[float]] = field(default_factory=list)  # ns, per round


# --- selection --------------------------------------------------------------------------------


def select_targets(
    suite: Suite,
    profile: Profile,
    tasks: Sequence[str] = (),
    images: Sequence[str] = (),
    impls: Sequence[str] = (),
) -> list[Target]:
    """The commands to calibrate: every implementation of every `process` task (warm starts;
    a cold twin is the same commands), filtered by task, image and implementation names, and
    /bin/true unless a filter leaves it out. Unknown names raise SuiteError; names that are no
    start-up task or implementation raise UsageError."""
    want_true = TRUE_NAME in impls
    named = [i for i in impls if i != TRUE_NAME]
    # Validates every name against the whole suite (SuiteError: unknown ... Known ...).
    cases = suite.cases(profile, list(tasks), list(images), named)
    if impls and not named:  # only `--impl true`
        cases = []
    process = [t.name for t in suite.tasks.values() if t.kind == "process" and not _is_cold_twin(t)]
    for t in tasks:
        if t in process:
            continue
        warm_of = getattr(suite.tasks[t], "warm_of", None)
        what = (
            f"the cold-start twin of '{warm_of}' (the same commands, first runs only)"
            if warm_of
            else f"a {suite.tasks[t].kind} task"
        )
        raise UsageError(
            f"task '{t}' is {what}: calibrate compares warm process start-up only. "
            f"Give one of: {', '.join(process) or 'none in this suite'}"
        )
    targets: list[Target] = []
    seen: set[str] = set()
    for case in cases:
        task = case.task
        if task.name not in process or case.impl.name in seen:
            continue
        seen.add(case.impl.name)
        targets.append(
            Target(
                name=case.impl.name,
                image=case.impl.image,
                argv=tuple(case.impl.argv),
                task=task.name,
                expected_stdout=task.expected_stdout,
            )
        )
    for i in named:
        if i not in seen:
            raise UsageError(
                f"implementation '{i}' is not one of a start-up (process) task: calibrate "
                f"compares process start-up only. Give one of: "
                f"{', '.join(sorted({TRUE_NAME, *_process_impls(suite, process)}))}"
            )
    # /bin/true runs in the rust image, or in an image of the selection that has start-up
    # implementations (so it holds hyperfine).
    true_image: str | None = TRUE_IMAGE if TRUE_IMAGE in suite.images else None
    if images and true_image not in images:
        true_image = next((t.image for t in targets), images[0] if want_true else None)
    if true_image and (want_true or not (tasks or impls)):
        targets.insert(0, Target(name=TRUE_NAME, image=true_image, argv=(TRUE,)))
    if not targets:
        raise UsageError(
            "no start-up implementation matches these filters. See `harness list` for the "
            "implementations of each task"
        )
    return targets


def _is_cold_twin(task: Any) -> bool:
    return getattr(task, "warm_of", None) is not None or getattr(task, "start", "warm") == "cold"


def _process_impls(suite: Suite, process: list[str]) -> list[str]:
    return [i.name for t in process for i in suite.tasks[t].impls]


# --- the script in the container --------------------------------------------------------------


def hyperfine_command(argv: Sequence[str]) -> str:
    """hyperfine -N's command string for argv: it splits it with the shell-words rules (POSIX
    quoting, no expansions), which `shlex.join` quoting round-trips exactly."""
    return shlex.join(argv)


def calibration_script(argv: Sequence[str], rounds: int, runs: int, rule: WarmupRule) -> str:
    """A fixed shell script: the adaptive warm-up, then `rounds` rounds of both tools, ABBA.

    Only argv's words come from outside (the suite), each quoted with shlex.quote; the rest is
    constants and integers. Sections start with a marker line: `#W`, `#R <round>`, `#H <round>`.
    """
    if not argv:
        raise ValueError("empty argv")
    cmd = shlex.join(argv)
    hf = shlex.quote(hyperfine_command(argv))
    lines = [
        "set -eu",
        "echo '#W'",
        shlex.join([RUNNER, "--runs", "1", *rule.args(), "--"]) + f" {cmd}",
    ]
    for r in range(int(rounds)):
        runner = [
            f"echo '#R {r}'",
            f"{RUNNER} --runs {int(runs)} --warmup {ROUND_WARMUP} -- {cmd}",
        ]
        hyper = [
            f"echo '#H {r}'",
            f"{HYPERFINE} -N --style none --warmup {HYPERFINE_WARMUP} --runs {int(runs)} "
            f"--export-json /tmp/h{r}.json -- {hf} >/dev/null",
            f"cat /tmp/h{r}.json",
            "echo",
        ]
        lines += runner + hyper if r % 2 == 0 else hyper + runner
    lines.append("echo '#E'")
    return "\n".join(lines) + "\n"


# --- parsing ----------------------------------------------------------------------------------


def _run_problem(obj: dict[str, Any], expected_stdout: str | None) -> str | None:
    """Why one runner line is not a good run (None if it is)."""
    if "error" in obj:
        return f"the runner could not start it: {obj['error']}"
    if obj.get("timed_out"):
        return "it timed out under the runner"
    if obj.get("signal") is not None:
        return f"it was killed by signal {obj['signal']}"
    if obj.get("exit_code") != 0:
        tail = str(obj.get("stderr_tail") or "").strip()[-TAIL:]
        status = f"it exited with status {obj.get('exit_code')} under the runner"
        return status + (f": {tail}" if tail else "")
    if expected_stdout is not None and obj.get("stdout") != expected_stdout:
        return f"it printed {obj.get('stdout')!r}, not {expected_stdout!r}"
    return None


def _sections(stdout: str) -> list[tuple[str, int, list[str]]]:
    """The script's output cut at its marker lines: (marker, round or -1, lines)."""
    out: list[tuple[str, int, list[str]]] = []
    for line in stdout.splitlines():
        if line.startswith("#"):
            parts = line[1:].split()
            mark = parts[0] if parts else ""
            r = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
            out.append((mark, r, []))
        elif out:
            out[-1][2].append(line)
    return out


def _runner_runs(lines: list[str], name: str, expected_stdout: str | None) -> list[dict[str, Any]]:
    """The measured runs of one runner block; HarnessError on any failed run."""
    runs = []
    for line in lines:
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise HarnessError(
                f"calibrating {name}: the runner printed a line that is not JSON: {line[:200]!r}"
            ) from e
        problem = _run_problem(obj, expected_stdout)
        if problem:
            raise HarnessError(f"calibrating {name} failed: {problem}")
        if not obj.get("warmup"):
            runs.append(obj)
    return runs


def _hyperfine_times(lines: list[str], name: str, r: int) -> list[float]:
    """Wall times (ns) of one hyperfine block, from its --export-json file."""
    text = "\n".join(lines).strip()
    if not text:
        return []
    try:
        result = json.loads(text)["results"][0]
        times = [float(t) * 1e9 for t in result["times"]]
    except (json.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as e:
        raise HarnessError(
            f"calibrating {name}: hyperfine's JSON of round {r} is unreadable ({e!r})"
        ) from e
    bad = [c for c in result.get("exit_codes") or [] if c != 0]
    if bad:
        raise HarnessError(
            f"calibrating {name} failed: it exited with status {bad[0]} under hyperfine"
        )
    return times


def parse_calibration(
    stdout: str, name: str = "the command", expected_stdout: str | None = None
) -> Measured:
    """The script's output as wall times in ns per round and tool, and the adaptive warm-up.
    A failed run (runner error, non-zero exit, signal, timeout, wrong output) raises
    HarnessError naming `name`."""
    out = Measured()
    runner: dict[int, list[float]] = {}
    hyper: dict[int, list[float]] = {}
    for mark, r, lines in _sections(stdout):
        if mark == "W":
            warm = _runner_runs(lines, name, expected_stdout)
            if warm:
                out.warmup_runs = warm[0].get("warmup_runs")
                settled = warm[0].get("settled")
                out.settled = None if settled is None else bool(settled)
        elif mark == "R":
            runner[r] = [float(o["wall_ns"]) for o in _runner_runs(lines, name, expected_stdout)]
        elif mark == "H":
            hyper[r] = _hyperfine_times(lines, name, r)
    for r in sorted(set(runner) | set(hyper)):
        out.runner.append(runner.get(r, []))
        out.hyperfine.append(hyper.get(r, []))
    return out


# --- statistics -------------------------------------------------------------------------------


def calibration_verdict(ci_low: float, ci_high: float, tolerance: float) -> str:
    """The verdict on the ratio runner / hyperfine: "agrees" if its CI lies within
    [1 - tol, 1 + tol], "differs" if wholly outside, else "inconclusive (more rounds)" (also for
    a CI that is not a number)."""
    lo_ok, hi_ok = 1 - tolerance, 1 + tolerance
    if math.isnan(ci_low) or math.isnan(ci_high):
        return INCONCLUSIVE
    if lo_ok <= ci_low and ci_high <= hi_ok:
        return AGREES
    if ci_high < lo_ok or ci_low > hi_ok:
        return DIFFERS
    return INCONCLUSIVE


def summarize(
    target: Target, measured: Measured, tolerance: float, seed: int = 0
) -> dict[str, Any]:
    """One row: the pooled medians of both tools, the paired per-round ratios, their median with
    its 95 % CI (bootstrap over rounds) and the verdict."""
    pairs = [(r, h) for r, h in zip(measured.runner, measured.hyperfine, strict=True) if r and h]
    r_med = [stats.median(r) for r, _ in pairs]
    h_med = [stats.median(h) for _, h in pairs]
    ratios = [a / b for a, b in zip(r_med, h_med, strict=True) if b > 0]
    if ratios:
        ratio, lo, hi = stats.hierarchical_median_ci(
            [[[q]] for q in ratios], seed=stats.seed_for(seed, "calibrate", target.name)
        )
    else:
        ratio = lo = hi = math.nan
    all_r = [v for r, _ in pairs for v in r]
    all_h = [v for _, h in pairs for v in h]
    return {
        "impl": target.name,
        "task": target.task,
        "image": target.image,
        "argv": list(target.argv),
        "rounds": len(ratios),
        "runs_per_round": max((len(r) for r, _ in pairs), default=0),
        "runner_median_ns": stats.median(all_r),
        "hyperfine_median_ns": stats.median(all_h),
        "runner_min_ns": min(all_r, default=math.nan),
        "hyperfine_min_ns": min(all_h, default=math.nan),
        "round_runner_median_ns": r_med,
        "round_hyperfine_median_ns": h_med,
        "round_ratios": ratios,
        "ratio": ratio,
        "ratio_ci": [lo, hi],
        "difference_pct": (ratio - 1) * 100,
        "warmup_runs": measured.warmup_runs,
        "warmup_settled": measured.settled,
        "tolerance": tolerance,
        "verdict": calibration_verdict(lo, hi, tolerance),
    }


# --- running ----------------------------------------------------------------------------------


def calibrate_one(
    engine: Engine,
    tag: str,
    target: Target,
    cpuset: str,
    *,
    rounds: int,
    runs: int,
    rule: WarmupRule,
    tolerance: float,
    seed: int = 0,
) -> dict[str, Any]:
    """One container for one target; HarnessError naming it when its command fails."""
    script = calibration_script(target.argv, rounds, runs, rule)
    res = engine.run(tag, ["sh", "-c", script], run_id="calibrate", cpuset=cpuset)
    where = f"{target.name} in {tag}"
    tail = res.stderr.strip()[-TAIL:]
    if res.timed_out:
        raise HarnessError(f"calibrating {where} timed out. Its stderr ends:\n{tail}")
    # A failed run the runner reported says most; then hyperfine's own error on stderr.
    measured = parse_calibration(res.stdout, where, target.expected_stdout)
    if res.exit_code != 0:
        what = "out of memory" if res.oom_killed else f"exit status {res.exit_code}"
        raise HarnessError(f"calibrating {where} failed ({what}): {tail or 'no output on stderr'}")
    if len(measured.runner) < rounds or not all(measured.runner) or not all(measured.hyperfine):
        raise HarnessError(
            f"calibrating {where} gave fewer than {rounds} complete rounds: {tail or 'no stderr'}"
        )
    row = summarize(target, measured, tolerance, seed)
    row["tag"] = tag
    row["cpuset"] = cpuset
    row["warmup_rule"] = {
        "warmup": rule.warmup,
        "warmup_cap": rule.cap,
        "settle_k": rule.settle_k,
        "settle_band": rule.band,
    }
    return row


def calibrate(
    engine: Engine,
    tags: dict[str, str],
    targets: Sequence[Target],
    cpuset: str,
    *,
    rounds: int,
    runs: int,
    rule: WarmupRule,
    tolerance: float,
    log: Callable[[str], None] = lambda _line: None,
    seed: int = 0,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every target in its own container, one after another, with a progress line before and
    after each (a python one takes about a minute). Returns the rows and why each target that
    failed did (the others go on); a lost engine stops it all."""
    rows, failures = [], []
    for i, target in enumerate(targets, 1):
        tag = tags[target.image]
        log(f"calibrate {i}/{len(targets)}: {target.name} in {tag} on cpuset {cpuset} ...")
        start = time.monotonic()
        try:
            row = calibrate_one(
                engine,
                tag,
                target,
                cpuset,
                rounds=rounds,
                runs=runs,
                rule=rule,
                tolerance=tolerance,
                seed=seed,
            )
        except EngineUnavailable:
            raise
        except HarnessError as e:
            log(f"  {target.name}: FAILED: {e}")
            failures.append(str(e))
            continue
        row["seconds"] = round(time.monotonic() - start, 1)
        lo, hi = row["ratio_ci"]
        log(
            f"  {target.name}: runner/hyperfine {row['ratio']:.3f} [{lo:.3f}, {hi:.3f}], "
            f"warm-up {format_warmup(row)}, {row['verdict']} ({row['seconds']:.0f} s)"
        )
        rows.append(row)
    return rows, failures


def format_warmup(row: dict[str, Any]) -> str:
    n = row.get("warmup_runs")
    if n is None:
        return "-"
    settled = row.get("warmup_settled")
    return f"{n} ({'settled' if settled else 'cap' if settled is False else 'fixed'})"


def validate_settings(rounds: int, runs: int, tolerance: float) -> None:
    if rounds < 2:
        raise UsageError(f"--rounds {rounds} is too few. Give at least 2 (6 or more for a CI)")
    if runs < 3:
        raise UsageError(f"--runs {runs} is too few. Give at least 3 per round and tool")
    if not (0 < tolerance < 1):
        raise UsageError(f"--tolerance {tolerance} is not a fraction. Give e.g. 0.05 for 5 %")


def _plain(x: Any) -> Any:
    """NaN as null, so the JSON is standard."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def to_json(rows: Sequence[dict[str, Any]], settings: dict[str, Any]) -> str:
    """The rows and the settings that made them, as one JSON document."""
    return json.dumps(_plain({"schema": 1, **settings, "rows": list(rows)}), indent=2) + "\n"


def summary_line(rows: Sequence[dict[str, Any]], tolerance: float) -> str:
    agree = sum(r["verdict"] == AGREES for r in rows)
    differ = [r["impl"] for r in rows if r["verdict"] == DIFFERS]
    unsure = [r["impl"] for r in rows if r["verdict"] == INCONCLUSIVE]
    line = f"{agree} of {len(rows)} agree within ±{tolerance * 100:g} %"
    if differ:
        line += f"; differ: {', '.join(differ)}"
    if unsure:
        line += f"; inconclusive (more rounds): {', '.join(unsure)}"
    return line + "."


def command_line(row: dict[str, Any]) -> str:
    """What a row measured, as a shell would write it: '  py-bare: python3 -I -S -c ...'."""
    return f"  {row['impl']}: {shlex.join(row['argv'])}"
