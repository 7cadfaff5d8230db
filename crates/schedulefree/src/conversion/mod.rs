//! Online-to-batch conversions (Road Less Scheduled, arXiv 2405.15682v4, §2 and Theorem 2): where the gradient is evaluated and which
//! point is returned, given a base learner's steps `z ← s·z − γ·d`.
//!
//! | conversion | parameter buffer holds (train) | returned point | slots |
//! | --- | --- | --- | --- |
//! | [`LastIterate`] | `z` | `z` | — |
//! | [`WeightedLastIterate`] | `x` (`α_t`-scaled steps) | `x` | `z` |
//! | [`PolyakAverage`] | `z` | weighted mean `x` of the `z`s | `x` |
//! | [`Ema`] | `z` | exponential moving average of the `z`s | `ema` |
//! | [`PrimalAverage`] | `x` (gradient at the mean) | `x` | `z` |
//! | [`ScheduleFree`] | `y = (1−β)z + βx` | `x` | `z` |
//! | [`ScheduleFreeReference`] | `y` | `x` | `z, x, y` |

use crate::element::Element;
use crate::error::{ConfigError, check};
use std::fmt::Debug;

mod averaging;
mod beta_anneal;
mod last_iterate;
mod primal;
mod schedule_free;
mod schedule_free_reference;
mod weighted_last_iterate;

pub use averaging::{Ema, PolyakAverage};
pub use beta_anneal::BetaAnneal;
pub use last_iterate::LastIterate;
pub use primal::PrimalAverage;
pub use schedule_free::ScheduleFree;
pub use schedule_free_reference::ScheduleFreeReference;
pub use weighted_last_iterate::{WeightedLastIterate, WeightedLastIterateScalars};

/// Per-group running quantities of weighted averaging (Road Less Scheduled, §2 and
/// Theorem 2): the running maximum of the scheduled lr and the sum of weights so far.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AveragingState {
    /// `lr_max`: running max of the scheduled lr; starts at −1 as in the reference.
    pub lr_max: f64,
    /// `S = Σ w`: sum of averaging weights so far.
    pub weight_sum: f64,
}

impl Default for AveragingState {
    fn default() -> Self {
        AveragingState {
            lr_max: -1.0,
            weight_sum: 0.0,
        }
    }
}

/// Averaging weights `w_k = (k+1)^r · lr_max^p` (Road Less Scheduled
/// §4 "weight_lr_power"). `c = w_k / Σ w` is the weight of the newest iterate; when the sum
/// is 0 (all lrs 0 so far) `c = 0`, so a zero-lr step moves nothing and no NaN appears.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AveragingWeights {
    /// Polynomial exponent `r ≥ 0` (0: uniform in `k`).
    pub r: f64,
    /// Power `p ≥ 0` of `lr_max` in the weight (2 in the reference).
    pub weight_lr_power: f64,
}

impl Default for AveragingWeights {
    fn default() -> Self {
        AveragingWeights {
            r: 0.0,
            weight_lr_power: 2.0,
        }
    }
}

impl AveragingWeights {
    /// Uniform weights (`c = 1/(k+1)` whatever the lr).
    pub const UNIFORM: AveragingWeights = AveragingWeights {
        r: 0.0,
        weight_lr_power: 0.0,
    };

    /// Largest accepted `r` and `weight_lr_power`: keeps `Σ w` finite in `f64` for any
    /// realistic run (`(10⁶ steps)^16 · (10³ lr)^16 ≈ 10¹⁴⁴`); practice uses 0–2.
    pub const MAX_EXPONENT: f64 = 16.0;

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let ok = |v: f64| (0.0..=Self::MAX_EXPONENT).contains(&v);
        check("r", self.r, ok(self.r), "0 <= r <= 16")?;
        check(
            "weight_lr_power",
            self.weight_lr_power,
            ok(self.weight_lr_power),
            "0 <= weight_lr_power <= 16",
        )
    }

    /// Advance `st` by one update with scheduled lr `lr` after `k` completed updates and
    /// return `c`.
    pub fn advance(&self, st: &mut AveragingState, lr: f64, k: u64) -> f64 {
        st.lr_max = st.lr_max.max(lr);
        let w = ((k + 1) as f64).powf(self.r) * st.lr_max.powf(self.weight_lr_power);
        st.weight_sum += w;
        if st.weight_sum == 0.0 {
            0.0
        } else {
            w / st.weight_sum
        }
    }
}

