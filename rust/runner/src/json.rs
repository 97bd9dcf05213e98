//! The runner's JSON lines (schema 1). Field order is fixed; strings go through serde_json,
//! so every byte sequence becomes valid JSON (non-UTF-8 is replaced lossily first).

use crate::run::RunResult;

/// A JSON string literal for arbitrary bytes: lossy UTF-8, then JSON escaping.
pub fn bytes_str(bytes: &[u8]) -> String {
    str_lit(&String::from_utf8_lossy(bytes))
}

/// A JSON string literal for a Rust string.
pub fn str_lit(s: &str) -> String {
    serde_json::to_string(s).expect("serialising a str cannot fail")
}

fn opt_i32(v: Option<i32>) -> String {
    v.map_or_else(|| "null".to_string(), |x| x.to_string())
}

/// One line (without the newline) describing run `index`. `measured` is None for a warm-up
/// run, else how many warm-up runs came before and whether the settling rule ended them (None
/// for a fixed warm-up count).
pub fn run_line(index: u64, measured: Option<(u64, Option<bool>)>, r: &RunResult) -> String {
    let warm = match measured {
        None => String::new(),
        Some((n, s)) => format!(
            ",\"warmup_runs\":{n},\"settled\":{}",
            s.map_or_else(|| "null".to_string(), |b| b.to_string())
        ),
    };
    format!(
        concat!(
            "{{\"schema\":1,\"run\":{},\"warmup\":{},\"wall_ns\":{},\"user_ns\":{},",
            "\"sys_ns\":{},\"maxrss_kb\":{},\"exit_code\":{},\"signal\":{},\"timed_out\":{},",
            "\"stdout\":{},\"stdout_bytes\":{},\"stdout_tail\":{},\"stderr_tail\":{}{}}}"
        ),
        index,
        measured.is_none(),
        r.wall_ns,
        r.user_ns,
        r.sys_ns,
        r.maxrss_kb,
        opt_i32(r.exit_code),
        opt_i32(r.signal),
        r.timed_out,
        bytes_str(&r.stdout),
        r.stdout_bytes,
        bytes_str(&r.stdout_tail),
        bytes_str(&r.stderr_tail),
        warm,
    )
}

/// The line printed when the command cannot be spawned.
pub fn spawn_error_line(err: &str, cmd: &[u8]) -> String {
    format!(
        "{{\"schema\":1,\"error\":{},\"cmd\":{}}}",
        str_lit(&format!("spawn failed: {err}")),
        bytes_str(cmd)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn escapes_quotes_backslashes_and_controls() {
        assert_eq!(bytes_str(b"plain"), "\"plain\"");
        assert_eq!(bytes_str(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(bytes_str(b"\n\r\t"), r#""\n\r\t""#);
        assert_eq!(
            bytes_str(b"\x00\x01\x1f\x7f"),
            "\"\\u0000\\u0001\\u001f\x7f\""
        );
        assert_eq!(bytes_str(b"\x08\x0c"), r#""\b\f""#);
    }

    #[test]
    fn non_utf8_is_replaced_lossily() {
        let s = bytes_str(b"ok\xff\xfeend");
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "ok\u{fffd}\u{fffd}end");
        // A UTF-8 character cut in half (as at the stdout limit) is replaced too.
        let cut = "h\u{e9}".as_bytes();
        let back: String = serde_json::from_str(&bytes_str(&cut[..2])).unwrap();
        assert_eq!(back, "h\u{fffd}");
        let back: String = serde_json::from_str(&bytes_str("h\u{e9}\u{1F600}".as_bytes())).unwrap();
        assert_eq!(back, "h\u{e9}\u{1F600}");
    }

    #[test]
    fn every_byte_round_trips_through_a_json_parser() {
        let all: Vec<u8> = (0..=255u8).collect();
        let s = bytes_str(&all);
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, String::from_utf8_lossy(&all));
        assert!(!s.contains('\n'));
    }

    #[test]
    fn run_line_has_all_fields_in_order() {
        let r = RunResult {
            wall_ns: 1234,
            user_ns: 5,
            sys_ns: 6,
            maxrss_kb: 789,
            exit_code: None,
            signal: Some(9),
            timed_out: true,
            stdout: b"out\n\"x\"".to_vec(),
            stdout_bytes: 42,
            stdout_tail: b"\n\"x\"".to_vec(),
            stderr_tail: b"\xffbad".to_vec(),
        };
        let line = run_line(3, Some((2, Some(true))), &r);
        assert!(line.starts_with("{\"schema\":1,\"run\":3,\"warmup\":false,\"wall_ns\":1234,"));
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["schema"], 1);
        assert_eq!(v["exit_code"], Value::Null);
        assert_eq!(v["signal"], 9);
        assert_eq!(v["timed_out"], true);
        assert_eq!(v["stdout"], "out\n\"x\"");
        assert_eq!(v["stdout_bytes"], 42);
        assert_eq!(v["stdout_tail"], "\n\"x\"");
        assert_eq!(v["stderr_tail"], "\u{fffd}bad");
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys.len(), 16);
        assert_eq!(v["warmup_runs"], 2);
        assert_eq!(v["settled"], true);
        let warm: Value = serde_json::from_str(&run_line(0, None, &r)).unwrap();
        assert_eq!(warm["warmup"], true);
        assert_eq!(warm.as_object().unwrap().len(), 14);
        // The order of the last fields, on the raw line (Value sorts its keys).
        assert!(
            line.ends_with(concat!(
                r#""stdout":"out\n\"x\"","stdout_bytes":42,"stdout_tail":"\n\"x\"","#,
                "\"stderr_tail\":\"\u{fffd}bad\",\"warmup_runs\":2,\"settled\":true}"
            )),
            "{line}"
        );
    }

    #[test]
    fn spawn_error_line_is_valid_json() {
        let line = spawn_error_line("No such file or directory (os error 2)", b"/no/\"such\"");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["schema"], 1);
        assert_eq!(
            v["error"],
            "spawn failed: No such file or directory (os error 2)"
        );
        assert_eq!(v["cmd"], "/no/\"such\"");
    }
}
