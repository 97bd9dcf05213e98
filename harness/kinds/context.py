"""What a kind's session needs from the run: options, images, and how to execute."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from harness.engine import Limits, RunResult

if TYPE_CHECKING:
    from harness.engine import Engine
    from harness.suite import Case, Profile, Suite


@dataclass(frozen=True)
class RunOptions:
    cpuset: str | None
    timeout_s: float = 600.0
    seed: int = 0
    limits: Limits = field(default_factory=Limits)


class Executor(Protocol):
    """Runs one argv in an image and returns its output (Docker, the local runner, or a fake
    in unit tests)."""

    def __call__(self, image: str, argv: list[str], case: Case) -> RunResult: ...


@dataclass
class SessionContext:
    """Everything one session of a case may use. `engine` is None for executors without
    Docker (the local runner, unit tests): kinds that need containers of their own refuse."""

    suite: Suite
    profile: Profile
    opts: RunOptions
    tags: dict[str, str]
    execute: Executor
    engine: Engine | None = None
    run_id: str = ""
    data_volume: str | None = None
    # A Docker volume for tasks with `output = "disk"`, mounted at OUTDIR.
    output_volume: str | None = None
    # What a kind keeps between sessions of one run (e.g. the service kind's request rates).
    state: dict[str, Any] = field(default_factory=dict)

    def image(self, case: Case) -> str:
        return self.tags[case.impl.image]

    def lang(self, case: Case) -> str:
        return self.suite.images[case.impl.image].lang
