//! The timing loop and the JSON result line every task binary prints last (schema 1):
//!
//! `{"schema":1,"task":"..","impl":"..","n":N,"setup_ns":..,"iter_ns":[..],"checksum":".."}`
//!
//! plus `"phases_ns":{"name":ns,..}` at the end when the task timed one-off phases (e.g. a model
//! fit before the timed iterations), names in sorted order.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::hint::black_box;
use std::io::Write;
use std::time::Instant;

use serde::Serialize;

/// Version of the JSON line's format (the `schema` field).
pub const SCHEMA: u32 = 1;

/// The result of one process: what the JSON line carries. Fields are serialised in this order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub task: String,
    #[serde(rename = "impl")]
    pub impl_name: String,
    pub n: u64,
    pub setup_ns: u64,
    pub iter_ns: Vec<u64>,
    pub checksum: String,
    /// One-off phases outside the timed iterations, by name; omitted from the line when empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub phases_ns: BTreeMap<String, u64>,
}

/// The line: the schema first, then the report's fields.
#[derive(Serialize)]
struct Line<'a> {
    schema: u32,
    #[serde(flatten)]
    report: &'a Report,
}

impl Report {
    /// The JSON line, without the trailing newline. Fields in a fixed order.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(&Line {
            schema: SCHEMA,
            report: self,
        })
        .expect("serialising a report cannot fail")
    }

    /// A report without phases.
    pub fn new(
        task: &str,
        impl_name: &str,
        n: u64,
        setup_ns: u64,
        iter_ns: Vec<u64>,
        checksum: String,
    ) -> Report {
        Report {
            task: task.to_string(),
            impl_name: impl_name.to_string(),
            n,
            setup_ns,
            iter_ns,
            checksum,
            phases_ns: BTreeMap::new(),
        }
    }

    /// The same report with one more one-off phase (`ns` nanoseconds under `name`).
    pub fn with_phase(mut self, name: &str, ns: u64) -> Self {
        self.phases_ns.insert(name.to_string(), ns);
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
        phases_ns: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn report() -> Report {
        Report {
            task: "sum_squares".into(),
            impl_name: "rs-\"odd\"".into(),
            n: 3,
            setup_ns: 10,
            iter_ns: vec![1, 2, 3],
            checksum: "14".into(),
            ..Default::default()
        }
    }

    #[test]
    fn json_line_shape() {
        let line = report().to_json_line();
        assert_eq!(
            line,
            r#"{"schema":1,"task":"sum_squares","impl":"rs-\"odd\"","n":3,"setup_ns":10,"iter_ns":[1,2,3],"checksum":"14"}"#
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["iter_ns"], serde_json::json!([1, 2, 3]));
        assert_eq!(v["checksum"], "14");
        assert_eq!(v["impl"], "rs-\"odd\"");
        assert!(v.get("phases_ns").is_none());
    }

    #[test]
    fn json_line_with_phases() {
        let r = report().with_phase("fit", 1500).with_phase("compile", 7);
        let line = r.to_json_line();
        // Appended after the usual fields, names sorted.
        assert!(
            line.ends_with(r#","checksum":"14","phases_ns":{"compile":7,"fit":1500}}"#),
            "{line}"
        );
        assert!(line.starts_with(r#"{"schema":1,"task":"sum_squares","#));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["phases_ns"]["fit"], 1500);
        assert!(!line.contains('\n'));
    }

    #[test]
    fn json_line_escapes_every_string() {
        let r = Report {
            task: "a\nb".into(),
            checksum: "\u{1}\"".into(),
            ..Default::default()
        }
        .with_phase("we\"ird", 1);
        let v: Value = serde_json::from_str(&r.to_json_line()).unwrap();
        assert_eq!(v["task"], "a\nb");
        assert_eq!(v["checksum"], "\u{1}\"");
        assert_eq!(v["phases_ns"]["we\"ird"], 1);
        assert_eq!(v["iter_ns"], serde_json::json!([]));
    }

    #[test]
    fn run_kernel_times_each_iteration() {
        let r = run_kernel("t", "rs-x", 5, 7, 4, || 42i64).unwrap();
        assert_eq!(r.iter_ns.len(), 4);
        assert_eq!(r.checksum, "42");
        assert_eq!(r.setup_ns, 7);
        assert!(r.phases_ns.is_empty());
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
