//! file_read task binary: read, parse and aggregate a CSV per category.
//!
//! file_read --impl csv|bytes --input PATH [--iters K]

use std::path::Path;
use std::time::Instant;

use rpb_bench::cli::{self, fail, Opts};
use rpb_bench::file_read::{self as fr, TASK};
use rpb_bench::report::{ns_since, time_iters, Report};

const USAGE: &str = "\
usage: file_read --impl csv|bytes --input PATH [--iters K]

Each of K iterations (default 5) reads PATH (a CSV id,a,b,c,cat; from the page cache once warm),
parses it and sums count, a, b, c per category:
  csv    the csv crate: a reused ByteRecord deserialised with serde, a HashMap of categories
  bytes  the whole file in one buffer, fields split and numbers parsed by hand
setup_ns is 0 (reading the file is part of each iteration). Checksum: per category in sorted
order, count sum_a sum_b sum_c as shortest round-trip floats.
";

fn main() {
    let args = cli::args();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return;
    }
    let opts =
        Opts::parse(args, &["--impl", "--input", "--iters"], &[]).unwrap_or_else(|e| fail(e));
    let imp = opts.required("--impl").unwrap_or_else(|e| fail(e));
    let kernel: fn(&Path) -> Result<fr::Groups, String> = match imp {
        "csv" => fr::csv_crate,
        "bytes" => fr::bytes,
        _ => fail(format!("unknown --impl {imp:?} (expected csv or bytes)")),
    };
    let input = Path::new(opts.required("--input").unwrap_or_else(|e| fail(e)));
    let iters: usize = opts.parse_or("--iters", 5).unwrap_or_else(|e| fail(e));
    if iters == 0 {
        fail("--iters must be at least 1");
    }
    // Setup only checks that the input can be opened: the read is the kernel's work.
    let t0 = Instant::now();
    if let Err(e) = std::fs::File::open(input) {
        fail(format!("{}: {e}", input.display()));
    }
    let setup_ns = ns_since(t0);

    let mut error: Option<String> = None;
    let (iter_ns, groups) = time_iters(
        iters,
        || {
            kernel(input).unwrap_or_else(|e| {
                error.get_or_insert(e);
                Vec::new()
            })
        },
        |a, b| fr::checksum(a) == fr::checksum(b),
    )
    .unwrap_or_else(|e| fail(format!("checksum mismatch: {e}")));
    if let Some(e) = error {
        fail(e);
    }
    let n = groups.iter().map(|g| g.1.count).sum();
    let report = Report::new(
        TASK,
        &format!("rs-{imp}"),
        n,
        setup_ns,
        iter_ns,
        fr::checksum(&groups),
    );
    report
        .print()
        .unwrap_or_else(|e| fail(format!("cannot write to stdout: {e}")));
}
