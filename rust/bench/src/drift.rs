//! drift kernels (WORKLOADS.md task 9): per feature, PSI on reference-decile bins, the two-sample
//! Kolmogorov-Smirnov statistic, the Wasserstein-1 distance and the Jensen-Shannon distance on
//! the same bins, between a reference sample and a current sample.
//!
//! Definitions (shared with the Python implementations and checked against SciPy):
//! - Decile edges e_1..e_9 of the reference: NumPy's default (`linear`) quantiles at k/10,
//!   including NumPy's two-sided interpolation (see [`quantile_sorted`]).
//! - A value x falls in bin b = #{k : e_k <= x} (0..=9), i.e. `np.searchsorted(edges, x,
//!   side="right")`.
//! - PSI = sum_b (c_b - r_b) ln(c_b / r_b), with r_b, c_b the bin proportions of reference and
//!   current, a proportion of an empty bin replaced by 1e-4.
//! - JS = sqrt((KL(r || m) + KL(c || m)) / 2), m = (r + c) / 2, natural log, on the raw
//!   proportions (0 ln 0 = 0): `scipy.spatial.distance.jensenshannon`.
//! - KS = max over the pooled values x of |F_ref(x) - F_cur(x)| (`scipy.stats.ks_2samp`).
//! - W1 = integral of |F_ref - F_cur| (`scipy.stats.wasserstein_distance`).
//!
//! Fitting (sorting the reference, its edges and bin proportions) happens once; scoring a current
//! sample sorts it and walks both sorted samples once.
//!
//! Input file (`datagen drift`): magic `RPBDRIFT`, u64 LE F, n_ref, n_cur, then the reference as
//! F rows of n_ref f64 (feature-major), then the current sample as F rows of n_cur f64.

use std::io;
use std::path::Path;

use rayon::prelude::*;

use crate::input::write_atomic;
use crate::tables::{self, Sampler};

pub const TASK: &str = "drift";
pub const MAGIC: &[u8; 8] = b"RPBDRIFT";
/// Features per file written by the generator.
pub const FEATURES: usize = 8;
/// Bins: the reference deciles.
pub const BINS: usize = 10;
/// The proportion PSI uses for an empty bin.
pub const EMPTY_BIN: f64 = 1e-4;

/// A drift input: reference and current samples, feature-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    pub features: usize,
    pub n_ref: usize,
    pub n_cur: usize,
    pub reference: Vec<f64>,
    pub current: Vec<f64>,
}

impl Samples {
    pub fn reference_row(&self, f: usize) -> &[f64] {
        &self.reference[f * self.n_ref..(f + 1) * self.n_ref]
    }

    pub fn current_row(&self, f: usize) -> &[f64] {
        &self.current[f * self.n_cur..(f + 1) * self.n_cur]
    }
}

/// Reads a drift input file.
pub fn read(path: &Path) -> Result<Samples, String> {
    let (h, body) = tables::read_with_header(path, MAGIC, 3, |h| {
        h[0].checked_mul(h[1].checked_add(h[2])?)?.checked_mul(8)
    })?;
    let (features, n_ref, n_cur) = (h[0] as usize, h[1] as usize, h[2] as usize);
    if features == 0 || n_ref == 0 || n_cur == 0 {
        return Err(format!("{}: empty sample in header {h:?}", path.display()));
    }
    let split = features * n_ref * 8;
    Ok(Samples {
        features,
        n_ref,
        n_cur,
        reference: tables::f64s(&body[..split]),
        current: tables::f64s(&body[split..]),
    })
}

/// Writes the generator's file: `FEATURES` features, n reference values per feature drawn from
/// normal(0, 1) and n/2 current values from normal(0.1, 1.1^2). Returns the bytes written.
pub fn write_input(path: &Path, n: u64, seed: u64) -> io::Result<u64> {
    let n_cur = (n / 2).max(1);
    let f = FEATURES as u64;
    let mut s = Sampler::new(seed);
    write_atomic(path, |w| {
        tables::write_header(w, MAGIC, &[f, n, n_cur])?;
        for _ in 0..f * n {
            tables::write_f64s(w, [s.normal()])?;
        }
        for _ in 0..f * n_cur {
            tables::write_f64s(w, [0.1 + 1.1 * s.normal()])?;
        }
        Ok(())
    })?;
    Ok(32 + 8 * f * (n + n_cur))
}

