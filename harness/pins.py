"""Pins that survive the archive moving on.

The suite pins Debian packages by exact version through image build arguments (RUSTC_VERSION,
PYTHON_VERSION, ...); the Dockerfiles say which packages each argument pins
(`apt-get install ... rustc=${RUSTC_VERSION}`, with `-t RELEASE` when it comes from there).
When Debian publishes a point release the old version leaves the archive and apt says
"Version 'X' for 'Y' was not found": `harness build` turns that into one `Error:` line
(`pin_error`), and `harness lock` asks the archive for its current versions (`apt-cache policy`
in a container of the base image) and writes them into the suite file (`rewrite_suite`).

Everything here but `query_archive` is pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.engine import Engine
from harness.errors import HarnessError, PinNotInArchive
from harness.suite import ImageSpec, Suite

# apt-get's words when a pinned version is gone ("E: Version '3.13.5-1' for 'python3' was not
# found"); apt prints them in English under the C locale the base image has.
_NOT_FOUND = re.compile(r"Version '([^']+)' for '([^']+)' was not found")
# `pkg=${ARG}` (or `$ARG`) in a Dockerfile RUN instruction.
_PINNED = re.compile(r"([a-z0-9][a-z0-9+.-]*)=\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
_RELEASE = re.compile(r"(?:\s-t\s+|--target-release[ =]|--default-release[ =])([A-Za-z0-9._-]+)")
_MARK = "### rpb-release "


@dataclass(frozen=True)
class Pin:
    """One build argument of one image and the packages it pins."""

    image: str
    arg: str
    version: str
    packages: tuple[str, ...]
    release: str | None  # `apt-get -t RELEASE`, else the default


@dataclass(frozen=True)
class Change:
    image: str
    arg: str
    old: str
    new: str
    packages: tuple[str, ...]
    gone: bool  # the old version is no longer in the archive

    def line(self) -> str:
        what = "no longer in the archive" if self.gone else "still in the archive"
        return (
            f"images.{self.image}.args.{self.arg} ({', '.join(self.packages)}): "
            f'"{self.old}" -> "{self.new}" (old: {what})'
        )


def missing_pin(log: str) -> tuple[str, str] | None:
    """(package, version) of the first "Version 'X' for 'Y' was not found" in a build log."""
    m = _NOT_FOUND.search(log)
    return (m.group(2), m.group(1)) if m else None


def _run_instructions(dockerfile: str) -> list[str]:
    """The RUN instructions of a Dockerfile, continuation lines joined."""
    out: list[str] = []
    current: list[str] | None = None
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if current is None:
            if not line.upper().startswith("RUN "):
                continue
            current = []
        if line.startswith("#"):
            continue
        current.append(line.removesuffix("\\"))
        if not line.endswith("\\"):
            out.append(" ".join(current))
            current = None
    if current:
        out.append(" ".join(current))
    return out


def dockerfile_pins(dockerfile: str) -> dict[str, tuple[tuple[str, ...], str | None]]:
    """Build argument -> (packages it pins, the `-t` release of their install) of a
    Dockerfile's `apt-get install pkg=${ARG}` lines."""
    found: dict[str, tuple[list[str], str | None]] = {}
    commands = [c for run in _run_instructions(dockerfile) for c in re.split(r"&&|\|\||;", run)]
    for command in commands:
        if not re.search(r"\bapt(-get)?\s.*\binstall\b", command):
            continue
        rel = _RELEASE.search(command)
        release = rel.group(1) if rel else None
        for pkg, arg in _PINNED.findall(command):
            pkgs, seen_release = found.setdefault(arg, ([], release))
            if pkg not in pkgs:
                pkgs.append(pkg)
            if seen_release is None and release is not None:
                found[arg] = (pkgs, release)
    return {arg: (tuple(pkgs), rel) for arg, (pkgs, rel) in found.items()}


def suite_pins(suite: Suite, root: Path) -> list[Pin]:
    """Every pinned package version of the suite's images, by image and argument."""
    pins = []
    for spec in suite.images.values():
        try:
            text = (root / spec.dockerfile).read_text()
        except OSError as e:
            raise HarnessError(
                f"cannot read {spec.dockerfile}, the Dockerfile of image {spec.name} "
                f"({e.strerror}). Check the suite file {suite.path}"
            ) from e
        by_arg = dockerfile_pins(text)
        for arg, value in spec.args:
            if arg in by_arg:
                pkgs, release = by_arg[arg]
                pins.append(Pin(spec.name, arg, value, pkgs, release))
    return pins


