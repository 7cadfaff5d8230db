//! ScheduleFree+'s Polyak step size (arXiv 2605.19095; schedulefree's
//! `AdamCScheduleFreePlusPaper`, commit 43e5c2d): a Polyak numerator with the Schedule-Free
//! correction over an EMA of the gradient's L1 norm, multiplying an inner learner's lr.

use super::{GroupState, Learner, MAX_PREPASS, Reductions, StepIndex};
use crate::element::Element;
use crate::error::{ConfigError, check};

/// What the gradient-L1 EMA slot holds between steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum L1Ema {
    /// The raw EMA `e`, bias-corrected when read (what the reference's docstring describes).
    #[default]
    Raw,
    /// The reference code's behaviour (schedulefree commit 43e5c2d): the bias-corrected
    /// `ê` is written back and read as the raw EMA at the next step, so the correction is
    /// applied again every step. Identical to [`L1Ema::Raw`] at `polyak_beta = 0`; at
    /// `polyak_beta = 0.9` and a constant `‖g‖₁` the denominator is ~200× too large by step 6
    /// and ~4000× by step 21, and the step size collapses. For parity with the reference only.
    Reference,
}

/// The Polyak step of ScheduleFree+ around an inner learner `L` (Adam with its first moment
/// in ScheduleFree+): the inner learner's lr factor times
///
/// ```text
/// A = Σ‖g‖₁ (every group),  e ← β_P·e + (1 − β_P)·A·sqrt(π/2),  ê = e/(1 − β_P^(k+1))
/// I = β_k·⟨g, z − x⟩ (every group; 0 for parameters at their first gradient)
/// η_P = max(0, f + I) / ê      (0 when ê = 0: no gradient)
/// ```
///
/// `f` is the loss at the gradient point `y` ([`crate::Optimizer::step_with_loss`], whose
/// minimum is taken as 0), `k` the group's completed updates. `f + I` lower-bounds
/// `⟨g, z − x*⟩` for a convex loss with minimum 0 (`z − y = β(z − x)`), a Polyak numerator
/// for the learner's iterate `z`; `ê` approximates `⟨g, u⟩` for the Adam direction `u`
/// (`E|gᵢ| = σ·sqrt(2/π)` for Gaussian `gᵢ`). `I` comes from a pre-pass
/// `Σ g·(z − y)` (one extra read of `g`, `z`, `y`), scaled by the conversion's
/// [`crate::conversion::Conversion::correction_scale`]; its sums go through the step's
/// all-reduce hook with the gradient norms. The reference divides by `ê` unguarded.
///
/// Group state: `["grad_l1_ema"]` (the inner learner may have none). Slots: the inner
/// learner's.
///
/// ```
/// use schedulefree::{GroupConfig, Optimizer, Param};
/// use schedulefree::{conversion::ScheduleFree, decay::NoDecay, schedule::Constant};
/// use schedulefree::learner::{Adam, PolyakL1};
/// // Schedule-Free around it on ½‖w‖², from (1, −1).
/// let mut opt = Optimizer::<f64, _, _, _, _>::new(
///     PolyakL1 { inner: Adam { beta1: 0.0, ..Default::default() }, polyak_beta: 0.9, ema: Default::default() },
///     ScheduleFree::default(),
///     NoDecay,
///     Constant,
///     GroupConfig { lr: 0.5, weight_decay: 0.0 },
/// )?;
/// opt.add_param("w", &[2])?;
/// let mut w = vec![1.0, -1.0];
/// for _ in 0..200 {
///     let g = w.clone();
///     let f = 0.5 * w.iter().map(|v| v * v).sum::<f64>(); // the loss it reads
///     opt.step_with_loss(&mut [Param::new("w", &mut w, &g)], f)?;
/// }
/// let mut x = vec![0.0; 2];
/// opt.x_into("w", &w, &mut x)?;
/// assert!(x.iter().all(|v| v.abs() < 0.5), "{x:?}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolyakL1<L> {
    /// The learner whose direction is followed (its own lr factor multiplies the step).
    pub inner: L,
    /// EMA decay `β_P ∈ [0, 1)` of the gradient's L1 norm (`polyak_beta`; 0: this step's).
    pub polyak_beta: f64,
    /// What the EMA slot holds between steps.
    #[serde(default)]
    pub ema: L1Ema,
}

