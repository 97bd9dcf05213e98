"""The `harness` command line. The only place that turns an error into an exit status."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness import __version__
from harness.engine import Limits
from harness.errors import HarnessError, UsageError
from harness.host import (
    available_cpus,
    checks,
    choose_cpuset,
    engine_checks,
    fingerprint,
    format_cpu_list,
)
from harness.images import BuildOptions, build_images, resolve_tags
from harness.store import Bundle, latest_bundle
from harness.suite import DEFAULT_SUITE, Suite, load_suite

app = typer.Typer(
    help="Build pinned Python and Rust images, run benchmarks in CPU-pinned containers, "
    "and report where Rust pays off.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

SuiteOpt = Annotated[
    Path, typer.Option("--suite", help="Suite definition (TOML).", envvar="RPB_SUITE")
]
ResultsOpt = Annotated[
    Path, typer.Option("--results", help="Folder that holds results/<host>/<run-id>/ bundles.")
]


def handles_errors(fn: F) -> F:
    """Expected failures become one `Error:` line and exit status 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HarnessError as e:
            msg = str(e)
            if not msg.endswith((".", "\n")) and "\n" not in msg:
                msg += "."
            typer.echo(f"Error: {msg}", err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _log(line: str) -> None:
    err.print(line, markup=False, highlight=False)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"harness {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    *,
    version: Annotated[
        bool,
        typer.Option("--version", callback=version_callback, is_eager=True, help="Show version."),
    ] = False,
) -> None:
    """rust_python_benchmark: where does Rust pay off in a Python ML pipeline?"""


@app.command()
@handles_errors
def build(
    *,
    image: Annotated[
        list[str] | None,
        typer.Option("--image", "-i", help="Build only this image (and what it needs). Repeat."),
    ] = None,
    extra_ca: Annotated[
        Path | None,
        typer.Option(
            "--extra-ca",
            envvar="RPB_EXTRA_CA",
            help="PEM CA bundle handed to build stages only (TLS-intercepting proxies), "
            "e.g. /etc/ssl/certs/ca-certificates.crt. Never kept in the final images.",
        ),
    ] = None,
    network: Annotated[
        str,
        typer.Option(help="Network of build containers: 'host' reaches registries as the host."),
    ] = "host",
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Rebuild even when an image is up to date.")
    ] = False,
    rebuild_base: Annotated[
        bool,
        typer.Option("--rebuild-base", help="Make the Debian base again with mmdebstrap."),
    ] = False,
    base_ref: Annotated[
        str | None,
        typer.Option(
            "--base-ref",
            envvar="RPB_BASE_REF",
            help="Pull the Debian base by digest (REGISTRY/NAME@sha256:...) instead of "
            "making it with mmdebstrap.",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show the whole build log, not only steps.")
    ] = False,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs", "-j", min=1, help="Images built at once (those whose dependencies are built)."
        ),
    ] = 4,
    suite_path: SuiteOpt = DEFAULT_SUITE,
) -> None:
    """Build the base and the suite's toolchain images (cached by content hash)."""
    from harness.engine import connect

    suite = load_suite(suite_path)
    opts = BuildOptions(
        extra_ca=extra_ca,
        network_mode=network,
        rebuild=rebuild,
        rebuild_base=rebuild_base,
        base_ref=base_ref,
    )
    engine = connect()
    result = build_images(engine, suite, opts, image, _log, verbose=verbose, jobs=jobs)
    table = Table("image", "tag / ref", "id", "rootfs layers")
    for name, info in result.items():
        layers = info.get("layers")
        n_layers = len(layers) if isinstance(layers, list) else 0
        table.add_row(name, str(info.get("ref")), str(info["id"])[:19], str(n_layers))
    Console().print(table)


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether an option was set on the command line or by its environment variable."""
    source = ctx.get_parameter_source(name)
    # By name: typer ships its own copy of click, whose enum is not click's.
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def _line(text: str) -> None:
    """One line on stderr, never wrapped at the terminal's width (tests and logs grep it)."""
    err.print(text, markup=False, highlight=False, soft_wrap=True)


def _case_done(row: dict[str, Any]) -> None:
    """One line per finished case, as hyperfine prints per command: its median, how many
    sessions it took and why it stopped; then its warnings (outliers)."""
    from harness.report import format_ns

    cid, status = row.get("case_id"), row.get("status")
    if status != "ok":
        _line(f"{cid}: {status}")
        return
    runs, settled = row.get("warmup_runs") or [], row.get("warmup_settled") or []
    warm = ""
    if runs:
        capped = sum(1 for ok in settled if ok is False)
        warm = f", warm-up runs {', '.join(map(str, runs))}" + (
            f" ({capped} ended by the cap)" if capped else ""
        )
    _line(
        f"{cid}: {row.get('metric')} median {format_ns(row.get('median_ns'))}, "
        f"{row.get('sessions')} sessions, {row.get('stop_reason')}{warm}"
    )
    for w in row.get("warnings") or []:
        _line(f"  warning: {w}")