/// NumPy's `linear` quantile of sorted, non-empty `s` at probability `q`, bit for bit: the virtual
/// index h = (n - 1) q, then `_lerp` from the neighbours, which interpolates from the upper
/// neighbour when the fraction is at least 0.5.
pub fn quantile_sorted(s: &[f64], q: f64) -> f64 {
    let h = (s.len() - 1) as f64 * q;
    let lo = h.floor();
    let g = h - lo;
    let i = lo as usize;
    let a = s[i];
    let b = s[(i + 1).min(s.len() - 1)];
    let diff = b - a;
    if g >= 0.5 {
        b - diff * (1.0 - g)
    } else {
        a + diff * g
    }
}

/// The BINS - 1 decile edges of sorted `s`.
pub fn decile_edges(s: &[f64]) -> [f64; BINS - 1] {
    std::array::from_fn(|k| quantile_sorted(s, (k + 1) as f64 / BINS as f64))
}

/// Bin proportions of sorted `s` for `edges` (bin b = #{k : e_k <= x}).
pub fn bin_proportions(s: &[f64], edges: &[f64; BINS - 1]) -> [f64; BINS] {
    let n = s.len() as f64;
    let mut below = [0usize; BINS + 1]; // below[k] = #{x < e_k}, below[0] = 0, below[BINS] = n
    for (k, e) in edges.iter().enumerate() {
        below[k + 1] = s.partition_point(|x| x < e);
    }
    below[BINS] = s.len();
    std::array::from_fn(|b| (below[b + 1] - below[b]) as f64 / n)
}

/// The fitted reference of one feature.
#[derive(Debug, Clone)]
pub struct FeatureRef {
    pub sorted: Vec<f64>,
    pub edges: [f64; BINS - 1],
    pub proportions: [f64; BINS],
}

/// Fits one feature: sorts a copy of `x` (NaN-free input: `total_cmp`), its edges and bins.
pub fn fit_feature(x: &[f64]) -> FeatureRef {
    let mut sorted = x.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let edges = decile_edges(&sorted);
    let proportions = bin_proportions(&sorted, &edges);
    FeatureRef {
        sorted,
        edges,
        proportions,
    }
}

/// The four metrics of one feature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    pub psi: f64,
    pub ks: f64,
    pub w1: f64,
    pub js: f64,
}

impl Metrics {
    pub fn as_array(&self) -> [f64; 4] {
        [self.psi, self.ks, self.w1, self.js]
    }
}

/// PSI of two proportion vectors, empty bins set to `EMPTY_BIN`.
pub fn psi(r: &[f64; BINS], c: &[f64; BINS]) -> f64 {
    let fix = |p: f64| if p == 0.0 { EMPTY_BIN } else { p };
    r.iter()
        .zip(c)
        .map(|(&r, &c)| {
            let (r, c) = (fix(r), fix(c));
            (c - r) * (c / r).ln()
        })
        .sum()
}

/// Jensen-Shannon distance (natural log) of two proportion vectors.
pub fn jensen_shannon(p: &[f64; BINS], q: &[f64; BINS]) -> f64 {
    let rel_entr = |x: f64, m: f64| if x > 0.0 { x * (x / m).ln() } else { 0.0 };
    let (mut left, mut right) = (0.0, 0.0);
    for (&p, &q) in p.iter().zip(q) {
        let m = (p + q) / 2.0;
        left += rel_entr(p, m);
        right += rel_entr(q, m);
    }
    ((left + right) / 2.0).sqrt()
}

