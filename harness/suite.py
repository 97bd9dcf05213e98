"""The suite definition: one declarative TOML file, loaded into frozen dataclasses.

Everything that names images, tasks, implementations, sizes and reference checksums lives in
the suite file, so a new image (PyPy, another CPython) or implementation needs no code change.
A task's `kind` (see `harness/kinds/`) says how its cases are planned, run, checked and
measured; its `checksum` rule how a printed result is compared with the reference; each
implementation's `route` (pure Python, a Python library, Rust, Rust called from Python, ...)
and `threads` say what the report may compare it with.

Schema history:
  1: first version (base, images, profiles, tasks with implementations).
  2: `checksum` rules per task; `route` and `threads` per implementation; the `service` kind;
     `output`, `limits` per task; `extends` to take base, images and profiles from another
     suite file. Later, within schema 2 (optional fields): a process task's `cold`, and a
     profile's `warmup_cap`, `settle_k`, `settle_band` and `cold_sessions`.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from harness.errors import SuiteError

SUITE_SCHEMA = 2
DEFAULT_SUITE = Path(__file__).parent / "suites" / "default.toml"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_IMAGE_REF = re.compile(r"\{image:([a-z0-9_.-]+)\}")
T = TypeVar("T")

# Routes: how an implementation gets its speed. The report ranks "best Python library" among
# PYTHON_LIBRARY and "best Rust route" among RUST_ROUTES, and never calls Rust called from
# Python a Python library.
ROUTES = {
    "python": "pure Python (CPython)",
    "python-lib": "a Python library (NumPy, pandas, polars, ...)",
    "python-jit": "Python compiled at run time (Numba)",
    "pypy": "pure Python on PyPy",
    "rust": "a Rust program",
    "rust-from-python": "Rust called from Python (PyO3, subprocess)",
}
PYTHON_ROUTES = frozenset({"python", "python-lib", "python-jit", "pypy"})
PYTHON_LIBRARY = frozenset({"python-lib"})
RUST_ROUTES = frozenset({"rust", "rust-from-python"})
# threads = "cpus": every core of the run's cpuset; "sweep": one case per P = 1..cpus.
THREADS_CPUS = "cpus"
THREADS_SWEEP = "sweep"
CHECKSUM_COMPARES = ("exact", "integer", "floats")


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
    # Adaptive stopping (docs/methodology.md): after `sessions`, a case gets more sessions,
    # up to `max_sessions`, until its median's 95 % CI half-width is within `target_ci` of the
    # median or `budget_s` seconds have gone into it. max_sessions = sessions: fixed count.
    max_sessions: int = 0
    target_ci: float = 0.01
    budget_s: float = float("inf")
    # Seconds of each load phase of a service task (saturation, each fixed rate).
    load_s: float = 5.0
    # Warm-up found from the data (harness/settle.py): process runs of a start-up case warm up
    # until the last `settle_k` are within a factor 1 + `settle_band` of each other, at least
    # `warmup` and at most `warmup_cap` runs (0: exactly `warmup`, no rule). Kernel tasks apply
    # the same rule to their in-process iterations.
    warmup_cap: int = 0
    settle_k: int = 5
    settle_band: float = 0.10
    # Fresh containers per cold-start case (tasks with `cold = true`), one process run each.
    cold_sessions: int = 0

    @property
    def session_cap(self) -> int:
        return max(self.sessions, self.max_sessions)

    @property
    def adaptive_warmup(self) -> bool:
        return self.warmup_cap > self.warmup


@dataclass(frozen=True)
class ChecksumRule:
    """How a printed checksum is compared with the task's reference value.

    exact: the same text. integer: the same integer (decimal). floats: the same number of
    whitespace-separated floats, each within `rel_tol` of the reference, relatively.
    """

    compare: str = "exact"
    rel_tol: float = 0.0

    def agrees(self, expected: str | None, got: str | None) -> bool:
        if expected is None or got is None:
            return False
        if self.compare == "exact":
            return got == expected
        if self.compare == "integer":
            try:
                return int(got.strip()) == int(expected.strip())
            except ValueError:
                return False
        try:
            a = [float(x) for x in got.split()]
            b = [float(x) for x in expected.split()]
        except ValueError:
            return False
        return len(a) == len(b) and all(
            math.isclose(x, y, rel_tol=self.rel_tol, abs_tol=0.0) for x, y in zip(a, b, strict=True)
        )

    def describe(self) -> str:
        if self.compare == "floats":
            return f"floats within {self.rel_tol:g} relative"
        return "exact integer" if self.compare == "integer" else "exact text"


@dataclass(frozen=True)
class Impl:
    name: str
    image: str
    argv: tuple[str, ...]
    route: str = "python"
    # As declared: a count, THREADS_CPUS or THREADS_SWEEP (resolved per run in `Suite.cases`).
    threads: int | str = 1
    # The declared name of an implementation expanded per thread count (`NAME-pP`).
    family: str = ""


@dataclass(frozen=True)
class InputSpec:
    generator: str
    seed: int
    file: str
    # True: the generator's own checksum of a file it writes is the task's reference answer
    # (suite: checksum = "reference"), checked when the file is made.
    checks_reference: bool = False

    def path_for(self, n: int) -> str:
        return "/data/" + self.file.format(n=n)


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # a module of harness/kinds/: process, kernel, service
    baseline: str
    impls: tuple[Impl, ...]
    description: str = ""
    checksum: ChecksumRule = field(default_factory=ChecksumRule)
    expected_stdout: str | None = None
    input: InputSpec | None = None
    sizes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    reference: dict[int, str] = field(default_factory=dict)
    # "disk": the program gets a writable directory on a Docker volume in {outdir}; else /tmp.
    output: str = "tmpfs"
    pids: int | None = None
    # The service kind's load generator and phases (validated by harness/kinds/service.py).
    load: Mapping[str, Any] = field(default_factory=dict)
    # A process task with `cold = true` gets a twin, TASK_cold (start = "cold", warm_of = TASK):
    # the first run in a fresh container, one per session, `cold_sessions` sessions.
    cold: bool = False
    # Implementations profiled once per run with `python3 -X importtime` (process tasks).
    importtime: tuple[str, ...] = ()
    start: str = "warm"
    warm_of: str | None = None


@dataclass(frozen=True)
class Case:
    """One (task, implementation, size): the unit that is run, saved and resumed."""

    task: Task
    impl: Impl
    size: int | None
    threads: int = 1

    @property
    def case_id(self) -> str:
        return f"{self.task.name}/{self.impl.name}/{self.size if self.size is not None else '-'}"

    def argv(self, iters: int, **values: str) -> list[str]:
        """The program's argv with placeholders filled; never passed through a shell."""
        filled = {
            "iters": str(iters),
            "n": str(self.size),
            "threads": str(self.threads),
            "outdir": "/tmp",  # noqa: S108 - the container's scratch tmpfs
        }
        if self.task.input is not None and self.size is not None:
            filled["input"] = self.task.input.path_for(self.size)
        filled.update(values)
        return [fill(a, filled) for a in self.impl.argv]

    def expected_checksum(self) -> str | None:
        """The reference this case's checksum is compared with (its kind says which)."""
        from harness.kinds import kind_of

        return kind_of(self.task).expected(self)

    def checksum_agrees(self, got: str | None) -> bool:
        return self.task.checksum.agrees(self.expected_checksum(), got)


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
        out.extend(Case(task, impl, c.size, c.threads) for impl in task.impls)
    return out


