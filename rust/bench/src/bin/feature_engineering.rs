//! feature_engineering task binary: z-scores, one-hot, frequency encoding, a joined group mean
//! and a per-group rolling mean.
//!
//! feature_engineering --impl scalar --input PATH [--iters K]

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use rpb_bench::cli::{fail, Opts};
use rpb_bench::feature_engineering::{self as fe, TASK};
use rpb_bench::report::{ns_since, run_kernel};

const USAGE: &str = "\
usage: feature_engineering --impl scalar --input PATH [--iters K]

Reads PATH (a `datagen feature-engineering` file), then times K iterations (default 5) of
building the output columns; the checksum is per output column the sum of absolute values.
";

fn main() {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string()
                .unwrap_or_else(|a| fail(format!("argument is not UTF-8: {a:?}")))
        })
        .collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return;
    }
    let opts =
        Opts::parse(args, &["--impl", "--input", "--iters"], &[]).unwrap_or_else(|e| fail(e));
    let imp = opts.required("--impl").unwrap_or_else(|e| fail(e));
    if imp != "scalar" {
        fail(format!("unknown --impl {imp:?} (expected scalar)"));
    }
    let input = opts.required("--input").unwrap_or_else(|e| fail(e));
    let iters: usize = opts.parse_or("--iters", 5).unwrap_or_else(|e| fail(e));
    if iters == 0 {
        fail("--iters must be at least 1");
    }

    let t0 = Instant::now();
    let table = fe::read(Path::new(input)).unwrap_or_else(|e| fail(e));
    let setup_ns = ns_since(t0);

    let n = table.rows() as u64;
    let report = run_kernel(TASK, "rs-scalar", n, setup_ns, iters, || {
        fe::checksum(&fe::engineer(black_box(&table)))
    })
    .unwrap_or_else(|e| fail(format!("checksum mismatch: {e}")));
    report
        .print()
        .unwrap_or_else(|e| fail(format!("cannot write to stdout: {e}")));
}
