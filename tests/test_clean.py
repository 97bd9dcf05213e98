"""`harness clean`: the kit's containers, volumes (with --volumes) and dangling images, found by
label, and nothing else.

The Docker tests run the real `clean` command in-process with the kit's label value swapped for
a fresh one (monkeypatch of `harness.engine.KIT`), so they find exactly what the test made and
never touch the containers or the data volume of a run going on beside them on the same engine.
One test checks the real label value's container filter without removing anything.
"""

from __future__ import annotations

import io
import secrets
import tarfile
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import docker.errors
import pytest
from typer.testing import CliRunner

import harness.engine
from harness.cli import app
from harness.engine import KIT, KIT_LABEL, RUN_LABEL, Engine
from harness.errors import EngineUnavailable, HarnessError
from harness.suite import load_suite

# ----- without an engine: what clean asks the engine for ---------------------------------------


class _Fake:
    """Records the calls `Engine.clean` makes; every list returns one item."""

    def __init__(self, in_use: bool = False, fail: bool = False) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.api = None
        self.in_use = in_use
        self.fail = fail
        self.containers = self._Section(self, "containers")
        self.volumes = self._Section(self, "volumes")
        self.images = self._Section(self, "images")

    class _Item:
        def __init__(self, fake: _Fake, kind: str) -> None:
            self.fake, self.kind, self.name = fake, kind, f"{kind}-1"

        def remove(self, force: bool = False) -> None:
            self.fake.calls.append((f"remove {self.kind}", force))
            if self.kind == "volumes" and self.fake.in_use:
                raise docker.errors.APIError("volume is in use")

    class _Section:
        def __init__(self, fake: _Fake, kind: str) -> None:
            self.fake, self.kind = fake, kind

        def list(self, **kwargs: Any) -> list[Any]:
            if self.fake.fail:
                raise docker.errors.DockerException("engine went away")
            self.fake.calls.append((f"list {self.kind}", kwargs))
            return [_Fake._Item(self.fake, self.kind)]

        def prune(self, **kwargs: Any) -> dict[str, Any]:
            self.fake.calls.append((f"prune {self.kind}", kwargs))
            return {"ImagesDeleted": [{"Deleted": "sha256:1"}]}


def test_clean_asks_only_for_labelled_containers_and_dangling_images():
    fake = _Fake()
    removed = Engine(fake).clean()  # type: ignore[arg-type]
    assert removed == {"containers": 1, "volumes": 0, "images": 1}
    assert fake.calls == [
        ("list containers", {"all": True, "filters": {"label": [f"{KIT_LABEL}={KIT}", RUN_LABEL]}}),
        ("remove containers", True),
        ("prune images", {"filters": {"dangling": True, "label": f"{KIT_LABEL}={KIT}"}}),
    ]  # no volume is even listed without --volumes, and prune never sees a tagged image


def test_clean_with_volumes_removes_labelled_volumes():
    fake = _Fake()
    removed = Engine(fake).clean(volumes=True)  # type: ignore[arg-type]
    assert removed == {"containers": 1, "volumes": 1, "images": 1}
    assert ("list volumes", {"filters": {"label": f"{KIT_LABEL}={KIT}"}}) in fake.calls


def test_clean_names_a_volume_it_could_not_remove():
    with pytest.raises(HarnessError) as e:
        Engine(_Fake(in_use=True)).clean(volumes=True)  # type: ignore[arg-type]
    assert str(e.value).startswith(
        "the volume(s) volumes-1 are in use by containers that are not the kit's (1 containers, "
        "0 volumes, 1 images removed). Remove those containers"
    )


def test_clean_when_the_engine_goes_away():
    with pytest.raises(EngineUnavailable, match="Docker engine is not reachable"):
        Engine(_Fake(fail=True)).clean()  # type: ignore[arg-type]


# ----- the real engine -------------------------------------------------------------------------


@pytest.fixture
def kit(monkeypatch) -> str:
    """A label value of the kit's own for this test only."""
    value = f"rpb-test-clean-{secrets.token_hex(4)}"
    monkeypatch.setattr(harness.engine, "KIT", value)
    return value