def _summarize_cases(rows: list[dict[str, Any]], order: list[str]) -> None:
    """One line naming the cases that failed or are invalid, then one line per case with why."""
    rank = {cid: i for i, cid in enumerate(order)}
    bad = sorted(
        (r for r in rows if r.get("status") != "ok"),
        key=lambda r: rank.get(str(r.get("case_id")), len(rank)),
    )
    if bad:
        by_status: dict[str, list[str]] = {}
        for r in bad:
            by_status.setdefault(str(r.get("status")), []).append(str(r.get("case_id")))
        _line(
            f"{len(bad)} of {len(rows)} cases did not pass: "
            + "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(by_status.items()))
        )
    for r in bad:
        reason = " ".join(str(r.get("reason")).split())
        _line(f"  {r.get('status')}: {r.get('case_id')}: {reason[:300]}")


@app.command()
@handles_errors
def run(
    ctx: typer.Context,
    *,
    cpus: Annotated[
        int, typer.Option(help="Distinct cores pinned (cpuset) for each benchmark container.")
    ] = 1,
    cpuset: Annotated[
        str | None,
        typer.Option(
            "--cpuset",
            help="Exactly these cores (e.g. 2-3) instead of the highest --cpus ones: another "
            "run holds its cores until it ends.",
        ),
    ] = None,
    profile: Annotated[
        str, typer.Option(help="Profile of the suite: sizes and repetitions.")
    ] = "default",
    task: Annotated[
        list[str] | None, typer.Option("--task", "-t", help="Run only this task. Repeat.")
    ] = None,
    image: Annotated[
        list[str] | None,
        typer.Option("--image", "-i", help="Run only implementations in this image. Repeat."),
    ] = None,
    impl: Annotated[
        list[str] | None,
        typer.Option("--impl", help="Run only this implementation (e.g. rs-scalar). Repeat."),
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds one process run may take before it is killed.")
    ] = 600.0,
    seed: Annotated[int, typer.Option(help="Seed of the interleaving order.")] = 0,
    memory: Annotated[
        str,
        typer.Option(help="Memory limit of each benchmark container (no swap), e.g. 256m, 4g."),
    ] = Limits().memory,
    host: Annotated[
        str | None, typer.Option("--host", help="Host label of the bundle (default: hostname).")
    ] = None,
    sessions: Annotated[
        int | None,
        typer.Option(help="Container sessions per case at least (default: the profile's)."),
    ] = None,
    max_sessions: Annotated[
        int | None,
        typer.Option(
            help="Sessions per case at most: more than --sessions makes stopping adaptive "
            "(default: the profile's)."
        ),
    ] = None,
    target_ci: Annotated[
        float | None,
        typer.Option(
            help="Stop a case once the 95 % CI of its median is within this fraction of it, "
            "e.g. 0.01 for +-1 % (default: the profile's)."
        ),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(help="Seconds a case may take before it stops adding sessions."),
    ] = None,
    cold_sessions: Annotated[
        int | None,
        typer.Option(
            help="Fresh containers (one run each) per cold-start case; 0: no cold start "
            "(default: the profile's)."
        ),
    ] = None,
    aa: Annotated[
        bool,
        typer.Option(
            "--aa",
            help="A/A noise check: run every selected implementation as two identical twins "
            "(IMPL.a, IMPL.b, task TASK.IMPL); the report counts the pairs wrongly found "
            "different.",
        ),
    ] = False,
    pin: Annotated[
        bool,
        typer.Option(
            "--pin/--no-pin",
            help="Pin each benchmark to its cores (cpuset). --no-pin lets it run on any core: "
            "only to measure what pinning buys.",
        ),
    ] = True,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="No container: run the same runner and programs from each image's unpacked "
            "files (chroot, taskset; needs root), to measure what the container costs.",
        ),
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="RUN_ID",
            help="Finish an interrupted run: only its unfinished cases, with its own settings.",
        ),
    ] = None,
    results: ResultsOpt = Path("results"),
    suite_path: SuiteOpt = DEFAULT_SUITE,
    engine: Annotated[
        list[str] | None,
        typer.Option(
            "--engine",
            "-e",
            metavar="URL",
            help="Run on this Docker engine (unix:///PATH/TO/SOCKET, tcp://HOST:2376 with TLS from "
            "DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, ssh://USER@HOST, or a Docker context name). "
            "Repeat: the suite runs on every engine at once, one bundle per host under "
            "results/<host>/, then `harness compare` of them.",
        ),
    ] = None,
    images_archive: Annotated[
        Path | None,
        typer.Option(
            "--images",
            metavar="ARCHIVE",
            help="Load the images from this archive (`harness images save`) into the engine "
            "first and check their IDs: for a host that cannot build. The manifest records it.",
        ),
    ] = None,
) -> None:
    """Run the suite in CPU-pinned, hardened containers; write a results bundle.

    A case that crashes, exits non-zero, times out or runs out of memory is recorded as failed
    (with why and its stderr) and the run goes on; the run exits 0 once every case has a
    result. Ctrl-C or SIGTERM stops it (exit 130 or 143) with everything finished so far saved;
    `--resume RUN_ID` finishes it. The run holds its cores until it ends: a second run wanting
    any of them refuses to start.
    """
    from harness.pipeline import RUN_SETTINGS, RunRequest
    from harness.pipeline import run as run_pipeline
    from harness.runner import RunInterrupted, interrupt_handler

    names = (*RUN_SETTINGS, "suite_path")
    request = RunRequest(
        cpus=cpus,
        cpuset=cpuset,
        profile=profile,
        task=tuple(task or ()),
        image=tuple(image or ()),
        impl=tuple(impl or ()),
        timeout=timeout,
        seed=seed,
        memory=memory,
        host=host,
        sessions=sessions,
        max_sessions=max_sessions,
        target_ci=target_ci,
        budget=budget,
        cold_sessions=cold_sessions,
        aa=aa,
        pin=pin,
        local=local,
        resume=resume,
        results=results,
        suite_path=suite_path,
        given=frozenset(n for n in names if _given(ctx, n)),
        engine=engine[0] if engine and len(engine) == 1 else None,
        images=images_archive,
    )
    if engine and len(engine) > 1:
        _run_fleet(request, engine)
        return
    previous = {s: signal.signal(s, interrupt_handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        outcome = run_pipeline(request, _RunUi())
    except RunInterrupted as e:  # while the run was being planned: nothing written yet
        typer.echo(f"Interrupted ({e}) before the run started: nothing was written.", err=True)
        raise typer.Exit(128 + e.signum) from None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if outcome.signal is not None:
        typer.echo(outcome.message, err=True)
        raise typer.Exit(128 + signal.Signals[outcome.signal].value)
    bundle = outcome.bundle
    assert bundle is not None
    rows = bundle.cases()
    _summarize_cases(rows, list(bundle.manifest().get("cases") or []))
    typer.echo(str(bundle.path))
    ok = sum(1 for r in rows if r.get("status") == "ok")
    _line(f"{ok} of {len(rows)} cases ok. Next: harness report {bundle.path}")


def _run_fleet(request: Any, engines: list[str]) -> None:
    """Every engine at once, a line per host at the end, then the hosts compared."""
    from harness.fleet import run_fleet, summary
    from harness.store import Bundle as _Bundle

    started = time.monotonic()
    runs = run_fleet(request, engines, _line)
    took = time.monotonic() - started
    failed = [r for r in runs if not r.ok]
    _line(f"{len(runs) - len(failed)} of {len(runs)} hosts finished in {took:.0f} s:")
    for text in summary(runs):
        _line(text)
    with_samples = [r.bundle for r in runs if r.bundle is not None and _Bundle(r.bundle).samples()]
    for r in runs:
        if r.ok:
            typer.echo(str(r.bundle))
    if len(with_samples) >= 2:
        _line(f"$ harness compare {' '.join(map(str, with_samples))}")
        compare(bundles=with_samples)
    if failed:
        names = ", ".join(r.target.given for r in failed)
        others = "the others' bundles are complete" if len(failed) < len(runs) else "none did"
        raise HarnessError(
            f"{len(failed)} of {len(runs)} hosts did not finish ({names}); {others}. See each "
            "host's line above for why and the command that finishes it"
        )


class _RunUi:
    """`harness run`'s messages on stderr and its progress bar (rich)."""

    def line(self, text: str) -> None:
        _line(text)

    def case_done(self, row: dict[str, Any]) -> None:
        _case_done(row)

    @contextlib.contextmanager
    def progress(self, total: int) -> Iterator[Callable[[Any, int, int, int], None]]:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        ) as progress:
            bar = progress.add_task("starting", total=total)
            known = {"total": total}  # adaptive stopping may add sessions

            def update(case: Any, session: int, i: int, total: int) -> None:
                if case is None:  # the run is over
                    progress.update(bar, completed=known["total"], description="done")
                    return
                known["total"] = total
                progress.update(
                    bar,
                    completed=i,
                    total=total,
                    description=f"{case.case_id} (session {session + 1})",
                )

            yield update


def _analysed(bundle: Bundle) -> tuple[dict[str, Any], Any, Any, list[dict[str, Any]], list[Any]]:
    """A bundle's manifest, summary, speed-ups, cases and samples."""
    from harness import frames

    manifest = bundle.manifest()
    samples = bundle.samples()
    cases = bundle.cases()
    if not samples:
        raise HarnessError(
            f"{bundle.path} has no samples yet. Run `harness run` (or resume it) first"
        )
    # Tasks and implementations in the suite's order (the manifest's), not in the order the
    # cases happened to finish.
    planned = {str(cid): i for i, cid in enumerate(manifest.get("cases") or [])}
    ordered = sorted(cases, key=lambda r: planned.get(str(r.get("case_id")), len(planned)))
    summary = frames.summarize(samples, ordered)
    speed = frames.speedups(
        samples,
        summary,
        manifest.get("baselines", {}),
        against_best_python=not manifest.get("aa"),
    )
    return manifest, summary, speed, cases, samples


def write_report(bundle: Bundle, aa_bundle: Bundle | None = None) -> dict[str, Path]:
    """Aggregate a bundle and write summary.csv, conclusions.csv, summary.json, report.md and
    report.html into it. `aa_bundle`: an A/A run of the same host, for the resolution."""
    from harness import report

    manifest, summary, speed, cases, samples = _analysed(bundle)
    extras = report.Extras(samples=samples, notes=bundle.problems())
    if aa_bundle is not None:
        aa_manifest, _, aa_speed, _, _ = _analysed(aa_bundle)
        if not aa_manifest.get("aa"):
            raise UsageError(
                f"--aa {aa_bundle.path} is not an A/A bundle. Give one made by `harness run --aa`"
            )
        extras = report.Extras(
            samples=samples,
            notes=bundle.problems(),
            aa_speedups=aa_speed,
            aa_source=str(aa_bundle.path),
        )
    return {
        "summary": bundle.write("summary.csv", report.render_summary_csv(summary)),
        "conclusions": bundle.write(
            "conclusions.csv", report.render_conclusions_csv(manifest, summary, speed)
        ),
        "json": bundle.write(
            "summary.json", report.render_summary_json(manifest, summary, speed, extras)
        ),
        "markdown": bundle.write(
            "report.md", report.render_markdown(manifest, summary, speed, cases, extras)
        ),
        "html": bundle.write(
            "report.html", report.render_html(manifest, summary, speed, cases, extras)
        ),
    }


@app.command("report")
@handles_errors
def report_cmd(
    bundle_path: Annotated[
        Path | None,
        typer.Argument(help="A bundle folder results/<host>/<run-id> (default: the latest)."),
    ] = None,
    *,
    results: ResultsOpt = Path("results"),
    aa: Annotated[
        Path | None,
        typer.Option(
            "--aa",
            metavar="BUNDLE",
            help="An A/A bundle of the same host (`harness run --aa`): the report's smallest "
            "resolvable difference comes from its twin pairs instead of the CIs.",
        ),
    ] = None,
) -> None:
    """Aggregate a bundle (pandas) and write its summary (CSV, JSON), Markdown and HTML reports."""
    bundle = Bundle.open(bundle_path or latest_bundle(results))
    paths = write_report(bundle, Bundle.open(aa) if aa is not None else None)
    for kind, p in paths.items():
        typer.echo(f"{kind}: {p}")
    for problem in bundle.problems():
        _line(f"warning: {problem}")


def _output_path(path: Path, option: str, default_name: str) -> Path:
    """Where --csv or --markdown writes: a folder gets `default_name` inside it; the folder
    must exist (checked before any work)."""
    target = path / default_name if path.is_dir() else path
    if not target.parent.is_dir():
        raise UsageError(
            f"{option} {path}: the folder {target.parent} does not exist. Create it or give "
            "another path"
        )
    return target


def _write_output(path: Path, text: str, option: str) -> None:
    from harness.store import atomic_write

    try:
        atomic_write(path, text)
    except OSError as e:
        raise UsageError(
            f"writing {path} failed ({e.strerror or e}). Give another path with {option}"
        ) from e
    _line(f"wrote {path}")


@app.command()
@handles_errors
def compare(
    bundles: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Two or more bundle folders results/<host>/<run-id>. The first (B1) is the "
            "reference of every ratio.",
            show_default=False,
            metavar="BUNDLE...",
        ),
    ] = None,
    *,
    noise: Annotated[
        float,
        typer.Option(
            help="A ratio whose 95 % CI reaches into 1 ± NOISE is called 'same' (a speed-up: "
            "'no difference').",
        ),
    ] = 0.01,
    csv_path: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            metavar="PATH",
            help="Also write both tables as CSV, one row per case and bundle: "
            "PATH-medians.csv and PATH-speedups.csv.",
        ),
    ] = None,
    markdown_path: Annotated[
        Path | None,
        typer.Option("--markdown", metavar="PATH", help="Also write the comparison as Markdown."),
    ] = None,
    html_path: Annotated[
        Path | None,
        typer.Option(
            "--html",
            metavar="PATH",
            help="Also write the comparison as one self-contained HTML page, with charts.",
        ),
    ] = None,
) -> None:
    """Compare two or more results bundles, case by case.

    Three uses. Stability: several runs on one host; 'spread' is (max - min) / median of a
    case's medians. Settings A vs B on one host (pinned or not, Docker or the local runner):
    each bundle's median and CV, and its ratio to B1 (time in Bk / time in B1) with a
    hierarchical-bootstrap 95 % CI and a verdict (same, faster, slower). Hosts: the speed-ups
    (Python over Rust on the same host) of every bundle side by side; across hosts compare
    those, not absolute times.

    Times are kernel time per iteration where a case reports iterations, else wall time per
    process. A case missing, failed or invalid in a bundle is shown as such and left out of
    its ratios. Bundles that ran other images, suite or profile are compared anyway, with a
    warning. Tables go to stdout; progress, warnings and notes to stderr.
    """
    from harness import compare as comparison

    paths = bundles or []
    if len(paths) < 2:
        raise UsageError(
            f"compare needs at least two bundles, got {len(paths)}. Give two or more folders, "
            "e.g. harness compare results/HOST/RUN1 results/HOST/RUN2"
        )
    if not (math.isfinite(noise) and 0 <= noise < 1):
        raise UsageError(f"--noise {noise} is not a fraction. Give e.g. 0.01 for 1 %")
    csv_base, markdown = _compare_outputs(csv_path, markdown_path)
    html = None if html_path is None else _output_path(html_path, "--html", "compare.html")
    sides = _compare_sides(paths)
    _line(f"comparing {len(sides)} bundles (hierarchical bootstrap)")
    result = comparison.compare(sides, noise)
    for w in result.warnings:
        _line(f"warning: {w}")
    for note in result.notes:
        _line(f"note: {note}")
    out = Console()
    for renderable in comparison.terminal(result):
        out.print(renderable)
    if csv_base is not None:
        for name, frame in (("medians", result.medians), ("speedups", result.speedups)):
            target = csv_base.with_name(f"{csv_base.name}-{name}.csv")
            _write_output(target, comparison.render_csv(frame), "--csv")
    if markdown is not None:
        _write_output(markdown, comparison.render_markdown(result), "--markdown")
    if html is not None:
        _write_output(html, comparison.render_html(result, sides), "--html")


