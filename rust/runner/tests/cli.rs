//! End-to-end tests of the runner binary's command line.

use std::process::Command;

use serde_json::Value;

fn runner() -> Command {
    Command::new(env!("CARGO_BIN_EXE_runner"))
}

fn lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn version() {
    let o = runner().arg("--version").output().unwrap();
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        format!("runner {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help() {
    let o = runner().arg("--help").output().unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8(o.stdout)
        .unwrap()
        .starts_with("usage: runner"));
}

#[test]
fn usage_error_exits_2() {
    for args in [
        &["--runs"][..],
        &["--frobnicate", "--", "true"][..],
        &[][..],
    ] {
        let o = runner().args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(o.stdout.is_empty());
        assert!(!o.stderr.is_empty());
    }
}

#[test]
fn spawn_failure_exits_3() {
    let o = runner()
        .args(["--", "/nonexistent/cmd", "x"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let v = lines(&o.stdout);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["schema"], 1);
    assert_eq!(v[0]["cmd"], "/nonexistent/cmd");
    assert!(v[0]["error"]
        .as_str()
        .unwrap()
        .starts_with("spawn failed: "));
    // Not executable.
    let o = runner().args(["--", "/etc/hostname"]).output().unwrap();
    assert_eq!(o.status.code(), Some(3));
}

#[test]
fn runs_and_warmups() {
    let o = runner()
        .args([
            "--runs",
            "3",
            "--warmup",
            "2",
            "--",
            "/bin/sh",
            "-c",
            "echo hi; exit 4",
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "child failures do not fail the runner"
    );
    let v = lines(&o.stdout);
    assert_eq!(v.len(), 5);
    for (i, r) in v.iter().enumerate() {
        assert_eq!(r["run"], i as u64);
        assert_eq!(r["warmup"], i < 2);
        assert_eq!(r["exit_code"], 4);
        assert_eq!(r["stdout"], "hi\n");
        assert_eq!(r["timed_out"], false);
    }
}

#[test]
fn timeout_via_cli() {
    let o = runner()
        .args([
            "--runs",
            "1",
            "--warmup",
            "0",
            "--timeout-s",
            "0.2",
            "--",
            "sleep",
            "5",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let v = lines(&o.stdout);
    assert_eq!(v[0]["timed_out"], true);
    assert_eq!(v[0]["signal"], 9);
    assert_eq!(v[0]["exit_code"], Value::Null);
}

#[test]
fn stdout_limit_and_no_env_pad() {
    let o = runner()
        .args([
            "--runs",
            "1",
            "--warmup",
            "0",
            "--no-env-pad",
            "--stdout-limit",
            "3",
            "--",
            "/bin/sh",
            "-c",
            "printf '%s' \"${RPB_PAD-unset}\"",
        ])
        .env_remove("RPB_PAD")
        .output()
        .unwrap();
    let v = lines(&o.stdout);
    assert_eq!(v[0]["stdout"], "uns");
    assert_eq!(v[0]["stdout_bytes"], 5);
}

/// The runner's JSON line for one run of `sh -c script` with the given stdout limit.
fn one_run(limit: &str, script: &str) -> Value {
    let o = runner()
        .args([
            "--runs",
            "1",
            "--warmup",
            "0",
            "--stdout-limit",
            limit,
            "--",
            "/bin/sh",
            "-c",
            script,
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let mut v = lines(&o.stdout);
    assert_eq!(v.len(), 1);
    v.remove(0)
}

#[test]
fn stdout_tail_keeps_the_last_line_of_a_long_output() {
    // An I/O benchmark: a million lines, then its JSON result as the last line.
    let v = one_run(
        "65536",
        "seq 1 1000000; printf '{\"schema\":1,\"checksum\":\"42\"}\\n'",
    );
    let total = v["stdout_bytes"].as_u64().unwrap();
    assert!(total > 6_000_000, "{total}");
    assert_eq!(v["stdout"].as_str().unwrap().len(), 65536);
    assert!(v["stdout"].as_str().unwrap().starts_with("1\n2\n3\n"));
    let tail = v["stdout_tail"].as_str().unwrap();
    assert_eq!(tail.len(), 4096);
    assert!(tail.ends_with("999999\n1000000\n{\"schema\":1,\"checksum\":\"42\"}\n"));
    let last = tail.trim_end().lines().last().unwrap();
    let result: Value = serde_json::from_str(last).unwrap();
    assert_eq!(result["checksum"], "42");
}

#[test]
fn stdout_tail_is_empty_when_stdout_fits() {
    for (limit, script) in [
        ("65536", "seq 1 1000"),
        ("5", "printf 12345"),
        ("5", "true"),
    ] {
        let v = one_run(limit, script);
        assert_eq!(v["stdout_tail"], "", "{limit} {script}");
    }
    // One byte over the limit: the tail holds everything (shorter than 4096 bytes).
    let v = one_run("5", "printf 123456");
    assert_eq!(v["stdout"], "12345");
    assert_eq!(v["stdout_tail"], "123456");
}
