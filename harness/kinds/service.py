"""The `service` kind: a server and a load generator, both started by the harness.

One session of a case is one server container's life:
1. the server starts in its own container, pinned to the server's cores, with no network but
   its own loopback;
2. the load generator runs in a second container that joins the server's network namespace
   (so traffic stays on that loopback), pinned to the other cores, once per phase:
   `ready` (waits until the server answers), `check` (seeded requests compared with the
   reference answers; malformed requests must be refused), a warm-up, `saturate` (closed
   loop, as fast as the server goes) and `rate` (open loop at each fixed request rate);
3. after each phase the server's CPU time and peak memory are read from its cgroup; a server
   that exited fails the case with its log tail; the server container is always removed.

The fixed rates are the same for every server of a task: fractions (`rates`) of the slowest
server's saturation throughput, found by a short probe of each server before the task's first
session (`prepare`). The metric is nanoseconds per request at saturation (1 / throughput).

Each phase prints one JSON line (the last line of its stdout):
- ready: anything, exit status 0 when the server answered;
- check: `ok` (requests answered right), `wrong` (a list), `malformed_ok`, `malformed_total`;
- saturate, rate: `requests`, `errors`, `duration_ns` (or `rps`), optionally `latency_ns`
  ({"p50", "p90", "p99", "p999", "max"}) and `cpu_ns` (the generator's own CPU time).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import EngineUnavailable, HarnessError, SuiteError
from harness.host import parse_cpu_list
from harness.kinds.kernel import last_json_line
from harness.schema import SAMPLE_SCHEMA
from harness.suite import THREADS_CPUS

if TYPE_CHECKING:
    from harness.engine import Engine, RunResult
    from harness.kinds.context import SessionContext
    from harness.suite import Case, Profile, Task

PHASES = ("ready", "check", "saturate", "rate")
CHECK_PASSED = "pass"
TAIL = 2000
# A load generator busier than this share of its cores may itself be the bottleneck.
CLIENT_BUSY = 0.9
WARMUP_S = 2.0
# How long a server may take to answer its first request.
READY_TIMEOUT_S = 60.0


def split_cpuset(cpuset: str | None) -> tuple[str | None, str | None]:
    """Server cores and load-generator cores: the last core of the cpuset goes to the load
    generator, the rest to the server; with one core (or none) they share it."""
    from harness.host import format_cpu_list

    if cpuset is None:
        return None, None
    cores = parse_cpu_list(cpuset)
    if len(cores) < 2:
        return cpuset, cpuset
    return format_cpu_list(cores[:-1]), format_cpu_list(cores[-1:])


def _number(x: Any) -> float | None:
    ok = isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
    return float(x) if ok else None


class ServiceKind:
    name = "service"
    metric = "per_request"
    description = "a server under a pinned load generator: throughput, latency, CPU, memory"

    # ----- the suite ---------------------------------------------------------------------------
    def validate(self, task: Task, where: str) -> None:
        load = task.load
        here = f"{where}.load"
        if not load:
            raise SuiteError(
                f"{where}: a service task needs a [{here}] table naming the load generator's "
                "image and its phases (ready, saturate; check and rate optional)."
            )
        if not isinstance(load.get("image"), str):
            raise SuiteError(f"{here}: 'image' must name the load generator's image.")
        for phase in PHASES:
            argv = load.get(phase)
            if argv is None and phase in ("check", "rate"):
                continue
            if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
                raise SuiteError(f"{here}: '{phase}' must be a non-empty list of strings.")
        rates = load.get("rates", [])
        if not isinstance(rates, list) or not all(
            (r := _number(x)) is not None and 0 < r <= 1 for x in rates
        ):
            raise SuiteError(f"{here}: 'rates' must be fractions in (0, 1], e.g. [0.5, 0.8].")
        if rates and "rate" not in load:
            raise SuiteError(f"{here}: 'rates' needs a 'rate' phase to run them.")
        port = load.get("port", 8000)
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise SuiteError(f"{here}: 'port' must be a TCP port number.")

    def expected(self, case: Case) -> str | None:
        return CHECK_PASSED

    def sizes(self, task: Task, profile: Profile) -> tuple[int | None, ...]:
        return (None,)

    def values(self, sample: Mapping[str, Any], warmup_iters: int) -> list[float]:
        v = _number(sample.get("per_request_ns"))
        return [] if v is None or sample.get("warmup") else [v]

    # ----- running -----------------------------------------------------------------------------
    def prepare(self, cases: list[Case], ctx: SessionContext) -> dict[str, Any]:
        """The fixed request rates of each task, from a short saturation probe of every server
        (the same rates for all of a task's servers); kept in ctx.state["rates"]."""
        rates: dict[str, list[float]] = ctx.state.setdefault("rates", {})
        probes: dict[str, dict[str, float]] = ctx.state.setdefault("probes", {})
        for case in cases:
            task = case.task
            if task.name in rates or not task.load.get("rates"):
                continue
            found: dict[str, float] = probes.setdefault(task.name, {})
            if case.impl.name in found:
                continue
            with _Server(case, ctx) as server:
                if server.failure is None:
                    out, why = server.phase("saturate", ctx.profile.load_s / 2)
                    rps = _rps(out) if why is None else None
                    if rps:
                        found[case.impl.name] = rps
        for task_name, found in probes.items():
            if task_name in rates or not found:
                continue
            task = next(c.task for c in cases if c.task.name == task_name)
            slowest = min(found.values())
            rates[task_name] = [round(slowest * float(f), 1) for f in task.load.get("rates", [])]
        return {"rates": rates, "probes": probes}

    def session(
        self, case: Case, index: int, ctx: SessionContext
    ) -> tuple[list[dict[str, Any]], str | None]:
        if ctx.engine is None:
            return [], "a service task needs Docker containers (it cannot run with --local)"
        samples: list[dict[str, Any]] = []
        with _Server(case, ctx) as server:
            if server.failure is not None:
                return samples, server.failure
            plan: list[tuple[str, float | None, bool]] = []
            if "check" in case.task.load:
                plan.append(("check", None, False))
            if ctx.profile.warmup:
                plan.append(("saturate", None, True))
            plan.append(("saturate", None, False))
            rates = ctx.state.get("rates", {}).get(case.task.name, [])
            plan.extend(("rate", r, False) for r in rates)
            for run, (phase, rate, warmup) in enumerate(plan):
                duration = min(WARMUP_S, ctx.profile.load_s) if warmup else ctx.profile.load_s
                cpu0 = server.cpu_ns()
                out, why = server.phase(phase, duration, rate)
                where = _Where(case, index, run, ctx.lang(case), server.threads)
                sample = _sample(where, _Phase(phase, rate, warmup), out, why)
                cpu1 = server.cpu_ns()
                if cpu0 is not None and cpu1 is not None:
                    sample["server_cpu_ns"] = cpu1 - cpu0
                sample["server_maxrss_kb"] = server.peak_kb()
                samples.append(sample)
                if why is not None:
                    return samples, f"{phase}: {why}"
        return samples, None


KIND = ServiceKind()


def _rps(out: Mapping[str, Any] | None) -> float | None:
    if not out:
        return None
    rps = _number(out.get("rps"))
    if rps is None:
        dur, n = _number(out.get("duration_ns")), _number(out.get("requests"))
        rps = n / dur * 1e9 if dur and n is not None else None
    return rps if rps and rps > 0 else None


@dataclass(frozen=True)
class _Where:
    case: Case
    session: int
    run: int
    lang: str
    threads: int


@dataclass(frozen=True)
class _Phase:
    name: str
    rate: float | None
    warmup: bool


def _sample(
    where: _Where, ph: _Phase, out: dict[str, Any] | None, why: str | None
) -> dict[str, Any]:
    """One sample per load phase (see harness/schema.py, sample schema 2)."""
    case, phase, rate, warmup = where.case, ph.name, ph.rate, ph.warmup
    out = out or {}
    rps = _rps(out) if phase in ("saturate", "rate") else None
    checksum: str | None = None
    if phase == "check":
        checksum = _check_verdict(out)
    raw_latency = out.get("latency_ns")
    latency: dict[str, Any] = raw_latency if isinstance(raw_latency, dict) else {}
    dur = _number(out.get("duration_ns"))
    return {
        "schema": SAMPLE_SCHEMA,
        "kind": "service",
        "case_id": case.case_id,
        "task": case.task.name,
        "impl": case.impl.name,
        "lang": where.lang,
        "route": case.impl.route,
        "threads": where.threads,
        "image": case.impl.image,
        "size": case.size,
        "session": where.session,
        "run": where.run,
        "warmup": warmup,
        "phase": phase,
        "target_rps": rate,
        "wall_ns": None if dur is None else int(dur),
        "requests": out.get("requests"),
        "errors": out.get("errors"),
        "rps": rps,
        "per_request_ns": 1e9 / rps if rps and phase == "saturate" else None,
        "latency_ns": {k: v for k, v in latency.items() if _number(v) is not None},
        "client_cpu_ns": _number(out.get("cpu_ns")),
        # Rate phases: answers over requests scheduled; well below 1, the server fell behind.
        "achieved_fraction": _number(out.get("achieved_fraction")),
        "exit_code": 0 if why is None else 1,
        "signal": None,
        "timed_out": False,
        "checksum": checksum,
        "checksum_ok": why is None and (phase != "check" or checksum == CHECK_PASSED),
        "stderr_tail": (why or "")[-TAIL:],
    }


def _check_verdict(out: Mapping[str, Any]) -> str:
    """ "pass" when every seeded request was answered right and every malformed one refused."""
    wrong = out.get("wrong") or []
    ok, bad_ok, bad_all = out.get("ok"), out.get("malformed_ok"), out.get("malformed_total")
    passed = out.get("passed", True) is True
    if passed and not wrong and isinstance(ok, int) and ok > 0 and bad_ok == bad_all:
        return CHECK_PASSED
    return f"{ok} ok, wrong: {str(wrong)[:200]}, malformed refused: {bad_ok}/{bad_all}"


class _Server:
    """The server container of one session; removed on exit whatever happened."""

    def __init__(self, case: Case, ctx: SessionContext) -> None:
        self.case, self.ctx = case, ctx
        self.server_cpus, self.client_cpus = split_cpuset(ctx.opts.cpuset)
        self.port = str(case.task.load.get("port", 8000))
        self.container: Any = None
        self.failure: str | None = None
        self.threads = case.threads  # the server's threads, as it was started

    @property
    def engine(self) -> Engine:
        assert self.ctx.engine is not None
        return self.ctx.engine

    def __enter__(self) -> _Server:
        from dataclasses import replace

        limits = self.ctx.opts.limits
        if self.case.task.pids:
            limits = replace(limits, pids=self.case.task.pids)
        values = {"port": self.port}
        if self.case.impl.threads == THREADS_CPUS and self.server_cpus is not None:
            # "Every core": every core the server has (the load generator has its own).
            self.threads = len(parse_cpu_list(self.server_cpus))
            values["threads"] = str(self.threads)
        argv = self.case.argv(self.ctx.profile.iters, **values)
        try:
            self.container = self.engine.start(
                self.ctx.image(self.case),
                argv,
                run_id=self.ctx.run_id,
                cpuset=self.server_cpus,
                labels={"rpb.case": self.case.case_id, "rpb.role": "server"},
                limits=limits,
            )
        except EngineUnavailable:
            raise
        except HarnessError as e:
            # The engine refused or the program died as its container started (runc reports
            # a process that exits at once this way): this server's case fails, not the run.
            self.failure = f"the server container did not start: {e}"
            return self
        ready_s = float(self.case.task.load.get("ready_timeout_s", READY_TIMEOUT_S))
        _, why = self.phase("ready", min(ready_s, self.ctx.opts.timeout_s))
        if why is not None:
            self.failure = f"the server did not become ready: {why}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.container is not None:
            self.engine.remove(self.container)

    def _server_gone(self) -> str | None:
        state = self.engine.state(self.container)
        if state.get("Running"):
            return None
        code = state.get("ExitCode")
        oom = " (out of memory)" if state.get("OOMKilled") else ""
        tail = self.engine.logs(self.container)[-TAIL:].strip()
        return f"the server exited with status {code}{oom}: {tail or 'no output'}"

    def phase(  # noqa: PLR0911 - one return per way a phase ends
        self, phase: str, duration_s: float, rate: float | None = None
    ) -> tuple[dict[str, Any] | None, str | None]:
        """Run one load-generator phase; returns (its JSON line, failure or None)."""
        load = self.case.task.load
        values = {
            "port": self.port,
            "duration": f"{duration_s:g}",
            "rate": f"{rate:g}" if rate is not None else "0",
            "seed": str(self.ctx.opts.seed),
            "connections": str(load.get("connections", 32)),
            "timeout": f"{duration_s:g}",
        }
        from harness.suite import fill

        argv = [fill(a, values) for a in load[phase]]
        gone = self._server_gone()
        if gone:
            return None, gone
        t0 = time.monotonic()
        try:
            res: RunResult = self.engine.run(
                self.ctx.tags[str(load["image"])],
                argv,
                run_id=self.ctx.run_id,
                cpuset=self.client_cpus,
                labels={"rpb.case": self.case.case_id, "rpb.role": "load"},
                network_mode=f"container:{self.container.id}",
                timeout_s=duration_s + self.ctx.opts.timeout_s,
            )
        except EngineUnavailable:
            raise
        except HarnessError as e:
            # A server that died just now takes its network namespace with it.
            return None, self._server_gone() or f"the load generator did not start: {e}"
        spent = time.monotonic() - t0
        gone = self._server_gone()
        if gone:
            return None, gone
        if res.timed_out:
            return None, f"the load generator timed out after {spent:.0f} s"
        if res.exit_code != 0:
            tail = res.stderr.strip()[-TAIL:] or res.stdout.strip()[-TAIL:]
            return None, f"the load generator exited with status {res.exit_code}: {tail}"
        out = last_json_line(res.stdout)
        if out is None:
            return None, f"the load generator printed no JSON line: {res.stdout[-200:]!r}"
        return out, None

    def cpu_ns(self) -> int | None:
        try:
            return self.engine.cgroup_stats(self.container).get("cpu_ns")
        except HarnessError:
            return None

    def peak_kb(self) -> int | None:
        try:
            peak = self.engine.cgroup_stats(self.container).get("peak_bytes")
        except HarnessError:
            return None
        return None if peak is None else int(peak) // 1024