def _context(dockerfile: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _build_twice(engine: Engine, tag: str, labels: dict[str, str]) -> tuple[str, str]:
    """Two builds under one tag: the first image becomes dangling. Returns both IDs."""
    base = load_suite().base.tag
    ids = []
    for n in (1, 2):
        ids.append(
            engine.build(
                _context(f"FROM {base}\nLABEL rpb.test.build={n}\n"),
                tag,
                dockerfile="Dockerfile",
                target=None,
                buildargs={},
                labels=labels,
                network_mode="none",
            )
        )
    assert ids[0] != ids[1]
    assert engine.api.inspect_image(ids[0])["RepoTags"] == []  # dangling
    return ids[0], ids[1]


def _exists(get: Callable[[], Any]) -> bool:
    try:
        get()
    except docker.errors.NotFound:
        return False
    return True


def _remover(fn: Callable[[], Any]) -> Callable[[], None]:
    def remove() -> None:
        with suppress(docker.errors.NotFound):
            fn()

    return remove


@pytest.mark.docker
def test_clean_removes_the_kits_things_and_nothing_else(engine, built_images, kit, cleanup):
    token = secrets.token_hex(4)
    client = engine.client
    base = load_suite().base.tag

    # Images: the kit's, built twice under one tag, and a control that is someone else's.
    kit_tag, other_tag = f"rpb-clean-kit:{token}", f"rpb-clean-other:{token}"
    old_kit, new_kit = _build_twice(engine, kit_tag, {})
    old_other, new_other = _build_twice(engine, other_tag, {KIT_LABEL: "someone-else"})
    for image in (old_kit, new_kit, old_other, new_other):
        cleanup.append(_remover(lambda i=image: client.images.remove(i, force=True)))
    assert client.images.get(new_kit).labels[KIT_LABEL] == kit

    # Containers: the kit's (stopped), and controls without labels of their own. They inherit
    # `rpb.kit` from their images, the kit's test image and the kit's real base.
    def container(image: str, labels: dict[str, str] | None = None) -> str:
        c = client.containers.run(image, ["true"], detach=True, labels=labels or {})
        cleanup.append(_remover(lambda: c.remove(force=True)))
        c.wait(timeout=60)
        return str(c.id)

    kit_container = container(new_kit, {KIT_LABEL: kit, RUN_LABEL: f"clean-{token}"})
    control_containers = [container(new_kit), container(base)]
    assert client.containers.get(control_containers[0]).labels[KIT_LABEL] == kit

    # Volumes: the kit's, one without labels and one labelled by someone else.
    def volume(labels: dict[str, str] | None) -> str:
        name = f"rpb-clean-{secrets.token_hex(4)}"
        client.volumes.create(name=name, labels=labels or {})
        cleanup.append(_remover(lambda: client.volumes.get(name).remove(force=True)))
        return name

    kit_volume = volume({KIT_LABEL: kit})
    control_volumes = [volume(None), volume({KIT_LABEL: "someone-else"})]

    result = CliRunner().invoke(app, ["clean", "--volumes"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("1 containers, 1 volumes, ")

    assert not _exists(lambda: client.containers.get(kit_container))
    assert not _exists(lambda: client.volumes.get(kit_volume))
    assert not _exists(lambda: client.images.get(old_kit))
    # Controls and tagged images stay.
    for c in control_containers:
        assert _exists(lambda c=c: client.containers.get(c))
    for v in control_volumes:
        assert _exists(lambda v=v: client.volumes.get(v))
    for image in (new_kit, old_other, new_other, base):
        assert _exists(lambda i=image: client.images.get(i))
    assert kit_tag in client.images.get(new_kit).tags


@pytest.mark.docker
def test_clean_keeps_volumes_unless_asked_and_stops_running_strays(
    engine, built_images, kit, cleanup
):
    client = engine.client
    base = load_suite().base.tag
    name = f"rpb-clean-{secrets.token_hex(4)}"
    client.volumes.create(name=name, labels={KIT_LABEL: kit, "rpb.data": "inputs"})
    cleanup.append(_remover(lambda: client.volumes.get(name).remove(force=True)))
    stray = client.containers.run(
        base, ["sleep", "300"], detach=True, labels={KIT_LABEL: kit, RUN_LABEL: "stray"}
    )
    cleanup.append(_remover(lambda: stray.remove(force=True)))

    result = CliRunner().invoke(app, ["clean"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("1 containers, 0 volumes, ")
    assert not _exists(lambda: client.containers.get(stray.id))
    assert _exists(lambda: client.volumes.get(name))  # inputs stay without --volumes


@pytest.mark.docker
def test_real_label_finds_kit_containers_not_containers_of_kit_images(
    engine, built_images, cleanup
):
    """With the real label value, read-only: `kit_containers` lists a container the kit starts
    and not one someone else starts from the kit's base (which inherits `rpb.kit`)."""
    base = load_suite().base.tag
    run_id = f"clean-{secrets.token_hex(4)}"
    ours = engine.client.containers.create(
        base, ["true"], labels={KIT_LABEL: KIT, RUN_LABEL: run_id}
    )
    cleanup.append(_remover(lambda: ours.remove(force=True)))
    theirs = engine.client.containers.create(base, ["true"])
    cleanup.append(_remover(lambda: theirs.remove(force=True)))
    assert theirs.labels.get(KIT_LABEL) == KIT  # inherited from the image

    found = {c.id for c in engine.kit_containers()}
    assert ours.id in found
    assert theirs.id not in found
    assert [c.id for c in engine.kit_containers(run_id)] == [ours.id]
