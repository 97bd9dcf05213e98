"""Container hardening, verified rather than assumed.

A probe (a fixed Python program) runs in the `python` image through the code path every
benchmark takes, `Engine.run` with the defaults `harness run` uses (hardened, no network,
`Limits()`), and reports what it can do from the inside: user, writable paths, capabilities,
no-new-privileges, network, cgroup limits, the Docker socket, and a bounded fork storm against
the pids limit. The engine's own record of the container (`docker inspect`, through
`Engine.run(inspect=...)`) is checked too. The probe never contacts anything outside: the only
"outside" address it tries is 192.0.2.1 (TEST-NET-1, RFC 5737), and with no network there is no
route, so connect() fails at once and nothing is sent.
"""

from __future__ import annotations

import json
import secrets
import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.engine import KIT, KIT_LABEL, NOBODY, RUN_LABEL, Limits, container_config
from harness.host import available_cpus, format_cpu_list

HARNESS = Path(__file__).resolve().parent.parent / "harness"
GIB4 = 4 * 1024**3

PROBE = textwrap.dedent(
    """
    import errno, json, os, shutil, signal, socket, subprocess, time

    def attempt(fn):
        try:
            fn()
            return "ok"
        except OSError as e:
            return errno.errorcode.get(e.errno, str(e.errno))

    def write(path):
        def f():
            with open(path, "w") as fh:
                fh.write("x")
            os.unlink(path)
        return f

    def read(*paths):
        for p in paths:
            try:
                with open(p) as fh:
                    return fh.read().strip()
            except OSError:
                pass
        return None

    def status():
        out = {}
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                out[key] = value.strip()
        return out

    def mounts():
        out = {}
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                fields, _, rest = line.partition(" - ")
                parts = fields.split()
                out[parts[4]] = {"options": parts[5], "fstype": rest.split()[0]}
        return out

    def closed_port():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port

    def tcp(host, port, family=socket.AF_INET):
        def f():
            s = socket.socket(family, socket.SOCK_STREAM)
            s.settimeout(1)
            try:
                s.connect((host, port))
            finally:
                s.close()
        return f

    def timed(fn):
        t = time.monotonic()
        result = attempt(fn)
        return {"result": result, "seconds": round(time.monotonic() - t, 3)}

    def udp(host):
        def f():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.sendto(b"x", (host, 9))
            finally:
                s.close()
        return f

    def loopback_echo():
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        cli = socket.create_connection(srv.getsockname(), timeout=1)
        conn, _ = srv.accept()
        cli.sendall(b"ping")
        ok = conn.recv(4) == b"ping"
        for s in (conn, cli, srv):
            s.close()
        if not ok:
            raise OSError(errno.EIO, "echo")

    def raw_socket():
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()

    def exec_from_tmp():
        shutil.copy("/bin/true", "/tmp/true-copy")
        os.chmod("/tmp/true-copy", 0o755)
        try:
            subprocess.run(["/tmp/true-copy"], check=True)
        finally:
            os.unlink("/tmp/true-copy")

    def forks(n):
        pids, failed = [], 0
        for _ in range(n):
            try:
                pid = os.fork()
            except OSError:
                failed += 1
                continue
            if pid == 0:
                try:
                    time.sleep(30)
                finally:
                    os._exit(0)
            pids.append(pid)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        for pid in pids:
            os.waitpid(pid, 0)
        return {"tried": n, "started": len(pids), "failed": failed}

    st = status()
    report = {
        "uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid(), "egid": os.getegid(),
        "groups": os.getgroups(),
        "write": {p: attempt(write(p)) for p in ("/probe", "/opt/probe", "/etc/probe",
                                                 "/tmp/probe", "/data/probe")},
        "exec_from_tmp": attempt(exec_from_tmp),
        "setuid_0": attempt(lambda: os.setuid(0)),
        "raw_socket": attempt(raw_socket),
        "caps": {k: st.get(k) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")},
        "no_new_privs": st.get("NoNewPrivs"),
        "seccomp": st.get("Seccomp"),
        "interfaces": sorted(os.listdir("/sys/class/net")),
        "loopback_refused": attempt(tcp("127.0.0.1", closed_port())),
        "loopback_echo": attempt(loopback_echo),
        "outside_tcp": timed(tcp("192.0.2.1", 80)),
        "outside_udp": timed(udp("192.0.2.1")),
        "outside_tcp6": timed(tcp("2001:db8::1", 80, socket.AF_INET6)),
        "pids_max": read("/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"),
        "memory_limit": read("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                             "/sys/fs/cgroup/memory.max"),
        "memsw_limit": read("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
        "swap_max": read("/sys/fs/cgroup/memory.swap.max"),
        "docker_sock": [p for p in ("/var/run/docker.sock", "/run/docker.sock")
                        if os.path.exists(p)],
        "mounts": mounts(),
    }
    report["forks"] = forks(600)
    print(json.dumps(report))
    """
)


