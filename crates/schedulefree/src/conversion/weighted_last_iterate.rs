//! The general weighted last-iterate conversion (Defazio, Cutkosky, Mehta, Mishchenko,
//! arXiv 2310.07831, Theorem 1): any base learner, any nonnegative
//! weights, and the returned point is the last iterate.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{AveragingState, Conversion};
use crate::element::Element;
use crate::error::ConfigError;

/// Weighted last iterate for a run of `T = weights.len()` updates: the learner's iterates
/// `z_{t+1} = z_t + Δ_t` are kept in a slot, gradients are taken at the buffer `x`, and
///
/// ```text
/// x_{t+1} = x_t + α_t · Δ_t,     α_t = w_{t+1:T} / w_{1:T}      (t = 1..T)
/// ```
///
/// so that `E[F(x_T) − F(u)] ≤ E[Σ_t w_t ⟨g_t, z_t − u⟩] / w_{1:T}`. The multiplier `α_t` is
/// a schedule that ends at `α_T = 0`; with `w_t = 1` it is linear decay `(T − t)/T` (for
/// SGD-type learners, whose steps do not depend on `z`, this equals [`super::LastIterate`]
/// driven by [`crate::schedule::Linear`]; tested). Updates after the `T`-th use `α = 0`:
/// `z` keeps moving, `x` does not.
///
/// Slots: `["z"]`. No modes: the buffer always holds the returned point.
/// Deviation: decay (a shrink `s` of the learner's iterate) is part of `Δ_t = (s − 1)·z_t − γ·d_t`.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedLastIterate {
    weights: Arc<[f64]>,
    alpha: Arc<[f64]>,
}

impl WeightedLastIterate {
    /// The conversion for weights `w_1..w_T` (entry `t − 1` is `w_t`).
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] for an empty list, a weight that is negative or not finite,
    /// or weights whose sum is 0 or overflows.
    pub fn new(weights: Vec<f64>) -> Result<Self, ConfigError> {
        let bad = |value: f64, expected: &'static str| ConfigError::OutOfRange {
            field: "weights",
            value,
            expected,
        };
        if let Some(&w) = weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
            return Err(bad(w, "every weight finite and >= 0"));
        }
        let total: f64 = weights.iter().sum();
        if weights.is_empty() || !(total > 0.0 && total.is_finite()) {
            return Err(bad(total, "a non-empty list with a finite positive sum"));
        }
        // α_t = w_{t+1:T} / w_{1:T}, from the suffix sums.
        let mut alpha = vec![0.0; weights.len()];
        let mut suffix = 0.0;
        for t in (0..weights.len()).rev() {
            alpha[t] = suffix / total;
            suffix += weights[t];
        }
        Ok(Self {
            weights: weights.into(),
            alpha: alpha.into(),
        })
    }

    /// Uniform weights `w_t = 1` over `T` updates: linear decay.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] for `T = 0`.
    pub fn uniform(updates: usize) -> Result<Self, ConfigError> {
        Self::new(vec![1.0; updates])
    }

    /// The weights `w_1..w_T`.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The multiplier `α` of update `k + 1` (0 from update `T` on).
    pub fn alpha(&self, k: u64) -> f64 {
        usize::try_from(k)
            .ok()
            .and_then(|i| self.alpha.get(i))
            .copied()
            .unwrap_or(0.0)
    }
}

/// The serde form: `{"weights": [w_1, ..., w_T]}` (validated on load).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw<W> {
    weights: W,
}

impl Serialize for WeightedLastIterate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Raw {
            weights: &self.weights[..],
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for WeightedLastIterate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(Raw::<Vec<f64>>::deserialize(d)?.weights).map_err(serde::de::Error::custom)
    }
}

/// Per-step scalar of [`WeightedLastIterate`]: `α` of this update.
#[derive(Debug, Clone, Copy)]
pub struct WeightedLastIterateScalars {
    alpha: f64,
}

impl Conversion for WeightedLastIterate {
    type Scalars = WeightedLastIterateScalars;
    const SLOTS: usize = 1;
    fn name(&self) -> &'static str {
        "weighted_last_iterate"
    }
    fn slot_names(&self) -> &'static [&'static str] {
        &["z"]
    }
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(()) // validated by `new`
    }
    /// `c` reported in the step info is `α` of the update.
    fn scalars(
        &self,
        avg: &mut AveragingState,
        lr: f64,
        k: u64,
    ) -> (WeightedLastIterateScalars, f64) {
        avg.lr_max = avg.lr_max.max(lr);
        let alpha = self.alpha(k);
        (WeightedLastIterateScalars { alpha }, alpha)
    }
    fn init_slots<T: Element>(&self, p: T, slots: &mut [T]) {
        slots[0] = p;
    }
    #[inline(always)]
    fn update<T: Element>(
        &self,
        sc: &WeightedLastIterateScalars,
        lr: T,
        shrink: T,
        p: &mut T,
        slots: &mut [T],
        d: T,
    ) {
        // Δ = (s − 1)·z − γ·d is exactly −γ·d without decay, so z moves as plain last iterate.
        let delta = (shrink - T::one()) * slots[0] - lr * d;
        slots[0] = slots[0] + delta;
        *p = *p + T::of(sc.alpha) * delta;
    }
    #[inline(always)]
    fn iterate<T: Element>(&self, _p: T, slots: &[T]) -> T {
        slots[0]
    }
    #[inline(always)]
    fn set_iterate<T: Element>(
        &self,
        sc: &WeightedLastIterateScalars,
        p: &mut T,
        slots: &mut [T],
        z_new: T,
    ) {
        *p = *p + T::of(sc.alpha) * (z_new - slots[0]);
        slots[0] = z_new;
    }
    fn has_modes(&self) -> bool {
        false
    }
}
