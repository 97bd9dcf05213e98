"""Checking the instrument: the runner against `hyperfine -N` in the same image and cpuset.

Both measure wall time from spawn to reaping the child; they should agree within a few percent
on start-up of `true` and of the Rust hello binary (MEASUREMENT.md section 1).
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from harness.engine import Engine
from harness.errors import HarnessError
from harness.runner import RUNNER

COMMANDS = ("/bin/true", "/opt/rpb/bin/hello")


def _median_us(values_s: list[float]) -> float:
    return statistics.median(values_s) * 1e6


def calibrate(engine: Engine, tag: str, cpuset: str, runs: int) -> list[dict[str, Any]]:
    rows = []
    for cmd in COMMANDS:
        r = engine.run(
            tag,
            [RUNNER, "--runs", str(runs), "--warmup", "10", "--", cmd],
            run_id="calibrate",
            cpuset=cpuset,
        )
        walls = []
        for line in r.stdout.splitlines():
            obj = json.loads(line)
            if "error" in obj:
                raise HarnessError(f"runner could not run {cmd}: {obj['error']}")
            if not obj["warmup"]:
                walls.append(obj["wall_ns"] / 1e9)
        # Fixed strings only: nothing from the user reaches this shell.
        script = (
            f"hyperfine -N --style none --warmup 10 --runs {int(runs)} "
            f"--export-json /tmp/h.json {cmd} >/dev/null && cat /tmp/h.json"
        )
        h = engine.run(tag, ["sh", "-c", script], run_id="calibrate", cpuset=cpuset)
        if h.exit_code != 0:
            raise HarnessError(f"hyperfine failed in {tag}: {h.stderr[-500:]}")
        times = json.loads(h.stdout)["results"][0]["times"]
        if not walls:
            raise HarnessError(f"the runner gave no samples for {cmd}: {r.stderr[-500:]}")
        ours, theirs = _median_us(walls), _median_us(times)
        rows.append(
            {
                "command": cmd,
                "runs": runs,
                "runner_median_us": ours,
                "hyperfine_median_us": theirs,
                "difference_pct": (ours / theirs - 1) * 100,
            }
        )
    return rows
