//! Linear warmup then inverse-square-root decay (`1/√t`).

use super::Schedule;
use super::warmup::warmup_factor;

/// Linear warmup over `W` updates, then `sqrt(max(W,1)/(k+1))`.
///
/// `value(k) = (k+1)/W` for `k < W`, then `sqrt(max(W,1)/(k+1))`: continuous at the peak
/// (`k+1 = W` gives 1), never above 1, and positive for every `k`. With `W = 0` (or `W = 1`) it
/// is the classical anytime schedule `1/sqrt(k+1)` (`1/√t` with 1-based `t`). Horizon: `None`.
///
/// Errors and panics: none. Source: the inverse-square-root schedule of
/// Transformer training (fairseq `inverse_sqrt`, whose decay is `sqrt(W/t)` as here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InverseSqrt {
    warmup: u64,
}

impl InverseSqrt {
    /// Warm up for `warmup` updates (0 = none), then decay as `sqrt(max(W,1)/(k+1))`.
    #[must_use]
    pub fn new(warmup: u64) -> Self {
        Self { warmup }
    }
}

impl Schedule for InverseSqrt {
    #[inline]
    fn value(&self, k: u64) -> f64 {
        warmup_factor(k, self.warmup)
            // k as f64 + 1 cannot overflow, unlike k + 1.
            .unwrap_or_else(|| (self.warmup.max(1) as f64 / (k as f64 + 1.0)).sqrt())
    }
}
