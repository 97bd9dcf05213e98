//! sum_squares kernels (docs/workloads.md task 2): Σx² over i64 values in [0, 2^14).
//! For N <= 10^8 every partial sum stays far below i64::MAX.

use rayon::prelude::*;

pub const TASK: &str = "sum_squares";

/// The plain loop.
pub fn scalar(data: &[i64]) -> i64 {
    let mut acc: i64 = 0;
    for &x in data {
        acc += x * x;
    }
    acc
}

/// The iterator chain.
pub fn iter(data: &[i64]) -> i64 {
    data.iter().map(|&x| x * x).sum::<i64>()
}

/// rayon on the global pool.
pub fn rayon(data: &[i64]) -> i64 {
    data.par_iter().map(|&x| x * x).sum::<i64>()
}

/// A sum_squares kernel.
pub type Kernel = fn(&[i64]) -> i64;

/// Implementations by name (`--impl`); each reports itself as `rs-<name>`.
pub const IMPLS: &[(&str, Kernel)] = &[("scalar", scalar), ("iter", iter), ("rayon", rayon)];

pub fn kernel(name: &str) -> Option<Kernel> {
    IMPLS.iter().find(|(n, _)| *n == name).map(|&(_, f)| f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datagen::sum_squares_values;

    fn naive(data: &[i64]) -> u128 {
        data.iter().map(|&x| (x as i128 * x as i128) as u128).sum()
    }

    #[test]
    fn kernels_agree_with_each_other_and_u128() {
        for (n, seed) in [(0usize, 1u64), (1, 2), (7, 3), (1000, 4), (100_003, 42)] {
            let data = sum_squares_values(seed, n);
            let want = naive(&data);
            for (name, f) in IMPLS {
                assert_eq!(f(&data) as u128, want, "{name} n={n} seed={seed}");
            }
        }
    }

    #[test]
    fn kernels_on_edge_values() {
        let data = vec![0i64, 16383, 1, 16383, 2];
        for (name, f) in IMPLS {
            assert_eq!(f(&data), 2 * 16383 * 16383 + 1 + 4, "{name}");
        }
    }

    #[test]
    fn lookup() {
        assert!(kernel("scalar").is_some());
        assert!(kernel("rayon").is_some());
        assert!(kernel("numpy").is_none());
    }
}
