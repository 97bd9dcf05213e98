//! The request rows and the expected scores, computed here on purpose and not with the
//! servers' code, so a wrong model in a server cannot agree with itself.

/// Features per row.
pub const N_FEATURES: usize = 32;
/// Inputs are drawn uniformly from [-X_RANGE, X_RANGE).
pub const X_RANGE: f64 = 3.0;

/// SplitMix64 (Vigna), the suite's seeded generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// One request row.
    pub fn row(&mut self) -> [f64; N_FEATURES] {
        std::array::from_fn(|_| X_RANGE * (2.0 * self.next_f64() - 1.0))
    }
}

/// The task's logistic score: `w_j = sin(j + 1)`, bias 0.1.
pub fn expected_score(x: &[f64; N_FEATURES]) -> f64 {
    let mut z = 0.1;
    for (j, v) in x.iter().enumerate() {
        z += ((j + 1) as f64).sin() * v;
    }
    1.0 / (1.0 + (-z).exp())
}

/// The JSON request body `{"x":[...]}`; floats in shortest round-trip form, so the server
/// parses exactly the row the reference scored.
pub fn body(x: &[f64]) -> String {
    serde_json::json!({ "x": x }).to_string()
}

/// `|a - b| <= tol * max(|a|, |b|)`.
pub fn close(a: f64, b: f64, rel_tol: f64) -> bool {
    a == b || (a - b).abs() <= rel_tol * a.abs().max(b.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_seeded_and_in_range() {
        let a = Rng::new(7).row();
        assert_eq!(a, Rng::new(7).row());
        assert_ne!(a, Rng::new(8).row());
        assert!(a.iter().all(|v| (-X_RANGE..X_RANGE).contains(v)));
    }

    #[test]
    fn body_round_trips() {
        let x = Rng::new(1).row();
        let v: serde_json::Value = serde_json::from_str(&body(&x)).unwrap();
        let back: Vec<f64> = v["x"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_f64().unwrap())
            .collect();
        assert_eq!(back.len(), N_FEATURES);
        for (a, b) in back.iter().zip(&x) {
            assert!(close(*a, *b, 1e-15));
        }
    }

    #[test]
    fn score_of_zeros_is_sigmoid_of_bias() {
        let s = expected_score(&[0.0; N_FEATURES]);
        assert!(close(s, 0.52497918747894, 1e-13), "{s}");
    }

    #[test]
    fn close_is_relative() {
        assert!(close(1.0, 1.0 + 1e-13, 1e-12));
        assert!(!close(1.0, 1.0 + 1e-11, 1e-12));
        assert!(close(0.0, 0.0, 1e-12));
    }
}
