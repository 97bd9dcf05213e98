"""The benchmark programs of ffi, feature_engineering, drift and batch_scoring, and the PyO3
module rpb_native, run on the host against the suite file.

Inputs come from the Rust ``datagen`` (built once per module). The tasks are read from the
suite file. Every reference value is recomputed here with NumPy/SciPy code that shares nothing
with the implementations; every implementation is then run through the suite's own argv (image
paths mapped to this checkout) on the test size and must print a checksum that agrees with the
reference under the task's tolerance. Drift's metrics are checked against SciPy and batch
scores against NumPy within 1e-12 relative. The PyO3 implementations need ``maturin`` (the
module is built into a temporary folder, not installed); without it they are skipped. Sizes
only in the sweep profile are checked when RPB_CHECK_SWEEP_REFERENCES=1 (slow: inputs of up to
256 MB).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
RUST = ROOT / "rust"
RELEASE = RUST / "target" / "release"
SUITE = ROOT / "harness" / "suites" / "default.toml"
PY_BENCH = ROOT / "python" / "bench"
CHECK_SWEEP = os.environ.get("RPB_CHECK_SWEEP_REFERENCES") == "1"
TASKS = ["ffi", "feature_engineering", "drift", "batch_scoring"]
LIBS = {"numpy": "numpy", "pandas": "pandas", "polars": "polars", "scipy": "scipy"}


def task_of(name: str) -> dict:
    """The task from the suite file."""
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
        ["cargo", "build", "--release", "--locked", "-q", "-p", "rpb-bench"], cwd=RUST, check=True
    )
    return RELEASE


@pytest.fixture(scope="module")
def inputs(release_bins: Path, tmp_path_factory: pytest.TempPathFactory):
    """A function (generator, n) -> path of a generated input, cached for the module."""
    folder = tmp_path_factory.mktemp("inputs")
    made: dict[tuple[str, int], Path] = {}

    def get(generator: str, n: int, seed: int = 42) -> Path:
        if (generator, n) not in made:
            path = folder / f"{generator}-n{n}"
            cmd = [release_bins / "datagen", generator, "--n", str(n), "--seed", str(seed)]
            subprocess.run([*cmd, "--out", path], check=True, capture_output=True)
            made[generator, n] = path
        return made[generator, n]

    return get


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """A folder holding rpb_native for this interpreter (maturin build, wheel unpacked); None
    when maturin is missing."""
    maturin = shutil.which("maturin")
    if maturin is None:
        return None
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [maturin, "build", "--release", "--locked", "-q", "-i", sys.executable, "-o", wheels],
        cwd=RUST / "pyext",
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("rpb_native-*.whl")
    folder = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(folder)
    return folder


# --- independent references ------------------------------------------------------------------


def header(path: Path, fields: int) -> tuple[bytes, list[int]]:
    raw = np.fromfile(path, dtype=np.uint8, count=8 + 8 * fields)
    return raw[:8].tobytes(), raw[8:].view("<u8").tolist()


def ref_ffi(path: Path) -> str:
    """Exact sum of squares with Python integers."""
    values = np.fromfile(path, dtype="<i8").tolist()
    return str(sum(v * v for v in values))


def ref_feature_engineering(path: Path) -> list[float]:
    """NumPy only: np.unique for the categories, bincount for group means, a lexsort and
    cumulative sums for the rolling window; exactly rounded column sums (math.fsum)."""
    magic, (n,) = header(path, 1)
    assert magic == b"RPBFEAT1"
    cols = np.fromfile(path, dtype="<f8", offset=16).reshape(8, n)
    x, ints = cols[:4], cols[4:].view("<i8")
    cat_low, cat_high, grp, t = ints
    out = [(v - v.mean()) / v.std(ddof=1) for v in x]
    out += [(cat_low == level).astype(float) for level in np.unique(cat_low)]
    _, inv, counts = np.unique(cat_high, return_inverse=True, return_counts=True)
    out.append(counts[inv] / n)
    _, ginv = np.unique(grp, return_inverse=True)
    out.append((np.bincount(ginv, weights=x[0]) / np.bincount(ginv))[ginv])
    order = np.lexsort((t, grp))
    g_sorted, v_sorted = grp[order], x[1][order]
    pos = np.arange(n)
    first = np.r_[0, np.flatnonzero(np.diff(g_sorted)) + 1]
    group_start = first[np.searchsorted(first, pos, side="right") - 1]
    start = np.maximum(group_start, pos - 4)
    cs = np.r_[0.0, np.cumsum(v_sorted)]
    roll = np.empty(n)
    roll[order] = (cs[pos + 1] - cs[start]) / (pos + 1 - start)
    out.append(roll)
    return [math.fsum(np.abs(c).tolist()) for c in out]


def drift_samples(path: Path) -> tuple[np.ndarray, np.ndarray]:
    magic, (f, n_ref, n_cur) = header(path, 3)
    assert magic == b"RPBDRIFT"
    body = np.fromfile(path, dtype="<f8", offset=32)
    return body[: f * n_ref].reshape(f, n_ref), body[f * n_ref :].reshape(f, n_cur)


def ref_drift(path: Path) -> list[float]:
    """SciPy's KS, Wasserstein-1 and Jensen-Shannon; np.quantile + np.digitize bins."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import ks_2samp, wasserstein_distance

    ref, cur = drift_samples(path)
    out: list[float] = []
    for a, b in zip(ref, cur, strict=True):
        edges = np.quantile(a, np.arange(1, 10) / 10)
        p = np.bincount(np.digitize(a, edges), minlength=10) / len(a)
        q = np.bincount(np.digitize(b, edges), minlength=10) / len(b)
        pf, qf = np.where(p > 0, p, 1e-4), np.where(q > 0, q, 1e-4)
        out += [
            float(np.sum((qf - pf) * np.log(qf / pf))),
            float(ks_2samp(a, b).statistic),
            float(wasserstein_distance(a, b)),
            float(jensenshannon(p, q)),
        ]
    return out


