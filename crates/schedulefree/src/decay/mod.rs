//! Weight-decay policies. A policy contributes up to three terms
//! to the fused loop, each exact (a no-op) when its coefficient is 0 or 1:
//!
//! * `l2`: coupled L2, added to the gradient before the learner (`g ← g + λ·y`);
//! * `at_y`: decoupled decay evaluated at the gradient point, added to the learner's
//!   direction (`d ← d + λ·y`, then scaled by the lr with it) — the Schedule-Free convention;
//! * `shrink`: decoupled decay of the learner's iterate `z ← (1 − γλ)·z` before its step —
//!   torch `AdamW`, and "decay at z" for Schedule-Free.
//!
//! A policy sees, per group and step, [`DecayContext`]: the group's `weight_decay`, the
//! effective lr, its running peak and whether the parameter is tagged `normalized`
//! ([`crate::ParamTags`]); parameters tagged `no_decay` get no decay whatever the policy.
//! [`Corrected`] (AdamC/SGDC) and [`Projected`] (hypersphere projection) act on the
//! normalized parameters and defer to a base policy elsewhere (AdamC, arXiv 2506.02285v2; projection);
//! [`DecayConfig`] picks any of them at run time.

use crate::element::Element;
use crate::error::ConfigError;
use std::fmt::Debug;

mod config;
mod corrected;
mod project_blocks;
mod projection;

pub use config::{DecayConfig, NormalizedPolicy};
pub use corrected::Corrected;
pub(crate) use project_blocks::BlockProjection;
pub use projection::{Projected, Projection, RadiusInit};
pub(crate) use projection::{init_radius, project_rows};

/// What a decay policy may depend on, per group and step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecayContext {
    /// The group's weight decay `λ` (≥ 0).
    pub weight_decay: f64,
    /// The scheduled lr `γ_k` of this update.
    pub lr: f64,
    /// The running maximum of the scheduled lr, including this update.
    pub lr_max: f64,
    /// Whether the parameter feeds a normalization layer (tag `normalized`).
    pub normalized: bool,
}

/// Per-step decay coefficients (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecayScalars {
    /// Coupled L2 coefficient added to the gradient.
    pub l2: f64,
    /// Decoupled coefficient added to the direction, at `y`.
    pub at_y: f64,
    /// Multiplier of the learner's iterate before its step.
    pub shrink: f64,
}

impl DecayScalars {
    /// No decay.
    pub const NONE: DecayScalars = DecayScalars {
        l2: 0.0,
        at_y: 0.0,
        shrink: 1.0,
    };
}

/// A weight-decay policy.
pub trait Decay: Clone + Debug + Send + Sync {
    /// Short name used in saved state.
    fn name(&self) -> &'static str;
    /// This step's coefficients.
    fn scalars(&self, ctx: DecayContext) -> DecayScalars;
    /// Validate hyperparameters (checked when the optimizer is built).
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] naming the first invalid field.
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
    /// The hypersphere projection applied to parameters tagged `normalized`, if any.
    fn projection(&self) -> Option<Projection> {
        None
    }
}

impl DecayScalars {
    /// The per-step decay factor `κ` of the learner's iterate these coefficients amount to
    /// for a step of size `lr` (`z ← (1 − κ)·z − lr·u`): `1 − shrink + lr·at_y`, plus
    /// `lr·l2` (exact for SGD; for Adam-type learners coupled L2 is preconditioned and this
    /// is only indicative).
    pub fn kappa(&self, lr: f64) -> f64 {
        1.0 - self.shrink + lr * (self.at_y + self.l2)
    }
}

/// Element-wise application, shared by every composed loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecayTerms<T> {
    pub l2: T,
    pub at_y: T,
    pub shrink: T,
}

impl<T: Element> DecayTerms<T> {
    pub fn of(s: DecayScalars) -> Self {
        DecayTerms {
            l2: T::of(s.l2),
            at_y: T::of(s.at_y),
            shrink: T::of(s.shrink),
        }
    }
}