/// KS statistic and Wasserstein-1 distance of two sorted samples, in one merge walk over the
/// pooled values: after each distinct value v, d = F_a(v) - F_b(v) (computed as i/n_a - j/n_b,
/// as SciPy does) and the area |d| * (next value - v).
pub fn ks_w1_sorted(a: &[f64], b: &[f64]) -> (f64, f64) {
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let (mut ks, mut w1) = (0.0f64, 0.0f64);
    while i < a.len() || j < b.len() {
        let v = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => unreachable!(),
        };
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        let d = (i as f64 / na - j as f64 / nb).abs();
        ks = ks.max(d);
        let next = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        w1 += d * (next - v);
    }
    (ks, w1)
}

/// Scores one current sample against a fitted feature.
pub fn score_feature(r: &FeatureRef, current: &[f64]) -> Metrics {
    let mut cur = current.to_vec();
    cur.sort_unstable_by(f64::total_cmp);
    let c = bin_proportions(&cur, &r.edges);
    let (ks, w1) = ks_w1_sorted(&r.sorted, &cur);
    Metrics {
        psi: psi(&r.proportions, &c),
        ks,
        w1,
        js: jensen_shannon(&r.proportions, &c),
    }
}

/// A fitted reference: one [`FeatureRef`] per feature.
#[derive(Debug, Clone)]
pub struct Reference {
    pub features: Vec<FeatureRef>,
}

impl Reference {
    /// Fits `features` rows of `n` values each (feature-major), one after the other.
    pub fn fit(data: &[f64], n: usize) -> Reference {
        Reference {
            features: data.chunks_exact(n).map(fit_feature).collect(),
        }
    }

    /// Fits the features in parallel (rayon, on the current pool).
    pub fn fit_par(data: &[f64], n: usize) -> Reference {
        Reference {
            features: data.par_chunks_exact(n).map(fit_feature).collect(),
        }
    }

    /// Scores `current` (one row of `n` values per feature, feature-major), one feature after
    /// the other.
    pub fn score(&self, current: &[f64], n: usize) -> Vec<Metrics> {
        self.check(current, n);
        self.features
            .iter()
            .zip(current.chunks_exact(n))
            .map(|(r, c)| score_feature(r, c))
            .collect()
    }

    /// Scores the features in parallel (rayon, on the current pool).
    pub fn score_par(&self, current: &[f64], n: usize) -> Vec<Metrics> {
        self.check(current, n);
        self.features
            .par_iter()
            .zip(current.par_chunks_exact(n))
            .map(|(r, c)| score_feature(r, c))
            .collect()
    }

    fn check(&self, current: &[f64], n: usize) {
        assert!(
            n > 0 && current.len() == n * self.features.len(),
            "current sample has {} values, expected {} features x {n}",
            current.len(),
            self.features.len()
        );
    }
}

