"""`harness run` from a request to a finished bundle, one step per function:

    plan (a new run, or the manifest of one to resume) -> hold the cores -> images ->
    open the bundle -> choose the executor (Docker or local) and prepare inputs ->
    execute the cases -> mark the bundle complete

An interruption (SIGINT, SIGTERM) or the engine going away is handled in `run`: the run's
containers are removed, the bundle says `incomplete`, and what to type to resume is returned
to the CLI, which alone turns it into an exit status. Progress and messages go through `Ui`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

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
    local_machine,
    parse_cpu_list,
)
from harness.images import ROOT, resolve_tags
from harness.kinds import case_profile
from harness.runner import (
    RunInterrupted,
    RunOptions,
    docker_executor,
    memory_bytes,
    prepare_inputs,
    prepare_output_volume,
    prepare_resume,
    run_cases,
)
from harness.store import (
    Bundle,
    check_writable,
    host_label,
    new_run_id,
    run_manifest,
)
from harness.suite import Case, Profile, Suite, load_suite, twin_cases

if TYPE_CHECKING:
    from harness.engines import HostFacts

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
    "cold_sessions",
    "aa",
    "pin",
    "local",
)
_MIN_MEMORY = 6 * 1024 * 1024  # Docker refuses a smaller memory limit
_SAFE_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class RunRequest:
    """The options of `harness run`, as given. `given` names the options set on the command
    line or by their environment variable (the others hold defaults)."""

    cpus: int = 1
    cpuset: str | None = None
    profile: str = "default"
    task: tuple[str, ...] = ()
    image: tuple[str, ...] = ()
    impl: tuple[str, ...] = ()
    timeout: float = 600.0
    seed: int = 0
    memory: str = Limits().memory
    host: str | None = None
    sessions: int | None = None
    max_sessions: int | None = None
    target_ci: float | None = None
    budget: float | None = None
    cold_sessions: int | None = None
    aa: bool = False
    pin: bool = True
    local: bool = False
    resume: str | None = None
    results: Path = Path("results")
    suite_path: Path | None = None
    given: frozenset[str] = frozenset()
    # `--engine URL`: run on that engine (its host's cores, facts and label) instead of the
    # one the environment names; `--images ARCHIVE`: load its images there first.
    engine: str | None = None
    images: Path | None = None


@dataclass
class RunPlan:
    """What a run does: from the request, or from the manifest of a run being resumed."""

    suite: Suite
    profile: Profile
    cases: list[Case]
    cores: list[int]
    timeout_s: float
    seed: int
    memory: str
    run_id: str
    host: str
    results: Path
    bundle: Bundle | None = None  # the bundle of a resumed run
    aa: bool = False  # A/A: every implementation runs as two identical twins
    pinned: bool = True  # False: the containers may run on any core (no cpuset)
    executor: str = "docker"  # or "local": the image's files, chroot, no container
    facts: HostFacts | None = None  # the engine's host, when named with --engine
    engine_url: str | None = None  # --engine, as given
    archive: dict[str, Any] | None = None  # the image archive loaded first (--images)

    @property
    def cpuset(self) -> str:
        return format_cpu_list(self.cores)

    def resume_hint(self) -> str:
        hint = f"harness run --resume {self.run_id} --results {self.results}"
        return hint + (f" --engine {self.engine_url}" if self.engine_url else "")

    def fingerprint(self) -> dict[str, Any]:
        """The fingerprint of the host the benchmarks run on."""
        return self.facts.fingerprint(self.cores) if self.facts else fingerprint(self.cores)

    def machine(self) -> dict[str, Any]:
        """What the default host label is made of (manifest `machine`)."""
        return self.facts.machine() if self.facts else local_machine()


class Ui(Protocol):
    """Where a run reports: lines on stderr, finished cases, and a progress display."""

    def line(self, text: str) -> None: ...

    def case_done(self, row: dict[str, Any]) -> None: ...

    def progress(self, total: int) -> contextlib.AbstractContextManager[ProgressFn]: ...


ProgressFn = Callable[[Case | None, int, int, int], None]


# ----- planning --------------------------------------------------------------------------------
def plan(req: RunRequest, facts: HostFacts | None = None) -> RunPlan:
    """The plan of a new run, or of the interrupted run `req.resume` (with its own settings).

    `facts`: the host of an engine named with --engine (its cores, its label)."""
    if req.resume is not None:
        clash = [f"--{n.replace('_', '-')}" for n in RUN_SETTINGS if n in req.given]
        if clash:
            raise UsageError(
                f"--resume continues a run with the settings in its manifest. Drop "
                f"{', '.join(clash)}"
            )
        suite_path = req.suite_path if "suite_path" in req.given else None
        return _resume_plan(req.resume, req.results, suite_path, facts)
    return _new_plan(req, facts)


def _cores(req: RunRequest, facts: HostFacts | None = None) -> list[int]:
    available = facts.cpus if facts is not None else available_cpus()
    if not req.pin:
        if req.cpuset is not None or "cpus" in req.given:
            raise UsageError(
                "--no-pin lets the benchmarks run on any core: drop --cpus and --cpuset."
            )
        return available
    if req.cpuset is not None:
        cores = _explicit_cores(req.cpuset, available)
        if "cpus" in req.given and req.cpus != len(cores):
            raise UsageError(
                f"--cpus {req.cpus} does not match --cpuset {req.cpuset} ({len(cores)} cores). "
                "Give one of them."
            )
        return cores
    if facts is not None:
        return facts.choose_cpuset(req.cpus)
    return choose_cpuset(req.cpus, available)


def _new_plan(req: RunRequest, facts: HostFacts | None = None) -> RunPlan:
    suite = load_suite(req.suite_path)
    if req.profile not in suite.profiles:
        raise UsageError(
            f"unknown profile '{req.profile}'. Known profiles: {', '.join(sorted(suite.profiles))}."
        )
    knobs = {
        "sessions": req.sessions,
        "max_sessions": req.max_sessions,
        "target_ci": req.target_ci,
        "budget_s": req.budget,
        "cold_sessions": req.cold_sessions,
    }
    prof = _with_knobs(suite.profiles[req.profile], knobs)
    if req.timeout <= 0:
        raise UsageError(f"--timeout {req.timeout} must be positive.")
    memory = memory_bytes(req.memory)
    if memory is None:
        raise UsageError(
            f"--memory {req.memory} is not a size. Give a number with an optional unit b, k, m "
            "or g (e.g. 256m or 4g)."
        )
    if memory < _MIN_MEMORY:
        raise UsageError(f"--memory {req.memory} is below Docker's minimum of 6m. Give e.g. 256m.")
    cores = _cores(req, facts)
    cases = suite.cases(prof, list(req.task), list(req.image), list(req.impl), cpus=len(cores))
    if not cases:
        raise UsageError("the selection has no cases. Check --task, --image and --impl.")
    if req.aa:
        cases = twin_cases(cases)
    if req.local:
        from harness.local import require_root

        require_root()
        services = sorted({c.task.name for c in cases if c.task.kind == "service"})
        if services:
            raise UsageError(
                f"--local runs no containers, and the service task(s) {', '.join(services)} "
                "need a server and a load generator in containers. Leave them out with --task"
            )
        disk = sorted({c.task.name for c in cases if c.task.output == "disk"})
        if disk:
            raise UsageError(
                f"--local has no disk volume for the task(s) {', '.join(disk)}, which write "
                "their output to one. Leave them out with --task"
            )
    check_writable(req.results)
    return RunPlan(
        suite=suite,
        profile=prof,
        cases=cases,
        cores=cores,
        timeout_s=req.timeout,
        seed=req.seed,
        memory=req.memory,
        run_id=new_run_id(),
        host=host_label(req.host) if req.host else _default_label(facts),
        results=req.results,
        aa=req.aa,
        pinned=req.pin,
        executor="local" if req.local else "docker",
        facts=facts,
        engine_url=req.engine,
    )


def _default_label(facts: HostFacts | None) -> str:
    """The engine host's hostname and a short hash of its CPU model and cores."""
    return facts.label if facts is not None else str(local_machine()["label"])


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


