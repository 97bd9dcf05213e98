"""Validation of a results bundle read from disk, before anything uses it.

A bundle may come from another host (README: "Comparing hosts"), so its contents are data from
elsewhere. Two rules:
- Names (task, implementation, case id, host facts, stderr) may be arbitrary strings: they are
  checked for type only and escaped wherever they are shown (jinja2 autoescape, `md_escape`),
  never trusted.
- A value that could name a file (the manifest's `run_id` and `host`, which are the bundle's own
  folder names) is refused when it could leave its folder: '/', '..', NUL, an absolute path.
Numbers must be finite, non-negative numbers (not booleans: JSON `true` is not a time).

Every problem raises `BundleError`, which the CLI shows as one `Error:` line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any

from harness.errors import BundleError

BUNDLE_SCHEMA = 1
# Sample rows (samples.jsonl). History:
#   1: process runs of the process and kernel kinds.
#   2: `kind`, `route`, `threads`, `phases_ns`; service samples (one per load phase: `phase`,
#      `target_rps`, `requests`, `errors`, `rps`, `per_request_ns`, `latency_ns`,
#      `client_cpu_ns`, `achieved_fraction`, `server_cpu_ns`, `server_maxrss_kb`).
SAMPLE_SCHEMA = 2
SAMPLE_SCHEMAS = (1, 2)
# The run id `store.new_run_id` makes: UTC time stamp, then random hex.
RUN_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{4,16}$")
# What `store.host_label` makes: one path component of safe characters.
HOST = re.compile(r"^[A-Za-z0-9_.-]{1,253}$")
_REFUSE = "refusing to use this bundle. Copy it again from the host that wrote it, or run again"

Check = Callable[[Any], bool]


def _num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _nonneg(x: Any) -> bool:
    return _num(x) and x >= 0


def _int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _nonneg_int(x: Any) -> bool:
    return _int(x) and x >= 0


def _str(x: Any) -> bool:
    return isinstance(x, str)


def _name(x: Any) -> bool:
    return isinstance(x, str) and 0 < len(x) <= 1000


def _bool(x: Any) -> bool:
    return isinstance(x, bool)


def _opt(check: Check) -> Check:
    return lambda x: x is None or check(x)


def _list_of(check: Check) -> Check:
    return lambda x: isinstance(x, list) and all(check(v) for v in x)


def _dict(x: Any) -> bool:
    return isinstance(x, dict)


def _dict_of_str(x: Any) -> bool:
    return isinstance(x, dict) and all(isinstance(v, str) for v in x.values())


def _dict_of_nonneg(x: Any) -> bool:
    return isinstance(x, dict) and all(_nonneg(v) for v in x.values())


def _str_or_dict(x: Any) -> bool:
    return isinstance(x, str | dict)


def _images(x: Any) -> bool:
    return isinstance(x, dict) and all(
        isinstance(spec, dict) and isinstance(spec.get("versions") or {}, dict)
        for spec in x.values()
    )


# Field -> (required, check, what it must be). Unknown fields are kept and ignored.
MANIFEST_FIELDS: dict[str, tuple[bool, Check, str]] = {
    "status": (False, _opt(_str), "a string"),
    "started": (False, _opt(_str), "a string"),
    "finished": (False, _opt(_str), "a string"),
    "cpus": (False, _opt(_nonneg_int), "a non-negative integer"),
    "cpuset": (False, _opt(_str), "a string"),
    "profile": (False, _opt(_str_or_dict), "a string or an object"),
    "seed": (False, _opt(_int), "an integer"),
    "timeout_s": (False, _opt(_nonneg), "a non-negative number"),
    "suite": (False, _opt(_str_or_dict), "a string or an object"),
    "baselines": (False, _opt(_dict_of_str), "an object of strings"),
    "cases": (False, _opt(_list_of(_str)), "a list of strings"),
    "images": (False, _opt(_images), "an object of objects"),
    "fingerprint": (False, _opt(_dict), "an object"),
    "engine": (False, _opt(_dict), "an object"),
    "warnings": (False, _opt(_list_of(_str)), "a list of strings"),
    "interrupted": (False, _opt(_bool), "true or false"),
    "error": (False, _opt(_str), "a string"),
    "harness_version": (False, _opt(_str), "a string"),
    "git_commit": (False, _opt(_str), "a string"),
    "executor": (False, _opt(_str), "a string"),
    "pinned": (False, _opt(_bool), "true or false"),
    "aa": (False, _opt(_bool), "true or false"),
    "routes": (False, _opt(_dict), "an object"),
    "kind_state": (False, _opt(_dict), "an object"),
    "machine": (False, _opt(_dict), "an object"),
    "engine_url": (False, _opt(_str), "a string"),
    "images_archive": (False, _opt(_dict), "an object"),
}

SAMPLE_FIELDS: dict[str, tuple[bool, Check, str]] = {
    "task": (True, _name, "a non-empty string"),
    "impl": (True, _name, "a non-empty string"),
    "session": (True, _nonneg_int, "a non-negative integer"),
    "wall_ns": (True, _opt(_nonneg), "a non-negative number"),
    "case_id": (False, _opt(_name), "a non-empty string"),
    "lang": (False, _opt(_str), "a string"),
    "image": (False, _opt(_str), "a string"),
    "size": (False, _opt(_nonneg_int), "a non-negative integer"),
    "run": (False, _opt(_nonneg_int), "a non-negative integer"),
    "warmup": (False, _opt(_bool), "true or false"),
    "user_ns": (False, _opt(_nonneg), "a non-negative number"),
    "sys_ns": (False, _opt(_nonneg), "a non-negative number"),
    "maxrss_kb": (False, _opt(_nonneg), "a non-negative number"),
    "setup_ns": (False, _opt(_nonneg), "a non-negative number"),
    "iter_ns": (False, _opt(_list_of(_nonneg)), "a list of non-negative numbers"),
    "exit_code": (False, _opt(_int), "an integer"),
    "signal": (False, _opt(_nonneg_int), "a non-negative integer"),
    "timed_out": (False, _opt(_bool), "true or false"),
    "checksum": (False, _opt(_str), "a string"),
    "checksum_ok": (False, _opt(_bool), "true or false"),
    "stderr_tail": (False, _opt(_str), "a string"),
    "kind": (False, _opt(_str), "a string"),
    "route": (False, _opt(_str), "a string"),
    "threads": (False, _opt(_nonneg_int), "a non-negative integer"),
    "phases_ns": (False, _opt(_dict_of_nonneg), "an object of non-negative numbers"),
    "phase": (False, _opt(_str), "a string"),
    "target_rps": (False, _opt(_nonneg), "a non-negative number"),
    "requests": (False, _opt(_nonneg), "a non-negative number"),
    "errors": (False, _opt(_nonneg), "a non-negative number"),
    "rps": (False, _opt(_nonneg), "a non-negative number"),
    "per_request_ns": (False, _opt(_nonneg), "a non-negative number"),
    "latency_ns": (False, _opt(_dict_of_nonneg), "an object of non-negative numbers"),
    "client_cpu_ns": (False, _opt(_nonneg), "a non-negative number"),
    "achieved_fraction": (False, _opt(_nonneg), "a non-negative number"),
    "server_cpu_ns": (False, _opt(_nonneg), "a non-negative number"),
    "server_maxrss_kb": (False, _opt(_nonneg), "a non-negative number"),
    "warmup_runs": (False, _opt(_nonneg_int), "a non-negative integer"),
    "settled": (False, _opt(_bool), "true, false or null"),
    "warmup_iters": (False, _opt(_nonneg_int), "a non-negative integer"),
    "iters_settled": (False, _opt(_bool), "true or false"),
}

CASE_FIELDS: dict[str, tuple[bool, Check, str]] = {
    "task": (True, _name, "a non-empty string"),
    "impl": (True, _name, "a non-empty string"),
    "status": (True, _name, "a non-empty string"),
    "case_id": (False, _opt(_name), "a non-empty string"),
    "size": (False, _opt(_nonneg_int), "a non-negative integer"),
    "reason": (False, _opt(_str), "a string"),
    "stderr_tail": (False, _opt(_str), "a string"),
    "expected_checksum": (False, _opt(_str), "a string"),
    "checksums": (False, _opt(_list_of(_str)), "a list of strings"),
    "sessions": (False, _opt(_nonneg_int), "a non-negative integer"),
    "stop_reason": (False, _opt(_str), "a string"),
    "metric": (False, _opt(_str), "a string"),
    "median_ns": (False, _opt(_nonneg), "a non-negative number"),
    "warnings": (False, _opt(_list_of(_str)), "a list of strings"),
    "warmup_runs": (False, _opt(_list_of(_nonneg_int)), "a list of non-negative integers"),
    "warmup_settled": (False, _opt(_list_of(_opt(_bool))), "a list of true, false or null"),
    "warmup_iters": (False, _opt(_list_of(_nonneg_int)), "a list of non-negative integers"),
    "iters_settled": (False, _opt(_list_of(_opt(_bool))), "a list of true, false or null"),
}


def _fields(row: Mapping[str, Any], fields: dict[str, tuple[bool, Check, str]], where: str) -> None:
    for key, (required, check, what) in fields.items():
        if key not in row:
            if required:
                raise BundleError(f"{where} has no {key!r}; {_REFUSE}")
            continue
        if not check(row[key]):
            raise BundleError(f"{where}: {key!r} must be {what}, not {_shown(row[key])}; {_REFUSE}")


def _shown(value: Any) -> str:
    """A short, printable form of a bad value for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def path_component(value: Any, what: str) -> str:
    """`value` as one safe folder name: refused when it could leave its parent folder."""
    if not isinstance(value, str) or not value:
        raise BundleError(f"{what} must be a non-empty string, not {_shown(value)}; {_REFUSE}")
    if (
        "\x00" in value
        or "/" in value
        or "\\" in value
        or value in {".", ".."}
        or PurePosixPath(value).is_absolute()
    ):
        raise BundleError(
            f"{what} {_shown(value)} is not a plain folder name (it holds '/', '..', NUL or is "
            f"absolute); {_REFUSE}"
        )
    return value