/// The checksum: per feature PSI, KS, W1, JS, each in its shortest round-trip form.
pub fn checksum(metrics: &[Metrics]) -> String {
    metrics
        .iter()
        .flat_map(Metrics::as_array)
        .map(|x| format!("{x:?}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_ks_w1(a: &[f64], b: &[f64]) -> (f64, f64) {
        // Straight from the definitions: the step CDFs at every pooled value.
        let mut all: Vec<f64> = a.iter().chain(b).copied().collect();
        all.sort_by(f64::total_cmp);
        let cdf = |s: &[f64], x: f64| s.iter().filter(|&&v| v <= x).count() as f64 / s.len() as f64;
        let mut ks = 0.0f64;
        let mut w1 = 0.0;
        for (k, &x) in all.iter().enumerate() {
            let d = (cdf(a, x) - cdf(b, x)).abs();
            ks = ks.max(d);
            if k + 1 < all.len() {
                w1 += d * (all[k + 1] - x);
            }
        }
        (ks, w1)
    }

    #[test]
    fn ks_w1_match_brute_force_with_ties() {
        let mut a = vec![0.5, 1.0, 1.0, 2.0, 3.5, -1.0, 2.0];
        let mut b = vec![1.0, 2.0, 2.5, 0.0, 4.0];
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        let (ks, w1) = ks_w1_sorted(&a, &b);
        let (bk, bw) = brute_ks_w1(&a, &b);
        assert_eq!(ks, bk);
        assert!((w1 - bw).abs() < 1e-12, "{w1} {bw}");
        // Identical samples: no drift.
        assert_eq!(ks_w1_sorted(&a, &a), (0.0, 0.0));
        // Disjoint: KS 1, W1 = difference of means.
        let (ks, w1) = ks_w1_sorted(&[0.0, 1.0], &[10.0, 11.0]);
        assert_eq!(ks, 1.0);
        assert!((w1 - 10.0).abs() < 1e-12);
    }

    #[test]
    fn quantiles_follow_numpy_linear() {
        // np.quantile([1, 2, 4, 8, 16], [0.1, 0.5, 0.75, 0.9]) == [1.4, 4.0, 8.0, 12.8]
        let s = [1.0, 2.0, 4.0, 8.0, 16.0];
        assert!((quantile_sorted(&s, 0.1) - 1.4).abs() < 1e-15);
        assert_eq!(quantile_sorted(&s, 0.5), 4.0);
        assert_eq!(quantile_sorted(&s, 0.75), 8.0);
        assert!((quantile_sorted(&s, 0.9) - 12.8).abs() < 1e-14);
        assert_eq!(quantile_sorted(&[3.0], 0.9), 3.0);
    }

    #[test]
    fn bins_psi_js() {
        let s: Vec<f64> = (0..100).map(f64::from).collect();
        let edges = decile_edges(&s);
        let p = bin_proportions(&s, &edges);
        assert!(p.iter().all(|&x| (x - 0.1).abs() < 0.02), "{p:?}");
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(psi(&p, &p), 0.0);
        assert_eq!(jensen_shannon(&p, &p), 0.0);
        let mut q = [0.0; BINS];
        q[0] = 1.0;
        // Disjoint supports: JS = sqrt(ln 2).
        let mut r = [0.0; BINS];
        r[9] = 1.0;
        assert!((jensen_shannon(&q, &r) - 2f64.ln().sqrt()).abs() < 1e-15);
        // Empty bins take 1e-4: two bins swap all their mass.
        let want = 2.0 * (1.0 - EMPTY_BIN) * (1.0 / EMPTY_BIN).ln();
        assert!((psi(&q, &r) - want).abs() < 1e-12);
    }

    #[test]
    fn sequential_and_parallel_agree() {
        let mut s = Sampler::new(3);
        let (f, n, m) = (5, 301, 150);
        let reference: Vec<f64> = (0..f * n).map(|_| s.normal()).collect();
        let current: Vec<f64> = (0..f * m).map(|_| 0.1 + 1.1 * s.normal()).collect();
        let a = Reference::fit(&reference, n).score(&current, m);
        let b = Reference::fit_par(&reference, n).score_par(&current, m);
        assert_eq!(a, b);
        assert_eq!(a.len(), f);
        for (k, metrics) in a.iter().enumerate() {
            let mut r = reference[k * n..(k + 1) * n].to_vec();
            let mut c = current[k * m..(k + 1) * m].to_vec();
            r.sort_by(f64::total_cmp);
            c.sort_by(f64::total_cmp);
            let (ks, w1) = brute_ks_w1(&r, &c);
            assert_eq!(metrics.ks, ks);
            assert!((metrics.w1 - w1).abs() <= 1e-12 * w1);
            assert!(metrics.psi > 0.0 && metrics.js > 0.0);
        }
        assert_eq!(checksum(&a).split(' ').count(), 4 * f);
    }

    #[test]
    fn file_round_trip() {
        let d = std::env::temp_dir().join(format!("rpb-drift-{}", std::process::id()));
        let p = d.join("d.bin");
        let bytes = write_input(&p, 10, 7).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), bytes);
        let s = read(&p).unwrap();
        assert_eq!((s.features, s.n_ref, s.n_cur), (FEATURES, 10, 5));
        assert_eq!(s.current_row(1).len(), 5);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
