"""The results bundle: `results/<host>/<run-id>/`, versioned, written so nothing is half-written.

Files of a bundle (format version BUNDLE_SCHEMA; history below):
- manifest.json: host fingerprint, suite, profile, images, cpuset, status (complete/incomplete).
- samples.jsonl: one line per process run, appended and fsynced after every container session.
- cases.jsonl: one line per finished case, with its status and, when it failed, why.
- summary.csv, report.md, report.html: written by `harness report`.

Schema history:
  1: first version.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import BundleError, HarnessError, UsageError
from harness.schema import (
    BUNDLE_SCHEMA,
    RUN_ID,
    path_component,
    validate_case,
    validate_manifest,
    validate_sample,
)

if TYPE_CHECKING:
    from harness.pipeline import RunPlan

RESULTS_DIR = Path("results")
MANIFEST = "manifest.json"
SAMPLES = "samples.jsonl"
CASES = "cases.jsonl"
# A run refuses to start with less free space than this where its results go. A run writes far
# less (a manifest and a few hundred bytes per process run), so this only catches a full disk.
MIN_FREE_BYTES = 10 * 1024 * 1024
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_RUN_ID = RUN_ID
_ADVICE = {
    errno.ENOSPC: "Free space",
    errno.EDQUOT: "Free space (your disk quota is used up)",
    errno.EROFS: "The file system is read-only: remount it read-write",
    errno.EACCES: "Fix the folder's permissions",
    errno.EPERM: "Fix the folder's permissions",
}


class ResultsWriteError(HarnessError):
    """Writing a bundle file failed (disk full, read-only, permissions): says what survived."""

    def __init__(self, path: Path, error: OSError, bundle: Path | None, *, report: bool = False):
        reason = error.strerror or str(error)
        advice = _ADVICE.get(error.errno or 0, "Check the folder")
        if report:
            message = (
                f"writing {path} failed: {reason}. {advice} and run `harness report` again; "
                "the measurements in the bundle are unchanged"
            )
        else:
            kept = (
                f"the cases finished so far are in {bundle}"
                if bundle is not None
                else "nothing was measured yet"
            )
            message = (
                f"writing results to {path} failed: {reason}. {advice} or choose another "
                f"folder with --results; {kept}"
            )
        super().__init__(message)
        self.path = path
        self.errno = error.errno
        self.bundle = bundle


@contextmanager
def _writing(path: Path, bundle: Path | None, *, report: bool = False) -> Iterator[None]:
    """Turn an OSError while writing `path` into a ResultsWriteError."""
    try:
        yield
    except OSError as e:
        raise ResultsWriteError(path, e, bundle, report=report) from e


def host_label(name: str | None = None) -> str:
    """A file-system-safe label for this host (or the given name)."""
    label = _SAFE.sub("-", name or socket.gethostname()).strip("-.")
    return label or "host"


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it."""
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append whole lines and fsync, so an interruption loses at most the rows in flight.

    When the write fails part-way (disk full), the file is cut back to its old length: it never
    keeps half a line. Never follows a symbolic link.
    """
    if not rows:
        return
    data = memoryview("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode())
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        start = os.fstat(fd).st_size
        try:
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        except BaseException:
            with suppress(OSError):
                os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)


def _regular_file(path: Path) -> bool:
    """True when `path` exists as a regular file; BundleError when it is a link or special."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise BundleError(
            f"{path} is a symbolic link or not a regular file; refusing to read it. A bundle "
            "holds regular files only: copy it again without links"
        )
    return path.exists()


def read_jsonl(
    path: Path, validate: Callable[[dict[str, Any], str], None] | None = None
) -> list[dict[str, Any]]:
    """Read a JSONL file; a torn last line (an interrupted append) is ignored.

    `validate(row, "path:line")` checks each row and raises BundleError on a bad one.
    """
    if not _regular_file(path):
        return []
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError) as e:
        raise BundleError(f"{path} cannot be read ({e}). Check the file or copy it again") from e
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as e:
            if i == len(lines) - 1:
                break
            raise BundleError(
                f"{path}:{i + 1} is not valid JSON ({e}). The file is damaged: copy the bundle "
                "again or run again"
            ) from e
        if not isinstance(row, dict):
            raise BundleError(
                f"{path}:{i + 1} is not a JSON object. The file is damaged: copy the bundle "
                "again or run again"
            )
        if validate is not None:
            validate(row, f"{path}:{i + 1}")
        rows.append(row)
    return rows


