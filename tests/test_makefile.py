"""The Makefile on a fresh clone: the targets that need the harness install it first, once."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")

# Every target that runs the harness, pytest, ruff or mypy.
NEEDS_HARNESS = [
    "reproduce",
    "test",
    "run",
    "report",
    "build",
    "lint",
    "test-unit",
    "test-docker",
    "clean",
]

# A Python that logs its arguments; `-c` (the import check) fails unless FAKE_INSTALLED is set.
FAKE_PYTHON = """#!/bin/sh
echo "$*" >> "$FAKE_LOG"
if [ "$1" = "-c" ] && [ -z "$FAKE_INSTALLED" ]; then exit 1; fi
exit 0
"""


def _make(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT):
    assert MAKE is not None
    return subprocess.run(
        [MAKE, "--no-print-directory", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("target", NEEDS_HARNESS)
def test_targets_check_the_install_before_anything_else(target):
    proc = _make("-n", target, "PYTHON=fake-python")
    assert proc.returncode == 0, proc.stderr
    # The first command: check, and install when the check fails.
    assert proc.stdout.startswith("if ! fake-python -c 'import importlib.metadata"), proc.stdout
    check = proc.stdout.split("\nfi\n", 1)[0]
    assert (
        "fake-python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'"
        in check
    )
    assert proc.stdout.count("import importlib.metadata") == 1  # once, however many targets


@pytest.fixture
def clone(tmp_path) -> Path:
    """The files `make install` looks at, and the Makefile, in a folder of their own."""
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy2(ROOT / name, tmp_path / name)
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    return tmp_path


def _calls(clone: Path, target: str, installed: bool) -> list[str]:
    log = clone / "calls.log"
    log.unlink(missing_ok=True)
    env = {"FAKE_LOG": str(log), "FAKE_INSTALLED": "1" if installed else ""}
    proc = _make(target, f"PYTHON={clone / 'fake-python'}", env=env, cwd=clone)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return log.read_text().splitlines()


def test_a_fresh_clone_installs_then_runs(clone):
    calls = _calls(clone, "report", installed=False)
    assert calls[0].startswith("-c import importlib.metadata")
    assert calls[1:] == [
        "-m pip install -q --disable-pip-version-check -c constraints.txt -e .[dev]",
        "-m harness.cli report",
    ]


def test_an_installed_harness_is_not_installed_again(clone):
    _calls(clone, "report", installed=False)
    calls = _calls(clone, "report", installed=True)
    assert [c for c in calls if "pip" in c] == []
    assert calls[-1] == "-m harness.cli report"


def test_a_changed_dependency_list_installs_again(clone):
    _calls(clone, "report", installed=False)
    assert not any("pip" in c for c in _calls(clone, "report", installed=True))
    later = time.time() + 10  # newer than the stamp the first call made
    os.utime(clone / "pyproject.toml", (later, later))
    assert any("pip install" in c for c in _calls(clone, "report", installed=True))


def test_the_check_passes_in_this_environment(tmp_path):
    # The dev install that runs these tests passes the check: `make` does not reinstall.
    stamp = tmp_path / "stamp"
    stamp.touch()  # newer than pyproject.toml: only the import check decides
    proc = _make("-s", "installed", "PIP_INSTALL=false", f"STAMP={stamp}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""
