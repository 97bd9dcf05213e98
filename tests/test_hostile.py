"""Hostile strings and bundles from elsewhere: escaped in reports, validated before use, no
path traversal, and nothing from a suite or a bundle ever reaches a shell.

Every refusal goes through the real `harness report` command (typer's CliRunner): one `Error:`
line, exit status 1, and nothing written into the bundle.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness import report
from harness.cli import app
from harness.engine import container_config
from harness.runner import runner_argv
from harness.store import new_run_id
from harness.suite import load_suite

HARNESS = Path(__file__).resolve().parent.parent / "harness"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
SHELL = "$(rm -rf /)"
LINK = "[x](javascript:alert(1))"
OUTPUTS = ("summary.csv", "report.md", "report.html")


def sample(task: str, impl: str, session: int, run: int, wall: int, **extra: Any) -> dict:
    return {
        "schema": 1,
        "case_id": f"{task}/{impl}/-",
        "task": task,
        "impl": impl,
        "lang": "python",
        "image": "python",
        "size": None,
        "session": session,
        "run": run,
        "warmup": run == 0,
        "wall_ns": wall,
        "user_ns": wall // 2,
        "sys_ns": wall // 10,
        "maxrss_kb": 9000,
        "exit_code": 0,
        "signal": None,
        "timed_out": False,
        "setup_ns": None,
        "iter_ns": [],
        "checksum": "hello",
        "checksum_ok": True,
        "stderr_tail": "",
        **extra,
    }


def case_row(task: str, impl: str, status: str = "ok", **extra: Any) -> dict:
    return {
        "case_id": f"{task}/{impl}/-",
        "task": task,
        "impl": impl,
        "size": None,
        "status": status,
        "reason": None,
        "stderr_tail": None,
        **extra,
    }


def write_bundle(
    root: Path,
    *,
    manifest: dict | None = None,
    samples: list[dict] | None = None,
    cases: list[dict] | None = None,
    host: str = "otherhost",
) -> Path:
    """A bundle as another host would hand it over: files only, made without the store."""
    run_id = new_run_id()
    path = root / host / run_id
    path.mkdir(parents=True)
    m = {"schema": 1, "run_id": run_id, "host": host, "status": "complete", **(manifest or {})}
    (path / "manifest.json").write_text(json.dumps(m))
    if samples is None:
        samples = [
            sample(t, i, s, r, w)
            for t, i, w in (("startup", "py-bare", 20_000_000), ("startup", "rs-hello", 900_000))
            for s in range(2)
            for r in range(4)
        ]
    (path / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    rows = cases if cases is not None else [case_row("startup", "py-bare")]
    (path / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in rows))
    return path


def report_cli(*args: str):
    return CliRunner().invoke(app, ["report", *args])


def error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), lines[0]
    return lines[0]


def nothing_written(bundle: Path) -> None:
    for name in OUTPUTS:
        assert not (bundle / name).exists(), name
    assert not [p for p in bundle.iterdir() if p.name.endswith(".tmp")]


# ----- hostile strings are escaped ---------------------------------------------------------------


@pytest.fixture
def hostile_bundle(tmp_path) -> Path:
    samples = [
        sample(SCRIPT, impl, s, r, wall)
        for impl, wall in (("py-bare", 20_000_000), (SHELL, 1_000_000), (LINK, 2_000_000))
        for s in range(2)
        for r in range(4)
    ]
    failed = [
        sample(SCRIPT, IMG, 0, r, 5_000, exit_code=1, checksum=None, stderr_tail=IMG)
        for r in range(2)
    ]
    cases = [
        case_row(SCRIPT, "py-bare"),
        case_row(SCRIPT, SHELL),
        case_row(SCRIPT, LINK),
        case_row(SCRIPT, IMG, "failed", reason=f"exit status 1 {SCRIPT}", stderr_tail=IMG),
    ]
    manifest = {
        "status": "incomplete",
        "error": f"stopped by {IMG}",
        "warnings": [f"noisy {SCRIPT}", LINK],
        "baselines": {SCRIPT: "py-bare"},
        "fingerprint": {"cpu_model": SCRIPT, IMG: SHELL},
        "images": {SCRIPT: {"tag": IMG, "id": SHELL, "versions": {"python": SCRIPT}}},
        "suite": {"name": IMG, "sha256": SHELL},
        "profile": {"name": LINK},
    }
    return write_bundle(tmp_path, manifest=manifest, samples=samples + failed, cases=cases)


def test_hostile_strings_are_escaped_in_both_reports(hostile_bundle):
    r = report_cli(str(hostile_bundle))
    assert r.exit_code == 0, r.output
    html = (hostile_bundle / "report.html").read_text()
    md = (hostile_bundle / "report.md").read_text()

    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert SHELL in html  # shown as the text it is
    assert "href" not in html

    outside_fences = re.sub(r"(`{3,}).*?\1", "", md, flags=re.DOTALL)
    assert "<script" not in outside_fences
    assert "<img" not in outside_fences
    assert "&lt;script>alert(1)&lt;/script>" in outside_fences
    assert not re.search(r"(?<!\\)\]\(", md)  # a name never becomes a link or an image
    assert "[x\\](javascript:alert(1))" in md
    assert SHELL in md
    # stderr sits in a code fence, where Markdown shows it as text.
    assert re.search(r"```text\n<img src=x onerror=alert\(1\)>\n```", md)


def test_hostile_names_reach_summary_csv_as_data(hostile_bundle):
    assert report_cli(str(hostile_bundle)).exit_code == 0
    csv = (hostile_bundle / "summary.csv").read_text()
    assert SHELL in csv  # data, quoted by pandas where needed; never interpreted


# ----- bundles that are refused -----------------------------------------------------------------

BAD_MANIFESTS = [
    ({"run_id": "../../etc"}, "run_id '../../etc' is not a plain folder name"),
    ({"run_id": "20250101T000000Z-abcd/../../x"}, "is not a plain folder name"),
    ({"run_id": "/etc"}, "run_id '/etc' is not a plain folder name"),
    ({"run_id": "2025\x00"}, "is not a plain folder name"),
    ({"run_id": "yesterday"}, "run_id 'yesterday' is not a run id like"),
    ({"run_id": 7}, "run_id must be a non-empty string, not 7"),
    ({"host": "../../etc"}, "host '../../etc' is not a plain folder name"),
    ({"host": ".."}, "host '..' is not a plain folder name"),
    ({"host": "a b;rm"}, "host 'a b;rm' is not a host label"),
    ({"schema": 2}, "has bundle schema 2; this harness reads schema 1"),
    ({"schema": True}, "has bundle schema True"),
    ({"images": ["python"]}, "'images' must be an object of objects"),
    ({"images": {"python": {"versions": "3.13"}}}, "'images' must be an object of objects"),
    ({"warnings": {"a": 1}}, "'warnings' must be a list of strings"),
    ({"baselines": {"startup": 3}}, "'baselines' must be an object of strings"),
    ({"fingerprint": "fast"}, "'fingerprint' must be an object"),
    ({"interrupted": "no"}, "'interrupted' must be true or false"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_MANIFESTS)
def test_bad_manifest_is_refused_before_use(tmp_path, fields, message):
    bundle = write_bundle(tmp_path, manifest=fields)
    line = error_line(report_cli(str(bundle)))
    assert message in line
    assert line.endswith(
        "refusing to use this bundle. Copy it again from the host that wrote it, or run again."
    ) or ("schema" in message and line.endswith("Use the harness version that wrote the bundle."))
    nothing_written(bundle)


BAD_SAMPLES = [
    ({"wall_ns": "fast"}, "'wall_ns' must be a non-negative number, not 'fast'"),
    ({"wall_ns": -5}, "'wall_ns' must be a non-negative number, not -5"),
    ({"wall_ns": True}, "'wall_ns' must be a non-negative number, not True"),
    ({"wall_ns": float("nan")}, "'wall_ns' must be a non-negative number, not nan"),
    ({"wall_ns": float("inf")}, "'wall_ns' must be a non-negative number, not inf"),
    ({"iter_ns": [1, "x"]}, "'iter_ns' must be a list of non-negative numbers"),
    ({"session": 1.5}, "'session' must be a non-negative integer, not 1.5"),
    ({"task": ["startup"]}, "'task' must be a non-empty string"),
    ({"impl": ""}, "'impl' must be a non-empty string"),
    ({"size": -1}, "'size' must be a non-negative integer"),
    ({"schema": 9}, "has sample schema 9; this harness reads schemas 1, 2"),
    ({"checksum_ok": "yes"}, "'checksum_ok' must be true or false"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_SAMPLES)
def test_bad_sample_row_is_refused_before_use(tmp_path, fields, message):
    rows = [sample("startup", "py-bare", 0, r, 1000) for r in range(3)]
    rows[1].update(fields)
    bundle = write_bundle(tmp_path, samples=rows)
    line = error_line(report_cli(str(bundle)))
    assert f"samples.jsonl:2{' has' if 'schema' in message else ':'}" in line
    assert message in line
    nothing_written(bundle)


def test_sample_row_missing_a_required_field_is_refused(tmp_path):
    rows = [sample("startup", "py-bare", 0, r, 1000) for r in range(2)]
    del rows[0]["session"]
    bundle = write_bundle(tmp_path, samples=rows)
    assert "samples.jsonl:1 has no 'session'" in error_line(report_cli(str(bundle)))
    nothing_written(bundle)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[1, 2]", "samples.jsonl:2 is not a JSON object"),
        ("[" * 100_000 + "]" * 100_000, "samples.jsonl:2 is not valid JSON"),
        ('{"wall_ns": 1', "samples.jsonl:2 is not valid JSON"),
    ],
    ids=["not-an-object", "nested-too-deep", "torn-in-the-middle"],
)
def test_damaged_samples_file_is_refused(tmp_path, line, message):
    good = json.dumps(sample("startup", "py-bare", 0, 0, 1000))
    bundle = write_bundle(tmp_path)
    (bundle / "samples.jsonl").write_text(f"{good}\n{line}\n{good}\n")
    assert message in error_line(report_cli(str(bundle)))
    nothing_written(bundle)


def test_samples_that_are_not_utf8_are_refused(tmp_path):
    bundle = write_bundle(tmp_path)
    (bundle / "samples.jsonl").write_bytes(b'{"task": "\xff\xfe"}\n')
    assert "samples.jsonl cannot be read" in error_line(report_cli(str(bundle)))
    nothing_written(bundle)


def test_bad_case_row_is_refused(tmp_path):
    bundle = write_bundle(tmp_path, cases=[case_row("startup", "py-bare", status=5)])
    line = error_line(report_cli(str(bundle)))
    assert "cases.jsonl:1: 'status' must be a non-empty string, not 5" in line
    nothing_written(bundle)


def test_manifest_that_is_not_json_is_refused(tmp_path):
    bundle = write_bundle(tmp_path)
    (bundle / "manifest.json").write_text("<html>")
    assert "manifest.json cannot be read" in error_line(report_cli(str(bundle)))
    nothing_written(bundle)


# ----- links and special files: no path traversal ----------------------------------------------


def test_bundle_folder_that_is_a_link_is_refused(tmp_path):
    outside = write_bundle(tmp_path / "elsewhere")
    results = tmp_path / "results"
    (results / "otherhost").mkdir(parents=True)
    link = results / "otherhost" / outside.name
    link.symlink_to(outside, target_is_directory=True)
    for args in ([str(link)], ["--results", str(results)]):
        line = error_line(report_cli(*args))
        assert f"{link} is a symbolic link to {outside}" in line
        assert line.endswith(f"Pass the folder itself: harness report {outside}.")
    nothing_written(outside)


def test_host_folder_that_is_a_link_is_refused_when_found_as_latest(tmp_path):
    outside = write_bundle(tmp_path / "elsewhere")
    results = tmp_path / "results"
    results.mkdir()
    (results / "otherhost").symlink_to(outside.parent, target_is_directory=True)
    line = error_line(report_cli("--results", str(results)))
    assert f"{results / 'otherhost'} is a symbolic link to {outside.parent}" in line
    nothing_written(outside)


@pytest.mark.parametrize("name", ["manifest.json", "samples.jsonl", "cases.jsonl"])
def test_bundle_file_that_is_a_link_is_refused(tmp_path, name):
    bundle = write_bundle(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2\n")
    (bundle / name).unlink()
    (bundle / name).symlink_to(secret)
    line = error_line(report_cli(str(bundle)))
    assert f"{bundle / name} is a symbolic link or not a regular file" in line
    assert "hunter2" not in line
    nothing_written(bundle)


def test_samples_that_are_a_fifo_are_refused_without_reading(tmp_path):
    bundle = write_bundle(tmp_path)
    (bundle / "samples.jsonl").unlink()
    os.mkfifo(bundle / "samples.jsonl")  # reading it would block forever
    assert "is a symbolic link or not a regular file" in error_line(report_cli(str(bundle)))


def test_report_replaces_a_planted_link_instead_of_writing_through_it(tmp_path):
    bundle = write_bundle(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (bundle / "report.html").symlink_to(victim)
    r = report_cli(str(bundle))
    assert r.exit_code == 0, r.output
    assert victim.read_text() == "keep me\n"
    assert not (bundle / "report.html").is_symlink()
    assert "<!DOCTYPE html>" in (bundle / "report.html").read_text()


# ----- nothing reaches a shell -----------------------------------------------------------------


def _sources() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(), str(p))) for p in sorted(HARNESS.glob("*.py"))]


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else "?"


def test_harness_never_uses_a_host_shell():
    banned = {"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"}
    for path, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                assert _name(node.func) not in banned, f"{path}:{node.lineno}"
                for kw in node.keywords:
                    is_true = isinstance(kw.value, ast.Constant) and kw.value.value is True
                    assert not (kw.arg == "shell" and is_true), f"{path}:{node.lineno}"
                    # argv lists only: never an entrypoint override or a string command.
                    assert kw.arg != "entrypoint", f"{path}:{node.lineno}"


def test_only_calibrate_runs_a_shell_in_a_container_and_only_with_fixed_text():
    """`sh -c` appears in calibrate's script, built from constants, ints and the suite's argv
    words each quoted by shlex.quote, and with module constants as the script where inputs are
    verified (runner), a server's cgroup is read (engine) and imports are profiled (process
    kind): data reaches those scripts only as positional arguments."""
    found = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.List) and len(node.elts) >= 2:
                first, second = node.elts[0], node.elts[1]
                if (
                    isinstance(first, ast.Constant)
                    and str(first.value).rsplit("/", 1)[-1] in {"sh", "bash", "dash"}
                    and isinstance(second, ast.Constant)
                    and second.value == "-c"
                ):
                    found.append(path.name)
                    if path.name != "calibrate.py":
                        script = node.elts[2]
                        assert isinstance(script, ast.Name), f"{path}:{node.lineno}"
    assert sorted(found) == [
        "calibrate.py",
        "engine.py",
        "engines.py",  # reads the engine host's /proc and /sys (fixed file list)
        "pins.py",  # apt-cache policy; package names as checked positional arguments
        "runner.py",
        "runner.py",
    ]
    from harness.calibrate import COMMANDS

    assert all(re.fullmatch(r"/[a-z/]+", c) for c in COMMANDS)


def test_every_engine_run_call_passes_an_argv_list():
    for path, tree in _sources():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "run"
                and _name(node.func.value).endswith("engine")
            ):
                argv = node.args[1]
                assert isinstance(argv, ast.List | ast.Name), f"{path}:{node.lineno}"
                if isinstance(argv, ast.Name):  # a variable: it is built as a list
                    assert argv.id == "argv", f"{path}:{node.lineno}"


def test_container_config_refuses_a_command_string():
    for bad in ("echo $(id)", [], ["echo", 3], ("echo", "x")):
        with pytest.raises(TypeError, match="list of strings"):
            container_config("img", bad, run_id="r", cpuset=None)  # type: ignore[arg-type]


def test_shell_metacharacters_stay_single_arguments():
    argv = ["/bin/echo", SHELL, "; rm -rf /", "`id`", "a b", "$HOME", "|cat"]
    config = container_config("img", argv, run_id="r", cpuset=None)
    assert config["command"] == argv  # exec form: one argv entry each, no shell in between
    assert "entrypoint" not in config


def test_suite_commands_are_argv_lists():
    suite = load_suite()
    for profile in suite.profiles.values():
        for case in suite.cases(profile):
            argv = runner_argv(profile, 600.0, case.argv(profile.iters, port="8000"))
            assert isinstance(argv, list)
            assert all(isinstance(a, str) for a in argv)


def test_md_escape_blocks_links_and_images():
    assert report.md_escape(LINK) == "[x\\](javascript:alert(1))"
    assert report.md_escape("![t](http://x/p.png)") == "![t\\](http://x/p.png)"
    assert report.md_escape("[a]: javascript:x") == "[a\\]: javascript:x"
    assert report.md_escape("[a][b]") == "[a\\][b\\]"
    assert report.md_escape("[1.98, 2.05] faster") == "[1.98, 2.05] faster"
