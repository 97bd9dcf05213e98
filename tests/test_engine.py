"""Engine: how a failed SDK call becomes our error, and an expired wait a timed-out run."""

from __future__ import annotations

import time
from typing import Any

import docker.errors
import pytest
import requests.exceptions

from harness.engine import Engine
from harness.errors import EngineUnavailable, HarnessError


class FakeContainer:
    """A container whose `wait` fails like docker-py does against a real engine."""

    def __init__(self, wait_error: Exception | None, wait_s: float = 0.0) -> None:
        self.wait_error = wait_error
        self.wait_s = wait_s
        self.killed = False
        self.removed = False
        self.attrs: dict[str, Any] = {"State": {"OOMKilled": False}}

    def start(self) -> None:
        pass

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

    def create(self, **kwargs: Any) -> FakeContainer:
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


class RaisingApi:
    """A low-level client whose `tag` fails with the given error."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def tag(self, *args: Any, **kwargs: Any) -> bool:
        raise self.error


class RaisingVolume:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def remove(self, force: bool = False) -> None:
        if self.error is not None:
            raise self.error


class RaisingVolumes:
    def __init__(self, get_error: Exception | None, remove_error: Exception | None) -> None:
        self.get_error = get_error
        self.remove_error = remove_error

    def get(self, name: str) -> RaisingVolume:
        if self.get_error is not None:
            raise self.get_error
        return RaisingVolume(self.remove_error)


class RaisingClient:
    def __init__(
        self, error: Exception | None = None, *, get_error: Exception | None = None
    ) -> None:
        self.api = RaisingApi(error or RuntimeError("unused"))
        self.volumes = RaisingVolumes(get_error, error)


def _engine(client: RaisingClient) -> Engine:
    return Engine(client)  # type: ignore[arg-type]


GONE = requests.exceptions.ConnectionError("Connection aborted. FileNotFoundError")
SDK_GONE = docker.errors.DockerException("Error while fetching server API version")


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            docker.errors.ImageNotFound("No such image: sha256:abc"),
            "tagging image sha256:abc as rpb-base:trixie failed: the engine has no such image "
            r"\(removed meanwhile\?\). Run `harness build` again",
        ),
        (
            docker.errors.APIError("400", explanation="invalid reference format"),
            "tagging image sha256:abc as rpb-base:trixie failed: invalid reference format. "
            "Check the tag",
        ),
        (GONE, "the Docker engine is not reachable"),
        (SDK_GONE, "the Docker engine is not reachable"),
    ],
    ids=["no-image", "bad-tag", "conn", "sdk"],
)
def test_tag_failures_are_our_errors(error, message):
    with pytest.raises(HarnessError, match=message) as e:
        _engine(RaisingClient(error)).tag("sha256:abc", "rpb-base", "trixie")
    assert isinstance(e.value, EngineUnavailable) == (error in (GONE, SDK_GONE))


def test_remove_volume_failures_are_our_errors():
    busy = docker.errors.APIError("409", explanation="volume is in use - [abc]")
    with pytest.raises(HarnessError, match=r"removing volume v1 failed: volume is in use") as e:
        _engine(RaisingClient(busy)).remove_volume("v1")
    assert "docker ps -a --filter volume=v1" in str(e.value)
    assert not isinstance(e.value, EngineUnavailable)
    for gone in (GONE, SDK_GONE):
        with pytest.raises(EngineUnavailable, match="Start Docker or set DOCKER_HOST"):
            _engine(RaisingClient(gone)).remove_volume("v1")
        with pytest.raises(EngineUnavailable):
            _engine(RaisingClient(get_error=gone)).remove_volume("v1")


def test_remove_volume_that_is_gone_is_fine():
    missing = docker.errors.NotFound("no such volume")
    _engine(RaisingClient(get_error=missing)).remove_volume("v1")
    _engine(RaisingClient(missing)).remove_volume("v1")  # removed between get and remove
    _engine(RaisingClient(None)).remove_volume("v1")


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
