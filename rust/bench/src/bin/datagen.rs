//! Input generator: `datagen <task> [options]`.
//!
//! datagen sum-squares --n N --seed S --out PATH
//! datagen file-read --n N --seed S --out PATH
//! datagen feature-engineering --n N --seed S --out PATH
//! datagen drift --n N --seed S --out PATH
//! datagen batch-scoring --n N --seed S --out PATH
//!
//! Each generator writes its file atomically and prints one JSON line describing it. A new task
//! adds a function and a row to GENERATORS.

use std::path::Path;

use rpb_bench::cli::{fail, Opts};
use rpb_bench::datagen;

type Generator = fn(Vec<String>) -> Result<(), String>;

/// (task name, options synopsis, generator)
const GENERATORS: &[(&str, &str, Generator)] = &[
    ("sum-squares", "--n N --seed S --out PATH", sum_squares),
    ("file-read", "--n N --seed S --out PATH", file_read),
    (
        "feature-engineering",
        "--n N --seed S --out PATH",
        feature_engineering,
    ),
    ("drift", "--n N --seed S --out PATH", drift),
    ("batch-scoring", "--n N --seed S --out PATH", batch_scoring),
];

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("serialising a str cannot fail")
}

fn sum_squares(args: Vec<String>) -> Result<(), String> {
    let opts = Opts::parse(args, &["--n", "--seed", "--out"], &[])?;
    let n: u64 = opts.parse_required("--n")?;
    let seed: u64 = opts.parse_required("--seed")?;
    let out = opts.required("--out")?;
    if n > u64::MAX / 8 || usize::try_from(n).is_err() {
        return Err(format!("--n too large: {n}"));
    }
    let w =
        datagen::write_sum_squares(Path::new(out), n, seed).map_err(|e| format!("{out}: {e}"))?;
    println!(
        "{{\"schema\":1,\"path\":{},\"n\":{},\"seed\":{},\"bytes\":{},\"checksum\":{}}}",
        json_str(out),
        w.n,
        seed,
        w.bytes,
        json_str(&w.checksum)
    );
    Ok(())
}

/// The file_read CSV: header `id,a,b,c,cat` and N rows (no checksum field).
fn file_read(args: Vec<String>) -> Result<(), String> {
    let opts = Opts::parse(args, &["--n", "--seed", "--out"], &[])?;
    let n: u64 = opts.parse_required("--n")?;
    let seed: u64 = opts.parse_required("--seed")?;
    let out = opts.required("--out")?;
    let w = datagen::write_file_read(Path::new(out), n, seed).map_err(|e| format!("{out}: {e}"))?;
    println!(
        "{{\"schema\":1,\"path\":{},\"n\":{},\"seed\":{},\"bytes\":{}}}",
        json_str(out),
        w.n,
        seed,
        w.bytes
    );
    Ok(())
}

/// Parses `--n N --seed S --out PATH`; `max_n` bounds N so the file size cannot overflow.
fn table_opts(args: Vec<String>, max_n: u64) -> Result<(u64, u64, String), String> {
    let opts = Opts::parse(args, &["--n", "--seed", "--out"], &[])?;
    let n: u64 = opts.parse_required("--n")?;
    let seed: u64 = opts.parse_required("--seed")?;
    let out = opts.required("--out")?.to_string();
    if n == 0 || n > max_n {
        return Err(format!("--n must be in 1..={max_n}, got {n}"));
    }
    Ok((n, seed, out))
}

fn print_written(out: &str, n: u64, seed: u64, bytes: u64) {
    println!(
        "{{\"schema\":1,\"path\":{},\"n\":{n},\"seed\":{seed},\"bytes\":{bytes}}}",
        json_str(out)
    );
}

fn feature_engineering(args: Vec<String>) -> Result<(), String> {
    let (n, seed, out) = table_opts(args, 1 << 32)?;
    if n < 2 {
        return Err("--n must be at least 2".into());
    }
    let bytes = rpb_bench::feature_engineering::write_input(Path::new(&out), n, seed)
        .map_err(|e| format!("{out}: {e}"))?;
    print_written(&out, n, seed, bytes);
    Ok(())
}

fn drift(args: Vec<String>) -> Result<(), String> {
    let (n, seed, out) = table_opts(args, 1 << 32)?;
    let bytes = rpb_bench::drift::write_input(Path::new(&out), n, seed)
        .map_err(|e| format!("{out}: {e}"))?;
    print_written(&out, n, seed, bytes);
    Ok(())
}

fn batch_scoring(args: Vec<String>) -> Result<(), String> {
    let (n, seed, out) = table_opts(args, 1 << 32)?;
    let bytes = rpb_bench::batch_scoring::write_input(Path::new(&out), n, seed)
        .map_err(|e| format!("{out}: {e}"))?;
    print_written(&out, n, seed, bytes);
    Ok(())
}

fn usage() -> String {
    let mut s = String::from("usage: datagen <task> [options]\n\ntasks:\n");
    for (name, synopsis, _) in GENERATORS {
        s.push_str(&format!("  datagen {name} {synopsis}\n"));
    }
    s
}

fn main() {
    let mut args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string()
                .unwrap_or_else(|a| fail(format!("argument is not UTF-8: {a:?}")))
        })
        .collect();
    if args.is_empty() {
        fail(format!("no task given; {}", usage().replace('\n', " ")));
    }
    let task = args.remove(0);
    if task == "--help" || task == "-h" {
        print!("{}", usage());
        return;
    }
    let Some(&(_, synopsis, generate)) = GENERATORS.iter().find(|(name, _, _)| *name == task)
    else {
        let names: Vec<&str> = GENERATORS.iter().map(|g| g.0).collect();
        fail(format!(
            "unknown task {task:?} (known: {})",
            names.join(", ")
        ));
    };
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("usage: datagen {task} {synopsis}");
        return;
    }
    if let Err(e) = generate(args) {
        fail(e);
    }
}
