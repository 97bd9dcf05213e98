"""Running cases: inputs into the data volume, then container sessions, interleaved.

A container session runs the kit's measuring runner (a static Rust program copied into every
image) around W + R process runs of one case. The runner prints one JSON line per process run
(wall time, the child's own rusage, exit status, its stdout); the harness turns those into
samples, checks checksums against the suite's reference values and appends them to the bundle
after every session, so an interruption loses at most the session in flight.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import docker.errors
from docker.utils import parse_bytes

from harness.engine import OUTPUT_MOUNT, Engine, RunResult
from harness.errors import HarnessError
from harness.kinds import case_profile, kind_of, metric_of
from harness.kinds.context import Executor, RunOptions, SessionContext
from harness.kinds.kernel import last_json_line
from harness.schema import SAMPLE_SCHEMA
from harness.settle import iteration_warmup
from harness.store import CASES, SAMPLES, Bundle, atomic_write
from harness.suite import Case, Profile, Suite

RUNNER = "/opt/rpb/bin/runner"
DATAGEN = "/opt/rpb/bin/datagen"
TAIL = 2000
__all__ = ["Executor", "RunOptions", "SessionContext"]


def warmup_args(warmup: int, cap: int, settle_k: int, band: float) -> list[str]:
    """The runner's options for a warm-up found from the data (harness/settle.py): at least
    `warmup` runs, at most `cap`, until the last `settle_k` are within a factor 1 + `band`."""
    return [
        "--warmup",
        str(warmup),
        "--warmup-cap",
        str(cap),
        "--settle",
        str(settle_k),
        "--band",
        f"{band:g}",
    ]


def runner_argv(
    profile: Profile, timeout_s: float, argv: list[str], *, settle: bool = False
) -> list[str]:
    """The runner around `argv`: the profile's warm-up and runs; with `settle`, a warm-up found
    from the data (harness/settle.py) when the profile gives it a cap."""
    warm = ["--warmup", str(profile.warmup)]
    if settle and profile.adaptive_warmup:
        warm = warmup_args(
            profile.warmup, profile.warmup_cap, profile.settle_k, profile.settle_band
        )
    return [RUNNER, "--runs", str(profile.runs), *warm, "--timeout-s", str(timeout_s), "--", *argv]


def schedule(
    cases: list[Case], sessions: int | Callable[[Case], int], seed: int
) -> list[tuple[Case, int]]:
    """Container sessions in run order: tasks one after another, and within a task the
    sessions of all its implementations and sizes shuffled (A B B A ..., not A A B B), so slow
    drift of the host hits every language alike. `sessions` is a count, or one per case."""
    rng = random.Random(seed)
    order: list[tuple[Case, int]] = []
    by_task: dict[str, list[tuple[Case, int]]] = {}
    for c in cases:
        n = sessions(c) if callable(sessions) else sessions
        by_task.setdefault(c.task.name, []).extend((c, s) for s in range(n))
    for block in by_task.values():
        rng.shuffle(block)
        order.extend(block)
    return order


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def memory_bytes(text: str) -> int | None:
    """A Docker memory size ('256m', '4g', '1048576') in bytes, by the Docker SDK's own
    parser; None if it is not one."""
    try:
        n = parse_bytes(text.strip())
    except (docker.errors.DockerException, ValueError, OverflowError, TypeError):
        return None
    return n if isinstance(n, int) and n > 0 else None


# A process killed by SIGKILL whose peak RSS came this close to the container's memory limit
# was the OOM killer's choice (the runner and the kernel's own charges take the rest).
OOM_SHARE = 0.9


def run_failure(run: dict[str, Any], oom_killed: bool, memory: str | None = None) -> str:
    """Why one process run failed, from its runner line (exit status, signal or timeout).

    A SIGKILL that is not the runner's timeout is named "out of memory" when the engine says
    the container hit its limit (State.OOMKilled; not every engine reports it for a child of
    PID 1) or when the process's own peak RSS reached the limit `memory`.
    """
    if run.get("timed_out"):
        return "timed out (killed by the runner at the per-run --timeout)"
    sig = run.get("signal")
    if sig is None:
        return f"exit status {run.get('exit_code')}"
    why = f"killed by signal {sig} ({signal_name(int(sig))})"
    if sig != signal.SIGKILL:
        return why
    if oom_killed:
        return f"{why}: out of memory, the container hit its memory limit"
    limit = memory_bytes(memory) if memory else None
    rss_kb = run.get("maxrss_kb")
    if limit and isinstance(rss_kb, int) and rss_kb * 1024 >= OOM_SHARE * limit:
        return (
            f"{why}: out of memory, its peak RSS {rss_kb / 1024:.0f} MiB reached the "
            f"container's {memory} memory limit"
        )
    return f"{why}, not by the runner's timeout: the memory limit or a kill from outside"


def session_failure(result: RunResult, n_samples: int) -> str | None:
    """Why a container session failed as a whole (the runner itself did not finish)."""
    tail = result.stderr.strip()[-TAIL:]
    detail = f": {tail}" if tail else ""
    if result.timed_out:
        return "the container session timed out"
    code = result.exit_code
    if code is None:
        return "the container ended without an exit status (removed from outside?)"
    if code == 0:
        return None
    if result.oom_killed:
        return (
            f"the container ran out of memory (exit status {code}) after {n_samples} process "
            f"runs{detail}"
        )
    if code > 128:
        # 128 + N: the runner, PID 1 of the container, got signal N, which it never sends
        # itself: `docker kill`/`docker stop` or the engine from outside the run.
        return (
            f"the container was killed by signal {code - 128} ({signal_name(code - 128)}) "
            f"from outside the run (exit status {code}) after {n_samples} process runs{detail}"
        )
    return f"runner exited with status {code}{detail}"


def samples_from_output(
    case: Case,
    session: int,
    image: str,
    lang: str,
    result: RunResult,
    *,
    memory: str | None = None,
    profile: Profile | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Turn the runner's JSON lines into samples; returns (samples, failure reason or None).

    The case's kind parses what each process printed (its checksum, and for a kernel its
    timings). `memory` is the container's memory limit, to tell an out-of-memory kill by its
    peak RSS. With `profile`, a kernel's warm-up iterations are found by the settling rule
    (harness/settle.py) and recorded in the sample (`warmup_iters`, `iters_settled`); a
    measured process run keeps how many warm-up runs its session needed (`warmup_runs`) and
    whether they settled (`settled`; None for a fixed count).
    """
    samples: list[dict[str, Any]] = []
    reason: str | None = None
    kind = kind_of(case.task)
    for line in result.stdout.splitlines():
        if not line.strip():
            continue
        try:
            run = json.loads(line)
        except json.JSONDecodeError:
            reason = reason or f"runner printed a line that is not JSON: {line[:200]!r}"
            continue
        if "error" in run:
            reason = reason or f"runner: {run['error']}"
            continue
        parsed: dict[str, Any] = kind.parse(run)  # type: ignore[attr-defined]
        ok_exit = run.get("exit_code") == 0 and not run.get("timed_out")
        checksum = parsed.get("checksum")
        sample = {
            "schema": SAMPLE_SCHEMA,
            "kind": kind.name,
            "case_id": case.case_id,
            "task": case.task.name,
            "impl": case.impl.name,
            "lang": lang,
            "route": case.impl.route,
            "image": image,
            "size": case.size,
            "threads": case.threads,
            "session": session,
            "run": run.get("run"),
            "warmup": bool(run.get("warmup")),
            "wall_ns": run.get("wall_ns"),
            "user_ns": run.get("user_ns"),
            "sys_ns": run.get("sys_ns"),
            "maxrss_kb": run.get("maxrss_kb"),
            "exit_code": run.get("exit_code"),
            "signal": run.get("signal"),
            "timed_out": bool(run.get("timed_out")),
            "setup_ns": parsed.get("setup_ns"),
            "iter_ns": parsed.get("iter_ns") or [],
            "checksum": checksum,
            "checksum_ok": ok_exit and case.checksum_agrees(checksum),
            "stderr_tail": run.get("stderr_tail", "")[-TAIL:] if not ok_exit else "",
        }
        if parsed.get("phases_ns"):
            sample["phases_ns"] = parsed["phases_ns"]
        if "warmup_runs" in run:
            sample["warmup_runs"] = run.get("warmup_runs")
            sample["settled"] = run.get("settled")
        if profile is not None and sample["iter_ns"]:
            drop, found = iteration_warmup(
                sample["iter_ns"], profile.settle_k, profile.settle_band, profile.warmup
            )
            sample["warmup_iters"], sample["iters_settled"] = drop, found
        samples.append(sample)
        if not ok_exit and reason is None:
            reason = run_failure(run, result.oom_killed, memory)
    reason = reason or session_failure(result, len(samples))
    if not samples and reason is None:
        reason = "the runner printed no samples"
    return samples, reason


