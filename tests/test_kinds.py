"""Task kinds, checksum rules, routes and thread counts: the suite fields and their checks, and
a fixture suite run through the real engine (a float kernel task and a trivial service)."""

from __future__ import annotations

import json
import re
import textwrap
import tomllib
from pathlib import Path

import pytest

from harness.errors import SuiteError
from harness.kinds import KINDS, metric_values, sample_kind
from harness.suite import DEFAULT_SUITE, ChecksumRule, load_suite, parse_suite
from tests.conftest import ROOT, harness

FIXTURES = ROOT / "tests" / "fixtures" / "kinds"


# ----- checksum rules ---------------------------------------------------------------------------
def test_float_checksums_agree_within_the_declared_tolerance():
    rule = ChecksumRule("floats", 1e-9)
    assert rule.agrees("1.0 2.0 -3.5", "1.0000000001 2.0 -3.5")  # 1e-10 relative
    assert not rule.agrees("1.0 2.0 -3.5", "1.00000001 2.0 -3.5")  # 1e-8 relative
    assert not rule.agrees("1.0 2.0", "1.0 2.0 3.0")  # another count
    assert not rule.agrees("1.0", "nan")
    assert not rule.agrees("1.0", "one")
    assert rule.agrees("0.0", "0.0")


def test_integer_and_exact_checksums():
    assert ChecksumRule("integer").agrees("42", " 42\n")
    assert not ChecksumRule("integer").agrees("42", "42.0")
    assert ChecksumRule("exact").agrees("Hello\n", "Hello\n")
    assert not ChecksumRule("exact").agrees("Hello\n", "Hello")


# ----- the suite's new fields -----------------------------------------------------------------
def raw() -> dict:
    return tomllib.loads(DEFAULT_SUITE.read_text())


