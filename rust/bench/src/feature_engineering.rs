//! feature_engineering kernels (WORKLOADS.md task 8). From a table with numeric features
//! x0..x3, a low-cardinality category `cat_low`, a high-cardinality category `cat_high`, a group
//! key `grp` and an order column `t`, build these output columns, in this order:
//!
//! - `z_x0`..`z_x3`: z-scores, (x - mean) / std with the sample standard deviation (ddof = 1,
//!   the pandas and polars default);
//! - `low_<v>` for each distinct `cat_low` value v, ascending: one-hot indicators (0.0 / 1.0);
//! - `freq_high`: frequency encoding of `cat_high`, the value's count divided by the row count;
//! - `grp_mean_x0`: the mean of x0 over the row's group, joined back to each row;
//! - `roll_mean_x1`: within the row's group, ordered by `t`, the mean of x1 over the last
//!   `WINDOW` rows up to and including this one (fewer at the start of a group).
//!
//! Categories and keys are arbitrary i64 values (hashed, never used as indices). The checksum is
//! per output column the sum of absolute values (a plain sum of z-scores is zero up to
//! rounding, so it could not be compared with a relative tolerance).
//!
//! Input file (`datagen feature-engineering`): magic `RPBFEAT1`, u64 LE n, then 8 columns of n
//! little-endian values: x0, x1, x2, x3 (f64), cat_low, cat_high, grp, t (i64).

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;

use crate::input::write_atomic;
use crate::tables::{self, Sampler};

pub const TASK: &str = "feature_engineering";
pub const MAGIC: &[u8; 8] = b"RPBFEAT1";
pub const NUMERIC: usize = 4;
/// Rows in the rolling window.
pub const WINDOW: usize = 5;
/// Generator parameters: levels of the categories and groups.
pub const LOW_LEVELS: u64 = 8;
pub const HIGH_LEVELS: f64 = 5000.0;
pub const GROUPS: u64 = 200;
const MEANS: [f64; NUMERIC] = [10.0, -3.0, 0.5, 100.0];
const SDS: [f64; NUMERIC] = [2.0, 1.0, 0.1, 25.0];

/// The input table, column by column.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub x: [Vec<f64>; NUMERIC],
    pub cat_low: Vec<i64>,
    pub cat_high: Vec<i64>,
    pub grp: Vec<i64>,
    pub t: Vec<i64>,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.t.len()
    }
}

/// The output: named f64 columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub names: Vec<String>,
    pub columns: Vec<Vec<f64>>,
}

/// Reads an input file.
pub fn read(path: &Path) -> Result<Table, String> {
    let (h, body) = tables::read_with_header(path, MAGIC, 1, |h| h[0].checked_mul(64))?;
    let n = h[0] as usize;
    if n < 2 {
        return Err(format!("{}: need at least 2 rows, got {n}", path.display()));
    }
    let col = |k: usize| &body[k * n * 8..(k + 1) * n * 8];
    Ok(Table {
        x: std::array::from_fn(|k| tables::f64s(col(k))),
        cat_low: tables::i64s(col(4)),
        cat_high: tables::i64s(col(5)),
        grp: tables::i64s(col(6)),
        t: tables::i64s(col(7)),
    })
}

/// Writes the generator's file with n rows: x_k = mean_k + sd_k * normal; `cat_low` uniform over
/// 8 levels; `cat_high` = floor(5000 u^2) (skewed towards small codes); `grp` uniform over 200
/// groups; `t` a random permutation of 0..n (rows arrive out of order). Returns the bytes.
pub fn write_input(path: &Path, n: u64, seed: u64) -> io::Result<u64> {
    let mut s = Sampler::new(seed);
    let rows = n as usize;
    let x: Vec<Vec<f64>> = (0..NUMERIC)
        .map(|k| (0..rows).map(|_| MEANS[k] + SDS[k] * s.normal()).collect())
        .collect();
    let cat_low: Vec<i64> = (0..rows).map(|_| s.below(LOW_LEVELS) as i64).collect();
    let cat_high: Vec<i64> = (0..rows)
        .map(|_| {
            let u = s.uniform();
            (HIGH_LEVELS * u * u) as i64
        })
        .collect();
    let grp: Vec<i64> = (0..rows).map(|_| s.below(GROUPS) as i64).collect();
    let mut t: Vec<i64> = (0..n as i64).collect();
    for i in (1..rows).rev() {
        let j = s.below(i as u64 + 1) as usize;
        t.swap(i, j);
    }
    write_atomic(path, |w| {
        tables::write_header(w, MAGIC, &[n])?;
        for col in &x {
            tables::write_f64s(w, col.iter().copied())?;
        }
        for col in [&cat_low, &cat_high, &grp, &t] {
            tables::write_i64s(w, col.iter().copied())?;
        }
        Ok(())
    })?;
    Ok(16 + 64 * n)
}

fn zscore(x: &[f64]) -> Vec<f64> {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
    let sd = var.sqrt();
    x.iter().map(|v| (v - mean) / sd).collect()
}

fn one_hot(cat: &[i64]) -> (Vec<i64>, Vec<Vec<f64>>) {
    let mut levels: Vec<i64> = cat
        .iter()
        .copied()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    levels.sort_unstable();
    let index: HashMap<i64, usize> = levels.iter().enumerate().map(|(k, &v)| (v, k)).collect();
    let mut cols = vec![vec![0.0; cat.len()]; levels.len()];
    for (i, v) in cat.iter().enumerate() {
        cols[index[v]][i] = 1.0;
    }
    (levels, cols)
}