def pin_error(log: str, suite: Suite, spec: ImageSpec, root: Path) -> PinNotInArchive | None:
    """The one-line error for a build that failed on a pinned version gone from the archive."""
    found = missing_pin(log)
    if found is None:
        return None
    pkg, version = found
    where = f"image {spec.name}"
    try:
        by_arg = dockerfile_pins((root / spec.dockerfile).read_text())
    except OSError:
        by_arg = {}  # the build read it a moment ago; the error is still the pin
    for arg, _ in spec.args:
        if pkg in by_arg.get(arg, ((), None))[0]:
            where = f"image {spec.name}, {arg} in {suite.path}"
            break
    return PinNotInArchive(pkg, version, where)


# ----- the archive's versions ------------------------------------------------------------------
@dataclass(frozen=True)
class Policy:
    """`apt-cache policy PKG`: the candidate and the version table (newest first), each
    version with the archive lines that offer it."""

    candidate: str | None
    versions: tuple[tuple[str, tuple[str, ...]], ...]

    def newest(self, release: str | None) -> str | None:
        """What `apt-get install -t RELEASE PKG` would pick: the newest version offered by
        RELEASE; without a release, the candidate."""
        if release is None:
            return self.candidate
        for version, sources in self.versions:
            if any(f" {release}/" in s for s in sources):
                return version
        return self.candidate  # RELEASE does not have it: apt takes the default candidate

    def has(self, version: str) -> bool:
        return any(
            v == version and any("http" in s or "file:" in s for s in src)
            for v, src in self.versions
        )


def parse_policy(text: str) -> dict[str, Policy]:
    """Parse `apt-cache policy PKG...` output."""
    out: dict[str, Policy] = {}
    pkg: str | None = None
    candidate: str | None = None
    versions: list[tuple[str, list[str]]] = []

    def flush() -> None:
        if pkg is not None:
            out[pkg] = Policy(candidate, tuple((v, tuple(s)) for v, s in versions))

    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" ") and line.rstrip().endswith(":"):
            flush()
            pkg, candidate, versions = line.strip()[:-1], None, []
            continue
        stripped = line.strip()
        if stripped.startswith("Candidate:"):
            value = stripped.split(":", 1)[1].strip()
            candidate = None if value == "(none)" else value
        elif stripped.startswith(("Installed:", "Version table:")):
            continue
        elif stripped.startswith("***") or (
            line.startswith("     ") and not line.startswith("        ")
        ):
            parts = stripped.lstrip("* ").split()
            if parts:
                versions.append((parts[0], []))
        elif versions:
            versions[-1][1].append(stripped)
    flush()
    return out


# Refresh the package lists, then `apt-cache policy` per release. Each argument is
# "RELEASE=pkg,pkg" ('-': the default release); names are checked against _PINNED's pattern.
_POLICY_SCRIPT = """set -e
apt-get update -qq >/tmp/apt-update.log 2>&1 || { cat /tmp/apt-update.log >&2; exit 100; }
for group in "$@"; do
  release=${group%%=*}
  echo "### rpb-release $release"
  apt-cache policy $(echo "${group#*=}" | tr , ' ')
done
"""
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._-]*$")


def policy_args(groups: dict[str | None, list[str]]) -> list[str]:
    """The positional arguments of _POLICY_SCRIPT: one "RELEASE=pkg,pkg" per release."""
    out = []
    for release, pkgs in groups.items():
        words = [release or "-", *pkgs]
        if not all(_WORD.match(w) for w in words if w != "-"):
            raise HarnessError(
                f"unexpected package or release name in {words}. Check the Dockerfile"
            )
        out.append(f"{release or '-'}={','.join(sorted(set(pkgs)))}")
    return out


