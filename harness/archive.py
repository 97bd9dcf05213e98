"""Image archives: the suite's built images, with their identities, in one file, so that other
hosts run the very same bits (`harness images save` / `harness images load`).

An archive is the engine's own `docker save` tar of every image (base, then the suite's images
in build order; layers they share are stored once) with one more member, INDEX: a small JSON
file naming each image's tag, ID and rootfs layers. `docker load -i ARCHIVE` reads it too (the
engine ignores the extra member). Loading checks that every image came out with the ID the
index names; a run that loaded one (`harness run --images`) records the index's sha256 and the
archive's path in its manifest.

Index schema history:
  1: first version.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import __version__
from harness.engine import Engine
from harness.errors import HarnessError, UsageError
from harness.images import resolve_tags
from harness.suite import Suite

INDEX = "rpb-images.json"
INDEX_SCHEMA = 1
CHUNK = 1 << 20
# progress(done_bytes, total_bytes or None)
Progress = Callable[[int, int | None], None]


def suite_images(engine: Engine, suite: Suite, names: list[str] | None = None) -> dict[str, Any]:
    """The identities of the base and the suite's images (or the named ones and what they need),
    as built from the current tree; ImageMissing when one is not built."""
    tags = resolve_tags(engine, suite, names)
    found = {"base": engine.require_image(suite.base.tag)}
    for name, tag in tags.items():
        found[name] = engine.require_image(tag)
    return found


def make_index(suite: Suite, images: dict[str, Any], save_sha256: str) -> dict[str, Any]:
    return {
        "schema": INDEX_SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "harness_version": __version__,
        "suite": {"name": suite.name, "sha256": suite.digest},
        "images": {
            name: {"tag": info["ref"], "id": info["id"], "layers": info["layers"]}
            for name, info in images.items()
        },
        "docker_save_sha256": save_sha256,
    }


def index_bytes(index: dict[str, Any]) -> bytes:
    return (json.dumps(index, indent=2, sort_keys=True) + "\n").encode()


def index_digest(index: dict[str, Any]) -> str:
    """The sha256 of the index as stored: what a run's manifest records."""
    return "sha256:" + hashlib.sha256(index_bytes(index)).hexdigest()


def check_index(index: Any, where: str) -> dict[str, Any]:
    """The index as a dict, or an error naming what is wrong with it."""
    ok = (
        isinstance(index, dict)
        and index.get("schema") == INDEX_SCHEMA
        and isinstance(index.get("images"), dict)
        and index["images"]
        and all(
            isinstance(v, dict)
            and isinstance(v.get("tag"), str)
            and isinstance(v.get("id"), str)
            and isinstance(v.get("layers"), list)
            for v in index["images"].values()
        )
    )
    if not ok:
        raise HarnessError(
            f"{where} has no valid {INDEX} (schema {INDEX_SCHEMA}). Write the archive again with "
            "`harness images save`"
        )
    return dict(index)


def save(
    engine: Engine,
    suite: Suite,
    path: Path,
    names: list[str] | None = None,
    *,
    progress: Progress | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Write the archive of the suite's built images to `path` (through a temporary file beside
    it: nothing half-written remains on failure). Returns the index."""
    if path.is_dir():
        raise UsageError(f"{path} is a folder. Give a file name, e.g. {path}/rpb-images.tar")
    if not path.parent.is_dir():
        raise UsageError(f"the folder {path.parent} does not exist. Create it or give another path")
    images = suite_images(engine, suite, names)
    refs = [str(info["ref"]) for info in images.values()]
    total = sum(int(info.get("size") or 0) for info in images.values()) or None
    log(f"saving {len(refs)} images: {', '.join(refs)}")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        done = 0
        with os.fdopen(fd, "wb") as f:
            for chunk in engine.save_images(refs, CHUNK):
                f.write(chunk)
                h.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, max(total or 0, done) or None)
        if progress:  # the images' sizes count shared layers twice: the bar ends here
            progress(done, done)
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # as a file written by `docker save -o`
        index = make_index(suite, images, "sha256:" + h.hexdigest())
        data = index_bytes(index)
        # The engine's tar ends in zero blocks; "a" mode writes over them and ends it again.
        with tarfile.open(tmp, mode="a", format=tarfile.USTAR_FORMAT) as tar:
            info = tarfile.TarInfo(INDEX)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise HarnessError(
            f"writing {path} failed ({e.strerror or e}). Free space there or give another path"
        ) from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return index


def read_index(path: Path) -> dict[str, Any]:
    """The index of an archive (it is the last member; tar headers are read, data skipped)."""
    if not path.is_file():
        raise UsageError(f"{path} is not a file. Give an archive written by `harness images save`")
    try:
        with tarfile.open(path, mode="r:") as tar:
            member = None
            for m in tar:
                if m.name == INDEX:
                    member = m
            f = tar.extractfile(member) if member is not None and member.isfile() else None
            raw = f.read() if f is not None else None
    except (tarfile.TarError, OSError) as e:
        raise HarnessError(
            f"{path} is not a readable tar archive ({e}). Write it again with `harness images save`"
        ) from e
    if raw is None:
        raise HarnessError(
            f"{path} has no {INDEX}: it was not written by `harness images save`. Write it "
            "again with `harness images save`"
        )
    try:
        return check_index(json.loads(raw), str(path))
    except ValueError as e:
        raise HarnessError(f"{path}: {INDEX} is not valid JSON ({e}). Write it again") from e


def _chunks(path: Path, progress: Progress | None) -> Iterator[bytes]:
    total = path.stat().st_size
    done = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            done += len(chunk)
            if progress:
                progress(done, total)
            yield chunk


def mismatches(index: dict[str, Any], engine: Engine) -> dict[str, str]:
    """Images of the index that the engine lacks or holds with another ID: name -> why."""
    bad = {}
    for name, want in index["images"].items():
        have = engine.image(want["tag"])
        if have is None:
            bad[name] = f"{want['tag']} is missing"
        elif have["id"] != want["id"]:
            bad[name] = f"{want['tag']} is {have['id'][:19]}, the archive has {want['id'][:19]}"
        elif have["layers"] != want["layers"]:
            bad[name] = f"{want['tag']} has other rootfs layers than the archive"
    return bad


def load(
    engine: Engine,
    path: Path,
    *,
    progress: Progress | None = None,
    log: Callable[[str], None] = print,
    force: bool = False,
) -> dict[str, Any]:
    """Load an archive into the engine and check every image's ID against its index.

    Skips the upload when the engine already holds every image with the same ID (unless
    `force`). Returns what a run's manifest records: path, index sha256, created, images."""
    index = read_index(path)
    if force or mismatches(index, engine):
        log(f"loading {path} ({path.stat().st_size / 1e6:.0f} MB) into the engine")
        engine.load_images(_chunks(path, progress))
    else:
        log(f"the engine already holds every image of {path} with the same IDs")
    bad = mismatches(index, engine)
    if bad:
        raise HarnessError(
            f"after loading {path}, the engine's images differ from the archive's: "
            + "; ".join(f"{k}: {v}" for k, v in bad.items())
            + ". The engine may store images differently (e.g. the containerd image store); "
            "build them there with `harness build` instead"
        )
    return record(path, index)


def record(path: Path, index: dict[str, Any]) -> dict[str, Any]:
    """What a run's manifest says about the archive its images came from."""
    return {
        "path": str(path.resolve()),
        "index_sha256": index_digest(index),
        "created": index.get("created"),
        "ids_equal": True,
        "images": {k: v["id"] for k, v in index["images"].items()},
    }