/// Per-group overrides of a conversion's averaging: the reference classes read `r` and
/// `weight_lr_power` (and ScheduleFree+ `c_warmup`) from each parameter group. `None` keeps
/// the conversion's value. Set with [`crate::Optimizer::set_group_averaging`].
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupAveraging {
    /// Averaging exponent `r ≥ 0` of the group.
    pub r: Option<f64>,
    /// Averaging `lr_max` power `p ≥ 0` of the group.
    pub weight_lr_power: Option<f64>,
    /// Updates during which the group's averaging weight is 1 ([`ScheduleFree::c_warmup`]).
    pub c_warmup: Option<u64>,
}

impl GroupAveraging {
    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        *self == GroupAveraging::default()
    }

    /// `base` with the overridden weights.
    pub fn weights(&self, base: AveragingWeights) -> AveragingWeights {
        AveragingWeights {
            r: self.r.unwrap_or(base.r),
            weight_lr_power: self.weight_lr_power.unwrap_or(base.weight_lr_power),
        }
    }

    /// `base` with the overridden weights, validated, for a conversion without `c_warmup`.
    pub(crate) fn weights_only(
        &self,
        conversion: &str,
        base: AveragingWeights,
    ) -> Result<AveragingWeights, ConfigError> {
        if self.c_warmup.is_some() {
            return Err(self.unsupported(conversion, "c_warmup"));
        }
        let w = self.weights(base);
        w.validate()?;
        Ok(w)
    }

    /// [`ConfigError::Unsupported`] for a conversion that has none of the overridden settings.
    pub(crate) fn unsupported(&self, conversion: &str, what: &str) -> ConfigError {
        ConfigError::Unsupported(format!(
            "per-group {what} on the {conversion} conversion (overrides {self:?})"
        ))
    }
}

/// The decoupled averaging weight of Refined Schedule-Free AdamW (Song et al. 2025, "Through
/// the River", arXiv 2507.09846; `decoupling_c` of pytorch_optimizer 4.1.0's
/// `ScheduleFreeAdamW`): `c ← min(1, c·(1 − β)·C)`, which decouples the averaging weight from
/// the interpolation `β` (`C ≈ 200` suggested; `C = 1/(1 − β)` is the original weight up to
/// rounding); `C = 0` leaves `c` unchanged. Products left to right, as there.
#[inline]
pub(crate) fn decoupled_weight(c: f64, beta: f64, decoupling_c: f64) -> f64 {
    if decoupling_c > 0.0 {
        (c * (1.0 - beta) * decoupling_c).min(1.0)
    } else {
        c
    }
}

/// Check `decoupling_c ≥ 0` (finite), and 0 when `β = 1`: there `c·(1 − β)·C = 0`, `x` never
/// moves and neither would the parameters.
pub(crate) fn validate_decoupling_c(decoupling_c: f64, beta: f64) -> Result<(), ConfigError> {
    check(
        "decoupling_c",
        decoupling_c,
        decoupling_c.is_finite() && decoupling_c >= 0.0 && (decoupling_c == 0.0 || beta < 1.0),
        "finite decoupling_c >= 0, and 0 (off) when beta = 1",
    )
}

/// Serde: leave `decoupling_c` out of saved configs while it is off, so that files written
/// without it stay readable by builds that predate it.
pub(crate) fn is_off(decoupling_c: &f64) -> bool {
    *decoupling_c == 0.0
}

/// Serde: leave a step count out of saved configs while it is 0.
pub(crate) fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// An online-to-batch conversion, composed into an optimizer's fused loop.
///
/// `update` receives the scheduled lr `γ`, the decay shrink factor `s` of the learner's
/// iterate, the parameter buffer value `p` and the learner's direction `d` (already including
/// any decoupled-at-`y` term), and must leave `p` at the next gradient point.
pub trait Conversion: Clone + Debug + Send + Sync {
    /// Per-step scalars (the averaging weight `c`, ...).
    type Scalars: Copy + Send + Sync + std::fmt::Debug;

