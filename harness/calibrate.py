"""Checking the instrument: the runner against `hyperfine -N` in the same image and cpuset.

Both measure wall time from spawn to reaping the child; they should agree within a few percent
on start-up of `true` and of the Rust hello binary (docs/methodology.md section 1). Process start-up
on a shared host drifts over seconds, so the two tools alternate in short rounds inside one
container, and the medians of all rounds are compared.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from harness.engine import Engine
from harness.errors import HarnessError
from harness.runner import RUNNER

COMMANDS = ("/bin/true", "/opt/rpb/bin/hello")


def calibration_script(runs: int, rounds: int) -> str:
    """A fixed shell script (no user strings reach it) alternating the two tools."""
    per_round = max(1, runs // rounds)
    lines = []
    for r in range(rounds):
        for cmd in COMMANDS:
            # Commands an image lacks (hello outside the rust image) are skipped.
            lines.append(f"if [ -x {cmd} ]; then")
            lines.append(f"echo '#R {cmd}'")
            lines.append(f"{RUNNER} --runs {per_round} --warmup 3 -- {cmd}")
            lines.append(f"echo '#H {cmd}'")
            lines.append(
                f"hyperfine -N --style none --warmup 3 --runs {per_round} "
                f"--export-json /tmp/h{r}.json {cmd} >/dev/null && tr -d '\\n' < /tmp/h{r}.json"
                " && echo"
            )
            lines.append("fi")
    return "set -e\n" + "\n".join(lines) + "\n"


def parse_calibration(stdout: str) -> dict[str, dict[str, list[float]]]:
    """Wall times in seconds per command and tool, from the script's output."""
    out: dict[str, dict[str, list[float]]] = {c: {"runner": [], "hyperfine": []} for c in COMMANDS}
    tool, cmd = "", ""
    for line in stdout.splitlines():
        if line.startswith("#R ") or line.startswith("#H "):
            tool = "runner" if line[1] == "R" else "hyperfine"
            cmd = line[3:].strip()
            continue
        if not line.strip() or cmd not in out:
            continue
        obj = json.loads(line)
        if tool == "runner":
            if "error" in obj:
                raise HarnessError(f"the runner could not run {cmd}: {obj['error']}")
            if not obj["warmup"]:
                out[cmd]["runner"].append(obj["wall_ns"] / 1e9)
        else:
            out[cmd]["hyperfine"].extend(obj["results"][0]["times"])
    return out


def calibrate(
    engine: Engine, tag: str, cpuset: str, runs: int, rounds: int = 10
) -> list[dict[str, Any]]:
    res = engine.run(
        tag, ["sh", "-c", calibration_script(runs, rounds)], run_id="calibrate", cpuset=cpuset
    )
    if res.exit_code != 0:
        raise HarnessError(f"the calibration failed in {tag}: {res.stderr[-500:]}")
    rows = []
    for cmd, times in parse_calibration(res.stdout).items():
        if not times["runner"] or not times["hyperfine"]:
            continue
        ours = statistics.median(times["runner"]) * 1e6
        theirs = statistics.median(times["hyperfine"]) * 1e6
        rows.append(
            {
                "command": cmd,
                "runs": len(times["runner"]),
                "runner_median_us": ours,
                "hyperfine_median_us": theirs,
                "runner_min_us": min(times["runner"]) * 1e6,
                "hyperfine_min_us": min(times["hyperfine"]) * 1e6,
                "difference_pct": (ours / theirs - 1) * 100,
            }
        )
    if not rows:
        raise HarnessError(f"the calibration gave no samples in {tag}: {res.stderr[-500:]}")
    return rows
