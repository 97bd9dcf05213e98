"""The `harness` command line. The only place that turns an error into an exit status."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness import __version__
from harness.engine import Engine, Limits
from harness.errors import BundleError, EngineUnavailable, HarnessError, UsageError
from harness.host import (
    available_cpus,
    checks,
    choose_cpuset,
    engine_checks,
    fingerprint,
    format_cpu_list,
    git_commit,
    parse_cpu_list,
)
from harness.images import ROOT, BuildOptions, build_images, resolve_tags
from harness.store import Bundle, check_writable, host_label, latest_bundle, new_run_id
from harness.suite import DEFAULT_SUITE, Case, Profile, Suite, load_suite, twin_cases

app = typer.Typer(
    help="Build pinned Python and Rust images, run benchmarks in CPU-pinned containers, "
    "and report where Rust pays off.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

SuiteOpt = Annotated[
    Path, typer.Option("--suite", help="Suite definition (TOML).", envvar="RPB_SUITE")
]
ResultsOpt = Annotated[
    Path, typer.Option("--results", help="Folder that holds results/<host>/<run-id>/ bundles.")
]


def handles_errors(fn: F) -> F:
    """Expected failures become one `Error:` line and exit status 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HarnessError as e:
            msg = str(e)
            if not msg.endswith((".", "\n")) and "\n" not in msg:
                msg += "."
            typer.echo(f"Error: {msg}", err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _log(line: str) -> None:
    err.print(line, markup=False, highlight=False)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"harness {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    *,
    version: Annotated[
        bool,
        typer.Option("--version", callback=version_callback, is_eager=True, help="Show version."),
    ] = False,
) -> None:
    """rust_python_benchmark: where does Rust pay off in a Python ML pipeline?"""


@app.command()
@handles_errors
def build(
    *,
    image: Annotated[
        list[str] | None,
        typer.Option("--image", "-i", help="Build only this image (and what it needs). Repeat."),
    ] = None,
    extra_ca: Annotated[
        Path | None,
        typer.Option(
            "--extra-ca",
            envvar="RPB_EXTRA_CA",
            help="PEM CA bundle handed to build stages only (TLS-intercepting proxies), "
            "e.g. /etc/ssl/certs/ca-certificates.crt. Never kept in the final images.",
        ),
    ] = None,
    network: Annotated[
        str,
        typer.Option(help="Network of build containers: 'host' reaches registries as the host."),
    ] = "host",
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Rebuild even when an image is up to date.")
    ] = False,
    rebuild_base: Annotated[
        bool,
        typer.Option("--rebuild-base", help="Make the Debian base again with mmdebstrap."),
    ] = False,
    base_ref: Annotated[
        str | None,
        typer.Option(
            "--base-ref",
            envvar="RPB_BASE_REF",
            help="Pull the Debian base by digest (REGISTRY/NAME@sha256:...) instead of "
            "making it with mmdebstrap.",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show the whole build log, not only steps.")
    ] = False,
    suite_path: SuiteOpt = DEFAULT_SUITE,
) -> None:
    """Build the base and the suite's toolchain images (cached by content hash)."""
    from harness.engine import connect

    suite = load_suite(suite_path)
    opts = BuildOptions(
        extra_ca=extra_ca,
        network_mode=network,
        rebuild=rebuild,
        rebuild_base=rebuild_base,
        base_ref=base_ref,
    )
    engine = connect()
    result = build_images(engine, suite, opts, image, _log, verbose=verbose)
    table = Table("image", "tag / ref", "id", "rootfs layers")
    for name, info in result.items():
        layers = info.get("layers")
        n_layers = len(layers) if isinstance(layers, list) else 0
        table.add_row(name, str(info.get("ref")), str(info["id"])[:19], str(n_layers))
    Console().print(table)


def _image_versions(engine: Any, tag: str, run_id: str) -> dict[str, Any]:
    res = engine.run(tag, ["cat", "/opt/rpb/versions.json"], run_id=run_id, cpuset=None)
    try:
        out = json.loads(res.stdout)
    except json.JSONDecodeError:
        return {"error": "no /opt/rpb/versions.json"}
    return out if isinstance(out, dict) else {}