def _compare_outputs(
    csv_path: Path | None, markdown_path: Path | None
) -> tuple[Path | None, Path | None]:
    """Where compare's --csv (a base name) and --markdown go; checked before any work."""
    csv_base = markdown = None
    if csv_path is not None:
        csv_base = _output_path(csv_path, "--csv", "compare")
        if csv_base.suffix == ".csv":
            csv_base = csv_base.with_suffix("")
    if markdown_path is not None:
        markdown = _output_path(markdown_path, "--markdown", "compare.md")
    return csv_base, markdown


def _compare_sides(paths: list[Path]) -> list[Any]:
    """Every bundle read and checked before any output; one line naming each."""
    from harness import compare as comparison

    contents = [comparison.read(path) for path in paths]
    sides: list[comparison.Side] = []
    seen: dict[Path, str] = {}
    for i, (path, data) in enumerate(zip(paths, contents, strict=True), 1):
        side = comparison.side(f"B{i}", path, *data)
        _line(f"{side.name}: {side.label} ({side.settings}) <- {path}")
        if (first := seen.setdefault(path.resolve(), side.name)) != side.name:
            _line(f"warning: {side.name} is the same bundle as {first}")
        sides.append(side)
    return sides


@app.command()
@handles_errors
def calibrate(
    *,
    task: Annotated[
        list[str] | None,
        typer.Option("--task", "-t", help="Only this start-up (process) task. Repeat."),
    ] = None,
    impl: Annotated[
        list[str] | None,
        typer.Option(
            "--impl", help="Only this implementation (e.g. py-numpy; `true`: /bin/true). Repeat."
        ),
    ] = None,
    image: Annotated[
        list[str] | None,
        typer.Option("--image", "-i", help="Only implementations in this image. Repeat."),
    ] = None,
    cpus: Annotated[int, typer.Option(help="Cores pinned for each container.")] = 1,
    rounds: Annotated[
        int,
        typer.Option(
            help="Rounds per implementation, each both tools (ABBA): more, shorter rounds pair "
            "the tools closer in time and narrow the CI."
        ),
    ] = 20,
    runs: Annotated[int, typer.Option(help="Measured runs per round and tool.")] = 3,
    tolerance: Annotated[
        float,
        typer.Option(help="Agreement wanted: the ratio's 95 % CI within 1 +- this fraction."),
    ] = 0.05,
    profile: Annotated[
        str, typer.Option(help="Profile whose warm-up rule warms each container first.")
    ] = "default",
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the rows as JSON to this file.")
    ] = None,
    suite_path: SuiteOpt = DEFAULT_SUITE,
) -> None:
    """Check the runner against `hyperfine -N` on every start-up implementation and /bin/true.

    One hardened, pinned container per implementation: the runner's adaptive warm-up first,
    then rounds alternating the two tools. Prints the median ratio runner / hyperfine with its
    95 % CI and a verdict against --tolerance; exits 0 whatever the verdicts.
    """
    from harness import calibrate as cal
    from harness.engine import connect
    from harness.locks import CoreLocks

    suite = load_suite(suite_path)
    if profile not in suite.profiles:
        raise UsageError(
            f"unknown profile '{profile}'. Known profiles: {', '.join(sorted(suite.profiles))}."
        )
    cal.validate_settings(rounds, runs, tolerance)
    targets = cal.select_targets(
        suite, suite.profiles[profile], task or (), image or (), impl or ()
    )
    out_json = _output_path(json_path, "--json", "calibrate.json") if json_path else None
    rule = cal.WarmupRule.of(suite.profiles[profile])
    cores = choose_cpuset(cpus, available_cpus())
    cpuset = format_cpu_list(cores)
    engine = connect()
    names = sorted({t.image for t in targets})
    tags = resolve_tags(engine, suite, names)
    for name in names:
        engine.require_image(tags[name])
    _line(
        f"calibrating {len(targets)} commands: {rounds} rounds x {runs} runs per tool, "
        f"profile {profile}: {rule.describe()}"
    )
    with CoreLocks(cores, "calibrate"):
        rows, failures = cal.calibrate(
            engine,
            tags,
            targets,
            cpuset,
            rounds=rounds,
            runs=runs,
            rule=rule,
            tolerance=tolerance,
            log=_line,
        )
    from harness.report import format_ns

    table = Table(
        "impl",
        "image",
        "runner median",
        "hyperfine median",
        "paired difference",
        "95 % CI of ratio",
        "warm-up runs",
        "verdict",
        title=f"runner vs hyperfine -N, cpuset {cpuset}, {rounds} rounds x {runs} runs, "
        f"tolerance ±{tolerance * 100:g} %",
    )
    for r in rows:
        lo, hi = r["ratio_ci"]
        table.add_row(
            r["impl"],
            r["image"],
            format_ns(r["runner_median_ns"]),
            format_ns(r["hyperfine_median_ns"]),
            f"{r['difference_pct']:+.1f} %",
            f"[{lo:.3f}, {hi:.3f}]",
            cal.format_warmup(r),
            r["verdict"],
        )
    out = Console()
    if rows:
        out.print(table)
        for r in rows:
            out.print(cal.command_line(r), markup=False, highlight=False, soft_wrap=True)
        out.print(cal.summary_line(rows, tolerance), markup=False, highlight=False, soft_wrap=True)
    if out_json is not None:
        settings = {
            "profile": profile,
            "rounds": rounds,
            "runs": runs,
            "tolerance": tolerance,
            "cpuset": cpuset,
            "tags": tags,
        }
        _write_output(out_json, cal.to_json(rows, settings | {"failures": failures}), "--json")
    if failures:
        raise HarnessError(
            f"{len(failures)} of {len(targets)} commands could not be calibrated:\n"
            + "\n".join(failures)
        )


