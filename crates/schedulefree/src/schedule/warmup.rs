//! Linear warmup, as the Schedule-Free classes' `warmup_steps` (schedulefree 1.4.1).

use super::Schedule;

/// The warmup factor `(k+1)/W` while `k < W`, `None` after. Exactly 1 at `k = W-1`.
#[inline]
pub(crate) fn warmup_factor(k: u64, warmup: u64) -> Option<f64> {
    // k < W, so k + 1 cannot overflow.
    (k < warmup).then(|| (k + 1) as f64 / warmup as f64)
}

/// Linear warmup over `warmup` updates, then `schedule` restarted at 0.
///
/// `value(k) = (k+1)/W` for `k < W` (the first update uses `1/W`, update `W` uses exactly 1),
/// then `schedule.value(k - W)`. `Warmup::new(0, s)` equals `s`. With `schedule` =
/// [`Constant`](super::Constant) this is the Schedule-Free reference warmup `min(1, (k+1)/W)`.
/// Horizon: `W + schedule.horizon()` (`None` if the inner one is `None`).
///
/// Errors and panics: none. Source: the `(k+1)/W` convention of
/// `schedulefree` 1.4.1 and optax (`pytorch_optimizer`'s WSD uses `k/W`, whose first update is 0).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Warmup<S> {
    warmup: u64,
    schedule: S,
}

impl<S: Schedule> Warmup<S> {
    /// Warm up for `warmup` updates (0 = no warmup), then follow `schedule`.
    #[must_use]
    pub fn new(warmup: u64, schedule: S) -> Self {
        Self { warmup, schedule }
    }
}

impl<S: Schedule> Schedule for Warmup<S> {
    #[inline]
    fn value(&self, k: u64) -> f64 {
        warmup_factor(k, self.warmup).unwrap_or_else(|| self.schedule.value(k - self.warmup))
    }
    fn horizon(&self) -> Option<u64> {
        self.schedule
            .horizon()
            .map(|h| h.saturating_add(self.warmup))
    }
}