/// No weight decay.
///
/// ```
/// use schedulefree::{GroupConfig, Optimizer, Param, ParamTags};
/// use schedulefree::{conversion::LastIterate, learner::Sgd, schedule::Constant};
/// use schedulefree::decay::NoDecay;
/// let mut opt = Optimizer::<f64, _, _, _, _>::new(
///     Sgd::plain(),
///     LastIterate,
///     NoDecay,
///     Constant,
///     GroupConfig { lr: 0.1, weight_decay: 0.5 },
/// )?;
/// opt.add_param("w", &[2, 2])?;
/// let mut w = vec![3.0, 4.0, 0.6, 0.8];
/// let g = vec![0.0; 4]; // decay alone
/// opt.step(&mut [Param::new("w", &mut w, &g)])?;
/// assert_eq!(w, [3.0, 4.0, 0.6, 0.8]); // weight_decay is ignored
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NoDecay;

impl Decay for NoDecay {
    fn name(&self) -> &'static str {
        "none"
    }
    fn scalars(&self, _ctx: DecayContext) -> DecayScalars {
        DecayScalars::NONE
    }
}

/// Coupled L2 regularisation `½λ‖y‖²`: the gradient becomes `g + λ·y` before the learner
/// sees it (torch `SGD`/`Adam` `weight_decay`).
///
/// ```
/// use schedulefree::{GroupConfig, Optimizer, Param, ParamTags};
/// use schedulefree::{conversion::LastIterate, learner::Sgd, schedule::Constant};
/// use schedulefree::decay::L2;
/// let mut opt = Optimizer::<f64, _, _, _, _>::new(
///     Sgd::plain(),
///     LastIterate,
///     L2,
///     Constant,
///     GroupConfig { lr: 0.1, weight_decay: 0.5 },
/// )?;
/// opt.add_param("w", &[2, 2])?;
/// let mut w = vec![3.0, 4.0, 0.6, 0.8];
/// let g = vec![0.0; 4]; // decay alone
/// opt.step(&mut [Param::new("w", &mut w, &g)])?;
/// assert_eq!(w[0], 3.0 - 0.1 * 0.5 * 3.0); // g + λw, stepped by the lr
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct L2;

impl Decay for L2 {
    fn name(&self) -> &'static str {
        "l2"
    }
    fn scalars(&self, ctx: DecayContext) -> DecayScalars {
        DecayScalars {
            l2: ctx.weight_decay,
            ..DecayScalars::NONE
        }
    }
}

/// Decoupled decay evaluated at the gradient point `y`: the direction becomes `d + λ·y` and
/// is scaled by the lr with it (Schedule-Free SGD/AdamW, schedulefree 1.4.1). With a
/// last-iterate conversion (`y = z`) this equals torch `AdamW`'s decay.
///
/// ```
/// use schedulefree::{GroupConfig, Optimizer, Param, ParamTags};
/// use schedulefree::{conversion::LastIterate, learner::Sgd, schedule::Constant};
/// use schedulefree::decay::DecoupledAtY;
/// let mut opt = Optimizer::<f64, _, _, _, _>::new(
///     Sgd::plain(),
///     LastIterate,
///     DecoupledAtY,
///     Constant,
///     GroupConfig { lr: 0.1, weight_decay: 0.5 },
/// )?;
/// opt.add_param("w", &[2, 2])?;
/// let mut w = vec![3.0, 4.0, 0.6, 0.8];
/// let g = vec![0.0; 4];
/// opt.step(&mut [Param::new("w", &mut w, &g)])?;
/// assert!((w[0] - (1.0 - 0.1 * 0.5) * 3.0).abs() < 1e-12); // last iterate: torch AdamW's (1 − γλ)·w
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DecoupledAtY;

impl Decay for DecoupledAtY {
    fn name(&self) -> &'static str {
        "decoupled_at_y"
    }
    fn scalars(&self, ctx: DecayContext) -> DecayScalars {
        DecayScalars {
            at_y: ctx.weight_decay,
            ..DecayScalars::NONE
        }
    }
}

