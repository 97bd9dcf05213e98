//! parallel kernels (strong scaling): a compute-bound variant of sum_squares. Each value goes
//! through [`ROUNDS`] rounds of the SplitMix64 finaliser and the results are summed modulo 2^64
//! (wrapping), so the work per element is a few dozen dependent integer operations and no
//! closed form exists for the compiler to find.
//!
//! The same function, written out in every implementation (Python, NumPy, Numba, Rust):
//! ```text
//! z = x
//! repeat ROUNDS times:
//!     z = z + 0x9E3779B97F4A7C15            (mod 2^64)
//!     z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9  (mod 2^64)
//!     z = (z ^ (z >> 27)) * 0x94D049BB133111EB  (mod 2^64)
//!     z = z ^ (z >> 31)
//! result = sum of z over all x               (mod 2^64)
//! ```

use rayon::prelude::*;

pub const TASK: &str = "parallel";

/// Hash rounds per element.
pub const ROUNDS: u32 = 8;

/// The per-element hash: [`ROUNDS`] rounds of the SplitMix64 step and finaliser.
#[inline]
pub fn mix(x: u64) -> u64 {
    let mut z = x;
    for _ in 0..ROUNDS {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
    }
    z
}

/// One thread: the plain loop.
pub fn serial(data: &[u64]) -> u64 {
    data.iter().fold(0u64, |acc, &x| acc.wrapping_add(mix(x)))
}

/// `std::thread::scope` over `threads` contiguous chunks of (nearly) equal length.
pub fn scoped_threads(data: &[u64], threads: usize) -> u64 {
    let threads = threads.max(1);
    let chunk = data.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = data
            .chunks(chunk)
            .map(|part| s.spawn(move || serial(part)))
            .collect();
        handles.into_iter().fold(0u64, |acc, h| {
            acc.wrapping_add(h.join().expect("a worker thread panicked"))
        })
    })
}

/// rayon's parallel iterator, run inside `pool` (built with exactly P threads by the caller).
pub fn rayon(pool: &rayon::ThreadPool, data: &[u64]) -> u64 {
    pool.install(|| {
        data.par_iter()
            .map(|&x| mix(x))
            .reduce(|| 0u64, u64::wrapping_add)
    })
}

/// A rayon pool of exactly `threads` threads.
pub fn rayon_pool(threads: usize) -> Result<rayon::ThreadPool, String> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| format!("cannot start a rayon pool of {threads} threads: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datagen::sum_squares_values;

    fn data(n: usize) -> Vec<u64> {
        sum_squares_values(42, n)
            .iter()
            .map(|&x| x as u64)
            .collect()
    }

    #[test]
    fn mix_known_values() {
        // One round from 0 is the first SplitMix64 output for seed 0.
        let mut z: u64 = 0x9E37_79B9_7F4A_7C15;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        assert_eq!(z, 0xE220_A839_7B1D_CDAF);
        // Fixed values (checked against the Python implementation).
        assert_eq!(mix(0), MIX_0);
        assert_eq!(mix(12149), MIX_12149);
    }

    const MIX_0: u64 = 9_169_471_704_609_646_880;
    const MIX_12149: u64 = 14_845_669_625_055_974_092;

    #[test]
    fn implementations_agree() {
        let pool1 = rayon_pool(1).unwrap();
        let pool3 = rayon_pool(3).unwrap();
        for n in [0usize, 1, 2, 3, 7, 1000, 10_007] {
            let d = data(n);
            let want = serial(&d);
            for p in 1..=5 {
                assert_eq!(scoped_threads(&d, p), want, "threads n={n} p={p}");
            }
            assert_eq!(rayon(&pool1, &d), want, "rayon1 n={n}");
            assert_eq!(rayon(&pool3, &d), want, "rayon3 n={n}");
        }
    }

    #[test]
    fn sum_wraps() {
        assert_eq!(serial(&[]), 0);
        let d = vec![5u64; 1000];
        assert_eq!(serial(&d), mix(5).wrapping_mul(1000));
    }
}
