"""End to end on the real Docker engine: real images, a real quick suite, real reports."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness.images import build_base
from harness.kinds import case_profile
from harness.suite import DEFAULT_SUITE, BaseSpec, load_suite
from tests.conftest import harness
from tests.prereqs import require_command

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def quick_bundle(built_images, tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("results")
    proc = harness("run", "--cpus", "1", "--profile", "quick", "--results", str(results))
    assert proc.returncode == 0, proc.stderr[-4000:]
    bundle = Path(proc.stdout.strip().splitlines()[-1])
    assert bundle.is_dir()
    rep = harness("report", str(bundle))
    assert rep.returncode == 0, rep.stderr[-4000:]
    return bundle


def test_quick_suite_bundle_has_every_case_with_valid_checksums(quick_bundle):
    suite = load_suite()
    expected = {c.case_id for c in suite.cases(suite.profiles["quick"])}
    manifest = json.loads((quick_bundle / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["schema"] == 1
    assert manifest["cpuset"] == "1" or re.fullmatch(r"\d+", manifest["cpuset"])
    for name in ("python", "rust"):
        img = manifest["images"][name]
        assert img["id"].startswith("sha256:")
        assert img["layers"]
        assert img["versions"]
    assert "3.13.5" in manifest["images"]["python"]["versions"]["python"]
    assert "1.97" in manifest["images"]["rust"]["versions"]["rustc"]

    cases = [json.loads(line) for line in (quick_bundle / "cases.jsonl").read_text().splitlines()]
    assert {c["case_id"] for c in cases} == expected
    bad = [c for c in cases if c["status"] != "ok"]
    assert not bad, bad

    samples = [json.loads(x) for x in (quick_bundle / "samples.jsonl").read_text().splitlines()]
    assert all(s["checksum_ok"] for s in samples)
    prof = suite.profiles["quick"]
    # Process and kernel cases: the runner's warm-up and measured runs of every session.
    runs = [s for s in samples if s["kind"] != "service"]
    by_id = {c.case_id: c for c in suite.cases(prof)}
    rows = {c["case_id"]: c for c in cases}
    run_cases = {cid for cid, c in by_id.items() if c.task.kind != "service"}
    for cid in run_cases:
        own = case_profile(by_id[cid], prof)
        mine = [s for s in runs if s["case_id"] == cid]
        warm = sum(1 for s in mine if s["warmup"])
        assert len(mine) - warm == own.sessions * own.runs, cid
        if by_id[cid].task.kind == "process" and own.adaptive_warmup:
            # Warm start: the warm-up found from the data, recorded per session.
            found = rows[cid]["warmup_runs"]
            assert len(found) == own.sessions, cid
            assert all(own.settle_k <= n <= own.warmup_cap for n in found), (cid, found)
            assert warm == sum(found), cid
        else:
            assert warm == own.sessions * own.warmup, cid
    cold = [cid for cid in run_cases if by_id[cid].task.start == "cold"]
    assert cold
    assert all(rows[cid]["sessions"] == prof.cold_sessions for cid in cold)
    # The library start-ups' import profile.
    imports = manifest["kind_state"]["process"]["importtime"]
    assert set(imports) == {"py-numpy", "py-pandas", "py-polars"}
    assert all(v["total_us"] > 0 and v["top_level"] for v in imports.values())
    assert all(s["wall_ns"] > 0 and s["maxrss_kb"] > 0 for s in runs)
    kernel = [s for s in runs if s["kind"] == "kernel"]
    assert all(len(s["iter_ns"]) == prof.iters for s in kernel)
    # Service cases: the check, then saturation (warm-up and measured) and each fixed rate.
    for cid in expected - run_cases:
        phases = [s["phase"] for s in samples if s["case_id"] == cid]
        assert phases[:3] == ["check", "saturate", "saturate"], (cid, phases)
        assert phases.count("rate") == 2, (cid, phases)
        sat = next(s for s in samples if s["case_id"] == cid and s["phase"] == "saturate")
        assert sat["rps"] > 0


def test_reports_cover_every_case(quick_bundle):
    md = (quick_bundle / "report.md").read_text()
    html = (quick_bundle / "report.html").read_text()
    summary = (quick_bundle / "summary.csv").read_text()
    suite = load_suite()
    for c in suite.cases(suite.profiles["quick"]):
        assert c.impl.name in md
        assert c.impl.name in html
        assert c.impl.name in summary
    assert "http://" not in html
    assert "https://" not in html
    assert "<script" not in html


def test_runner_agrees_with_hyperfine(built_images):
    proc = harness(
        "calibrate", "--impl", "true", "--impl", "rs-hello", "--rounds", "4", "--runs", "5"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "/bin/true" in proc.stdout
    assert "/opt/rpb/bin/hello" in proc.stdout
    assert "agree within" in proc.stdout


def test_base_is_reproducible(engine, cleanup):
    """Two mmdebstrap builds of the base give the same rootfs layer digest."""
    suite = load_suite()
    digests = []
    for i in (1, 2):
        spec = BaseSpec(**{**suite.base.__dict__, "tag": f"rpb-base-repro:{i}"})
        info = build_base(engine, spec, lambda _line: None)
        cleanup.append(lambda t=spec.tag: engine.client.images.remove(t))
        digests.append((info["layers"], info["rootfs_tar_sha256"]))
    assert digests[0] == digests[1]
    assert len(digests[0][0]) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def local_registry(cleanup):
    """Debian's docker-registry serving on loopback only, with its own storage."""
    registry = require_command("docker-registry", "docker-registry", "the registry-route test")
    port = _free_port()
    tmp = Path(tempfile.mkdtemp(prefix="rpb-registry-"))
    cleanup.append(lambda: shutil.rmtree(tmp, ignore_errors=True))
    config = tmp / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "storage:\n  filesystem:\n    rootdirectory: " + str(tmp / "data") + "\n"
        "http:\n  addr: 127.0.0.1:" + str(port) + "\n"
    )
    proc = subprocess.Popen(
        [registry, "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cleanup.append(proc.wait)
    cleanup.append(proc.terminate)
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        pytest.fail("the local registry did not start")
    return f"127.0.0.1:{port}"


def test_base_pulled_by_digest_from_a_registry(
    engine, built_images, local_registry, cleanup, tmp_path
):
    suite = load_suite()
    base = engine.require_image(suite.base.tag)
    repo = f"{local_registry}/rpb-base"
    engine.api.tag(suite.base.tag, repo, "trixie")
    cleanup.append(lambda: engine.client.images.remove(f"{repo}:trixie"))
    pushed = engine.client.images.push(repo, tag="trixie")
    assert '"error"' not in pushed
    digest = engine.api.inspect_distribution(f"{repo}:trixie")["Descriptor"]["digest"]
    engine.client.images.remove(f"{repo}:trixie")

    # A suite whose base tag is new here, so the pull (not a cached tag) must provide it.
    text = DEFAULT_SUITE.read_text().replace(
        'tag = "rpb-base:trixie"', 'tag = "rpb-base-reg:trixie"'
    )
    suite_file = tmp_path / "suite.toml"
    suite_file.write_text(text)
    cleanup.append(lambda: engine.client.images.remove("rpb-base-reg:trixie"))
    ref = f"{repo}@{digest}"
    cleanup.append(lambda: engine.client.images.remove(ref))
    proc = harness("build", "--suite", str(suite_file), "--base-ref", ref, "--image", "rust")
    assert proc.returncode == 0, proc.stderr[-3000:]
    pulled = engine.require_image("rpb-base-reg:trixie")
    assert pulled["id"] == base["id"]
    assert pulled["layers"] == base["layers"]
    assert f"{repo}@{digest}" in pulled["repo_digests"]
    # Same base, same toolchains: the rust image is the one already built.
    assert "is up to date" in proc.stderr
    assert built_images["rust"] in proc.stdout


def test_base_ref_must_name_a_digest():
    proc = harness("build", "--base-ref", "127.0.0.1:1/rpb-base:latest")
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("Error: --base-ref 127.0.0.1:1/rpb-base:latest does not")


def test_extra_ca_stays_out_of_the_final_images(engine, built_images):
    """The CA bundle handed to build stages is neither a file nor a setting in final images."""
    for name in ("python", "rust"):
        tag = built_images[name]
        env = engine.api.inspect_image(tag)["Config"].get("Env") or []
        assert not [e for e in env if "CAINFO" in e or "PIP_CERT" in e], env
        res = engine.run(
            tag,
            ["sh", "-c", "ls /tmp/extra-ca.pem /tmp/ca-bundle.pem 2>&1; echo done"],
            run_id="test-ca",
            cpuset=None,
            hardened=False,  # no tmpfs over /tmp: look at the image's own /tmp
        )
        assert res.stdout.count("No such file") == 2, res.stdout
