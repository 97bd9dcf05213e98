"""The `harness` command line. The only place that turns an error into an exit status."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness import __version__
from harness.errors import HarnessError, UsageError
from harness.host import (
    available_cpus,
    checks,
    choose_cpuset,
    fingerprint,
    format_cpu_list,
    git_commit,
)
from harness.images import ROOT, BuildOptions, build_images, resolve_tags
from harness.store import Bundle, check_writable, host_label, latest_bundle, new_run_id
from harness.suite import DEFAULT_SUITE, Suite, load_suite

app = typer.Typer(
    help="Build pinned Python and Rust images, run benchmarks in CPU-pinned containers, "
    "and report where Rust pays off.",
    no_args_is_help=True,
    add_completion=False,
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
    suite_path: SuiteOpt = DEFAULT_SUITE,
) -> None:
    """Build the base and the suite's toolchain images (cached by content hash)."""
    from harness.engine import connect

    suite = load_suite(suite_path)
    opts = BuildOptions(extra_ca=extra_ca, network_mode=network, rebuild=rebuild, base_ref=base_ref)
    engine = connect()
    result = build_images(engine, suite, opts, image, _log, verbose=verbose)
    table = Table("image", "tag / ref", "id", "rootfs layers")
    for name, info in result.items():
        layers = info.get("layers")
        n_layers = len(layers) if isinstance(layers, list) else 0
        table.add_row(name, str(info.get("ref")), str(info["id"])[:19], str(n_layers))
    Console().print(table)


def _image_versions(engine: Any, tag: str, run_id: str) -> dict[str, Any]:
    res = engine.run(tag, ["cat", "/opt/rpb/versions.json"], run_id=run_id, cpuset=None)
    try:
        out = json.loads(res.stdout)
    except json.JSONDecodeError:
        return {"error": "no /opt/rpb/versions.json"}
    return out if isinstance(out, dict) else {}


