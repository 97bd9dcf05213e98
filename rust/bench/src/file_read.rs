//! file_read kernels: read a CSV (`id,a,b,c,cat`), parse it, and aggregate count and the sums
//! of `a`, `b` and `c` per category. One call reads the whole file from the (warm) page cache.
//!
//! The checksum lists the categories in sorted order, for each `count sum_a sum_b sum_c` as
//! shortest round-trip floats (`{:?}`), separated by spaces.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use serde::Deserialize;

pub const TASK: &str = "file_read";

/// Per-category count and sums.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Agg {
    pub count: u64,
    pub a: f64,
    pub b: f64,
    pub c: f64,
}

impl Agg {
    #[inline]
    fn add(&mut self, a: f64, b: f64, c: f64) {
        self.count += 1;
        self.a += a;
        self.b += b;
        self.c += c;
    }
}

/// Aggregates by category name, sorted by name.
pub type Groups = Vec<(String, Agg)>;

/// The checksum string of sorted groups.
pub fn checksum(groups: &Groups) -> String {
    let mut out = Vec::with_capacity(groups.len() * 4);
    for (_, g) in groups {
        out.push(format!("{:?}", g.count as f64));
        out.push(format!("{:?}", g.a));
        out.push(format!("{:?}", g.b));
        out.push(format!("{:?}", g.c));
    }
    out.join(" ")
}

fn sorted(map: HashMap<String, Agg>) -> Groups {
    let mut v: Groups = map.into_iter().collect();
    v.sort_by(|x, y| x.0.cmp(&y.0));
    v
}

/// One row as the csv crate's serde support reads it; `cat` borrows from the record.
#[derive(Debug, Deserialize)]
struct Row<'a> {
    #[allow(dead_code)] // parsed (and validated) like every column, not aggregated
    id: i64,
    a: f64,
    b: f64,
    c: f64,
    cat: &'a str,
}

/// rs-csv: the `csv` crate, one reused `ByteRecord` deserialised with serde into a borrowed
/// row (the crate's documented fast path), a `HashMap` keyed by category.
pub fn csv_crate(path: &Path) -> Result<Groups, String> {
    let ctx = |e: csv::Error| format!("{}: {e}", path.display());
    let mut rdr = csv::Reader::from_path(path).map_err(ctx)?;
    let headers = rdr.byte_headers().map_err(ctx)?.clone();
    let mut record = csv::ByteRecord::new();
    let mut groups: HashMap<String, Agg> = HashMap::new();
    while rdr.read_byte_record(&mut record).map_err(ctx)? {
        let row: Row = record.deserialize(Some(&headers)).map_err(ctx)?;
        match groups.get_mut(row.cat) {
            Some(g) => g.add(row.a, row.b, row.c),
            None => groups
                .entry(row.cat.to_string())
                .or_default()
                .add(row.a, row.b, row.c),
        }
    }
    Ok(sorted(groups))
}

/// rs-bytes: the whole file in one buffer, lines and fields split by hand, numbers parsed by
/// hand (a decimal with up to 15 significant digits is `mantissa / 10^k`, one correctly rounded
/// division; anything else falls back to `str::parse`), categories looked up in a short list.
pub fn bytes(path: &Path) -> Result<Groups, String> {
    let ctx = |e: io::Error| format!("{}: {e}", path.display());
    let mut f = File::open(path).map_err(ctx)?;
    let mut buf = Vec::with_capacity(f.metadata().map_err(ctx)?.len() as usize + 1);
    f.read_to_end(&mut buf).map_err(ctx)?;
    aggregate_bytes(&buf).map_err(|e| format!("{}: {e}", path.display()))
}

/// The parsing and aggregation of [`bytes`], on a buffer.
pub fn aggregate_bytes(buf: &[u8]) -> Result<Groups, String> {
    let mut lines = buf.split(|&c| c == b'\n');
    match lines.next() {
        Some(h) if trim_cr(h) == b"id,a,b,c,cat" => {}
        _ => return Err("expected the header id,a,b,c,cat".into()),
    }
    let mut groups: Vec<(Vec<u8>, Agg)> = Vec::with_capacity(8);
    for (i, line) in lines.enumerate() {
        let line = trim_cr(line);
        if line.is_empty() {
            continue;
        }
        let bad = || format!("line {}: malformed row", i + 2);
        let mut fields = line.splitn(5, |&c| c == b',');
        let (Some(id), Some(a), Some(b), Some(c), Some(cat)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(bad());
        };
        parse_int(id).ok_or_else(bad)?;
        let (a, b, c) = (
            parse_f64(a).ok_or_else(bad)?,
            parse_f64(b).ok_or_else(bad)?,
            parse_f64(c).ok_or_else(bad)?,
        );
        match groups.iter_mut().find(|(k, _)| k == cat) {
            Some((_, g)) => g.add(a, b, c),
            None => {
                let mut g = Agg::default();
                g.add(a, b, c);
                groups.push((cat.to_vec(), g));
            }
        }
    }
    let mut out: Groups = Vec::with_capacity(groups.len());
    for (k, g) in groups {
        let k = String::from_utf8(k).map_err(|_| "a category is not UTF-8".to_string())?;
        out.push((k, g));
    }
    out.sort_by(|x, y| x.0.cmp(&y.0));
    Ok(out)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(d - b'0');
    }
    Some(if neg { -v } else { v })
}