def _checksum_rule(task: Any) -> str:
    if task.kind == "process":
        return f"stdout exactly {task.expected_stdout!r}"
    if task.kind == "service":
        return "seeded requests answered right, malformed ones refused"
    return str(task.checksum.describe())


@app.command("list")
@handles_errors
def list_cmd(
    *,
    profile: Annotated[
        str | None, typer.Option(help="Show only this profile's sizes (default: every profile).")
    ] = None,
    cpus: Annotated[int, typer.Option(help="Cores a run would pin (thread sweeps: P=1..N).")] = 1,
    suite_path: SuiteOpt = DEFAULT_SUITE,
) -> None:
    """Show the suite as a run reads it: tasks, kinds, implementations, sizes, checksum rules."""
    from harness.kinds import kind_of
    from harness.suite import expand_threads

    suite = load_suite(suite_path)
    if profile is not None and profile not in suite.profiles:
        raise UsageError(
            f"unknown profile '{profile}'. Known profiles: {', '.join(sorted(suite.profiles))}."
        )
    profiles = [suite.profiles[profile]] if profile else list(suite.profiles.values())
    out = Console()
    out.print(f"suite {suite.name} ({suite.path}), sha256 {suite.digest[:12]}")
    for task in suite.tasks.values():
        kind = kind_of(task)
        sizes = "; ".join(
            f"{p.name}: {', '.join('-' if n is None else f'{n:,}' for n in kind.sizes(task, p))}"
            for p in profiles
        )
        out.print(
            f"\n[bold]{task.name}[/bold] ({task.kind}: {kind.description})\n"
            f"  {task.description}\n  baseline {task.baseline}; metric: {kind.metric}; "
            f"checksum: {_checksum_rule(task)}; sizes: {sizes}",
            highlight=False,
        )
        table = Table("implementation", "route", "image", "threads", "argv")
        for impl in task.impls:
            threads = ", ".join(str(t) for _, t in expand_threads(impl, cpus))
            table.add_row(impl.name, impl.route, impl.image, threads, " ".join(impl.argv))
        out.print(table)


