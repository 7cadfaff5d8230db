//! Base online learners: each turns a gradient `g` into a direction `d` so that the learner's
//! iterate moves as `z ← z − γ·d` (ALGORITHMS.md §1.1). A learner is proved and tested once
//! with a fixed step; a [`Conversion`](crate::conversion::Conversion) decides where `g` is
//! evaluated and which point is returned.

use crate::element::Element;
use crate::error::ConfigError;
use std::fmt::Debug;

mod adam;
mod radam;
mod sgd;

pub use adam::{Adam, BiasCorrection, StepCount};
pub use radam::RAdam;
pub use sgd::Sgd;

/// Step counters a learner may use for its per-step scalars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepIndex {
    /// Completed updates of the parameter's group (`k` of the reference code).
    pub group: u64,
    /// Updates this parameter has received (differs from `group` when it skipped steps).
    pub param: u64,
}

/// A base online learner (SGD, Adam, ...), composed into an optimizer's fused loop.
///
/// Per-element state lives in `slots` (one value per slot per element, interleaved), zero at
/// creation. `direction` is called once per element per step and must not allocate.
pub trait Learner: Clone + Debug + Send + Sync {
    /// Per-step scalars (bias corrections, ...), computed once per tensor in `f64`.
    type Scalars: Copy + Send + Sync + std::fmt::Debug;

    /// Short name used in saved state and reports, e.g. `"adam"`.
    fn name(&self) -> &'static str;

    /// Names of the per-element state slots, e.g. `["exp_avg_sq"]`.
    fn slot_names(&self) -> &'static [&'static str];

    /// Validate hyperparameters.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] naming the first invalid field.
    fn validate(&self) -> Result<(), ConfigError>;

    /// Whether the learner carries its own momentum (a Schedule-Free wrapper refuses those:
    /// averaging already provides momentum).
    fn has_momentum(&self) -> bool;

    /// Multiplier the learner applies to the scheduled lr of the group's update after `k`
    /// completed updates (RAdam's rectification, the paper-style bias correction of
    /// `AdamWScheduleFreePaper`). It enters `lr_max` and hence the averaging weights.
    fn lr_factor(&self, _k: u64) -> f64 {
        1.0
    }

    /// Per-step scalars for one parameter tensor.
    fn scalars(&self, k: StepIndex) -> Self::Scalars;

    /// The direction `d` for gradient `g` (already including any L2 term), updating `slots`.
    fn direction<T: Element>(&self, sc: &Self::Scalars, g: T, slots: &mut [T]) -> T;
}