def batch_matrix(path: Path) -> np.ndarray:
    magic, (n, d) = header(path, 2)
    assert magic == b"RPBSCORE"
    return np.fromfile(path, dtype="<f8", offset=24).reshape(n, d)


def ref_batch_scores(path: Path) -> np.ndarray:
    x = batch_matrix(path)
    w = np.sin(np.arange(1, x.shape[1] + 1))
    return 1.0 / (1.0 + np.exp(-(np.einsum("ij,j->i", x, w) + 0.1)))


def ref_batch_scoring(path: Path) -> list[float]:
    s = ref_batch_scores(path)
    return [math.fsum(s.tolist()), float(len(s))]


REFERENCES = {
    "ffi": ref_ffi,
    "feature_engineering": ref_feature_engineering,
    "drift": ref_drift,
    "batch_scoring": ref_batch_scoring,
}


def floats_agree(got: str, want: list[float], rel_tol: float) -> bool:
    values = [float(v) for v in got.split()]
    return len(values) == len(want) and all(
        math.isclose(a, b, rel_tol=rel_tol, abs_tol=0.0) for a, b in zip(values, want, strict=True)
    )


def assert_checksum(task: dict, got: str, want: str | list[float], rel_tol: float | None = None):
    if task["checksum"]["compare"] == "integer":
        assert got == want
    else:
        tol = rel_tol if rel_tol is not None else task["checksum"]["rel_tol"]
        assert isinstance(want, list)
        assert floats_agree(got, want, tol), f"{got}\n!=\n{want}"


@pytest.mark.parametrize("name", TASKS)
def test_references(inputs, name: str) -> None:
    """The suite's fixed references equal the independent computation."""
    if name == "drift":
        pytest.importorskip("scipy")
    task = task_of(name)
    for n in sizes_to_check(task):
        path = inputs(task["input"]["generator"], n, task["input"]["seed"])
        want = REFERENCES[name](path)
        assert_checksum(task, task["reference"][str(n)], want)


@pytest.mark.parametrize("name", TASKS)
def test_every_size_has_a_reference(name: str) -> None:
    task = task_of(name)
    sizes = {n for profile in task["sizes"].values() for n in profile}
    assert {str(n) for n in sizes} == set(task["reference"])
    assert len(task["sizes"]["sweep"]) >= 3
    assert max(task["sizes"]["sweep"]) >= 100 * min(task["sizes"]["sweep"])