# ----- the configuration, without an engine ----------------------------------------------------


def test_container_config_defaults_are_hardened():
    c = container_config(
        "img", ["true"], run_id="r1", cpuset="3", labels={"rpb.case": "a/b/-"}, data_volume="v"
    )
    assert c["command"] == ["true"]
    assert c["network_mode"] == "none"
    assert c["read_only"] is True
    assert c["user"] == NOBODY == "65534:65534"
    assert c["cap_drop"] == ["ALL"]
    assert "cap_add" not in c
    assert c["security_opt"] == ["no-new-privileges"]
    assert c["mem_limit"] == c["memswap_limit"] == Limits().memory  # no swap
    assert c["pids_limit"] == Limits().pids == 512
    assert c["tmpfs"] == {"/tmp": "rw,noexec,nosuid,size=512m"}
    assert c["cpuset_cpus"] == "3"
    assert c["labels"] == {KIT_LABEL: KIT, RUN_LABEL: "r1", "rpb.case": "a/b/-"}
    # The only mount is the data volume, read-only; never a host path, never docker.sock.
    [mount] = c["mounts"]
    assert (mount["Type"], mount["Source"], mount["Target"], mount["ReadOnly"]) == (
        "volume",
        "v",
        "/data",
        True,
    )
    for key in ("volumes", "privileged", "devices", "pid_mode", "ipc_mode", "userns_mode"):
        assert key not in c
    # A cpuset, never a CPU quota (docs/methodology.md section 2).
    for key in ("nano_cpus", "cpu_quota", "cpu_period", "cpu_shares"):
        assert key not in c


def test_container_config_applies_given_limits():
    c = container_config(
        "img", ["true"], run_id="r", cpuset=None, limits=Limits(memory="1g", pids=64)
    )
    assert (c["mem_limit"], c["memswap_limit"], c["pids_limit"]) == ("1g", "1g", 64)
    assert "cpuset_cpus" not in c


def test_no_code_path_turns_hardening_off_or_mounts_the_docker_socket():
    for path in sorted(HARNESS.glob("*.py")):
        text = path.read_text()
        assert "docker.sock" not in text, path
        assert "privileged" not in text, path
        if path.name != "engine.py":
            assert "hardened=False" not in text, path


# ----- the real engine -------------------------------------------------------------------------


def _probe(engine, tag: str, cleanup, **kwargs: Any) -> tuple[dict, dict]:
    run_id = "hardening-" + secrets.token_hex(3)
    volume = f"rpb-test-hardening-{secrets.token_hex(4)}"
    engine.client.volumes.create(name=volume)
    cleanup.append(lambda: engine.client.volumes.get(volume).remove(force=True))
    seen: dict[str, Any] = {}
    cpuset = format_cpu_list(available_cpus()[-1:])
    res = engine.run(
        tag,
        ["python3", "-c", PROBE],
        run_id=run_id,
        cpuset=cpuset,
        limits=Limits(),
        data_volume=volume,
        timeout_s=300,
        inspect=seen.update,
        **kwargs,
    )
    assert res.exit_code == 0, res.stderr[-3000:]
    assert not engine.kit_containers(run_id)  # removed after the run
    return json.loads(res.stdout.strip().splitlines()[-1]), seen