# Options that fix what a run does; `--resume` takes them from the run's manifest instead.
RUN_SETTINGS = (
    "cpus",
    "cpuset",
    "profile",
    "task",
    "image",
    "impl",
    "timeout",
    "seed",
    "memory",
    "host",
    "sessions",
    "max_sessions",
    "target_ci",
    "budget",
    "aa",
    "pin",
    "local",
)
_MIN_MEMORY = 6 * 1024 * 1024  # Docker refuses a smaller memory limit
_SAFE_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class RunPlan:
    """What a run does: from the command line, or from the manifest of a run being resumed."""

    suite: Suite
    profile: Profile
    cases: list[Case]
    cores: list[int]
    timeout_s: float
    seed: int
    memory: str
    run_id: str
    host: str
    bundle: Bundle | None = None  # the bundle of a resumed run
    aa: bool = False  # A/A: every implementation runs as two identical twins
    pinned: bool = True  # False: the containers may run on any core (no cpuset)
    executor: str = "docker"  # or "local": the image's files, chroot, no container


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether an option was set on the command line or by its environment variable."""
    source = ctx.get_parameter_source(name)
    # By name: typer ships its own copy of click, whose enum is not click's.
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def _memory_bytes(text: str) -> int:
    from harness.runner import memory_bytes

    n = memory_bytes(text)
    if n is None:
        raise UsageError(
            f"--memory {text} is not a size. Give a number with an optional unit b, k, m or g "
            "(e.g. 256m or 4g)."
        )
    return n


def _explicit_cores(text: str, available: list[int]) -> list[int]:
    cores = parse_cpu_list(text)
    if not cores:
        raise UsageError(f"--cpuset '{text}' names no core. Give a CPU list such as 2-3.")
    outside = sorted(set(cores) - set(available))
    if outside:
        raise UsageError(
            f"--cpuset {text} names cores this process may not use ({format_cpu_list(outside)}). "
            f"Pick from {format_cpu_list(available)}."
        )
    return cores


def _new_plan(
    ctx: typer.Context,
    *,
    suite_path: Path,
    profile: str,
    task: list[str] | None,
    image: list[str] | None,
    cpus: int,
    cpuset: str | None,
    timeout: float,
    impl: list[str] | None = None,
    seed: int,
    memory: str,
    host: str | None,
    results: Path,
    knobs: dict[str, Any] | None = None,
    aa: bool = False,
    pin: bool = True,
    local: bool = False,
) -> RunPlan:
    suite = load_suite(suite_path)
    if profile not in suite.profiles:
        raise UsageError(
            f"unknown profile '{profile}'. Known profiles: {', '.join(sorted(suite.profiles))}."
        )
    prof = _with_knobs(suite.profiles[profile], knobs or {})
    cases = suite.cases(prof, task, image, impl)
    if not cases:
        raise UsageError("the selection has no cases. Check --task and --image.")
    if aa:
        cases = twin_cases(cases)
    if timeout <= 0:
        raise UsageError(f"--timeout {timeout} must be positive.")
    if _memory_bytes(memory) < _MIN_MEMORY:
        raise UsageError(f"--memory {memory} is below Docker's minimum of 6m. Give e.g. 256m.")
    if local:
        from harness.local import require_root

        require_root()
    if not pin:
        if cpuset is not None or _given(ctx, "cpus"):
            raise UsageError(
                "--no-pin lets the benchmarks run on any core: drop --cpus and --cpuset."
            )
        cores = available_cpus()
    elif cpuset is not None:
        cores = _explicit_cores(cpuset, available_cpus())
        if _given(ctx, "cpus") and cpus != len(cores):
            raise UsageError(
                f"--cpus {cpus} does not match --cpuset {cpuset} ({len(cores)} cores). "
                "Give one of them."
            )
    else:
        cores = choose_cpuset(cpus, available_cpus())
    check_writable(results)
    return RunPlan(
        suite=suite,
        profile=prof,
        cases=cases,
        cores=cores,
        timeout_s=timeout,
        seed=seed,
        memory=memory,
        run_id=new_run_id(),
        host=host_label(host),
        aa=aa,
        pinned=pin,
        executor="local" if local else "docker",
    )


def _with_knobs(prof: Profile, knobs: dict[str, Any]) -> Profile:
    """The profile with the stopping knobs given on the command line (None: the profile's)."""
    given = {k: v for k, v in knobs.items() if v is not None}
    if given.get("sessions", 1) < 1 or given.get("max_sessions", 0) < 0:
        raise UsageError("--sessions must be at least 1 and --max-sessions at least 0.")
    if not 0 < given.get("target_ci", 0.5) < 1:
        raise UsageError(
            f"--target-ci {given['target_ci']} is not a fraction. Give e.g. 0.01 for +-1 %."
        )
    if given.get("budget_s", 1.0) <= 0:
        raise UsageError(f"--budget {given['budget_s']} must be a positive number of seconds.")
    return dataclasses.replace(prof, **given)


def _recorded_profile(prof: Profile, recorded: dict[str, Any]) -> Profile:
    """The profile a run used, from its manifest (bundles before adaptive stopping: fixed)."""
    budget = recorded.get("budget_s")
    return dataclasses.replace(
        prof,
        sessions=int(recorded.get("sessions", prof.sessions)),
        max_sessions=int(recorded.get("max_sessions") or 0),
        target_ci=float(recorded.get("target_ci", prof.target_ci)),
        budget_s=float("inf") if budget is None else float(budget),
    )


def _find_run(results: Path, run_id: str) -> Bundle:
    found = []
    if _SAFE_RUN_ID.match(run_id):
        found = sorted(p for p in results.glob(f"*/{run_id}") if (p / "manifest.json").is_file())
    if not found:
        raise BundleError(
            f"no run {run_id} under {results}/. Give the id of an interrupted run (the last "
            "folder of results/<host>/<run-id>), with --results if its bundle lives elsewhere"
        )
    if len(found) > 1:
        raise BundleError(
            f"run {run_id} is in {len(found)} bundles ({', '.join(map(str, found))}). "
            "Keep one of them"
        )
    return Bundle.open(found[0])


def _resume_plan(run_id: str, results: Path, suite_path: Path | None) -> RunPlan:
    bundle = _find_run(results, run_id)
    m = bundle.manifest()
    if m.get("status") == "complete":
        raise UsageError(
            f"run {run_id} is already complete, there is nothing to resume. Write its report "
            f"with `harness report {bundle.path}`, or start a new run"
        )
    try:
        recorded = m["suite"]
        suite_file = suite_path or Path(recorded["path"])
        profile_name = m["profile"]["name"]
        case_ids = list(m["cases"])
        cores = parse_cpu_list(m["cpuset"])
        timeout_s, seed = float(m["timeout_s"]), int(m["seed"])
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(
            f"{bundle.path}/manifest.json lacks what a resume needs ({e!r}). Start a new run"
        ) from e
    suite = load_suite(suite_file)
    if suite.digest != recorded.get("sha256"):
        raise UsageError(
            f"the suite file {suite_file} changed since run {run_id} started (its sha256 is now "
            f"{suite.digest[:12]}, the run used {str(recorded.get('sha256'))[:12]}). Restore the "
            "suite the run started with (--suite names where it is), or start a new run"
        )
    prof = _recorded_profile(suite.profiles[profile_name], m["profile"])
    aa = bool(m.get("aa"))
    all_cases = suite.cases(prof)
    by_id = {c.case_id: c for c in (twin_cases(all_cases) if aa else all_cases)}
    cases = [by_id[cid] for cid in case_ids if cid in by_id]
    available = available_cpus()
    if not set(cores) <= set(available):
        raise UsageError(
            f"run {run_id} is pinned to cores {format_cpu_list(cores)}, but this process may use "
            f"only {format_cpu_list(available)}. Resume it where those cores are available"
        )
    limits = m.get("limits")
    if not isinstance(limits, dict):
        limits = {}  # bundles from before --memory: the default limit
    return RunPlan(
        suite=suite,
        profile=prof,
        cases=cases,
        cores=cores,
        timeout_s=timeout_s,
        seed=seed,
        memory=str(limits.get("memory") or Limits().memory),
        run_id=run_id,
        host=str(m.get("host") or bundle.path.parent.name),
        bundle=bundle,
        aa=aa,
        pinned=bool(m.get("pinned", True)),
        executor=str(m.get("executor") or "docker"),
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _remove_containers(engine: Engine | None, run_id: str, settle_s: float = 0.0) -> None:
    """Stop and remove the run's containers (by label); a vanished engine is only reported.

    `settle_s`: keep looking that long after the last one went. An interruption can land while
    a container is being created: the engine finishes creating it after the first look.
    """
    if engine is None:
        return
    deadline = time.monotonic() + 30
    quiet_since = time.monotonic()
    try:
        while True:
            found = engine.kit_containers(run_id)
            for c in found:
                with contextlib.suppress(Exception):
                    c.remove(force=True)
            now = time.monotonic()
            if found:
                quiet_since = now
            if now > deadline or (not found and now - quiet_since >= settle_s):
                return
            time.sleep(0.25)
    except HarnessError as e:
        _log(f"warning: could not remove the run's containers ({e}). Run `harness clean` later.")


def _line(text: str) -> None:
    """One line on stderr, never wrapped at the terminal's width (tests and logs grep it)."""
    err.print(text, markup=False, highlight=False, soft_wrap=True)


def _case_done(row: dict[str, Any]) -> None:
    """One line per finished case, as hyperfine prints per command: its median, how many
    sessions it took and why it stopped; then its warnings (outliers)."""
    from harness.report import format_ns

    cid, status = row.get("case_id"), row.get("status")
    if status != "ok":
        _line(f"{cid}: {status}")
        return
    _line(
        f"{cid}: {row.get('metric')} median {format_ns(row.get('median_ns'))}, "
        f"{row.get('sessions')} sessions, {row.get('stop_reason')}"
    )
    for w in row.get("warnings") or []:
        _line(f"  warning: {w}")


def _summarize_cases(rows: list[dict[str, Any]], order: list[str]) -> None:
    """One line naming the cases that failed or are invalid, then one line per case with why."""
    rank = {cid: i for i, cid in enumerate(order)}
    bad = sorted(
        (r for r in rows if r.get("status") != "ok"),
        key=lambda r: rank.get(str(r.get("case_id")), len(rank)),
    )
    if bad:
        by_status: dict[str, list[str]] = {}
        for r in bad:
            by_status.setdefault(str(r.get("status")), []).append(str(r.get("case_id")))
        _line(
            f"{len(bad)} of {len(rows)} cases did not pass: "
            + "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(by_status.items()))
        )
    for r in bad:
        reason = " ".join(str(r.get("reason")).split())
        _line(f"  {r.get('status')}: {r.get('case_id')}: {reason[:300]}")


@app.command()
@handles_errors
def run(
    ctx: typer.Context,
    *,
    cpus: Annotated[
        int, typer.Option(help="Distinct cores pinned (cpuset) for each benchmark container.")
    ] = 1,
    cpuset: Annotated[
        str | None,
        typer.Option(
            "--cpuset",
            help="Exactly these cores (e.g. 2-3) instead of the highest --cpus ones: another "
            "run holds its cores until it ends.",
        ),
    ] = None,
    profile: Annotated[
        str, typer.Option(help="Profile of the suite: sizes and repetitions.")
    ] = "default",
    task: Annotated[
        list[str] | None, typer.Option("--task", "-t", help="Run only this task. Repeat.")
    ] = None,
    image: Annotated[
        list[str] | None,
        typer.Option("--image", "-i", help="Run only implementations in this image. Repeat."),
    ] = None,
    impl: Annotated[
        list[str] | None,
        typer.Option("--impl", help="Run only this implementation (e.g. rs-scalar). Repeat."),
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds one process run may take before it is killed.")
    ] = 600.0,
    seed: Annotated[int, typer.Option(help="Seed of the interleaving order.")] = 0,
    memory: Annotated[
        str,
        typer.Option(help="Memory limit of each benchmark container (no swap), e.g. 256m, 4g."),
    ] = Limits().memory,
    host: Annotated[
        str | None, typer.Option("--host", help="Host label of the bundle (default: hostname).")
    ] = None,
    sessions: Annotated[
        int | None,
        typer.Option(help="Container sessions per case at least (default: the profile's)."),
    ] = None,
    max_sessions: Annotated[
        int | None,
        typer.Option(
            help="Sessions per case at most: more than --sessions makes stopping adaptive "
            "(default: the profile's)."
        ),
    ] = None,
    target_ci: Annotated[
        float | None,
        typer.Option(
            help="Stop a case once the 95 % CI of its median is within this fraction of it, "
            "e.g. 0.01 for +-1 % (default: the profile's)."
        ),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(help="Seconds a case may take before it stops adding sessions."),
    ] = None,
    aa: Annotated[
        bool,
        typer.Option(
            "--aa",
            help="A/A noise check: run every selected implementation as two identical twins "
            "(IMPL.a, IMPL.b, task TASK.IMPL); the report counts the pairs wrongly found "
            "different.",
        ),
    ] = False,
    pin: Annotated[
        bool,
        typer.Option(
            "--pin/--no-pin",
            help="Pin each benchmark to its cores (cpuset). --no-pin lets it run on any core: "
            "only to measure what pinning buys.",
        ),
    ] = True,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="No container: run the same runner and programs from each image's unpacked "
            "files (chroot, taskset; needs root), to measure what the container costs.",
        ),
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="RUN_ID",
            help="Finish an interrupted run: only its unfinished cases, with its own settings.",
        ),
    ] = None,
    results: ResultsOpt = Path("results"),
    suite_path: SuiteOpt = DEFAULT_SUITE,
) -> None:
    """Run the suite in CPU-pinned, hardened containers; write a results bundle.

    A case that crashes, exits non-zero, times out or runs out of memory is recorded as failed
    (with why and its stderr) and the run goes on; the run exits 0 once every case has a
    result. Ctrl-C or SIGTERM stops it (exit 130 or 143) with everything finished so far saved;
    `--resume RUN_ID` finishes it. The run holds its cores until it ends: a second run wanting
    any of them refuses to start.
    """
    from harness.runner import RunInterrupted, interrupt_handler

    previous = {s: signal.signal(s, interrupt_handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _run(
            ctx,
            cpus=cpus,
            cpuset=cpuset,
            profile=profile,
            task=task,
            image=image,
            impl=impl,
            timeout=timeout,
            seed=seed,
            memory=memory,
            host=host,
            resume=resume,
            results=results,
            suite_path=suite_path,
            knobs={
                "sessions": sessions,
                "max_sessions": max_sessions,
                "target_ci": target_ci,
                "budget_s": budget,
            },
            aa=aa,
            pin=pin,
            local=local,
        )
    except RunInterrupted as e:  # while the run was being planned: nothing written yet
        typer.echo(f"Interrupted ({e}) before the run started: nothing was written.", err=True)
        raise typer.Exit(128 + e.signum) from None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _run(
    ctx: typer.Context,
    *,
    cpus: int,
    cpuset: str | None,
    profile: str,
    task: list[str] | None,
    image: list[str] | None,
    impl: list[str] | None,
    timeout: float,
    seed: int,
    memory: str,
    host: str | None,
    resume: str | None,
    results: Path,
    suite_path: Path,
    knobs: dict[str, Any],
    aa: bool = False,
    pin: bool = True,
    local: bool = False,
) -> None:
    from harness.engine import connect
    from harness.locks import CoreLocks
    from harness.runner import (
        RunInterrupted,
        RunOptions,
        docker_executor,
        prepare_inputs,
        prepare_resume,
        run_cases,
    )

    given = {n for n in (*RUN_SETTINGS, "suite_path") if _given(ctx, n)}
    if resume is not None:
        clash = [f"--{n.replace('_', '-')}" for n in RUN_SETTINGS if n in given]
        if clash:
            raise UsageError(
                f"--resume continues a run with the settings in its manifest. Drop "
                f"{', '.join(clash)}"
            )
        plan = _resume_plan(resume, results, suite_path if "suite_path" in given else None)
    else:
        plan = _new_plan(
            ctx,
            suite_path=suite_path,
            profile=profile,
            task=task,
            image=image,
            impl=impl,
            cpus=cpus,
            cpuset=cpuset,
            timeout=timeout,
            seed=seed,
            memory=memory,
            host=host,
            results=results,
            knobs=knobs,
            aa=aa,
            pin=pin,
            local=local,
        )
    suite, prof, cases, run_id = plan.suite, plan.profile, plan.cases, plan.run_id
    cpuset_text = format_cpu_list(plan.cores)
    limits = Limits(memory=plan.memory)
    engine: Engine | None = None
    bundle = plan.bundle
    active: Bundle | None = None  # the bundle once this attempt has written to it
    try:
        engine = connect()
        # Held for the whole run, taken before anything is written: see harness/locks.py.
        with CoreLocks(plan.cores, run_id):
            needed = sorted({c.impl.image for c in cases} | {suite.data_image})
            tags = resolve_tags(engine, suite, needed)
            images = {name: engine.require_image(tags[name]) for name in needed}
            if bundle is not None:
                manifest = bundle.manifest()
                for name in needed:
                    then = str((manifest.get("images") or {}).get(name, {}).get("id"))
                    if then != images[name]["id"]:
                        raise UsageError(
                            f"image {name} was rebuilt since run {run_id} started (now "
                            f"{str(images[name]['id'])[:19]}, then {then[:19]}). Results of two "
                            "builds do not mix: start a new run"
                        )
                # Containers of an earlier attempt that died without cleaning up.
                _remove_containers(engine, run_id)
                active = bundle
                state = prepare_resume(bundle, [c.case_id for c in cases])
                bundle.update_manifest(
                    status="incomplete",
                    interrupted=False,
                    finished=None,
                    error=None,
                    resumed=[
                        *(manifest.get("resumed") or []),
                        {
                            "at": _now(),
                            "previous_error": manifest.get("error"),
                            "finished_cases": len(state.finished),
                            "dropped_samples": state.dropped_samples,
                            "harness_version": __version__,
                            "git_commit": git_commit(ROOT),
                            "fingerprint": fingerprint(plan.cores),
                            "argv": sys.argv,
                        },
                    ],
                )
                finished: frozenset[str] = state.finished
                _line(
                    f"resuming run {run_id}: {len(finished)} of {len(cases)} cases finished, "
                    f"{len(cases) - len(finished)} to go on cpuset {cpuset_text} -> {bundle.path}"
                )
            else:
                for name in needed:
                    images[name]["versions"] = _image_versions(engine, tags[name], run_id)
                fp = fingerprint(plan.cores)
                engine_info = engine.info()
                warnings = checks(fp, len(plan.cores))
                if plan.executor == "docker":
                    warnings += engine_checks(engine_info)
                for w in warnings:
                    _log(f"warning: {w}")
                manifest = {
                    "run_id": run_id,
                    "host": plan.host,
                    "started": _now(),
                    "finished": None,
                    "status": "incomplete",
                    "cpus": len(plan.cores),
                    "cpuset": cpuset_text,
                    "profile": {
                        "name": prof.name,
                        "size": prof.size,
                        "sessions": prof.sessions,
                        "runs": prof.runs,
                        "warmup": prof.warmup,
                        "iters": prof.iters,
                        "max_sessions": prof.session_cap,
                        "target_ci": prof.target_ci,
                        "budget_s": None if math.isinf(prof.budget_s) else prof.budget_s,
                    },
                    "seed": plan.seed,
                    "timeout_s": plan.timeout_s,
                    "limits": {
                        "memory": limits.memory,
                        "pids": limits.pids,
                        "scratch": limits.scratch,
                    },
                    "suite": {"name": suite.name, "path": str(suite.path), "sha256": suite.digest},
                    "baselines": {c.task.name: c.task.baseline for c in cases},
                    "aa": plan.aa,
                    "pinned": plan.pinned,
                    "executor": plan.executor,
                    "cases": [c.case_id for c in cases],
                    "base": engine.image(suite.base.tag),
                    "images": images,
                    "engine": engine_info,
                    "fingerprint": fp,
                    "warnings": warnings,
                    "harness_version": __version__,
                    "git_commit": git_commit(ROOT),
                    "argv": sys.argv,
                }
                bundle = active = Bundle.create(results, plan.host, run_id, manifest)
                finished = frozenset()
                where = f"cpuset {cpuset_text}" if plan.pinned else "any core (not pinned)"
                how = " without containers (local)" if plan.executor == "local" else ""
                _line(f"run {run_id}: {len(cases)} cases on {where}{how} -> {bundle.path}")
            opts = RunOptions(
                cpuset=cpuset_text if plan.pinned else None,
                timeout_s=plan.timeout_s,
                seed=plan.seed,
                limits=limits,
            )
            todo_cases = [c for c in cases if c.case_id not in finished]
            if plan.executor == "local":
                from harness.local import local_executor, prepare_local

                backend = prepare_local(engine, suite, todo_cases, tags, log=_log)
                bundle.update_manifest(local=backend.manifest())
                execute = local_executor(backend, opts, prof)
            else:
                volume = prepare_inputs(
                    engine, suite, todo_cases, tags[suite.data_image], run_id, log=_log
                )
                execute = docker_executor(engine, run_id, opts, volume, prof)
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=False,
            ) as progress:
                todo = prof.sessions * (len(cases) - len(finished))
                bar = progress.add_task("starting", total=todo)

                known = {"total": todo}  # adaptive stopping may add sessions

                def on_session(case: Any, session: int, i: int, total: int) -> None:
                    known["total"] = total
                    progress.update(
                        bar,
                        completed=i,
                        total=total,
                        description=f"{case.case_id} (session {session + 1})",
                    )

                run_cases(
                    bundle,
                    suite,
                    cases,
                    prof,
                    tags,
                    execute=execute,
                    opts=opts,
                    on_session=on_session,
                    on_case=_case_done,
                    finished=finished,
                )
                progress.update(bar, completed=known["total"], description="done")
            bundle.update_manifest(status="complete", interrupted=False, finished=_now())
    except RunInterrupted as e:
        # A second Ctrl-C must not cut the clean-up short.
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)
        name = signal.Signals(e.signum).name
        _remove_containers(engine, run_id, settle_s=2.0)
        if active is None:
            what = "nothing was written" if bundle is None else f"{bundle.path} is unchanged"
            typer.echo(f"Interrupted ({name}) before the run started: {what}.", err=True)
        else:
            m = active.manifest()
            active.update_manifest(
                status="incomplete",
                interrupted=True,
                finished=_now(),
                interruptions=[*(m.get("interruptions") or []), {"at": _now(), "signal": name}],
            )
            done = len(active.cases())
            typer.echo(
                f"Interrupted ({name}): {done} of {len(cases)} cases finished, saved in "
                f"{active.path}. Finish the run with: harness run --resume {run_id} "
                f"--results {results}",
                err=True,
            )
        raise typer.Exit(128 + e.signum) from None
    except HarnessError as e:
        if active is not None and isinstance(e, EngineUnavailable):
            # The engine went away mid-run: one Error line with what is kept and how to go on.
            what = f"the Docker engine went away during the run ({e.detail or e})"
            active.update_manifest(status="incomplete", error=what)
            raise EngineUnavailable(
                f"{what}. {len(active.cases())} of {len(cases)} cases finished; everything "
                f"measured so far is saved in {active.path}. Once the engine is back, finish "
                f"the run with `harness run --resume {run_id} --results {results}`",
                e.detail,
            ) from e
        if active is not None:
            active.update_manifest(status="incomplete", error=str(e))
            typer.echo(
                f"The run stopped; what it measured is in {active.path}. Once fixed, finish it "
                f"with: harness run --resume {run_id} --results {results}",
                err=True,
            )
        raise
    assert bundle is not None
    rows = bundle.cases()
    _summarize_cases(rows, [c.case_id for c in cases])
    typer.echo(str(bundle.path))
    ok = sum(1 for r in rows if r.get("status") == "ok")
    _line(f"{ok} of {len(rows)} cases ok. Next: harness report {bundle.path}")


