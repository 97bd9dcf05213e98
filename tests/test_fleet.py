"""One suite on two real Docker engines at once (issue 14): the machine's engine and a second
dockerd the test starts and stops (its own socket, data root, exec root, network and mount
namespaces: `SecondEngine` of tests/test_engine_loss.py).

The images reach the second engine through `harness images save` / `harness images load` (the
IDs must be equal), then `harness run --engine A --engine B` runs a tiny suite on both and
compares them; a second run loses the second engine midway: the first host finishes, the
stopped one keeps an incomplete bundle and the command that finishes it, which works once the
engine is back. The machine's engine is only read from (its images were built already).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.engine import Engine
from harness.engines import host_facts
from harness.host import available_cpus, local_machine
from harness.images import resolve_tags
from harness.suite import load_suite
from tests.conftest import ROOT
from tests.test_engine_loss import SecondEngine, _host_bridges

pytestmark = pytest.mark.docker

SUITE_FILE = ROOT / "tests" / "fixtures" / "fleet.toml"
SUITE = load_suite(SUITE_FILE)
MAIN = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _harness(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    print(
        f"$ harness {' '.join(args)}  ({time.monotonic() - started:.1f} s, exit {proc.returncode})"
    )
    print(proc.stderr[-20000:])
    print(proc.stdout[-6000:])
    return proc


@pytest.fixture(scope="module")
def rust_built(engine) -> None:
    """The base and the rust image on the machine's engine (cached by content hash)."""
    args = [sys.executable, "-m", "harness.cli", "build", "--image", "rust"]
    ca = Path("/etc/ssl/certs/ca-certificates.crt")
    if ca.is_file():
        args += ["--extra-ca", str(ca)]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def second(engine, rust_built) -> Iterator[SecondEngine]:
    bridges = _host_bridges()
    s = SecondEngine()
    try:
        s.start()
        yield s
    finally:
        s.destroy()
    assert bridges <= _host_bridges()


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    return base | {"RPB_LOCK_DIR": str(tmp_path / "locks"), "COLUMNS": "200"}


def _bundles(results: Path) -> dict[str, Path]:
    """engine URL -> bundle folder, from the manifests."""
    out = {}
    for m in results.glob("*/*/manifest.json"):
        out[json.loads(m.read_text())["engine_url"]] = m.parent
    return out


def test_two_engines_with_images_from_an_archive(engine, second, env, tmp_path):
    archive = tmp_path / "images.tar"
    # Save on the machine's engine, load into the second: the same IDs on both.
    t0 = time.monotonic()
    saved = _harness(
        "images", "save", str(archive), "--image", "rust", "--suite", str(SUITE_FILE), env=env
    )
    save_s = time.monotonic() - t0
    assert saved.returncode == 0, saved.stderr[-3000:]
    assert "Error" not in saved.stderr
    t0 = time.monotonic()
    loaded = _harness("images", "load", str(archive), "--engine", second.host, env=env)
    load_s = time.monotonic() - t0
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert "IDs equal to the archive's" in loaded.stderr
    tags = [SUITE.base.tag, resolve_tags(engine, SUITE, ["rust"])["rust"]]
    with second.client() as client:
        for tag in tags:
            assert client.images.get(tag).id == engine.client.images.get(tag).id
    print(
        f"archive {archive.stat().st_size / 1e6:.0f} MB; save {save_s:.1f} s, load {load_s:.1f} s"
    )
    # Read as an engine on another host would be (a container reads /proc and /sys there),
    # the second engine's host is this machine: the same label as the local reading.
    with second.client() as client:
        remote = host_facts(Engine(client), SUITE.base.tag, local=False, run_id="facts")
    assert remote.label == local_machine()["label"]
    assert remote.cpus == available_cpus()

    # Both engines at once, with the archive recorded in each manifest.
    results = tmp_path / "results"
    t0 = time.monotonic()
    run = _harness(
        "run",
        *("--engine", MAIN, "--engine", second.host),
        *("--suite", str(SUITE_FILE), "--profile", "quick", "--task", "hello"),
        *("--results", str(results), "--images", str(archive)),
        env=env,
    )
    print(f"two-engine run: {time.monotonic() - t0:.1f} s wall")
    assert run.returncode == 0, run.stderr[-4000:]
    assert "Traceback" not in run.stderr
    bundles = _bundles(results)
    assert set(bundles) == {MAIN, second.host}
    assert set(run.stdout.splitlines()[:2]) == {str(b) for b in bundles.values()}
    for url, bundle in bundles.items():
        m = json.loads((bundle / "manifest.json").read_text())
        assert m["status"] == "complete", url
        assert m["images_archive"]["ids_equal"] is True
        assert m["images_archive"]["path"] == str(archive.resolve())
        assert m["host"] == m["machine"]["label"] == bundle.parent.name
        cases = [json.loads(line) for line in (bundle / "cases.jsonl").read_text().splitlines()]
        assert sorted(c["status"] for c in cases) == ["ok", "ok"]
    # The two engines of this machine got cores of their own.
    cpusets = {json.loads((b / "manifest.json").read_text())["cpuset"] for b in bundles.values()}
    assert len(cpusets) == 2
    assert "2 of 2 hosts finished in" in run.stderr
    assert f"  ok      {second.host} -> " in run.stderr
    assert "comparing 2 bundles" in run.stderr
    assert "hello" in run.stdout  # the comparison's tables