def host_argv(argv: list[str], values: dict[str, str]) -> list[str]:
    """The suite's argv with image paths mapped to this checkout and placeholders filled."""
    out = []
    for arg in argv:
        if arg == "python3":
            out.append(sys.executable)
        elif arg == "pypy3":
            out.append(shutil.which("pypy3") or arg)
        elif arg.startswith("/opt/rpb/python/"):
            out.append(str(PY_BENCH / arg.removeprefix("/opt/rpb/python/")))
        elif arg.startswith("/opt/rpb/bin/"):
            out.append(str(RELEASE / arg.removeprefix("/opt/rpb/bin/")))
        else:
            out.append(arg.format(**values))
    return out


def run_impl(impl: dict, values: dict[str, str], native: Path | None) -> dict:
    """Run one implementation; skip it (pytest.skip) when its library is absent."""
    argv = impl["argv"]
    lib = argv[argv.index("--impl") + 1] if "--impl" in argv else ""
    if impl["route"] == "rust-from-python" and "subprocess" not in lib and native is None:
        pytest.skip("maturin is not installed: cannot build rpb_native (pip install maturin)")
    if lib in LIBS:
        pytest.importorskip(LIBS[lib])
    if argv[0] == "pypy3" and shutil.which("pypy3") is None:
        pytest.skip("pypy3 is not on PATH")
    env = dict(os.environ)
    if native is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(native), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        host_argv(argv, values), capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert proc.returncode == 0, (impl["name"], proc.stderr)
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    assert record["impl"] == impl["name"]
    assert record["schema"] == 1
    assert len(record["iter_ns"]) == int(values["iters"])
    return record


def impl_cases() -> list[tuple[str, str]]:
    return [(name, impl["name"]) for name in TASKS for impl in task_of(name)["impls"]]


@pytest.mark.parametrize(("name", "impl_name"), impl_cases())
def test_impl_agrees_on_the_test_size(
    inputs, native, tmp_path: Path, name: str, impl_name: str
) -> None:
    task = task_of(name)
    (impl,) = [i for i in task["impls"] if i["name"] == impl_name]
    (n,) = task["sizes"]["test"]
    path = inputs(task["input"]["generator"], n, task["input"]["seed"])
    values = {
        "input": str(path),
        "iters": "2",
        "n": str(n),
        "threads": "2",
        "outdir": str(tmp_path),
    }
    record = run_impl(impl, values, native)
    assert record["n"] == n
    want: str | list[float] = task["reference"][str(n)]
    if task["checksum"]["compare"] == "floats":
        want = [float(v) for v in str(want).split()]
    assert_checksum(task, record["checksum"], want)
    if name == "drift":
        # Against SciPy itself (KS, W1, JS) on the host: 1e-12 relative.
        pytest.importorskip("scipy")
        got = [float(v) for v in record["checksum"].split()]
        assert floats_agree(record["checksum"], ref_drift(path), 1e-12), got
        assert record["phases_ns"]["fit"] > 0
    if name == "batch_scoring":
        (written,) = tmp_path.glob(f"batch_scoring-{impl_name}.f64")
        scores = np.fromfile(written, dtype="<f8")
        want_scores = ref_batch_scores(path)
        np.testing.assert_allclose(scores, want_scores, rtol=1e-12, atol=0)


def test_drift_checks_scipy_on_its_own_edge_cases(native: Path | None) -> None:
    """Ties and unequal sizes: the Rust kernels (via rpb_native) against SciPy, 1e-12."""
    if native is None:
        pytest.skip("maturin is not installed: cannot build rpb_native (pip install maturin)")
    pytest.importorskip("scipy")
    from scipy.stats import ks_2samp, wasserstein_distance

    sys.path.insert(0, str(native))
    try:
        import rpb_native
    finally:
        sys.path.remove(str(native))
    rng = np.random.default_rng(5)
    ref = np.round(rng.normal(size=(3, 301)), 1)  # many ties
    cur = np.round(rng.normal(0.2, 1.3, size=(3, 77)), 1)
    got = rpb_native.DriftReference(ref).score(cur)
    for k in range(3):
        assert math.isclose(got[k, 1], ks_2samp(ref[k], cur[k]).statistic, rel_tol=1e-12)
        assert math.isclose(got[k, 2], wasserstein_distance(ref[k], cur[k]), rel_tol=1e-12)


