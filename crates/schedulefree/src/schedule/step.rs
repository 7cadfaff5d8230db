//! Step decay (PyTorch's `MultiStepLR`): linear warmup, then the
//! multiplier falls by a factor `gamma` at each milestone.

use super::warmup::warmup_factor;
use super::{Schedule, ScheduleError};

/// Linear warmup over `W` updates, then `gamma^m` where `m` is the number of milestones
/// `≤ k`: milestone `M` means "after `M` updates", so update `M + 1` is the first at the lower
/// value (torch's `MultiStepLR` stepped once per update). Horizon: `None`.
///
/// ```
/// use schedulefree::schedule::{Schedule, StepDecay};
/// let s = StepDecay::new(0, vec![50, 75], 0.1)?; // ×0.1 after 50 updates, ×0.01 after 75
/// assert_eq!((s.value(49), s.value(50), s.value(74)), (1.0, 0.1, 0.1));
/// assert!((s.value(80) - 0.01).abs() < 1e-15);
/// # Ok::<(), schedulefree::schedule::ScheduleError>(())
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StepDecay {
    warmup: u64,
    milestones: Vec<u64>,
    gamma: f64,
}

impl StepDecay {
    /// Warm up over `warmup` updates, then multiply by `gamma` at each of `milestones`
    /// (strictly increasing update counts, each `≥ warmup` and `≥ 1`).
    ///
    /// # Errors
    /// [`ScheduleError::InvalidValue`] for `gamma` outside `[0, 1]`, or milestones that are not
    /// strictly increasing; [`ScheduleError::MilestoneInWarmup`] for a milestone `< warmup`, or
    /// 0.
    pub fn new(warmup: u64, milestones: Vec<u64>, gamma: f64) -> Result<Self, ScheduleError> {
        if !(0.0..=1.0).contains(&gamma) {
            return Err(ScheduleError::InvalidValue {
                field: "gamma",
                value: gamma,
                expected: "0 <= gamma <= 1",
            });
        }
        if let Some(w) = milestones.windows(2).find(|w| w[1] <= w[0]) {
            return Err(ScheduleError::InvalidValue {
                field: "milestones",
                value: w[1] as f64,
                expected: "strictly increasing",
            });
        }
        // A milestone at the end of the warmup is meaningful (it scales the first update
        // after it); one inside the warmup, or 0, is not.
        if let Some(&m) = milestones.first().filter(|&&m| m < warmup.max(1)) {
            return Err(ScheduleError::MilestoneInWarmup {
                milestone: m,
                warmup,
            });
        }
        Ok(Self {
            warmup,
            milestones,
            gamma,
        })
    }
}

impl Schedule for StepDecay {
    #[inline]
    fn value(&self, k: u64) -> f64 {
        warmup_factor(k, self.warmup).unwrap_or_else(|| {
            let done = self.milestones.partition_point(|&m| m <= k);
            self.gamma.powi(i32::try_from(done).unwrap_or(i32::MAX))
        })
    }
}
