"""Per-core locks, so two `harness run`s on one host never pin benchmarks to the same cores.

A run holds an exclusive `flock` on one file per core of its cpuset (`cpu<N>.lock` in the lock
folder) from before its bundle is created until it ends. Taking them never waits: a core held by
another run makes the new run refuse at once, naming the holder (pid and run id, written into
the lock file by whoever holds it). The kernel drops a flock when its holder exits, however it
exits, so a crashed run leaves no stale lock behind; the files themselves stay (deleting a lock
file while someone may be opening it would let two runs hold "the same" lock).

The folder: $RPB_LOCK_DIR if set (tests), else /run/lock/rpb, else <tmp>/rpb-locks. It is made
world-writable and sticky, and the files world-writable, so runs of different users see each
other.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from harness.errors import HarnessError
from harness.host import available_cpus, format_cpu_list

LOCK_DIR_ENV = "RPB_LOCK_DIR"
DEFAULT_LOCK_DIRS = (Path("/run/lock/rpb"), Path(tempfile.gettempdir()) / "rpb-locks")


@dataclass(frozen=True)
class Holder:
    """Who holds a core, as its lock file says (None where the file does not say)."""

    pid: int | None
    run_id: str | None

    def describe(self) -> str:
        pid = self.pid if self.pid is not None else "unknown"
        return f"pid {pid}, run {self.run_id or 'unknown'}"


class CoresBusy(HarnessError):
    """Cores of the wanted cpuset are held by another harness run."""

    def __init__(self, busy: dict[int, Holder], free: list[int]) -> None:
        cores = sorted(busy)
        holders = sorted({h.describe() for h in busy.values()})
        listed = format_cpu_list(cores)
        what = f"core {listed} is" if len(cores) == 1 else f"cores {listed} are"
        who = (
            f"another harness run ({holders[0]})"
            if len(holders) == 1
            else f"other harness runs ({'; '.join(holders)})"
        )
        hint = (
            f"pick free cores with --cpuset {format_cpu_list(free)}"
            if free
            else "pick other cores with --cpuset when some are free"
        )
        super().__init__(f"{what} in use by {who}. Wait for it to finish, or {hint}.")
        self.busy = busy
        self.free = free


def lock_dir() -> Path:
    """The folder of the core locks (created if needed)."""
    env = os.environ.get(LOCK_DIR_ENV)
    candidates = (Path(env),) if env else DEFAULT_LOCK_DIRS
    problems = []
    for d in candidates:
        try:
            if not d.is_dir():
                d.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(OSError):
                    d.chmod(0o1777)  # every user's runs share the folder
            if os.access(d, os.W_OK | os.X_OK):
                return d
            problems.append(f"{d}: not writable")
        except OSError as e:
            problems.append(f"{d}: {e.strerror}")
    raise HarnessError(
        f"no usable folder for the core locks ({'; '.join(problems)}). "
        f"Set {LOCK_DIR_ENV} to a writable folder."
    )


def _open(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except PermissionError:
        # Another user's file we may not write: flock works on a read-only descriptor too.
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o666)
    return fd


def _holder(fd: int) -> Holder:
    try:
        raw = os.pread(fd, 4096, 0)
        info = json.loads(raw.decode()) if raw.strip() else {}
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict):
        info = {}
    pid = info.get("pid")
    run_id = info.get("run_id")
    return Holder(
        pid if isinstance(pid, int) else None, run_id if isinstance(run_id, str) else None
    )


class CoreLocks:
    """Exclusive, non-blocking locks on a set of cores, held for the life of a run.

    Use as a context manager, or call `acquire()` and `release()`. A lock is per open file
    description, so two `CoreLocks` in one process conflict like two processes do.
    """

    def __init__(self, cores: list[int], run_id: str, directory: Path | None = None) -> None:
        self.cores = sorted(set(cores))
        self.run_id = run_id
        self.directory = directory
        self._fds: dict[int, int] = {}

    def path(self, core: int) -> Path:
        assert self.directory is not None
        return self.directory / f"cpu{core}.lock"

    def acquire(self) -> None:
        """Take every core's lock, or none: raises CoresBusy naming the holders."""
        if self.directory is None:
            self.directory = lock_dir()
        busy: dict[int, Holder] = {}
        for core in self.cores:
            try:
                fd = _open(self.path(core))
            except OSError as e:
                self.release()
                raise HarnessError(
                    f"cannot open the lock file {self.path(core)} ({e.strerror}). "
                    f"Fix its permissions or set {LOCK_DIR_ENV} to a writable folder."
                ) from e
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                busy[core] = _holder(fd)
                os.close(fd)
                continue
            self._fds[core] = fd
        if busy:
            self.release()
            raise CoresBusy(busy, free_cores(self.directory, exclude=set(busy)))
        record = json.dumps(
            {
                "pid": os.getpid(),
                "run_id": self.run_id,
                "cores": format_cpu_list(self.cores),
                "since": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        ).encode()
        for fd in self._fds.values():
            with contextlib.suppress(OSError):  # a read-only descriptor: the lock still holds
                os.ftruncate(fd, 0)
                os.pwrite(fd, record + b"\n", 0)

    def release(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # the holder's record goes with the lock
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> CoreLocks:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def free_cores(directory: Path, exclude: set[int] | None = None) -> list[int]:
    """The cores this process may use that no harness run holds right now (probed, not taken)."""
    free = []
    for core in available_cpus():
        if exclude and core in exclude:
            continue
        try:
            fd = _open(directory / f"cpu{core}.lock")
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            free.append(core)
        finally:
            os.close(fd)
    return free
