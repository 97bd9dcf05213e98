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

import json
import os
import re
import secrets
import socket
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.errors import BundleError, UsageError

BUNDLE_SCHEMA = 1
RESULTS_DIR = Path("results")
MANIFEST = "manifest.json"
SAMPLES = "samples.jsonl"
CASES = "cases.jsonl"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_RUN_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{4,16}$")


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
    """Append whole lines and fsync, so an interruption loses at most the rows in flight."""
    if not rows:
        return
    data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    with path.open("a", encoding="utf-8") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a JSONL file; a torn last line (an interrupted append) is ignored."""
    if not path.exists():
        return []
    rows = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:
                break
            raise BundleError(f"{path}:{i + 1} is not valid JSON ({e}).") from e
        if not isinstance(row, dict):
            raise BundleError(f"{path}:{i + 1} is not a JSON object.")
        rows.append(row)
    return rows


def check_writable(results: Path) -> None:
    """Fail before any work when the results folder cannot be written."""
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
        path = results / host / run_id
        path.mkdir(parents=True, exist_ok=False)
        b = cls(path)
        b.write_manifest({"schema": BUNDLE_SCHEMA, **manifest})
        return b

    @classmethod
    def open(cls, path: Path) -> Bundle:
        if not (path / MANIFEST).is_file():
            raise BundleError(
                f"{path} is not a results bundle (no {MANIFEST}). "
                "Pass a folder like results/<host>/<run-id>."
            )
        b = cls(path)
        m = b.manifest()
        if m.get("schema") != BUNDLE_SCHEMA:
            raise BundleError(
                f"{path} has bundle schema {m.get('schema')!r}; this harness reads "
                f"schema {BUNDLE_SCHEMA}."
            )
        return b

    def manifest(self) -> dict[str, Any]:
        try:
            m = json.loads((self.path / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise BundleError(f"{self.path / MANIFEST} cannot be read: {e}.") from e
        if not isinstance(m, dict):
            raise BundleError(f"{self.path / MANIFEST} is not a JSON object.")
        return m

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        atomic_write(self.path / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    def update_manifest(self, **fields: Any) -> None:
        m = self.manifest()
        m.update(fields)
        self.write_manifest(m)

    def append_samples(self, rows: list[dict[str, Any]]) -> None:
        append_jsonl(self.path / SAMPLES, rows)

    def append_case(self, row: dict[str, Any]) -> None:
        append_jsonl(self.path / CASES, [row])

    def samples(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path / SAMPLES)

    def cases(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path / CASES)

    def write(self, name: str, data: str) -> Path:
        if "/" in name or name.startswith("."):
            raise BundleError(f"refusing to write {name!r} outside the bundle.")
        target = self.path / name
        atomic_write(target, data)
        return target


def latest_bundle(results: Path) -> Path:
    """The most recent bundle under `results/` (any host), by run id."""
    found = [p for p in results.glob("*/*") if _RUN_ID.match(p.name) and (p / MANIFEST).is_file()]
    if not found:
        raise BundleError(
            f"no results bundle under {results}/. Run `harness run` (or `make reproduce`) first."
        )
    return max(found, key=lambda p: p.name)