def _with_knobs(prof: Profile, knobs: dict[str, Any]) -> Profile:
    """The profile with the stopping knobs given on the command line (None: the profile's)."""
    given = {k: v for k, v in knobs.items() if v is not None}
    if given.get("sessions", 1) < 1 or given.get("max_sessions", 0) < 0:
        raise UsageError("--sessions must be at least 1 and --max-sessions at least 0.")
    if not 0 < given.get("target_ci", 0.5) < 1:
        raise UsageError(
            f"--target-ci {given['target_ci']} is not a fraction. Give e.g. 0.01 for +-1 %."
        )
    if given.get("cold_sessions", 0) < 0:
        raise UsageError("--cold-sessions must be 0 (no cold start) or more.")
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
        warmup_cap=int(recorded.get("warmup_cap", prof.warmup_cap)),
        settle_k=int(recorded.get("settle_k", prof.settle_k)),
        settle_band=float(recorded.get("settle_band", prof.settle_band)),
        cold_sessions=int(recorded.get("cold_sessions", prof.cold_sessions)),
    )


def find_run(results: Path, run_id: str) -> Bundle:
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


def _resume_plan(
    run_id: str, results: Path, suite_path: Path | None, facts: HostFacts | None = None
) -> RunPlan:
    bundle = find_run(results, run_id)
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
    all_cases = suite.cases(prof, cpus=int(m.get("cpus") or len(cores)))
    by_id = {c.case_id: c for c in (twin_cases(all_cases) if aa else all_cases)}
    cases = [by_id[cid] for cid in case_ids if cid in by_id]
    available = facts.cpus if facts is not None else available_cpus()
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
        results=results,
        bundle=bundle,
        aa=aa,
        pinned=bool(m.get("pinned", True)),
        executor=str(m.get("executor") or "docker"),
        facts=facts,
        engine_url=m.get("engine_url") if facts is not None else None,
    )


