"""The benchmark programs of io_impact, file_read, parallel, concurrency and the new
sum_squares implementations, run on the host against the suite file.

Inputs come from the Rust ``datagen`` (built once per module). Every reference value in the
suite is recomputed here with NumPy/pandas code that shares nothing with the
implementations; then every implementation is run through the suite's own argv (image paths
mapped to this checkout) and must print a checksum that agrees under the task's comparison.
Implementations whose library is missing on the host are skipped (pytest.importorskip); PyPy
ones run only when ``pypy3`` is on PATH. Sweep-only sizes are checked when
RPB_CHECK_SWEEP_REFERENCES=1 (slow: they generate inputs of up to 10^6 rows).
"""

from __future__ import annotations

import binascii
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
RUST = ROOT / "rust"
RELEASE = RUST / "target" / "release"
SUITE = ROOT / "harness" / "suites" / "default.toml"
# The sum_squares implementations these tests own (the others are checked elsewhere).
SUM_SQUARES_EXTRA = {"py-numpy-sum", "py-numba", "pypy-loop", "pypy-builtin"}
PY_BENCH = ROOT / "python" / "bench"
CHECK_SWEEP = os.environ.get("RPB_CHECK_SWEEP_REFERENCES") == "1"
U64 = (1 << 64) - 1


def task_of(name: str) -> dict:
    return tomllib.loads(SUITE.read_text())["tasks"][name]


def sizes_to_check(task: dict) -> list[int]:
    sizes = task["sizes"]
    wanted = set(sizes["test"]) | set(sizes["default"])
    if CHECK_SWEEP:
        wanted |= set(sizes.get("sweep", []))
    return sorted(wanted)


@pytest.fixture(scope="module")
def release_bins() -> Path:
    """Build the bench binaries (release) once for the module."""
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "-q", "-p", "rpb-bench"],
        cwd=RUST,
        check=True,
    )
    return RELEASE


@pytest.fixture(scope="module")
def inputs(release_bins: Path, tmp_path_factory: pytest.TempPathFactory):
    """A function (generator, n) -> path of a generated input, cached for the module."""
    folder = tmp_path_factory.mktemp("inputs")
    made: dict[tuple[str, int], Path] = {}

    def get(generator: str, n: int, seed: int = 42) -> Path:
        key = (generator, n)
        if key not in made:
            path = folder / f"{generator}-n{n}"
            subprocess.run(
                [
                    release_bins / "datagen",
                    generator,
                    "--n",
                    str(n),
                    "--seed",
                    str(seed),
                    "--out",
                    path,
                ],
                check=True,
                capture_output=True,
            )
            made[key] = path
        return made[key]

    return get


# --- independent references ------------------------------------------------------------------


def ref_io_impact(path: Path) -> str:
    """Bytes and CRC-32 of the x*x lines, written by np.savetxt."""
    a = np.fromfile(path, dtype="<i8")
    buf = io.BytesIO()
    np.savetxt(buf, a * a, fmt="%d")
    text = buf.getvalue()
    return f"{len(text)} {binascii.crc32(text):08x}"


def ref_file_read(path: Path) -> list[float]:
    """Per sorted category: count and exactly rounded sums (math.fsum) of a, b, c."""
    df = pd.read_csv(path, dtype={"cat": str})
    out: list[float] = []
    for cat in sorted(df["cat"].unique()):
        part = df[df["cat"] == cat]
        out.append(float(len(part)))
        out.extend(math.fsum(part[col].to_numpy().tolist()) for col in ("a", "b", "c"))
    return out


def ref_parallel(path: Path) -> str:
    """8 SplitMix64 rounds in NumPy uint64 over the whole array, summed in Python ints."""
    z = np.fromfile(path, dtype="<i8").astype(np.uint64)
    with np.errstate(over="ignore"):
        for _ in range(8):
            z = z + np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
    return str(sum(int(v) for v in z.tolist()) & U64)


def ref_concurrency(c: int) -> str:
    r = max(1000, 4 * c)
    return str(sum(2 * k + 1 for k in range(r)))


def floats_agree(got: str, want: list[float], rel_tol: float) -> bool:
    xs = [float(x) for x in got.split()]
    return len(xs) == len(want) and all(
        abs(x - y) <= rel_tol * max(abs(x), abs(y)) for x, y in zip(xs, want, strict=True)
    )