def write_report(bundle: Bundle) -> dict[str, Path]:
    """Aggregate a bundle and write summary.csv, report.md and report.html into it."""
    from harness import frames, report

    manifest = bundle.manifest()
    samples = bundle.samples()
    cases = bundle.cases()
    if not samples:
        raise HarnessError(
            f"{bundle.path} has no samples yet. Run `harness run` (or resume it) first"
        )
    summary = frames.summarize(samples, cases)
    speed = frames.speedups(
        samples,
        summary,
        manifest.get("baselines", {}),
        against_best_python=not manifest.get("aa"),
    )
    return {
        "summary": bundle.write("summary.csv", report.render_summary_csv(summary)),
        "markdown": bundle.write(
            "report.md", report.render_markdown(manifest, summary, speed, cases)
        ),
        "html": bundle.write("report.html", report.render_html(manifest, summary, speed, cases)),
    }


@app.command("report")
@handles_errors
def report_cmd(
    bundle_path: Annotated[
        Path | None,
        typer.Argument(help="A bundle folder results/<host>/<run-id> (default: the latest)."),
    ] = None,
    *,
    results: ResultsOpt = Path("results"),
) -> None:
    """Aggregate a bundle (pandas) and write its Markdown and HTML reports (jinja2)."""
    bundle = Bundle.open(bundle_path or latest_bundle(results))
    paths = write_report(bundle)
    for kind, p in paths.items():
        typer.echo(f"{kind}: {p}")