# ----- running ---------------------------------------------------------------------------------
def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Outcome:
    """How a run ended: its bundle, or the signal that stopped it and what was saved."""

    bundle: Bundle | None
    signal: str | None = None
    message: str = ""


def run(req: RunRequest, ui: Ui) -> Outcome:
    """Plan, then run; an interruption or a lost engine leaves an incomplete bundle that
    `harness run --resume` finishes."""
    from harness.engine import connect
    from harness.locks import CoreLocks

    if req.engine is not None or req.images is not None or _recorded_engine(req):
        return run_on_engine(req, ui)
    p = plan(req)
    try:
        engine = connect()
    except RunInterrupted as e:
        return _interrupted(p, None, None, e)
    # Held for the whole run, taken before anything is written: see harness/locks.py.
    return _execute_plan(p, engine, CoreLocks(p.cores, p.run_id), ui)


def _execute_plan(
    p: RunPlan, engine: Engine, locks: contextlib.AbstractContextManager[Any], ui: Ui
) -> Outcome:
    """Open the bundle, run every case and mark it complete, holding `locks`; an interruption
    or a failure leaves the bundle incomplete with the command that finishes it."""
    active: list[Bundle] = []  # the bundle once this attempt has written to it
    try:
        with locks:
            bundle = open_bundle(p, engine, ui)
            active.append(bundle)
            execute_cases(p, engine, bundle, ui)
            bundle.update_manifest(status="complete", interrupted=False, finished=now())
            return Outcome(bundle)
    except RunInterrupted as e:
        return _interrupted(p, engine, active[0] if active else None, e)
    except HarnessError as e:
        if active:
            _failed(p, active[0], e, ui)
        raise


def _recorded_engine(req: RunRequest) -> str | None:
    """The engine a run being resumed started on, when it was named with --engine."""
    if req.resume is None:
        return None
    try:
        url = find_run(req.results, req.resume).manifest().get("engine_url")
    except HarnessError:
        return None  # `plan` says what is wrong with the run
    return url if isinstance(url, str) and url else None


def run_on_engine(req: RunRequest, ui: Ui) -> Outcome:
    """`run` on the engine `--engine` names (or the environment's, with only --images): that
    engine's host gives the cores, the fingerprint and the label; this machine's core locks
    are taken only when the engine runs here. With --images, the archive's images are loaded
    there first and the manifest says so."""
    import contextlib as _ctx

    from harness.archive import load as load_archive
    from harness.engine import connect
    from harness.engines import connect_target, host_facts, parse_target
    from harness.locks import CoreLocks

    given = req.engine
    if given is None and req.resume is not None:  # the engine the run started on
        given = find_run(req.results, req.resume).manifest().get("engine_url")
    target = parse_target(given) if given else None
    if req.local:
        raise UsageError("--local runs without containers: it cannot go with --engine or --images")
    engine = connect_target(target) if target is not None else connect()
    archive = None
    if req.images is not None:
        archive = load_archive(engine, req.images, log=ui.line)
    suite_file = req.suite_path
    if req.resume is not None and "suite_path" not in req.given:
        recorded = find_run(req.results, req.resume).manifest().get("suite")
        if isinstance(recorded, dict) and recorded.get("path"):
            suite_file = Path(str(recorded["path"]))
    base_tag = load_suite(suite_file).base.tag
    local = target.local if target is not None else True
    facts = host_facts(engine, base_tag, local=local, run_id="facts")
    p = plan(dataclasses.replace(req, engine=given), facts)
    p.engine_url = given
    p.archive = archive
    if given:
        ui.line(f"engine {given}: host {facts.hostname}, {facts.ncpu} cores, label {facts.label}")
    locks = CoreLocks(p.cores, p.run_id) if local else _ctx.nullcontext()
    return _execute_plan(p, engine, locks, ui)