def test_an_engine_stopped_midway_leaves_its_host_to_resume(engine, second, env, tmp_path):
    # The second engine holds the images already (the test above, or load them here).
    with second.client() as client:
        have = {t for img in client.images.list() for t in img.tags}
    if resolve_tags(engine, SUITE, ["rust"])["rust"] not in have:
        archive = tmp_path / "images.tar"
        args = ("--image", "rust", "--suite", str(SUITE_FILE))
        assert _harness("images", "save", str(archive), *args, env=env).returncode == 0
        assert (
            _harness("images", "load", str(archive), "--engine", second.host, env=env).returncode
            == 0
        )
    results = tmp_path / "results"
    argv = [
        *(sys.executable, "-m", "harness.cli", "run"),
        *("--engine", MAIN, "--engine", second.host),
        *("--suite", str(SUITE_FILE), "--profile", "long", "--task", "slow"),
        *("--results", str(results)),
    ]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            bundle = _bundles(results).get(second.host)
            samples = bundle / "samples.jsonl" if bundle else None
            if samples is not None and samples.is_file() and samples.read_text().strip():
                break
            if proc.poll() is not None:
                pytest.fail(f"the run ended early:\n{proc.communicate()[1][-3000:]}")
            time.sleep(0.2)
        else:
            pytest.fail("no sample from the second engine after 180 s")
        second.stop()  # the engine goes away in the middle of its run
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    print(f"run with one engine stopped: {time.monotonic() - t0:.1f} s wall\n{err[-6000:]}\n{out}")

    assert proc.returncode == 1, err[-3000:]
    assert "Traceback" not in err
    bundles = _bundles(results)
    main_m = json.loads((bundles[MAIN] / "manifest.json").read_text())
    assert main_m["status"] == "complete"  # the other host finished
    stopped = bundles[second.host]
    m = json.loads((stopped / "manifest.json").read_text())
    assert m["status"] == "incomplete"
    assert m["error"].startswith("the Docker engine went away during the run (")
    assert (stopped / "samples.jsonl").read_text().strip()  # what it measured is kept
    resume = f"harness run --resume {stopped.name} --results {results} --engine {second.host}"
    assert "1 of 2 hosts finished in" in err
    assert f"  FAILED  {second.host} -> {stopped}: the Docker engine went away" in err
    assert f"          finish it with: {resume}" in err
    assert err.strip().splitlines()[-1] == (
        f"Error: 1 of 2 hosts did not finish ({second.host}); the others' bundles are complete. "
        "See each host's line above for why and the command that finishes it."
    )
    assert out.splitlines()[0] == str(bundles[MAIN])  # only the finished host's bundle
    assert "comparing 2 bundles" in err  # what the stopped host measured is compared too

    # The engine is back: the printed command finishes that host's run.
    second.start()
    done = _harness(*resume.split()[1:], env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == str(stopped)
    assert json.loads((stopped / "manifest.json").read_text())["status"] == "complete"


def test_a_pinned_version_gone_from_the_archive_is_one_error_line(engine, rust_built, tmp_path):
    """A point release removed the pinned rustc: `harness build` says so in one line, and
    `harness lock --check` names the archive's current version."""
    stale = "1.90.0+dfsg1-1~bpo13+1"
    current = dict(SUITE.images["rust"].args)["RUSTC_VERSION"]
    suite = tmp_path / "stale.toml"
    text = (ROOT / "harness/suites/default.toml").read_text()
    suite.write_text(text.replace(current, stale))
    env = dict(os.environ) | {"COLUMNS": "200"}
    ca = ["--extra-ca", "/etc/ssl/certs/ca-certificates.crt"]
    build = _harness("build", "--image", "rust", "--suite", str(suite), *ca, env=env)
    assert build.returncode == 1
    errors = [line for line in build.stderr.splitlines() if line.startswith("Error:")]
    # The rust image starts from the runner image, the first to install the stale rustc.
    assert errors == [
        f"Error: the pinned version {stale} of rustc is no longer in the Debian archive (image "
        f"runner, RUSTC_VERSION in {suite}). Refresh the pins with `harness lock` (or `make "
        "lock`), then run `harness build` again."
    ]
    check = _harness("lock", "--check", "--no-python", "--suite", str(suite), *ca, env=env)
    assert check.returncode == 1
    assert (
        f'images.rust.args.RUSTC_VERSION (rustc, cargo): "{stale}" -> "{current}" '
        "(old: no longer in the archive)"
    ) in check.stdout
    assert suite.read_text() == text.replace(current, stale)  # --check writes nothing