@app.command()
@handles_errors
def doctor(
    *,
    cpus: Annotated[int, typer.Option(help="Cores a run would pin.")] = 1,
) -> None:
    """Show the host noise checks that `harness run` records (governor, load, SMT, swap...).

    Also what the Docker engine says (storage driver, cgroup version) and whether another
    harness run holds cores. Warnings are advice, never failures: the exit status is 0.
    """
    from harness.engine import connect
    from harness.locks import free_cores, lock_dir

    cpuset = choose_cpuset(cpus, available_cpus())
    fp = fingerprint(cpuset)
    warnings = checks(fp, cpus)
    table = Table("fact", "value")
    for k, v in fp.items():
        table.add_row(k, json.dumps(v) if not isinstance(v, str) else v)
    try:
        info = connect().info()
        for k, v in info.items():
            table.add_row(f"docker {k}", json.dumps(v) if not isinstance(v, str) else v)
        warnings += engine_checks(info)
    except HarnessError as e:
        warnings.append(str(e))
    free = free_cores(lock_dir())
    table.add_row("cores free of other harness runs", format_cpu_list(free) or "none")
    if not set(cpuset) <= set(free):
        warnings.append(
            f"cores {format_cpu_list(sorted(set(cpuset) - set(free)))} of the cpuset "
            "are held by another harness run: `harness run` would refuse them now."
        )
    Console().print(table)
    for w in warnings:
        typer.echo(f"warning: {w}")


