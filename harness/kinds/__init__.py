"""Task kinds: one module each, all with the same few functions.

A kind owns what differs between kinds of task, so the runner, store, analysis and report have
no branch per task:
- `validate(task, where)`: the suite fields the kind needs (SuiteError otherwise);
- `sizes(task, profile)`: the sizes a profile runs (`(None,)` for a task without sizes);
- `session(case, index, ctx)`: one container session of a case -> (samples, failure or None);
- `expected(case)`: the reference a case's checksum is compared with;
- `values(sample, warmup_iters)`: the numbers of one sample that its metric is made of;
- `metric`: the name of that metric, which speed-ups compare ("wall": whole process,
  "kernel": one in-process iteration, "per_request": nanoseconds per request at saturation).

Kinds: `process` (start-up: wall time, expected stdout), `kernel` (the program reports setup
time, in-process iterations and a checksum) and `service` (a server and a load generator).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from harness.kinds.context import SessionContext
    from harness.suite import Case, Profile, Task


class Kind(Protocol):
    name: str
    metric: str
    description: str

    def validate(self, task: Task, where: str) -> None: ...

    def sizes(self, task: Task, profile: Profile) -> tuple[int | None, ...]: ...

    def session(
        self, case: Case, index: int, ctx: SessionContext
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    def values(self, sample: Mapping[str, Any], warmup_iters: int) -> list[float]: ...

    def expected(self, case: Case) -> str | None: ...


# Imported after Kind: each module's KIND instance is checked against the protocol above.
from harness.kinds import kernel, process, service  # noqa: E402

KINDS: dict[str, Kind] = {k.name: k for k in (process.KIND, kernel.KIND, service.KIND)}


def kind_of(task: Task) -> Kind:
    return KINDS[task.kind]


def case_profile(case: Case, profile: Profile) -> Profile:
    """The repetitions of one case: the profile's, unless its kind says otherwise (a cold
    start-up case: many fresh containers of one run each)."""
    own = getattr(kind_of(case.task), "case_profile", None)
    return profile if own is None else own(case, profile)


def sample_kind(sample: Mapping[str, Any]) -> str:
    """The kind of task a sample was measured for. Bundles from before kinds were recorded
    (sample schema 1) say it by the shape of the sample: iterations make a kernel sample."""
    kind = sample.get("kind")
    if isinstance(kind, str) and kind in KINDS:
        return kind
    return "kernel" if sample.get("iter_ns") else "process"


def metric_values(sample: Mapping[str, Any], warmup_iters: int = 1) -> list[float]:
    """The numbers of one sample its case's metric is made of: the one rule every summary,
    speed-up and stopping decision uses."""
    return KINDS[sample_kind(sample)].values(sample, warmup_iters)


def metric_of(samples: Sequence[Mapping[str, Any]]) -> str:
    """The metric of a case's samples (that of their kind); "wall" when there are none."""
    return KINDS[sample_kind(samples[0])].metric if samples else "wall"
