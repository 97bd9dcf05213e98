"""Adding a kernel task is one place per language (docs/workloads.md, "Adding a task").

The test adds a task, `count_bits` (the number of set bits over the sum_squares values), to a
copy of the tree exactly as a contributor would, then checks each step: the suite loads it, the
Rust build finds its binary without a Dockerfile change, its input generator is one registered
row, and the Python and Rust programs print the same checksum, accepted by the task's rule.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.kinds import KINDS
from harness.suite import DEFAULT_SUITE, load_suite
from tests.conftest import ROOT

RUST_MODULE = """\
//! count_bits kernels (a task added by tests/test_new_task.py).

/// Number of set bits over all values.
pub fn count_bits(values: &[i64]) -> u64 {
    values.iter().map(|v| u64::from(v.count_ones())).sum()
}
"""

RUST_BIN = """\
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use rpb_bench::cli::{fail, Opts};
use rpb_bench::count_bits::count_bits;
use rpb_bench::input::read_i64_le;
use rpb_bench::report::{ns_since, run_kernel};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = Opts::parse(args, &["--input", "--iters"], &[]).unwrap_or_else(|e| fail(e));
    let input = opts.required("--input").unwrap_or_else(|e| fail(e));
    let iters: usize = opts.parse_or("--iters", 5).unwrap_or_else(|e| fail(e));
    let t0 = Instant::now();
    let data = read_i64_le(Path::new(input)).unwrap_or_else(|e| fail(e));
    let setup_ns = ns_since(t0);
    let n = data.len() as u64;
    let report = run_kernel("count_bits", "rs-count", n, setup_ns, iters, || {
        count_bits(black_box(&data))
    })
    .unwrap_or_else(|e| fail(e));
    report.print().unwrap_or_else(|e| fail(e));
}
"""

PYTHON_PROGRAM = '''\
"""count_bits: the number of set bits over N int64 values (pure Python)."""

from array import array

from _kernel import kernel_parser, run_kernel, time_setup


def load(path):
    data = array("q")
    with open(path, "rb") as f:
        data.frombytes(f.read())
    return data


def main():
    args = kernel_parser(__doc__).parse_args()
    data, setup_ns = time_setup(lambda: load(args.input))
    run_kernel(
        "count_bits", "py-count", len(data), setup_ns, iters=args.iters,
        kernel=lambda: sum(x.bit_count() for x in data),
    )


main()
'''

SUITE_BLOCK = """
schema = 2
name = "new-task"
extends = {default}

[tasks.count_bits]
description = "set bits over N int64 values"
kind = "kernel"
baseline = "py-count"
checksum = {{ compare = "integer" }}
input = {{ generator = "count-bits", seed = 42, file = "count_bits/n{{n}}.i64" }}
sizes = {{ test = [1000] }}
reference = {{ "1000" = "{reference}" }}

[[tasks.count_bits.impls]]
name = "py-count"
image = "python"
route = "python"
argv = ["python3", "/opt/rpb/python/count_bits.py", "--input", "{{input}}", "--iters", "{{iters}}"]

