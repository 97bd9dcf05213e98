"""The `kernel` kind: the program times its own work and reports it.

The last line of the program's stdout is one JSON object: `setup_ns` (loading the input),
`iter_ns` (each in-process iteration of the timed region), `checksum`, and optionally
`phases_ns` (one-off phases timed apart, such as a pool's start-up or a model's fitting).
Its metric is the time of one iteration, past the warm-up iterations. The checksum is compared
with the task's reference for the size by the task's checksum rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.errors import SuiteError

if TYPE_CHECKING:
    from harness.kinds.context import SessionContext
    from harness.suite import Case, Profile, Task


def last_json_line(text: str) -> dict[str, Any] | None:
    """The program's own JSON line: the last non-empty line of its stdout."""
    for line in reversed(text.splitlines()):
        if line.strip():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                return None
            return obj if isinstance(obj, dict) else None
    return None


def _ints(values: Any) -> list[int]:
    if not isinstance(values, list):
        return []
    return [int(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]


class KernelKind:
    name = "kernel"
    metric = "kernel"
    description = "the program times each in-process iteration; checksum by the task's rule"

    def validate(self, task: Task, where: str) -> None:
        from harness.suite import require_references

        if not task.sizes:
            raise SuiteError(
                f"{where}: a kernel task needs sizes per profile size, e.g. "
                "sizes = { test = [1000], default = [100000] }."
            )
        require_references(task, where)

    def expected(self, case: Case) -> str | None:
        return None if case.size is None else case.task.reference.get(case.size)

    def sizes(self, task: Task, profile: Profile) -> tuple[int | None, ...]:
        return task.sizes.get(profile.size) or ()

    def session(
        self, case: Case, index: int, ctx: SessionContext
    ) -> tuple[list[dict[str, Any]], str | None]:
        from harness.runner import runner_session

        return runner_session(case, index, ctx)

    def parse(self, run: Mapping[str, Any]) -> dict[str, Any]:
        """The program's JSON line. After a lot of output the runner keeps the head of stdout
        and its tail (`stdout_tail`): the line is the tail's last."""
        k = last_json_line(str(run.get("stdout_tail") or run.get("stdout") or ""))
        if k is None:
            return {"checksum": None, "setup_ns": None, "iter_ns": []}
        phases = k.get("phases_ns")
        out: dict[str, Any] = {
            "checksum": None if k.get("checksum") is None else str(k.get("checksum")),
            "setup_ns": k.get("setup_ns"),
            "iter_ns": _ints(k.get("iter_ns")),
        }
        if isinstance(phases, dict):
            out["phases_ns"] = {
                str(name): int(v)
                for name, v in phases.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
        return out

    def values(self, sample: Mapping[str, Any], warmup_iters: int) -> list[float]:
        """The iterations past the warm-up: the settling rule's count where the sample
        records it (harness/settle.py), else `warmup_iters`."""
        drop = sample.get("warmup_iters")
        if not isinstance(drop, int) or isinstance(drop, bool) or drop < 0:
            drop = warmup_iters
        return [float(v) for v in (sample.get("iter_ns") or [])[drop:]]


KIND = KernelKind()
