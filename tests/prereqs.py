"""Programs some tests need besides Python packages: one clear line when one is missing."""

from __future__ import annotations

import shutil

import pytest


def require_command(command: str, package: str, why: str) -> str:
    """The path of `command`, or fail the test with one line naming the Debian package that
    provides it and how to install it (as `.ci/run` does)."""
    path = shutil.which(command)
    if path is None:
        pytest.fail(
            f"{why} needs the `{command}` command, which is not on PATH. Install Debian's "
            f"{package} package (sudo apt-get install {package}; .ci/run does this), "
            f"or leave the test out with -k 'not registry'.",
            pytrace=False,
        )
    return path
