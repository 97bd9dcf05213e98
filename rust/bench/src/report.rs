//! The timing loop and the JSON result line every task binary prints last (schema 1):
//!
//! `{"schema":1,"task":"..","impl":"..","n":N,"setup_ns":..,"iter_ns":[..],"checksum":".."}`
//!
//! with an optional `"phases_ns":{"fit":..}` at the end for one-off phases timed apart from setup
//! and iterations (drift's fitting, a pool's start-up).

use std::fmt::Display;
use std::hint::black_box;
use std::io::Write;
use std::time::Instant;

/// The result of one process: what the JSON line carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub task: String,
    pub impl_name: String,
    pub n: u64,
    pub setup_ns: u64,
    pub iter_ns: Vec<u64>,
    pub checksum: String,
    /// One-off phases (name, ns), printed as `phases_ns` when not empty.
    pub phases_ns: Vec<(String, u64)>,
}

fn lit(s: &str) -> String {
    serde_json::to_string(s).expect("serialising a str cannot fail")
}

impl Report {
    /// The JSON line, without the trailing newline. Fields in a fixed order.
    pub fn to_json_line(&self) -> String {
        let iters: Vec<String> = self.iter_ns.iter().map(u64::to_string).collect();
        let phases = if self.phases_ns.is_empty() {
            String::new()
        } else {
            let p: Vec<String> = self
                .phases_ns
                .iter()
                .map(|(name, ns)| format!("{}:{ns}", lit(name)))
                .collect();
            format!(",\"phases_ns\":{{{}}}", p.join(","))
        };
        format!(
            "{{\"schema\":1,\"task\":{},\"impl\":{},\"n\":{},\"setup_ns\":{},\"iter_ns\":[{}],\"checksum\":{}{phases}}}",
            lit(&self.task),
            lit(&self.impl_name),
            self.n,
            self.setup_ns,
            iters.join(","),
            lit(&self.checksum)
        )
    }

    /// Adds a one-off phase (e.g. `fit`) to the report.
    pub fn with_phase(mut self, name: &str, ns: u64) -> Report {
        self.phases_ns.push((name.to_string(), ns));
        self
    }

    /// Prints the line on stdout and flushes.
    pub fn print(&self) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", self.to_json_line())?;
        out.flush()
    }
}

/// Nanoseconds since `t0`.
pub fn ns_since(t0: Instant) -> u64 {
    t0.elapsed().as_nanos() as u64
}

/// Times `f` `iters` times (each call alone between two `Instant::now()`), consuming each result
/// with `black_box`. Every result must agree with the first according to `same`; returns the
/// per-iteration times and the first result.
pub fn time_iters<T>(
    iters: usize,
    mut f: impl FnMut() -> T,
    same: impl Fn(&T, &T) -> bool,
) -> Result<(Vec<u64>, T), String> {
    if iters == 0 {
        return Err("--iters must be at least 1".into());
    }
    let mut times = Vec::with_capacity(iters);
    let mut first: Option<T> = None;
    for i in 0..iters {
        let t0 = Instant::now();
        let r = black_box(f());
        times.push(ns_since(t0));
        match &first {
            None => first = Some(r),
            Some(f0) if same(f0, &r) => {}
            Some(_) => {
                return Err(format!(
                    "iteration {i} gave a different result than iteration 0"
                ))
            }
        }
    }
    Ok((times, first.expect("at least one iteration")))
}

/// Runs the timed iterations of a kernel with an exact result (integer checksums) and builds
/// the report; the checksum is the result's `Display`.
pub fn run_kernel<T: Display + PartialEq>(
    task: &str,
    impl_name: &str,
    n: u64,
    setup_ns: u64,
    iters: usize,
    f: impl FnMut() -> T,
) -> Result<Report, String> {
    let (iter_ns, result) = time_iters(iters, f, |a, b| a == b)?;
    Ok(Report {
        task: task.to_string(),
        impl_name: impl_name.to_string(),
        n,
        setup_ns,
        iter_ns,
        checksum: result.to_string(),
        phases_ns: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn json_line_shape() {
        let r = Report {
            task: "sum_squares".into(),
            impl_name: "rs-\"odd\"".into(),
            n: 3,
            setup_ns: 10,
            iter_ns: vec![1, 2, 3],
            checksum: "14".into(),
            phases_ns: Vec::new(),
        };
        let line = r.to_json_line();
        assert!(line.starts_with(r#"{"schema":1,"task":"sum_squares","impl":"rs-\"odd\"","n":3,"#));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["iter_ns"], serde_json::json!([1, 2, 3]));
        assert_eq!(v["checksum"], "14");
        assert_eq!(v["impl"], "rs-\"odd\"");
        assert!(v.get("phases_ns").is_none());
        let v: Value = serde_json::from_str(&r.with_phase("fit", 99).to_json_line()).unwrap();
        assert_eq!(v["phases_ns"], serde_json::json!({"fit": 99}));
    }

    #[test]
    fn run_kernel_times_each_iteration() {
        let r = run_kernel("t", "rs-x", 5, 7, 4, || 42i64).unwrap();
        assert_eq!(r.iter_ns.len(), 4);
        assert_eq!(r.checksum, "42");
        assert_eq!(r.setup_ns, 7);
    }

    #[test]
    fn run_kernel_rejects_disagreeing_iterations() {
        let mut k = 0;
        let e = run_kernel("t", "rs-x", 5, 7, 3, || {
            k += 1;
            k / 2
        })
        .unwrap_err();
        assert!(e.contains("iteration"), "{e}");
        assert!(run_kernel("t", "rs-x", 5, 7, 0, || 1).is_err());
    }
}
