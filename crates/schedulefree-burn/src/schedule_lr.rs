//! burn's `LrScheduler` over the core's schedules (`schedulefree::schedule`): `lr = peak ·
//! schedule(k)`. burn's own linear scheduler rejects an lr above 1 and a start at 0, which
//! Schedule-Free SGD's lr (often > 1) and warmup-from-zero schedules need.

use std::sync::Arc;

use burn::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use burn::optim::LearningRate;
use schedulefree::ConfigError;
use schedulefree::schedule::{Schedule, ScheduleConfig};

use crate::error::BurnAdapterError;

/// Record key of the step counter.
const STEP_KEY: &str = "step";

/// A burn [`LrScheduler`] returning `peak_lr · schedule(k)` on its `k`-th call (`k` from 0:
/// the first call gives the multiplier of the first update, the core's convention).
///
/// ```
/// use burn::lr_scheduler::LrScheduler;
/// use schedulefree::schedule::ScheduleConfig;
/// use schedulefree_burn::ScheduleLr;
///
/// let mut s = ScheduleLr::new(2.0, ScheduleConfig::Linear { warmup: 2, total: 4, end: 0.0 })?;
/// assert_eq!([s.step(), s.step(), s.step(), s.step()], [1.0, 2.0, 1.0, 0.0]);
/// # Ok::<(), schedulefree_burn::BurnAdapterError>(())
/// ```
///
/// With a Schedule-Free preset the lr it returns is the peak lr of that step and the preset's
/// own warmup still multiplies it; set the preset's `warmup_steps` to 0 if the schedule already
/// warms up. The record holds the step counter only (`"step"`); the configuration is rebuilt
/// by the caller.
#[derive(Debug, Clone)]
pub struct ScheduleLr {
    peak_lr: f64,
    config: ScheduleConfig,
    schedule: Arc<dyn Schedule>,
    k: u64,
}

impl ScheduleLr {
    /// A scheduler for `schedule` scaled by `peak_lr`.
    ///
    /// # Errors
    /// [`BurnAdapterError::Config`]: a negative or non-finite `peak_lr`, or the schedule's own
    /// validation error.
    pub fn new(peak_lr: f64, schedule: ScheduleConfig) -> Result<Self, BurnAdapterError> {
        if !(peak_lr.is_finite() && peak_lr >= 0.0) {
            return Err(ConfigError::OutOfRange {
                field: "lr",
                value: peak_lr,
                expected: "finite lr >= 0",
            }
            .into());
        }
        let built: Arc<dyn Schedule> = Arc::from(schedule.build().map_err(ConfigError::from)?);
        Ok(ScheduleLr {
            peak_lr,
            config: schedule,
            schedule: built,
            k: 0,
        })
    }

    /// The lr of the update after `k` completed updates, without advancing.
    pub fn lr_at(&self, k: u64) -> f64 {
        self.peak_lr * self.schedule.value(k)
    }

    /// Calls to [`LrScheduler::step`] so far.
    pub fn step_count(&self) -> u64 {
        self.k
    }

    /// The schedule's configuration.
    pub fn config(&self) -> &ScheduleConfig {
        &self.config
    }

    /// The peak lr.
    pub fn peak_lr(&self) -> f64 {
        self.peak_lr
    }
}

impl LrScheduler for ScheduleLr {
    fn step(&mut self) -> LearningRate {
        let lr = self.lr_at(self.k);
        self.k = self.k.saturating_add(1);
        lr
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new().with_scalar(STEP_KEY, self.k)
    }

    /// Restores the step counter; a record without one (another scheduler's) leaves it as is.
    fn load_record(&mut self, record: LrSchedulerRecord) {
        if let Some(k) = record.scalar::<u64>(STEP_KEY) {
            self.k = k;
        }
    }
}
