//! The logistic-regression model of the batch_scoring and serving_api tasks: 32 fixed weights
//! `w_j = sin(j + 1)`, bias 0.1, score `1 / (1 + exp(-(w·x + b)))`.
//!
//! Shared by the axum server and the PyO3 module, so every Rust route scores with the same code.

/// Features per row.
pub const N_FEATURES: usize = 32;

/// The model's bias.
pub const BIAS: f64 = 0.1;

/// `w_j = sin(j + 1)` for `j = 0..N_FEATURES`.
pub fn weights() -> [f64; N_FEATURES] {
    std::array::from_fn(|j| ((j + 1) as f64).sin())
}

/// Holds the weights so a hot path does not recompute 32 sines per call.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    w: [f64; N_FEATURES],
    b: f64,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            w: weights(),
            b: BIAS,
        }
    }
}

impl Model {
    /// The logistic score of one row: a dot product in feature order, then the sigmoid.
    #[inline]
    pub fn score(&self, x: &[f64; N_FEATURES]) -> f64 {
        let z = self.w.iter().zip(x).fold(self.b, |acc, (w, v)| acc + w * v);
        1.0 / (1.0 + (-z).exp())
    }
}

/// The logistic score of one row with the task's fixed weights.
pub fn logistic_score(x: &[f64; N_FEATURES]) -> f64 {
    // One `Model` per thread: the weights are computed once, not per call.
    thread_local! {
        static MODEL: Model = Model::default();
    }
    MODEL.with(|m| m.score(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / a.abs().max(b.abs())
    }

    #[test]
    fn zeros_give_the_sigmoid_of_the_bias() {
        let s = logistic_score(&[0.0; N_FEATURES]);
        assert!(rel(s, 1.0 / (1.0 + (-0.1f64).exp())) < 1e-15, "{s}");
    }

    #[test]
    fn weights_are_sines() {
        let w = weights();
        assert_eq!(w[0], 1f64.sin());
        assert_eq!(w[31], 32f64.sin());
    }

    #[test]
    fn ones_agree_with_a_direct_sum() {
        // sum_{k=1..32} sin(k) + 0.1, computed independently in closed form:
        // sum sin(k) = sin(n/2) sin((n+1)/2) / sin(1/2) for n = 32.
        let z = (16f64).sin() * (16.5f64).sin() / (0.5f64).sin() + 0.1;
        let expected = 1.0 / (1.0 + (-z).exp());
        let s = logistic_score(&[1.0; N_FEATURES]);
        assert!(rel(s, expected) < 1e-13, "{s} vs {expected}");
    }

    #[test]
    fn extreme_inputs_saturate_without_nan() {
        let big: [f64; N_FEATURES] =
            std::array::from_fn(|j| if weights()[j] > 0.0 { 1e3 } else { -1e3 });
        assert_eq!(logistic_score(&big), 1.0);
        let small: [f64; N_FEATURES] =
            std::array::from_fn(|j| if weights()[j] > 0.0 { -1e3 } else { 1e3 });
        assert_eq!(logistic_score(&small), 0.0);
    }
}
