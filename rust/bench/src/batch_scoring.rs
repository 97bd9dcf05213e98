//! batch_scoring kernels (WORKLOADS.md task 10): logistic-regression scores of N rows x 32
//! features with fixed weights w_j = sin(j + 1) and bias 0.1:
//! `score = 1 / (1 + exp(-(0.1 + sum_j w_j x_j)))`, the dot product summed in j order.
//!
//! Input file (`datagen batch-scoring`): magic `RPBSCORE`, u64 LE n and d (= 32), then n rows of
//! d f64 (row-major), each feature normal(0, 1). Output: the n scores as little-endian f64.

use std::io;
use std::path::Path;

use rayon::prelude::*;

use crate::input::write_atomic;
use crate::tables::{self, Sampler};

pub const TASK: &str = "batch_scoring";
pub const MAGIC: &[u8; 8] = b"RPBSCORE";
/// Features per row.
pub const FEATURES: usize = 32;
pub const BIAS: f64 = 0.1;

/// The weights w_j = sin(j + 1).
pub fn weights() -> [f64; FEATURES] {
    std::array::from_fn(|j| ((j + 1) as f64).sin())
}

/// The weights, computed once per process (for callers that score one row at a time).
pub fn weights_cached() -> &'static [f64; FEATURES] {
    static W: std::sync::OnceLock<[f64; FEATURES]> = std::sync::OnceLock::new();
    W.get_or_init(weights)
}

/// The score of one row of `FEATURES` values.
#[inline]
pub fn score_row(w: &[f64; FEATURES], x: &[f64]) -> f64 {
    let x: &[f64; FEATURES] = x.try_into().expect("a row has FEATURES values");
    let mut dot = 0.0;
    for j in 0..FEATURES {
        dot += w[j] * x[j];
    }
    1.0 / (1.0 + (-(BIAS + dot)).exp())
}

/// Scores every row of `x` (row-major) into `out`, one row after the other.
pub fn score_into(x: &[f64], out: &mut [f64]) {
    let w = weights();
    assert_eq!(x.len(), out.len() * FEATURES, "x must have out.len() rows");
    for (o, row) in out.iter_mut().zip(x.chunks_exact(FEATURES)) {
        *o = score_row(&w, row);
    }
}

/// Scores the rows in parallel (rayon, on the current pool).
pub fn score_into_par(x: &[f64], out: &mut [f64]) {
    let w = weights();
    assert_eq!(x.len(), out.len() * FEATURES, "x must have out.len() rows");
    out.par_iter_mut()
        .zip(x.par_chunks_exact(FEATURES))
        .with_min_len(4096)
        .for_each(|(o, row)| *o = score_row(&w, row));
}

/// The checksum: the sum of the scores (in row order) and the row count.
pub fn checksum(scores: &[f64]) -> String {
    let sum: f64 = scores.iter().sum();
    format!("{sum:?} {:?}", scores.len() as f64)
}

/// Reads an input file: (rows, row-major values).
pub fn read(path: &Path) -> Result<(usize, Vec<f64>), String> {
    let (h, body) =
        tables::read_with_header(path, MAGIC, 2, |h| h[0].checked_mul(h[1])?.checked_mul(8))?;
    if h[1] != FEATURES as u64 {
        return Err(format!(
            "{}: {} features per row, expected {FEATURES}",
            path.display(),
            h[1]
        ));
    }
    Ok((h[0] as usize, tables::f64s(&body)))
}

/// Writes the generator's file: n rows of `FEATURES` normal(0, 1) values. Returns the bytes.
pub fn write_input(path: &Path, n: u64, seed: u64) -> io::Result<u64> {
    let mut s = Sampler::new(seed);
    let d = FEATURES as u64;
    write_atomic(path, |w| {
        tables::write_header(w, MAGIC, &[n, d])?;
        for _ in 0..n * d {
            tables::write_f64s(w, [s.normal()])?;
        }
        Ok(())
    })?;
    Ok(24 + 8 * n * d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_scores() {
        let w = weights();
        assert_eq!(w[0], 1f64.sin());
        assert_eq!(w[31], 32f64.sin());
        assert_eq!(weights_cached(), &w);
        let zero = [0.0; FEATURES];
        assert_eq!(score_row(&w, &zero), 1.0 / (1.0 + (-0.1f64).exp()));
        let mut one = [0.0; FEATURES];
        one[2] = 2.0;
        let z = 0.1 + 2.0 * 3f64.sin();
        assert!((score_row(&w, &one) - 1.0 / (1.0 + (-z).exp())).abs() < 1e-16);
    }

    #[test]
    fn scalar_and_parallel_agree() {
        let mut s = Sampler::new(9);
        let n = 10_001;
        let x: Vec<f64> = (0..n * FEATURES).map(|_| s.normal()).collect();
        let mut a = vec![0.0; n];
        let mut b = vec![0.0; n];
        score_into(&x, &mut a);
        score_into_par(&x, &mut b);
        assert_eq!(a, b);
        assert!(a.iter().all(|&p| p > 0.0 && p < 1.0));
        assert!(checksum(&a).ends_with(" 10001.0"));
    }

    #[test]
    fn file_round_trip() {
        let d = std::env::temp_dir().join(format!("rpb-bs-{}", std::process::id()));
        let p = d.join("x.bin");
        let bytes = write_input(&p, 3, 1).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), bytes);
        let (n, x) = read(&p).unwrap();
        assert_eq!((n, x.len()), (3, 3 * FEATURES));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
