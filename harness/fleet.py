"""One suite on several Docker engines at once (`harness run --engine A --engine B ...`).

Each engine gets its own `harness run --engine URL` process (so a host that fails, hangs or is
interrupted touches no other), started together; each writes its own bundle under
results/<host label>/. Their lines are shown prefixed with the engine. At the end: one line per
host (ok, or failed and why, with the command that finishes it), then `harness compare` of
every bundle written.

Cores: an engine on another host pins to that host's cores. Engines on this machine (unix
sockets, loopback) share its cores, so each gets cores the others do not (and the local core
locks, taken by each process, keep them apart from any other run here).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.engines import Target, parse_target
from harness.errors import UsageError
from harness.host import available_cpus, choose_cpuset, format_cpu_list
from harness.pipeline import RUN_SETTINGS, RunRequest


@dataclass
class HostRun:
    """One engine's process and what it reported."""

    target: Target
    argv: list[str]
    returncode: int | None = None
    bundle: Path | None = None  # from its last stdout line, or its Error line
    errors: list[str] = field(default_factory=list)  # its `Error:` lines
    resume: str | None = None  # the command that finishes its run
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.bundle is not None

    def why(self) -> str:
        if self.errors:
            # The command that finishes the run gets a line of its own in the summary.
            sentences = self.errors[-1].removeprefix("Error: ").split(". ")
            kept = [s for s in sentences if "harness run --resume" not in s]
            return ". ".join(kept).rstrip(".") + "."
        if self.returncode is not None and self.returncode > 128:
            return f"stopped by signal {signal.Signals(self.returncode - 128).name}"
        tail = " | ".join(self.lines[-3:])
        return f"exit status {self.returncode}: {tail[:300]}"


def local_cpusets(targets: list[Target], req: RunRequest) -> dict[str, str]:
    """Engines on this machine share its cores: give each its own (the highest first, as a
    single run takes them). Engine -> cpuset; engines on other hosts choose their own."""
    local = [t for t in targets if t.local]
    if len(local) < 2 or not req.pin:
        return {}
    if req.cpuset is not None:
        raise UsageError(
            f"--cpuset {req.cpuset} would pin the {len(local)} engines on this machine to the "
            "same cores. Drop --cpuset (each gets its own --cpus cores), or run them apart"
        )
    available = available_cpus()
    need = req.cpus * len(local)
    if need > len(available):
        raise UsageError(
            f"{len(local)} engines on this machine with --cpus {req.cpus} need {need} distinct "
            f"cores; this machine offers {len(available)} ({format_cpu_list(available)}). "
            "Lower --cpus or name fewer local engines"
        )
    out = {}
    left = list(available)
    for t in local:
        cores = choose_cpuset(req.cpus, left)
        left = [c for c in left if c not in cores]
        out[t.given] = format_cpu_list(cores)
    return out


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _setting_args(name: str, value: object) -> list[str]:
    """One setting of `harness run` as command-line words."""
    if name == "pin":
        return ["--pin" if value else "--no-pin"]
    if name == "aa":
        return ["--aa"] if value else []
    if name == "suite_path":
        return ["--suite", str(value)]
    if isinstance(value, tuple):
        return [w for v in value for w in (_option(name), str(v))]
    return [] if value is None else [_option(name), str(value)]


def child_argv(req: RunRequest, target: Target, cpuset: str | None) -> list[str]:
    """`harness run` for one engine: the options the user gave, that engine, its cores."""
    argv = [sys.executable, "-m", "harness.cli", "run", "--engine", target.given]
    for name in (*RUN_SETTINGS, "suite_path"):
        if name in req.given and name not in ("local", "host"):
            argv += _setting_args(name, getattr(req, name))
    if cpuset is not None:
        argv += ["--cpuset", cpuset]
    argv += ["--results", str(req.results)]
    if req.images is not None:
        argv += ["--images", str(req.images)]
    return argv


