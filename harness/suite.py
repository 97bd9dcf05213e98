"""The suite definition: one declarative TOML file, loaded into frozen dataclasses.

Everything that names images, tasks, implementations, sizes and reference checksums lives in
the suite file, so a new image (PyPy, another CPython) or implementation needs no code change.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import SuiteError

SUITE_SCHEMA = 1
DEFAULT_SUITE = Path(__file__).parent / "suites" / "default.toml"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_IMAGE_REF = re.compile(r"\{image:([a-z0-9_.-]+)\}")


@dataclass(frozen=True)
class BaseSpec:
    tag: str
    release: str
    variant: str
    include: tuple[str, ...]
    source_date_epoch: int
    sources: tuple[str, ...]


@dataclass(frozen=True)
class ImageSpec:
    name: str
    dockerfile: str
    context: tuple[str, ...]
    lang: str
    target: str | None = None
    args: tuple[tuple[str, str], ...] = ()

    def depends_on(self) -> list[str]:
        """Other images this one's build arguments name as `{image:NAME}`."""
        return [m for _, v in self.args for m in _IMAGE_REF.findall(v)]


@dataclass(frozen=True)
class Profile:
    name: str
    size: str
    sessions: int
    runs: int
    warmup: int
    iters: int
    description: str = ""
    # Adaptive stopping (MEASUREMENT.md section 3): after `sessions`, a case gets more sessions,
    # up to `max_sessions`, until its median's 95 % CI half-width is within `target_ci` of the
    # median or `budget_s` seconds have gone into it. max_sessions = sessions: fixed count.
    max_sessions: int = 0
    target_ci: float = 0.01
    budget_s: float = float("inf")

    @property
    def session_cap(self) -> int:
        return max(self.sessions, self.max_sessions)


@dataclass(frozen=True)
class Impl:
    name: str
    image: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class InputSpec:
    generator: str
    seed: int
    file: str

    def path_for(self, n: int) -> str:
        return "/data/" + self.file.format(n=n)


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # "process": whole-process timing only; "kernel": the program reports iterations
    baseline: str
    impls: tuple[Impl, ...]
    description: str = ""
    expected_stdout: str | None = None
    input: InputSpec | None = None
    sizes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    reference: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """One (task, implementation, size): the unit that is run, saved and resumed."""

    task: Task
    impl: Impl
    size: int | None

    @property
    def case_id(self) -> str:
        return f"{self.task.name}/{self.impl.name}/{self.size if self.size is not None else '-'}"

    def argv(self, iters: int) -> list[str]:
        """The program's argv with placeholders filled; never passed through a shell."""
        values = {"iters": str(iters), "n": str(self.size)}
        if self.task.input is not None and self.size is not None:
            values["input"] = self.task.input.path_for(self.size)
        return [_fill(a, values) for a in self.impl.argv]

    def expected_checksum(self) -> str | None:
        if self.task.kind == "process":
            return self.task.expected_stdout
        return self.task.reference.get(self.size) if self.size is not None else None


AA_SUFFIXES = (".a", ".b")


