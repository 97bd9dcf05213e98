"""The local backend: the image's own runner and programs under chroot, without the container.

The pure parts (argv, environment, timeouts, the cache's bookkeeping, inputs with a fake datagen)
run anywhere; the tests marked `docker` unpack the real images and run real sessions (as root).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import stat
import sys
import tarfile
import time
from pathlib import Path

import pytest

from harness import local
from harness.engine import KIT, KIT_LABEL, NOBODY, RUN_LABEL, Engine, RunResult
from harness.errors import HarnessError
from harness.local import (
    MARKER,
    LocalBackend,
    LocalRoot,
    chroot_argv,
    default_cache_dir,
    ensure_devices,
    ensure_rootfs,
    link_input,
    local_env,
    local_executor,
    passwd_home,
    prepare_local,
    prepare_local_inputs,
    require_root,
    rootfs_complete,
    run_local,
)
from harness.runner import (
    DATAGEN,
    RUNNER,
    RunOptions,
    check_generated,
    input_jobs,
    runner_argv,
    samples_from_output,
    session_failure,
    session_timeout,
)
from harness.suite import load_suite

SUITE = load_suite()
QUICK = SUITE.profiles["quick"]
CASE_IDS = ("sum_squares/rs-scalar/100000", "startup/py-bare/-")


def quick_case(case_id: str):
    return next(c for c in SUITE.cases(QUICK) if c.case_id == case_id)


def fake_root(tmp_path: Path, name: str) -> LocalRoot:
    path = tmp_path / name
    path.mkdir()
    return LocalRoot(name, f"rpb-{name}:t", f"sha256:{name}", path, {"PATH": "/bin"}, False)


# ----- argv and environment --------------------------------------------------------------------
def test_chroot_argv_pins_with_taskset_and_runs_as_nobody():
    argv = chroot_argv(Path("/c/root"), ["/opt/rpb/bin/runner", "--", "x y"], "2,3")
    assert argv == [
        "taskset",
        "-c",
        "2,3",
        "chroot",
        "--userspec=65534:65534",
        "/c/root",
        "/opt/rpb/bin/runner",
        "--",
        "x y",
    ]


def test_chroot_argv_unpinned_has_no_taskset_and_takes_host_tools_and_user():
    argv = chroot_argv(
        Path("/r"), ("/opt/rpb/bin/datagen",), None, user="0:0", chroot="/usr/sbin/chroot"
    )
    assert argv == ["/usr/sbin/chroot", "--userspec=0:0", "/r", "/opt/rpb/bin/datagen"]


@pytest.mark.parametrize("bad", [[], "true", ["true", 1]])
def test_chroot_argv_wants_exec_form(bad):
    with pytest.raises(TypeError):
        chroot_argv(Path("/r"), bad, None)


def test_local_env_is_what_docker_gives_a_container():
    env = local_env(
        ["PATH=/opt/venv/bin:/usr/bin", "DEBIAN_FRONTEND=noninteractive", "EMPTY=", "A=b=c"],
        home="/nonexistent",
        hostname="host1",
    )
    assert list(env.items()) == [
        ("PATH", "/opt/venv/bin:/usr/bin"),
        ("HOSTNAME", "host1"),
        ("DEBIAN_FRONTEND", "noninteractive"),
        ("EMPTY", ""),
        ("A", "b=c"),
        ("HOME", "/nonexistent"),
    ]


def test_local_env_defaults_path_and_keeps_the_images_home():
    env = local_env(["HOME=/home/x"], home="/nonexistent", hostname="h")
    assert env == {"PATH": local.DEFAULT_PATH, "HOSTNAME": "h", "HOME": "/home/x"}


def test_passwd_home():
    passwd = (
        "root:x:0:0:root:/root:/bin/bash\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        "blank:x:1000:1000::::\n"
        "broken line\n"
    )
    assert passwd_home(passwd, 65534) == "/nonexistent"
    assert passwd_home(passwd, 0) == "/root"
    assert passwd_home(passwd, 1000) == "/"
    assert passwd_home(passwd, 42) == "/"
    assert passwd_home("", 65534) == "/"


def test_require_root_says_what_to_do(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(HarnessError, match=r"needs root.*uid 1000.*sudo.*drop --local"):
        require_root()


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "rpb" / "rootfs"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "rpb" / "rootfs"


# ----- running a process -----------------------------------------------------------------------
def test_run_local_passes_exactly_the_environment_and_the_output():
    env_tool = shutil.which("env")
    assert env_tool
    res = run_local([env_tool], {"ONLY": "this", "A": "b c"}, 30)
    assert res == RunResult(0, "ONLY=this\nA=b c\n", "", timed_out=False)
    res = run_local([sys.executable, "-c", "import sys; print('err', file=sys.stderr)"], {}, 30)
    assert res == RunResult(0, "", "err\n", timed_out=False)


def test_run_local_exit_status_and_signal_like_a_container():
    assert run_local([sys.executable, "-c", "raise SystemExit(3)"], {}, 30).exit_code == 3
    kill = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    res = run_local([sys.executable, "-c", kill], {}, 30)
    assert res.exit_code == 128 + signal.SIGKILL
    assert "killed by signal 9 (SIGKILL) from outside" in str(session_failure(res, 0))


def test_run_local_timeout_kills_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "grandchild"
    code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    t0 = time.monotonic()
    res = run_local([sys.executable, "-c", code], {}, 1.5)
    assert time.monotonic() - t0 < 20
    assert res.timed_out
    assert res.exit_code is None
    assert res.stdout == "started\n"
    assert session_failure(res, 0) == "the container session timed out"
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the session's grandchild {grandchild} outlived the timeout")


def test_run_local_missing_program_is_a_harness_error(tmp_path):
    with pytest.raises(HarnessError, match=r"starting .* failed"):
        run_local([str(tmp_path / "nope")], {}, 5)


def test_local_executor_runs_the_runner_pinned_in_the_images_root(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    seen: list[tuple[list[str], dict[str, str], float]] = []

    def fake_run(argv, env, timeout_s):
        seen.append((argv, env, timeout_s))
        return RunResult(0, "", "", False)

    monkeypatch.setattr(local, "run_local", fake_run)
    root = fake_root(tmp_path, "rust")
    backend = LocalBackend(tmp_path, {"rust": root}, (), "/usr/bin/taskset", "/usr/sbin/chroot")
    opts = RunOptions(cpuset="3", timeout_s=10)
    execute = local_executor(backend, opts, QUICK)
    case = quick_case(CASE_IDS[0])
    argv = runner_argv(QUICK, opts.timeout_s, case.argv(QUICK.iters))
    assert execute(root.tag, argv, case) == RunResult(0, "", "", False)
    [(cmd, env, timeout_s)] = seen
    assert cmd == [
        "/usr/bin/taskset",
        "-c",
        "3",
        "/usr/sbin/chroot",
        f"--userspec={NOBODY}",
        str(root.path),
        RUNNER,
        *argv[1:],
    ]
    assert env == root.env
    assert timeout_s == session_timeout(QUICK, opts) == (QUICK.runs + QUICK.warmup_cap) * 10 + 60
    with pytest.raises(HarnessError, match="not unpacked"):
        execute("rpb-python:other", argv, case)
    manifest = backend.manifest()
    assert manifest["backend"] == "local"
    assert manifest["rootfs"]["rust"] == {
        "tag": root.tag,
        "id": root.image_id,
        "path": str(root.path),
        "cached": False,
        "env": root.env,
    }
    json.dumps(manifest)


# ----- inputs ----------------------------------------------------------------------------------
def test_input_jobs_and_the_generated_checksum_check():
    cases = [quick_case(c) for c in CASE_IDS] + [quick_case("sum_squares/py-loop/100000")]
    [job] = input_jobs(cases)
    assert job.path == "/data/sum_squares/n100000.i64"
    assert job.argv == (DATAGEN, "sum-squares", "--n", "100000", "--seed", "42", "--out", job.path)
    assert job.reference == SUITE.tasks["sum_squares"].reference[100000]
    check_generated(job, RunResult(0, json.dumps({"checksum": job.reference}) + "\n", "", False))
    with pytest.raises(HarnessError, match="failed \\(exit status 2\\): boom"):
        check_generated(job, RunResult(2, "", "boom", False))
    with pytest.raises(HarnessError, match="has checksum 7, but the suite's reference"):
        check_generated(job, RunResult(0, '{"checksum": "7"}\n', "", False))
    assert input_jobs([quick_case("startup/py-bare/-")]) == []


def fake_datagen(checksum: str | None = None):
    """Stands in for run_local running datagen in a root: writes --out, reports a checksum."""
    calls: list[list[str]] = []

    def run(argv, env, timeout_s):
        calls.append(argv)
        root = Path(argv[argv.index("--userspec=0:0") + 1])
        out = argv[argv.index("--out") + 1]
        target = root / out.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"\x01" * 8)
        reference = SUITE.tasks["sum_squares"].reference[100000]
        return RunResult(0, json.dumps({"checksum": checksum or reference}) + "\n", "", False)

    return run, calls


@pytest.fixture
def strict_umask():
    old = os.umask(0o077)
    yield
    os.umask(old)


@pytest.mark.usefixtures("strict_umask")
def test_inputs_are_generated_once_checked_and_linked_read_only(monkeypatch, tmp_path):
    run, calls = fake_datagen()
    monkeypatch.setattr(local, "run_local", run)
    rust, python = fake_root(tmp_path, "rust"), fake_root(tmp_path, "python")
    cases = [quick_case(c) for c in CASE_IDS]
    for _ in range(2):
        done = prepare_local_inputs(cases, rust, [python], chroot="chroot", log=print)
        assert done == ["/data/sum_squares/n100000.i64"]
    for root in (rust, python):  # open to uid 65534 whatever the umask
        assert stat.S_IMODE((root.path / "data").stat().st_mode) == 0o755
        assert stat.S_IMODE((root.path / "data/sum_squares").stat().st_mode) == 0o755
        assert stat.S_IMODE(root.path.stat().st_mode) == 0o700  # above /data: untouched
    assert len(calls) == 1  # the second time the file is there
    assert calls[0][:3] == ["chroot", "--userspec=0:0", str(rust.path)]
    src = rust.path / "data/sum_squares/n100000.i64"
    dest = python.path / "data/sum_squares/n100000.i64"
    assert dest.samefile(src)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o444


def test_input_with_a_wrong_checksum_is_refused_and_removed(monkeypatch, tmp_path):
    run, _ = fake_datagen(checksum="123")
    monkeypatch.setattr(local, "run_local", run)
    rust = fake_root(tmp_path, "rust")
    with pytest.raises(HarnessError, match="checksum 123"):
        prepare_local_inputs([quick_case(CASE_IDS[0])], rust, [], chroot="chroot", log=print)
    assert not (rust.path / "data/sum_squares/n100000.i64").exists()


def test_link_input_replaces_another_file_and_copies_across_file_systems(monkeypatch, tmp_path):
    src = tmp_path / "src"
    src.write_bytes(b"data")
    src.chmod(0o444)
    dest = tmp_path / "root" / "data" / "f"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"old")
    link_input(src, dest)
    assert dest.samefile(src)
    link_input(src, dest)  # already the same file
    assert dest.samefile(src)

    def no_link(self, target):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(Path, "hardlink_to", no_link)
    other = tmp_path / "other" / "data" / "f"
    link_input(src, other)
    assert other.read_bytes() == b"data"
    assert not other.samefile(src)
    assert stat.S_IMODE(other.stat().st_mode) == 0o444


# ----- the cache of unpacked roots -------------------------------------------------------------
class FakeEngine:
    def __init__(self, fail: bool = False) -> None:
        self.exports: list[tuple[str, Path]] = []
        self.fail = fail

    def export_rootfs(self, tag: str, dest: Path) -> None:
        self.exports.append((tag, dest))
        (dest / "etc").mkdir()
        (dest / "etc" / "passwd").write_text("nobody:x:65534:65534::/nonexistent:/bin/false\n")
        if self.fail:
            raise HarnessError("unpacking failed")


@pytest.mark.usefixtures("strict_umask")
def test_rootfs_is_unpacked_once_then_taken_from_the_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(local, "ensure_devices", lambda root: None)
    engine = FakeEngine()
    cache = tmp_path / "cache"
    path, cached = ensure_rootfs(engine, "rpb-rust:t", "sha256:abc", cache, log=print)
    assert (path, cached) == (cache / "abc", False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755  # "/" of the root, whatever the umask
    assert rootfs_complete(path, "sha256:abc")
    assert not rootfs_complete(path, "sha256:other")
    assert (path / "etc" / "passwd").is_file()
    assert ensure_rootfs(engine, "rpb-rust:t", "sha256:abc", cache, log=print) == (path, True)
    assert len(engine.exports) == 1
    assert engine.exports[0][1].name.startswith(".partial-abc-")
    assert sorted(p.name for p in cache.iterdir()) == ["abc"]


def test_half_unpacked_rootfs_is_never_used(monkeypatch, tmp_path):
    monkeypatch.setattr(local, "ensure_devices", lambda root: None)
    cache = tmp_path / "cache"
    (cache / "abc" / "etc").mkdir(parents=True)  # no marker: an unpacking that broke off
    (cache / ".partial-abc-999999999").mkdir()  # left by a dead process
    path, cached = ensure_rootfs(FakeEngine(), "t", "sha256:abc", cache, log=print)
    assert not cached
    assert (path / MARKER).is_file()
    assert sorted(p.name for p in cache.iterdir()) == ["abc"]


def test_failed_unpacking_leaves_nothing(monkeypatch, tmp_path):
    monkeypatch.setattr(local, "ensure_devices", lambda root: None)
    cache = tmp_path / "cache"
    with pytest.raises(HarnessError, match="unpacking failed"):
        ensure_rootfs(FakeEngine(fail=True), "t", "sha256:abc", cache, log=print)
    assert list(cache.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_ensure_devices_makes_dockers_character_devices(tmp_path):
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "null").write_text("a plain file")
    ensure_devices(tmp_path)
    for name, major, minor in local.DEVICES:
        st = (tmp_path / "dev" / name).lstat()
        assert stat.S_ISCHR(st.st_mode)
        assert st.st_rdev == os.makedev(major, minor)
        assert stat.S_IMODE(st.st_mode) == 0o666
    assert stat.S_IMODE((tmp_path / "dev" / "shm").stat().st_mode) == 0o1777


# ----- Engine.export_rootfs with a fake client ------------------------------------------------
def image_tar(*, escape: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, mode in (("tmp", 0o1777), ("usr", 0o755), ("usr/bin", 0o755)):
            tar.addfile(_dir(name, mode))
        su = tarfile.TarInfo("usr/bin/su")
        su.mode, su.size = 0o4755, 3
        tar.addfile(su, io.BytesIO(b"#!x"))
        link = tarfile.TarInfo("usr/bin/su2")
        link.type, link.linkname = tarfile.LNKTYPE, "../etc/shadow" if escape else "usr/bin/su"
        link.mode = su.mode  # a hard link carries its file's mode, as in `docker export`
        tar.addfile(link)
    return buf.getvalue()


def _dir(name: str, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    return info


class FakeContainer:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.removed = False

    def export(self):
        return (self.data[i : i + 7] for i in range(0, len(self.data), 7))  # odd-sized chunks

    def remove(self, force: bool = False) -> None:
        self.removed = force


class FakeClient:
    def __init__(self, data: bytes) -> None:
        self.api = None
        self.created: list[tuple[str, dict]] = []
        self.container = FakeContainer(data)
        self.containers = self

    def create(self, image: str, **kwargs):  # the SDK's signature: image by name or position
        self.created.append((image, kwargs))
        return self.container


def test_export_rootfs_streams_the_image_with_its_modes_and_removes_the_container(tmp_path):
    client = FakeClient(image_tar())
    Engine(client).export_rootfs("rpb-python:t", tmp_path)
    [(ref, kwargs)] = client.created
    assert ref == "rpb-python:t"
    assert kwargs["labels"] == {KIT_LABEL: KIT, RUN_LABEL: "export"}
    assert client.container.removed
    assert stat.S_IMODE((tmp_path / "tmp").stat().st_mode) == 0o1777
    assert stat.S_IMODE((tmp_path / "usr/bin/su").stat().st_mode) == 0o4755
    assert (tmp_path / "usr/bin/su2").samefile(tmp_path / "usr/bin/su")
    assert (tmp_path / "usr/bin/su").read_bytes() == b"#!x"


def test_export_rootfs_refuses_a_link_out_of_the_root(tmp_path):
    client = FakeClient(image_tar(escape=True))
    with pytest.raises(HarnessError, match=r"unpacking image rpb-python:t .* failed"):
        Engine(client).export_rootfs("rpb-python:t", tmp_path / "root")
    assert client.container.removed


# ----- the real images -------------------------------------------------------------------------
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")


@pytest.fixture(scope="module")
def local_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rootfs")


@pytest.fixture(scope="module")
def backend(engine, built_images, local_cache) -> LocalBackend:
    cases = [quick_case(c) for c in CASE_IDS]
    return prepare_local(engine, SUITE, cases, built_images, cache_dir=local_cache, log=print)


@pytest.mark.docker
@needs_root
def test_roots_are_the_images_own_files(engine, backend, built_images):
    assert sorted(backend.roots) == ["python", "rust"]
    for name, root in backend.roots.items():
        assert root.tag == built_images[name]
        assert root.image_id == engine.require_image(root.tag)["id"]
        assert root.path == backend.cache_dir / root.image_id.removeprefix("sha256:")
        assert rootfs_complete(root.path, root.image_id)
        assert (root.path / "opt/rpb/bin/runner").is_file()
        assert stat.S_IMODE((root.path / "tmp").stat().st_mode) == 0o1777
        assert stat.S_ISCHR((root.path / "dev/null").stat().st_mode)
        assert root.env["HOME"] == "/nonexistent"
        assert root.env["PATH"] in engine.image_env(root.tag)[0]
    assert backend.roots["python"].env["PATH"].startswith("/opt/venv/bin:")
    assert (backend.roots["rust"].path / "opt/rpb/bin/datagen").is_file()
    # setuid bits and owners by number, as in the image
    su = (backend.roots["python"].path / "usr/bin/su").stat()
    assert su.st_mode & stat.S_ISUID
    assert su.st_uid == 0
    # the helper containers are gone
    assert not engine.kit_containers("export")


@pytest.mark.docker
@needs_root
def test_inputs_are_shared_read_only_by_every_root(backend):
    [path] = backend.inputs
    rel = path.lstrip("/")
    src = backend.roots["rust"].path / rel
    dest = backend.roots["python"].path / rel
    assert src.stat().st_size == 8 * 100000
    assert dest.samefile(src)
    assert stat.S_IMODE(src.stat().st_mode) == 0o444


@pytest.mark.docker
@needs_root
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_local_session_gives_valid_samples(backend, built_images, case_id):
    case = quick_case(case_id)
    opts = RunOptions(cpuset="0", timeout_s=60)
    execute = local_executor(backend, opts, QUICK)
    argv = runner_argv(QUICK, opts.timeout_s, case.argv(QUICK.iters))
    result = execute(built_images[case.impl.image], argv, case)
    assert result.exit_code == 0, result.stderr
    samples, reason = samples_from_output(case, 0, case.impl.image, "x", result)
    assert reason is None
    assert len(samples) == QUICK.runs + QUICK.warmup
    assert all(s["checksum_ok"] for s in samples)
    assert all(s["wall_ns"] > 0 and s["maxrss_kb"] > 0 for s in samples)
    if case.task.kind == "kernel":
        assert all(len(s["iter_ns"]) == QUICK.iters for s in samples)


@pytest.mark.docker
@needs_root
def test_local_session_runs_as_nobody_without_the_container(backend, built_images):
    case = quick_case("startup/py-bare/-")
    code = "import os; print(os.getuid(), os.getgid(), os.getgroups(), os.environ['HOME'])"
    argv = runner_argv(QUICK, 60, ["python3", "-I", "-c", code])
    result = local_executor(backend, RunOptions(cpuset=None), QUICK)(
        built_images["python"], argv, case
    )
    runs = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["stdout"] for r in runs} == {"65534 65534 [65534] /nonexistent\n"}


@pytest.mark.docker
@needs_root
def test_second_prepare_reuses_the_cache(engine, backend, built_images, monkeypatch):
    def no_export(tag, dest):
        raise AssertionError(f"{tag} unpacked again")

    monkeypatch.setattr(engine, "export_rootfs", no_export)
    cases = [quick_case(c) for c in CASE_IDS]
    again = prepare_local(
        engine, SUITE, cases, built_images, cache_dir=backend.cache_dir, log=print
    )
    assert all(r.cached for r in again.roots.values())
    assert {n: r.path for n, r in again.roots.items()} == {
        n: r.path for n, r in backend.roots.items()
    }
    assert again.inputs == backend.inputs