@app.command()
@handles_errors
def run(
    *,
    cpus: Annotated[
        int, typer.Option(help="Distinct cores pinned (cpuset) for each benchmark container.")
    ] = 1,
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
    timeout: Annotated[
        float, typer.Option(help="Seconds one process run may take before it is killed.")
    ] = 600.0,
    seed: Annotated[int, typer.Option(help="Seed of the interleaving order.")] = 0,
    host: Annotated[
        str | None, typer.Option("--host", help="Host label of the bundle (default: hostname).")
    ] = None,
    results: ResultsOpt = Path("results"),
    suite_path: SuiteOpt = DEFAULT_SUITE,
) -> None:
    """Run the suite in CPU-pinned, hardened containers; write a results bundle."""
    from harness.engine import connect
    from harness.runner import RunOptions, docker_executor, prepare_inputs, run_cases

    suite = load_suite(suite_path)
    if profile not in suite.profiles:
        raise UsageError(
            f"unknown profile '{profile}'. Known profiles: {', '.join(sorted(suite.profiles))}."
        )
    prof = suite.profiles[profile]
    cases = suite.cases(prof, task, image)
    if not cases:
        raise UsageError("the selection has no cases. Check --task and --image.")
    if timeout <= 0:
        raise UsageError(f"--timeout {timeout} must be positive.")
    cpuset = choose_cpuset(cpus, available_cpus())
    check_writable(results)
    engine = connect()
    needed = sorted({c.impl.image for c in cases} | {suite.data_image})
    tags = resolve_tags(engine, suite, needed)
    images = {name: engine.require_image(tags[name]) for name in needed}
    run_id = new_run_id()
    fp = fingerprint(cpuset)
    for name in needed:
        images[name]["versions"] = _image_versions(engine, tags[name], run_id)
    warnings = checks(fp, cpus)
    for w in warnings:
        _log(f"warning: {w}")
    label = host_label(host)
    manifest = {
        "run_id": run_id,
        "host": label,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "finished": None,
        "status": "incomplete",
        "cpus": cpus,
        "cpuset": format_cpu_list(cpuset),
        "profile": {
            "name": prof.name,
            "size": prof.size,
            "sessions": prof.sessions,
            "runs": prof.runs,
            "warmup": prof.warmup,
            "iters": prof.iters,
        },
        "seed": seed,
        "timeout_s": timeout,
        "suite": {"name": suite.name, "path": str(suite.path), "sha256": suite.digest},
        "baselines": {t.name: t.baseline for t in suite.tasks.values()},
        "cases": [c.case_id for c in cases],
        "base": engine.image(suite.base.tag),
        "images": images,
        "engine": engine.info(),
        "fingerprint": fp,
        "warnings": warnings,
        "harness_version": __version__,
        "git_commit": git_commit(ROOT),
        "argv": sys.argv,
    }
    bundle = Bundle.create(results, label, run_id, manifest)
    _log(f"run {run_id}: {len(cases)} cases on cpuset {format_cpu_list(cpuset)} -> {bundle.path}")
    opts = RunOptions(cpuset=format_cpu_list(cpuset), timeout_s=timeout, seed=seed)

    # SIGTERM ends the run like Ctrl-C: the session in flight is stopped, what is saved stays.
    def _term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _term)
    rows: list[dict[str, Any]] = []
    try:
        volume = prepare_inputs(engine, suite, cases, tags[suite.data_image], run_id, log=_log)
        execute = docker_executor(engine, run_id, opts, volume, prof)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        ) as progress:
            bar = progress.add_task("starting", total=prof.sessions * len(cases))

            def on_session(case: Any, session: int, i: int, total: int) -> None:
                progress.update(
                    bar, completed=i, description=f"{case.case_id} (session {session + 1})"
                )

            rows = run_cases(
                bundle, suite, cases, prof, tags, execute=execute, opts=opts, on_session=on_session
            )
            progress.update(bar, completed=prof.sessions * len(cases), description="done")
    except KeyboardInterrupt:
        bundle.update_manifest(
            status="incomplete",
            interrupted=True,
            finished=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        for c in engine.kit_containers(run_id):
            c.remove(force=True)
        typer.echo(f"Interrupted: the cases finished so far are saved in {bundle.path}.", err=True)
        raise typer.Exit(130) from None
    except HarnessError as e:
        bundle.update_manifest(status="incomplete", error=str(e))
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    bundle.update_manifest(
        status="complete", finished=datetime.now(UTC).isoformat(timespec="seconds")
    )
    bad = [r for r in rows if r["status"] != "ok"]
    for r in bad:
        _log(f"{r['status']}: {r['case_id']}: {r['reason']}")
    typer.echo(str(bundle.path))
    _log(f"{len(rows) - len(bad)} of {len(rows)} cases ok. Next: harness report {bundle.path}")


def write_report(bundle: Bundle) -> dict[str, Path]:
    """Aggregate a bundle and write summary.csv, report.md and report.html into it."""
    from harness import analysis, report

    manifest = bundle.manifest()
    samples = bundle.samples()
    cases = bundle.cases()
    if not samples:
        raise HarnessError(
            f"{bundle.path} has no samples yet. Run `harness run` (or resume it) first"
        )
    summary = analysis.summarize(samples, cases)
    speed = analysis.speedups(samples, summary, manifest.get("baselines", {}))
    return {
        "summary": bundle.write("summary.csv", report.render_summary_csv(summary)),
        "markdown": bundle.write(
            "report.md", report.render_markdown(manifest, summary, speed, cases)
        ),
        "html": bundle.write("report.html", report.render_html(manifest, summary, speed, cases)),
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
) -> None:
    """Aggregate a bundle (pandas) and write its Markdown and HTML reports (jinja2)."""
    bundle = Bundle.open(bundle_path or latest_bundle(results))
    paths = write_report(bundle)
    for kind, p in paths.items():
        typer.echo(f"{kind}: {p}")


@app.command()
@handles_errors
def calibrate(
    *,
    image: Annotated[str, typer.Option(help="Image to check the runner in.")] = "rust",
    cpus: Annotated[int, typer.Option(help="Cores pinned for the container.")] = 1,
    runs: Annotated[int, typer.Option(help="Runs per command.")] = 200,
    suite_path: SuiteOpt = DEFAULT_SUITE,
) -> None:
    """Check the runner against `hyperfine -N` on start-up of `true` and the Rust hello."""
    from harness.calibrate import calibrate as do_calibrate
    from harness.engine import connect

    suite = load_suite(suite_path)
    if image not in suite.images:
        raise UsageError(
            f"unknown image '{image}'. Known images: {', '.join(sorted(suite.images))}."
        )
    if runs < 5:
        raise UsageError(f"--runs {runs} is too few. Give at least 5.")
    cpuset = format_cpu_list(choose_cpuset(cpus, available_cpus()))
    engine = connect()
    tag = resolve_tags(engine, suite, [image])[image]
    engine.require_image(tag)
    rows = do_calibrate(engine, tag, cpuset, runs)
    table = Table("command", "runner median", "hyperfine median", "difference")
    for r in rows:
        table.add_row(
            r["command"],
            f"{r['runner_median_us']:.1f} µs",
            f"{r['hyperfine_median_us']:.1f} µs",
            f"{r['difference_pct']:+.1f} %",
        )
    Console().print(table)


@app.command()
@handles_errors
def doctor(
    *,
    cpus: Annotated[int, typer.Option(help="Cores a run would pin.")] = 1,
) -> None:
    """Show the host noise checks that `harness run` records (governor, load, SMT, swap...)."""
    cpuset = choose_cpuset(cpus, available_cpus())
    fp = fingerprint(cpuset)
    table = Table("fact", "value")
    for k, v in fp.items():
        table.add_row(k, json.dumps(v) if not isinstance(v, str) else v)
    Console().print(table)
    for w in checks(fp, cpus):
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


def main() -> None:
    os.environ.setdefault("COLUMNS", "120")
    app()


if __name__ == "__main__":
    main()


__all__ = ["Suite", "app", "main"]