def torn_tail(path: Path) -> int | None:
    """The length in bytes of a torn last line of a JSONL file (an interrupted append, which
    `read_jsonl` leaves out), or None when the file ends with a whole row or does not exist."""
    if not _regular_file(path):
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    if not last.strip():
        return None
    try:
        json.loads(last)
    except (ValueError, RecursionError):
        return len(last)
    return None


def _size_text(n: int) -> str:
    return f"{n / 1024:.0f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


def check_writable(results: Path, min_free: int = MIN_FREE_BYTES) -> None:
    """Fail before any work when the results folder cannot be written or its disk is full.

    Free space is checked before anything is created, so a refused run leaves nothing behind.
    """
    existing = results
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(
            f"the results folder {results} is not writable ({os.strerror(errno.ENOTDIR)}: "
            f"{existing} is a file). Choose another with --results or fix its permissions."
        )
    try:
        free = shutil.disk_usage(existing).free
    except OSError as e:
        raise UsageError(
            f"the results folder {results} cannot be checked ({e.strerror}). Choose another "
            "with --results."
        ) from e
    if free < min_free:
        raise UsageError(
            f"the results folder {results} has {_size_text(free)} of free space left; a run "
            f"needs at least {_size_text(min_free)}. Free space or choose another folder with "
            "--results."
        )
    try:
        results.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=results)
        os.close(fd)
        Path(probe).unlink()
    except OSError as e:
        raise UsageError(
            f"the results folder {results} is not writable ({e.strerror}). "
            "Choose another with --results or fix its permissions."
        ) from e


