//! concurrency task binary: tokio server and client in one process over loopback TCP.
//!
//! concurrency --impl tokio|tokio-mt --concurrency C [--threads P] [--iters K] [--port N]
//!             [--delay-us D]

use std::time::{Duration, Instant};

use rpb_bench::cli::{self, fail, Opts};
use rpb_bench::concurrency::{self as cc, TASK};
use rpb_bench::report::{ns_since, time_iters, Report};

const USAGE: &str = "\
usage: concurrency --impl tokio|tokio-mt --concurrency C [--threads P] [--iters K] [--port N]
                   [--delay-us D]

Starts a server on 127.0.0.1:N (default 0: any free port) that answers each request `k` with
`2k+1` after D microseconds (default 1000), opens C connections to it (setup), then times K
iterations (default 5) of R = max(1000, 4C) requests, C in flight (one per connection).
  tokio     tokio's current-thread runtime (one thread for server and client)
  tokio-mt  tokio's multi-thread runtime with P worker threads (default: all available)
Checksum: the sum of the answers (R^2).
";

fn main() {
    let args = cli::args();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return;
    }
    let opts = Opts::parse(
        args,
        &[
            "--impl",
            "--concurrency",
            "--threads",
            "--iters",
            "--port",
            "--delay-us",
        ],
        &[],
    )
    .unwrap_or_else(|e| fail(e));
    let imp = opts.required("--impl").unwrap_or_else(|e| fail(e));
    let c: u64 = opts
        .parse_required("--concurrency")
        .unwrap_or_else(|e| fail(e));
    let iters: usize = opts.parse_or("--iters", 5).unwrap_or_else(|e| fail(e));
    let port: u16 = opts.parse_or("--port", 0).unwrap_or_else(|e| fail(e));
    let delay = Duration::from_micros(
        opts.parse_or("--delay-us", 1000)
            .unwrap_or_else(|e| fail(e)),
    );
    if c == 0 || c > 100_000 {
        fail("--concurrency must be between 1 and 100000");
    }
    if iters == 0 {
        fail("--iters must be at least 1");
    }
    let mut builder = match imp {
        "tokio" => {
            if opts.get("--threads").is_some_and(|t| t != "1") {
                fail("--impl tokio runs on one thread; use tokio-mt for more");
            }
            tokio::runtime::Builder::new_current_thread()
        }
        "tokio-mt" => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if let Some(t) = opts.get("--threads") {
                let p: usize = opts.parse_required("--threads").unwrap_or_else(|e| fail(e));
                if p == 0 {
                    fail(format!("--threads must be at least 1, got {t}"));
                }
                b.worker_threads(p);
            }
            b
        }
        _ => fail(format!(
            "unknown --impl {imp:?} (expected tokio or tokio-mt)"
        )),
    };
    let rt = builder
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(format!("cannot start the tokio runtime: {e}")));
    let r = cc::requests(c);

    // Setup: listen, accept-loop task, C connections.
    let t0 = Instant::now();
    let mut conns = rt.block_on(async {
        let listener = cc::listen(port, c as u32).unwrap_or_else(|e| {
            fail(format!(
                "cannot listen on 127.0.0.1:{port}: {e}. Use --port 0 for any free port"
            ))
        });
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| fail(format!("cannot read the listening address: {e}")));
        tokio::spawn(cc::serve(listener, delay));
        let mut conns = Vec::with_capacity(c as usize);
        for _ in 0..c {
            let conn = cc::connect(addr)
                .await
                .unwrap_or_else(|e| fail(format!("client cannot connect to {addr}: {e}")));
            conns.push(conn);
        }
        conns
    });
    let setup_ns = ns_since(t0);

    let mut error = None;
    let (iter_ns, sum) = time_iters(
        iters,
        || match rt.block_on(cc::iteration(&mut conns, r)) {
            Ok(s) => s,
            Err(e) => {
                error.get_or_insert(e);
                0
            }
        },
        |a, b| a == b,
    )
    .unwrap_or_else(|e| fail(format!("checksum mismatch: {e}")));
    if let Some(e) = error {
        fail(format!("request failed: {e}"));
    }
    let report = Report::new(
        TASK,
        &format!("rs-{imp}"),
        c,
        setup_ns,
        iter_ns,
        sum.to_string(),
    );
    report
        .print()
        .unwrap_or_else(|e| fail(format!("cannot write to stdout: {e}")));
    // Exit without tearing down the open connections one by one.
    std::process::exit(0);
}