def _interrupted(
    p: RunPlan, engine: Engine | None, active: Bundle | None, e: RunInterrupted
) -> Outcome:
    import signal

    # A second Ctrl-C must not cut the clean-up short.
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)
    name = signal.Signals(e.signum).name
    remove_containers(engine, p.run_id, settle_s=2.0)
    if active is None:
        what = "nothing was written" if p.bundle is None else f"{p.bundle.path} is unchanged"
        return Outcome(None, name, f"Interrupted ({name}) before the run started: {what}.")
    m = active.manifest()
    active.update_manifest(
        status="incomplete",
        interrupted=True,
        finished=now(),
        interruptions=[*(m.get("interruptions") or []), {"at": now(), "signal": name}],
    )
    done = len(active.cases())
    return Outcome(
        active,
        name,
        f"Interrupted ({name}): {done} of {len(p.cases)} cases finished, saved in "
        f"{active.path}. Finish the run with: {p.resume_hint()}",
    )


def _failed(p: RunPlan, active: Bundle, e: HarnessError, ui: Ui) -> None:
    if isinstance(e, EngineUnavailable):
        # The engine went away mid-run: one Error line with what is kept and how to go on.
        what = f"the Docker engine went away during the run ({e.detail or e})"
        active.update_manifest(status="incomplete", error=what)
        raise EngineUnavailable(
            f"{what}. {len(active.cases())} of {len(p.cases)} cases finished; everything "
            f"measured so far is saved in {active.path}. Once the engine is back, finish "
            f"the run with `{p.resume_hint()}`",
            e.detail,
        ) from e
    active.update_manifest(status="incomplete", error=str(e))
    ui.line(
        f"The run stopped; what it measured is in {active.path}. Once fixed, finish it "
        f"with: {p.resume_hint()}"
    )


def _image_versions(engine: Engine, tag: str, run_id: str) -> dict[str, Any]:
    res = engine.run(tag, ["cat", "/opt/rpb/versions.json"], run_id=run_id, cpuset=None)
    try:
        out = json.loads(res.stdout)
    except json.JSONDecodeError:
        return {"error": "no /opt/rpb/versions.json"}
    return out if isinstance(out, dict) else {}


def needed_images(p: RunPlan) -> list[str]:
    """Every image the run uses: the implementations', the data image, load generators'."""
    names = {c.impl.image for c in p.cases} | {p.suite.data_image}
    names |= {str(c.task.load["image"]) for c in p.cases if c.task.load.get("image")}
    return sorted(names)


def open_bundle(p: RunPlan, engine: Engine, ui: Ui) -> Bundle:
    """The run's bundle: created with its manifest, or the resumed run's, made ready to go
    on (refused when an image changed since)."""
    needed = needed_images(p)
    tags = resolve_tags(engine, p.suite, needed)
    images = {name: engine.require_image(tags[name]) for name in needed}
    if p.bundle is not None:
        return _reopen(p, engine, images, ui)
    for name in needed:
        images[name]["versions"] = _image_versions(engine, tags[name], p.run_id)
    fp = p.fingerprint()
    engine_info = engine.info()
    warnings = checks(fp, len(p.cores))
    if p.executor == "docker":
        warnings += engine_checks(engine_info)
    for w in warnings:
        ui.line(f"warning: {w}")
    manifest = run_manifest(
        p,
        images=images,
        base=engine.image(p.suite.base.tag),
        engine=engine_info,
        fingerprint=fp,
        warnings=warnings,
        harness_version=__version__,
        git_commit=git_commit(ROOT),
        argv=sys.argv,
        started=now(),
        machine=p.machine(),
        engine_url=p.engine_url,
        images_archive=p.archive,
    )
    bundle = Bundle.create(p.results, p.host, p.run_id, manifest)
    where = f"cpuset {p.cpuset}" if p.pinned else "any core (not pinned)"
    how = " without containers (local)" if p.executor == "local" else ""
    ui.line(f"run {p.run_id}: {len(p.cases)} cases on {where}{how} -> {bundle.path}")
    return bundle