def twin_cases(cases: list[Case]) -> list[Case]:
    """A/A cases: every (task, implementation) of `cases` becomes a task of its own,
    `TASK.IMPL`, whose two implementations `IMPL.a` (its baseline) and `IMPL.b` run the very
    same program. Their speed-up must come out as "no difference"; one that does not is noise
    the statistics failed to absorb (a false flag). Sizes, inputs and checksums are the task's.
    """
    twins: dict[tuple[str, str], Task] = {}
    out: list[Case] = []
    for c in cases:
        key = (c.task.name, c.impl.name)
        if key not in twins:
            a, b = (replace(c.impl, name=c.impl.name + suffix) for suffix in AA_SUFFIXES)
            twins[key] = replace(
                c.task, name=f"{c.task.name}.{c.impl.name}", baseline=a.name, impls=(a, b)
            )
        task = twins[key]
        out.extend(Case(task, impl, c.size) for impl in task.impls)
    return out


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    digest: str
    data_image: str
    base: BaseSpec
    images: dict[str, ImageSpec]
    profiles: dict[str, Profile]
    tasks: dict[str, Task]

    def cases(
        self,
        profile: Profile,
        tasks: list[str] | None = None,
        images: list[str] | None = None,
        impls: list[str] | None = None,
    ) -> list[Case]:
        """The cases of a profile, filtered by task, image and implementation names
        (validated)."""
        _require("task", "tasks", tasks or [], self.tasks)
        self.require_images(images or [])
        known = {i.name for t in self.tasks.values() for i in t.impls}
        _require("implementation", "implementations", impls or [], known)
        out: list[Case] = []
        for task in self.tasks.values():
            if tasks and task.name not in tasks:
                continue
            sizes: tuple[int | None, ...] = (None,)
            if task.kind == "kernel":
                sizes = task.sizes.get(profile.size) or ()
            for impl in task.impls:
                if (images and impl.image not in images) or (impls and impl.name not in impls):
                    continue
                out.extend(Case(task, impl, n) for n in sizes)
        return out

    def require_images(self, names: Collection[str]) -> None:
        """SuiteError naming the first of `names` that is not an image of the suite."""
        _require("image", "images", names, self.images)

    def build_order(self, names: list[str] | None = None) -> list[ImageSpec]:
        """Images in dependency order (dependencies first), limited to `names` and their deps."""
        wanted = list(names) if names else list(self.images)
        order: list[ImageSpec] = []
        seen: set[str] = set()

        def visit(name: str, stack: tuple[str, ...]) -> None:
            if name in stack:
                raise SuiteError(f"images depend on each other in a cycle: {' -> '.join(stack)}.")
            if name in seen:
                return
            self.require_images([name])
            for dep in self.images[name].depends_on():
                visit(dep, (*stack, name))
            seen.add(name)
            order.append(self.images[name])

        for n in wanted:
            visit(n, ())
        return order


def _require(what: str, plural: str, names: Collection[str], known: Collection[str]) -> None:
    for name in names:
        if name not in known:
            raise SuiteError(
                f"unknown {what} '{name}'. Known {plural}: {', '.join(sorted(known))}."
            )


