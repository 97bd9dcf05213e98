"""The one thin wrapper over the Docker SDK: build, import, run pinned, label, clean up.

Every `docker.errors.*` is turned into one of our errors here, so the rest of the harness never
sees the SDK's exceptions. Every container, volume and image the kit makes carries the label
`rpb.kit`, and containers also `rpb.run_id`, so `harness clean` finds strays and nothing else.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import docker.errors
import requests.exceptions
from docker.models.containers import Container
from docker.types import Mount

import docker
from harness.errors import EngineUnavailable, HarnessError, ImageBuildFailed, ImageMissing

KIT_LABEL = "rpb.kit"
KIT = "rust_python_benchmark"
RUN_LABEL = "rpb.run_id"
DATA_MOUNT = "/data"
# A benchmark writes scratch files here only; the root file system is read-only.
SCRATCH = "/tmp"  # noqa: S108 - a tmpfs inside the container, not the host's /tmp
NOBODY = "65534:65534"
# Where a task that writes files to disk (suite: output = "disk") gets a writable volume.
OUTPUT_MOUNT = "/out"
# A wait that failed after this share of its timeout had passed expired (timer slack aside).
_WAIT_EXPIRED = 0.9
_PING_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Limits:
    """Resource limits of a benchmark container (docs/methodology.md section 2)."""

    memory: str = "4g"
    pids: int = 512
    scratch: str = "size=512m"


@dataclass(frozen=True)
class RunResult:
    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    # The engine saw the container's cgroup hit its memory limit (on cgroup v2 also when the
    # OOM killer chose a child of PID 1, e.g. the benchmark under the runner).
    oom_killed: bool = False


def _engine_error(e: Exception) -> EngineUnavailable:
    detail = f"{type(e).__name__}: {e}"
    return EngineUnavailable(
        f"the Docker engine is not reachable ({detail}). "
        "Start Docker or set DOCKER_HOST to a running engine.",
        detail,
    )


class Engine:
    """A connected Docker engine."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self.api = client.api

    # ----- information -----------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        try:
            info = self.client.info()
            version = self.client.version()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise _engine_error(e) from e
        return {
            "server_version": version.get("Version"),
            "api_version": version.get("ApiVersion"),
            "storage_driver": info.get("Driver"),
            "cgroup_version": info.get("CgroupVersion"),
            "cgroup_driver": info.get("CgroupDriver"),
            "kernel": info.get("KernelVersion"),
            "ncpu": info.get("NCPU"),
            "name": info.get("Name"),  # the engine host's hostname
            "mem_total": info.get("MemTotal"),
            "security_options": info.get("SecurityOptions"),
        }

    def image(self, ref: str) -> dict[str, Any] | None:
        """Identity of an image: ID, rootfs layer digests, labels; None when absent."""
        try:
            img = self.api.inspect_image(ref)
        except docker.errors.ImageNotFound:
            return None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise _engine_error(e) from e
        return {
            "ref": ref,
            "id": img["Id"],
            "layers": list(img.get("RootFS", {}).get("Layers", [])),
            "repo_digests": list(img.get("RepoDigests") or []),
            "labels": dict((img.get("Config") or {}).get("Labels") or {}),
            "size": img.get("Size"),
        }

    def require_image(self, ref: str) -> dict[str, Any]:
        info = self.image(ref)
        if info is None:
            raise ImageMissing(ref)
        return info

    def image_env(self, ref: str) -> list[str]:
        """The image's own environment (Config.Env, "NAME=value" items), as a container of it
        starts with before the engine adds HOSTNAME and HOME."""
        try:
            img = self.api.inspect_image(ref)
        except docker.errors.ImageNotFound as e:
            raise ImageMissing(ref) from e
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise _engine_error(e) from e
        return list((img.get("Config") or {}).get("Env") or [])

    def export_rootfs(self, ref: str, dest: Path) -> None:
        """Unpack the file system of image `ref` into the existing empty folder `dest`, exactly:
        owners by number, modes with their setuid and sticky bits, device nodes. Needs root.

        The files come from a container that is created, never started, and always removed
        (`docker export` of it, streamed: nothing is held in memory or written twice).
        """
        with self._container(
            start=False,
            image=ref,
            command=["/nonexistent"],  # never run; an image without CMD needs one
            labels={KIT_LABEL: KIT, RUN_LABEL: "export"},
            network_mode="none",
        ) as c:
            try:
                chunks = cast(Iterator[bytes], c.export())  # bytes, whatever the stubs say
                stream = io.BufferedReader(_ChunkReader(chunks), buffer_size=1 << 20)
                with tarfile.open(fileobj=stream, mode="r|") as tar:
                    # The kit's own image, and a filter that keeps every member inside dest.
                    tar.extractall(dest, numeric_owner=True, filter=_rootfs_filter)  # noqa: S202
            except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
                raise _engine_error(e) from e
            except (tarfile.TarError, OSError) as e:
                raise HarnessError(
                    f"unpacking image {ref} into {dest} failed ({e}). Free space there, or "
                    "choose another cache folder, and try again"
                ) from e

    # ----- images ------------------------------------------------------------------------------
    def build(
        self,
        context: bytes,
        tag: str,
        *,
        dockerfile: str,
        target: str | None,
        buildargs: dict[str, str],
        labels: dict[str, str],
        network_mode: str | None,
        on_line: Callable[[str], None] | None = None,
    ) -> str:
        """Build from an in-memory context tar; returns the image ID. Raises ImageBuildFailed."""
        tail: deque[str] = deque(maxlen=40)
        image_id = None
        try:
            stream = self.api.build(
                fileobj=io.BytesIO(context),
                custom_context=True,
                tag=tag,
                dockerfile=dockerfile,
                target=target,
                buildargs=buildargs,
                labels={KIT_LABEL: KIT, **labels},
                network_mode=network_mode,
                rm=True,
                forcerm=True,
                decode=True,
            )
            for chunk in stream:
                if "stream" in chunk:
                    for line in chunk["stream"].splitlines():
                        if line.strip():
                            tail.append(line)
                            if on_line:
                                on_line(line)
                if "aux" in chunk and "ID" in chunk["aux"]:
                    image_id = chunk["aux"]["ID"]
                if "error" in chunk:
                    tail.append(chunk["error"].rstrip())
                    raise ImageBuildFailed(tag, "\n".join(tail))
        except docker.errors.APIError as e:
            raise ImageBuildFailed(tag, "\n".join([*tail, str(e)])) from e
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise _engine_error(e) from e
        info = self.image(tag)
        if info is None:
            raise ImageBuildFailed(tag, "\n".join(tail) or "the engine reported no image")
        return image_id or str(info["id"])

    def import_rootfs(self, tar_path: str, repository: str, tag: str) -> str:
        """`docker import` of a root file system tarball; returns the image ID."""
        try:
            self.api.import_image(
                src=tar_path,
                repository=repository,
                tag=tag,
                changes=[f"LABEL {KIT_LABEL}={KIT}", 'CMD ["/bin/bash"]'],
            )
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise HarnessError(f"importing the base image failed: {e}.") from e
        return str(self.require_image(f"{repository}:{tag}")["id"])

    def pull(self, ref: str) -> str:
        """Pull an image by reference (ideally by digest); returns the image ID."""
        try:
            img = self.client.images.pull(ref)
        except docker.errors.APIError as e:
            raise HarnessError(
                f"pulling {ref} failed: {e.explanation or e}. Check the registry address "
                "and digest, or build the base locally (omit --base-ref)."
            ) from e
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise _engine_error(e) from e
        return str(img.id)

    def tag(self, image_id: str, repository: str, tag: str) -> None:
        """Tag an image (moving the tag if another image has it)."""
        try:
            self.api.tag(image_id, repository, tag, force=True)
        except docker.errors.ImageNotFound as e:
            raise HarnessError(
                f"tagging image {image_id} as {repository}:{tag} failed: the engine has no such "
                "image (removed meanwhile?). Run `harness build` again"
            ) from e
        except docker.errors.APIError as e:
            raise HarnessError(
                f"tagging image {image_id} as {repository}:{tag} failed: "
                f"{e.explanation or e}. Check the tag in the suite's [base] table and run "
                "`harness build` again"
            ) from e
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise _engine_error(e) from e

    def save_images(self, refs: list[str], chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """`docker save` of several images in one tar stream (layers they share go once)."""
        api: Any = self.api  # the SDK's `save` takes one image; its helpers take several
        try:
            res = api.get(api._url("/images/get"), params={"names": refs}, stream=True)
            api._raise_for_status(res)
            yield from res.iter_content(chunk_size)
        except docker.errors.APIError as e:
            raise HarnessError(
                f"saving the images failed: {e.explanation or e}. Run `harness build` first"
            ) from e
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise _engine_error(e) from e

    def load_images(self, chunks: Iterator[bytes]) -> list[str]:
        """`docker load` of a tar stream (sent as it is read); returns the engine's messages."""
        messages: list[str] = []
        try:
            for msg in self.api.load_image(chunks):
                if "error" in msg:
                    raise HarnessError(
                        f"the engine refused the image archive: {msg['error']}. Check that the "
                        "archive was written by `harness images save` and is whole"
                    )
                if msg.get("stream"):
                    messages.append(str(msg["stream"]).strip())
        except docker.errors.APIError as e:
            raise HarnessError(
                f"loading the image archive failed: {e.explanation or e}. Check that the archive "
                "was written by `harness images save` and is whole"
            ) from e
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise _engine_error(e) from e
        return messages

    # ----- volumes -----------------------------------------------------------------------------
    def volume_exists(self, name: str) -> bool:
        try:
            self.client.volumes.get(name)
        except docker.errors.NotFound:
            return False
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise _engine_error(e) from e
        return True

    def create_volume(self, name: str, labels: dict[str, str]) -> None:
        try:
            self.client.volumes.create(name=name, labels={KIT_LABEL: KIT, **labels})
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise _engine_error(e) from e

    def remove_volume(self, name: str) -> None:
        """Remove a volume; one that is already gone is fine."""
        try:
            self.client.volumes.get(name).remove(force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as e:
            raise HarnessError(
                f"removing volume {name} failed: {e.explanation or e}. If a container still "
                f"uses it, remove that container (docker ps -a --filter volume={name}) and "
                "try again"
            ) from e
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise _engine_error(e) from e

    # ----- containers --------------------------------------------------------------------------
    def _create(self, *, start: bool = True, **kwargs: Any) -> Container:
        """Create a container of the kit and start it (unless `start` is False). A container
        that was created but failed to start (runc refused it, or the network namespace it
        joins is gone) is removed before the error is raised: nothing is left behind."""
        c: Container | None = None
        try:
            c = self.client.containers.create(**kwargs)
            if start:
                c.start()
        except docker.errors.ImageNotFound as e:
            raise ImageMissing(str(kwargs.get("image"))) from e
        except docker.errors.APIError as e:
            if c is not None:
                self.remove(c)
            what = "starting" if start else "creating"
            raise HarnessError(f"{what} a container failed: {e.explanation or e}.") from e
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise _engine_error(e) from e
        return c

    @contextmanager
    def _container(self, *, start: bool = True, **kwargs: Any) -> Iterator[Container]:
        """A container of the kit, started (or only created), removed whatever happens."""
        c = self._create(start=start, **kwargs)
        try:
            yield c
        finally:
            # The engine may be gone or the container already is; `harness clean` remains.
            with suppress(docker.errors.DockerException, requests.exceptions.RequestException):
                c.remove(force=True)

    def run(
        self,
        image: str,
        argv: list[str],
        *,
        run_id: str,
        cpuset: str | None,
        labels: dict[str, str] | None = None,
        limits: Limits | None = None,
        data_volume: str | None = None,
        data_read_only: bool = True,
        timeout_s: float = 3600.0,
        hardened: bool = True,
        user: str = NOBODY,
        inspect: Callable[[dict[str, Any]], None] | None = None,
        network_mode: str = "none",
        output_volume: str | None = None,
    ) -> RunResult:
        """Run argv in a fresh, pinned, hardened container and return its output.

        argv is passed as a list (exec form): no shell ever sees it. `inspect`, when given, is
        called with the container's inspect data (`docker inspect`) after it has ended, before
        it is removed: tests check the configuration the engine actually applied.
        """
        kwargs = container_config(
            image,
            argv,
            run_id=run_id,
            cpuset=cpuset,
            labels=labels,
            limits=limits,
            data_volume=data_volume,
            data_read_only=data_read_only,
            hardened=hardened,
            user=user,
            network_mode=network_mode,
            output_volume=output_volume,
        )
        return self._wait(kwargs, timeout_s, inspect)

    def run_tool(
        self,
        image: str,
        argv: list[str],
        *,
        files: dict[str, str] | None = None,
        network_mode: str = "host",
        timeout_s: float = 600.0,
    ) -> RunResult:
        """A tool container of the kit (root, with network, not a benchmark): `harness lock`
        asks apt there. `files`: host files bound read-only (host path -> container path)."""
        kwargs = container_config(
            image,
            argv,
            run_id="tool",
            cpuset=None,
            hardened=False,
            user="0:0",
            network_mode=network_mode,
            files=files,
        )
        return self._wait(kwargs, timeout_s, None)

    def _wait(
        self,
        kwargs: dict[str, Any],
        timeout_s: float,
        inspect: Callable[[dict[str, Any]], None] | None,
    ) -> RunResult:
        """Start the container of `kwargs`, wait for it, return its output; always removed."""
        with self._container(**kwargs) as c:
            timed_out = False
            started = time.monotonic()
            try:
                status = c.wait(timeout=timeout_s)
                exit_code: int | None = int(status.get("StatusCode", -1))
            except docker.errors.NotFound:
                return RunResult(None, "", "", timed_out)  # removed from outside (docker rm -f)
            except requests.exceptions.RequestException as e:
                # An expired wait is not always a ReadTimeout: over a unix socket docker-py
                # raises ConnectionError (urllib3's read timeout inside). The wait ran its full
                # time and the engine still answers: the session timed out. An engine that went
                # away ends the wait early or leaves the ping unanswered.
                waited = time.monotonic() - started
                if waited < timeout_s * _WAIT_EXPIRED or not self._answers():
                    raise _engine_error(e) from e
                timed_out = True
                exit_code = None
                with suppress(docker.errors.DockerException, requests.exceptions.RequestException):
                    c.kill()
            except docker.errors.DockerException as e:
                raise _engine_error(e) from e
            try:
                out = c.logs(stdout=True, stderr=False).decode("utf-8", "replace")
                err = c.logs(stdout=False, stderr=True).decode("utf-8", "replace")
                c.reload()
                oom_killed = bool((c.attrs.get("State") or {}).get("OOMKilled"))
                if inspect is not None:
                    inspect(dict(c.attrs))
            except docker.errors.APIError as e:
                if not (e.is_client_error() and e.status_code in (404, 409)):
                    raise _engine_error(e) from e
                # 404 gone, 409 "marked for removal": removed from outside while it ran, and
                # its output with it. The exit status says how it ended.
                return RunResult(exit_code, "", "", timed_out)
            except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
                raise _engine_error(e) from e
        return RunResult(exit_code, out, err, timed_out, oom_killed)

    # ----- long-running containers (servers) ---------------------------------------------------
    def start(
        self,
        image: str,
        argv: list[str],
        *,
        run_id: str,
        cpuset: str | None,
        labels: dict[str, str] | None = None,
        limits: Limits | None = None,
    ) -> Container:
        """Start a pinned, hardened container in the background (a server); the caller
        removes it with `remove`."""
        kwargs = container_config(
            image, argv, run_id=run_id, cpuset=cpuset, labels=labels, limits=limits
        )
        return self._create(**kwargs)

    def remove(self, container: Container) -> None:
        """Remove a container, running or not; one already gone is fine."""
        with suppress(docker.errors.DockerException, requests.exceptions.RequestException):
            container.remove(force=True)

    def state(self, container: Container) -> dict[str, Any]:
        """The container's State (Running, ExitCode, OOMKilled); gone: not running."""
        try:
            container.reload()
        except docker.errors.NotFound:
            return {"Running": False, "ExitCode": None, "Status": "removed"}
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise _engine_error(e) from e
        return dict(container.attrs.get("State") or {})

    def logs(self, container: Container) -> str:
        """Everything the container wrote to stdout and stderr ('' once it is gone)."""
        try:
            return str(container.logs(stdout=True, stderr=True).decode("utf-8", "replace"))
        except docker.errors.NotFound:
            return ""
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise _engine_error(e) from e

    def cgroup_stats(self, container: Container) -> dict[str, int | None]:
        """CPU time (ns) and peak memory (bytes) of a running container, from its cgroup
        (v1: cpuacct.usage, memory.max_usage_in_bytes; v2: cpu.stat, memory.peak)."""
        try:
            code, out = container.exec_run(["sh", "-c", _CGROUP_SCRIPT], user=NOBODY)
        except docker.errors.APIError as e:
            raise HarnessError(f"reading the container's cgroup failed: {e}.") from e
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise _engine_error(e) from e
        text = out.decode("utf-8", "replace") if isinstance(out, bytes) and code == 0 else ""
        return parse_cgroup_stats(text)

    def _answers(self) -> bool:
        """Whether the engine answers a ping within a few seconds (asked after a failed call,
        so a hung engine does not hold the run for the client's own 600 s timeout)."""
        try:
            r = self.api.get(f"{self.api.base_url}/_ping", timeout=_PING_TIMEOUT_S)
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return False
        return r.status_code == 200

    def kit_containers(self, run_id: str | None = None) -> list[Container]:
        """The kit's own containers (of one run, or all). A container inherits its image's
        labels, so one that someone else starts from a kit image carries `rpb.kit` too; only
        the containers the kit starts also carry a run id label."""
        labels = [f"{KIT_LABEL}={KIT}", f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL]
        try:
            return list(self.client.containers.list(all=True, filters={"label": labels}))
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise _engine_error(e) from e

    def clean(self, *, volumes: bool = False) -> dict[str, int]:
        """Remove the kit's containers (and volumes, and dangling images); nothing else.

        Tagged images are never removed (only dangling ones, by label), and volumes, which hold
        the generated inputs, only when asked.
        """
        removed = {"containers": 0, "volumes": 0, "images": 0}
        kit = f"{KIT_LABEL}={KIT}"
        busy: list[str] = []
        try:
            for c in self.kit_containers():
                with suppress(docker.errors.NotFound):
                    c.remove(force=True)
                    removed["containers"] += 1
            if volumes:
                for v in self.client.volumes.list(filters={"label": kit}):
                    try:
                        v.remove(force=True)
                    except docker.errors.NotFound:
                        continue
                    except docker.errors.APIError:
                        busy.append(str(v.name))  # in use by a container that is not the kit's
                        continue
                    removed["volumes"] += 1
            pruned = self.client.images.prune(filters={"dangling": True, "label": kit})
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise _engine_error(e) from e
        removed["images"] = len(pruned.get("ImagesDeleted") or [])
        if busy:
            done = ", ".join(f"{v} {k}" for k, v in removed.items())
            raise HarnessError(
                f"the volume(s) {', '.join(busy)} are in use by containers that are not the "
                f"kit's ({done} removed). Remove those containers (docker ps -a --filter "
                f"volume=NAME), then run `harness clean --volumes` again"
            )
        return removed


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (the SDK's streamed `docker export`)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = iter(chunks)
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._rest:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._rest = chunk
        n = min(len(b), len(self._rest))
        b[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


def _rootfs_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """tarfile's 'tar' filter (no absolute names, nothing outside `dest`; hard links too), but
    with the image's modes kept whole: /tmp stays 1777, setuid programs stay setuid."""
    new = tarfile.tar_filter(member, dest)
    if member.islnk():
        root = os.path.realpath(dest)
        target = os.path.realpath(Path(root, member.linkname))
        if os.path.commonpath([target, root]) != root:
            raise tarfile.LinkOutsideDestinationError(member, target)
    return new.replace(mode=member.mode, deep=False)


def container_config(
    image: str,
    argv: list[str],
    *,
    run_id: str,
    cpuset: str | None,
    labels: dict[str, str] | None = None,
    limits: Limits | None = None,
    data_volume: str | None = None,
    data_read_only: bool = True,
    hardened: bool = True,
    user: str = NOBODY,
    network_mode: str = "none",
    output_volume: str | None = None,
    files: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of `containers.run` for one container of the kit.

    Hardened (the default, docs/methodology.md section 2): no network, memory limit without swap,
    pids limit, read-only root file system with a tmpfs for scratch, a non-root user, every
    capability dropped, no-new-privileges. Nothing from the host is mounted but the data
    volume (and, for tasks that write files to disk, an output volume at OUTPUT_MOUNT); never
    the Docker socket. `network_mode` "container:ID" joins another kit container's network
    namespace (a load generator on its server's loopback). argv must be a list (exec form): it
    never meets a shell.
    """
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise TypeError(f"argv must be a non-empty list of strings (exec form), not {argv!r}")
    limits = limits or Limits()
    mounts = []
    if data_volume:
        mounts.append(Mount(DATA_MOUNT, data_volume, type="volume", read_only=data_read_only))
    if output_volume:
        mounts.append(Mount(OUTPUT_MOUNT, output_volume, type="volume", read_only=False))
    # Host files bound read-only (host path -> container path): `harness lock` hands apt the
    # CA bundle this way. Only for the kit's own tool containers, never a benchmark's.
    for source, target in (files or {}).items():
        mounts.append(Mount(target, source, type="bind", read_only=True))
    kwargs: dict[str, Any] = {
        "image": image,
        "command": argv,
        "labels": {KIT_LABEL: KIT, RUN_LABEL: run_id, **(labels or {})},
        "mounts": mounts,
        "network_mode": network_mode,
        "mem_limit": limits.memory,
        "memswap_limit": limits.memory,  # equal to the memory limit: no swap
        "pids_limit": limits.pids,
        "stdin_open": False,
        "tty": False,
    }
    if cpuset is not None:
        kwargs["cpuset_cpus"] = cpuset
    if hardened:
        kwargs.update(
            read_only=True,
            tmpfs={SCRATCH: f"rw,noexec,nosuid,{limits.scratch}"},
            user=user,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
        )
    return kwargs


_CGROUP_SCRIPT = (
    "cat /sys/fs/cgroup/cpuacct/cpuacct.usage /sys/fs/cgroup/cpu,cpuacct/cpuacct.usage "
    "2>/dev/null | head -n1; cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes "
    "/sys/fs/cgroup/memory.peak 2>/dev/null | head -n1; "
    "grep '^usage_usec' /sys/fs/cgroup/cpu.stat 2>/dev/null || true"
)


def parse_cgroup_stats(text: str) -> dict[str, int | None]:
    """`cgroup_stats`'s output: a cgroup v1 CPU line (ns), a memory line (bytes), and on
    cgroup v2 a `usage_usec N` line instead of the first."""
    cpu: int | None = None
    peak: int | None = None
    numbers: list[int] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "usage_usec" and parts[1].isdigit():
            cpu = int(parts[1]) * 1000
        elif len(parts) == 1 and parts[0].isdigit():
            numbers.append(int(parts[0]))
    if cpu is None and len(numbers) == 2:
        cpu, peak = numbers
    elif numbers:
        peak = numbers[-1]
    return {"cpu_ns": cpu, "peak_bytes": peak}


def connect(retries: int = 1, *, environment: dict[str, str] | None = None) -> Engine:
    """Connect to the engine named by the environment (DOCKER_HOST, with DOCKER_TLS_VERIFY and
    DOCKER_CERT_PATH for tcp:// with TLS) and check it answers. `environment` replaces
    os.environ: `harness run --engine` names each engine this way."""
    last: Exception | None = None
    for attempt in range(retries):
        try:
            client = docker.from_env(
                timeout=600,
                environment=environment,
                use_ssh_client=(environment or os.environ)
                .get("DOCKER_HOST", "")
                .startswith("ssh://"),
            )
            client.ping()
            return Engine(client)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            last = e
            if attempt + 1 < retries:
                time.sleep(1)
    assert last is not None
    raise _engine_error(last)