def test_io_impact_references(inputs) -> None:
    task = task_of("io_impact")
    for n in sizes_to_check(task):
        assert task["reference"][str(n)] == ref_io_impact(inputs("sum-squares", n)), n


def test_file_read_references(inputs) -> None:
    task = task_of("file_read")
    rel_tol = task["checksum"]["rel_tol"]
    for n in sizes_to_check(task):
        want = ref_file_read(inputs("file-read", n))
        assert floats_agree(task["reference"][str(n)], want, rel_tol), n
        assert sum(want[0::4]) == n


def test_parallel_references(inputs) -> None:
    task = task_of("parallel")
    for n in sizes_to_check(task):
        assert task["reference"][str(n)] == ref_parallel(inputs("sum-squares", n)), n


def test_concurrency_references() -> None:
    task = task_of("concurrency")
    for n in {*task["sizes"]["test"], *task["sizes"]["default"], *task["sizes"]["sweep"]}:
        assert task["reference"][str(n)] == ref_concurrency(n), n


def test_every_size_has_a_reference() -> None:
    for name in ("io_impact", "file_read", "parallel", "concurrency"):
        task = task_of(name)
        sizes = {n for profile in task["sizes"].values() for n in profile}
        assert {str(n) for n in sizes} <= set(task["reference"]), name


# --- running the implementations -------------------------------------------------------------

LIBRARIES = {"numba": "numba", "polars": "polars", "pandas-arrow": "pyarrow"}


