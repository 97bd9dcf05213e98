//! drift task binary: PSI, KS, Wasserstein-1 and Jensen-Shannon per feature.
//!
//! drift --impl scalar|rayon --input PATH [--iters K] [--threads P]

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use rpb_bench::cli::{fail, Opts};
use rpb_bench::drift::{self, Reference, TASK};
use rpb_bench::pool;
use rpb_bench::report::{ns_since, run_kernel};

const USAGE: &str = "\
usage: drift --impl scalar|rayon --input PATH [--iters K] [--threads P]

Reads PATH (a `datagen drift` file), fits the reference once (sort, decile edges, bin
proportions; reported as phases_ns.fit), then times K iterations (default 5) of scoring the
current sample: per feature PSI, KS, W1, JS. `rayon` works on the features in parallel in a pool
of P threads (default: the CPUs available; its start-up is phases_ns.pool_start).
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
    let opts = Opts::parse(args, &["--impl", "--input", "--iters", "--threads"], &[])
        .unwrap_or_else(|e| fail(e));
    let imp = opts.required("--impl").unwrap_or_else(|e| fail(e));
    let parallel = match imp {
        "scalar" => false,
        "rayon" => true,
        _ => fail(format!("unknown --impl {imp:?} (expected scalar or rayon)")),
    };
    let input = opts.required("--input").unwrap_or_else(|e| fail(e));
    let iters: usize = opts.parse_or("--iters", 5).unwrap_or_else(|e| fail(e));
    if iters == 0 {
        fail("--iters must be at least 1");
    }
    // Only the parallel variant has a pool (started before the clocks: phases_ns.pool_start).
    let pool = parallel.then(|| {
        let threads = pool::threads_option(&opts).unwrap_or_else(|e| fail(e));
        pool::start(threads).unwrap_or_else(|e| fail(e))
    });

    let t0 = Instant::now();
    let samples = drift::read(Path::new(input)).unwrap_or_else(|e| fail(e));
    let setup_ns = ns_since(t0);

    let t0 = Instant::now();
    let reference = match &pool {
        Some((pool, _)) => {
            pool.install(|| Reference::fit_par(black_box(&samples.reference), samples.n_ref))
        }
        None => Reference::fit(black_box(&samples.reference), samples.n_ref),
    };
    let fit_ns = ns_since(t0);

    let n = samples.n_ref as u64;
    let label = format!("rs-{imp}");
    let current = &samples.current;
    let result = run_kernel(TASK, &label, n, setup_ns, iters, || {
        let m = match &pool {
            Some((pool, _)) => {
                pool.install(|| reference.score_par(black_box(current), samples.n_cur))
            }
            None => reference.score(black_box(current), samples.n_cur),
        };
        drift::checksum(&m)
    });
    let mut report = result
        .unwrap_or_else(|e| fail(format!("checksum mismatch: {e}")))
        .with_phase("fit", fit_ns);
    if let Some((_, pool_ns)) = pool {
        report = report.with_phase("pool_start", pool_ns);
    }
    report
        .print()
        .unwrap_or_else(|e| fail(format!("cannot write to stdout: {e}")));
}
