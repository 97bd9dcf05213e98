//! loadgen: the serving_api load generator's driver. One phase per run; the last stdout line is
//! one JSON object, or one `Error:` line on stderr and exit status 1.
//!
//! ```text
//! loadgen ready    --port P [--timeout-s S]
//! loadgen check    --port P [--seed S] [--count N]
//! loadgen saturate --port P --duration-s D [--connections C]
//! loadgen rate     --port P --rate R --duration-s D [--connections C]
//! ```

mod check;
mod http;
mod oha;
mod reference;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rpb_bench::cli::{fail, Opts};
use serde_json::{json, Value};

const USAGE: &str = "\
usage: loadgen ready    --port P [--timeout-s S]
       loadgen check    --port P [--seed S] [--count N]
       loadgen saturate --port P --duration-s D [--connections C]
       loadgen rate     --port P --rate R --duration-s D [--connections C]
common options: [--host IP (default 127.0.0.1)] [--oha PATH] [--threads T] [--body-seed S]

ready     polls GET /health until it answers 200 (default timeout 30 s).
check     POSTs N seeded rows (default 200, seed 1) to /score and compares each score with the
          reference (relative 1e-12); then POSTs malformed bodies, each must get a 4xx.
saturate  closed loop with oha for D seconds: C connections (default 32), each sending its
          next request as soon as the last one is answered.
rate      open loop with oha for D seconds: R requests/s on a fixed schedule, whatever the
          answers do; each latency counts from the request's scheduled time
          (--latency-correction), C connections (default 32).
Load phases send one seeded row (--body-seed, default 1); oha runs with T tokio threads
(default: the CPUs this process may use). Every phase prints one JSON line last; see
rust/README.md for its fields.
";

const VALUE_OPTS: &[&str] = &[
    "--port",
    "--host",
    "--timeout-s",
    "--seed",
    "--count",
    "--duration-s",
    "--connections",
    "--rate",
    "--oha",
    "--threads",
    "--body-seed",
];

/// Which options each phase takes (beyond --port and --host).
fn phase_opts(phase: &str) -> Option<&'static [&'static str]> {
    Some(match phase {
        "ready" => &["--timeout-s"],
        "check" => &["--seed", "--count", "--timeout-s"],
        "saturate" => &[
            "--duration-s",
            "--connections",
            "--oha",
            "--threads",
            "--body-seed",
        ],
        "rate" => &[
            "--rate",
            "--duration-s",
            "--connections",
            "--oha",
            "--threads",
            "--body-seed",
        ],
        _ => return None,
    })
}

fn run(phase: &str, args: Vec<String>) -> Result<Value, String> {
    let allowed = phase_opts(phase).ok_or_else(|| {
        format!("unknown phase {phase:?} (expected ready, check, saturate or rate)")
    })?;
    let opts = Opts::parse(args.iter().cloned(), VALUE_OPTS, &[])?;
    for name in VALUE_OPTS {
        if opts.get(name).is_some()
            && !["--port", "--host"].contains(name)
            && !allowed.contains(name)
        {
            return Err(format!("{name} is not an option of `loadgen {phase}`"));
        }
    }
    let port: u16 = opts.parse_required("--port")?;
    let host: IpAddr = opts.parse_or("--host", IpAddr::V4(Ipv4Addr::LOCALHOST))?;
    let addr = SocketAddr::new(host, port);
    match phase {
        "ready" => {
            let timeout_s: f64 = opts.parse_or("--timeout-s", 30.0)?;
            if !(timeout_s > 0.0 && timeout_s.is_finite()) {
                return Err("--timeout-s must be a positive number of seconds".into());
            }
            let (waited, attempts) = check::wait_ready(addr, Duration::from_secs_f64(timeout_s))?;
            Ok(json!({
                "schema": 1,
                "phase": "ready",
                "port": port,
                "waited_ns": waited.as_nanos() as u64,
                "attempts": attempts,
            }))
        }
        "check" => {
            let seed: u64 = opts.parse_or("--seed", 1)?;
            let count: u64 = opts.parse_or("--count", 200)?;
            let timeout_s: f64 = opts.parse_or("--timeout-s", 10.0)?;
            if !(timeout_s > 0.0 && timeout_s.is_finite()) {
                return Err("--timeout-s must be a positive number of seconds".into());
            }
            check::check(addr, seed, count, Duration::from_secs_f64(timeout_s))
        }
        _ => {
            let duration_s: f64 = opts.parse_required("--duration-s")?;
            if !(duration_s >= 0.001 && duration_s.is_finite()) {
                return Err(format!(
                    "--duration-s must be a positive number of seconds, got {duration_s}"
                ));
            }
            let rate = if phase == "rate" {
                let r: f64 = opts.parse_required("--rate")?;
                if !(r > 0.0 && r.is_finite()) {
                    return Err(format!("--rate must be a positive number, got {r}"));
                }
                Some(r)
            } else {
                None
            };
            let connections: u64 = opts.parse_or("--connections", 32)?;
            if connections == 0 {
                return Err("--connections must be at least 1".into());
            }
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            let threads: usize = opts.parse_or("--threads", cpus)?;
            if threads == 0 {
                return Err("--threads must be at least 1".into());
            }
            let load = oha::Load {
                addr,
                duration_s,
                connections,
                rate,
                seed: opts.parse_or("--body-seed", 1)?,
            };
            oha::run(&oha::find_oha(opts.get("--oha")), &load, threads)
        }
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string()
                .unwrap_or_else(|a| fail(format!("argument is not UTF-8: {a:?}")))
        })
        .collect();
    if args.is_empty() || args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return;
    }
    if args[0] == "--version" {
        println!("loadgen {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    let phase = args.remove(0);
    let out = run(&phase, args).unwrap_or_else(|e| fail(e));
    println!("{out}");
}