def _output_path(path: Path, option: str, default_name: str) -> Path:
    """Where --csv or --markdown writes: a folder gets `default_name` inside it; the folder
    must exist (checked before any work)."""
    target = path / default_name if path.is_dir() else path
    if not target.parent.is_dir():
        raise UsageError(
            f"{option} {path}: the folder {target.parent} does not exist. Create it or give "
            "another path"
        )
    return target


def _write_output(path: Path, text: str, option: str) -> None:
    from harness.store import atomic_write

    try:
        atomic_write(path, text)
    except OSError as e:
        raise UsageError(
            f"writing {path} failed ({e.strerror or e}). Give another path with {option}"
        ) from e
    _line(f"wrote {path}")


@app.command()
@handles_errors
def compare(
    bundles: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Two or more bundle folders results/<host>/<run-id>. The first (B1) is the "
            "reference of every ratio.",
            show_default=False,
            metavar="BUNDLE...",
        ),
    ] = None,
    *,
    noise: Annotated[
        float,
        typer.Option(
            help="A ratio whose 95 % CI reaches into 1 ± NOISE is called 'same' (a speed-up: "
            "'no difference').",
        ),
    ] = 0.01,
    csv_path: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            metavar="PATH",
            help="Also write both tables as CSV, one row per case and bundle: "
            "PATH-medians.csv and PATH-speedups.csv.",
        ),
    ] = None,
    markdown_path: Annotated[
        Path | None,
        typer.Option("--markdown", metavar="PATH", help="Also write the comparison as Markdown."),
    ] = None,
) -> None:
    """Compare two or more results bundles, case by case.

    Three uses. Stability: several runs on one host; 'spread' is (max - min) / median of a
    case's medians. Settings A vs B on one host (pinned or not, Docker or the local runner):
    each bundle's median and CV, and its ratio to B1 (time in Bk / time in B1) with a
    hierarchical-bootstrap 95 % CI and a verdict (same, faster, slower). Hosts: the speed-ups
    (Python over Rust on the same host) of every bundle side by side; across hosts compare
    those, not absolute times.

    Times are kernel time per iteration where a case reports iterations, else wall time per
    process. A case missing, failed or invalid in a bundle is shown as such and left out of
    its ratios. Bundles that ran other images, suite or profile are compared anyway, with a
    warning. Tables go to stdout; progress, warnings and notes to stderr.
    """
    from harness import compare as comparison

    paths = bundles or []
    if len(paths) < 2:
        raise UsageError(
            f"compare needs at least two bundles, got {len(paths)}. Give two or more folders, "
            "e.g. harness compare results/HOST/RUN1 results/HOST/RUN2"
        )
    if not (math.isfinite(noise) and 0 <= noise < 1):
        raise UsageError(f"--noise {noise} is not a fraction. Give e.g. 0.01 for 1 %")
    csv_base = markdown = None
    if csv_path is not None:
        csv_base = _output_path(csv_path, "--csv", "compare")
        if csv_base.suffix == ".csv":
            csv_base = csv_base.with_suffix("")
    if markdown_path is not None:
        markdown = _output_path(markdown_path, "--markdown", "compare.md")
    contents = [comparison.read(path) for path in paths]  # every bundle checked before output
    sides: list[comparison.Side] = []
    seen: dict[Path, str] = {}
    for i, (path, data) in enumerate(zip(paths, contents, strict=True), 1):
        side = comparison.side(f"B{i}", path, *data)
        _line(f"{side.name}: {side.label} ({side.settings}) <- {path}")
        if (first := seen.setdefault(path.resolve(), side.name)) != side.name:
            _line(f"warning: {side.name} is the same bundle as {first}")
        sides.append(side)
    _line(f"comparing {len(sides)} bundles (hierarchical bootstrap)")
    result = comparison.compare(sides, noise)
    for w in result.warnings:
        _line(f"warning: {w}")
    for note in result.notes:
        _line(f"note: {note}")
    out = Console()
    for renderable in comparison.terminal(result):
        out.print(renderable)
    if csv_base is not None:
        for name, frame in (("medians", result.medians), ("speedups", result.speedups)):
            target = csv_base.with_name(f"{csv_base.name}-{name}.csv")
            _write_output(target, comparison.render_csv(frame), "--csv")
    if markdown is not None:
        _write_output(markdown, comparison.render_markdown(result), "--markdown")


