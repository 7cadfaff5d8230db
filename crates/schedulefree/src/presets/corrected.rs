//! Presets of corrected weight decay for normalized layers (AdamC, arXiv 2506.02285v2).

use super::group;
use crate::conversion::LastIterate;
use crate::decay::{Corrected, Decoupled};
use crate::driver::Optimizer;
use crate::element::Element;
use crate::error::ConfigError;
use crate::learner::{self, Adam, BiasCorrection, StepCount};
use crate::schedule::Schedule;

/// The optimizer [`AdamC`] builds.
pub type AdamCOptimizer<T, S> = Optimizer<T, Adam, LastIterate, Corrected<Decoupled>, S>;
/// The optimizer [`SgdC`] builds.
pub type SgdCOptimizer<T, S> = Optimizer<T, learner::Sgd, LastIterate, Corrected<Decoupled>, S>;

/// AdamC (Defazio et al., arXiv 2506.02285v2) as `pytorch_optimizer.AdamC`
/// 4.1.0, the reference of the AdamC golden fixtures: AdamW whose decoupled decay on
/// parameters tagged `normalized` ([`crate::ParamTags`]) is `p ← (1 − λ·γ_t²/γ_max)·p`
/// instead of `(1 − λ·γ_t)·p`; other parameters decay as in AdamW and `no_decay` ones not at
/// all. `γ_max` is `peak_lr`, by default the constructor's `lr` (as the reference: not per
/// group, not moved by schedules). Adam's denominator is the reference's,
/// `(sqrt(v + 1e-15) + ε)/sqrt(1 − β2^t)` ([`BiasCorrection::EpsBeforeCorrection`]).
/// With a constant schedule at `γ_max` it equals AdamW with that denominator.
///
/// Defaults: `lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0` (the reference's).
///
/// ```
/// use schedulefree::{AdamC, Param, ParamTags, schedule::Cosine};
/// let mut opt = AdamC { weight_decay: 0.1, ..Default::default() }.build::<f32, _>(Cosine::new(100, 10_000, 0.0)?)?;
/// opt.add_param_tagged(0, "fc.weight", &[8, 8], ParamTags::NORMALIZED)?; // feeds a LayerNorm
/// opt.add_param_tagged(0, "fc.bias", &[8], ParamTags::NO_DECAY)?;
/// let (mut w, gw) = (vec![0.1f32; 64], vec![0.01f32; 64]);
/// let (mut b, gb) = (vec![0.0f32; 8], vec![0.01f32; 8]);
/// opt.step(&mut [Param::new("fc.weight", &mut w, &gw), Param::new("fc.bias", &mut b, &gb)])?;
/// assert!(w[0] < 0.1 && b[0] < 0.0); // both moved against the gradient
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamC {
    /// Peak lr (multiplied by the schedule).
    pub lr: f64,
    /// `(β1, β2)`.
    pub betas: (f64, f64),
    /// Denominator offset `ε > 0`.
    pub eps: f64,
    /// Decoupled weight decay `λ ≥ 0`.
    pub weight_decay: f64,
    /// `γ_max > 0` of the correction; `None`: `lr`.
    pub peak_lr: Option<f64>,
}

impl Default for AdamC {
    fn default() -> Self {
        AdamC {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            peak_lr: None,
        }
    }
}

impl AdamC {
    /// Build with `schedule` (a multiplier of `lr`). Register normalized parameters with
    /// [`Optimizer::add_param_tagged`].
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] for invalid betas, eps, lr, decay, or a peak lr `≤ 0`
    /// (including `lr = 0` without an explicit `peak_lr`).
    pub fn build<T: Element, S: Schedule>(
        &self,
        schedule: S,
    ) -> Result<AdamCOptimizer<T, S>, ConfigError> {
        Optimizer::new(
            Adam {
                beta1: self.betas.0,
                beta2: self.betas.1,
                eps: self.eps,
                bias_correction: BiasCorrection::EpsBeforeCorrection,
                count: StepCount::Parameter,
            },
            LastIterate,
            Corrected {
                base: Decoupled,
                peak_lr: Some(self.peak_lr.unwrap_or(self.lr)),
            },
            schedule,
            group(self.lr, self.weight_decay),
        )
    }
}

/// SGDC (the SGD form of AdamC's correction, arXiv 2506.02285v2): SGD (torch momentum/dampening/Nesterov) with decoupled decay
/// `p ← (1 − λ·γ_t)·p`, corrected to `(1 − λ·γ_t²/γ_max)·p` on parameters tagged
/// `normalized`, so `‖g‖/‖p‖ → sqrt(2λ/γ_max)` throughout a decaying schedule.
/// Defaults: `lr 0.1, momentum 0, weight_decay 0`; `peak_lr` as [`AdamC`].
///
/// ```
/// use schedulefree::{Param, ParamTags, SgdC, schedule::Linear};
/// let mut opt = SgdC { weight_decay: 5e-4, ..Default::default() }.build::<f32, _>(Linear::new(0, 1000, 0.0)?)?;
/// opt.add_param_tagged(0, "conv.weight", &[4, 9], ParamTags::NORMALIZED)?; // feeds a BatchNorm
/// let (mut w, g) = (vec![0.1f32; 36], vec![0.0f32; 36]);
/// opt.step(&mut [Param::new("conv.weight", &mut w, &g)])?;
/// // Decay only, corrected: (1 − λ·γ_t²/γ_max) at γ_t = γ_max = 0.1.
/// assert!((f64::from(w[0]) - 0.1 * (1.0 - 5e-4 * 0.1)).abs() < 1e-8);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SgdC {
    /// Peak lr (multiplied by the schedule).
    pub lr: f64,
    /// Momentum `μ ∈ [0, 1)`.
    pub momentum: f64,
    /// Dampening `τ ∈ [0, 1]`.
    pub dampening: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Decoupled weight decay `λ ≥ 0`.
    pub weight_decay: f64,
    /// `γ_max > 0` of the correction; `None`: `lr`.
    pub peak_lr: Option<f64>,
}

impl Default for SgdC {
    fn default() -> Self {
        SgdC {
            lr: 0.1,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            peak_lr: None,
        }
    }
}

impl SgdC {
    /// Build with `schedule` (a multiplier of `lr`).
    ///
    /// # Errors
    /// As [`AdamC::build`], and invalid momentum settings.
    pub fn build<T: Element, S: Schedule>(
        &self,
        schedule: S,
    ) -> Result<SgdCOptimizer<T, S>, ConfigError> {
        Optimizer::new(
            learner::Sgd {
                momentum: self.momentum,
                dampening: self.dampening,
                nesterov: self.nesterov,
            },
            LastIterate,
            Corrected {
                base: Decoupled,
                peak_lr: Some(self.peak_lr.unwrap_or(self.lr)),
            },
            schedule,
            group(self.lr, self.weight_decay),
        )
    }
}