def _reopen(p: RunPlan, engine: Engine, images: dict[str, Any], ui: Ui) -> Bundle:
    bundle = p.bundle
    assert bundle is not None
    manifest = bundle.manifest()
    for name, info in images.items():
        then = str((manifest.get("images") or {}).get(name, {}).get("id"))
        if then != info["id"]:
            raise UsageError(
                f"image {name} was rebuilt since run {p.run_id} started (now "
                f"{str(info['id'])[:19]}, then {then[:19]}). Results of two builds do not mix: "
                "start a new run"
            )
    # Containers of an earlier attempt that died without cleaning up.
    remove_containers(engine, p.run_id)
    state = prepare_resume(bundle, [c.case_id for c in p.cases])
    bundle.update_manifest(
        status="incomplete",
        interrupted=False,
        finished=None,
        error=None,
        resumed=[
            *(manifest.get("resumed") or []),
            {
                "at": now(),
                "previous_error": manifest.get("error"),
                "finished_cases": len(state.finished),
                "dropped_samples": state.dropped_samples,
                "harness_version": __version__,
                "git_commit": git_commit(ROOT),
                "fingerprint": p.fingerprint(),
                "argv": sys.argv,
                "images_archive": p.archive,
            },
        ],
    )
    ui.line(
        f"resuming run {p.run_id}: {len(state.finished)} of {len(p.cases)} cases finished, "
        f"{len(p.cases) - len(state.finished)} to go on cpuset {p.cpuset} -> {bundle.path}"
    )
    return bundle


@contextlib.contextmanager
def _executor(
    p: RunPlan, engine: Engine, bundle: Bundle, todo: list[Case], *, opts: RunOptions, ui: Ui
) -> Iterator[Any]:
    """The executor of the run's process runs, with its inputs ready: Docker containers
    (inputs in the data volume, a disk volume for tasks that write files, removed at the end)
    or the local runner (the images' unpacked files)."""
    tags = resolve_tags(engine, p.suite, needed_images(p))
    if p.executor == "local":
        from harness.local import local_executor, prepare_local

        backend = prepare_local(engine, p.suite, todo, tags, log=ui.line)
        bundle.update_manifest(local=backend.manifest())
        yield local_executor(backend, opts, p.profile)
        return
    data = prepare_inputs(engine, p.suite, todo, tags[p.suite.data_image], p.run_id, log=ui.line)
    output = prepare_output_volume(engine, todo, tags[p.suite.data_image], p.run_id)
    try:
        yield docker_executor(engine, p.run_id, opts, data, p.profile, output_volume=output)
    finally:
        if output is not None:
            remove_containers(engine, p.run_id)
            with contextlib.suppress(HarnessError):
                engine.remove_volume(output)


def execute_cases(p: RunPlan, engine: Engine, bundle: Bundle, ui: Ui) -> None:
    """Every unfinished case of the plan, with a progress display."""
    finished = frozenset(r["case_id"] for r in bundle.cases()) if p.bundle else frozenset()
    opts = RunOptions(
        cpuset=p.cpuset if p.pinned else None,
        timeout_s=p.timeout_s,
        seed=p.seed,
        limits=Limits(memory=p.memory),
    )
    todo = [c for c in p.cases if c.case_id not in finished]
    tags = resolve_tags(engine, p.suite, needed_images(p))
    with (
        _executor(p, engine, bundle, todo, opts=opts, ui=ui) as execute,
        ui.progress(sum(case_profile(c, p.profile).sessions for c in todo)) as progress,
    ):
        run_cases(
            bundle,
            p.suite,
            p.cases,
            p.profile,
            tags,
            execute=execute,
            opts=opts,
            on_session=progress,
            on_case=ui.case_done,
            finished=finished,
            engine=engine if p.executor == "docker" else None,
            run_id=p.run_id,
        )
        progress(None, 0, -1, -1)  # done


def remove_containers(engine: Engine | None, run_id: str, settle_s: float = 0.0) -> None:
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
            t = time.monotonic()
            if found:
                quiet_since = t
            if t > deadline or (not found and t - quiet_since >= settle_s):
                return
            time.sleep(0.25)
    except HarnessError as e:
        print(
            f"warning: could not remove the run's containers ({e}). Run `harness clean` later.",
            file=sys.stderr,
        )
