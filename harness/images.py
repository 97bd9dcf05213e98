"""Images: the Debian base (mmdebstrap or pull by digest) and the suite's toolchain images.

Each toolchain image is tagged `rpb-<name>:<content hash>`, where the hash covers the
Dockerfile, every file of its build context, its build arguments and the IDs of the images it
starts from. So the tag says exactly what is inside, and an unchanged image is never rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from harness.engine import Engine
from harness.errors import BaseBuildFailed, HarnessError, ImageBuildFailed, UsageError
from harness.suite import BaseSpec, ImageSpec, Suite

ROOT = Path(__file__).resolve().parent.parent
# The build stage reads this file from the context; it never reaches a final image.
CA_NAME = "extra-ca.pem"
_SKIP_DIRS = {"target", "__pycache__", ".pytest_cache"}


@dataclass(frozen=True)
class BuildOptions:
    extra_ca: Path | None = None
    network_mode: str | None = "host"
    rebuild: bool = False
    rebuild_base: bool = False
    base_ref: str | None = None


def _context_files(root: Path, paths: tuple[str, ...], dockerfile: str) -> list[Path]:
    files = [root / dockerfile]
    for p in paths:
        base = root / p
        if not base.exists():
            raise HarnessError(f"build context path {base} does not exist. Check the suite file.")
        if base.is_file():
            files.append(base)
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(
                d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("target-")
            )
            files.extend(Path(dirpath) / f for f in sorted(filenames))
    return sorted(set(files))


def _resolve_args(spec: ImageSpec, tags: dict[str, str]) -> dict[str, str]:
    out = {}
    for k, v in spec.args:
        value = v
        for dep in spec.depends_on():
            value = value.replace(f"{{image:{dep}}}", tags[dep])
        out[k] = value
    return out


def image_tag(
    spec: ImageSpec, root: Path, args: dict[str, str], base_id: str, dep_ids: dict[str, str]
) -> str:
    """The content-addressed tag of an image (see the module docstring)."""
    h = hashlib.sha256()
    for f in _context_files(root, spec.context, spec.dockerfile):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    h.update(repr(sorted(args.items())).encode())
    h.update(f"{spec.target}|{base_id}|{sorted(dep_ids.items())}".encode())
    return f"rpb-{spec.name}:{h.hexdigest()[:12]}"


def context_tar(spec: ImageSpec, root: Path, extra_ca: Path | None) -> bytes:
    """The build context as a tar in memory, with the extra CA bundle (possibly empty)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in _context_files(root, spec.context, spec.dockerfile):
            tar.add(f, arcname=str(f.relative_to(root)), recursive=False)
        ca = extra_ca.read_bytes() if extra_ca else b""
        info = tarfile.TarInfo(CA_NAME)
        info.size = len(ca)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(ca))
    return buf.getvalue()


def mmdebstrap_command(base: BaseSpec, out: Path) -> list[str]:
    cmd = ["mmdebstrap", f"--variant={base.variant}", "--mode=root", "--format=tar"]
    if base.include:
        cmd.append("--include=" + ",".join(base.include))
    return [*cmd, base.release, str(out), *base.sources]


def build_base(engine: Engine, base: BaseSpec, log: Callable[[str], None]) -> dict[str, object]:
    """Make the base image from Debian's archive with mmdebstrap, reproducibly."""
    if shutil.which("mmdebstrap") is None:
        raise BaseBuildFailed("mmdebstrap is not installed")
    repo, _, tag = base.tag.partition(":")
    with tempfile.TemporaryDirectory(prefix="rpb-base-") as tmp:
        out = Path(tmp) / "rootfs.tar"
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(base.source_date_epoch)}
        cmd = mmdebstrap_command(base, out)
        log(f"$ SOURCE_DATE_EPOCH={base.source_date_epoch} {' '.join(cmd)}")
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise BaseBuildFailed(f"exit status {proc.returncode}\n{tail}")
        digest = hashlib.sha256(out.read_bytes()).hexdigest()
        log(f"rootfs tarball sha256:{digest}")
        engine.import_rootfs(str(out), repo, tag or "latest")
    info = engine.require_image(base.tag)
    return {**info, "route": "mmdebstrap", "rootfs_tar_sha256": f"sha256:{digest}"}


def pull_base(engine: Engine, base: BaseSpec, ref: str) -> dict[str, object]:
    """Pull the base by digest from a registry and tag it as the suite's base."""
    if "@sha256:" not in ref:
        raise UsageError(
            f"--base-ref {ref} does not name a digest. Use REGISTRY/NAME@sha256:<digest> so the "
            "base is exactly the one you mean."
        )
    image_id = engine.pull(ref)
    repo, _, tag = base.tag.partition(":")
    engine.tag(image_id, repo, tag or "latest")
    info = engine.require_image(base.tag)
    return {**info, "route": "registry", "pulled_from": ref}