def _fill(template: str, values: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            raise SuiteError(f"placeholder {{{key}}} has no value in '{template}'.")
        return values[key]

    return re.sub(r"\{([a-z]+)\}", sub, template)


def _need(d: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise SuiteError(f"{where}: missing key '{key}'. Add it to the suite file.")
    v = d[key]
    if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
        raise SuiteError(f"{where}: '{key}' has the wrong type ({type(v).__name__}).")
    return v


def _name(v: str, where: str) -> str:
    if not _NAME.match(v):
        raise SuiteError(
            f"{where}: name '{v}' is not allowed. Use lower-case letters, digits, '-', '_', '.'."
        )
    return v


def load_suite(path: Path | None = None) -> Suite:
    """Load and validate a suite file; every problem is a `SuiteError` naming where it is."""
    path = path or DEFAULT_SUITE
    try:
        raw_bytes = path.read_bytes()
    except OSError as e:
        raise SuiteError(f"cannot read suite file {path}: {e.strerror}. Check the path.") from e
    try:
        raw = tomllib.loads(raw_bytes.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SuiteError(f"suite file {path} is not valid TOML: {e}.") from e
    return parse_suite(raw, path, hashlib.sha256(raw_bytes).hexdigest())


def parse_suite(raw: dict[str, Any], path: Path, digest: str) -> Suite:
    if raw.get("schema") != SUITE_SCHEMA:
        raise SuiteError(
            f"suite file {path} has schema {raw.get('schema')!r}; this harness reads "
            f"schema {SUITE_SCHEMA}."
        )
    b = _need(raw, "base", dict, "suite")
    base = BaseSpec(
        tag=_need(b, "tag", str, "base"),
        release=_need(b, "release", str, "base"),
        variant=b.get("variant", "minbase"),
        include=tuple(b.get("include", [])),
        source_date_epoch=_need(b, "source_date_epoch", int, "base"),
        sources=tuple(_need(b, "sources", list, "base")),
    )
    images: dict[str, ImageSpec] = {}
    for name, spec in _need(raw, "images", dict, "suite").items():
        where = f"images.{_name(name, 'images')}"
        args = spec.get("args", {})
        if not all(isinstance(v, str) for v in args.values()):
            raise SuiteError(f"{where}: every build argument must be a string.")
        images[name] = ImageSpec(
            name=name,
            dockerfile=_need(spec, "dockerfile", str, where),
            context=tuple(_need(spec, "context", list, where)),
            lang=_need(spec, "lang", str, where),
            target=spec.get("target"),
            args=tuple(sorted(args.items())),
        )
    profiles: dict[str, Profile] = {}
    for name, p in _need(raw, "profiles", dict, "suite").items():
        where = f"profiles.{name}"
        prof = Profile(
            name=name,
            size=_need(p, "size", str, where),
            sessions=_need(p, "sessions", int, where),
            runs=_need(p, "runs", int, where),
            warmup=_need(p, "warmup", int, where),
            iters=_need(p, "iters", int, where),
            description=p.get("description", ""),
            max_sessions=int(p.get("max_sessions", 0)),
            target_ci=float(p.get("target_ci", 0.01)),
            budget_s=float(p.get("budget_s", float("inf"))),
        )
        if min(prof.sessions, prof.runs, prof.iters) < 1 or prof.warmup < 0:
            raise SuiteError(f"{where}: sessions, runs and iters must be >= 1, warmup >= 0.")
        if not 0 < prof.target_ci < 1 or prof.budget_s <= 0:
            raise SuiteError(f"{where}: target_ci must be in (0, 1) and budget_s positive.")
        profiles[name] = prof
    tasks: dict[str, Task] = {}
    for name, t in _need(raw, "tasks", dict, "suite").items():
        where = f"tasks.{_name(name, 'tasks')}"
        kind = _need(t, "kind", str, where)
        if kind not in ("process", "kernel"):
            raise SuiteError(f"{where}: kind must be 'process' or 'kernel', not '{kind}'.")
        impls = []
        for i in _need(t, "impls", list, where):
            iname = _name(_need(i, "name", str, where), where)
            image = _need(i, "image", str, f"{where}.{iname}")
            if image not in images:
                raise SuiteError(f"{where}.{iname}: image '{image}' is not defined in [images].")
            argv = _need(i, "argv", list, f"{where}.{iname}")
            if not argv or not all(isinstance(a, str) for a in argv):
                raise SuiteError(f"{where}.{iname}: argv must be a non-empty list of strings.")
            impls.append(Impl(iname, image, tuple(argv)))
        names = [i.name for i in impls]
        if len(set(names)) != len(names):
            raise SuiteError(f"{where}: implementation names must be unique.")
        baseline = _need(t, "baseline", str, where)
        if baseline not in names:
            raise SuiteError(f"{where}: baseline '{baseline}' is not one of its implementations.")
        inp = None
        sizes: dict[str, tuple[int, ...]] = {}
        reference: dict[int, str] = {}
        if kind == "kernel":
            i = _need(t, "input", dict, where)
            inp = InputSpec(
                generator=_need(i, "generator", str, f"{where}.input"),
                seed=_need(i, "seed", int, f"{where}.input"),
                file=_need(i, "file", str, f"{where}.input"),
            )
            if ".." in inp.file or inp.file.startswith("/"):
                raise SuiteError(f"{where}.input: file must be a relative path inside /data.")
            for prof_size, ns in _need(t, "sizes", dict, where).items():
                if not all(isinstance(n, int) and n > 0 for n in ns):
                    raise SuiteError(f"{where}.sizes.{prof_size}: sizes must be positive integers.")
                sizes[prof_size] = tuple(ns)
            reference = {int(k): str(v) for k, v in _need(t, "reference", dict, where).items()}
            for ns in sizes.values():
                for n in ns:
                    if n not in reference:
                        raise SuiteError(f"{where}: no reference checksum for size {n}.")
        tasks[name] = Task(
            name=name,
            kind=kind,
            baseline=baseline,
            impls=tuple(impls),
            description=t.get("description", ""),
            expected_stdout=t.get("expected_stdout"),
            input=inp,
            sizes=sizes,
            reference=reference,
        )
    suite = Suite(
        name=_need(raw, "name", str, "suite"),
        data_image=_need(raw, "data_image", str, "suite"),
        path=path,
        digest=digest,
        base=base,
        images=images,
        profiles=profiles,
        tasks=tasks,
    )
    suite.build_order()  # validates references between images
    if suite.data_image not in images:
        raise SuiteError(f"suite: data_image '{suite.data_image}' is not defined in [images].")
    return suite
