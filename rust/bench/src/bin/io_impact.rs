//! io_impact task binary: sum_squares with each `x*x` written out as a decimal line.
//!
//! io_impact --impl println|bufwriter|file-unbuf|file-buf --input PATH [--out-dir DIR] [--iters K]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rpb_bench::cli::{self, fail, Opts};
use rpb_bench::input::read_i64_le;
use rpb_bench::io_impact::{self as io, TASK};
use rpb_bench::report::{ns_since, Report};

const USAGE: &str = "\
usage: io_impact --impl println|bufwriter|file-unbuf|file-buf --input PATH [--out-dir DIR] [--iters K]

Reads PATH (little-endian i64 values); each of K iterations (default 5) writes every x*x as a
decimal line:
  println     stdout, println! per line (line-buffered: one write(2) per line)
  bufwriter   stdout, one lock, writeln! into BufWriter (8 KiB)
  file-unbuf  DIR/<file>, File without buffer, one write(2) per line
  file-buf    DIR/<file>, BufWriter<File> (8 KiB)
A file is created (truncated) in every iteration and removed at the end; it is not fsynced.
The JSON line comes last on stdout; checksum \"BYTES CRC32\" of one iteration's output.
";

fn main() {
    let args = cli::args();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return;
    }
    let opts = Opts::parse(args, &["--impl", "--input", "--iters", "--out-dir"], &[])
        .unwrap_or_else(|e| fail(e));
    let imp = opts.required("--impl").unwrap_or_else(|e| fail(e));
    let to_file = match imp {
        "println" | "bufwriter" => false,
        "file-unbuf" | "file-buf" => true,
        _ => fail(format!(
            "unknown --impl {imp:?} (expected println, bufwriter, file-unbuf or file-buf)"
        )),
    };
    let input = opts.required("--input").unwrap_or_else(|e| fail(e));
    let iters: usize = opts.parse_or("--iters", 5).unwrap_or_else(|e| fail(e));
    if iters == 0 {
        fail("--iters must be at least 1");
    }
    let label = format!("rs-{imp}");
    let out_path: Option<PathBuf> = if to_file {
        let dir = opts
            .required("--out-dir")
            .unwrap_or_else(|e| fail(format!("{e} (--impl {imp} writes a file)")));
        let dir = Path::new(dir);
        if !dir.is_dir() {
            fail(format!("--out-dir {}: not a directory", dir.display()));
        }
        Some(dir.join(format!("io_impact-{label}-{}.txt", std::process::id())))
    } else {
        None
    };

    let t0 = Instant::now();
    let data = read_i64_le(Path::new(input)).unwrap_or_else(|e| fail(e));
    let setup_ns = ns_since(t0);

    let mut iter_ns = Vec::with_capacity(iters);
    let mut first: Option<String> = None;
    for i in 0..iters {
        let t0 = Instant::now();
        let written = match (imp, &out_path) {
            ("println", _) => {
                io::println_each(black_box(&data));
                Ok(())
            }
            ("bufwriter", _) => io::bufwriter_stdout(black_box(&data)),
            ("file-unbuf", Some(p)) => io::file_unbuffered(p, black_box(&data)),
            ("file-buf", Some(p)) => io::file_buffered(p, black_box(&data)),
            _ => unreachable!("checked above"),
        };
        iter_ns.push(ns_since(t0));
        if let Err(e) = written {
            let to = out_path
                .as_ref()
                .map_or("stdout".to_string(), |p| p.display().to_string());
            fail(format!("cannot write to {to}: {e}"));
        }
        // Untimed: the checksum of what this iteration wrote.
        let sum = match &out_path {
            Some(p) => {
                let bytes = std::fs::read(p)
                    .unwrap_or_else(|e| fail(format!("cannot read back {}: {e}", p.display())));
                io::checksum(&bytes)
            }
            None if first.is_none() => io::checksum(&io::render(&data)),
            None => continue, // stdout: the same lines as in iteration 0, not re-read
        };
        match &first {
            None => first = Some(sum),
            Some(f0) if *f0 == sum => {}
            Some(f0) => fail(format!(
                "checksum mismatch: iteration {i} wrote {sum}, iteration 0 wrote {f0}"
            )),
        }
    }
    if let Some(p) = &out_path {
        let _ = std::fs::remove_file(p);
    }
    let report = Report::new(
        TASK,
        &label,
        data.len() as u64,
        setup_ns,
        iter_ns,
        first.expect("at least one iteration"),
    );
    report
        .print()
        .unwrap_or_else(|e| fail(format!("cannot write to stdout: {e}")));
}
