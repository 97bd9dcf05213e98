//! `ready` and `check`: readiness polling and the correctness check of a server.

use std::net::SocketAddr;
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::http::{request, Response};
use crate::reference::{body, close, expected_score, Rng, N_FEATURES};

/// Relative tolerance of a returned score against the reference.
pub const REL_TOL: f64 = 1e-12;
/// Mismatches listed in the JSON line (all are counted).
const WRONG_SHOWN: usize = 5;
const JSON: Option<&str> = Some("application/json");

/// Polls `GET /health` until it answers 200; returns (waited, attempts).
pub fn wait_ready(addr: SocketAddr, timeout: Duration) -> Result<(Duration, u64), String> {
    let t0 = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let left = timeout.saturating_sub(t0.elapsed());
        let per_try = left.clamp(Duration::from_millis(1), Duration::from_secs(1));
        if let Ok(r) = request(addr, "GET", "/health", None, b"", per_try) {
            if r.status == 200 {
                return Ok((t0.elapsed(), attempts));
            }
        }
        if t0.elapsed() >= timeout {
            return Err(format!(
                "server not ready after {} s: GET http://{addr}/health did not answer 200 ({attempts} attempts). Check the server's stderr and that it listens on that port",
                timeout.as_secs_f64()
            ));
        }
        sleep(Duration::from_millis(20));
    }
}

/// One malformed request: a name, its body, and its content type.
pub struct Malformed {
    pub name: &'static str,
    pub body: String,
}

/// The malformed requests every server must answer with a 4xx.
pub fn malformed_cases() -> Vec<Malformed> {
    let nums = |n: usize| (0..n).map(|i| format!("{}.5", i % 3)).collect::<Vec<_>>();
    let row = |items: Vec<String>| format!("{{\"x\":[{}]}}", items.join(","));
    let mut non_number = nums(N_FEATURES);
    non_number[5] = "\"abc\"".into();
    let mut null_item = nums(N_FEATURES);
    null_item[0] = "null".into();
    let mut nested = nums(N_FEATURES);
    nested[31] = "[1.0]".into();
    vec![
        Malformed {
            name: "not_json",
            body: "{\"x\": [1.0, 2".into(),
        },
        Malformed {
            name: "empty_body",
            body: String::new(),
        },
        Malformed {
            name: "length_31",
            body: row(nums(N_FEATURES - 1)),
        },
        Malformed {
            name: "length_33",
            body: row(nums(N_FEATURES + 1)),
        },
        Malformed {
            name: "string_item",
            body: row(non_number),
        },
        Malformed {
            name: "null_item",
            body: row(null_item),
        },
        Malformed {
            name: "nested_item",
            body: row(nested),
        },
        Malformed {
            name: "missing_key",
            body: format!("{{\"y\":[{}]}}", nums(N_FEATURES).join(",")),
        },
        Malformed {
            name: "x_not_a_list",
            body: "{\"x\":1.5}".into(),
        },
        Malformed {
            name: "top_level_list",
            body: format!("[{}]", nums(N_FEATURES).join(",")),
        },
    ]
}

fn score_of(r: &Response) -> Option<f64> {
    let v: Value = serde_json::from_slice(&r.body).ok()?;
    v.get("score")?.as_f64()
}

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.chars().take(200).collect()
}

/// Sends `count` seeded rows and the malformed requests; returns the phase's JSON object.
/// Connection failures are errors; wrong answers are data in the result.
pub fn check(addr: SocketAddr, seed: u64, count: u64, timeout: Duration) -> Result<Value, String> {
    let mut rng = Rng::new(seed);
    let mut ok = 0u64;
    let mut n_wrong = 0u64;
    let mut wrong = Vec::new();
    let mut max_rel_err: f64 = 0.0;
    for i in 0..count {
        let x = rng.row();
        let expected = expected_score(&x);
        let r = request(addr, "POST", "/score", JSON, body(&x).as_bytes(), timeout)?;
        let got = if r.status == 200 { score_of(&r) } else { None };
        match got {
            Some(s) if close(s, expected, REL_TOL) => {
                ok += 1;
                if s != expected {
                    max_rel_err = max_rel_err.max((s - expected).abs() / expected.abs());
                }
            }
            _ => {
                n_wrong += 1;
                if wrong.len() < WRONG_SHOWN {
                    wrong.push(json!({
                        "i": i,
                        "status": r.status,
                        "expected": expected,
                        "got": got,
                        "body": snippet(&r.body),
                    }));
                }
            }
        }
    }
    let cases = malformed_cases();
    let mut malformed_ok = 0u64;
    let mut malformed_failed = Vec::new();
    for case in &cases {
        let r = request(addr, "POST", "/score", JSON, case.body.as_bytes(), timeout)?;
        if (400..500).contains(&r.status) {
            malformed_ok += 1;
        } else {
            malformed_failed.push(json!({
                "case": case.name,
                "status": r.status,
                "body": snippet(&r.body),
            }));
        }
    }
    let malformed_total = cases.len() as u64;
    Ok(json!({
        "schema": 1,
        "phase": "check",
        "seed": seed,
        "count": count,
        "ok": ok,
        "n_wrong": n_wrong,
        "wrong": wrong,
        "max_rel_err": max_rel_err,
        "rel_tol": REL_TOL,
        "malformed_ok": malformed_ok,
        "malformed_total": malformed_total,
        "malformed_failed": malformed_failed,
        "passed": ok == count && malformed_ok == malformed_total,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_bodies_are_what_they_say() {
        for case in malformed_cases() {
            let parsed: Result<Value, _> = serde_json::from_str(&case.body);
            match case.name {
                "not_json" | "empty_body" => assert!(parsed.is_err(), "{}", case.name),
                "length_31" => assert_eq!(parsed.unwrap()["x"].as_array().unwrap().len(), 31),
                "length_33" => assert_eq!(parsed.unwrap()["x"].as_array().unwrap().len(), 33),
                "missing_key" => assert!(parsed.unwrap().get("x").is_none()),
                _ => assert!(parsed.is_ok(), "{}", case.name),
            }
        }
    }
}
