"""Pure logic of issue 14 (several engines, host labels, image archives, pins): no Docker."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness import archive, pins
from harness.cli import app
from harness.compare import label_clashes
from harness.engines import Target, parse_fact_files, parse_target
from harness.errors import HarnessError, UsageError
from harness.fleet import child_argv, local_cpusets, summary
from harness.host import machine_identity, machine_label
from harness.images import ROOT
from harness.pipeline import RunRequest
from harness.schema import HOST
from harness.suite import load_suite

runner = CliRunner()


# ----- host labels -----------------------------------------------------------------------------
def test_label_is_hostname_and_a_short_hash_of_cpu_model_and_cores():
    a = machine_label("vm", "AMD EPYC 7B13", 2)
    assert a.startswith("vm-")
    assert len(a) == len("vm-") + 6
    assert a == machine_label("vm", "AMD EPYC 7B13", 2)  # stable from run to run
    assert a != machine_label("vm", "AMD EPYC 7B13", 4)  # other core count
    assert a != machine_label("vm", "Intel Xeon Platinum 8375C", 2)  # other CPU
    assert HOST.match(a)


def test_label_of_an_odd_hostname_is_still_a_valid_bundle_folder():
    for name in ("my host/../x", "", "...", "a" * 400):
        label = machine_label(name, None, 0)
        assert HOST.match(label), label
        assert "/" not in label


def test_machine_identity_from_new_and_old_manifests():
    new = {"machine": {"hostname": "vm", "cpu_model": "X", "ncpu": 2}}
    old = {"fingerprint": {"cpu_model": "X"}, "engine": {"ncpu": 2}}
    assert machine_identity(new) == machine_identity(old) == ("X", 2)
    assert machine_identity({}) is None


class _Side:
    def __init__(self, name: str, host: str, model: str, ncpu: int) -> None:
        self.name = name
        self.host = host
        self.manifest = {"host": host, "machine": {"cpu_model": model, "ncpu": ncpu}}


def test_compare_warns_when_one_label_covers_two_machines():
    sides = [_Side("B1", "vm", "AMD EPYC", 2), _Side("B2", "vm", "Intel Xeon", 2)]
    [warning] = label_clashes(sides)  # type: ignore[arg-type]
    assert warning.startswith("B1 and B2 share the host label 'vm' but not the machine")
    assert "AMD EPYC, 2 cores vs Intel Xeon, 2 cores" in warning
    same = [_Side("B1", "vm", "AMD EPYC", 2), _Side("B2", "vm", "AMD EPYC", 2)]
    assert label_clashes(same) == []  # type: ignore[arg-type]
    apart = [_Side("B1", "a", "AMD EPYC", 2), _Side("B2", "b", "Intel Xeon", 8)]
    assert label_clashes(apart) == []  # type: ignore[arg-type]


# ----- engines ---------------------------------------------------------------------------------
def test_engine_urls_and_what_is_local(monkeypatch):
    assert parse_target("unix:///run/x/engine.sock").local
    assert parse_target("tcp://127.0.0.1:2375").local
    assert not parse_target("tcp://bench-2.example:2376").local
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object())
    assert not parse_target("ssh://me@bench-2").local
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(UsageError, match="needs the paramiko package for ssh:// engines"):
        parse_target("ssh://me@bench-2")
    with pytest.raises(UsageError, match="is not a way to reach a Docker engine"):
        parse_target("ftp://x")
    with pytest.raises(UsageError, match="needs an absolute path"):
        parse_target("unix://relative.sock")
    with pytest.raises(UsageError, match="neither an engine URL nor a Docker context name"):
        parse_target("no such/context")


def test_engine_environment_keeps_tls_conventions_and_drops_other_docker_variables():
    base = {
        "PATH": "/bin",
        "DOCKER_HOST": "unix:///elsewhere",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": "/certs",
        "DOCKER_CONTEXT": "other",
    }
    env = Target("tcp://h:2376", "tcp://h:2376").environment(base)
    assert env == {
        "PATH": "/bin",
        "DOCKER_HOST": "tcp://h:2376",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": "/certs",
    }
    env = Target("unix:///s", "unix:///s").environment(base)
    assert env == {"PATH": "/bin", "DOCKER_HOST": "unix:///s"}


def test_fact_files_read_by_a_container():
    text = (
        "/proc/cpuinfo:model name\t: AMD EPYC 7B13\n/proc/cpuinfo:flags\t: a:b\n"
        "/sys/devices/system/cpu/online:0-3\n"
    )
    files = parse_fact_files(text)
    assert files["/proc/cpuinfo"] == "model name\t: AMD EPYC 7B13\nflags\t: a:b\n"
    assert files["/sys/devices/system/cpu/online"] == "0-3\n"


# ----- several engines -------------------------------------------------------------------------
def _req(**kw) -> RunRequest:
    return RunRequest(**kw)


def test_local_engines_get_cores_of_their_own(monkeypatch):
    monkeypatch.setattr("harness.fleet.available_cpus", lambda: [0, 1, 2, 3])
    monkeypatch.setattr("harness.fleet.choose_cpuset", lambda n, av: sorted(av)[-n:])
    a, b = parse_target("unix:///a.sock"), parse_target("unix:///b.sock")
    remote = parse_target("tcp://far.example:2376")
    got = local_cpusets([a, b, remote], _req(cpus=2))
    assert got == {"unix:///a.sock": "2-3", "unix:///b.sock": "0-1"}
    assert local_cpusets([a, remote], _req(cpus=2)) == {}  # one local engine: as a plain run
    with pytest.raises(UsageError, match="need 6 distinct cores; this machine offers 4"):
        local_cpusets([a, b], _req(cpus=3))
    with pytest.raises(UsageError, match="would pin the 2 engines on this machine"):
        local_cpusets([a, b], _req(cpuset="1"))


def test_each_engine_runs_the_given_options():
    req = _req(
        cpus=1,
        profile="quick",
        task=("startup",),
        seed=3,
        results=Path("res"),
        suite_path=Path("s.toml"),
        images=Path("a.tar"),
        given=frozenset({"cpus", "profile", "task", "seed", "suite_path"}),
    )
    argv = child_argv(req, parse_target("unix:///b.sock"), "0")
    assert argv[1:] == [
        "-m",
        "harness.cli",
        "run",
        "--engine",
        "unix:///b.sock",
        "--cpus",
        "1",
        "--profile",
        "quick",
        "--task",
        "startup",
        "--seed",
        "3",
        "--suite",
        "s.toml",
        "--cpuset",
        "0",
        "--results",
        "res",
        "--images",
        "a.tar",
    ]


def test_summary_names_the_failed_host_why_and_how_to_finish(tmp_path):
    from harness.fleet import HostRun

    ok = HostRun(parse_target("unix:///a.sock"), [], returncode=0, bundle=tmp_path / "a")
    bad = HostRun(
        parse_target("unix:///b.sock"),
        [],
        returncode=1,
        bundle=tmp_path / "b",
        errors=["Error: the Docker engine went away during the run (x)."],
        resume="harness run --resume R --results res --engine unix:///b.sock",
    )
    lines = summary([ok, bad])
    assert lines[0] == f"  ok      unix:///a.sock -> {tmp_path / 'a'}"
    assert lines[1].startswith(f"  FAILED  unix:///b.sock -> {tmp_path / 'b'}: the Docker engine")
    assert lines[2].endswith("harness run --resume R --results res --engine unix:///b.sock")


# ----- pins ------------------------------------------------------------------------------------
BUILD_LOG = """Step 5/22 : RUN apt-get update && apt-get install -y rustc=${RUSTC_VERSION}
Reading package lists...
E: Version '1.90.0+dfsg1-1~bpo13+1' for 'rustc' was not found
E: Version '1.90.0+dfsg1-1~bpo13+1' for 'cargo' was not found
The command '/bin/sh -c apt-get update ...' returned a non-zero code: 100"""


def test_pin_error_is_found_in_the_build_log():
    assert pins.missing_pin(BUILD_LOG) == ("rustc", "1.90.0+dfsg1-1~bpo13+1")
    assert pins.missing_pin("E: Unable to locate package rustc") is None


def test_pin_error_names_package_version_argument_and_the_fix():
    suite = load_suite()
    error = pins.pin_error(BUILD_LOG, suite, suite.images["rust"], ROOT)
    assert error is not None
    assert str(error) == (
        "the pinned version 1.90.0+dfsg1-1~bpo13+1 of rustc is no longer in the Debian archive "
        f"(image rust, RUSTC_VERSION in {suite.path}). Refresh the pins with `harness lock` (or "
        "`make lock`), then run `harness build` again"
    )


def test_dockerfiles_say_which_packages_each_argument_pins():
    rust = pins.dockerfile_pins((ROOT / "docker/rust.Dockerfile").read_text())
    assert rust["RUSTC_VERSION"] == (("rustc", "cargo"), "trixie-backports")
    assert rust["HYPERFINE_VERSION"] == (("hyperfine",), None)
    python = pins.dockerfile_pins((ROOT / "docker/python.Dockerfile").read_text())
    assert python["PYTHON_VERSION"][0][0] == "python3"
    assert "RUNNER_IMAGE" not in python


def test_each_apt_get_install_of_a_run_has_its_own_release():
    text = (
        "RUN apt-get update \\\n && apt-get install -y python3=${PYTHON_VERSION} \\\n"
        " && apt-get install -y -t trixie-backports rustc=${RUSTC_VERSION} \\\n"
        " && echo x=${OTHER}\n"
    )
    assert pins.dockerfile_pins(text) == {
        "PYTHON_VERSION": (("python3",), None),
        "RUSTC_VERSION": (("rustc",), "trixie-backports"),
    }


POLICY = """rustc:
  Installed: (none)
  Candidate: 1.85.0+dfsg3-1
  Version table:
     1.97.1+dfsg1-1~bpo13+1 100
        100 http://deb.debian.org/debian trixie-backports/main amd64 Packages
     1.85.0+dfsg3-1 500
        500 http://deb.debian.org/debian trixie/main amd64 Packages
