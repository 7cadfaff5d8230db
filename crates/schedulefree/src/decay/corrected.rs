//! Schedule-corrected weight decay for normalized layers: AdamC / SGDC (Defazio et al.,
//! "Why gradients rapidly increase near the end of training", arXiv 2506.02285v2).

use super::{Decay, DecayContext, DecayScalars, Projection};
use crate::error::{ConfigError, check};

/// Corrected decay: on parameters tagged `normalized` the base policy's weight decay becomes
/// `λ_t = λ·γ_t/γ_max`, so the per-step shrink `γ_t·λ_t = λ·γ_t²/γ_max` follows the schedule
/// squared and the steady state `‖g‖/‖x‖ → sqrt(2λ/γ_max)` (SGDC) or
/// `‖x‖² → γ_max‖u‖²/(2λ)` (AdamC) no longer moves with `γ_t`. Other parameters get the base
/// policy unchanged. With `base` = [`super::Decoupled`] and the Adam learner this is AdamC
/// (torch-style), with the SGD learner SGDC; with [`super::DecoupledAtY`] it is the
/// Schedule-Free form (decay at `y`, as ScheduleFree+ does).
///
/// `γ_max` is `peak_lr` when given (the schedule's peak, as pytorch_optimizer's and timm's
/// AdamC take the constructor's lr), else the running maximum of the effective lr including
/// this step (during a warmup the lr is its own running maximum, so the decay is plain until
/// the lr first decreases: only an explicit peak reduces it during warmup); while that maximum
/// is 0 the decay is 0 (then `γ_t = 0` too). With a constant lr equal to `γ_max` this is the base
/// policy exactly.
///
/// ```
/// use schedulefree::{GroupConfig, Optimizer, Param, ParamTags};
/// use schedulefree::{conversion::LastIterate, learner::Sgd, schedule::Constant};
/// use schedulefree::decay::{Corrected, Decoupled};
/// let mut opt = Optimizer::<f64, _, _, _, _>::new(
///     Sgd::plain(),
///     LastIterate,
///     Corrected { base: Decoupled, peak_lr: Some(0.2) },
///     Constant,
///     GroupConfig { lr: 0.1, weight_decay: 0.5 },
/// )?;
/// opt.add_param_tagged(0, "w", &[2, 2], ParamTags::NORMALIZED)?;
/// let mut w = vec![3.0, 4.0, 0.6, 0.8];
/// let g = vec![0.0; 4];
/// opt.step(&mut [Param::new("w", &mut w, &g)])?;
/// // Normalized: λ_t = λ·γ/γ_max = 0.25, so the shrink is 1 − γ·λ_t = 0.975.
/// assert!((w[0] - 0.975 * 3.0).abs() < 1e-12);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Corrected<B> {
    /// Policy applied, with the corrected `λ_t`, to normalized parameters and, with `λ`, to
    /// the others.
    pub base: B,
    /// Explicit `γ_max > 0`; `None`: the running maximum.
    pub peak_lr: Option<f64>,
}

impl<B: Decay> Corrected<B> {
    /// `γ_t/γ_max` for this step (0 while the running maximum is 0).
    pub fn ratio(&self, ctx: &DecayContext) -> f64 {
        let peak = self.peak_lr.unwrap_or(ctx.lr_max);
        if peak > 0.0 { ctx.lr / peak } else { 0.0 }
    }
}

impl<B: Decay> Decay for Corrected<B> {
    fn name(&self) -> &'static str {
        "corrected"
    }
    fn scalars(&self, ctx: DecayContext) -> DecayScalars {
        if !ctx.normalized {
            return self.base.scalars(ctx);
        }
        self.base.scalars(DecayContext {
            weight_decay: ctx.weight_decay * self.ratio(&ctx),
            ..ctx
        })
    }
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(p) = self.peak_lr {
            check("peak_lr", p, p > 0.0 && p.is_finite(), "finite peak_lr > 0")?;
        }
        self.base.validate()
    }
    fn projection(&self) -> Option<Projection> {
        self.base.projection()
    }
}