def host_argv(argv: list[str], impl: dict, values: dict[str, str]) -> list[str]:
    """The suite's argv with image paths mapped to this checkout and placeholders filled."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if i == 0 and arg == "python3":
            out.append(sys.executable)
        elif i == 0 and arg == "pypy3":
            pypy = shutil.which("pypy3")
            if pypy is None:
                pytest.skip(f"{impl['name']}: pypy3 is not installed on this host")
            out.append(pypy)
        elif arg.startswith("/opt/rpb/python/"):
            out.append(str(PY_BENCH / arg.removeprefix("/opt/rpb/python/")))
        elif arg.startswith("/opt/rpb/bin/"):
            out.append(str(RELEASE / arg.removeprefix("/opt/rpb/bin/")))
        else:
            out.append(arg.format(**values))
    return out


def thread_counts(threads: int | str) -> list[int]:
    cpus = os.cpu_count() or 1
    if threads == "sweep":
        return sorted({1, min(2, cpus)})
    return [cpus if threads == "cpus" else int(threads)]


def run_impls(name: str, input_for, tmp_path: Path) -> list[tuple[str, str]]:
    """Run every implementation of a task at its test size; return (impl, checksum)."""
    task = task_of(name)
    results: list[tuple[str, str]] = []
    for impl in task["impls"]:
        for lib_key, module in LIBRARIES.items():
            if lib_key in impl["argv"] and impl["name"].startswith("py-"):
                pytest.importorskip(module)
        if impl["argv"][0] == "pypy3" and shutil.which("pypy3") is None:
            continue
        for n in task["sizes"]["test"]:
            for p in thread_counts(impl["threads"]):
                values = {
                    "input": str(input_for(n)) if input_for else "",
                    "iters": "2",
                    "n": str(n),
                    "threads": str(p),
                    "outdir": str(tmp_path),
                }
                argv = host_argv(impl["argv"], impl, values)
                proc = subprocess.run(argv, capture_output=True, timeout=120, check=False)
                assert proc.returncode == 0, (impl["name"], proc.stderr.decode()[-2000:])
                last = proc.stdout.decode().splitlines()[-1]
                record = json.loads(last)
                assert record["schema"] == 1
                assert record["task"] == name
                assert record["impl"] == impl["name"], argv
                assert len(record["iter_ns"]) == 2
                assert record["n"] == n
                results.append((f"{impl['name']} P={p}", record["checksum"]))
    assert not list(tmp_path.iterdir()), "an implementation left a file in --out-dir"
    return results


def test_io_impact_impls(inputs, tmp_path: Path) -> None:
    task = task_of("io_impact")
    (n,) = task["sizes"]["test"]
    for impl, checksum in run_impls("io_impact", lambda n: inputs("sum-squares", n), tmp_path):
        assert checksum == task["reference"][str(n)], impl


def test_io_impact_stdout_carries_the_lines(inputs, tmp_path: Path) -> None:
    path = inputs("sum-squares", 1000)
    want = (np.fromfile(path, dtype="<i8") ** 2).tolist()
    for argv in (
        [sys.executable, PY_BENCH / "io_impact.py", "--impl", "print"],
        [RELEASE / "io_impact", "--impl", "bufwriter"],
    ):
        proc = subprocess.run(
            [*argv, "--input", path, "--iters", "2"], capture_output=True, check=True
        )
        lines = proc.stdout.decode().splitlines()
        assert [int(x) for x in lines[:-1]] == want * 2


def test_file_read_impls(inputs, tmp_path: Path) -> None:
    task = task_of("file_read")
    (n,) = task["sizes"]["test"]
    want = [float(x) for x in task["reference"][str(n)].split()]
    for impl, checksum in run_impls("file_read", lambda n: inputs("file-read", n), tmp_path):
        assert floats_agree(checksum, want, task["checksum"]["rel_tol"]), impl


def test_parallel_impls(inputs, tmp_path: Path) -> None:
    task = task_of("parallel")
    (n,) = task["sizes"]["test"]
    for impl, checksum in run_impls("parallel", lambda n: inputs("sum-squares", n), tmp_path):
        assert checksum == task["reference"][str(n)], impl


def test_concurrency_impls(release_bins: Path, tmp_path: Path) -> None:
    task = task_of("concurrency")
    (n,) = task["sizes"]["test"]
    for impl, checksum in run_impls("concurrency", None, tmp_path):
        assert checksum == task["reference"][str(n)], impl


def test_sum_squares_extra_impls(inputs, tmp_path: Path) -> None:
    task = task_of("sum_squares")
    path = inputs("sum-squares", 10000)
    want = str(int(np.sum(np.fromfile(path, dtype="<i8").astype(object) ** 2)))
    for impl in (i for i in task["impls"] if i["name"] in SUM_SQUARES_EXTRA):
        if impl["name"] == "py-numba":
            pytest.importorskip("numba")
        if impl["argv"][0] == "pypy3" and shutil.which("pypy3") is None:
            continue
        values = {"input": str(path), "iters": "2", "n": "10000", "threads": "1", "outdir": ""}
        argv = host_argv(impl["argv"], impl, values)
        proc = subprocess.run(argv, capture_output=True, check=True, timeout=120)
        record = json.loads(proc.stdout.decode().splitlines()[-1])
        assert record["impl"] == impl["name"]
        assert record["checksum"] == want, impl["name"]
        if impl["name"] == "py-numba":
            assert record["phases_ns"]["jit"] > 0


# --- errors -----------------------------------------------------------------------------------


def assert_one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, proc
    err = proc.stderr.decode()
    assert err.startswith("Error: "), err
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    "argv",
    [
        [sys.executable, str(PY_BENCH / "file_read.py"), "--impl", "csv"],
        [str(RELEASE / "file_read"), "--impl", "bytes"],
        [sys.executable, str(PY_BENCH / "parallel.py"), "--impl", "loop", "--threads", "1"],
        [str(RELEASE / "io_impact"), "--impl", "println"],
    ],
)
def test_missing_input_is_one_error_line(release_bins: Path, tmp_path: Path, argv) -> None:
    proc = subprocess.run(
        [*argv, "--input", str(tmp_path / "missing.bin")], capture_output=True, check=False
    )
    err = assert_one_error_line(proc)
    assert "missing.bin" in err


@pytest.mark.parametrize(
    "argv",
    [
        [sys.executable, str(PY_BENCH / "concurrency.py"), "--impl", "threads"],
        [sys.executable, str(PY_BENCH / "concurrency.py"), "--impl", "asyncio"],
        [str(RELEASE / "concurrency"), "--impl", "tokio"],
    ],
)
def test_port_in_use_is_one_error_line(release_bins: Path, argv) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [*argv, "--concurrency", "2", "--port", str(port)],
            capture_output=True,
            check=False,
            timeout=60,
        )
    err = assert_one_error_line(proc)
    assert str(port) in err
    assert proc.stdout == b""


def test_file_outputs_need_out_dir(release_bins: Path, inputs) -> None:
    path = str(inputs("sum-squares", 1000))
    for argv in (
        [sys.executable, str(PY_BENCH / "io_impact.py"), "--impl", "file-buf"],
        [str(RELEASE / "io_impact"), "--impl", "file-buf"],
    ):
        err = assert_one_error_line(
            subprocess.run([*argv, "--input", path], capture_output=True, check=False)
        )
        assert "--out-dir" in err