cargo:
  Installed: (none)
  Candidate: 1.85.0+dfsg3-1
  Version table:
     1.97.1+dfsg1-1~bpo13+1 100
        100 http://deb.debian.org/debian trixie-backports/main amd64 Packages
     1.85.0+dfsg3-1 500
        500 http://deb.debian.org/debian trixie/main amd64 Packages
"""


def test_policy_newest_version_of_a_release():
    policy = pins.parse_policy(POLICY)
    assert policy["rustc"].candidate == "1.85.0+dfsg3-1"
    assert policy["rustc"].newest("trixie-backports") == "1.97.1+dfsg1-1~bpo13+1"
    assert policy["rustc"].newest(None) == "1.85.0+dfsg3-1"
    assert policy["rustc"].has("1.85.0+dfsg3-1")
    assert not policy["rustc"].has("1.90.0")


def test_lock_changes_and_the_rewritten_suite():
    stale = "1.90.0+dfsg1-1~bpo13+1"
    pin = pins.Pin("rust", "RUSTC_VERSION", stale, ("rustc", "cargo"), "trixie-backports")
    current = pins.Pin("rust", "RUSTC_VERSION", "1.97.1+dfsg1-1~bpo13+1", pin.packages, pin.release)
    policies = {"trixie-backports": pins.parse_policy(POLICY)}
    [change] = pins.changes([pin], policies)
    assert change.line() == (
        'images.rust.args.RUSTC_VERSION (rustc, cargo): "1.90.0+dfsg1-1~bpo13+1" -> '
        '"1.97.1+dfsg1-1~bpo13+1" (old: no longer in the archive)'
    )
    assert pins.changes([current], policies) == []
    text = (
        '# pins\n[images.runner]\nargs = { RUSTC_VERSION = "1.90.0+dfsg1-1~bpo13+1" }\n\n'
        '[images.rust]\ndockerfile = "x"  # keep me\n'
        'args = { RUSTC_VERSION = "1.90.0+dfsg1-1~bpo13+1", HYPERFINE_VERSION = "1" }\n'
    )
    new = pins.rewrite_suite(text, [change])
    assert new == text.replace(
        'args = { RUSTC_VERSION = "1.90.0+dfsg1-1~bpo13+1", HYPERFINE',
        'args = { RUSTC_VERSION = "1.97.1+dfsg1-1~bpo13+1", HYPERFINE',
    )
    assert '[images.runner]\nargs = { RUSTC_VERSION = "1.90.0' in new  # only the image named
    with pytest.raises(HarnessError, match=r"no \[images.rust\] table"):
        pins.rewrite_suite("extends = 'x.toml'\n", [change])


def test_lock_refuses_packages_of_one_argument_at_two_versions():
    policies = {
        None: pins.parse_policy(POLICY.replace("Candidate: 1.85.0+dfsg3-1", "Candidate: 2", 1))
    }
    pin = pins.Pin("rust", "RUSTC_VERSION", "1", ("rustc", "cargo"), None)
    with pytest.raises(HarnessError, match="pins rustc, cargo to one version, but the archive"):
        pins.changes([pin], policies)


def test_policy_query_arguments_are_checked_words():
    assert pins.policy_args({None: ["python3", "hyperfine"], "trixie-backports": ["rustc"]}) == [
        "-=hyperfine,python3",
        "trixie-backports=rustc",
    ]
    with pytest.raises(HarnessError):
        pins.policy_args({None: ["x; rm -rf /"]})


def test_lock_diff_shows_version_changes():
    old = "numpy==2.5.5 \\\n    --hash=sha256:aa\npandas==3.0.0 \\\n    --hash=sha256:bb\n"
    new = "numpy==2.5.6 \\\n    --hash=sha256:cc\npandas==3.0.0 \\\n    --hash=sha256:bb\n"
    assert pins.lock_diff(old, new) == ["-numpy==2.5.5", "+numpy==2.5.6"]
    assert pins.lock_diff(old, old) == []
    assert pins.lock_diff(old, old.replace("aa", "dd")) == ["(same versions; the hashes changed)"]


# ----- image archives --------------------------------------------------------------------------
def _index() -> dict:
    return {
        "schema": 1,
        "created": "2026-01-01T00:00:00+00:00",
        "images": {"base": {"tag": "rpb-base:trixie", "id": "sha256:ab", "layers": ["sha256:1"]}},
    }


def _tar(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_archive_index_is_read_from_the_end_of_the_tar(tmp_path):
    path = tmp_path / "a.tar"
    index = _index()
    _tar(path, {"manifest.json": b"[]", archive.INDEX: archive.index_bytes(index)})
    assert archive.read_index(path) == index
    rec = archive.record(path, index)
    assert rec["index_sha256"] == archive.index_digest(index)
    assert rec["index_sha256"].startswith("sha256:")
    assert len(rec["index_sha256"]) == 71
    assert rec["images"] == {"base": "sha256:ab"}


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"manifest.json": b"[]"}, "has no rpb-images.json"),
        ({archive.INDEX: b"{"}, "is not valid JSON"),
        ({archive.INDEX: json.dumps({"schema": 9}).encode()}, "has no valid rpb-images.json"),
    ],
)
def test_archive_that_is_not_ours_is_refused(tmp_path, members, message):
    path = tmp_path / "a.tar"
    _tar(path, members)
    with pytest.raises(HarnessError, match=message):
        archive.read_index(path)


def test_archive_that_is_no_tar_or_missing(tmp_path):
    (tmp_path / "x.tar").write_bytes(b"not a tar" * 100)
    with pytest.raises(HarnessError, match="is not a readable tar archive"):
        archive.read_index(tmp_path / "x.tar")
    with pytest.raises(UsageError, match="is not a file"):
        archive.read_index(tmp_path / "none.tar")


# ----- the command line ------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["images", "save"], ["images", "load"], ["lock"]])
def test_new_commands_have_help(command):
    r = runner.invoke(app, [*command, "--help"])
    assert r.exit_code == 0, r.output
    assert "Usage:" in r.output
    assert len(r.output.splitlines()) > 3


def test_run_help_names_engine_and_images():
    r = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert "--engine" in r.output
    assert "--images" in r.output


def test_several_engines_refuse_one_host_label():
    r = runner.invoke(
        app, ["run", "--engine", "unix:///a.sock", "--engine", "unix:///b.sock", "--host", "x"]
    )
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1].startswith("Error: --host names one bundle's host")


def test_images_load_of_a_missing_archive_is_one_error_line(tmp_path):
    r = runner.invoke(app, ["images", "load", str(tmp_path / "none.tar")])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1].startswith("Error: ")


class _FakeEngine:
    """An engine on another host: its info, and a container that reads its /proc and /sys."""

    def __init__(self, stdout: str) -> None:
        self.stdout = stdout
        self.ran: list[list[str]] = []

    def info(self) -> dict:
        return {"ncpu": 4, "name": "bench-2", "kernel": "6.1.0-99-amd64"}

    def run(self, image: str, argv: list[str], **kw):
        from harness.engine import RunResult

        self.ran.append(argv)
        return RunResult(0, self.stdout, "", False)


def test_facts_of_an_engine_on_another_host_come_from_a_container_there():
    from harness.engines import host_facts

    out = "\n".join(
        [
            "/proc/cpuinfo:model name\t: Remote CPU 9000",
            "/proc/loadavg:0.10 0.20 0.30 1/100 42",
            "/sys/devices/system/cpu/online:0-3",
            *(
                f"/sys/devices/system/cpu/cpu{c}/topology/thread_siblings_list:{s}"
                for c, s in ((0, "0,2"), (1, "1,3"), (2, "0,2"), (3, "1,3"))
            ),
            "/sys/devices/system/cpu/cpu3/cpufreq/scaling_governor:powersave",
        ]
    )
    facts = host_facts(_FakeEngine(out), "rpb-base:trixie", local=False, run_id="facts")  # type: ignore[arg-type]
    assert (facts.hostname, facts.cpu_model, facts.ncpu, facts.cpus) == (
        "bench-2",
        "Remote CPU 9000",
        4,
        [0, 1, 2, 3],
    )
    assert facts.label == machine_label("bench-2", "Remote CPU 9000", 4)
    # Its topology: two cores of two threads; --cpus 2 takes one thread of each.
    assert facts.choose_cpuset(2) == [2, 3]
    fp = facts.fingerprint([2, 3])
    assert fp["cpu_model"] == "Remote CPU 9000"
    assert fp["kernel"] == "6.1.0-99-amd64"
    assert fp["cores_available"] == "0-3"
    assert fp["loadavg"] == "0.10 0.20 0.30 1/100 42"
    assert fp["smt_siblings"] == {2: "0,2", 3: "1,3"}
    assert facts.machine()["label"] == facts.label


def test_resume_finds_the_engine_the_run_started_on(tmp_path):
    from harness.pipeline import _recorded_engine

    run_id = "20260101T000000Z-abcdef"
    bundle = tmp_path / "vm-d4ecbf" / run_id
    bundle.mkdir(parents=True)
    manifest = {"schema": 1, "run_id": run_id, "engine_url": "unix:///x/engine.sock"}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert _recorded_engine(_req(resume=run_id, results=tmp_path)) == "unix:///x/engine.sock"
    manifest["engine_url"] = None
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert _recorded_engine(_req(resume=run_id, results=tmp_path)) is None
    assert _recorded_engine(_req(resume="20990101T000000Z-000000", results=tmp_path)) is None
    assert _recorded_engine(_req(results=tmp_path)) is None
