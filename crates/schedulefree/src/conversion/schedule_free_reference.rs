//! Schedule-Free with `x`, `y`, `z` all stored, as in the reference `*ScheduleFreeReference`
//! classes (schedulefree 1.4.1): three buffers, the plain form of the recursion,
//! valid for every `β ∈ [0, 1]`.

use super::{
    AveragingState, AveragingWeights, Conversion, GroupAveraging, decoupled_weight,
    validate_decoupling_c,
};
use crate::element::Element;
use crate::error::{ConfigError, check};

/// Reference Schedule-Free: `z ← s·z − γ·d`, `x ← (1 − c)·x + c·z`, `y ← β·x + (1 − β)·z`,
/// buffer `= y` (train) or `x` (eval). Road Less Scheduled, Algorithm 1 / Theorem 2.
///
/// Slots: `["z", "x", "y"]`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScheduleFreeReference {
    /// Interpolation `β ∈ [0, 1]`.
    pub beta: f64,
    /// Averaging weights.
    pub weights: AveragingWeights,
    /// Decoupled averaging weight `C ≥ 0`: `c ← min(1, c·(1 − β)·C)` after the weights
    /// ("Through the River", arXiv 2507.09846; `decoupling_c` of pytorch_optimizer); 0 (default)
    /// is off, and must be at `β = 1`.
    #[serde(default, skip_serializing_if = "super::is_off")]
    pub decoupling_c: f64,
}

impl Default for ScheduleFreeReference {
    fn default() -> Self {
        ScheduleFreeReference {
            beta: 0.9,
            weights: AveragingWeights::default(),
            decoupling_c: 0.0,
        }
    }
}

/// Per-step scalars of [`ScheduleFreeReference`].
#[derive(Debug, Clone, Copy)]
pub struct ReferenceScalars {
    c: f64,
    beta: f64,
}

impl Conversion for ScheduleFreeReference {
    type Scalars = ReferenceScalars;
    const SLOTS: usize = 3;

    fn name(&self) -> &'static str {
        "schedule_free_reference"
    }
    fn slot_names(&self) -> &'static [&'static str] {
        &["z", "x", "y"]
    }
    fn with_group_averaging(&self, o: &GroupAveraging) -> Result<Self, ConfigError> {
        let weights = o.weights_only(self.name(), self.weights)?;
        Ok(Self { weights, ..*self })
    }
    fn validate(&self) -> Result<(), ConfigError> {
        check(
            "beta",
            self.beta,
            (0.0..=1.0).contains(&self.beta),
            "0 <= beta <= 1",
        )?;
        validate_decoupling_c(self.decoupling_c, self.beta)?;
        self.weights.validate()
    }
    fn scalars(&self, avg: &mut AveragingState, lr: f64, k: u64) -> (ReferenceScalars, f64) {
        let c = decoupled_weight(
            self.weights.advance(avg, lr, k),
            self.beta,
            self.decoupling_c,
        );
        (ReferenceScalars { c, beta: self.beta }, c)
    }
    fn init_slots<T: Element>(&self, p: T, slots: &mut [T]) {
        slots[0] = p;
        slots[1] = p;
        slots[2] = p;
    }
    #[inline(always)]
    fn update<T: Element>(
        &self,
        sc: &ReferenceScalars,
        lr: T,
        shrink: T,
        p: &mut T,
        slots: &mut [T],
        d: T,
    ) {
        let one = T::one();
        let (c, beta) = (T::of(sc.c), T::of(sc.beta));
        let z = slots[0] * shrink - lr * d;
        let x = (one - c) * slots[1] + c * z;
        let y = beta * x + (one - beta) * z;
        slots[0] = z;
        slots[1] = x;
        slots[2] = y;
        *p = y;
    }
    #[inline(always)]
    fn iterate<T: Element>(&self, _p: T, slots: &[T]) -> T {
        slots[0]
    }
    #[inline(always)]
    fn set_iterate<T: Element>(&self, sc: &ReferenceScalars, p: &mut T, slots: &mut [T], z_new: T) {
        let one = T::one();
        let (c, beta) = (T::of(sc.c), T::of(sc.beta));
        let x = slots[1] + c * (z_new - slots[0]);
        let y = beta * x + (one - beta) * z_new;
        slots[0] = z_new;
        slots[1] = x;
        slots[2] = y;
        *p = y;
    }
    fn has_modes(&self) -> bool {
        true
    }
    fn to_eval<T: Element>(&self, p: &mut T, slots: &mut [T]) {
        *p = slots[1];
    }
    fn to_train<T: Element>(&self, p: &mut T, slots: &mut [T]) {
        *p = slots[2];
    }
    fn eval_value<T: Element>(&self, _p: T, slots: &[T]) -> T {
        slots[1]
    }
}