def expand_threads(impl: Impl, cpus: int) -> list[tuple[Impl, int]]:
    """The implementation with its thread count resolved for `cpus` cores: one entry, or one
    per P = 1..cpus (named NAME-pP) for a thread sweep."""
    if impl.threads == THREADS_SWEEP:
        return [
            (replace(impl, name=f"{impl.name}-p{p}", family=impl.name), p)
            for p in range(1, cpus + 1)
        ]
    if impl.threads == THREADS_CPUS:
        return [(impl, cpus)]
    return [(impl, int(impl.threads))]


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
        *,
        cpus: int = 1,
    ) -> list[Case]:
        """The cases of a profile for a run on `cpus` cores, filtered by task, image and
        implementation names (validated; a thread sweep is selected by its declared name)."""
        from harness.kinds import kind_of

        _require("task", "tasks", tasks or [], self.tasks)
        self.require_images(images or [])
        known = {i.name for t in self.tasks.values() for i in t.impls}
        _require("implementation", "implementations", impls or [], known)
        out: list[Case] = []
        for task in self.tasks.values():
            # A cold twin comes with its task.
            if tasks and task.name not in tasks and task.warm_of not in tasks:
                continue
            sizes = kind_of(task).sizes(task, profile)
            for impl in task.impls:
                if (images and impl.image not in images) or (impls and impl.name not in impls):
                    continue
                for concrete, threads in expand_threads(impl, cpus):
                    out.extend(Case(task, concrete, n, threads) for n in sizes)
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


