"""serving_api programs on the host: each server answers the logistic score a NumPy reference
computes, refuses malformed bodies with a 4xx and stops cleanly on SIGTERM; the loadgen driver's
phases work against them. No Docker. Every server process is stopped when its test ends, pass or
fail.

The load phases (`loadgen saturate` / `rate`) need oha: on PATH, in ~/.cargo/bin, or named by
RPB_OHA; without it those tests are skipped (`cargo install --locked oha@1.15.0`).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "python" / "bench"
RUST = ROOT / "rust"
TARGET = RUST / "target" / "release"
N_FEATURES = 32
REL_TOL = 1e-12

# A stand-in for the PyO3 module rpb_native, used ONLY when the real one is not installed, so
# the FastAPI --scorer pyo3 wiring is tested; the real module is tested where it is built.
STUB_RPB_NATIVE = '''"""STUB of rpb_native for tests: pure Python, not the Rust scorer."""
import math

_W = [math.sin(j + 1) for j in range(32)]


def logistic_score(x):
    if len(x) != 32:
        raise ValueError("expected 32 features")
    z = 0.1
    for w, v in zip(_W, x):
        z += w * v
    return 1.0 / (1.0 + math.exp(-z))
'''


def reference_scores(x: np.ndarray) -> np.ndarray:
    """The task's model with NumPy: w_j = sin(j + 1), bias 0.1, logistic."""
    w = np.sin(np.arange(1, N_FEATURES + 1, dtype=np.float64))
    return 1.0 / (1.0 + np.exp(-(x @ w + 0.1)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(port: int, body: bytes | str, path: str = "/score") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def get(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


@pytest.fixture(scope="session")
def rust_bins() -> dict[str, Path]:
    """serve_axum and loadgen, release builds (cargo's cache makes repeats quick)."""
    if shutil.which("cargo") is None:
        pytest.skip("cargo is not installed")
    proc = subprocess.run(
        ["cargo", "build", "--release", "--locked", "-q", "-p", "rpb-bench", "--bin",
         "serve_axum", "-p", "loadgen", "--bin", "loadgen"],
        cwd=RUST, capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {name: TARGET / name for name in ("serve_axum", "loadgen")}


def find_oha() -> str | None:
    candidates = [os.environ.get("RPB_OHA"), shutil.which("oha"), "~/.cargo/bin/oha"]
    for c in candidates:
        if c and Path(c).expanduser().is_file():
            return str(Path(c).expanduser())
    return None


@pytest.fixture(scope="session")
def stub_path(tmp_path_factory) -> str | None:
    """A folder holding the rpb_native STUB, or None when the real module is importable."""
    probe = subprocess.run([sys.executable, "-c", "import rpb_native"], check=False)
    if probe.returncode == 0:
        return None
    d = tmp_path_factory.mktemp("rpb_native_stub")
    (d / "rpb_native.py").write_text(STUB_RPB_NATIVE)
    return str(d)


SERVERS = ["py-stdlib", "py-fastapi", "py-fastapi-pyo3", "rs-axum-1", "rs-axum-n"]


def server_command(name: str, port: int, bins: dict[str, Path]) -> list[str]:
    py = [sys.executable]
    match name:
        case "py-stdlib":
            return [*py, str(BENCH / "serve_stdlib.py"), "--port", str(port)]
        case "py-fastapi":
            return [*py, str(BENCH / "serve_fastapi.py"), "--port", str(port)]
        case "py-fastapi-pyo3":
            return [*py, str(BENCH / "serve_fastapi.py"), "--port", str(port), "--scorer", "pyo3"]
        case "rs-axum-1":
            return [str(bins["serve_axum"]), "--port", str(port), "--threads", "1"]
        case "rs-axum-n":
            return [str(bins["serve_axum"]), "--port", str(port), "--threads", "2",
                    "--runtime", "multi-thread"]  # fmt: skip
    raise AssertionError(name)


class Server:
    def __init__(self, proc: subprocess.Popen, port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log

    def stop(self) -> int:
        """SIGTERM, as `docker stop` sends; returns the exit status (kills after 10 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@contextmanager
def running(argv: list[str], port: int, log: Path, env: dict | None = None) -> Iterator[Server]:
    """Start a server, wait for GET /health, yield it; always stop it."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
    server = Server(proc, port, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{argv[1]} exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if get(port, "/health") == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{argv} not ready after 30 s: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield server
    finally:
        server.stop()


@pytest.fixture
def serve(rust_bins, stub_path, tmp_path):
    """serve(name) -> a running server, stopped at the end of the test."""
    stack: list = []

    def start(name: str) -> Server:
        if name.startswith("py-fastapi"):
            pytest.importorskip("fastapi")
            pytest.importorskip("uvicorn")
        env = {}
        if name == "py-fastapi-pyo3" and stub_path is not None:
            env["PYTHONPATH"] = stub_path  # the STUB, see STUB_RPB_NATIVE
        port = free_port()
        cm = running(server_command(name, port, rust_bins), port, tmp_path / f"{name}.log", env)
        server = cm.__enter__()
        stack.append(cm)
        return server

    yield start
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


def loadgen(bins: dict[str, Path], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(bins["loadgen"]), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def last_json(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_error_line(proc: subprocess.CompletedProcess, text: str) -> None:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: "), proc.stderr
    assert text in lines[-1], proc.stderr


MALFORMED = {
    "not_json": b'{"x": [1.0, 2',
    "empty": b"",
    "length_31": json.dumps({"x": [0.5] * 31}),
    "length_33": json.dumps({"x": [0.5] * 33}),
    "string_item": json.dumps({"x": [0.5] * 31 + ["abc"]}),
    "null_item": json.dumps({"x": [None] + [0.5] * 31}),
    "missing_key": json.dumps({"y": [0.5] * 32}),
    "x_not_a_list": json.dumps({"x": 0.5}),
    "top_level_list": json.dumps([0.5] * 32),
}


@pytest.mark.parametrize("name", SERVERS)
def test_server_scores_refuses_and_stops(name, serve, rust_bins):
    server = serve(name)
    port = server.port
    x = np.random.default_rng(20260101).uniform(-3.0, 3.0, size=(40, N_FEATURES))
    x[0] = 0.0
    x[1] = np.arange(N_FEATURES) % 3  # integers in JSON: every server takes them as numbers
    expected = reference_scores(x)
    for i, (row, want) in enumerate(zip(x, expected, strict=True)):
        items = [int(v) for v in row] if i == 1 else row.tolist()
        status, body = post(port, json.dumps({"x": items}))
        assert status == 200, body
        got = json.loads(body)["score"]
        assert abs(got - want) <= REL_TOL * max(abs(got), abs(want)), (row, got, want)

    for case, body in MALFORMED.items():
        status, answer = post(port, body)
        assert 400 <= status < 500, (case, status, answer)
    assert get(port, "/nowhere") == 404

    check = last_json(loadgen(rust_bins, "check", "--port", str(port), "--seed", "3",
                              "--count", "30"))  # fmt: skip
    assert check["phase"] == "check"
    assert check["passed"], check
    assert (check["ok"], check["n_wrong"]) == (30, 0)
    assert check["malformed_ok"] == check["malformed_total"] >= 9

    # A clean stop on SIGTERM: exit 0, or (uvicorn) the signal re-raised after its shutdown.
    clean = {0, -signal.SIGTERM} if name.startswith("py-fastapi") else {0}
    assert server.stop() in clean, server.log.read_text()[-2000:]


@pytest.mark.parametrize("name", ["py-stdlib", "rs-axum-1"])
def test_server_refuses_a_port_in_use(name, rust_bins, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.run(
            server_command(name, port, rust_bins), capture_output=True, text=True, timeout=30,
            check=False,
        )  # fmt: skip
    assert_error_line(proc, f"cannot listen on 127.0.0.1:{port}")


def test_loadgen_ready_times_out_with_an_error(rust_bins):
    proc = loadgen(rust_bins, "ready", "--port", str(free_port()), "--timeout-s", "0.3")
    assert_error_line(proc, "server not ready after 0.3 s")


def test_loadgen_usage_errors(rust_bins):
    assert_error_line(loadgen(rust_bins, "fly", "--port", "1"), "unknown phase")
    assert_error_line(loadgen(rust_bins, "rate", "--port", "1", "--duration-s", "1"),
                      "missing --rate")  # fmt: skip
    assert_error_line(loadgen(rust_bins, "ready", "--port", "1", "--rate", "5"),
                      "--rate is not an option of `loadgen ready`")  # fmt: skip
    assert_error_line(loadgen(rust_bins, "check", "--port", "70000"), "invalid value for --port")


class _WrongHandler(BaseHTTPRequestHandler):
    """Answers every POST with 200 and a slightly wrong score: a server check must fail."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            x = np.array(json.loads(body)["x"], dtype=np.float64)
            score = float(reference_scores(x[None, :])[0]) * (1 + 1e-9)
        except (ValueError, KeyError, TypeError, IndexError):
            score = 0.5
        data = json.dumps({"score": score}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_request(self, code="-", size="-") -> None:
        pass


def test_loadgen_check_reports_wrong_scores_and_accepted_garbage(rust_bins):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WrongHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        out = last_json(loadgen(rust_bins, "check", "--port", str(port), "--count", "12"))
    finally:
        server.shutdown()
        server.server_close()
    assert out["passed"] is False
    assert (out["ok"], out["n_wrong"]) == (0, 12)
    assert len(out["wrong"]) == 5
    assert out["wrong"][0]["status"] == 200
    assert out["malformed_ok"] == 0
    assert len(out["malformed_failed"]) == out["malformed_total"]


@pytest.mark.parametrize("name", ["rs-axum-1"])
def test_loadgen_load_phases(name, serve, rust_bins):
    oha = find_oha()
    if oha is None:
        pytest.skip("oha is not installed (cargo install --locked oha@1.15.0, or set RPB_OHA)")
    port = str(serve(name).port)
    sat = last_json(loadgen(rust_bins, "saturate", "--port", port, "--duration-s", "1",
                            "--connections", "4", "--oha", oha, "--threads", "1"))  # fmt: skip
    assert sat["phase"] == "saturate"
    assert sat["tool"] == "oha"
    assert sat["ok"] > 100
    assert sat["errors"] == 0
    assert sat["rps"] > 100
    assert sat["requests"] >= sat["ok"]
    assert sat["target_rate"] is None
    assert sat["cpu_ns"] == sat["loadgen"]["user_ns"] + sat["loadgen"]["sys_ns"] > 0

    rate = last_json(loadgen(rust_bins, "rate", "--port", port, "--rate", "300",
                             "--duration-s", "2", "--connections", "8", "--oha", oha,
                             "--threads", "1"))  # fmt: skip
    assert rate["phase"] == "rate"
    assert rate["target_rate"] == 300
    assert rate["scheduled"] == 600
    assert rate["errors"] == 0
    assert 0.9 <= rate["achieved_fraction"] <= 1.01
    lat = rate["latency_ns"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p99"] <= lat["p999"] <= lat["max"]