def test_pyo3_rejects_bad_arrays(native: Path | None) -> None:
    """Wrong dtype, shape or a non-contiguous view: a Python exception with a clear message."""
    if native is None:
        pytest.skip("maturin is not installed: cannot build rpb_native (pip install maturin)")
    sys.path.insert(0, str(native))
    try:
        import rpb_native
    finally:
        sys.path.remove(str(native))
    a = np.arange(10, dtype=np.int64)
    assert rpb_native.sum_squares(a) == 285
    assert rpb_native.add(2, 3) == 5
    assert rpb_native.noop() is None
    with pytest.raises(TypeError, match="1-D numpy array of int64, got an array of dtype float64"):
        rpb_native.sum_squares(a.astype(np.float64))
    with pytest.raises(TypeError, match="got an object of type list"):
        rpb_native.sum_squares([1, 2, 3])
    with pytest.raises(ValueError, match="C-contiguous"):
        rpb_native.sum_squares(a[::2])
    with pytest.raises(OverflowError):
        rpb_native.add(2**63 - 1, 1)
    x = np.random.default_rng(1).normal(size=(7, 32))
    np.testing.assert_allclose(
        rpb_native.batch_scores(x),
        1 / (1 + np.exp(-(x @ np.sin(np.arange(1, 33)) + 0.1))),
        rtol=1e-12,
    )
    assert rpb_native.logistic_score(x[3].tolist()) == rpb_native.batch_scores(x)[3]
    with pytest.raises(ValueError, match="C-contiguous"):
        rpb_native.batch_scores(np.asfortranarray(x))
    with pytest.raises(TypeError, match="float64"):
        rpb_native.batch_scores(x.astype(np.float32))
    with pytest.raises(ValueError, match="32 columns"):
        rpb_native.batch_scores(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="32 values"):
        rpb_native.logistic_score([1.0])
    with pytest.raises(ValueError, match="C-contiguous"):
        rpb_native.DriftReference(np.zeros((4, 3)).T)
    with pytest.raises(ValueError, match="shape"):
        rpb_native.DriftReference(np.ones((2, 5))).score(np.ones((3, 5)))


def assert_one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: "), lines
    return lines[0]


@pytest.mark.parametrize("name", TASKS)
def test_missing_input_is_one_error_line(release_bins: Path, tmp_path: Path, name: str) -> None:
    """Every implementation of the task (first of each program) on a missing input."""
    seen: set[str] = set()
    for impl in task_of(name)["impls"]:
        program = impl["argv"][1] if impl["argv"][0] == "python3" else impl["argv"][0]
        if program in seen or impl["route"] in ("rust-from-python", "pypy"):
            continue
        seen.add(program)
        values = {"input": str(tmp_path / "missing.bin"), "iters": "1", "n": "1"}
        values |= {"threads": "1", "outdir": str(tmp_path)}
        proc = subprocess.run(
            host_argv(impl["argv"], values), capture_output=True, text=True, check=False
        )
        assert "missing.bin" in assert_one_error_line(proc)


def test_failing_subprocess_binary_is_one_error_line(inputs, tmp_path: Path) -> None:
    path = inputs("sum-squares", 10)
    for binary, why in [("/bin/false", "exited with status 1"), (tmp_path / "nope", "cannot run")]:
        argv = [sys.executable, PY_BENCH / "ffi.py", "--impl", "subprocess", "--bin", binary]
        proc = subprocess.run(
            [*map(str, argv), "--input", str(path)], capture_output=True, text=True, check=False
        )
        assert why in assert_one_error_line(proc)


def test_ffi_pipe_rejects_a_partial_value(release_bins: Path) -> None:
    proc = subprocess.run(
        [release_bins / "ffi_pipe"], input=b"123", capture_output=True, check=False
    )
    assert proc.returncode == 1
    assert proc.stderr.decode().startswith("Error: stdin has 3 bytes")
