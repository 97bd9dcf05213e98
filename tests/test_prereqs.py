from __future__ import annotations

import pytest

from tests.prereqs import require_command


def test_a_missing_command_fails_with_one_line_naming_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: nothing is found
    with pytest.raises(pytest.fail.Exception) as e:
        require_command("docker-registry", "docker-registry", "the registry-route test")
    msg = str(e.value)
    assert msg == (
        "the registry-route test needs the `docker-registry` command, which is not on PATH. "
        "Install Debian's docker-registry package (sudo apt-get install docker-registry; "
        ".ci/run does this), or leave the test out with -k 'not registry'."
    )
    assert "\n" not in msg


def test_a_present_command_is_found(tmp_path, monkeypatch):
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert require_command("tool", "tool-pkg", "a test") == str(tool)
