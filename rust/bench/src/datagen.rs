//! Input generators. `datagen <task> ...` dispatches to one function per task; a new task adds a
//! generator here and a row to `GENERATORS` in `src/bin/datagen.rs`.

use std::io::{self, Write};
use std::path::Path;

use crate::input::write_atomic;
use crate::rng::SplitMix64;

/// The value stream of sum_squares: `next() >> 50`, so each value is in [0, 2^14).
pub fn sum_squares_stream(seed: u64) -> impl Iterator<Item = i64> {
    let mut rng = SplitMix64::new(seed);
    std::iter::repeat_with(move || (rng.next_u64() >> 50) as i64)
}

/// The first `n` values of the sum_squares stream (for tests and small sizes).
pub fn sum_squares_values(seed: u64, n: usize) -> Vec<i64> {
    sum_squares_stream(seed).take(n).collect()
}

/// What a generator wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub n: u64,
    pub bytes: u64,
    pub checksum: String,
}

/// Writes `n` little-endian i64 sum_squares values to `path` atomically and returns Σx².
pub fn write_sum_squares(path: &Path, n: u64, seed: u64) -> io::Result<Written> {
    let sum = write_atomic(path, |w| {
        let mut sum: u128 = 0;
        for x in sum_squares_stream(seed).take(n as usize) {
            sum += (x * x) as u128;
            w.write_all(&x.to_le_bytes())?;
        }
        Ok(sum)
    })?;
    Ok(Written {
        n,
        bytes: n * 8,
        checksum: sum.to_string(),
    })
}

/// The file_read categories, in sorted order.
pub const FILE_READ_CATEGORIES: [&str; 8] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
];

/// The CSV header of file_read.
pub const FILE_READ_HEADER: &str = "id,a,b,c,cat";

/// Formats `micros / 10^6` with exactly six decimals (`-0.500000`, `12.000001`).
fn push_micros(line: &mut String, micros: i64) {
    use std::fmt::Write as _;
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    write!(line, "{sign}{}.{:06}", m / 1_000_000, m % 1_000_000).expect("String write");
}

/// Row `id` of the file_read table, from three SplitMix64 outputs: `a` uniform in
/// [-1000, 1000), `b` in [0, 1), `c` in [0, 100000), each with six decimals (so every mantissa
/// is below 2^53 and every correct parser reads the same double), and one of 8 categories.
pub fn file_read_row(rng: &mut SplitMix64, id: u64, line: &mut String) {
    use std::fmt::Write as _;
    line.clear();
    let a = (rng.next_u64() % 2_000_000_000) as i64 - 1_000_000_000;
    let b = (rng.next_u64() % 1_000_000) as i64;
    let r = rng.next_u64();
    let c = (r % 100_000_000_000) as i64;
    let cat = FILE_READ_CATEGORIES[(r >> 61) as usize];
    write!(line, "{id},").expect("String write");
    push_micros(line, a);
    line.push(',');
    push_micros(line, b);
    line.push(',');
    push_micros(line, c);
    line.push(',');
    line.push_str(cat);
    line.push('\n');
}

/// Writes the file_read CSV (header and `n` rows, `\n` line ends) to `path` atomically.
pub fn write_file_read(path: &Path, n: u64, seed: u64) -> io::Result<Written> {
    let bytes = write_atomic(path, |w| {
        let mut rng = SplitMix64::new(seed);
        let mut line = String::with_capacity(64);
        let mut bytes = FILE_READ_HEADER.len() as u64 + 1;
        writeln!(w, "{FILE_READ_HEADER}")?;
        for id in 0..n {
            file_read_row(&mut rng, id, &mut line);
            w.write_all(line.as_bytes())?;
            bytes += line.len() as u64;
        }
        Ok(bytes)
    })?;
    Ok(Written {
        n,
        bytes,
        checksum: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::read_i64_le;

    #[test]
    fn seed_42_first_values_are_stable() {
        assert_eq!(sum_squares_values(42, 5), FIRST_5_SEED_42);
    }

    /// Computed once (and checked against an independent Python SplitMix64); the raw u64
    /// outputs are 13679457532755275413, 2949826092126892291, 5139283748462763858,
    /// 6349198060258255764, 701532786141963250.
    const FIRST_5_SEED_42: [i64; 5] = [12149, 2619, 4564, 5639, 623];

    #[test]
    fn values_are_in_range() {
        assert!(sum_squares_values(7, 10_000)
            .iter()
            .all(|&x| (0..1 << 14).contains(&x)));
    }

    #[test]
    fn written_file_matches_stream_and_checksum() {
        let d = std::env::temp_dir().join(format!("rpb-datagen-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("ss.bin");
        let w = write_sum_squares(&p, 1000, 42).unwrap();
        let data = read_i64_le(&p).unwrap();
        assert_eq!(data, sum_squares_values(42, 1000));
        assert_eq!(w.bytes, 8000);
        let sum: i64 = data.iter().map(|x| x * x).sum();
        assert_eq!(w.checksum, sum.to_string());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn file_read_rows() {
        let mut s = String::new();
        push_micros(&mut s, -500_000);
        s.push(' ');
        push_micros(&mut s, 12_000_001);
        s.push(' ');
        push_micros(&mut s, 0);
        assert_eq!(s, "-0.500000 12.000001 0.000000");
        let mut rng = SplitMix64::new(42);
        let mut line = String::new();
        for id in 0..1000 {
            file_read_row(&mut rng, id, &mut line);
            let f: Vec<&str> = line.trim_end().split(',').collect();
            assert_eq!(f.len(), 5, "{line}");
            assert_eq!(f[0], id.to_string());
            let a: f64 = f[1].parse().unwrap();
            let b: f64 = f[2].parse().unwrap();
            let c: f64 = f[3].parse().unwrap();
            assert!(
                (-1000.0..1000.0).contains(&a) && (0.0..1.0).contains(&b),
                "{line}"
            );
            assert!((0.0..100_000.0).contains(&c), "{line}");
            assert!(FILE_READ_CATEGORIES.contains(&f[4]));
            assert!(f[1..4]
                .iter()
                .all(|x| x.split('.').nth(1).unwrap().len() == 6));
        }
    }
}