def validate_manifest(manifest: Any, where: str) -> dict[str, Any]:
    """The manifest as a dict, or BundleError naming the first problem."""
    if not isinstance(manifest, dict):
        raise BundleError(f"{where} is not a JSON object; {_REFUSE}")
    schema = manifest.get("schema")
    if schema != BUNDLE_SCHEMA or not _int(schema):
        raise BundleError(
            f"{where} has bundle schema {_shown(schema)}; this harness reads schema "
            f"{BUNDLE_SCHEMA}. Use the harness version that wrote the bundle"
        )
    run_id = path_component(manifest.get("run_id"), f"{where}: run_id")
    if not RUN_ID.match(run_id):
        raise BundleError(
            f"{where}: run_id {_shown(run_id)} is not a run id like 20250101T120000Z-1a2b3c; "
            f"{_REFUSE}"
        )
    if "host" in manifest:
        host = path_component(manifest["host"], f"{where}: host")
        if not HOST.match(host):
            raise BundleError(
                f"{where}: host {_shown(host)} is not a host label (letters, digits, '_', '.', "
                f"'-'); {_REFUSE}"
            )
    _fields(manifest, MANIFEST_FIELDS, where)
    return manifest


def validate_sample(row: Mapping[str, Any], where: str) -> None:
    """One samples.jsonl row; `where` is 'path:line'."""
    schema = row.get("schema")
    if schema not in SAMPLE_SCHEMAS or not _int(schema):
        raise BundleError(
            f"{where} has sample schema {_shown(schema)}; this harness reads schemas "
            f"{', '.join(map(str, SAMPLE_SCHEMAS))}. Use the harness version that wrote the "
            "bundle"
        )
    _fields(row, SAMPLE_FIELDS, where)


def validate_case(row: Mapping[str, Any], where: str) -> None:
    """One cases.jsonl row; `where` is 'path:line'."""
    _fields(row, CASE_FIELDS, where)
