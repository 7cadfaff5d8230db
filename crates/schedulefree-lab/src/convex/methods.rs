//! Method × base → a composed optimizer of the core crate (no optimizer math here).
//!
//! | method | learner (SGD base / Adam base) | conversion | schedule |
//! | --- | --- | --- | --- |
//! | `constant` | SGD momentum 0.9 / Adam β (0.9, 0.95) | [`LastIterate`] | warmup, then 1 |
//! | `linear_decay` | same | [`LastIterate`] | warmup, then linear to 0 ([`Linear`]) |
//! | `cosine` | same | [`LastIterate`] | warmup, then cosine to 0 ([`Cosine`]) |
//! | `polyak` | plain SGD / Adam β (0, 0.95) | [`PolyakAverage`] | warmup, then 1 |
//! | `primal` | same | [`PrimalAverage`] | warmup, then 1 |
//! | `schedule_free` | same | [`ScheduleFree`] `β = 0.9` | warmup, then 1 |
//!
//! All averages use [`AveragingWeights::default`] (`w_k ∝ lr_max²`, so warmup iterates get
//! small weight); no weight decay ([`NoDecay`]); Adam `ε = 1e-8`, bias correction in the
//! denominator; non-finite gradients are refused ([`NonFinitePolicy::Error`]) so that a
//! diverging run is detected instead of silently skipping steps.

use anyhow::Context;
use schedulefree::conversion::{
    AveragingWeights, Conversion, LastIterate, PolyakAverage, PrimalAverage, ScheduleFree,
};
use schedulefree::decay::NoDecay;
use schedulefree::learner::{Adam, BiasCorrection, Learner, Sgd, StepCount};
use schedulefree::schedule::{Constant, Cosine, Linear, Schedule, Warmup};
use schedulefree::{DynOptimizer, GroupConfig, NonFinitePolicy, Optimizer};

use super::config::{Base, Method};

/// Heavy-ball momentum of the SGD base for the last-iterate methods.
pub const SGD_MOMENTUM: f64 = 0.9;
/// `(β1, β2)` of the Adam base for the last-iterate methods.
pub const ADAM_BETAS: (f64, f64) = (0.9, 0.95);
/// `β2` of the momentum-free Adam base used inside the averaging methods.
pub const ADAM_BETA2_AVERAGING: f64 = 0.95;
/// Adam's denominator offset.
pub const ADAM_EPS: f64 = 1e-8;
/// Schedule-Free interpolation `β`.
pub const SF_BETA: f64 = 0.9;

/// A boxed optimizer over `f32` buffers.
pub type BoxedOptimizer = Box<dyn DynOptimizer<f32>>;

/// The SGD learner for `method` (momentum only for the last-iterate methods).
pub fn sgd_learner(method: Method) -> Sgd {
    if method.uses_momentum() {
        Sgd {
            momentum: SGD_MOMENTUM,
            dampening: 0.0,
            nesterov: false,
        }
    } else {
        Sgd::plain()
    }
}

/// The Adam learner for `method` (first moment only for the last-iterate methods).
pub fn adam_learner(method: Method) -> Adam {
    let beta1 = if method.uses_momentum() {
        ADAM_BETAS.0
    } else {
        0.0
    };
    let beta2 = if method.uses_momentum() {
        ADAM_BETAS.1
    } else {
        ADAM_BETA2_AVERAGING
    };
    Adam {
        beta1,
        beta2,
        eps: ADAM_EPS,
        bias_correction: BiasCorrection::Denominator,
        count: StepCount::Parameter,
    }
}

/// Build the optimizer of `method` with `base` and peak lr `lr` for a run of `total` updates
/// whose first `warmup` updates warm up linearly (`(k+1)/W`).
///
/// # Errors
/// Invalid hyperparameters or schedule lengths (e.g. `total = 0`).
pub fn build(
    method: Method,
    base: Base,
    lr: f64,
    total: u64,
    warmup: u64,
) -> anyhow::Result<BoxedOptimizer> {
    match base {
        Base::Sgd => with_learner(method, sgd_learner(method), lr, total, warmup),
        Base::Adam => with_learner(method, adam_learner(method), lr, total, warmup),
    }
    .with_context(|| format!("building {method} with the {base} base (lr {lr}, {total} updates)"))
}

fn with_learner<L: Learner + 'static>(
    method: Method,
    learner: L,
    lr: f64,
    total: u64,
    warmup: u64,
) -> anyhow::Result<BoxedOptimizer> {
    let weights = AveragingWeights::default();
    let flat = Warmup::new(warmup, Constant);
    Ok(match method {
        Method::Constant => compose(learner, LastIterate, flat, lr)?,
        Method::LinearDecay => compose(learner, LastIterate, Linear::new(warmup, total, 0.0)?, lr)?,
        Method::Cosine => compose(learner, LastIterate, Cosine::new(warmup, total, 0.0)?, lr)?,
        Method::Polyak => compose(learner, PolyakAverage { weights }, flat, lr)?,
        Method::Primal => compose(learner, PrimalAverage { weights }, flat, lr)?,
        Method::ScheduleFree => compose(
            learner,
            ScheduleFree {
                beta: SF_BETA,
                weights,
            },
            flat,
            lr,
        )?,
    })
}

fn compose<L, C, S>(
    learner: L,
    conversion: C,
    schedule: S,
    lr: f64,
) -> anyhow::Result<BoxedOptimizer>
where
    L: Learner + 'static,
    C: Conversion + 'static,
    S: Schedule + 'static,
{
    let opt = Optimizer::<f32, _, _, _, _>::new(
        learner,
        conversion,
        NoDecay,
        schedule,
        GroupConfig {
            lr,
            weight_decay: 0.0,
        },
    )?
    .with_non_finite(NonFinitePolicy::Error);
    Ok(Box::new(opt))
}