def impl0(r: dict) -> dict:
    return r["tasks"]["sum_squares"]["impls"][0]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: impl0(r).update(route="fortran"), "route 'fortran' is not one of"),
        (lambda r: impl0(r).pop("route"), "missing key 'route'"),
        (lambda r: impl0(r).update(threads=0), "threads must be a count"),
        (lambda r: impl0(r).update(threads="all"), "threads must be a count"),
        (lambda r: r["tasks"]["startup"].pop("expected_stdout"), "needs expected_stdout"),
        (lambda r: r["profiles"]["quick"].update(max_sessions="two"), "'max_sessions' must be"),
        (lambda r: r["tasks"]["sum_squares"]["reference"].update({"1e5": "1"}), "'1e5' is not"),
        (lambda r: r["tasks"]["sum_squares"].update(checksum={"compare": "fuzzy"}), "compare"),
        (lambda r: r["tasks"]["sum_squares"].update(output="nfs"), "output must be"),
        (lambda r: r["tasks"]["startup"].update(kind="service"), "needs a [tasks.startup.load]"),
        (lambda r: r["tasks"]["sum_squares"].pop("sizes"), "needs sizes"),
        (lambda r: r["profiles"]["quick"].update(iters=1.5), "'iters' must be an integer"),
    ],
)
def test_bad_suite_values_are_refused_with_a_reason(mutate, message):
    r = raw()
    mutate(r)
    with pytest.raises(SuiteError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_suite(r, Path("x.toml"), "0")


def test_a_bad_value_is_one_error_line_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    text = DEFAULT_SUITE.read_text()
    head, default = text.split("[profiles.default]", 1)
    default = re.sub(r"max_sessions = \d+", 'max_sessions = "two"', default, count=1)
    bad.write_text(head + "[profiles.default]" + default)
    proc = harness("list", "--suite", str(bad))
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: profiles.default: 'max_sessions' must be an integer")
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_thread_sweeps_expand_per_core_and_cpus_means_every_core():
    s = load_suite()
    raw_suite = raw()
    impl0(raw_suite).update(threads="sweep")
    swept = parse_suite(raw_suite, Path("x.toml"), "0")
    cases = swept.cases(swept.profiles["quick"], ["sum_squares"], cpus=3)
    loops = [c for c in cases if c.impl.family == "py-loop"]
    assert [(c.impl.name, c.threads) for c in loops] == [
        ("py-loop-p1", 1),
        ("py-loop-p2", 2),
        ("py-loop-p3", 3),
    ]
    # `--impl py-loop` selects the whole sweep by its declared name.
    quick = swept.profiles["quick"]
    assert len(swept.cases(quick, ["sum_squares"], impls=["py-loop"], cpus=2)) == 2
    rayon = next(c for c in s.cases(s.profiles["quick"], cpus=2) if c.impl.name == "rs-rayon")
    assert rayon.threads == 2


def test_metric_values_follow_the_samples_kind():
    kernel = {"kind": "kernel", "iter_ns": [9, 1, 2], "wall_ns": 100}
    process = {"kind": "process", "iter_ns": [], "wall_ns": 100}
    service = {"kind": "service", "per_request_ns": 50.0, "wall_ns": 10}
    old = {"iter_ns": [9, 1], "wall_ns": 100}  # sample schema 1: no kind recorded
    assert metric_values(kernel, 1) == [1.0, 2.0]
    assert metric_values(process, 1) == [100.0]
    assert metric_values(service, 1) == [50.0]
    assert metric_values({**service, "warmup": True}, 1) == []
    assert sample_kind(old) == "kernel"
    assert {k.metric for k in KINDS.values()} == {"wall", "kernel", "per_request"}


# ----- a fixture suite through the real engine ---------------------------------------------------
def _program(body: str) -> str:
    return textwrap.dedent(body).strip()


FLOAT_PROGRAM = _program(
    """
    import json, sys
    values = sys.argv[1]
    print(json.dumps({"schema": 1, "task": "floats", "impl": "x", "n": 1, "setup_ns": 1,
                      "iter_ns": [1000, 1000, 1000], "checksum": values}))
    """
)


DIES = "import sys; print('cannot bind: config missing', flush=True); sys.exit(3)"
CRASH_HOOK = "    def do_POST(self):\n"
CRASH_AFTER_300 = (
    "    def do_POST(self):\n"
    "        import os\n"
    "        Handler.n = getattr(Handler, 'n', 0) + 1\n"
    "        if Handler.n > 300:\n"
    "            os._exit(7)\n"
)


def fixture_suite(tmp_path: Path) -> Path:
    """A suite that extends the default one (same base, images, profiles) with a float kernel
    task and a service task whose server and client are the fixture scripts."""
    server = (FIXTURES / "server.py").read_text()
    client = (FIXTURES / "client.py").read_text()

    def argv(*items: str) -> str:
        return json.dumps(list(items))

    text = f"""
schema = 2
name = "kinds"
extends = {json.dumps(str(DEFAULT_SUITE))}

[tasks.floats]
description = "a float checksum within and outside its tolerance"
kind = "kernel"
baseline = "exact"
checksum = {{ compare = "floats", rel_tol = 1e-9 }}
sizes = {{ test = [1] }}
reference = {{ "1" = "1.0 2.0 3.0" }}

[[tasks.floats.impls]]
name = "exact"
image = "python"
route = "python"
argv = {argv("python3", "-c", FLOAT_PROGRAM, "1.0 2.0 3.0")}

[[tasks.floats.impls]]
name = "close"
image = "python"
route = "python-lib"
argv = {argv("python3", "-c", FLOAT_PROGRAM, "1.0000000001 2.0 2.9999999999")}

[[tasks.floats.impls]]
name = "off"
image = "python"
route = "python-lib"
argv = {argv("python3", "-c", FLOAT_PROGRAM, "1.0 2.0 3.001")}

[tasks.echo]
description = "a trivial server under a trivial load client"
kind = "service"
baseline = "stdlib"

[tasks.echo.load]
image = "python"
port = 8080
rates = [0.5]
ready = {argv("python3", "-c", client, "ready", "{port}")}
check = {argv("python3", "-c", client, "check", "{port}", "{seed}")}
saturate = {argv("python3", "-c", client, "saturate", "{port}", "{duration}")}
rate = {argv("python3", "-c", client, "rate", "{port}", "{duration}", "{rate}")}

[[tasks.echo.impls]]
name = "stdlib"
image = "python"
route = "python"
argv = {argv("python3", "-c", server, "{port}")}

[[tasks.echo.impls]]
# A server that never starts: the case fails with its exit status and output.
name = "dies"
image = "python"
route = "python"
argv = {argv("python3", "-c", DIES, "{port}")}

[[tasks.echo.impls]]
# A server that crashes under load (after 300 requests): the case fails, nothing is left.
name = "crashes"
image = "python"
route = "python"
argv = {argv("python3", "-c", server.replace(CRASH_HOOK, CRASH_AFTER_300), "{port}")}
"""
    path = tmp_path / "kinds.toml"
    path.write_text(text)
    return path


def test_the_fixture_suite_loads_and_lists(tmp_path):
    path = fixture_suite(tmp_path)
    suite = load_suite(path)
    assert set(suite.tasks) == {"floats", "echo"}
    assert suite.images == load_suite().images
    proc = harness("list", "--suite", str(path), "--profile", "quick")
    assert proc.returncode == 0, proc.stderr
    assert "floats within 1e-09 relative" in proc.stdout
    assert "per_request" in proc.stdout


@pytest.mark.docker
def test_float_and_service_tasks_run_end_to_end(built_images, tmp_path):
    path = fixture_suite(tmp_path)
    results = tmp_path / "results"
    proc = harness(
        "run", "--suite", str(path), "--profile", "quick", "--cpus", "2",
        "--results", str(results),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    bundle = Path(proc.stdout.strip().splitlines()[-1])
    cases = {
        c["case_id"]: c for c in map(json.loads, (bundle / "cases.jsonl").read_text().splitlines())
    }
    assert cases["floats/exact/1"]["status"] == "ok"
    assert cases["floats/close/1"]["status"] == "ok"  # 1e-10 relative: inside 1e-9
    off = cases["floats/off/1"]
    assert off["status"] == "invalid"
    assert "floats within 1e-09 relative" in off["reason"]
    assert "'1.0 2.0 3.0'" in off["reason"]
    assert "1.0 2.0 3.001" in off["reason"]

    echo = cases["echo/stdlib/-"]
    assert echo["status"] == "ok", echo
    dies = cases["echo/dies/-"]
    assert dies["status"] == "failed"
    # It exits at once: either its container fails to start (runc cannot see it run) or it
    # is found gone while the load generator waits for it, with its status and output.
    assert "the server container did not start" in dies["reason"] or (
        "status 3" in dies["reason"] and "cannot bind: config missing" in dies["reason"]
    ), dies["reason"]
    crashes = cases["echo/crashes/-"]
    assert crashes["status"] == "failed"
    assert "the server exited with status 7" in crashes["reason"]
    assert echo["metric"] == "per_request"
    samples = [json.loads(x) for x in (bundle / "samples.jsonl").read_text().splitlines()]
    phases = [s["phase"] for s in samples if s["task"] == "echo"]
    assert phases[:2] == ["check", "saturate"]  # then the measured saturation, then the rate
    assert "rate" in phases
    sat = next(s for s in samples if s.get("phase") == "saturate" and not s["warmup"])
    assert sat["rps"] > 0
    assert sat["per_request_ns"] == pytest.approx(1e9 / sat["rps"])
    assert sat["server_cpu_ns"] > 0
    assert sat["server_maxrss_kb"] > 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["kind_state"]["service"]["rates"]["echo"][0] > 0
    rep = harness("report", str(bundle))
    assert rep.returncode == 0, rep.stderr
    # No container of the run is left behind.
    from harness.engine import connect

    assert connect().kit_containers(manifest["run_id"]) == []