def _locked_down(p: dict, engine) -> None:
    zero = "0000000000000000"
    assert p["caps"] == dict.fromkeys(("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"), zero)
    assert p["no_new_privs"] == "1"
    if any("seccomp" in o for o in engine.info()["security_options"] or []):
        assert p["seccomp"] == "2"  # the engine's default seccomp filter applies
    assert p["raw_socket"] == "EPERM"
    # Read-only root file system: the mount says so and writes fail.
    assert "ro" in p["mounts"]["/"]["options"].split(",")
    for path in ("/probe", "/opt/probe", "/etc/probe"):
        assert p["write"][path] in {"EROFS", "EACCES"}, (path, p["write"][path])
    # Scratch works, but nothing executes from it.
    assert p["write"]["/tmp/probe"] == "ok"
    assert p["mounts"]["/tmp"]["fstype"] == "tmpfs"
    assert {"noexec", "nosuid"} <= set(p["mounts"]["/tmp"]["options"].split(","))
    assert p["exec_from_tmp"] == "EACCES"
    # No network: loopback only; anything else has no route and fails at once.
    assert p["interfaces"] == ["lo"]
    assert p["loopback_refused"] == "ECONNREFUSED"
    assert p["loopback_echo"] == "ok"
    for key in ("outside_tcp", "outside_udp"):
        assert p[key]["result"] == "ENETUNREACH", p[key]
        assert p[key]["seconds"] < 0.5, p[key]  # refused, not timed out
    assert p["outside_tcp6"]["result"] != "ok"
    # cgroup limits.
    assert p["pids_max"] == "512"
    assert int(p["memory_limit"]) == GIB4
    if p["memsw_limit"] is not None:  # cgroup v1 with swap accounting
        assert int(p["memsw_limit"]) == GIB4
    if p["swap_max"] is not None:  # cgroup v2
        assert p["swap_max"] == "0"
    # The fork storm hits the pids limit and fails instead of filling the host.
    forks = p["forks"]
    assert forks["started"] < 512
    assert forks["failed"] >= forks["tried"] - 511
    # The Docker socket is not there, by any path.
    assert p["docker_sock"] == []
    assert not [m for m in p["mounts"] if "docker" in m]


def _inspected_config(seen: dict, volume_read_only: bool) -> None:
    host = seen["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert not host.get("CapAdd")
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["NetworkMode"] == "none"
    assert host["Memory"] == GIB4
    assert host["MemorySwap"] == GIB4  # equal: no swap
    assert host["PidsLimit"] == 512
    assert host["Privileged"] is False
    assert not host.get("Binds")
    assert not host.get("Devices")
    assert host.get("PidMode", "") in {"", "private"}
    assert host.get("IpcMode", "") != "host"
    assert not host.get("CpuQuota")
    assert not host.get("NanoCpus")
    assert host["CpusetCpus"] == format_cpu_list(available_cpus()[-1:])
    assert host["Tmpfs"] == {"/tmp": "rw,noexec,nosuid,size=512m"}
    mounts = seen["Mounts"]
    assert [(m["Type"], m["Destination"], m["RW"]) for m in mounts] == [
        ("volume", "/data", not volume_read_only)
    ]
    assert not [m for m in mounts if "docker.sock" in (m.get("Source") or "")]
    assert seen["Config"]["Labels"][KIT_LABEL] == KIT


@pytest.mark.docker
def test_benchmark_container_is_locked_down(engine, built_images, cleanup):
    """The defaults of `harness run` (docker_executor): nobody, data volume read-only."""
    probe, seen = _probe(engine, built_images["python"], cleanup)
    assert (probe["uid"], probe["gid"], probe["euid"], probe["egid"]) == (65534,) * 4
    assert probe["groups"] == [] or set(probe["groups"]) == {65534}
    assert probe["setuid_0"] == "EPERM"
    _locked_down(probe, engine)
    assert "ro" in probe["mounts"]["/data"]["options"].split(",")
    assert probe["write"]["/data/probe"] in {"EROFS", "EACCES"}
    _inspected_config(seen, volume_read_only=True)
    assert seen["Config"]["User"] == NOBODY


@pytest.mark.docker
def test_input_generation_as_root_is_still_locked_down(engine, built_images, cleanup):
    """`prepare_inputs` runs datagen as uid 0 with the volume writable: root in name only."""
    probe, seen = _probe(engine, built_images["python"], cleanup, user="0:0", data_read_only=False)
    assert probe["uid"] == 0
    _locked_down(probe, engine)
    # uid 0 owns /, so only the read-only mount stops the write.
    assert probe["write"]["/probe"] == "EROFS"
    assert probe["write"]["/data/probe"] == "ok"
    _inspected_config(seen, volume_read_only=False)


@pytest.mark.docker
def test_shell_metacharacters_reach_the_program_verbatim(engine, built_images):
    argv = ["/bin/echo", "$(id)", "; touch /tmp/pwned", "`id`", "a  b", "$HOME", "|cat", "*"]
    res = engine.run(built_images["python"], argv, run_id="hardening-argv", cpuset=None)
    assert res.exit_code == 0, res.stderr
    assert res.stdout == " ".join(argv[1:]) + "\n"
