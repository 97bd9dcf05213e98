"""The `process` kind: a whole process, timed from spawn to exit (start-up tasks).

Its metric is the wall time of one process run; its checksum is the process's exact stdout,
which must equal the task's `expected_stdout`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.errors import SuiteError

if TYPE_CHECKING:
    from harness.kinds.context import SessionContext
    from harness.suite import Case, Profile, Task


class ProcessKind:
    name = "process"
    metric = "wall"
    description = "whole process from spawn to exit (start-up); checksum: its exact stdout"

    def validate(self, task: Task, where: str) -> None:
        if task.expected_stdout is None:
            raise SuiteError(
                f"{where}: a process task needs expected_stdout (the exact output every "
                "implementation must print). Add it to the suite file."
            )

    def expected(self, case: Case) -> str | None:
        return case.task.expected_stdout

    def sizes(self, task: Task, profile: Profile) -> tuple[int | None, ...]:
        return (None,)

    def session(
        self, case: Case, index: int, ctx: SessionContext
    ) -> tuple[list[dict[str, Any]], str | None]:
        from harness.runner import runner_session

        return runner_session(case, index, ctx)

    def parse(self, run: Mapping[str, Any]) -> dict[str, Any]:
        """What the sample keeps of one process run's output: its stdout is the checksum."""
        return {"checksum": run.get("stdout")}

    def values(self, sample: Mapping[str, Any], warmup_iters: int) -> list[float]:
        wall = sample.get("wall_ns")
        return [] if wall is None else [float(wall)]


KIND = ProcessKind()
