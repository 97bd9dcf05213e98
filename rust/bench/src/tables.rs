//! The raw binary input files of the MLOps tasks (feature_engineering, drift, batch_scoring):
//! an 8-byte magic, a few little-endian u64 header fields, then little-endian 8-byte columns.
//! Each task module defines its own layout with these helpers and documents it.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::rng::SplitMix64;

/// Reads `path` whole and checks its magic and length: returns the `fields` u64 header values and
/// the body (everything after the header). `body_len(header)` gives the expected body length in
/// bytes (None when the header values overflow).
pub fn read_with_header(
    path: &Path,
    magic: &[u8; 8],
    fields: usize,
    body_len: impl Fn(&[u64]) -> Option<u64>,
) -> Result<(Vec<u64>, Vec<u8>), String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read input {}: {e}", path.display()))?;
    let head = 8 + 8 * fields;
    if bytes.len() < head || &bytes[..8] != magic {
        return Err(format!(
            "{}: not a {} file (bad magic or too short)",
            path.display(),
            String::from_utf8_lossy(magic)
        ));
    }
    let header: Vec<u64> = bytes[8..head]
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("chunk of 8")))
        .collect();
    let want = body_len(&header).and_then(|b| b.checked_add(head as u64));
    if want != Some(bytes.len() as u64) {
        return Err(format!(
            "{}: length {} does not match its header {header:?}",
            path.display(),
            bytes.len()
        ));
    }
    let mut body = bytes;
    body.drain(..head);
    Ok((header, body))
}

/// Little-endian f64 values of `bytes` (a multiple of 8 long).
pub fn f64s(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")))
        .collect()
}

/// Little-endian i64 values of `bytes` (a multiple of 8 long).
pub fn i64s(bytes: &[u8]) -> Vec<i64> {
    bytes
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("chunk of 8")))
        .collect()
}

/// Writes the magic and the header fields.
pub fn write_header(w: &mut impl Write, magic: &[u8; 8], fields: &[u64]) -> io::Result<()> {
    w.write_all(magic)?;
    for f in fields {
        w.write_all(&f.to_le_bytes())?;
    }
    Ok(())
}

/// Writes f64 values little-endian.
pub fn write_f64s(w: &mut impl Write, values: impl IntoIterator<Item = f64>) -> io::Result<()> {
    for v in values {
        w.write_all(&v.to_le_bytes())?;
    }
    Ok(())
}

/// Writes i64 values little-endian.
pub fn write_i64s(w: &mut impl Write, values: impl IntoIterator<Item = i64>) -> io::Result<()> {
    for v in values {
        w.write_all(&v.to_le_bytes())?;
    }
    Ok(())
}

/// Uniform and normal variates from SplitMix64, for the generators.
#[derive(Debug, Clone)]
pub struct Sampler(SplitMix64);

impl Sampler {
    pub fn new(seed: u64) -> Self {
        Sampler(SplitMix64::new(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1), 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, k) (multiply-shift; the bias is below 2^-32 for k < 2^32).
    pub fn below(&mut self, k: u64) -> u64 {
        ((self.0.next_u64() >> 32) * k) >> 32
    }

    /// Standard normal by Box-Muller (one variate per pair of uniforms).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]: ln is finite
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_errors() {
        let d = std::env::temp_dir().join(format!("rpb-tables-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        let p = d.join("t.bin");
        let mut buf = Vec::new();
        write_header(&mut buf, b"RPBTEST1", &[2, 3]).unwrap();
        write_f64s(&mut buf, [1.5, -2.0]).unwrap();
        write_i64s(&mut buf, [7, -9]).unwrap();
        fs::write(&p, &buf).unwrap();
        let (h, body) = read_with_header(&p, b"RPBTEST1", 2, |h| Some(h[0] * 16)).unwrap();
        assert_eq!(h, [2, 3]);
        assert_eq!(f64s(&body[..16]), [1.5, -2.0]);
        assert_eq!(i64s(&body[16..]), [7, -9]);
        let e = read_with_header(&p, b"RPBOTHER", 2, |h| Some(h[0] * 16)).unwrap_err();
        assert!(e.contains("bad magic"), "{e}");
        let e = read_with_header(&p, b"RPBTEST1", 2, |h| Some(h[0] * 8)).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        assert!(read_with_header(&d.join("nope"), b"RPBTEST1", 2, |_| Some(0)).is_err());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn sampler_moments() {
        let mut s = Sampler::new(1);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| s.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.02,
            "{mean} {var}"
        );
        assert!((0..1000).all(|_| s.below(7) < 7));
    }
}
