//! Averaging the learner's iterates while taking gradients at them: Polyak–Ruppert averaging
//! and the exponential moving average (the general weighted conversion of arXiv 2405.15682v4, Theorem 2, with `β = 0`).

use super::{AveragingState, AveragingWeights, Conversion, GroupAveraging};
use crate::element::{Element, lerp};
use crate::error::{ConfigError, check};

/// Polyak–Ruppert averaging: gradients at `z` (the buffer), return the weighted mean
/// `x ← (1 − c)·x + c·z` with the weights of [`AveragingWeights`] (uniform weights give the
/// plain mean of `z_1..z_k`). Equals Schedule-Free with `β = 0` (Road Less Scheduled,
/// Theorem 2 with `β_t = 0`).
///
/// Slots: `["x"]`. In eval mode the buffer and the slot are swapped (the slot then holds `z`).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PolyakAverage {
    /// Averaging weights.
    pub weights: AveragingWeights,
}

/// Exponential moving average of the iterates, `e ← β_e·e + (1 − β_e)·z`, gradients at `z`.
/// The average starts at the initial point (no bias correction), as in common practice.
///
/// Slots: `["ema"]`. In eval mode the buffer and the slot are swapped.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ema {
    /// Decay `β_e ∈ [0, 1)` of the average (0.999 typical).
    pub decay: f64,
}

impl Default for Ema {
    fn default() -> Self {
        Ema { decay: 0.999 }
    }
}

/// `c` of the newest iterate, shared by both averages.
#[derive(Debug, Clone, Copy)]
pub struct AverageScalars {
    c: f64,
}

#[inline(always)]
fn average_update<T: Element>(c: T, lr: T, shrink: T, p: &mut T, slots: &mut [T], d: T) {
    let z = *p * shrink - lr * d;
    *p = z;
    slots[0] = lerp(slots[0], z, c);
}

macro_rules! swap_modes {
    () => {
        fn has_modes(&self) -> bool {
            true
        }
        fn to_eval<T: Element>(&self, p: &mut T, slots: &mut [T]) {
            std::mem::swap(p, &mut slots[0]);
        }
        fn to_train<T: Element>(&self, p: &mut T, slots: &mut [T]) {
            std::mem::swap(p, &mut slots[0]);
        }
        fn eval_value<T: Element>(&self, _p: T, slots: &[T]) -> T {
            slots[0]
        }
        /// In eval mode the buffer holds the average and the slot the iterate.
        fn iterate_eval<T: Element>(&self, _p: T, slots: &[T]) -> T {
            slots[0]
        }
        fn init_slots<T: Element>(&self, p: T, slots: &mut [T]) {
            slots[0] = p;
        }
        #[inline(always)]
        fn iterate<T: Element>(&self, p: T, _slots: &[T]) -> T {
            p
        }
        #[inline(always)]
        fn set_iterate<T: Element>(
            &self,
            sc: &AverageScalars,
            p: &mut T,
            slots: &mut [T],
            z_new: T,
        ) {
            slots[0] = slots[0] + T::of(sc.c) * (z_new - *p);
            *p = z_new;
        }
        #[inline(always)]
        fn update<T: Element>(
            &self,
            sc: &AverageScalars,
            lr: T,
            shrink: T,
            p: &mut T,
            slots: &mut [T],
            d: T,
        ) {
            average_update(T::of(sc.c), lr, shrink, p, slots, d)
        }
    };
}

impl Conversion for PolyakAverage {
    type Scalars = AverageScalars;
    const SLOTS: usize = 1;
    fn name(&self) -> &'static str {
        "polyak_average"
    }
    fn slot_names(&self) -> &'static [&'static str] {
        &["x"]
    }
    fn with_group_averaging(&self, o: &GroupAveraging) -> Result<Self, ConfigError> {
        let weights = o.weights_only(self.name(), self.weights)?;
        Ok(Self { weights })
    }
    fn validate(&self) -> Result<(), ConfigError> {
        self.weights.validate()
    }
    fn scalars(&self, avg: &mut AveragingState, lr: f64, k: u64) -> (AverageScalars, f64) {
        let c = self.weights.advance(avg, lr, k);
        (AverageScalars { c }, c)
    }
    swap_modes!();
}

impl Conversion for Ema {
    type Scalars = AverageScalars;
    const SLOTS: usize = 1;
    fn name(&self) -> &'static str {
        "ema"
    }
    fn slot_names(&self) -> &'static [&'static str] {
        &["ema"]
    }
    fn validate(&self) -> Result<(), ConfigError> {
        check(
            "decay",
            self.decay,
            (0.0..1.0).contains(&self.decay),
            "0 <= decay < 1",
        )
    }
    fn scalars(&self, avg: &mut AveragingState, lr: f64, _k: u64) -> (AverageScalars, f64) {
        avg.lr_max = avg.lr_max.max(lr);
        let c = 1.0 - self.decay;
        (AverageScalars { c }, c)
    }
    swap_modes!();
}