[[tasks.count_bits.impls]]
name = "rs-count"
image = "rust"
route = "rust"
argv = ["/opt/rpb/bin/count_bits", "--input", "{{input}}", "--iters", "{{iters}}"]
"""


def _independent_reference(path: Path) -> str:
    """The answer by NumPy, sharing no code with either implementation."""
    import numpy as np

    values = np.fromfile(path, dtype="<i8").astype(np.uint64)
    bits = np.unpackbits(values.view(np.uint8))
    return str(int(bits.sum()))


def test_a_new_kernel_task_is_one_place_per_language(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "rust", tree / "rust", ignore=shutil.ignore_patterns("target*"))
    shutil.copytree(ROOT / "python" / "bench", tree / "python" / "bench")
    bench = tree / "rust" / "bench"

    # Rust: the kernel module (one `pub mod` line) and the program.
    (bench / "src" / "count_bits.rs").write_text(RUST_MODULE)
    lib = bench / "src" / "lib.rs"
    lib.write_text(lib.read_text() + "pub mod count_bits;\n")
    (bench / "src" / "bin" / "count_bits.rs").write_text(RUST_BIN)
    # Input: one registered generator row (this task reads sum_squares-shaped values).
    datagen = bench / "src" / "bin" / "datagen.rs"
    text = datagen.read_text()
    row = '("sum-squares", "--n N --seed S --out PATH", sum_squares)'
    assert text.count(row) == 1, "the generator table is not where docs/workloads.md says"
    datagen.write_text(
        text.replace(row, row + ',\n    ("count-bits", "--n N --seed S --out PATH", sum_squares)')
    )
    # Python: the program.
    (tree / "python" / "bench" / "count_bits.py").write_text(PYTHON_PROGRAM)

    # The image build copies every binary of the package: no Dockerfile names them.
    dockerfile = (ROOT / "docker" / "rust.Dockerfile").read_text()
    assert "target/release/sum_squares" not in dockerfile
    env = {**os.environ, "CARGO_TARGET_DIR": str(ROOT / "rust" / "target")}
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
        cwd=tree / "rust",
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    bins = {
        t["name"]
        for p in json.loads(meta.stdout)["packages"]
        for t in p["targets"]
        if "bin" in t["kind"]
    }
    assert "count_bits" in bins

    build = subprocess.run(
        ["cargo", "build", "-q", "--locked", "-p", "rpb-bench", "--bin", "count_bits",
         "--bin", "datagen"],
        cwd=tree / "rust",
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=1200,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    target = ROOT / "rust" / "target" / "debug"
    data = tmp_path / "n1000.i64"
    gen = subprocess.run(
        [target / "datagen", "count-bits", "--n", "1000", "--seed", "42", "--out", data],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(gen.stdout)["n"] == 1000
    reference = _independent_reference(data)

    # The suite: one block, extending the default suite (its images and profiles).
    suite_file = tmp_path / "new-task.toml"
    suite_file.write_text(
        SUITE_BLOCK.format(default=json.dumps(str(DEFAULT_SUITE)), reference=reference)
    )
    suite = load_suite(suite_file)
    task = suite.tasks["count_bits"]
    [py_case, rs_case] = suite.cases(suite.profiles["quick"])
    kernel = KINDS["kernel"]

    outputs = {
        "rs-count": subprocess.run(
            [target / "count_bits", "--input", data, "--iters", "3"],
            capture_output=True, text=True, check=True,
        ).stdout,
        "py-count": subprocess.run(
            [sys.executable, tree / "python" / "bench" / "count_bits.py", "--input", data,
             "--iters", "3"],
            capture_output=True, text=True, check=True,
        ).stdout,
    }  # fmt: skip
    for case in (py_case, rs_case):
        parsed = kernel.parse({"stdout": outputs[case.impl.name]})  # type: ignore[attr-defined]
        assert len(parsed["iter_ns"]) == 3
        assert case.checksum_agrees(parsed["checksum"]), (case.impl.name, parsed, reference)
    assert task.checksum.describe() == "exact integer"

    added = sorted(
        str(p.relative_to(tree))
        for p in tree.rglob("count_bits*")
        if p.is_file() and "target" not in p.parts
    )
    assert added == [
        "python/bench/count_bits.py",
        "rust/bench/src/bin/count_bits.rs",
        "rust/bench/src/count_bits.rs",
    ]


@pytest.mark.parametrize("path", ["harness/suites/default.toml", "docs/workloads.md"])
def test_the_contributor_steps_name_files_that_exist(path):
    assert (ROOT / path).is_file()
    assert (ROOT / "rust" / "bench" / "src" / "bin" / "datagen.rs").is_file()
    assert (ROOT / "python" / "bench" / "_kernel.py").is_file()