@app.command()
@handles_errors
def calibrate(
    *,
    image: Annotated[str, typer.Option(help="Image to check the runner in.")] = "rust",
    cpus: Annotated[int, typer.Option(help="Cores pinned for the container.")] = 1,
    runs: Annotated[int, typer.Option(help="Runs per command.")] = 200,
    suite_path: SuiteOpt = DEFAULT_SUITE,
) -> None:
    """Check the runner against `hyperfine -N` on start-up of `true` and the Rust hello."""
    from harness.calibrate import calibrate as do_calibrate
    from harness.engine import connect

    suite = load_suite(suite_path)
    suite.require_images([image])
    if runs < 5:
        raise UsageError(f"--runs {runs} is too few. Give at least 5.")
    cpuset = format_cpu_list(choose_cpuset(cpus, available_cpus()))
    engine = connect()
    tag = resolve_tags(engine, suite, [image])[image]
    engine.require_image(tag)
    rows = do_calibrate(engine, tag, cpuset, runs)
    table = Table(
        "command",
        "runs",
        "runner median",
        "hyperfine median",
        "difference",
        "runner min",
        "hyperfine min",
        title=f"{tag} on cpuset {cpuset}",
    )
    for r in rows:
        table.add_row(
            r["command"],
            str(r["runs"]),
            f"{r['runner_median_us']:.1f} µs",
            f"{r['hyperfine_median_us']:.1f} µs",
            f"{r['difference_pct']:+.1f} %",
            f"{r['runner_min_us']:.1f} µs",
            f"{r['hyperfine_min_us']:.1f} µs",
        )
    Console().print(table)


