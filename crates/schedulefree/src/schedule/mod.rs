//! Learning-rate schedules: pure functions of the integer step.
//!
//! A schedule returns a *multiplier* of a parameter group's peak learning rate `lr`
//! (so the lr used by an update is `lr · value(k)`), computed in closed form in `f64`.
//!
//! Convention: `k` is the number of completed updates, so
//! `value(0)` is the multiplier of the first update. Linear warmup over `W` updates uses
//! `(k+1)/W`: the first update already moves, the peak is reached exactly at update `W`
//! (`k = W-1`) and never exceeded. Values clamp after the horizon and are never negative.
//!
//! Decays over a run of `T` updates use the last-iterate indexing of arXiv 2310.07831 (Theorem 1):
//! the progress after update `k` is `p = (k+1-W)/(T-W)`, so the last update (`k = T-1`) uses
//! the end value exactly (for an end of 0 the last step has zero size, `α_T = 0`), and every
//! `k >= T-1` keeps it.
//!
//! | type | shape |
//! | --- | --- |
//! | [`Constant`] | 1 |
//! | [`Warmup`] | `(k+1)/W`, then any schedule restarted at 0 |
//! | [`Linear`], [`Cosine`] | warmup, then decay to `end` at `T` |
//! | [`Wsd`] | warmup, stable at 1, [`Cooldown`] to `end` at `T` |
//! | [`InverseSqrt`] | warmup, then `sqrt(W/(k+1))` |
//! | [`StepDecay`] | warmup, then `×gamma` at each milestone |
//! | [`Tabulated`] | a table of per-update values |
//! | [`refine`] | a [`Tabulated`] schedule refined from gradient norms (arXiv 2310.07831, §3) |
//! | [`Sequence`] / [`ScheduleExt::then`] | one schedule, then another restarted at 0 |
//! | [`TorchLinearLr`], [`TorchCosineAnnealing`] | PyTorch's `LinearLR`, `CosineAnnealingLR` |
//! | [`ScheduleConfig`] | a serde description of any of the above |
//!
//! ```
//! use schedulefree::schedule::{
//!     Linear, Schedule, ScheduleConfig, ScheduleExt, TorchCosineAnnealing, TorchLinearLr,
//! };
//! let s = Linear::new(10, 100, 0.0)?; // 10 warmup updates, then linear decay to 0
//! assert_eq!(s.value(0), 0.1); // the first update moves
//! assert_eq!(s.value(9), 1.0); // the peak, at update 10
//! assert_eq!(s.value(99), 0.0); // update 100 has zero size
//! // torch: SequentialLR([LinearLR(0.1, 1.0, 10), CosineAnnealingLR(90)], milestones=[10])
//! let t = TorchLinearLr::new(0.1, 1.0, 10)?.then(10, TorchCosineAnnealing::new(90, 0.0)?);
//! assert_eq!(t.value(10), 1.0);
//! let c: ScheduleConfig = serde_json::from_str(r#"{"kind": "cosine", "warmup": 10, "total": 100}"#)?;
//! assert_eq!(c.build()?.value(99), 0.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::Debug;
use std::sync::Arc;

mod config;
mod constant;
mod cosine;
mod error;
mod inv_sqrt;
mod linear;
mod refine;
mod sequence;
mod step;
mod tabulated;
mod torch;
mod warmup;
mod warmup_decay;
mod wsd;

pub use config::ScheduleConfig;
pub use constant::Constant;
pub use cosine::Cosine;
pub use error::ScheduleError;
pub use inv_sqrt::InverseSqrt;
pub use linear::Linear;
pub use refine::{Refine, RefineNorm, refine};
pub use sequence::{ScheduleExt, Sequence};
pub use step::StepDecay;
pub use tabulated::Tabulated;
pub use torch::{TorchCosineAnnealing, TorchLinearLr};
pub use warmup::Warmup;
pub use wsd::{Cooldown, Wsd};

/// A learning-rate schedule: the multiplier of the peak lr for the update that follows
/// `k` completed updates.
///
/// Implementations must be pure (same `k`, same value), finite and non-negative for every
/// `k`, including `k` past their horizon (they clamp).
pub trait Schedule: Send + Sync + Debug {
    /// Multiplier (dimensionless, `>= 0`) of the peak lr for the update after `k` completed
    /// updates.
    fn value(&self, k: u64) -> f64;

    /// Number of updates after which the schedule stops changing, if it has one.
    fn horizon(&self) -> Option<u64> {
        None
    }
}

impl<S: Schedule + ?Sized> Schedule for Box<S> {
    #[inline]
    fn value(&self, k: u64) -> f64 {
        (**self).value(k)
    }
    fn horizon(&self) -> Option<u64> {
        (**self).horizon()
    }
}

impl<S: Schedule + ?Sized> Schedule for Arc<S> {
    #[inline]
    fn value(&self, k: u64) -> f64 {
        (**self).value(k)
    }
    fn horizon(&self) -> Option<u64> {
        (**self).horizon()
    }
}
