//! A serde description of any schedule, for config files and the lab CLI.

use super::{
    Constant, Cooldown, Cosine, InverseSqrt, Linear, Schedule, ScheduleError, Sequence, StepDecay,
    Tabulated, TorchCosineAnnealing, TorchLinearLr, Warmup, Wsd,
};
use serde::{Deserialize, Serialize};

/// Any schedule of this module as data, tagged by `kind` in snake case, e.g.
/// `{"kind": "linear", "warmup": 100, "total": 1000, "end": 0.0}`.
///
/// Field names and meanings are those of the constructors; `warmup` and `end` default to 0.
/// Nothing is validated until [`build`](Self::build).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum ScheduleConfig {
    /// [`Constant`]. A struct variant (with no fields) so that unknown keys such as a
    /// misplaced `warmup` are rejected rather than ignored.
    Constant {},
    /// [`Warmup`]: `warmup` updates of warmup, then `schedule` restarted at 0.
    Warmup {
        /// Warmup length in updates.
        warmup: u64,
        /// What follows the warmup.
        schedule: Box<ScheduleConfig>,
    },
    /// [`Linear`].
    Linear {
        /// Warmup length in updates.
        #[serde(default)]
        warmup: u64,
        /// Run length in updates.
        total: u64,
        /// Multiplier at the last update.
        #[serde(default)]
        end: f64,
    },
    /// [`Cosine`].
    Cosine {
        /// Warmup length in updates.
        #[serde(default)]
        warmup: u64,
        /// Run length in updates.
        total: u64,
        /// Multiplier at the last update (the floor).
        #[serde(default)]
        end: f64,
    },
    /// [`Wsd`].
    Wsd {
        /// Warmup length in updates.
        #[serde(default)]
        warmup: u64,
        /// Run length in updates.
        total: u64,
        /// Cooldown length in updates (the last ones of the run).
        decay: u64,
        /// Cooldown shape.
        shape: Cooldown,
        /// Multiplier at the last update (the floor).
        #[serde(default)]
        end: f64,
    },
    /// [`InverseSqrt`].
    InverseSqrt {
        /// Warmup length in updates.
        #[serde(default)]
        warmup: u64,
    },
    /// [`StepDecay`].
    Step {
        /// Warmup length in updates.
        #[serde(default)]
        warmup: u64,
        /// Update counts after which the multiplier drops by `gamma` (strictly increasing).
        milestones: Vec<u64>,
        /// Factor per milestone, in `[0, 1]`.
        gamma: f64,
    },
    /// [`Tabulated`].
    Tabulated {
        /// One multiplier per update.
        values: Vec<f64>,
    },
    /// [`TorchLinearLr`].
    TorchLinearLr {
        /// Multiplier of the first update.
        start_factor: f64,
        /// Multiplier from update `total_iters + 1` on.
        end_factor: f64,
        /// Interpolation length in updates.
        total_iters: u64,
    },
    /// [`TorchCosineAnnealing`].
    TorchCosineAnnealing {
        /// Half-period in updates.
        t_max: u64,
        /// torch's `eta_min` divided by the base lr.
        eta_min_factor: f64,
    },
    /// [`Sequence`]: `first` for `at` updates, then `then` restarted at 0.
    Sequence {
        /// The leading schedule.
        first: Box<ScheduleConfig>,
        /// Number of updates that use `first`.
        at: u64,
        /// The schedule from update `at + 1` on.
        then: Box<ScheduleConfig>,
    },
}

impl ScheduleConfig {
    /// Validate and build the schedule.
    ///
    /// # Errors
    /// The [`ScheduleError`] of the constructor it calls (the first one, for nested configs).
    pub fn build(&self) -> Result<Box<dyn Schedule>, ScheduleError> {
        Ok(match self {
            Self::Constant {} => Box::new(Constant),
            Self::Warmup { warmup, schedule } => Box::new(Warmup::new(*warmup, schedule.build()?)),
            Self::Linear { warmup, total, end } => Box::new(Linear::new(*warmup, *total, *end)?),
            Self::Cosine { warmup, total, end } => Box::new(Cosine::new(*warmup, *total, *end)?),
            Self::Wsd {
                warmup,
                total,
                decay,
                shape,
                end,
            } => Box::new(Wsd::new(*warmup, *total, *decay, *shape, *end)?),
            Self::InverseSqrt { warmup } => Box::new(InverseSqrt::new(*warmup)),
            Self::Step {
                warmup,
                milestones,
                gamma,
            } => Box::new(StepDecay::new(*warmup, milestones.clone(), *gamma)?),
            Self::Tabulated { values } => Box::new(Tabulated::new(values.clone())?),
            Self::TorchLinearLr {
                start_factor,
                end_factor,
                total_iters,
            } => Box::new(TorchLinearLr::new(
                *start_factor,
                *end_factor,
                *total_iters,
            )?),
            Self::TorchCosineAnnealing {
                t_max,
                eta_min_factor,
            } => Box::new(TorchCosineAnnealing::new(*t_max, *eta_min_factor)?),
            Self::Sequence { first, at, then } => {
                Box::new(Sequence::new(first.build()?, *at, then.build()?))
            }
        })
    }
}