def ensure_base(
    engine: Engine, base: BaseSpec, opts: BuildOptions, log: Callable[[str], None]
) -> dict[str, object]:
    if opts.base_ref:
        return pull_base(engine, base, opts.base_ref)
    existing = engine.image(base.tag)
    if existing is not None and not opts.rebuild_base:
        log(f"base {base.tag} present ({existing['id'][:19]})")
        return {**existing, "route": "existing"}
    return build_base(engine, base, log)


def base_identity(info: dict[str, object]) -> str:
    """What the toolchain images' tags depend on: the base's root file system, not its image
    ID (an identical rootfs imported again gets a new ID, as the import time is in it)."""
    layers = info.get("layers")
    return "|".join(layers) if isinstance(layers, list) and layers else str(info["id"])


def resolve_tags(engine: Engine, suite: Suite, names: list[str] | None = None) -> dict[str, str]:
    """The tag each image of the suite has when built from the current tree.

    Needs the base and every dependency built; raises ImageMissing otherwise.
    """
    base_id = base_identity(engine.require_image(suite.base.tag))
    tags: dict[str, str] = {}
    ids: dict[str, str] = {}
    for spec in suite.build_order(names):
        deps = {d: ids[d] for d in spec.depends_on()}
        args = _resolve_args(spec, tags)
        tags[spec.name] = image_tag(spec, ROOT, args, base_id, deps)
        found = engine.image(tags[spec.name])
        ids[spec.name] = str(found["id"]) if found else "missing"
    return tags


def build_images(
    engine: Engine,
    suite: Suite,
    opts: BuildOptions,
    names: list[str] | None,
    log: Callable[[str], None],
    *,
    on_image: Callable[[str, str, bool], None] | None = None,
    verbose: bool = False,
    jobs: int = 4,
) -> dict[str, dict[str, object]]:
    """Build the base and the named images (with their dependencies). Returns identities.

    Images whose dependencies are built go up to `jobs` at a time (the toolchain images only
    share the runner and the base, and downloads of one overlap with compiling another).
    Docker's `Step i/n` lines, each after its image's name, are the progress display; `verbose`
    shows the whole build log (a failed build's error carries the last lines of it either way).
    """
    if opts.extra_ca is not None and not opts.extra_ca.is_file():
        raise UsageError(
            f"--extra-ca {opts.extra_ca} is not a readable file. Point it at a PEM CA bundle, "
            "e.g. /etc/ssl/certs/ca-certificates.crt."
        )
    result: dict[str, dict[str, object]] = {"base": ensure_base(engine, suite.base, opts, log)}
    base_id = base_identity(result["base"])
    tags: dict[str, str] = {}
    ids: dict[str, str] = {}
    lock = threading.Lock()

    def one(spec: ImageSpec) -> tuple[str, dict[str, object]]:
        with lock:
            deps = {d: ids[d] for d in spec.depends_on()}
            args = _resolve_args(spec, tags)
        tag = image_tag(spec, ROOT, args, base_id, deps)
        existing = engine.image(tag)
        if existing is not None and not opts.rebuild:
            log(f"{spec.name}: {tag} is up to date")
            built = False
            info = existing
        else:
            log(f"{spec.name}: building {tag}")
            _build_one(engine, suite, spec, tag, args, opts, log, verbose=verbose)
            built = True
            info = engine.require_image(tag)
        with lock:
            tags[spec.name] = tag
            ids[spec.name] = str(info["id"])
        if on_image:
            on_image(spec.name, tag, built)
        return spec.name, info

    order = suite.build_order(names)
    pending = {spec.name: spec for spec in order}
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="build") as pool:
        running: dict[Future[tuple[str, dict[str, object]]], str] = {}
        while pending or running:
            ready = [
                spec
                for spec in list(pending.values())
                if all(d in result for d in spec.depends_on())
            ]
            for spec in ready:
                del pending[spec.name]
                running[pool.submit(one, spec)] = spec.name
            finished, _ = wait(running, return_when=FIRST_EXCEPTION)
            for fut in finished:
                del running[fut]
                name, info = fut.result()  # a failed build raises here; the rest finish
                result[name] = info
    return {"base": result["base"], **{spec.name: result[spec.name] for spec in order}}


def _build_one(
    engine: Engine,
    suite: Suite,
    spec: ImageSpec,
    tag: str,
    args: dict[str, str],
    opts: BuildOptions,
    log: Callable[[str], None],
    *,
    verbose: bool,
) -> None:
    def build_line(line: str) -> None:
        if verbose or line.startswith("Step "):
            log(f"{spec.name}: {line}")

    try:
        engine.build(
            context_tar(spec, ROOT, opts.extra_ca),
            tag,
            dockerfile=spec.dockerfile,
            target=spec.target,
            buildargs={"BASE_IMAGE": suite.base.tag, **args},
            labels={"rpb.image": spec.name},
            network_mode=opts.network_mode,
            on_line=build_line,
        )
    except ImageBuildFailed as e:
        from harness.pins import pin_error

        # A pinned version gone from the archive: one line naming it and the fix.
        gone = pin_error(e.log_tail, suite, spec, ROOT)
        if gone is not None:
            raise gone from e
        raise