def runner_session(
    case: Case, index: int, ctx: SessionContext
) -> tuple[list[dict[str, Any]], str | None]:
    """One container session of a process or kernel case: the measuring runner around the
    profile's warm-up and measured process runs of the program."""
    values = {"outdir": OUTPUT_MOUNT} if case.task.output == "disk" else {}
    settle = case.task.kind == "process"
    argv = runner_argv(
        ctx.profile, ctx.opts.timeout_s, case.argv(ctx.profile.iters, **values), settle=settle
    )
    result = ctx.execute(ctx.image(case), argv, case)
    return samples_from_output(
        case,
        index,
        case.impl.image,
        ctx.lang(case),
        result,
        memory=ctx.opts.limits.memory,
        profile=ctx.profile,
    )


def case_status(case: Case, samples: list[dict[str, Any]], reasons: list[str]) -> dict[str, Any]:
    """The case's row for cases.jsonl: ok, failed (with why), or invalid (wrong checksum)."""
    stderr = next((s["stderr_tail"] for s in samples if s.get("stderr_tail")), "")
    row: dict[str, Any] = {
        "case_id": case.case_id,
        "task": case.task.name,
        "impl": case.impl.name,
        "size": case.size,
        "status": "ok",
        "reason": None,
        "stderr_tail": stderr or None,
        "expected_checksum": case.expected_checksum(),
        "checksums": sorted({str(s["checksum"]) for s in samples if s["checksum"] is not None}),
    }
    if reasons:
        row.update(status="failed", reason="; ".join(sorted(set(reasons))))
    elif not all(s["checksum_ok"] for s in samples):
        got = ", ".join(repr(c) for c in row["checksums"]) or "none"
        row.update(
            status="invalid",
            reason=f"checksum mismatch ({case.task.checksum.describe()}): expected "
            f"{case.expected_checksum()!r}, got {got}",
        )
    return row


