"""Docker engines named on the command line (`harness run --engine`) and the hosts they run on.

An engine is reached Docker's own ways: `unix:///PATH/TO/SOCKET`, `tcp://host:2376` (TLS through
Docker's environment: DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, or a context's TLS files),
`ssh://user@host` (the `ssh` program), or the name of a Docker context (`docker context ls`).
No agent of ours runs on the other host: only its engine is used.

What the harness needs from the engine's host (its hostname, CPU model, cores, topology, load)
is read by a short-lived container of the base image there (`/proc`, `/sys`), because the host
that runs the harness is not the one that runs the benchmarks.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from harness.engine import Engine, connect
from harness.errors import UsageError
from harness.host import (
    available_cpus,
    choose_cpuset,
    cpu_model,
    fingerprint,
    local_machine,
    machine_label,
    parse_cpu_list,
)

SCHEMES = ("unix", "tcp", "ssh", "http", "https")
_CONTEXT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
# The host files a fingerprint reads (host.fingerprint), as a container sees them.
_FACT_FILES = (
    "/proc/cpuinfo /proc/loadavg /proc/stat /proc/swaps /proc/sys/kernel/randomize_va_space "
    "/sys/devices/system/cpu/online /sys/devices/system/cpu/cpu*/topology/thread_siblings_list "
    "/sys/devices/system/cpu/cpu*/cpufreq/scaling_governor "
    "/sys/devices/system/cpu/intel_pstate/no_turbo /sys/devices/system/cpu/cpufreq/boost "
    "/sys/fs/cgroup/cgroup.controllers"
)
_FACTS_SCRIPT = f"grep -H -s '' {_FACT_FILES}; true"


@dataclass(frozen=True)
class Target:
    """An engine as the user named it, and the environment that reaches it."""

    given: str  # as on the command line
    host: str  # the engine's address (DOCKER_HOST)
    env: dict[str, str] = field(default_factory=dict)  # DOCKER_* variables that reach it

    @property
    def local(self) -> bool:
        """Whether the engine runs on this machine (a unix socket or loopback address): its
        containers use this machine's cores, so the local core locks apply to it."""
        url = urlparse(self.host)
        return url.scheme == "unix" or (
            url.scheme in ("tcp", "http", "https") and (url.hostname or "") in _LOOPBACK
        )

    def environment(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """`base` (default: os.environ) without its DOCKER_* variables, plus this engine's."""
        env = {k: v for k, v in (base or dict(os.environ)).items() if not k.startswith("DOCKER_")}
        # Docker's TLS conventions carry over to a tcp:// engine unless a context set its own.
        if self.host.startswith("tcp://") and not self.env:
            src = base or os.environ
            env |= {k: src[k] for k in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH") if k in src}
        return env | self.env | {"DOCKER_HOST": self.host}


def parse_target(text: str) -> Target:
    """An `--engine` value: a URL of one of SCHEMES or the name of a Docker context."""
    text = text.strip()
    if "://" in text:
        scheme = text.split("://", 1)[0]
        if scheme not in SCHEMES:
            raise UsageError(
                f"--engine {text}: '{scheme}://' is not a way to reach a Docker engine. Give "
                "unix:///PATH/TO/SOCKET, tcp://HOST:2376, ssh://USER@HOST or a Docker context "
                "name"
            )
        if scheme == "unix" and not text[len("unix://") :].startswith("/"):
            raise UsageError(
                f"--engine {text}: a unix socket needs an absolute path, e.g. "
                "unix:///PATH/TO/SOCKET"
            )
        if scheme == "ssh":
            _require_ssh_support(text)
        return Target(text, text)
    if not _CONTEXT_NAME.match(text):
        raise UsageError(
            f"--engine {text!r} is neither an engine URL nor a Docker context name. Give "
            "unix:///PATH/TO/SOCKET, tcp://HOST:2376, ssh://USER@HOST or a name from "
            "`docker context ls`"
        )
    return _context_target(text)


def _require_ssh_support(text: str) -> None:
    """The Docker SDK reaches ssh:// engines only with paramiko installed (it then runs the
    `ssh` program, as the docker CLI does)."""
    import importlib.util

    if importlib.util.find_spec("paramiko") is None:
        raise UsageError(
            f"--engine {text}: the Docker SDK needs the paramiko package for ssh:// engines. "
            "Install it (pip install paramiko), or forward the engine's socket with `ssh -L` "
            "and give --engine unix:///LOCAL/SOCKET"
        )


def _context_target(name: str) -> Target:
    from docker.context import ContextAPI
    from docker.errors import DockerException

    try:
        ctx = ContextAPI.get_context(name)
    except DockerException as e:
        raise UsageError(f"--engine {name}: reading the Docker context failed ({e})") from e
    if ctx is None or not ctx.Host:
        raise UsageError(
            f"--engine {name}: there is no Docker context of that name. See `docker context "
            "ls`, or give the engine's URL (unix://, tcp://, ssh://)"
        )
    env: dict[str, str] = {}
    tls = ctx.TLSConfig
    cert_pair = getattr(tls, "cert", None) if tls is not None else None
    if tls is not None and cert_pair:
        cert = cert_pair[0]
        env = {
            "DOCKER_TLS_VERIFY": "1" if tls.verify else "",
            "DOCKER_CERT_PATH": str(Path(cert).parent),
        }
    if str(ctx.Host).startswith("ssh://"):
        _require_ssh_support(str(ctx.Host))
    return Target(name, str(ctx.Host), env)


def connect_target(target: Target) -> Engine:
    return connect(environment=target.environment())


@dataclass(frozen=True)
class HostFacts:
    """The host an engine runs on, as the harness needs it."""

    hostname: str
    cpu_model: str | None
    ncpu: int
    cpus: list[int]  # the cores its containers may be pinned to
    kernel: str | None
    local: bool
    root: Path  # its /proc and /sys files (a copy, for an engine on another host)

    @property
    def label(self) -> str:
        return machine_label(self.hostname, self.cpu_model, self.ncpu)

    def machine(self) -> dict[str, Any]:
        """The manifest's `machine`: what the default label is made of."""
        return {
            "hostname": self.hostname,
            "cpu_model": self.cpu_model,
            "ncpu": self.ncpu,
            "label": self.label,
        }

    def choose_cpuset(self, n: int) -> list[int]:
        return choose_cpuset(n, self.cpus, self.root)

    def fingerprint(self, cpuset: list[int]) -> dict[str, Any]:
        if self.local:
            return fingerprint(cpuset)
        return fingerprint(cpuset, self.root, available=self.cpus, kernel=self.kernel)


def parse_fact_files(text: str) -> dict[str, str]:
    """`grep -H '' FILES` output ('path:line' per line) -> {path: content}."""
    files: dict[str, list[str]] = {}
    for line in text.splitlines():
        path, sep, rest = line.partition(":")
        if sep and path.startswith("/"):
            files.setdefault(path, []).append(rest)
    return {p: "\n".join(lines) + "\n" for p, lines in files.items()}


def host_facts(engine: Engine, base_image: str, *, local: bool, run_id: str) -> HostFacts:
    """The engine host's facts. A local engine's host is this machine; for another host, a
    container of `base_image` there reads its /proc and /sys into a folder here."""
    info = engine.info()
    ncpu = int(info.get("ncpu") or 0)
    hostname = str(info.get("name") or "host")
    if local:  # this machine: the same label as a run without --engine
        here = local_machine()
        return HostFacts(
            str(here["hostname"]),
            here["cpu_model"],
            int(here["ncpu"]),
            available_cpus(),
            info.get("kernel"),
            True,
            Path("/"),
        )
    res = engine.run(
        base_image,
        ["sh", "-c", _FACTS_SCRIPT],
        run_id=run_id,
        cpuset=None,
    )
    root = Path(tempfile.mkdtemp(prefix="rpb-host-"))
    for path, content in parse_fact_files(res.stdout).items():
        target = root / path.lstrip("/")
        if ".." in Path(path).parts:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    online = root / "sys/devices/system/cpu/online"
    cpus = parse_cpu_list(online.read_text()) if online.is_file() else list(range(ncpu))
    if ncpu and len(cpus) != ncpu:
        cpus = list(range(ncpu))
    return HostFacts(
        hostname, cpu_model(root), ncpu or len(cpus), cpus, info.get("kernel"), False, root
    )
