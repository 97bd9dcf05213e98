//! parallel task binary (strong scaling of a compute-bound reduction).
//!
//! parallel --impl threads|rayon --threads P --input PATH [--iters K]

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use rpb_bench::cli::{self, fail, Opts};
use rpb_bench::input::read_i64_le;
use rpb_bench::parallel::{self as par, TASK};
use rpb_bench::report::{ns_since, run_kernel};

const USAGE: &str = "\
usage: parallel --impl threads|rayon --threads P --input PATH [--iters K]

Reads PATH (little-endian i64 values), then times K iterations (default 5) of the hash-and-sum
kernel over P workers and prints one JSON line (checksum: the sum modulo 2^64, in decimal).
  threads  std::thread::scope, P contiguous chunks (threads are spawned in every iteration)
  rayon    a rayon pool of exactly P threads, built before the clocks (phases_ns.pool_start)
";

fn main() {
    let args = cli::args();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return;
    }
    let opts = Opts::parse(args, &["--impl", "--input", "--iters", "--threads"], &[])
        .unwrap_or_else(|e| fail(e));
    let imp = opts.required("--impl").unwrap_or_else(|e| fail(e));
    if !matches!(imp, "threads" | "rayon") {
        fail(format!(
            "unknown --impl {imp:?} (expected threads or rayon)"
        ));
    }
    let input = opts.required("--input").unwrap_or_else(|e| fail(e));
    let iters: usize = opts.parse_or("--iters", 5).unwrap_or_else(|e| fail(e));
    let threads: usize = opts.parse_required("--threads").unwrap_or_else(|e| fail(e));
    if iters == 0 {
        fail("--iters must be at least 1");
    }
    if threads == 0 {
        fail("--threads must be at least 1");
    }
    let label = format!("rs-{imp}");

    let t0 = Instant::now();
    let data: Vec<u64> = read_i64_le(Path::new(input))
        .unwrap_or_else(|e| fail(e))
        .into_iter()
        .map(|x| x as u64)
        .collect();
    let setup_ns = ns_since(t0);
    let n = data.len() as u64;

    let result = match imp {
        "threads" => run_kernel(TASK, &label, n, setup_ns, iters, || {
            par::scoped_threads(black_box(&data), threads)
        }),
        _ => {
            let t0 = Instant::now();
            let pool = par::rayon_pool(threads).unwrap_or_else(|e| fail(e));
            // Make every worker start before the clocks of the iterations.
            pool.broadcast(|_| ());
            let pool_ns = ns_since(t0);
            run_kernel(TASK, &label, n, setup_ns, iters, || {
                par::rayon(&pool, black_box(&data))
            })
            .map(|r| r.with_phase("pool_start", pool_ns))
        }
    };
    let report = result.unwrap_or_else(|e| fail(format!("checksum mismatch: {e}")));
    report
        .print()
        .unwrap_or_else(|e| fail(format!("cannot write to stdout: {e}")));
}