fn frequency(cat: &[i64]) -> Vec<f64> {
    let mut counts: HashMap<i64, u64> = HashMap::new();
    for &v in cat {
        *counts.entry(v).or_insert(0) += 1;
    }
    let n = cat.len() as f64;
    cat.iter().map(|v| counts[v] as f64 / n).collect()
}

fn group_mean(grp: &[i64], x: &[f64]) -> Vec<f64> {
    let mut acc: HashMap<i64, (f64, u64)> = HashMap::new();
    for (&g, &v) in grp.iter().zip(x) {
        let e = acc.entry(g).or_insert((0.0, 0));
        e.0 += v;
        e.1 += 1;
    }
    let means: HashMap<i64, f64> = acc
        .into_iter()
        .map(|(g, (s, c))| (g, s / c as f64))
        .collect();
    grp.iter().map(|g| means[g]).collect()
}

/// The last WINDOW values of one group.
#[derive(Default)]
struct Window {
    values: [f64; WINDOW],
    len: usize,
    next: usize,
}

fn rolling_mean(grp: &[i64], t: &[i64], x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..t.len()).collect();
    order.sort_unstable_by_key(|&i| t[i]);
    let mut windows: HashMap<i64, Window> = HashMap::new();
    let mut out = vec![0.0; x.len()];
    for i in order {
        let w = windows.entry(grp[i]).or_default();
        w.values[w.next] = x[i];
        w.next = (w.next + 1) % WINDOW;
        w.len = (w.len + 1).min(WINDOW);
        out[i] = w.values[..w.len].iter().sum::<f64>() / w.len as f64;
    }
    out
}

/// Builds the output columns (see the module documentation).
pub fn engineer(t: &Table) -> Features {
    let mut names = Vec::new();
    let mut columns = Vec::new();
    for (k, x) in t.x.iter().enumerate() {
        names.push(format!("z_x{k}"));
        columns.push(zscore(x));
    }
    let (levels, hot) = one_hot(&t.cat_low);
    names.extend(levels.iter().map(|v| format!("low_{v}")));
    columns.extend(hot);
    names.push("freq_high".into());
    columns.push(frequency(&t.cat_high));
    names.push("grp_mean_x0".into());
    columns.push(group_mean(&t.grp, &t.x[0]));
    names.push("roll_mean_x1".into());
    columns.push(rolling_mean(&t.grp, &t.t, &t.x[1]));
    Features { names, columns }
}

/// The checksum: per output column, the sum of absolute values.
pub fn checksum(f: &Features) -> String {
    f.columns
        .iter()
        .map(|c| format!("{:?}", c.iter().map(|v| v.abs()).sum::<f64>()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Table {
        Table {
            x: [
                vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
                vec![0.0, 0.0, 1.0, 1.0, 2.0, 2.0],
                vec![-1.0, 1.0, -1.0, 1.0, -1.0, 1.0],
            ],
            cat_low: vec![7, 3, 7, 7, 3, 9],
            cat_high: vec![100, 100, 100, 5, 5, 42],
            grp: vec![1, 2, 1, 2, 1, 1],
            t: vec![5, 0, 3, 1, 4, 2],
        }
    }

    #[test]
    fn columns_by_hand() {
        let f = engineer(&small());
        let names: Vec<&str> = f.names.iter().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "z_x0",
                "z_x1",
                "z_x2",
                "z_x3",
                "low_3",
                "low_7",
                "low_9",
                "freq_high",
                "grp_mean_x0",
                "roll_mean_x1"
            ]
        );
        // mean 3.5, sample sd sqrt(3.5)
        let sd = 3.5f64.sqrt();
        assert!((f.columns[0][0] - (-2.5 / sd)).abs() < 1e-15);
        assert_eq!(f.columns[4], [0.0, 1.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(f.columns[6], [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(
            f.columns[7],
            [0.5, 0.5, 0.5, 2.0 / 6.0, 2.0 / 6.0, 1.0 / 6.0]
        );
        // group 1: rows 0, 2, 4, 5 (x0 = 1, 3, 5, 6), group 2: rows 1, 3 (x0 = 2, 4)
        assert_eq!(f.columns[8], [3.75, 3.0, 3.75, 3.0, 3.75, 3.75]);
        // group 1 by t: row 5 (t=2), row 2 (t=3), row 4 (t=4), row 0 (t=5)
        let r = &f.columns[9];
        assert_eq!(r[5], 60.0);
        assert_eq!(r[2], 45.0);
        assert_eq!(r[4], 140.0 / 3.0);
        assert_eq!(r[0], 37.5);
        // group 2 by t: row 1 (t=0), row 3 (t=1)
        assert_eq!((r[1], r[3]), (20.0, 30.0));
    }

    #[test]
    fn rolling_window_drops_old_rows() {
        let n = 12;
        let grp = vec![0i64; n];
        let t: Vec<i64> = (0..n as i64).collect();
        let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let r = rolling_mean(&grp, &t, &x);
        assert_eq!(r[0], 0.0);
        assert_eq!(r[4], 2.0);
        assert_eq!(r[11], 9.0); // mean of 7..=11
    }

    #[test]
    fn file_round_trip_and_checksum_shape() {
        let d = std::env::temp_dir().join(format!("rpb-fe-{}", std::process::id()));
        let p = d.join("fe.bin");
        let bytes = write_input(&p, 1000, 42).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), bytes);
        let t = read(&p).unwrap();
        assert_eq!(t.rows(), 1000);
        let mut sorted = t.t.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<i64>>());
        let f = engineer(&t);
        assert_eq!(f.columns.len(), 4 + 8 + 3);
        assert_eq!(checksum(&f).split(' ').count(), 15);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
