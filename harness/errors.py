"""The kit's errors. Each one carries what a person needs to act on it.

The CLI is the only place that turns a `HarnessError` into `Error: ...` and exit status 1.
"""

from __future__ import annotations


class HarnessError(Exception):
    """An expected failure with a message of the form '<what happened>. <what to do>'."""


class UsageError(HarnessError):
    """Bad input on the command line or in a suite file."""


class SuiteError(HarnessError):
    """The suite definition is invalid."""


class EngineUnavailable(HarnessError):
    """The Docker engine cannot be reached. `detail` is the client's own error, in short."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class ImageMissing(HarnessError):
    def __init__(self, tag: str) -> None:
        super().__init__(f"image {tag} is not built. Run `harness build` first.")
        self.tag = tag


class ImageBuildFailed(HarnessError):
    def __init__(self, tag: str, log_tail: str) -> None:
        super().__init__(
            f"building image {tag} failed. The last lines of the build log:\n{log_tail}"
        )
        self.tag = tag
        self.log_tail = log_tail


class BaseBuildFailed(HarnessError):
    def __init__(self, detail: str) -> None:
        super().__init__(
            f"building the Debian base with mmdebstrap failed: {detail}. "
            "Install mmdebstrap (apt-get install mmdebstrap) and check that the Debian "
            "archive is reachable, or pass --base-ref to pull a base by digest."
        )


class BenchmarkFailed(HarnessError):
    def __init__(self, case: str, exit_status: int | None, stderr_tail: str) -> None:
        super().__init__(f"benchmark {case} failed with exit status {exit_status}")
        self.case = case
        self.exit_status = exit_status
        self.stderr_tail = stderr_tail


class BundleError(HarnessError):
    """A results bundle is missing, unreadable or fails validation."""


class PinNotInArchive(HarnessError):
    """A Debian package version the suite pins is gone from the archive (a point release)."""

    def __init__(self, package: str, version: str, where: str) -> None:
        super().__init__(
            f"the pinned version {version} of {package} is no longer in the Debian archive "
            f"({where}). Refresh the pins with `harness lock` (or `make lock`), then run "
            "`harness build` again"
        )
        self.package = package
        self.version = version