# ----- inputs ----------------------------------------------------------------------------------
def data_volume_name(suite: Suite, generator_id: str = "") -> str:
    """The data volume of a suite's inputs, keyed to what makes them: every task's generator,
    seed and file pattern, and the ID of the image whose datagen writes them (a rebuilt
    generator writes a fresh volume instead of trusting old files)."""
    specs = sorted(
        (t.name, t.input.generator, t.input.seed, t.input.file)
        for t in suite.tasks.values()
        if t.input is not None
    )
    key = repr((specs, generator_id)) if generator_id else repr(specs)
    return "rpb-data-" + hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class InputJob:
    """One input file a run needs: where it goes, the datagen argv that writes it, and the
    suite's reference checksum the generator must report (None: the generator's checksum is
    not the task's answer). The Docker and the local backend share these."""

    path: str
    argv: tuple[str, ...]
    reference: str | None


def input_jobs(cases: list[Case]) -> list[InputJob]:
    """The input files the cases need, once each (A/A twins and tasks reading the same file
    share it), in a stable order. Each case's own task says how its input is made: twin tasks
    are not in `suite.tasks`."""
    jobs: dict[str, InputJob] = {}
    for c in cases:
        spec, n = c.task.input, c.size
        if spec is None or n is None:
            continue
        path = spec.path_for(n)
        argv = (DATAGEN, spec.generator, "--n", str(n), "--seed", str(spec.seed), "--out", path)
        ref = c.task.reference.get(n) if spec.checks_reference else None
        if path not in jobs or (jobs[path].reference is None and ref is not None):
            jobs[path] = InputJob(path, argv, ref)
    return [jobs[p] for p in sorted(jobs)]


