//! The constant schedule.

use super::Schedule;

/// The constant schedule: every update uses the peak lr (`value(k) = 1`).
///
/// Errors and panics: none. Horizon: `None`. Combine with [`Warmup`](super::Warmup) for the
/// Schedule-Free default `min(1, (k+1)/W)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Constant;

impl Schedule for Constant {
    #[inline]
    fn value(&self, _k: u64) -> f64 {
        1.0
    }
}
