//! ffi task: the Rust side of `py-rs-subprocess`. Reads little-endian i64 values from stdin
//! until end of file and prints their sum of squares (one decimal line): one batch per process,
//! so the caller pays the spawn and the transfer through the pipe.
//!
//! ffi_pipe < values.i64

use std::io::{Read, Write};

use rpb_bench::cli::fail;
use rpb_bench::sum_squares;

fn main() {
    if std::env::args_os().len() > 1 {
        fail("ffi_pipe takes no arguments; it reads little-endian i64 values from stdin");
    }
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut bytes)
        .unwrap_or_else(|e| fail(format!("cannot read stdin: {e}")));
    if bytes.len() % 8 != 0 {
        fail(format!(
            "stdin has {} bytes, not a multiple of 8 (little-endian i64 values)",
            bytes.len()
        ));
    }
    let values: Vec<i64> = bytes
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("chunk of 8")))
        .collect();
    let sum = sum_squares::iter(&values);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{sum}")
        .and_then(|()| out.flush())
        .unwrap_or_else(|e| fail(format!("cannot write to stdout: {e}")));
}
