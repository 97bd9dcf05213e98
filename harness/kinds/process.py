"""The `process` kind: a whole process, timed from spawn to exit (start-up tasks).

Its metric is the wall time of one process run; its checksum is the process's exact stdout,
which must equal the task's `expected_stdout`.

Warm start (`start = "warm"`): each container session warms the program up until its runs are
settled (the runner applies harness/settle.py's rule online, capped by the profile's
`warmup_cap`), then measures the profile's runs. Cold start (the `TASK_cold` twin of a task
with `cold = true`): each session is one run in a fresh container, `cold_sessions` sessions.
Python implementations whose import cost is asked for (`importtime`) are profiled once per run
with `-X importtime`; the top entries are kept in the manifest (`kind_state`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from harness.errors import SuiteError

if TYPE_CHECKING:
    from harness.kinds.context import SessionContext
    from harness.suite import Case, Profile, Task


# Two runs to warm the container's caches up, then the profiled one, whose stderr (the
# `import time:` lines) is the container's stderr. Its argv words arrive as "$@", never parsed.
IMPORTTIME_SH = (
    "sh",
    "-c",
    'for i in 1 2; do "$@" >/dev/null 2>&1; done; exec "$@" >/dev/null',
    "importtime",
)


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
        names = {i.name for i in task.impls}
        for name in task.importtime:
            if name not in names:
                raise SuiteError(
                    f"{where}: importtime names '{name}', which is not one of its implementations."
                )

    def expected(self, case: Case) -> str | None:
        return case.task.expected_stdout

    def sizes(self, task: Task, profile: Profile) -> tuple[int | None, ...]:
        # A cold twin has cases only where the profile gives it fresh containers.
        return () if task.start == "cold" and profile.cold_sessions < 1 else (None,)

    def case_profile(self, case: Case, profile: Profile) -> Profile:
        """A cold case's sessions: `cold_sessions` fresh containers of one run, no warm-up."""
        if case.task.start != "cold":
            return profile
        n = profile.cold_sessions
        return replace(profile, sessions=n, max_sessions=n, runs=1, warmup=0, warmup_cap=0)

    def session(
        self, case: Case, index: int, ctx: SessionContext
    ) -> tuple[list[dict[str, Any]], str | None]:
        from harness.runner import runner_session

        return runner_session(case, index, ctx)

    def prepare(self, cases: list[Case], ctx: SessionContext) -> dict[str, Any] | None:
        """Per-import cost, once per run: each warm case whose task lists it in `importtime`
        runs with `-X importtime` after two runs that warm its container up; the top entries
        are kept (`importtime` in the kind's state, so a resumed run does not redo them)."""
        from harness.importtime import importtime_argv, parse_importtime

        found: dict[str, Any] = dict(ctx.state.get("importtime") or {})
        todo = [
            c
            for c in cases
            if c.task.start == "warm"
            and c.impl.name in c.task.importtime
            and c.impl.name not in found
        ]
        for case in todo:
            argv = importtime_argv(case.argv(ctx.profile.iters))
            if argv is None:
                continue
            result = ctx.execute(ctx.image(case), [*IMPORTTIME_SH, *argv], case)
            if result.exit_code != 0:
                found[case.impl.name] = {"error": f"exit status {result.exit_code}"}
                continue
            found[case.impl.name] = parse_importtime(result.stderr)
        if not todo:
            return None
        ctx.state["importtime"] = found
        return {"importtime": found}

    def parse(self, run: Mapping[str, Any]) -> dict[str, Any]:
        """What the sample keeps of one process run's output: its stdout is the checksum."""
        return {"checksum": run.get("stdout")}

    def values(self, sample: Mapping[str, Any], warmup_iters: int) -> list[float]:
        wall = sample.get("wall_ns")
        return [] if wall is None else [float(wall)]


KIND = ProcessKind()
