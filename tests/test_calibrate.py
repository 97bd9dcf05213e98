from __future__ import annotations

import json

from harness.calibrate import calibration_script, parse_calibration


def test_script_alternates_tools_and_skips_missing_commands():
    script = calibration_script(runs=20, rounds=2)
    assert script.count("--runs 10") == 8  # 2 rounds x 2 commands x 2 tools
    assert script.index("#R /bin/true") < script.index("#H /bin/true")
    assert "if [ -x /opt/rpb/bin/hello ]; then" in script


def test_parse_keeps_measured_runs_only():
    runner = [json.dumps({"run": i, "warmup": i == 0, "wall_ns": 1000 * (i + 1)}) for i in range(3)]
    hyper = json.dumps({"results": [{"times": [0.5e-6, 0.7e-6]}]})
    out = "\n".join(["#R /bin/true", *runner, "#H /bin/true", hyper, ""])
    parsed = parse_calibration(out)
    assert parsed["/bin/true"]["runner"] == [2e-6, 3e-6]
    assert parsed["/bin/true"]["hyperfine"] == [0.5e-6, 0.7e-6]
    assert parsed["/opt/rpb/bin/hello"] == {"runner": [], "hyperfine": []}
