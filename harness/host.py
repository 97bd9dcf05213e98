"""Host facts: CPU lists, the cpuset a run uses, and the host fingerprint (docs/methodology.md
section 6).

Host files are read through a root path so tests can point it at a fake tree.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import UsageError

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def parse_cpu_list(text: str) -> list[int]:
    """Parse the kernel's CPU list format ('0-3,8,10-11') into sorted CPU numbers."""
    cpus: set[int] = set()
    for raw in text.strip().split(","):
        part = raw.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            if sep:
                a, b = int(lo), int(hi)
                if b < a:
                    raise ValueError
                cpus.update(range(a, b + 1))
            else:
                cpus.add(int(lo))
        except ValueError:
            raise UsageError(f"'{text}' is not a CPU list. Use a form like 0-3,6.") from None
    return sorted(cpus)


def format_cpu_list(cpus: list[int]) -> str:
    """The inverse of parse_cpu_list, with ranges compressed ('0-3,8')."""
    out: list[str] = []
    s = sorted(set(cpus))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[j] + 1:
            j += 1
        out.append(str(s[i]) if i == j else f"{s[i]}-{s[j]}")
        i = j + 1
    return ",".join(out)


def available_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def choose_cpuset(n: int, available: list[int], root: Path = Path("/")) -> list[int]:
    """N distinct cores for each benchmark container.

    One hardware thread per physical core while there are cores left (two threads of one core
    share its execution units and caches), and among those the highest-numbered: CPU 0 usually
    serves most interrupts and housekeeping. Only when N exceeds the physical cores do siblings
    join, again highest first. Without topology files every CPU counts as a core of its own.
    """
    if n < 1:
        raise UsageError(f"--cpus {n} is not allowed. Give at least 1.")
    if n > len(available):
        raise UsageError(
            f"--cpus {n} exceeds the {len(available)} cores this host offers "
            f"({format_cpu_list(available)}). Give at most {len(available)}."
        )
    ours = set(available)
    cores: dict[frozenset[int], list[int]] = {}
    for cpu in sorted(ours):
        cores.setdefault(_core_of(root, cpu), []).append(cpu)
    # Each core's threads highest first; a core ranks by its highest available thread.
    threads = sorted((sorted(t, reverse=True) for t in cores.values()), reverse=True)
    order = [t[0] for t in threads] + sorted((c for t in threads for c in t[1:]), reverse=True)
    return sorted(order[:n])