def check_generated(job: InputJob, res: RunResult) -> None:
    """Raise unless datagen succeeded and, where the suite says so, reported the reference."""
    info = last_json_line(res.stdout) if res.exit_code == 0 else None
    if info is None:
        raise HarnessError(
            f"generating {job.path} failed (exit status {res.exit_code}): {res.stderr[-TAIL:]}"
        )
    if job.reference is not None and str(info.get("checksum")) != job.reference:
        raise HarnessError(
            f"generated input {job.path} has checksum {info.get('checksum')}, but the suite's "
            f"reference is {job.reference}. The generator changed: fix it or the "
            "suite's reference values."
        )


# Prints "<sha256>  <path>" and then "<path>.sha256 <recorded>" for each present path.
_VERIFY = (
    'for f in "$@"; do [ -f "$f" ] || continue; sha256sum "$f"; '
    'printf "%s.sha256 %s\n" "$f" "$(cat "$f.sha256" 2>/dev/null)"; done'
)
_RECORD = 'sha256sum "$1" | cut -d" " -f1 > "$1.sha256.tmp" && mv "$1.sha256.tmp" "$1.sha256"'


def verified_inputs(output: str) -> set[str]:
    """The paths whose file's sha256 (a `sha256sum` line) equals the one recorded beside it
    when it was generated (a `PATH.sha256 DIGEST` line), from `_VERIFY`'s output."""
    actual: dict[str, str] = {}
    recorded: dict[str, str] = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue
        first, second = parts
        if first.endswith(".sha256") and first.startswith("/"):
            recorded[first.removesuffix(".sha256")] = second
        else:
            actual[second] = first
    return {p for p, digest in actual.items() if recorded.get(p) == digest}


def prepare_inputs(
    engine: Engine,
    suite: Suite,
    cases: list[Case],
    datagen_image: str,
    run_id: str,
    *,
    log: Callable[[str], None],
) -> str:
    """Generate every input the cases need into the shared data volume, once. A file made
    before is used again only when its sha256 still equals the one recorded when it was made;
    otherwise it is made again. Where the suite says so, a new file's generator checksum must
    equal the task's reference."""
    image = engine.require_image(datagen_image)
    volume = data_volume_name(suite, str(image["id"]))
    if not engine.volume_exists(volume):
        engine.create_volume(volume, {"rpb.data": "inputs"})
    jobs = input_jobs(cases)
    if not jobs:
        return volume
    check = engine.run(
        datagen_image,
        ["sh", "-c", _VERIFY, "verify", *(j.path for j in jobs)],
        run_id=run_id,
        cpuset=None,
        data_volume=volume,
    )
    good = verified_inputs(check.stdout)
    for job in jobs:
        if job.path in good:
            continue
        log(f"generating input {job.path}")
        argv = list(job.argv)
        res = engine.run(
            datagen_image,
            argv,
            run_id=run_id,
            cpuset=None,
            data_volume=volume,
            data_read_only=False,
            user="0:0",
        )
        check_generated(job, res)
        rec = engine.run(
            datagen_image,
            ["sh", "-c", _RECORD, "record", job.path],
            run_id=run_id,
            cpuset=None,
            data_volume=volume,
            data_read_only=False,
            user="0:0",
        )
        if rec.exit_code != 0:
            raise HarnessError(f"recording the checksum of {job.path} failed: {rec.stderr[-TAIL:]}")
    return volume


# ----- the run loop ----------------------------------------------------------------------------
def session_timeout(profile: Profile, opts: RunOptions) -> float:
    """How long one session may take in all: every process run at its own timeout, plus a
    minute for the session around them."""
    return (profile.runs + max(profile.warmup, profile.warmup_cap)) * opts.timeout_s + 60


def case_limits(case: Case, opts: RunOptions) -> Any:
    """The run's container limits with the task's own pids limit, where it sets one."""
    return replace(opts.limits, pids=case.task.pids) if case.task.pids else opts.limits


def docker_executor(
    engine: Engine,
    run_id: str,
    opts: RunOptions,
    volume: str | None,
    profile: Profile,
    *,
    output_volume: str | None = None,
) -> Executor:
    timeout_s = session_timeout(profile, opts)

    def execute(image: str, argv: list[str], case: Case) -> RunResult:
        return engine.run(
            image,
            argv,
            run_id=run_id,
            cpuset=opts.cpuset,
            labels={"rpb.case": case.case_id},
            limits=case_limits(case, opts),
            data_volume=volume,
            output_volume=output_volume if case.task.output == "disk" else None,
            timeout_s=timeout_s,
        )

    return execute


