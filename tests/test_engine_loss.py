"""The Docker engine going away in the middle of a run: one clear `Error:` line, the data so far
kept, and `--resume` finishing the run once the engine is back.

The engine that goes away is a second dockerd this test starts on its own: its own socket, data
root, exec root, pid file, cgroup parent and config file, and its own containerd (the one dockerd
manages under its exec root, with its own namespaces). It runs in network and mount namespaces of
its own (`unshare`): a dockerd started with `--bridge=none` deletes the host's `docker0`, the
machine's engine's bridge, and one with a bridge would add its own links and routes. The kit's
`rust` image, the runner image it is built from and the base are copied into it from the
machine's engine (`docker save` | `docker load`), and the runs reach it through DOCKER_HOST. The
machine's engine is only read from.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import docker
from harness.engine import RUN_LABEL
from harness.images import resolve_tags
from harness.suite import load_suite
from tests.conftest import ROOT

pytestmark = pytest.mark.docker

FAULTS = ROOT / "tests" / "fixtures" / "faults.toml"
SUITE = load_suite(FAULTS)
TASK = "slow_rust"  # only the rust image, so only it (with the runner and base) must be copied
LONG = SUITE.profiles["long"]
PER_CASE = LONG.sessions * (LONG.runs + LONG.warmup)
DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"
UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"
DOCKER = shutil.which("docker") or "/usr/bin/docker"
CGROUP_ROOT = Path("/sys/fs/cgroup")
# The second engine's containerd namespaces (inside its own containerd, not the machine's).
NAMESPACE = "rpb-test"


def _proc_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _pids_mentioning(text: str) -> list[int]:
    """Processes whose command line names `text` (a path inside the test's own folder)."""
    return [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and int(p.name) != os.getpid() and text in _proc_cmdline(int(p.name))
    ]


def _kill(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


class SecondEngine:
    """A dockerd of the test's own in a temporary folder; started, stopped, started again."""

    def __init__(self) -> None:
        # Short: unix socket paths (the containerd and shim ones go deeper) have a length limit.
        self.dir = Path(tempfile.mkdtemp(prefix="rpb-engine-"))
        self.sock = self.dir / "docker.sock"
        self.host = f"unix://{self.sock}"
        self.log = self.dir / "dockerd.log"
        self.cgroup_parent = f"rpb-test-{self.dir.name}"
        (self.dir / "daemon.json").write_text("{}\n")  # not the machine's /etc/docker/daemon.json
        self.proc: subprocess.Popen | None = None
        self.driver = "vfs"
        help_text = subprocess.run(
            [DOCKERD, "--help"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        ).stdout
        self.ip6tables = "--ip6tables" in help_text  # not in every version

    def argv(self) -> list[str]:
        d = self.dir
        argv = [
            # Its own network namespace (no link, route or iptables rule of the host's) and
            # mount namespace (its mounts never show on the host). exec: the pid is dockerd's.
            *(UNSHARE, "--net", "--mount", "--propagation", "private", "--"),
            DOCKERD,
            f"--config-file={d / 'daemon.json'}",
            f"--host={self.host}",
            f"--data-root={d / 'data'}",
            f"--exec-root={d / 'exec'}",
            f"--pidfile={d / 'docker.pid'}",
            f"--cgroup-parent={self.cgroup_parent}",
            f"--storage-driver={self.driver}",
            f"--containerd-namespace={NAMESPACE}",
            f"--containerd-plugins-namespace={NAMESPACE}-plugins",
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
            "--userland-proxy=false",
        ]
        if self.ip6tables:
            argv.append("--ip6tables=false")
        return argv

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    @contextlib.contextmanager
    def client(self) -> Iterator[docker.DockerClient]:
        c = docker.DockerClient(base_url=self.host, timeout=30)
        try:
            yield c
        finally:
            c.close()

    def _spawn(self, timeout: float) -> bool:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C of pytest does not reach it; the teardown
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            with contextlib.suppress(Exception), self.client() as c:
                c.ping()
                return True
            time.sleep(0.2)
        return False

    def start(self, timeout: float = 60) -> None:
        if self._spawn(timeout):
            return
        tail = self.log_tail()
        self.stop()
        if self.driver == "vfs":
            self.driver = "fuse-overlayfs"  # a kernel or file system that refuses vfs
            if self._spawn(timeout):
                return
            tail = self.log_tail()
            self.stop()
        pytest.fail(f"the test's own dockerd did not answer within {timeout} s:\n{tail}")

    def stop(self) -> None:
        """SIGTERM, as a service stop does: dockerd stops its containers and its containerd."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)  # its containers get 10 s before they are killed
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.proc = None
        # Its containerd outlives a killed dockerd; then its shims and containers.
        self._kill_own_processes(signal.SIGTERM, wait=10)

    def _kill_own_processes(self, sig: signal.Signals, wait: float) -> None:
        """containerd and shims of this engine: their command lines name its exec root."""
        pids = _pids_mentioning(str(self.dir / "exec"))
        for pid in pids:
            _kill(pid, sig)
        deadline = time.monotonic() + wait
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)]
            time.sleep(0.1)
        for pid in pids:
            _kill(pid, signal.SIGKILL)

    def cgroups(self) -> list[Path]:
        """This engine's cgroup parent in each hierarchy (cgroup v1) or the unified one."""
        found = [CGROUP_ROOT / self.cgroup_parent]
        found += [p / self.cgroup_parent for p in CGROUP_ROOT.iterdir() if not p.is_symlink()]
        return [p for p in found if p.is_dir()]

    def destroy(self) -> None:
        self.stop()
        self._kill_own_processes(signal.SIGKILL, wait=5)
        # Container processes left by a killed shim: everything in this engine's own cgroups.
        for top in self.cgroups():
            for procs in top.rglob("cgroup.procs"):
                with contextlib.suppress(OSError, ValueError):
                    for pid in procs.read_text().split():
                        _kill(int(pid), signal.SIGKILL)
        time.sleep(0.2)
        for top in self.cgroups():
            for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):
                    d.rmdir()
            with contextlib.suppress(OSError):
                top.rmdir()
        # Anything of it still mounted on the host's side (none, with its own mount namespace).
        mounts = [
            line.split()[4]
            for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(f"{self.dir}/")
        ]
        for m in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _host_bridges() -> set[str]:
    return {p.parent.name for p in Path("/sys/class/net").glob("*/bridge")}


@pytest.fixture
def second_engine(engine, built_images) -> Iterator[SecondEngine]:
    """A private dockerd holding the base, runner and rust images, copied from the machine's
    engine."""
    tags = resolve_tags(engine, SUITE, ["rust"])
    # The rust image's tag names the runner image it copies the runner from: both go.
    wanted = [SUITE.base.tag, tags["runner"], tags["rust"]]
    bridges = _host_bridges()
    second = SecondEngine()
    try:
        second.start()
        # One `docker save` of both images, so the layers they share go once. The machine's
        # engine is the one the environment names, as for `engine`; the load names its own.
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        save = subprocess.Popen([DOCKER, "save", *wanted], stdout=subprocess.PIPE)
        load = subprocess.run(
            [DOCKER, "-H", second.host, "load", "-q"],
            stdin=save.stdout,
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        assert save.stdout is not None
        save.stdout.close()
        assert save.wait(timeout=60) == 0, "docker save on the machine's engine failed"
        assert load.returncode == 0, load.stderr[-2000:]
        with second.client() as client:
            for tag in wanted:  # the same images: a resumed run checks their IDs
                assert client.images.get(tag).id == engine.client.images.get(tag).id
        yield second
    finally:
        second.destroy()
    # The machine's engine keeps its bridge (docker0): the second engine never saw the host's.
    assert bridges <= _host_bridges()


def _jsonl(path: Path) -> list[dict]:
    """Every line must parse: an engine that goes away never leaves a torn one."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_engine_going_away_keeps_the_data_and_the_run_resumes(engine, second_engine, tmp_path):
    results = tmp_path / "results"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env |= {"DOCKER_HOST": second_engine.host, "RPB_LOCK_DIR": str(tmp_path / "locks")}
    run = [sys.executable, "-m", "harness.cli", "run", "--results", str(results)]
    argv = [*run, "--suite", str(FAULTS), "--task", TASK, "--profile", "long", "--seed", "0"]
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # The first session's samples are in: take the engine away.
        deadline = time.monotonic() + 120
        samples = None
        while time.monotonic() < deadline:
            found = [p for p in results.glob("*/*/samples.jsonl") if p.read_text().strip()]
            if found:
                samples = found[0]
                break
            if proc.poll() is not None:
                _, err = proc.communicate()
                pytest.fail(f"the run ended (status {proc.returncode}) early:\n{err[-3000:]}")
            time.sleep(0.1)
        assert samples is not None, "no sample after 120 s"
        bundle, run_id = samples.parent, samples.parent.name
        written = samples.read_text()
        second_engine.stop()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    # One clear line: the engine went away, where the data is, how to go on. No traceback.
    assert proc.returncode == 1, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, err[-3000:]
    line = errors[0]
    assert line.startswith("Error: the Docker engine went away during the run ("), line
    assert f"cases finished; everything measured so far is saved in {bundle}." in line
    assert line.endswith(
        f"Once the engine is back, finish the run with `harness run --resume {run_id} "
        f"--results {results}`."
    ), line
    assert out.strip() == ""  # the bundle path on stdout means a finished run

    # Every sample line written before is still there, and every line parses.
    kept = _jsonl(samples)
    assert samples.read_text().startswith(written)
    assert len(kept) >= LONG.runs + LONG.warmup
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["status"] == "incomplete"
    assert m["error"].startswith("the Docker engine went away during the run (")
    if (bundle / "cases.jsonl").exists():  # a case that finished before is whole and ok
        assert all(c["status"] == "ok" for c in _jsonl(bundle / "cases.jsonl"))

    # The engine is back (same data root): --resume finishes the run.
    second_engine.start()
    done = subprocess.run(
        [*run, "--resume", run_id],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(bundle)
    assert f"resuming run {run_id}: " in done.stderr
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["status"] == "complete"
    assert m["error"] is None
    assert m["resumed"][0]["previous_error"].startswith("the Docker engine went away")
    cases = _jsonl(bundle / "cases.jsonl")
    assert sorted(c["impl"] for c in cases) == ["ok", "slow"]
    assert all(c["status"] == "ok" for c in cases), cases
    final = _jsonl(bundle / "samples.jsonl")
    for impl in ("ok", "slow"):
        mine = [s for s in final if s["impl"] == impl]
        assert len(mine) == PER_CASE
        assert len({(s["session"], s["run"]) for s in mine}) == PER_CASE  # no duplicates
    # The containers of the attempt the engine took down are gone too.
    with second_engine.client() as client:
        left = client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})
    assert left == []
    # The machine's engine never saw the run.
    assert engine.kit_containers(run_id) == []