def _core_of(root: Path, cpu: int) -> frozenset[int]:
    """The hardware threads of `cpu`'s physical core (just `cpu` when the kernel does not say)."""
    text = _read(root, f"sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
    try:
        threads = frozenset(parse_cpu_list(text)) if text else frozenset()
    except UsageError:
        threads = frozenset()
    return threads if cpu in threads else frozenset({cpu})


def shared_cores(cpuset: list[int], siblings: dict[Any, str]) -> list[list[int]]:
    """The physical cores with two or more hardware threads in `cpuset`, each as its threads in
    the cpuset. `siblings` maps a CPU to its thread_siblings_list (as in the fingerprint)."""
    ours = set(cpuset)
    found: set[tuple[int, ...]] = set()
    for text in siblings.values():
        try:
            threads = ours.intersection(parse_cpu_list(text))
        except UsageError:
            continue
        if len(threads) > 1:
            found.add(tuple(sorted(threads)))
    return [list(t) for t in sorted(found)]


def _read(root: Path, rel: str) -> str | None:
    try:
        return (root / rel).read_text().strip()
    except OSError:
        return None


def cpu_model(root: Path = Path("/")) -> str | None:
    text = _read(root, "proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return None


def smt_siblings(root: Path, cpus: list[int]) -> dict[int, str]:
    out = {}
    for c in cpus:
        s = _read(root, f"sys/devices/system/cpu/cpu{c}/topology/thread_siblings_list")
        if s is not None:
            out[c] = s
    return out


def runnable_threads(root: Path = Path("/")) -> int | None:
    """Threads runnable right now (procs_running of /proc/stat), this reader included."""
    for line in (_read(root, "proc/stat") or "").splitlines():
        if line.startswith("procs_running "):
            return int(line.split()[1])
    return None


def git_commit(repo: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
        )
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def fingerprint(
    cpuset: list[int],
    root: Path = Path("/"),
    *,
    available: list[int] | None = None,
    kernel: str | None = None,
) -> dict[str, Any]:
    """What describes this host for a reader of the results (warnings come from `checks`).

    Another engine's host (`harness run --engine`): `root` is a copy of its /proc and /sys
    files read by a container there, `available` its cores and `kernel` what its engine says.
    """
    gov = _read(root, f"sys/devices/system/cpu/cpu{cpuset[0]}/cpufreq/scaling_governor")
    no_turbo = _read(root, "sys/devices/system/cpu/intel_pstate/no_turbo")
    boost = _read(root, "sys/devices/system/cpu/cpufreq/boost")
    load = _read(root, "proc/loadavg")
    swaps = (_read(root, "proc/swaps") or "").splitlines()[1:]
    return {
        "cpu_model": cpu_model(root),
        "cores_online": _read(root, "sys/devices/system/cpu/online"),
        "cores_available": format_cpu_list(available_cpus() if available is None else available),
        "cpuset": format_cpu_list(cpuset),
        "smt_siblings": smt_siblings(root, cpuset),
        "governor": gov,
        "turbo": None if no_turbo is None and boost is None else (no_turbo or boost),
        "loadavg": load,
        "runnable_threads": runnable_threads(root),
        "swap_devices": len(swaps),
        "cgroup_v2": (root / "sys/fs/cgroup/cgroup.controllers").exists(),
        "kernel": platform.release() if kernel is None else kernel,
        "aslr": _read(root, "proc/sys/kernel/randomize_va_space"),
        "machine": platform.machine(),
        "harness_version": __version__,
    }


def machine_label(hostname: str, cpu_model: str | None, ncpu: int | None) -> str:
    """The default host label of a bundle: the hostname and a short hash of the CPU model and
    core count, so that two machines called alike (every VM is `vm`) stay apart, and one
    machine keeps its label from run to run. A file-system-safe path component."""
    digest = hashlib.sha256(f"{cpu_model or '?'}|{ncpu or 0}".encode()).hexdigest()[:6]
    name = _UNSAFE.sub("-", hostname).strip("-.")[:200] or "host"
    return f"{name}-{digest}"


def machine_identity(manifest: dict[str, Any]) -> tuple[str, int] | None:
    """What tells machines apart in a bundle's manifest: (CPU model, cores); None when the
    manifest does not say. Bundles from before `machine`: the fingerprint and the engine."""
    m = manifest.get("machine")
    if isinstance(m, dict) and m.get("cpu_model") is not None:
        return str(m.get("cpu_model")), int(m.get("ncpu") or 0)
    fp, eng = manifest.get("fingerprint"), manifest.get("engine")
    model = fp.get("cpu_model") if isinstance(fp, dict) else None
    ncpu = eng.get("ncpu") if isinstance(eng, dict) else None
    if model is None:
        return None
    return str(model), int(ncpu) if isinstance(ncpu, int) and not isinstance(ncpu, bool) else 0


def local_machine() -> dict[str, Any]:
    """This machine as `machine_label` sees it (the local engine's host)."""
    ncpu = os.cpu_count() or 0
    model = cpu_model()
    name = socket.gethostname()
    return {
        "hostname": name,
        "cpu_model": model,
        "ncpu": ncpu,
        "label": machine_label(name, model, ncpu),
    }


def checks(fp: dict[str, Any], n_cpus: int) -> list[str]:
    """Noise warnings from a fingerprint: never failures, but they go into the report."""
    warnings = []
    if fp.get("governor") not in (None, "performance"):
        warnings.append(
            f"CPU frequency governor is '{fp['governor']}', not 'performance': "
            "times may vary with frequency scaling."
        )
    load = fp.get("loadavg")
    if load:
        one_min = float(load.split()[0])
        cores = len(parse_cpu_list(fp.get("cores_available") or "0"))
        if one_min > max(0.5, 0.25 * cores):
            warnings.append(
                f"the host looks busy: 1-minute load average {one_min:.2f} on {cores} cores."
            )
    running = fp.get("runnable_threads")
    if running is not None and running - 1 >= max(1, len(fp.get("smt_siblings") or {})):
        warnings.append(
            f"{running - 1} other threads were runnable when the host was checked: "
            "something else is using the CPU."
        )
    if fp.get("swap_devices"):
        warnings.append("swap is enabled: a benchmark near its memory limit may page.")
    # A sibling outside the cpuset is no concern (the container never runs there); two threads
    # of one core inside it are.
    cpuset = parse_cpu_list(fp.get("cpuset") or "")
    shared = shared_cores(cpuset, fp.get("smt_siblings") or {})
    if shared:
        which = " and ".join(format_cpu_list(t) for t in shared)
        warnings.append(
            f"the cpuset includes SMT siblings (CPUs {which} share a physical core): "
            "two benchmark threads may share a core."
        )
    if n_cpus == len(parse_cpu_list(fp.get("cores_available") or "0")):
        warnings.append(
            "the cpuset takes every core of the host: the engine and the harness share them."
        )
    return warnings


# Storage drivers that put a slow layer between a program and its files.
_SLOW_STORAGE = {
    "fuse-overlayfs": "every file a program opens goes through FUSE",
    "vfs": "images are full copies on the host's file system, without overlay",
}


def engine_checks(info: dict[str, Any]) -> list[str]:
    """Warnings about the Docker engine itself: what it adds to the measured times."""
    warnings = []
    driver = info.get("storage_driver")
    if driver in _SLOW_STORAGE:
        warnings.append(
            f"Docker's storage driver is {driver}: {_SLOW_STORAGE[driver]}, which inflates "
            "start-up and import times in containers. `harness run --local` measures the same "
            "programs without it (see experiments/overhead.sh)."
        )
    return warnings