def output_volume_name(run_id: str) -> str:
    return f"rpb-out-{run_id.lower()}"


def prepare_output_volume(engine: Engine, cases: list[Case], image: str, run_id: str) -> str | None:
    """A disk-backed volume that the run's tasks with `output = "disk"` write into (a tmpfs
    would hide the cost of the disk), writable by the benchmarks' user; None when no task
    writes to disk. The run removes it when it ends."""
    if not any(c.task.output == "disk" for c in cases):
        return None
    name = output_volume_name(run_id)
    if not engine.volume_exists(name):
        engine.create_volume(name, {"rpb.output": run_id})
    # The volume's root belongs to root: its owner opens it to the benchmarks' user (sticky,
    # like /tmp), with every capability dropped.
    res = engine.run(
        image,
        ["chmod", "1777", OUTPUT_MOUNT],
        run_id=run_id,
        cpuset=None,
        output_volume=name,
        user="0:0",
    )
    if res.exit_code != 0:
        raise HarnessError(f"preparing the output volume {name} failed: {res.stderr[-TAIL:]}")
    return name


class RunInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM during a run (a KeyboardInterrupt, so no `except Exception` eats it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal_name(signum))
        self.signum = signum


@dataclass
class _Held:
    depth: int = 0
    pending: int | None = None


_HELD = _Held()


