"""The protocol's knobs end to end on the real engine: A/A twins, unpinned runs, the local
runner (no container) and `harness compare` over their bundles. Logic, not timing: the
numbers themselves come from experiments/ (see its README)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import harness

pytestmark = pytest.mark.docker

SMALL = [
    "--profile", "quick", "--task", "startup", "--task", "sum_squares",
    "--impl", "rs-scalar", "--impl", "py-bare",
]  # fmt: skip


def run(results: Path, *args: str, env: dict[str, str] | None = None) -> Path:
    proc = harness("run", *SMALL, "--results", str(results), *args, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    bundle = Path(proc.stdout.strip().splitlines()[-1])
    rep = harness("report", str(bundle))
    assert rep.returncode == 0, rep.stderr[-4000:]
    return bundle


def load(bundle: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (bundle / name).read_text().splitlines()]


@pytest.fixture(scope="module")
def docker_bundle(built_images, tmp_path_factory) -> Path:
    return run(tmp_path_factory.mktemp("results"), "--cpus", "1")


def test_aa_runs_twins_interleaved_and_the_report_counts_false_flags(built_images, tmp_path):
    bundle = run(tmp_path, "--aa", "--cpus", "1", "--sessions", "2")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["aa"] is True
    assert manifest["baselines"] == {
        "startup.py-bare": "py-bare.a",
        "startup_cold.py-bare": "py-bare.a",
        "sum_squares.rs-scalar": "rs-scalar.a",
    }
    cases = load(bundle, "cases.jsonl")
    assert sorted(c["case_id"] for c in cases) == [
        "startup.py-bare/py-bare.a/-",
        "startup.py-bare/py-bare.b/-",
        "startup_cold.py-bare/py-bare.a/-",
        "startup_cold.py-bare/py-bare.b/-",
        "sum_squares.rs-scalar/rs-scalar.a/100000",
        "sum_squares.rs-scalar/rs-scalar.b/100000",
    ]
    # --sessions sets the warm sessions; a cold case is the profile's cold_sessions containers.
    cold_sessions = manifest["profile"]["cold_sessions"]
    assert all(
        c["status"] == "ok" and c["sessions"] == (cold_sessions if "_cold" in c["task"] else 2)
        for c in cases
    )
    md = (bundle / "report.md").read_text()
    assert "## A/A noise check" in md
    assert " of 3 pairs flagged" in md
    assert "## Where Rust pays off" not in md


def test_unpinned_run_is_recorded_and_reported(built_images, tmp_path):
    bundle = run(tmp_path, "--no-pin")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["pinned"] is False
    assert all(c["status"] == "ok" for c in load(bundle, "cases.jsonl"))
    assert "NOT pinned (any core)" in (bundle / "report.md").read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="the local runner needs root (chroot)")
def test_local_runner_measures_the_same_programs_without_a_container(
    docker_bundle, tmp_path, tmp_path_factory
):
    cache = tmp_path_factory.mktemp("cache")
    bundle = run(tmp_path, "--local", "--cpus", "1", env={"XDG_CACHE_HOME": str(cache)})
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["executor"] == "local"
    docker_manifest = json.loads((docker_bundle / "manifest.json").read_text())
    for name, root in manifest["local"]["rootfs"].items():
        # The very image the Docker run used, unpacked under the cache.
        assert root["id"] == docker_manifest["images"][name]["id"]
        assert Path(root["path"]).is_relative_to(cache)
    samples = load(bundle, "samples.jsonl")
    assert samples
    assert all(s["checksum_ok"] for s in samples)
    assert "no container (local" in (bundle / "report.md").read_text()

    out = tmp_path / "overhead.md"
    proc = harness("compare", str(docker_bundle), str(bundle), "--markdown", str(out))
    assert proc.returncode == 0, proc.stderr[-4000:]
    for case in ("sum_squares/rs-scalar/100000", "startup/py-bare/-"):
        assert case in proc.stdout
        assert case in out.read_text()