@app.command()
@handles_errors
def clean(
    *,
    volumes: Annotated[
        bool, typer.Option("--volumes", help="Also remove the kit's data volumes.")
    ] = False,
) -> None:
    """Remove the kit's containers (and volumes, dangling images) by label; nothing else."""
    from harness.engine import connect

    removed = connect().clean(volumes=volumes)
    typer.echo(", ".join(f"{v} {k}" for k, v in removed.items()) + " removed")


images_app = typer.Typer(
    help="Carry the suite's built images to other hosts: one archive with their identities.",
    no_args_is_help=True,
)
app.add_typer(images_app, name="images")


@contextlib.contextmanager
def _bytes_progress(what: str) -> Iterator[Callable[[int, int | None], None]]:
    """A progress bar in bytes (saving and loading archives)."""
    from rich.progress import DownloadColumn, TransferSpeedColumn

    with Progress(
        TextColumn(f"[bold]{what}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        bar = progress.add_task(what, total=None)

        def update(done: int, total: int | None) -> None:
            progress.update(bar, completed=done, total=total)

        yield update


def _engine_for(engine_url: str | None) -> Any:
    from harness.engine import connect
    from harness.engines import connect_target, parse_target

    return connect_target(parse_target(engine_url)) if engine_url else connect()


EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        "-e",
        metavar="URL",
        help="The Docker engine (unix://, tcp://, ssh:// or a context name; default: "
        "DOCKER_HOST or the local one).",
    ),
]