def interrupt_handler(signum: int, frame: object) -> None:
    """The SIGINT/SIGTERM handler of a run: stops it with RunInterrupted, but not while
    `signals_held` writes rows (Python runs handlers in the main thread, between bytecodes,
    whichever thread the kernel delivered the signal to, so a flag is enough)."""
    if _HELD.depth:
        _HELD.pending = signum
        return
    raise RunInterrupted(signum)


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold an interruption back while a session's rows are written: it lands just after the
    write, never inside it, so no line of the bundle is torn."""
    _HELD.depth += 1
    try:
        yield
    finally:
        _HELD.depth -= 1
    if _HELD.depth == 0 and _HELD.pending is not None:
        signum, _HELD.pending = _HELD.pending, None
        raise RunInterrupted(signum)


@dataclass
class _Progress:
    """Where each unfinished case stands in a run."""

    planned: dict[str, int]
    done: dict[str, int]
    spent: dict[str, float]
    collected: dict[str, list[dict[str, Any]]]
    reasons: dict[str, list[str]]

    @classmethod
    def of(cls, case_ids: Collection[str], sessions: Mapping[str, int]) -> _Progress:
        return cls(
            planned={cid: sessions[cid] for cid in case_ids},
            done=dict.fromkeys(case_ids, 0),
            spent=dict.fromkeys(case_ids, 0.0),
            collected={cid: [] for cid in case_ids},
            reasons={cid: [] for cid in case_ids},
        )


def run_cases(
    bundle: Bundle,
    suite: Suite,
    cases: list[Case],
    profile: Profile,
    tags: dict[str, str],
    *,
    execute: Executor,
    opts: RunOptions,
    on_session: Callable[[Case, int, int, int], None] | None = None,
    on_case: Callable[[dict[str, Any]], None] | None = None,
    finished: Collection[str] = (),
    engine: Engine | None = None,
    run_id: str = "",
) -> list[dict[str, Any]]:
    """Run every session of every case in interleaved order; returns the new case rows.

    Each session is run by the case's kind (harness/kinds/). Adaptive stopping works per
    comparison group, the implementations of one task at one size: while any of them needs
    another session, every one of them gets one, in a new shuffled round, so the two sides of
    a speed-up always see the same rounds of the host (a case that stopped early would
    otherwise be compared with sessions run at another time). A failing case stops at once;
    the others stop together, each with its own reason.

    Cases named in `finished` (a resumed run's cases.jsonl) are skipped; the others keep their
    places in the full run's order, so a resumed run interleaves as the first one would have.
    A failing session (crash, timeout, killed container) fails its case, never the run.
    `engine` is needed by kinds with containers of their own (service); `run_id` labels them.
    """
    profiles = {c.case_id: case_profile(c, profile) for c in cases}
    order = [
        (c, s)
        for c, s in schedule(cases, lambda c: profiles[c.case_id].sessions, opts.seed)
        if c.case_id not in finished
    ]
    todo = {c.case_id: c for c in cases if c.case_id not in finished}
    ctx = SessionContext(suite, profile, opts, tags, execute, engine, run_id)
    _prepare_kinds(bundle, list(todo.values()), ctx)
    groups: dict[tuple[str, int | None], list[str]] = {}
    for c in todo.values():
        groups.setdefault((c.task.name, c.size), []).append(c.case_id)
    state = _Progress.of(todo, {cid: profiles[cid].sessions for cid in todo})
    rows: list[dict[str, Any]] = []
    rng = random.Random(opts.seed + 1)
    executed = 0
    while order:
        more: list[tuple[Case, int]] = []
        for j, (case, session) in enumerate(order):
            if on_session:
                # Sessions known so far: done, left in this round, and added for the next.
                on_session(case, session, executed, executed + len(order) - j + len(more))
            own = profiles[case.case_id]
            samples = _one_session(case, session, replace(ctx, profile=own), state)
            executed += 1
            group = groups[(case.task.name, case.size)]
            new_rows = _settle_group(group, todo, state, profiles, more)
            rows.extend(new_rows)
            with signals_held():
                bundle.append_samples(samples)
                for row in new_rows:
                    bundle.append_case(row)
            for row in new_rows:
                if on_case:
                    on_case(row)
        # Extra sessions run as a new round, shuffled like the first (A B B A ...).
        rng.shuffle(more)
        order = more
    return rows


def _prepare_kinds(bundle: Bundle, cases: list[Case], ctx: SessionContext) -> None:
    """Let kinds that need it look at all their cases before the first session (the service
    kind finds its request rates); what they found is kept in the manifest, so a resumed run
    uses the same."""
    kept = bundle.manifest().get("kind_state") or {}
    for name in dict.fromkeys(kind_of(c.task).name for c in cases):
        kind = kind_of(next(c.task for c in cases if c.task.kind == name))
        prepare = getattr(kind, "prepare", None)
        if prepare is None:
            continue
        ctx.state.update(kept.get(name) or {})
        found = prepare([c for c in cases if c.task.kind == name], ctx)
        if found:
            # Every kind's state so far: a later kind's update must not drop an earlier one's.
            kept = {**kept, name: found}
            bundle.update_manifest(kind_state=kept)


def _one_session(
    case: Case, session: int, ctx: SessionContext, state: _Progress
) -> list[dict[str, Any]]:
    cid = case.case_id
    t0 = time.monotonic()
    samples, reason = kind_of(case.task).session(case, session, ctx)
    state.spent[cid] += time.monotonic() - t0
    state.collected[cid].extend(samples)
    if reason:
        state.reasons[cid].append(reason)
    state.done[cid] += 1
    return samples


def _settle_group(
    group: list[str],
    todo: dict[str, Case],
    state: _Progress,
    profiles: Mapping[str, Profile],
    more: list[tuple[Case, int]],
) -> list[dict[str, Any]]:
    """Once every member of a comparison group has had its planned sessions: either every
    member gets one more (some member needs it), or each stops with its own reason. Returns
    the rows of the members that stopped (and drops them from the group)."""
    if not all(state.done[m] == state.planned[m] for m in group):
        return []
    whys = {
        m: stop_reason(
            state.collected[m], profiles[m], state.done[m], state.spent[m], state.reasons[m]
        )
        for m in group
    }
    going_on = any(why is None for why in whys.values())
    rows: list[dict[str, Any]] = []
    for m in list(group):
        why = whys[m]
        if going_on and why != "failed":
            state.planned[m] += 1
            more.append((todo[m], state.done[m]))
            continue
        assert why is not None  # a case that needs more goes on with its group
        rows.append(finish_case(todo[m], state.collected[m], state.reasons[m], state.done[m], why))
        group.remove(m)
    return rows


def finish_case(
    case: Case, samples: list[dict[str, Any]], reasons: list[str], sessions: int, why: str
) -> dict[str, Any]:
    """The case's row once it stops: status, sessions, why it stopped, its median and the
    warnings a reader of its numbers needs (outliers)."""
    from harness.frames import case_sessions, case_warnings
    from harness.stats import median

    row = case_status(case, samples, reasons)
    row.update(sessions=sessions, stop_reason=why, warnings=[], **warmup_record(samples))
    if row["status"] == "ok":
        values = [v for session in case_sessions(samples) for run in session for v in run]
        row.update(
            metric=metric_of(samples),
            median_ns=median(values) if values else None,
            warnings=case_warnings(samples),
        )
    return row


def warmup_record(samples: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """What the case row keeps of its warm-up: per session, the warm-up runs the runner made
    and whether they settled (process cases); per measured run, the leading iterations the
    settling rule dropped and whether it found them (kernel cases)."""
    sessions: dict[int, tuple[Any, Any]] = {}
    iters: list[tuple[Any, Any]] = []
    for s in samples:
        if s.get("warmup"):
            continue
        if "warmup_runs" in s:
            sessions.setdefault(int(s["session"]), (s["warmup_runs"], s.get("settled")))
        if "warmup_iters" in s:
            iters.append((s["warmup_iters"], s.get("iters_settled")))
    out: dict[str, list[Any]] = {}
    # Only a warm-up found from the data is worth keeping (a fixed count is in the profile).
    if any(ok is not None for _, ok in sessions.values()):
        ordered = [sessions[k] for k in sorted(sessions)]
        out.update(warmup_runs=[n for n, _ in ordered], warmup_settled=[ok for _, ok in ordered])
    if iters:
        out.update(warmup_iters=[n for n, _ in iters], iters_settled=[ok for _, ok in iters])
    return out


def stop_reason(  # noqa: PLR0911 - one return per reason to stop
    samples: list[dict[str, Any]],
    profile: Profile,
    sessions_done: int,
    spent_s: float,
    failures: list[str],
) -> str | None:
    """Why a case stops after `sessions_done` sessions, or None when it needs another.

    A failing case stops at once. Otherwise it stops when the 95 % CI of its median (kernel
    time per iteration, else wall time; hierarchical bootstrap over sessions and runs) is
    within the profile's target half-width, or when its session cap or time budget is reached.
    """
    if failures:
        return "failed"
    if sessions_done < profile.sessions:
        return None
    cap = profile.session_cap
    if cap == profile.sessions:
        return f"fixed number of sessions ({cap})"
    from harness.frames import case_sessions
    from harness.stats import hierarchical_median_ci

    sessions = case_sessions(samples)
    if not sessions:
        return "no valid samples"
    med, lo, hi = hierarchical_median_ci(sessions, n_boot=1000, seed=sessions_done)
    half = (hi - lo) / 2 / med if med > 0 else float("inf")
    ci = f"95 % CI of the median ±{half:.2%}"
    if half <= profile.target_ci:
        return f"converged: {ci} (target ±{profile.target_ci:.1%})"
    if sessions_done >= cap:
        return f"session cap {cap} reached: {ci}"
    if spent_s >= profile.budget_s:
        return f"time budget {profile.budget_s:g} s spent: {ci}"
    return None


# ----- resuming --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResumeState:
    finished: frozenset[str]
    kept_samples: int
    dropped_samples: int


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)


def prepare_resume(bundle: Bundle, case_ids: Collection[str]) -> ResumeState:
    """Make an interrupted bundle ready to go on.

    A case is finished when cases.jsonl has its row (written after its last session's samples);
    its samples stay. The samples of cases in flight are dropped, since their sessions are run
    again. Both files are rewritten atomically (temporary file, then rename), which also drops
    a line torn by a hard kill.
    """
    wanted = set(case_ids)
    rows: list[dict[str, Any]] = []
    finished: set[str] = set()
    for row in bundle.cases():
        cid = row.get("case_id")
        if cid in wanted and cid not in finished:
            finished.add(str(cid))
            rows.append(row)
    samples = bundle.samples()
    keep = [s for s in samples if s.get("case_id") in finished]
    with signals_held():
        for name, data in ((SAMPLES, keep), (CASES, rows)):
            try:
                atomic_write(bundle.path / name, _jsonl(data))
            except OSError as e:
                # Samples first: a bundle cut here still has every finished case whole.
                raise HarnessError(
                    f"rewriting {bundle.path / name} to resume failed ({e.strerror}). Free "
                    "space or fix the folder's permissions, then resume again"
                ) from e
    return ResumeState(frozenset(finished), len(keep), len(samples) - len(keep))
