//! batch_scoring task binary: logistic-regression scores of N rows x 32 features, written to a
//! file.
//!
//! batch_scoring --impl scalar|rayon --input PATH --out-dir DIR [--iters K] [--threads P]

use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rpb_bench::batch_scoring::{self as bs, TASK};
use rpb_bench::cli::{fail, Opts};
use rpb_bench::pool;
use rpb_bench::report::{ns_since, run_kernel};

const USAGE: &str = "\
usage: batch_scoring --impl scalar|rayon --input PATH --out-dir DIR [--iters K] [--threads P]

Reads PATH (a `datagen batch-scoring` file), then times K iterations (default 5), each scoring
every row and writing the scores (little-endian f64) to DIR/batch_scoring-rs-<impl>.f64.
Checksum: the sum of the scores and the row count. `rayon` scores rows in parallel in a pool of
P threads (default: the CPUs available; its start-up is phases_ns.pool_start).
";

fn write_scores(path: &Path, scores: &[f64]) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    for s in scores {
        w.write_all(&s.to_le_bytes())?;
    }
    w.flush()
}

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
    let opts = Opts::parse(
        args,
        &["--impl", "--input", "--iters", "--threads", "--out-dir"],
        &[],
    )
    .unwrap_or_else(|e| fail(e));
    let imp = opts.required("--impl").unwrap_or_else(|e| fail(e));
    let parallel = match imp {
        "scalar" => false,
        "rayon" => true,
        _ => fail(format!("unknown --impl {imp:?} (expected scalar or rayon)")),
    };
    let input = opts.required("--input").unwrap_or_else(|e| fail(e));
    let out_dir = opts.required("--out-dir").unwrap_or_else(|e| fail(e));
    if !Path::new(out_dir).is_dir() {
        fail(format!("--out-dir {out_dir}: not a directory"));
    }
    let iters: usize = opts.parse_or("--iters", 5).unwrap_or_else(|e| fail(e));
    if iters == 0 {
        fail("--iters must be at least 1");
    }
    // Only the parallel variant has a pool (started before the clocks: phases_ns.pool_start).
    let pool = parallel.then(|| {
        let threads = pool::threads_option(&opts).unwrap_or_else(|e| fail(e));
        pool::start(threads).unwrap_or_else(|e| fail(e))
    });
    let label = format!("rs-{imp}");
    let out: PathBuf = Path::new(out_dir).join(format!("{TASK}-{label}.f64"));

    let t0 = Instant::now();
    let (rows, x) = bs::read(Path::new(input)).unwrap_or_else(|e| fail(e));
    let setup_ns = ns_since(t0);

    let result = run_kernel(TASK, &label, rows as u64, setup_ns, iters, || {
        let mut scores = vec![0.0; rows];
        match &pool {
            Some((pool, _)) => pool.install(|| bs::score_into_par(black_box(&x), &mut scores)),
            None => bs::score_into(black_box(&x), &mut scores),
        }
        write_scores(&out, &scores)
            .unwrap_or_else(|e| fail(format!("cannot write {}: {e}", out.display())));
        bs::checksum(&scores)
    });
    let mut report = result.unwrap_or_else(|e| fail(format!("checksum mismatch: {e}")));
    if let Some((_, pool_ns)) = pool {
        report = report.with_phase("pool_start", pool_ns);
    }
    report
        .print()
        .unwrap_or_else(|e| fail(format!("cannot write to stdout: {e}")));
}