@images_app.command("save")
@handles_errors
def images_save(
    archive: Annotated[Path, typer.Argument(help="The archive file to write (a tar).")],
    *,
    image: Annotated[
        list[str] | None,
        typer.Option("--image", "-i", help="Only this image (and what it needs). Repeat."),
    ] = None,
    engine_url: EngineOpt = None,
    suite_path: SuiteOpt = DEFAULT_SUITE,
) -> None:
    """Write the base and every built image of the suite (tags, IDs, rootfs layers) into one
    archive: `docker save` of them all, streamed, plus a small JSON index.

    Load it on another host with `harness images load ARCHIVE` (or `harness run --images`).
    """
    from harness import archive as archives

    suite = load_suite(suite_path)
    if image:
        suite.require_images(image)
    engine = _engine_for(engine_url)
    started = time.monotonic()
    with _bytes_progress("saving") as progress:
        index = archives.save(engine, suite, archive, image, progress=progress, log=_line)
    took = time.monotonic() - started
    size = archive.stat().st_size
    table = Table("image", "tag", "id", "rootfs layers")
    for name, info in index["images"].items():
        table.add_row(name, info["tag"], info["id"][:19], str(len(info["layers"])))
    Console(stderr=True).print(table)
    _line(
        f"wrote {archive}: {size / 1e6:.0f} MB, {len(index['images'])} images in {took:.1f} s; "
        f"index {archives.index_digest(index)[:19]}"
    )


@images_app.command("load")
@handles_errors
def images_load(
    archive: Annotated[Path, typer.Argument(help="An archive written by `harness images save`.")],
    *,
    engine_url: EngineOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Load even when the engine holds every image.")
    ] = False,
) -> None:
    """Load an image archive into the engine and check that every image has the archive's ID."""
    from harness import archive as archives

    engine = _engine_for(engine_url)
    started = time.monotonic()
    with _bytes_progress("loading") as progress:
        rec = archives.load(engine, archive, progress=progress, log=_line, force=force)
    took = time.monotonic() - started
    index = archives.read_index(archive)
    table = Table("image", "tag", "id", "same id")
    for name, info in index["images"].items():
        table.add_row(name, info["tag"], info["id"][:19], "yes")
    Console(stderr=True).print(table)
    _line(
        f"loaded {archive} in {took:.1f} s: {len(rec['images'])} images, IDs equal to the "
        f"archive's (index {rec['index_sha256'][:19]})"
    )


