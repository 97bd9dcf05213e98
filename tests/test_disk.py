"""A full disk or an unwritable results folder: a clear `Error:` before work where it can be
known, and never a half-written file (temporary file and rename; appends cut back).

Root may write anywhere, so permissions cannot make a folder unwritable here; the tests use a
path under a regular file, and small tmpfs mounts (read-only, tiny, or filled up by the test),
which need root with CAP_SYS_ADMIN: without it they are skipped, saying so.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness import store
from harness.errors import UsageError
from harness.store import Bundle, ResultsWriteError, check_writable, new_run_id
from tests.conftest import ROOT, harness

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
QUICK_RUN = ["run", "--profile", "quick", "--task", "startup", "--image", "rust", "--cpus", "1"]
PAGE = os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
def tmpfs(tmp_path) -> Iterator[Callable[..., Path]]:
    """mount(size, read_only=False) -> a fresh tmpfs folder; unmounted after the test."""
    mounted: list[Path] = []

    def mount(size: str, *, read_only: bool = False) -> Path:
        path = tmp_path / f"mnt{len(mounted)}"
        path.mkdir()
        options = f"size={size},mode=0755" + (",ro" if read_only else "")
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            pytest.skip(
                f"mounting a tmpfs is not permitted here ({proc.stderr.strip()}); the disk-full "
                "tests need root with CAP_SYS_ADMIN"
            )
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        if subprocess.run(["umount", str(path)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path, leave_pages: int = 0) -> Path:
    """Fill the file system of `folder` up, then give back `leave_pages` pages."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        block = b"\0" * PAGE
        while True:
            try:
                if os.write(fd, block) < PAGE:
                    break
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
        size = os.fstat(fd).st_size // PAGE * PAGE
        os.ftruncate(fd, max(0, size - leave_pages * PAGE))
    finally:
        os.close(fd)
    return filler


def tmp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def sample(run: int) -> dict:
    return {"schema": 1, "task": "startup", "impl": "rs-hello", "session": 0, "run": run,
            "wall_ns": 1000 + run, "note": "x" * 200}  # fmt: skip


def bundle_on(folder: Path) -> Bundle:
    run_id = new_run_id()
    return Bundle.create(folder, "h", run_id, {"status": "incomplete"})


# ----- before work: refused with nothing created -----------------------------------------------


def test_run_refuses_a_results_path_under_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("keep\n")
    proc = harness(*QUICK_RUN, "--results", str(f / "results"), env=NO_ENGINE)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip() == (
        f"Error: the results folder {f / 'results'} is not writable (Not a directory: {f} is a "
        "file). Choose another with --results or fix its permissions."
    )
    assert f.read_text() == "keep\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_run_refuses_a_tiny_disk_before_work(tmpfs):
    mnt = tmpfs("64k")
    proc = harness(*QUICK_RUN, "--results", str(mnt / "results"), env=NO_ENGINE)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip() == (
        f"Error: the results folder {mnt / 'results'} has 64 KiB of free space left; a run "
        "needs at least 10.0 MiB. Free space or choose another folder with --results."
    )
    assert list(mnt.iterdir()) == []  # checked before the folder was made


def test_run_refuses_a_read_only_results_folder(tmpfs):
    mnt = tmpfs("16m", read_only=True)
    proc = harness(*QUICK_RUN, "--results", str(mnt), env=NO_ENGINE)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip() == (
        f"Error: the results folder {mnt} is not writable (Read-only file system). Choose "
        "another with --results or fix its permissions."
    )


def test_free_space_threshold(tmpfs):
    mnt = tmpfs("64k")
    check_writable(mnt, min_free=32 * 1024)
    with pytest.raises(UsageError, match="has 64 KiB of free space left; a run needs at least"):
        check_writable(mnt, min_free=store.MIN_FREE_BYTES)


# ----- during work: clear errors, no half-written files ----------------------------------------