/// Decoupled decay at `y` with its coefficient scaled by the step's effective lr `γ`:
/// `z ← z − γ²·λ·y` (ScheduleFree+, arXiv 2605.19095: AdamC's correction `λ_t = λ·γ_t/γ_max`
/// with `γ_max = 1`, on every parameter). With an adaptive `γ` (a Polyak step) the
/// equilibrium weight norm then no longer follows `γ`; `λ` is correspondingly large (20–50
/// for language models, whose `γ` is ~1e-3).
///
/// ```
/// use schedulefree::{GroupConfig, Optimizer, Param, ParamTags};
/// use schedulefree::{conversion::LastIterate, learner::Sgd, schedule::Constant};
/// use schedulefree::decay::SquaredLrAtY;
/// let mut opt = Optimizer::<f64, _, _, _, _>::new(
///     Sgd::plain(),
///     LastIterate,
///     SquaredLrAtY,
///     Constant,
///     GroupConfig { lr: 0.1, weight_decay: 0.5 },
/// )?;
/// opt.add_param("w", &[2, 2])?;
/// let mut w = vec![3.0, 4.0, 0.6, 0.8];
/// let g = vec![0.0; 4];
/// opt.step(&mut [Param::new("w", &mut w, &g)])?;
/// assert!((w[0] - (1.0 - 0.1 * 0.1 * 0.5) * 3.0).abs() < 1e-12); // (1 − γ²λ)·w
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SquaredLrAtY;

impl Decay for SquaredLrAtY {
    fn name(&self) -> &'static str {
        "squared_lr_at_y"
    }
    fn scalars(&self, ctx: DecayContext) -> DecayScalars {
        DecayScalars {
            at_y: ctx.weight_decay * ctx.lr,
            ..DecayScalars::NONE
        }
    }
}

/// Decoupled decay of the learner's iterate, `z ← (1 − γλ)·z` before the step (Loshchilov &
/// Hutter, arXiv 1711.05101, Algorithm 2, as in torch `AdamW`); for Schedule-Free this is
/// "decay at z" (`AdamWScheduleFreeReference(decay_at_z=True)`).
///
/// ```
/// use schedulefree::{GroupConfig, Optimizer, Param, ParamTags};
/// use schedulefree::{conversion::LastIterate, learner::Sgd, schedule::Constant};
/// use schedulefree::decay::Decoupled;
/// let mut opt = Optimizer::<f64, _, _, _, _>::new(
///     Sgd::plain(),
///     LastIterate,
///     Decoupled,
///     Constant,
///     GroupConfig { lr: 0.1, weight_decay: 0.5 },
/// )?;
/// opt.add_param("w", &[2, 2])?;
/// let mut w = vec![3.0, 4.0, 0.6, 0.8];
/// let g = vec![0.0; 4]; // decay alone
/// opt.step(&mut [Param::new("w", &mut w, &g)])?;
/// assert_eq!(w[0], (1.0 - 0.1 * 0.5) * 3.0); // (1 − γλ)·w
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Decoupled;

impl Decay for Decoupled {
    fn name(&self) -> &'static str {
        "decoupled"
    }
    fn scalars(&self, ctx: DecayContext) -> DecayScalars {
        DecayScalars {
            shrink: 1.0 - ctx.lr * ctx.weight_decay,
            ..DecayScalars::NONE
        }
    }
}

/// A decay policy chosen at run time (config files, the lab).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnyDecay {
    /// [`NoDecay`].
    #[default]
    None,
    /// [`L2`].
    L2,
    /// [`DecoupledAtY`].
    DecoupledAtY,
    /// [`Decoupled`].
    Decoupled,
}

impl Decay for AnyDecay {
    fn name(&self) -> &'static str {
        match self {
            AnyDecay::None => NoDecay.name(),
            AnyDecay::L2 => L2.name(),
            AnyDecay::DecoupledAtY => DecoupledAtY.name(),
            AnyDecay::Decoupled => Decoupled.name(),
        }
    }
    fn scalars(&self, ctx: DecayContext) -> DecayScalars {
        match self {
            AnyDecay::None => NoDecay.scalars(ctx),
            AnyDecay::L2 => L2.scalars(ctx),
            AnyDecay::DecoupledAtY => DecoupledAtY.scalars(ctx),
            AnyDecay::Decoupled => Decoupled.scalars(ctx),
        }
    }
}