class Bundle:
    """One run's folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, results: Path, host: str, run_id: str, manifest: dict[str, Any]) -> Bundle:
        """Make the run's folder and its manifest; on failure nothing of the bundle remains."""
        path = results / path_component(host, "host") / path_component(run_id, "run id")
        try:
            path.mkdir(parents=True, exist_ok=False)
        except FileExistsError as e:
            raise BundleError(f"{path} already exists. Start the run again (new run id)") from e
        except OSError as e:
            raise ResultsWriteError(path, e, None) from e
        b = cls(path)
        try:
            with _writing(path / MANIFEST, None):
                b._write_manifest(
                    {"schema": BUNDLE_SCHEMA, "run_id": run_id, "host": host, **manifest}
                )
        except ResultsWriteError:
            with suppress(OSError):
                path.rmdir()
            raise
        return b

    @classmethod
    def open(cls, path: Path) -> Bundle:
        """Open a bundle for reading, possibly from another host: its manifest and every row of
        samples.jsonl and cases.jsonl are validated (harness/schema.py) before any use.

        A bundle folder that is a symbolic link is refused (reports would be written wherever
        it points); so are bundle files that are links or not regular files.
        """
        if path.is_symlink():
            raise BundleError(
                f"{path} is a symbolic link to {path.readlink()}; the kit does not read or "
                f"write a bundle through a link. Pass the folder itself: harness report "
                f"{path.resolve()}"
            )
        if not _regular_file(path / MANIFEST):
            raise BundleError(
                f"{path} is not a results bundle (no {MANIFEST}). "
                "Pass a folder like results/<host>/<run-id>."
            )
        b = cls(path)
        validate_manifest(b.manifest(), str(path / MANIFEST))
        read_jsonl(path / SAMPLES, validate_sample)
        read_jsonl(path / CASES, validate_case)
        return b

    def manifest(self) -> dict[str, Any]:
        target = self.path / MANIFEST
        try:
            m = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as e:
            raise BundleError(
                f"{target} cannot be read ({e}). Check the file or copy the bundle again"
            ) from e
        if not isinstance(m, dict):
            raise BundleError(f"{target} is not a JSON object. Check the file or copy it again")
        return m

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        atomic_write(self.path / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        with _writing(self.path / MANIFEST, self.path):
            self._write_manifest(manifest)

    def update_manifest(self, **fields: Any) -> None:
        m = self.manifest()
        m.update(fields)
        self.write_manifest(m)

    def append_samples(self, rows: list[dict[str, Any]]) -> None:
        with _writing(self.path / SAMPLES, self.path):
            append_jsonl(self.path / SAMPLES, rows)

    def append_case(self, row: dict[str, Any]) -> None:
        with _writing(self.path / CASES, self.path):
            append_jsonl(self.path / CASES, [row])

    def samples(self) -> list[dict[str, Any]]:
        """Every sample (validated by `open` when the bundle came from disk)."""
        return read_jsonl(self.path / SAMPLES)

    def cases(self) -> list[dict[str, Any]]:
        """Every finished case (validated by `open` when the bundle came from disk)."""
        return read_jsonl(self.path / CASES)

    def problems(self) -> list[str]:
        """What reading this bundle left out, for a report to show: torn last lines."""
        out = []
        for name in (SAMPLES, CASES):
            n = torn_tail(self.path / name)
            if n is not None:
                out.append(
                    f"the last line of {name} is cut off ({n} bytes, an interrupted write) and "
                    "was left out: the run in flight when it stopped is not in these tables"
                )
        return out

    def write(self, name: str, data: str) -> Path:
        if "/" in name or name.startswith("."):
            raise BundleError(f"refusing to write {name!r} outside the bundle.")
        target = self.path / name
        with _writing(target, self.path, report=True):
            atomic_write(target, data)
        return target


def run_manifest(plan: RunPlan, **facts: Any) -> dict[str, Any]:
    """The manifest of a new run: what it does (from its plan: profile, cases, cpuset,
    limits, suite, baselines, routes) and the facts found when it started (images, engine,
    host fingerprint, warnings, versions, passed as keywords)."""
    prof, suite = plan.profile, plan.suite
    from harness.engine import Limits

    limits = Limits(memory=plan.memory)
    return {
        "run_id": plan.run_id,
        "host": plan.host,
        "finished": None,
        "status": "incomplete",
        "cpus": len(plan.cores),
        "cpuset": plan.cpuset,
        "profile": {
            "name": prof.name,
            "size": prof.size,
            "sessions": prof.sessions,
            "runs": prof.runs,
            "warmup": prof.warmup,
            "iters": prof.iters,
            "max_sessions": prof.session_cap,
            "target_ci": prof.target_ci,
            "budget_s": None if prof.budget_s == float("inf") else prof.budget_s,
            "load_s": prof.load_s,
            "warmup_cap": prof.warmup_cap,
            "settle_k": prof.settle_k,
            "settle_band": prof.settle_band,
            "cold_sessions": prof.cold_sessions,
        },
        "seed": plan.seed,
        "timeout_s": plan.timeout_s,
        "limits": {"memory": limits.memory, "pids": limits.pids, "scratch": limits.scratch},
        "suite": {"name": suite.name, "path": str(suite.path), "sha256": suite.digest},
        "baselines": {c.task.name: c.task.baseline for c in plan.cases},
        "routes": {
            c.case_id: {"route": c.impl.route, "threads": c.threads, "kind": c.task.kind}
            for c in plan.cases
        },
        "aa": plan.aa,
        "pinned": plan.pinned,
        "executor": plan.executor,
        "cases": [c.case_id for c in plan.cases],
        **facts,
    }


def latest_bundle(results: Path) -> Path:
    """The most recent bundle under `results/` (any host), by run id.

    A host folder that is a symbolic link is refused like a linked bundle (`Bundle.open`).
    """
    found = [p for p in results.glob("*/*") if _RUN_ID.match(p.name) and (p / MANIFEST).is_file()]
    if not found:
        raise BundleError(
            f"no results bundle under {results}/. Run `harness run` (or `make reproduce`) first."
        )
    latest = max(found, key=lambda p: p.name)
    if latest.parent.is_symlink():
        raise BundleError(
            f"{latest.parent} is a symbolic link to {latest.parent.readlink()}; the kit does "
            f"not read or write a bundle through a link. Pass the bundle folder itself: "
            f"harness report {latest.resolve()}"
        )
    return latest