@app.command()
@handles_errors
def doctor(
    *,
    cpus: Annotated[int, typer.Option(help="Cores a run would pin.")] = 1,
) -> None:
    """Show the host noise checks that `harness run` records (governor, load, SMT, swap...).

    Also what the Docker engine says (storage driver, cgroup version) and whether another
    harness run holds cores. Warnings are advice, never failures: the exit status is 0.
    """
    from harness.engine import connect
    from harness.locks import free_cores, lock_dir

    cpuset = choose_cpuset(cpus, available_cpus())
    fp = fingerprint(cpuset)
    warnings = checks(fp, cpus)
    table = Table("fact", "value")
    for k, v in fp.items():
        table.add_row(k, json.dumps(v) if not isinstance(v, str) else v)
    try:
        info = connect().info()
        for k, v in info.items():
            table.add_row(f"docker {k}", json.dumps(v) if not isinstance(v, str) else v)
        warnings += engine_checks(info)
    except HarnessError as e:
        warnings.append(str(e))
    free = free_cores(lock_dir())
    table.add_row("cores free of other harness runs", format_cpu_list(free) or "none")
    if not set(cpuset) <= set(free):
        warnings.append(
            f"cores {format_cpu_list(sorted(set(cpuset) - set(free)))} of the cpuset "
            "are held by another harness run: `harness run` would refuse them now."
        )
    Console().print(table)
    for w in warnings:
        typer.echo(f"warning: {w}")


@app.command()
@handles_errors
def clean(
    *,
    volumes: Annotated[
        bool, typer.Option("--volumes", help="Also remove the kit's data volumes.")
    ] = False,
) -> None:
    """Remove the kit's containers (and volumes, dangling images) by label; nothing else."""
    from harness.engine import connect

    removed = connect().clean(volumes=volumes)
    typer.echo(", ".join(f"{v} {k}" for k, v in removed.items()) + " removed")


def main() -> None:
    os.environ.setdefault("COLUMNS", "120")
    app()


if __name__ == "__main__":
    main()


__all__ = ["Suite", "app", "main"]
