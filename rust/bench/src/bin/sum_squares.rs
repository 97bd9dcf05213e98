//! sum_squares task binary.
//!
//! sum_squares --impl scalar|iter|rayon --input PATH [--iters K] [--label NAME]

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use rpb_bench::cli::{fail, Opts};
use rpb_bench::input::read_i64_le;
use rpb_bench::report::{ns_since, run_kernel};
use rpb_bench::sum_squares::{self as ss, TASK};

const USAGE: &str = "\
usage: sum_squares --impl scalar|iter|rayon --input PATH [--iters K] [--label NAME]

Reads PATH (little-endian i64 values), then times K iterations (default 5) of the kernel
and prints one JSON line:
  {\"schema\":1,\"task\":\"sum_squares\",\"impl\":\"rs-<impl>\",\"n\":N,\"setup_ns\":..,\"iter_ns\":[..],\"checksum\":\"..\"}
--label NAME replaces the reported impl name (e.g. rs-native for a target-cpu=native build).
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
    let opts = Opts::parse(args, &["--impl", "--input", "--iters", "--label"], &[])
        .unwrap_or_else(|e| fail(e));
    let imp = opts.required("--impl").unwrap_or_else(|e| fail(e));
    if ss::kernel(imp).is_none() {
        fail(format!(
            "unknown --impl {imp:?} (expected scalar, iter or rayon)"
        ));
    }
    let input = opts.required("--input").unwrap_or_else(|e| fail(e));
    let iters: usize = opts.parse_or("--iters", 5).unwrap_or_else(|e| fail(e));
    if iters == 0 {
        fail("--iters must be at least 1");
    }
    let label = match opts.get("--label") {
        Some("") => fail("--label must not be empty"),
        Some(l) => l.to_string(),
        None => format!("rs-{imp}"),
    };

    if imp == "rayon" {
        // Start the global pool before the clocks: its start-up is neither setup nor kernel
        // (it shows in the process-level wall time).
        black_box(rayon::current_num_threads());
    }

    let t0 = Instant::now();
    let data = read_i64_le(Path::new(input)).unwrap_or_else(|e| fail(e));
    let setup_ns = ns_since(t0);
    let n = data.len() as u64;

    let result = match imp {
        "scalar" => run_kernel(TASK, &label, n, setup_ns, iters, || {
            ss::scalar(black_box(&data))
        }),
        "iter" => run_kernel(TASK, &label, n, setup_ns, iters, || {
            ss::iter(black_box(&data))
        }),
        "rayon" => run_kernel(TASK, &label, n, setup_ns, iters, || {
            ss::rayon(black_box(&data))
        }),
        _ => unreachable!("checked above"),
    };
    let report = result.unwrap_or_else(|e| fail(format!("checksum mismatch: {e}")));
    report
        .print()
        .unwrap_or_else(|e| fail(format!("cannot write to stdout: {e}")));
}