def check_request(req: RunRequest, engines: list[str]) -> list[Target]:
    if req.resume is not None:
        raise UsageError(
            "--resume finishes one host's run: give it with that host's --engine only (the "
            "summary of the run printed the command)"
        )
    if req.local:
        raise UsageError("--local runs without containers: it cannot go with --engine")
    if "host" in req.given:
        raise UsageError(
            "--host names one bundle's host; with several engines each host gets its own label "
            "(hostname and a hash of its CPU model and cores). Drop --host"
        )
    targets = [parse_target(e) for e in engines]
    seen: dict[str, str] = {}
    for t in targets:
        if (first := seen.setdefault(t.host, t.given)) != t.given or engines.count(t.given) > 1:
            raise UsageError(
                f"--engine {t.given} names the same engine as {first}. Give each engine once"
            )
    return targets


def _pump(
    hr: HostRun,
    proc: subprocess.Popen[str],
    line: Callable[[str], None],
    width: int,
    lock: threading.Lock,
) -> None:
    """Show a host's stderr lines, prefixed with its engine; keep its Error and resume lines."""
    assert proc.stderr is not None
    for raw in proc.stderr:
        text = raw.rstrip("\n")
        if not text.strip():
            continue
        hr.lines.append(text)
        if text.startswith("Error:"):
            hr.errors.append(text)
        if "harness run --resume " in text:
            rest = text.split("harness run --resume ", 1)[1]
            hr.resume = "harness run --resume " + rest.rstrip("`.")
        with lock:
            line(f"[{hr.target.given:<{width}}] {text}")


def _finish(hr: HostRun, proc: subprocess.Popen[str], pump: threading.Thread) -> None:
    # Not communicate(): it would read stderr too, taking lines from the pump thread.
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.wait()
    pump.join()
    hr.returncode = proc.returncode
    last = out.strip().splitlines()[-1] if out.strip() else ""
    hr.bundle = Path(last) if last and Path(last).is_dir() else _bundle_named(hr)


def run_fleet(
    req: RunRequest,
    engines: list[str],
    line: Callable[[str], None],
    *,
    env: dict[str, str] | None = None,
) -> list[HostRun]:
    """Run the suite on every engine in parallel; returns each host's outcome."""
    targets = check_request(req, engines)
    cpusets = local_cpusets(targets, req)
    base_env = dict(env if env is not None else os.environ)
    base_env.setdefault("COLUMNS", "120")
    runs = [HostRun(t, child_argv(req, t, cpusets.get(t.given))) for t in targets]
    width = max(len(t.given) for t in targets)
    lock = threading.Lock()
    started: list[tuple[HostRun, subprocess.Popen[str], threading.Thread]] = []
    for hr in runs:
        line(f"[{hr.target.given:<{width}}] $ harness {' '.join(hr.argv[3:])}")
        proc = subprocess.Popen(
            hr.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=hr.target.environment(base_env) | {"TERM": "dumb"},
            start_new_session=True,  # signals reach it through this process, once
        )
        pump = threading.Thread(target=_pump, args=(hr, proc, line, width, lock), daemon=True)
        pump.start()
        started.append((hr, proc, pump))

    def forward(signum: int, _frame: object) -> None:
        for _, proc, _ in started:
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for hr, proc, pump in started:
            _finish(hr, proc, pump)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return runs


def _bundle_named(hr: HostRun) -> Path | None:
    """The bundle a failed host's messages name ('saved in results/HOST/RUN')."""
    for text in reversed(hr.lines):
        for marker in ("saved in ", " -> ", "what it measured is in "):
            if marker in text:
                rest = text.split(marker, 1)[1].split()[0].rstrip(".;,")
                if Path(rest, "manifest.json").is_file():
                    return Path(rest)
    return None


def summary(runs: list[HostRun]) -> list[str]:
    """One line per host: ok with its bundle, or failed with why and how to finish it."""
    out = []
    for hr in runs:
        where = f" -> {hr.bundle}" if hr.bundle else ""
        if hr.ok:
            out.append(f"  ok      {hr.target.given}{where}")
            continue
        out.append(f"  FAILED  {hr.target.given}{where}: {hr.why()}")
        if hr.resume and hr.bundle is not None:
            out.append(f"          finish it with: {hr.resume}")
    return out
