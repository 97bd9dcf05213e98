//! The load phases: oha run as a child process, its JSON summary turned into our JSON line,
//! with the child's CPU time (so a report can show the generator was not the bottleneck).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::reference::{body, Rng};

/// What a load phase asks of oha.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    pub addr: SocketAddr,
    pub duration_s: f64,
    pub connections: u64,
    /// `None`: closed loop (saturation); `Some(r)`: open loop at r requests/s.
    pub rate: Option<f64>,
    /// Seed of the one request row every load request carries.
    pub seed: u64,
}

/// oha's arguments for a phase (without the program name).
///
/// Closed loop: `-c C` connections each send the next request as soon as the last answered.
/// Open loop: `-q R` schedules request i at `start + i/R` whatever the answers do, and
/// `--latency-correction` measures each latency from that scheduled time, so a request that
/// waited for a busy connection is charged its wait (coordinated omission, as wrk2 corrects).
pub fn oha_args(load: &Load) -> Vec<String> {
    let row = Rng::new(load.seed).row();
    let mut args: Vec<String> = [
        "--no-tui",
        "--output-format",
        "json",
        "--no-color",
        "-z",
        // Milliseconds: oha's duration parser takes no fractions ("2.5s").
        &format!("{}ms", (load.duration_s * 1000.0).round() as u64),
        "-c",
        &load.connections.to_string(),
        "-m",
        "POST",
        "-T",
        "application/json",
        "-d",
        &body(&row),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(rate) = load.rate {
        args.extend([
            "-q".to_string(),
            rate.to_string(),
            "--latency-correction".into(),
        ]);
    }
    args.push(format!("http://{}/score", load.addr));
    args
}

/// CPU time and peak RSS of the waited-for children of this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChildUsage {
    pub user_ns: u64,
    pub sys_ns: u64,
    pub maxrss_kb: u64,
}

fn children_usage() -> ChildUsage {
    // SAFETY: getrusage only writes the struct we hand it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    if rc != 0 {
        return ChildUsage::default();
    }
    let ns = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1_000;
    ChildUsage {
        user_ns: ns(ru.ru_utime),
        sys_ns: ns(ru.ru_stime),
        maxrss_kb: ru.ru_maxrss as u64,
    }
}

/// The oha binary: `--oha PATH`, else `oha` beside this executable, else `oha` on PATH.
pub fn find_oha(explicit: Option<&str>) -> PathBuf {
    if let Some(p) = explicit {
        return PathBuf::from(p);
    }
    if let Some(beside) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("oha")))
        .filter(|p| p.is_file())
    {
        return beside;
    }
    PathBuf::from("oha")
}

fn spawn_error(oha: &Path, e: std::io::Error) -> String {
    format!(
        "cannot run {} ({e}). Install oha or pass --oha PATH",
        oha.display()
    )
}

/// `oha --version` -> "1.15.0".
pub fn oha_version(oha: &Path) -> Result<String, String> {
    let out = Command::new(oha)
        .arg("--version")
        .output()
        .map_err(|e| spawn_error(oha, e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .split_whitespace()
        .last()
        .unwrap_or("unknown")
        .to_string())
}

/// Runs oha for one phase and returns our JSON line's object.
pub fn run(oha: &Path, load: &Load, threads: usize) -> Result<Value, String> {
    let version = oha_version(oha)?;
    let before = children_usage();
    let t0 = Instant::now();
    let out = Command::new(oha)
        .args(oha_args(load))
        // oha sizes its tokio pool by physical cores of the machine, not of our cpuset.
        .env("TOKIO_WORKER_THREADS", threads.to_string())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error(oha, e))?;
    let wall_ns = t0.elapsed().as_nanos() as u64;
    let after = children_usage();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(3).collect();
        return Err(format!(
            "oha failed ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ));
    }
    let report: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!("cannot parse oha's JSON output ({e}); is it oha 1.x with --output-format json?")
    })?;
    let usage = ChildUsage {
        user_ns: after.user_ns.saturating_sub(before.user_ns),
        sys_ns: after.sys_ns.saturating_sub(before.sys_ns),
        maxrss_kb: after.maxrss_kb,
    };
    summarise(&report, load, &version, usage, wall_ns, threads)
}

/// The text "Deadline" errors of oha: requests in flight when `-z` ran out, not server errors.
fn is_deadline(kind: &str) -> bool {
    kind.to_ascii_lowercase().contains("deadline")
}

fn ns(seconds: Option<f64>) -> Value {
    match seconds {
        Some(s) if s.is_finite() => json!((s * 1e9).round() as u64),
        _ => Value::Null,
    }
}