def split_releases(text: str) -> dict[str, str]:
    """The script's output, by release ('-' for the default)."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith(_MARK):
            current = line[len(_MARK) :].strip()
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def query_archive(
    engine: Engine, base_tag: str, pins: Iterable[Pin], *, ca_bundle: Path | None
) -> dict[str | None, dict[str, Policy]]:
    """Ask the archive (the base image's apt sources) for the versions of the pinned packages,
    in a container of the base image with network; by release."""
    groups: dict[str | None, list[str]] = {}
    for pin in pins:
        groups.setdefault(pin.release, []).extend(pin.packages)
    files = {str(ca_bundle.resolve()): "/etc/ssl/certs/ca-certificates.crt"} if ca_bundle else None
    argv = ["sh", "-c", _POLICY_SCRIPT, "sh", *policy_args(groups)]
    res = engine.run_tool(base_tag, argv, files=files)
    if res.exit_code != 0:
        tail = " ".join((res.stderr or res.stdout).strip().splitlines()[-3:])
        raise HarnessError(
            f"asking the Debian archive for the current versions failed (exit status "
            f"{res.exit_code}: {tail[:300]}). Check that the archive is reachable from a "
            "container (proxy? pass its CA bundle with --extra-ca) and try again"
        )
    by_release = split_releases(res.stdout)
    return {(None if k == "-" else k): parse_policy(v) for k, v in by_release.items()}


def changes(pins: Iterable[Pin], policies: dict[str | None, dict[str, Policy]]) -> list[Change]:
    """The pins whose archive version differs from the suite's. An argument pinning several
    packages (rustc and cargo) needs them all at one version."""
    out = []
    for pin in pins:
        found = policies.get(pin.release, {})
        newest = {
            pkg: found[pkg].newest(pin.release) if pkg in found else None for pkg in pin.packages
        }
        missing = [p for p, v in newest.items() if v is None]
        if missing:
            raise HarnessError(
                f"the archive has no version of {', '.join(missing)} "
                f"({'release ' + pin.release if pin.release else 'default release'}), which "
                f"images.{pin.image}.args.{pin.arg} pins. Check the suite's [base] sources"
            )
        if len(set(newest.values())) > 1:
            seen = ", ".join(f"{p} {v}" for p, v in newest.items())
            raise HarnessError(
                f"images.{pin.image}.args.{pin.arg} pins {', '.join(pin.packages)} to one "
                f"version, but the archive has {seen}. Pin them by hand in the suite file"
            )
        new = next(iter(newest.values()))
        assert new is not None
        if new != pin.version:
            gone = not all(found[p].has(pin.version) for p in pin.packages)
            out.append(Change(pin.image, pin.arg, pin.version, new, pin.packages, gone))
    return out


def rewrite_suite(text: str, changes: Iterable[Change]) -> str:
    """The suite file's text with each change's argument set to its new version; comments and
    layout kept. Raises when an image's table or argument is not in this file (a suite that
    takes its images from another with `extends`: lock that one)."""
    lines = text.splitlines(keepends=True)
    for ch in changes:
        header = re.compile(rf"^\s*\[images\.{re.escape(ch.image)}\]\s*(#.*)?$")
        start = next((i for i, line in enumerate(lines) if header.match(line)), None)
        if start is None:
            raise HarnessError(
                f"the suite file has no [images.{ch.image}] table (it takes its images from "
                "another file with `extends`?). Lock that file with --suite"
            )
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
            len(lines),
        )
        arg = re.compile(rf'(\b{re.escape(ch.arg)}\s*=\s*"){re.escape(ch.old)}(")')
        for i in range(start + 1, end):
            new, n = arg.subn(rf"\g<1>{_escape_repl(ch.new)}\g<2>", lines[i])
            if n:
                lines[i] = new
                break
        else:
            raise HarnessError(
                f'images.{ch.image}.args.{ch.arg} = "{ch.old}" is not written in the suite '
                "file as one quoted string. Edit it by hand"
            )
    return "".join(lines)


def _escape_repl(text: str) -> str:
    return text.replace("\\", "\\\\")


def lock_diff(old: str, new: str) -> list[str]:
    """The `name==version` lines of two requirements.lock texts that differ, as -/+ lines."""

    def pins(text: str) -> dict[str, str]:
        out = {}
        for line in text.splitlines():
            m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s\\;]+)", line)
            if m:
                out[m.group(1).lower()] = m.group(2)
        return out

    a, b = pins(old), pins(new)
    diff = []
    for name in sorted(a.keys() | b.keys()):
        if a.get(name) != b.get(name):
            if name in a:
                diff.append(f"-{name}=={a[name]}")
            if name in b:
                diff.append(f"+{name}=={b[name]}")
    if not diff and old != new:
        diff.append("(same versions; the hashes changed)")
    return diff