@app.command()
@handles_errors
def lock(
    *,
    check: Annotated[
        bool,
        typer.Option("--check", help="Only report what would change; write nothing."),
    ] = False,
    python: Annotated[
        bool,
        typer.Option(
            "--python/--no-python",
            help="Also regenerate python/requirements.lock (hash-pinned) with python/lock.sh.",
        ),
    ] = True,
    extra_ca: Annotated[
        Path | None,
        typer.Option(
            "--extra-ca",
            envvar="RPB_EXTRA_CA",
            help="PEM CA bundle for apt in the query container (and uv), e.g. "
            "/etc/ssl/certs/ca-certificates.crt.",
        ),
    ] = None,
    suite_path: SuiteOpt = DEFAULT_SUITE,
) -> None:
    """Pin the Debian archive's current versions of the suite's pinned packages.

    Asks the archive (`apt-get update && apt-cache policy PKG` in a container of the base
    image), writes the new versions into the suite file's image arguments and shows what
    changed; then regenerates python/requirements.lock with python/lock.sh. Run it when
    `harness build` says a pinned version is no longer in the archive. `--check` reports and
    exits 1 when a pin is out of date, writing nothing.
    """
    from harness import pins
    from harness.engine import connect
    from harness.images import ROOT
    from harness.store import atomic_write

    if extra_ca is not None and not extra_ca.is_file():
        raise UsageError(f"--extra-ca {extra_ca} is not a readable file. Point it at a PEM bundle")
    suite = load_suite(suite_path)
    found = pins.suite_pins(suite, ROOT)
    if not found:
        raise UsageError(
            f"the suite {suite.path} pins no Debian package (no image argument appears as "
            "pkg=${ARG} in an apt-get install of its Dockerfile). Nothing to lock"
        )
    engine = connect()
    engine.require_image(suite.base.tag)
    _line(
        f"asking the Debian archive for {len({p for pin in found for p in pin.packages})} "
        f"packages ({suite.base.tag}: apt-get update, apt-cache policy)"
    )
    changes = pins.changes(
        found, pins.query_archive(engine, suite.base.tag, found, ca_bundle=extra_ca)
    )
    text = suite.path.read_text()
    new_text = pins.rewrite_suite(text, changes)
    for ch in changes:
        typer.echo(ch.line())
    if not changes:
        _line(f"the Debian pins in {suite.path} are the archive's current versions")
    lock_changes: list[str] = []
    if python:
        lock_changes = _python_lock(check, extra_ca)
    if check:
        stale = []
        if changes:
            stale.append(f"{len(changes)} Debian pin(s) of {suite.path} differ from the archive")
        if lock_changes:
            stale.append("python/*.lock differ from what python/lock.sh resolves now")
        if stale:
            raise HarnessError(
                " and ".join(stale)
                + f". Run `harness lock{_suite_flag(suite_path)}` (or `make lock`) to write them"
            )
        return
    if changes:
        atomic_write(suite.path, new_text)
        after = load_suite(suite.path)
        assert all(dict(after.images[c.image].args)[c.arg] == c.new for c in changes)
        _line(
            f"wrote {len(changes)} pin(s) into {suite.path}. Next: harness build"
            + _suite_flag(suite_path)
        )


def _suite_flag(suite_path: Path) -> str:
    return "" if suite_path == DEFAULT_SUITE else f" --suite {suite_path}"


def _python_lock(check: bool, extra_ca: Path | None) -> list[str]:
    """Run python/lock.sh (in a copy of python/'s files for --check); print what changed in
    each of its *.lock files."""
    import shutil
    import subprocess
    import tempfile

    from harness import pins
    from harness.images import ROOT

    src = ROOT / "python"
    old = {p.name: p.read_text() for p in sorted(src.glob("*.lock"))}
    env = dict(os.environ)
    if extra_ca is not None:
        env.setdefault("SSL_CERT_FILE", str(extra_ca))
    with tempfile.TemporaryDirectory(prefix="rpb-lock-") as tmp:
        where = src
        if check:  # lock.sh writes beside itself: give it a copy of its inputs and locks
            where = Path(tmp) / "python"
            where.mkdir()
            for f in src.iterdir():
                if f.is_file():
                    shutil.copy2(f, where / f.name)
        _line("$ python/lock.sh   (uv pip compile --generate-hashes, then pip download checks)")
        proc = subprocess.run(
            ["bash", str(where / "lock.sh")], capture_output=True, text=True, env=env, check=False
        )
        if proc.returncode != 0:
            tail = " ".join(proc.stderr.strip().splitlines()[-3:])
            raise HarnessError(
                f"python/lock.sh failed (exit status {proc.returncode}: {tail[:300]}). Check "
                "that PyPI is reachable (proxy? --extra-ca) and run it again"
            )
        new = {p.name: p.read_text() for p in sorted(where.glob("*.lock"))}
    diff = []
    for name in sorted(old.keys() | new.keys()):
        for d in pins.lock_diff(old.get(name, ""), new.get(name, "")):
            diff.append(d)
            typer.echo(f"python/{name}: {d}")
    if not diff:
        _line(f"python/{', python/'.join(sorted(new))} up to date")
    return diff


def main() -> None:
    os.environ.setdefault("COLUMNS", "120")
    app()


if __name__ == "__main__":
    main()


__all__ = ["Suite", "app", "main"]
