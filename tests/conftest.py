"""Shared fixtures. Docker tests use the real engine and register what they create."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def harness(*args: str, env: dict[str, str] | None = None, timeout: float = 3600):
    """Run the real `harness` CLI in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture(scope="session")
def engine():
    from harness.engine import connect

    return connect()  # fails loudly (not a skip) when the engine is missing


@pytest.fixture(scope="session")
def built_images(engine) -> dict[str, str]:
    """Build the default suite's images (cached by content hash) and return their tags."""
    from harness.images import resolve_tags
    from harness.suite import load_suite

    args = ["build"]
    if CA_BUNDLE.is_file():
        args += ["--extra-ca", str(CA_BUNDLE)]
    proc = harness(*args)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return resolve_tags(engine, load_suite())


@pytest.fixture
def cleanup(engine) -> Iterator[list]:
    """Register containers, images or volumes to remove after the test."""
    items: list = []
    yield items
    for item in reversed(items):
        try:
            item()
        except Exception as e:
            print(f"cleanup: {e}")