impl<L: Learner> PolyakL1<L> {
    /// The EMA to store after this step and the bias-corrected EMA it uses.
    fn ema(&self, k: u64, state: &GroupState, red: &Reductions) -> (f64, f64) {
        let pb = self.polyak_beta;
        // The reference's order of operations.
        let e = pb * state[0] + (1.0 - pb) * red.total_l1 * std::f64::consts::FRAC_PI_2.sqrt();
        let corrected = e / (1.0 - pb.powf((k + 1) as f64));
        match self.ema {
            L1Ema::Raw => (e, corrected),
            L1Ema::Reference => (corrected, corrected),
        }
    }

    /// `η_P` of the step after `k` completed updates; NaN when `f + I` is not finite.
    pub fn polyak_step(&self, k: u64, state: &GroupState, red: &Reductions) -> f64 {
        let (_, denom) = self.ema(k, state, red);
        let correction = red.correction_scale * red.prepass[0];
        let numer = red.loss.unwrap_or(0.0) + correction;
        if !numer.is_finite() {
            // A non-finite correction (NaN in the state, an overflow of `z − y`) must not
            // read as a zero step: the step is refused ([`crate::StepError::NonFiniteScalar`]).
            return f64::NAN;
        }
        if denom > 0.0 {
            numer.max(0.0) / denom
        } else {
            0.0
        }
    }
}

impl<L: Learner> Learner for PolyakL1<L> {
    type Scalars = L::Scalars;
    const SLOT_COUNTS: &'static [usize] = L::SLOT_COUNTS;
    const PREPASS_LEN: usize = 1;
    const PREPASS_BEFORE_LR: bool = true;

    fn name(&self) -> &'static str {
        "polyak_l1"
    }
    fn slot_names(&self) -> &'static [&'static str] {
        self.inner.slot_names()
    }
    fn validate(&self) -> Result<(), ConfigError> {
        check(
            "polyak_beta",
            self.polyak_beta,
            (0.0..1.0).contains(&self.polyak_beta),
            "0 <= polyak_beta < 1",
        )?;
        if L::PREPASS_LEN != 0 || !self.inner.group_state_names().is_empty() {
            return Err(ConfigError::Unsupported(format!(
                "PolyakL1 around `{}`: the inner learner may have no pre-pass and no group state",
                self.inner.name()
            )));
        }
        self.inner.validate()
    }
    fn has_momentum(&self) -> bool {
        self.inner.has_momentum()
    }
    fn group_state_names(&self) -> &'static [&'static str] {
        &["grad_l1_ema"]
    }
    fn needs_loss(&self) -> bool {
        true
    }
    fn lr_factor_needs_reductions(&self) -> bool {
        true
    }
    fn lr_factor(&self, k: u64, state: &GroupState, red: &Reductions) -> f64 {
        self.inner.lr_factor(k, state, red) * self.polyak_step(k, state, red)
    }
    fn scalars(&self, k: StepIndex, lr: f64, state: &GroupState) -> L::Scalars {
        self.inner.scalars(k, lr, state)
    }
    #[inline(always)]
    fn prepass_factors<T: Element>(
        &self,
        _sc: &L::Scalars,
        g: T,
        z: T,
        y: T,
        _slots: &[T],
    ) -> [(T, T); MAX_PREPASS] {
        let none = (T::zero(), T::zero());
        [(g, z - y), none, none, none]
    }
    fn update_group_state(
        &self,
        k: u64,
        _lr: f64,
        state: &mut GroupState,
        red: &Reductions,
        _prepass: &[f64],
    ) {
        state[0] = self.ema(k, state, red).0;
    }
    fn init_slots<T: Element>(&self, z: T, slots: &mut [T]) {
        self.inner.init_slots(z, slots);
    }
    #[inline(always)]
    fn direction<T: Element>(&self, sc: &L::Scalars, g: T, z: T, slots: &mut [T]) -> T {
        self.inner.direction(sc, g, z, slots)
    }
}