/// Turns oha's JSON summary into our phase object.
pub fn summarise(
    report: &Value,
    load: &Load,
    version: &str,
    usage: ChildUsage,
    wall_ns: u64,
    threads: usize,
) -> Result<Value, String> {
    let missing = |what: &str| format!("oha's JSON output has no {what}");
    let summary = report.get("summary").ok_or_else(|| missing("summary"))?;
    let elapsed_s = summary
        .get("total")
        .and_then(Value::as_f64)
        .ok_or_else(|| missing("summary.total"))?;
    let mut status = BTreeMap::new();
    let (mut ok, mut bad_status) = (0u64, 0u64);
    if let Some(dist) = report
        .get("statusCodeDistribution")
        .and_then(Value::as_object)
    {
        for (code, n) in dist {
            let n = n.as_u64().unwrap_or(0);
            if code.starts_with('2') {
                ok += n;
            } else {
                bad_status += n;
            }
            status.insert(code.clone(), n);
        }
    }
    let (mut transport_errors, mut aborted) = (0u64, 0u64);
    let mut error_kinds = Map::new();
    if let Some(dist) = report.get("errorDistribution").and_then(Value::as_object) {
        for (kind, n) in dist {
            let n = n.as_u64().unwrap_or(0);
            if is_deadline(kind) {
                aborted += n;
            } else {
                transport_errors += n;
                error_kinds.insert(kind.clone(), json!(n));
            }
        }
    }
    let pct = report.get("latencyPercentiles");
    let p = |key: &str| ns(pct.and_then(|m| m.get(key)).and_then(Value::as_f64));
    let s = |key: &str| ns(summary.get(key).and_then(Value::as_f64));
    let latency = json!({
        "min": s("fastest"),
        "mean": s("average"),
        "p50": p("p50"),
        "p90": p("p90"),
        "p99": p("p99"),
        "p999": p("p99.9"),
        "p9999": p("p99.99"),
        "max": s("slowest"),
    });
    let completed = ok + bad_status;
    let cpu_ns = usage.user_ns + usage.sys_ns;
    let cpu_share = if wall_ns > 0 {
        cpu_ns as f64 / wall_ns as f64 / threads.max(1) as f64
    } else {
        0.0
    };
    let mut out = json!({
        "schema": 1,
        "phase": if load.rate.is_some() { "rate" } else { "saturate" },
        "tool": "oha",
        "tool_version": version,
        "duration_s": load.duration_s,
        "connections": load.connections,
        "target_rate": load.rate,
        "duration_ns": (elapsed_s * 1e9).round() as u64,
        "requests": completed,
        "ok": ok,
        "errors": bad_status + transport_errors,
        "aborted_at_deadline": aborted,
        "rps": if elapsed_s > 0.0 { ok as f64 / elapsed_s } else { 0.0 },
        "cpu_ns": cpu_ns,
        "latency_ns": latency,
        "status": status,
        "error_kinds": error_kinds,
        "loadgen": {
            "threads": threads,
            "wall_ns": wall_ns,
            "user_ns": usage.user_ns,
            "sys_ns": usage.sys_ns,
            "maxrss_kb": usage.maxrss_kb,
            "cpu_share": cpu_share,
        },
    });
    if let Some(rate) = load.rate {
        // Requests the schedule asked for; any shortfall (queued at the deadline, or aborted)
        // means the server did not keep up and the latencies describe an overload.
        let scheduled = (rate * load.duration_s).floor() as u64;
        out["scheduled"] = json!(scheduled);
        out["achieved_fraction"] = json!(if scheduled > 0 {
            completed as f64 / scheduled as f64
        } else {
            0.0
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(rate: Option<f64>) -> Load {
        Load {
            addr: "127.0.0.1:8080".parse().unwrap(),
            duration_s: 10.0,
            connections: 16,
            rate,
            seed: 1,
        }
    }

    #[test]
    fn args_open_and_closed_loop() {
        let closed = oha_args(&load(None));
        assert!(!closed.contains(&"-q".to_string()));
        assert!(!closed.contains(&"--latency-correction".to_string()));
        assert_eq!(closed.last().unwrap(), "http://127.0.0.1:8080/score");
        let open = oha_args(&load(Some(2500.0)));
        let q = open.iter().position(|a| a == "-q").unwrap();
        assert_eq!(open[q + 1], "2500");
        assert!(open.contains(&"--latency-correction".to_string()));
        let z = open.iter().position(|a| a == "-z").unwrap();
        assert_eq!(open[z + 1], "10000ms");
        let short = oha_args(&Load {
            duration_s: 2.5,
            ..load(None)
        });
        assert!(short.contains(&"2500ms".to_string()));
    }

    #[test]
    fn summary_of_an_oha_report() {
        let report = json!({
            "summary": {"successRate": 1.0, "total": 10.0, "slowest": 0.004, "fastest": 0.0001,
                        "average": 0.0005, "requestsPerSec": 2000.0},
            "latencyPercentiles": {"p10": 0.0002, "p50": 0.0004, "p90": 0.0008, "p99": 0.002,
                                   "p99.9": 0.003, "p99.99": 0.004},
            "statusCodeDistribution": {"200": 19990, "500": 2},
            "errorDistribution": {"aborted due to deadline": 8, "connection closed": 1},
        });
        let usage = ChildUsage {
            user_ns: 1_000_000_000,
            sys_ns: 500_000_000,
            maxrss_kb: 9000,
        };
        let v = summarise(
            &report,
            &load(Some(2000.0)),
            "1.15.0",
            usage,
            10_000_000_000,
            1,
        )
        .unwrap();
        assert_eq!(v["phase"], "rate");
        assert_eq!(v["ok"], 19990);
        assert_eq!(v["errors"], 3);
        assert_eq!(v["aborted_at_deadline"], 8);
        assert_eq!(v["scheduled"], 20000);
        assert_eq!(v["latency_ns"]["p999"], 3_000_000);
        assert_eq!(v["latency_ns"]["p50"], 400_000);
        assert_eq!(v["rps"], 1999.0);
        assert_eq!(v["requests"], 19992);
        assert_eq!(v["duration_ns"], 10_000_000_000u64);
        assert_eq!(v["cpu_ns"], 1_500_000_000u64);
        assert_eq!(v["loadgen"]["cpu_share"], 0.15);
    }

    #[test]
    fn a_report_without_summary_is_an_error() {
        let e = summarise(&json!({}), &load(None), "x", ChildUsage::default(), 1, 1).unwrap_err();
        assert!(e.contains("summary"), "{e}");
    }
}