const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// A decimal `[-]digits[.digits]`. With at most 15 digits in all, the mantissa and `10^k` are
/// exact doubles, so `m / 10^k` is the correctly rounded value (Clinger's fast path), the same
/// double `str::parse` gives. Other forms go to `str::parse`.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let (neg, body) = match s.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, s),
    };
    let mut mantissa: u64 = 0;
    let mut digits = 0usize;
    let mut frac: Option<usize> = None;
    for &ch in body {
        match ch {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(ch - b'0');
                digits += 1;
                if let Some(k) = frac.as_mut() {
                    *k += 1;
                }
                if digits > 15 {
                    return slow_parse(s);
                }
            }
            b'.' if frac.is_none() => frac = Some(0),
            _ => return slow_parse(s),
        }
    }
    if digits == 0 {
        return None;
    }
    let v = mantissa as f64 / POW10[frac.unwrap_or(0)];
    Some(if neg { -v } else { v })
}

fn slow_parse(s: &[u8]) -> Option<f64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datagen::{file_read_row, FILE_READ_HEADER};
    use crate::rng::SplitMix64;

    #[test]
    fn parse_f64_matches_std() {
        for s in [
            "0",
            "-0.5",
            "12.000001",
            "-999.999999",
            "0.000001",
            "99999.999999",
            "1e5",
            "-1.5e-3",
            "123456789012.345678",
            "7.",
            "nan",
        ] {
            let want: f64 = s.parse().unwrap();
            let got = parse_f64(s.as_bytes()).unwrap();
            assert!(
                got == want || (got.is_nan() && want.is_nan()),
                "{s}: {got} vs {want}"
            );
        }
        assert!(parse_f64(b"").is_none());
        assert!(parse_f64(b"-").is_none());
        assert!(parse_f64(b"1.2.3").is_none());
        assert!(parse_f64(b"x").is_none());
        let mut rng = SplitMix64::new(9);
        for _ in 0..100_000 {
            let m = (rng.next_u64() % 200_000_000_000) as i64 - 100_000_000_000;
            let s = format!(
                "{}{}.{:06}",
                if m < 0 { "-" } else { "" },
                m.abs() / 1_000_000,
                m.abs() % 1_000_000
            );
            assert_eq!(parse_f64(s.as_bytes()), s.parse().ok(), "{s}");
        }
    }

    fn table(n: u64) -> String {
        let mut rng = SplitMix64::new(42);
        let mut out = format!("{FILE_READ_HEADER}\n");
        let mut line = String::new();
        for id in 0..n {
            file_read_row(&mut rng, id, &mut line);
            out.push_str(&line);
        }
        out
    }

    #[test]
    fn both_parsers_agree() {
        let d = std::env::temp_dir().join(format!("rpb-file-read-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("t.csv");
        std::fs::write(&p, table(5000)).unwrap();
        let x = csv_crate(&p).unwrap();
        let y = bytes(&p).unwrap();
        assert_eq!(x.len(), 8);
        assert_eq!(x.iter().map(|g| g.1.count).sum::<u64>(), 5000);
        // Same order of additions, same parsed doubles: bit-identical.
        assert_eq!(checksum(&x), checksum(&y));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn small_table_by_hand() {
        let text = "id,a,b,c,cat\r\n1,1.5,2,3,y\n2,-0.5,0.25,1e1,x\n3,1,1,1,y\n";
        let g = aggregate_bytes(text.as_bytes()).unwrap();
        assert_eq!(g[0].0, "x");
        assert_eq!(
            g[1].1,
            Agg {
                count: 2,
                a: 2.5,
                b: 3.0,
                c: 4.0
            }
        );
        assert_eq!(checksum(&g), "1.0 -0.5 0.25 10.0 2.0 2.5 3.0 4.0");
        assert!(aggregate_bytes(b"id,a,b,c,cat\n1,2\n").is_err());
        assert!(aggregate_bytes(b"x,y\n").is_err());
    }
}
