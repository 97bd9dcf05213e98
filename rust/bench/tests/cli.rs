//! End-to-end tests of the bench binaries' command lines.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn bin(name: &str) -> Command {
    Command::new(match name {
        "hello" => env!("CARGO_BIN_EXE_hello"),
        "datagen" => env!("CARGO_BIN_EXE_datagen"),
        "sum_squares" => env!("CARGO_BIN_EXE_sum_squares"),
        _ => unreachable!(),
    })
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rpb-bench-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn last_json(o: &Output) -> Value {
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    serde_json::from_str(text.lines().last().expect("a line on stdout")).unwrap()
}

fn assert_error(o: &Output) {
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr.clone()).unwrap();
    assert!(err.starts_with("Error: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn hello_prints_exactly_the_greeting() {
    let o = bin("hello").output().unwrap();
    assert!(o.status.success());
    assert_eq!(o.stdout, b"Hello, world!\n");
    assert!(o.stderr.is_empty());
}

#[test]
fn datagen_then_sum_squares_every_impl() {
    let d = tmpdir("ss");
    let p = d.join("ss.bin");
    let o = bin("datagen")
        .args(["sum-squares", "--n", "10000", "--seed", "42", "--out"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let g = last_json(&o);
    assert_eq!(g["schema"], 1);
    assert_eq!(g["n"], 10000);
    assert_eq!(g["seed"], 42);
    assert_eq!(g["bytes"], 80000);
    assert_eq!(g["path"], p.to_str().unwrap());
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 80000);
    let checksum = g["checksum"].as_str().unwrap().to_string();

    for imp in ["scalar", "iter", "rayon"] {
        let o = bin("sum_squares")
            .args(["--impl", imp, "--iters", "3", "--input"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        let r = last_json(&o);
        assert_eq!(r["schema"], 1);
        assert_eq!(r["task"], "sum_squares");
        assert_eq!(r["impl"], format!("rs-{imp}"));
        assert_eq!(r["n"], 10000);
        assert_eq!(r["iter_ns"].as_array().unwrap().len(), 3);
        assert!(r["setup_ns"].as_u64().is_some());
        assert_eq!(r["checksum"], checksum.as_str());
    }
    let o = bin("sum_squares")
        .args(["--impl", "iter", "--label", "rs-native", "--input"])
        .arg(&p)
        .output()
        .unwrap();
    let r = last_json(&o);
    assert_eq!(r["impl"], "rs-native");
    assert_eq!(r["iter_ns"].as_array().unwrap().len(), 5);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn sum_squares_errors() {
    let d = tmpdir("err");
    let bad = d.join("bad.bin");
    std::fs::write(&bad, [1u8; 12]).unwrap();
    let o = bin("sum_squares")
        .args(["--impl", "scalar", "--input"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_error(&o);
    assert!(o.stdout.is_empty());
    for args in [
        &["--impl", "numpy", "--input", "x"][..],
        &["--impl", "scalar"][..],
        &["--impl", "scalar", "--input", "/nonexistent"][..],
        &["--impl", "scalar", "--input", "x", "--iters", "0"][..],
        &["--impl", "scalar", "--input", "x", "--bogus"][..],
    ] {
        assert_error(&bin("sum_squares").args(args).output().unwrap());
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn datagen_errors() {
    for args in [
        &[][..],
        &["no-such-task"][..],
        &["sum-squares", "--n", "10", "--seed", "1"][..],
        &["sum-squares", "--n", "x", "--seed", "1", "--out", "/tmp/x"][..],
        &[
            "sum-squares",
            "--n",
            "1",
            "--seed",
            "1",
            "--out",
            "/dev/null/not-a-dir/f",
        ][..],
    ] {
        assert_error(&bin("datagen").args(args).output().unwrap());
    }
}
