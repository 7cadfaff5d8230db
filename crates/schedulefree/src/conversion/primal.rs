//! Primal averaging (Nesterov & Shikhman 2015; Tao et al. 2018):
//! gradients are taken at the running average itself.

use super::{AveragingState, AveragingWeights, Conversion};
use crate::element::{Element, lerp};
use crate::error::ConfigError;

/// Primal averaging: the buffer holds `x`; `z ← s·z − γ·d`, `x ← (1 − c)·x + c·z`, and the
/// next gradient is taken at `x`. Equals Schedule-Free with `β = 1` (Road Less Scheduled,
/// Theorem 2 with `β_t = 1`; tested as an identity).
///
/// Slots: `["z"]`. No modes: the buffer always holds the returned point.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PrimalAverage {
    /// Averaging weights.
    pub weights: AveragingWeights,
}

/// Per-step scalars of [`PrimalAverage`].
#[derive(Debug, Clone, Copy)]
pub struct PrimalScalars {
    c: f64,
}

impl Conversion for PrimalAverage {
    type Scalars = PrimalScalars;
    const SLOTS: usize = 1;
    fn name(&self) -> &'static str {
        "primal_average"
    }
    fn slot_names(&self) -> &'static [&'static str] {
        &["z"]
    }
    fn validate(&self) -> Result<(), ConfigError> {
        self.weights.validate()
    }
    fn scalars(&self, avg: &mut AveragingState, lr: f64, k: u64) -> (PrimalScalars, f64) {
        let c = self.weights.advance(avg, lr, k);
        (PrimalScalars { c }, c)
    }
    fn init_slots<T: Element>(&self, p: T, slots: &mut [T]) {
        slots[0] = p;
    }
    #[inline(always)]
    fn update<T: Element>(
        &self,
        sc: &PrimalScalars,
        lr: T,
        shrink: T,
        p: &mut T,
        slots: &mut [T],
        d: T,
    ) {
        let z = slots[0] * shrink - lr * d;
        slots[0] = z;
        *p = lerp(*p, z, T::of(sc.c));
    }
    #[inline(always)]
    fn iterate<T: Element>(&self, _p: T, slots: &[T]) -> T {
        slots[0]
    }
    #[inline(always)]
    fn set_iterate<T: Element>(&self, sc: &PrimalScalars, p: &mut T, slots: &mut [T], z_new: T) {
        *p = *p + T::of(sc.c) * (z_new - slots[0]);
        slots[0] = z_new;
    }
    fn has_modes(&self) -> bool {
        false
    }
}