def fill(template: str, values: dict[str, str]) -> str:
    """`template` with each {name} replaced by values[name]; SuiteError for a missing one."""

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            raise SuiteError(f"placeholder {{{key}}} has no value in '{template}'.")
        return values[key]

    return re.sub(r"\{([a-z]+)\}", sub, template)


# ----- reading values with one clear error each -------------------------------------------------
_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}


def _is(value: Any, typ: type) -> bool:
    if typ is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, typ)


def _need(d: Mapping[str, Any], key: str, typ: type[T], where: str) -> T:
    if key not in d:
        raise SuiteError(f"{where}: missing key '{key}'. Add it to the suite file.")
    return _get(d, key, typ, where, None)


def _get(d: Mapping[str, Any], key: str, typ: type[T], where: str, default: Any) -> T:
    if key not in d:
        return default
    v = d[key]
    if not _is(v, typ):
        raise SuiteError(
            f"{where}: '{key}' must be {_TYPE_NAMES.get(typ, typ.__name__)}, not {v!r}. "
            "Fix the suite file."
        )
    return float(v) if typ is float else v  # type: ignore[return-value]


def _strings(d: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> list[str]:
    v = _need(d, key, list, where) if required else _get(d, key, list, where, [])
    if not all(isinstance(x, str) for x in v):
        raise SuiteError(f"{where}: '{key}' must be a list of strings. Fix the suite file.")
    return v


def _name(v: str, where: str) -> str:
    if not _NAME.match(v):
        raise SuiteError(
            f"{where}: name '{v}' is not allowed. Use lower-case letters, digits, '-', '_', '.'."
        )
    return v


def _size_key(key: str, where: str) -> int:
    if not re.fullmatch(r"[0-9]+", key) or int(key) <= 0:
        raise SuiteError(
            f"{where}: reference key '{key}' is not a size. Write sizes as plain positive "
            'integers in quotes, e.g. "100000".'
        )
    return int(key)


# ----- loading ---------------------------------------------------------------------------------
def load_suite(path: Path | None = None) -> Suite:
    """Load and validate a suite file; every problem is a `SuiteError` naming where it is."""
    path = path or DEFAULT_SUITE
    raw, raw_bytes = _read_toml(path)
    parent = _get(raw, "extends", str, "suite", "")
    if parent:
        # Base, images, profiles and data image come from the parent unless given here.
        base_raw, base_bytes = _read_toml((path.parent / parent).resolve())
        raw = {**{k: v for k, v in base_raw.items() if k != "tasks"}, **raw}
        raw_bytes += base_bytes
    return parse_suite(raw, path, hashlib.sha256(raw_bytes).hexdigest())


def _read_toml(path: Path) -> tuple[dict[str, Any], bytes]:
    try:
        raw_bytes = path.read_bytes()
    except OSError as e:
        raise SuiteError(f"cannot read suite file {path}: {e.strerror}. Check the path.") from e
    try:
        return tomllib.loads(raw_bytes.decode()), raw_bytes
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SuiteError(f"suite file {path} is not valid TOML: {e}.") from e


def parse_suite(raw: dict[str, Any], path: Path, digest: str) -> Suite:
    if raw.get("schema") != SUITE_SCHEMA:
        raise SuiteError(
            f"suite file {path} has schema {raw.get('schema')!r}; this harness reads "
            f"schema {SUITE_SCHEMA}."
        )
    images = {
        _name(name, "images"): _parse_image(name, spec)
        for name, spec in _need(raw, "images", dict, "suite").items()
    }
    profiles = {
        name: _parse_profile(name, p) for name, p in _need(raw, "profiles", dict, "suite").items()
    }
    tasks = with_cold_twins(
        {
            _name(name, "tasks"): _parse_task(name, t, images)
            for name, t in _need(raw, "tasks", dict, "suite").items()
        }
    )
    suite = Suite(
        name=_need(raw, "name", str, "suite"),
        data_image=_need(raw, "data_image", str, "suite"),
        path=path,
        digest=digest,
        base=_parse_base(_need(raw, "base", dict, "suite")),
        images=images,
        profiles=profiles,
        tasks=tasks,
    )
    suite.build_order()  # validates references between images
    if suite.data_image not in images:
        raise SuiteError(f"suite: data_image '{suite.data_image}' is not defined in [images].")
    return suite


def _parse_base(b: dict[str, Any]) -> BaseSpec:
    return BaseSpec(
        tag=_need(b, "tag", str, "base"),
        release=_need(b, "release", str, "base"),
        variant=_get(b, "variant", str, "base", "minbase"),
        include=tuple(_strings(b, "include", "base", required=False)),
        source_date_epoch=_need(b, "source_date_epoch", int, "base"),
        sources=tuple(_strings(b, "sources", "base")),
    )


def _parse_image(name: str, spec: Any) -> ImageSpec:
    where = f"images.{name}"
    if not isinstance(spec, dict):
        raise SuiteError(f"{where} must be a table. Fix the suite file.")
    args = _get(spec, "args", dict, where, {})
    if not all(isinstance(v, str) for v in args.values()):
        raise SuiteError(f"{where}: every build argument must be a string.")
    return ImageSpec(
        name=name,
        dockerfile=_need(spec, "dockerfile", str, where),
        context=tuple(_strings(spec, "context", where)),
        lang=_need(spec, "lang", str, where),
        target=_get(spec, "target", str, where, None),
        args=tuple(sorted(args.items())),
    )


def _parse_profile(name: str, p: Any) -> Profile:
    where = f"profiles.{name}"
    if not isinstance(p, dict):
        raise SuiteError(f"{where} must be a table. Fix the suite file.")
    prof = Profile(
        name=name,
        size=_need(p, "size", str, where),
        sessions=_need(p, "sessions", int, where),
        runs=_need(p, "runs", int, where),
        warmup=_need(p, "warmup", int, where),
        iters=_need(p, "iters", int, where),
        description=_get(p, "description", str, where, ""),
        max_sessions=_get(p, "max_sessions", int, where, 0),
        target_ci=_get(p, "target_ci", float, where, 0.01),
        budget_s=_get(p, "budget_s", float, where, float("inf")),
        load_s=_get(p, "load_s", float, where, 5.0),
        warmup_cap=_get(p, "warmup_cap", int, where, 0),
        settle_k=_get(p, "settle_k", int, where, 5),
        settle_band=_get(p, "settle_band", float, where, 0.10),
        cold_sessions=_get(p, "cold_sessions", int, where, 0),
    )
    if min(prof.sessions, prof.runs, prof.iters) < 1 or prof.warmup < 0:
        raise SuiteError(f"{where}: sessions, runs and iters must be >= 1, warmup >= 0.")
    if prof.warmup_cap and prof.warmup_cap < prof.warmup:
        raise SuiteError(f"{where}: warmup_cap ({prof.warmup_cap}) must be >= warmup.")
    if prof.settle_k < 2 or not 0 < prof.settle_band < 1 or prof.cold_sessions < 0:
        raise SuiteError(
            f"{where}: settle_k must be >= 2, settle_band in (0, 1), cold_sessions >= 0."
        )
    if not 0 < prof.target_ci < 1 or prof.budget_s <= 0 or prof.load_s <= 0:
        raise SuiteError(f"{where}: target_ci must be in (0, 1), budget_s and load_s positive.")
    return prof


def _parse_impl(i: Any, where: str, images: Mapping[str, ImageSpec]) -> Impl:
    if not isinstance(i, dict):
        raise SuiteError(f"{where}: each [[impls]] entry must be a table.")
    iname = _name(_need(i, "name", str, where), where)
    here = f"{where}.{iname}"
    image = _need(i, "image", str, here)
    if image not in images:
        raise SuiteError(f"{here}: image '{image}' is not defined in [images].")
    argv = _strings(i, "argv", here)
    if not argv:
        raise SuiteError(f"{here}: argv must be a non-empty list of strings.")
    route = _need(i, "route", str, here)
    if route not in ROUTES:
        raise SuiteError(f"{here}: route '{route}' is not one of {', '.join(ROUTES)}.")
    threads = i.get("threads", 1)
    if not ((_is(threads, int) and threads >= 1) or threads in (THREADS_CPUS, THREADS_SWEEP)):
        raise SuiteError(
            f'{here}: threads must be a count >= 1, "{THREADS_CPUS}" or "{THREADS_SWEEP}", '
            f"not {threads!r}."
        )
    return Impl(iname, image, tuple(argv), route, threads)


def _parse_checksum(t: dict[str, Any], where: str) -> ChecksumRule:
    c = _get(t, "checksum", dict, where, {"compare": "exact"})
    compare = _need(c, "compare", str, f"{where}.checksum")
    if compare not in CHECKSUM_COMPARES:
        raise SuiteError(
            f"{where}.checksum: compare must be one of {', '.join(CHECKSUM_COMPARES)}, "
            f"not '{compare}'."
        )
    rel_tol = _get(c, "rel_tol", float, f"{where}.checksum", 0.0)
    if compare == "floats" and not 0 <= rel_tol < 1:
        raise SuiteError(f"{where}.checksum: rel_tol must be in [0, 1), e.g. 1e-9.")
    return ChecksumRule(compare, rel_tol)


def _parse_sizes(t: dict[str, Any], where: str) -> dict[str, tuple[int, ...]]:
    sizes: dict[str, tuple[int, ...]] = {}
    for prof_size, ns in _get(t, "sizes", dict, where, {}).items():
        if not isinstance(ns, list) or not all(_is(n, int) and n > 0 for n in ns):
            raise SuiteError(f"{where}.sizes.{prof_size}: sizes must be positive integers.")
        sizes[prof_size] = tuple(ns)
    return sizes


def _parse_input(t: dict[str, Any], where: str) -> InputSpec | None:
    i = _get(t, "input", dict, where, None)
    if i is None:
        return None
    inp = InputSpec(
        generator=_need(i, "generator", str, f"{where}.input"),
        seed=_need(i, "seed", int, f"{where}.input"),
        file=_need(i, "file", str, f"{where}.input"),
        checks_reference=_get(i, "checksum", str, f"{where}.input", "") == "reference",
    )
    if ".." in inp.file or inp.file.startswith("/"):
        raise SuiteError(f"{where}.input: file must be a relative path inside /data.")
    return inp


def _parse_task(name: str, t: Any, images: Mapping[str, ImageSpec]) -> Task:
    from harness.kinds import KINDS

    where = f"tasks.{name}"
    if not isinstance(t, dict):
        raise SuiteError(f"{where} must be a table. Fix the suite file.")
    kind = _need(t, "kind", str, where)
    if kind not in KINDS:
        raise SuiteError(f"{where}: kind must be one of {', '.join(KINDS)}, not '{kind}'.")
    impls = [_parse_impl(i, where, images) for i in _need(t, "impls", list, where)]
    names = [i.name for i in impls]
    if len(set(names)) != len(names):
        raise SuiteError(f"{where}: implementation names must be unique.")
    baseline = _need(t, "baseline", str, where)
    if baseline not in names:
        raise SuiteError(f"{where}: baseline '{baseline}' is not one of its implementations.")
    output = _get(t, "output", str, where, "tmpfs")
    if output not in ("tmpfs", "disk"):
        raise SuiteError(f'{where}: output must be "tmpfs" or "disk", not \'{output}\'.')
    limits = _get(t, "limits", dict, where, {})
    pids = _get(limits, "pids", int, f"{where}.limits", None)
    task = Task(
        name=name,
        kind=kind,
        baseline=baseline,
        impls=tuple(impls),
        description=_get(t, "description", str, where, ""),
        checksum=_parse_checksum(t, where),
        expected_stdout=_get(t, "expected_stdout", str, where, None),
        input=_parse_input(t, where),
        sizes=_parse_sizes(t, where),
        reference={
            _size_key(k, where): str(v) for k, v in _get(t, "reference", dict, where, {}).items()
        },
        output=output,
        pids=pids,
        load=_get(t, "load", dict, where, {}),
        cold=_get(t, "cold", bool, where, False),
        importtime=tuple(_strings(t, "importtime", where, required=False)),
    )
    KINDS[kind].validate(task, where)
    if task.importtime and kind != "process":
        raise SuiteError(f"{where}: importtime is for process tasks (start-up) only.")
    if task.cold and kind != "process":
        raise SuiteError(f"{where}: cold = true is for process tasks (start-up) only.")
    return task


COLD_SUFFIX = "_cold"


def with_cold_twins(tasks: dict[str, Task]) -> dict[str, Task]:
    """The tasks with, right after each task that has `cold = true`, its cold twin."""
    out: dict[str, Task] = {}
    for name, task in tasks.items():
        out[name] = task
        if not task.cold:
            continue
        twin = name + COLD_SUFFIX
        if twin in tasks:
            raise SuiteError(
                f"tasks.{name}: cold = true makes a task '{twin}', which the suite already has. "
                "Rename one."
            )
        out[twin] = replace(
            task,
            name=twin,
            cold=False,
            start="cold",
            warm_of=name,
            description=f"{task.description} (cold: the first run in a fresh container)",
        )
    return out


def require_references(task: Task, where: str) -> None:
    """SuiteError unless every size of every profile has a reference checksum."""
    for ns in task.sizes.values():
        for n in ns:
            if n not in task.reference:
                raise SuiteError(f"{where}: no reference checksum for size {n}.")
