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
//! | `inverse_sqrt` | SGD momentum 0.9 / Adam β (0.9, 0.95) | [`LastIterate`] | warmup, then `sqrt(W/(k+1))` ([`InverseSqrt`]) |
//! | `step` | same | [`LastIterate`] | warmup, then ×0.1 after 50 % and ×0.01 after 75 % of the updates ([`StepDecay`]) |
//! | `refined_l2`, `refined_l1`, `custom` | same | [`LastIterate`] | the given table / file as is ([`ScheduleConfig`]) |
//!
//! A schedule override (a refined schedule, the user's file) replaces the method's own
//! schedule, warmup included; the learner and conversion stay those of the method.
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
use schedulefree::schedule::{
    Constant, Cosine, InverseSqrt, Linear, Schedule, ScheduleConfig, StepDecay, Warmup,
};
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

/// Fractions of the run's updates after which the `step` method's multiplier falls by
/// [`STEP_GAMMA`] (×0.1 after half the run, ×0.01 after three quarters; the classical
/// "÷10 at fixed epochs" of the classic step schedule).
pub const STEP_MILESTONES: [f64; 2] = [0.5, 0.75];
/// Factor per milestone of the `step` method.
pub const STEP_GAMMA: f64 = 0.1;

/// The `step` method's milestones for a run of `total` updates whose first `warmup` updates
/// warm up: `round(f·total)` for each of [`STEP_MILESTONES`], dropping those inside the
/// warmup and duplicates (only very short runs lose one).
pub fn step_milestones(total: u64, warmup: u64) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for f in STEP_MILESTONES {
        let m = (f * total as f64).round() as u64;
        if m > warmup && out.last().is_none_or(|&last| m > last) {
            out.push(m);
        }
    }
    out
}

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
/// whose first `warmup` updates warm up linearly (`(k+1)/W`). `schedule`, if given, replaces
/// the method's schedule (warmup included).
///
/// # Errors
/// Invalid hyperparameters or schedule lengths (e.g. `total = 0`); a method that needs a
/// schedule ([`Method::needs_schedule`]) without one.
pub fn build(
    method: Method,
    base: Base,
    lr: f64,
    total: u64,
    warmup: u64,
    schedule: Option<&ScheduleConfig>,
) -> anyhow::Result<BoxedOptimizer> {
    let run = Run {
        method,
        lr,
        total,
        warmup,
        schedule,
    };
    match base {
        Base::Sgd => with_learner(&run, sgd_learner(method)),
        Base::Adam => with_learner(&run, adam_learner(method)),
    }
    .with_context(|| format!("building {method} with the {base} base (lr {lr}, {total} updates)"))
}

/// The arguments of [`build`] that do not depend on the base.
struct Run<'a> {
    method: Method,
    lr: f64,
    total: u64,
    warmup: u64,
    schedule: Option<&'a ScheduleConfig>,
}

fn with_learner<L: Learner + 'static>(run: &Run<'_>, learner: L) -> anyhow::Result<BoxedOptimizer> {
    let schedule = schedule_of(run)?;
    let weights = AveragingWeights::default();
    match run.method {
        Method::Polyak => compose(learner, PolyakAverage { weights }, schedule, run.lr),
        Method::Primal => compose(learner, PrimalAverage { weights }, schedule, run.lr),
        Method::ScheduleFree => compose(
            learner,
            ScheduleFree {
                beta: SF_BETA,
                weights,
                decoupling_c: 0.0,
                anneal: None,
                c_warmup: 0,
            },
            schedule,
            run.lr,
        ),
        _ => compose(learner, LastIterate, schedule, run.lr),
    }
}

/// The override if there is one, else the method's own schedule.
fn schedule_of(run: &Run<'_>) -> anyhow::Result<Box<dyn Schedule>> {
    let Run {
        method,
        total,
        warmup,
        schedule,
        ..
    } = *run;
    if let Some(config) = schedule {
        return config.build().context("building the schedule override");
    }
    Ok(match method {
        Method::Constant | Method::Polyak | Method::Primal | Method::ScheduleFree => {
            Box::new(Warmup::new(warmup, Constant))
        }
        Method::LinearDecay => Box::new(Linear::new(warmup, total, 0.0)?),
        Method::Cosine => Box::new(Cosine::new(warmup, total, 0.0)?),
        Method::InverseSqrt => Box::new(InverseSqrt::new(warmup)),
        Method::Step => Box::new(StepDecay::new(
            warmup,
            step_milestones(total, warmup),
            STEP_GAMMA,
        )?),
        Method::RefinedL2 | Method::RefinedL1 | Method::Custom => {
            anyhow::bail!("{method} needs a schedule (refined, or --schedule FILE)")
        }
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
