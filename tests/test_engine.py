"""Engine: how a failed SDK call becomes our error, and an expired wait a timed-out run."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests.exceptions

from harness.engine import Engine
from harness.errors import EngineUnavailable


class FakeContainer:
    """A container whose `wait` fails like docker-py does against a real engine."""

    def __init__(self, wait_error: Exception | None, wait_s: float = 0.0) -> None:
        self.wait_error = wait_error
        self.wait_s = wait_s
        self.killed = False
        self.removed = False
        self.attrs: dict[str, Any] = {"State": {"OOMKilled": False}}

    def wait(self, timeout: float) -> dict[str, Any]:
        time.sleep(self.wait_s)
        if self.wait_error is not None:
            raise self.wait_error
        return {"StatusCode": 0}

    def kill(self) -> None:
        self.killed = True

    def logs(self, *, stdout: bool, stderr: bool) -> bytes:
        return b"partial\n" if stdout else b""

    def reload(self) -> None:
        pass

    def remove(self, force: bool = False) -> None:
        self.removed = True


class FakeResponse:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


class FakeApi:
    """The low-level client: only what the engine's ping after a failed call uses."""

    base_url = "http+docker://localhost"

    def __init__(self, answers: bool) -> None:
        self.answers = answers
        self.pings = 0

    def get(self, url: str, timeout: float) -> FakeResponse:
        self.pings += 1
        assert url == "http+docker://localhost/_ping"
        assert timeout <= 30
        if not self.answers:
            raise requests.exceptions.ConnectionError("connection refused")
        return FakeResponse(200)


class FakeContainers:
    def __init__(self, container: FakeContainer) -> None:
        self.container = container

    def run(self, **kwargs: Any) -> FakeContainer:
        return self.container


class FakeClient:
    def __init__(self, container: FakeContainer, *, answers: bool = True) -> None:
        self.containers = FakeContainers(container)
        self.api = FakeApi(answers)


def _run(client: FakeClient, timeout_s: float):
    engine = Engine(client)  # type: ignore[arg-type]
    return engine.run("img", ["sleep", "8"], run_id="t", cpuset=None, timeout_s=timeout_s)


# What docker-py 7 raises when `wait(timeout=...)` expires on a unix socket: urllib3's read
# timeout wrapped in a ConnectionError, not requests' ReadTimeout.
EXPIRED = requests.exceptions.ConnectionError(
    "UnixHTTPConnectionPool(host='localhost', port=None): Read timed out."
)


@pytest.mark.parametrize(
    "error", [EXPIRED, requests.exceptions.ReadTimeout("Read timed out.")], ids=["conn", "read"]
)
def test_an_expired_wait_is_a_timed_out_run(error):
    c = FakeContainer(error, wait_s=0.2)
    client = FakeClient(c)
    r = _run(client, timeout_s=0.2)
    assert r.timed_out
    assert r.exit_code is None
    assert c.killed
    assert c.removed
    assert r.stdout == "partial\n"  # the output so far is still read


def test_an_expired_wait_with_the_engine_gone_is_engine_unavailable():
    c = FakeContainer(EXPIRED, wait_s=0.2)
    client = FakeClient(c, answers=False)
    with pytest.raises(EngineUnavailable, match="the Docker engine is not reachable"):
        _run(client, timeout_s=0.2)
    assert client.api.pings == 1
    assert c.removed


def test_a_connection_lost_before_the_timeout_is_engine_unavailable():
    # The engine went away (connection reset) long before the timeout: never a timed-out run,
    # even if a restarted engine answers the ping.
    lost = requests.exceptions.ConnectionError("Connection aborted. RemoteDisconnected")
    c = FakeContainer(lost, wait_s=0.0)
    with pytest.raises(EngineUnavailable, match="RemoteDisconnected"):
        _run(FakeClient(c), timeout_s=30)
    assert not c.killed


@pytest.mark.docker
def test_a_session_timeout_on_the_real_engine_is_a_timed_out_run(engine, request, cleanup):
    from harness.suite import load_suite

    base = load_suite().base.tag
    if engine.image(base) is None:
        request.getfixturevalue("built_images")
    t0 = time.monotonic()
    r = engine.run(base, ["sleep", "8"], run_id="test-timeout", cpuset=None, timeout_s=2)
    elapsed = time.monotonic() - t0
    assert r.timed_out
    assert r.exit_code is None
    assert elapsed < 7, elapsed  # killed at the timeout, not waited out
    assert engine.kit_containers("test-timeout") == []
