//! `runner`: the measuring runner of docs/methodology.md section 1.
//!
//! Runs a command W+N times and prints one JSON line per run with wall time (monotonic clock
//! around spawn and `wait4`), the child's own user/system CPU time and peak RSS, its exit status
//! and a bounded capture of its output. Built as a static binary and copied into every image.

mod args;
mod json;
mod run;

use std::process::exit;

fn main() {
    let parsed = args::parse(std::env::args_os().skip(1));
    let cfg = match parsed {
        Ok(args::Parsed::Run(cfg)) => cfg,
        Ok(args::Parsed::Help) => {
            print!("{}", args::USAGE);
            exit(0);
        }
        Ok(args::Parsed::Version) => {
            println!("runner {}", env!("CARGO_PKG_VERSION"));
            exit(0);
        }
        Err(msg) => {
            eprintln!("runner: {msg}");
            eprintln!("usage: runner [--runs N] [--warmup W] [--timeout-s SECONDS] [--no-env-pad] [--stdout-limit BYTES] -- CMD [ARGS...]  (see --help)");
            exit(2);
        }
    };
    let code = run::run_all(&cfg, &mut std::io::stdout().lock());
    exit(code);
}