    /// Short name used in saved state and reports.
    fn name(&self) -> &'static str;
    /// Number of per-element state slots, `slot_names().len()` (a constant of the type, so
    /// the vector kernel keeps a block's slots in registers; checked by
    /// [`crate::Optimizer::new`]).
    const SLOTS: usize;
    /// Names of the per-element state slots.
    fn slot_names(&self) -> &'static [&'static str];
    /// Validate hyperparameters.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] naming the first invalid field.
    fn validate(&self) -> Result<(), ConfigError>;
    /// Scalar phase: advance the group's averaging state by one update with scheduled lr
    /// `lr` after `k` completed updates; return the scalars and the averaging weight `c`
    /// (reported in the step info; 1 for conversions that do not average).
    fn scalars(&self, avg: &mut AveragingState, lr: f64, k: u64) -> (Self::Scalars, f64);
    /// Initialise the slots of one element from the parameter value at its first gradient.
    fn init_slots<T: Element>(&self, p: T, slots: &mut [T]);
    /// One element's update.
    fn update<T: Element>(
        &self,
        sc: &Self::Scalars,
        lr: T,
        shrink: T,
        p: &mut T,
        slots: &mut [T],
        d: T,
    );
    /// The learner's iterate `z` of one element in train mode (read before the update by
    /// learners that need it, and by the hypersphere projection after it).
    fn iterate<T: Element>(&self, p: T, slots: &[T]) -> T;
    /// The learner's iterate `z` of one element in eval mode (after [`Conversion::to_eval`]);
    /// the default, [`Conversion::iterate`], fits conversions whose `z` lives in a slot.
    fn iterate_eval<T: Element>(&self, p: T, slots: &[T]) -> T {
        self.iterate(p, slots)
    }
    /// Replace the learner's iterate of one element, right after [`Conversion::update`] with
    /// scalars `sc`, by `z_new`, adjusting the buffer and any average as if the step had
    /// landed on `z_new` (used by the hypersphere projection, [`crate::decay::Projected`]).
    fn set_iterate<T: Element>(&self, sc: &Self::Scalars, p: &mut T, slots: &mut [T], z_new: T);
    /// The conversion as mode switches and the eval point see a group after `k` completed
    /// updates: one whose coefficients change with the step (an annealed Schedule-Free `β`)
    /// returns a copy with them fixed at the values that formed the current buffer. Default:
    /// a copy of `self`.
    fn at_step(&self, _k: u64) -> Self {
        self.clone()
    }
    /// The factor that turns `⟨g, z − y⟩` (gradient, learner's iterate, gradient point) of
    /// the update after `k` completed updates into ScheduleFree+'s correction `β_k·⟨g, z − x⟩`
    /// (arXiv 2605.19095): 1 unless `β` changed since `y` was formed (`z − y = β'·(z − x)`).
    fn correction_scale(&self, _k: u64) -> f64 {
        1.0
    }
    /// This conversion with a group's averaging overrides applied (for that group's scalar
    /// phase). Default: no averaging settings, so only an empty override is accepted.
    ///
    /// # Errors
    /// [`ConfigError::Unsupported`] for an override of a setting the conversion does not
    /// have; [`ConfigError::OutOfRange`] for an invalid value.
    fn with_group_averaging(&self, o: &GroupAveraging) -> Result<Self, ConfigError> {
        if o.is_empty() {
            Ok(self.clone())
        } else {
            Err(o.unsupported(self.name(), "averaging"))
        }
    }
    /// Whether the returned point differs from the training buffer (needs train/eval modes).
    fn has_modes(&self) -> bool;
    /// Turn a training-mode element into its eval-mode form (buffer holds the returned point).
    fn to_eval<T: Element>(&self, _p: &mut T, _slots: &mut [T]) {}
    /// Inverse of [`Conversion::to_eval`].
    fn to_train<T: Element>(&self, _p: &mut T, _slots: &mut [T]) {}
    /// The returned point for a training-mode element, without changing anything.
    fn eval_value<T: Element>(&self, p: T, _slots: &[T]) -> T {
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoupled_weight_rescales_clamps_and_is_off_at_zero() {
        let c = 1.0 / 7.0;
        assert_eq!(decoupled_weight(c, 0.9, 0.0).to_bits(), c.to_bits());
        assert_eq!(
            decoupled_weight(c, 0.9, 5.0).to_bits(),
            (c * (1.0 - 0.9) * 5.0).to_bits()
        );
        assert_eq!(decoupled_weight(c, 0.9, 500.0), 1.0);
        assert!(validate_decoupling_c(50.0, 0.9).is_ok());
        assert!(validate_decoupling_c(0.0, 1.0).is_ok());
        for (bad, beta) in [
            (-1.0, 0.9),
            (f64::NAN, 0.9),
            (f64::INFINITY, 0.9),
            (50.0, 1.0),
        ] {
            let e = validate_decoupling_c(bad, beta).expect_err("invalid");
            assert!(e.to_string().contains("decoupling_c"), "{e}");
        }
    }
}