def test_append_on_a_full_disk_keeps_whole_lines(tmpfs):
    mnt = tmpfs("256k")
    bundle = bundle_on(mnt)
    bundle.append_samples([sample(i) for i in range(3)])
    before = (bundle.path / "samples.jsonl").read_bytes()
    fill(mnt, leave_pages=1)  # room for part of the next batch only
    with pytest.raises(ResultsWriteError) as e:
        bundle.append_samples([sample(i) for i in range(3, 60)])  # about 16 KiB
    assert str(e.value) == (
        f"writing results to {bundle.path / 'samples.jsonl'} failed: No space left on device. "
        "Free space or choose another folder with --results; the cases finished so far are in "
        f"{bundle.path}"
    )
    assert e.value.errno == errno.ENOSPC
    assert (bundle.path / "samples.jsonl").read_bytes() == before
    assert [json.loads(x)["run"] for x in before.decode().splitlines()] == [0, 1, 2]


def test_a_failed_write_part_way_is_cut_back(tmp_path, monkeypatch):
    """The same, deterministically: the first write() lands half the data, the second fails."""
    path = tmp_path / "s.jsonl"
    store.append_jsonl(path, [{"a": 1}])
    real_write = os.write
    calls = []

    def short_then_full(fd: int, data) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store.os, "write", short_then_full)
    with pytest.raises(OSError, match="No space left"):
        store.append_jsonl(path, [{"b": "x" * 100}])
    monkeypatch.undo()
    assert len(calls) == 2
    assert path.read_text() == '{"a": 1}\n'


def test_manifest_update_on_a_full_disk_keeps_the_old_one(tmpfs):
    mnt = tmpfs("256k")
    bundle = bundle_on(mnt)
    old = (bundle.path / "manifest.json").read_text()
    fill(mnt)
    with pytest.raises(ResultsWriteError, match=r"manifest.json failed: No space left on device"):
        bundle.update_manifest(status="complete", notes="x" * 10_000)
    assert (bundle.path / "manifest.json").read_text() == old
    assert tmp_files(mnt) == []


def test_bundle_is_not_left_half_made_on_a_full_disk(tmpfs):
    mnt = tmpfs("256k")
    (mnt / "h").mkdir()
    fill(mnt)
    with pytest.raises(ResultsWriteError) as e:
        bundle_on(mnt)
    assert str(e.value).endswith(
        "failed: No space left on device. Free space or choose another folder with --results; "
        "nothing was measured yet"
    )
    assert list((mnt / "h").iterdir()) == []  # no run folder without a manifest
    assert tmp_files(mnt) == []


def test_report_on_a_full_disk(tmpfs):
    mnt = tmpfs("256k")
    bundle = bundle_on(mnt)
    bundle.write("report.md", "old report\n")
    fill(mnt)
    with pytest.raises(ResultsWriteError) as e:
        bundle.write("report.md", "new report\n" * 2000)
    assert str(e.value) == (
        f"writing {bundle.path / 'report.md'} failed: No space left on device. Free space and "
        "run `harness report` again; the measurements in the bundle are unchanged"
    )
    assert (bundle.path / "report.md").read_text() == "old report\n"
    assert tmp_files(mnt) == []


# ----- a real run whose disk fills up ----------------------------------------------------------


@pytest.mark.docker
def test_disk_filling_up_during_a_real_run(built_images, tmpfs):
    """A 16 MiB tmpfs passes the free-space check; the test fills it as soon as the bundle's
    manifest appears, before the first container session ends, so the first append of samples
    meets a full disk."""
    mnt = tmpfs("16m")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *QUICK_RUN, "--results", str(mnt)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    filled = threading.Event()

    def fill_when_the_bundle_appears() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            if list(mnt.glob("*/*/manifest.json")):
                fill(mnt)
                filled.set()
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=fill_when_the_bundle_appears)
    watcher.start()
    out, err = proc.communicate(timeout=900)
    watcher.join()
    assert filled.is_set(), err[-3000:]
    assert proc.returncode == 1, err[-3000:]
    [bundle] = [p.parent for p in mnt.glob("*/*/manifest.json")]
    line = one_error_line(err)
    assert line.startswith(f"Error: writing results to {bundle}/"), line
    assert "failed: No space left on device. Free space or choose another folder with " in line
    assert line.endswith(f"the cases finished so far are in {bundle}."), line
    assert "Traceback" not in err
    assert out == ""

    # Nothing half-written: no temporary files, every file parses, line by line.
    assert tmp_files(mnt) == []
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["status"] == "incomplete"
    for name in ("samples.jsonl", "cases.jsonl"):
        f = bundle / name
        text = f.read_text() if f.exists() else ""
        assert text == "" or text.endswith("\n")
        for row in text.splitlines():
            json.loads(row)
