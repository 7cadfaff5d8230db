//! The runs of `sflab norms`: which learner, decay policy, schedule, lr and weight decay each
//! experiment trains, and the optimizer each run builds (the AdamC paper's experiments, arXiv 2506.02285v2).

use std::fmt;

use schedulefree::composed::{Composed, ConversionConfig, LearnerConfig};
use schedulefree::decay::{AnyDecay, DecayConfig, NormalizedPolicy, Projection, RadiusInit};
use schedulefree::learner::{AdaGradNorm, Adam, BiasCorrection, Cocob, Polyak, Prodigy, Sgd};
use schedulefree::schedule::ScheduleConfig;
use schedulefree::{AdamC, PresetConfig, SgdC};
use serde::{Deserialize, Serialize};

/// One of the three experiments.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum Experiment {
    /// Constant lr, a (λ, γ) grid: measured vs predicted steady-state norms (§10.2–10.3).
    Steady,
    /// Linear-decay and cosine schedules: AdamW vs AdamC vs projection, SGD vs SGDC vs
    /// projection; gradient norms at the end of training (§10.4–10.5).
    End,
    /// Polyak, AdaGrad-Norm, COCOB, Prodigy × four decay policies (§11.5).
    Magnitude,
}

impl Experiment {
    /// All three, in run order.
    pub const ALL: [Experiment; 3] = [Experiment::Steady, Experiment::End, Experiment::Magnitude];

    /// Lower-case name (file prefixes).
    pub fn name(self) -> &'static str {
        match self {
            Self::Steady => "steady",
            Self::End => "end",
            Self::Magnitude => "magnitude",
        }
    }
}

/// The base online learner of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LearnerKind {
    /// Plain SGD (no momentum), so that `u = g` and §10.2 applies as stated.
    Sgd,
    /// Adam (β = (0.9, 0.999), ε = 1e-8, pytorch_optimizer's ε placement as [`AdamC`]).
    Adam,
    /// Adam without first moment (β1 = 0): the setting of the steady-state prediction of
    /// [`super::steady`], whose updates are uncorrelated from step to step.
    AdamNoMomentum,
    /// Polyak step size (SPS_max, `f* = 0`, cap 1).
    Polyak,
    /// AdaGrad-Norm (`b0 = 0.1`).
    AdaGradNorm,
    /// COCOB-Backprop (`α = 100`).
    Cocob,
    /// Prodigy (optax defaults).
    Prodigy,
}

impl LearnerKind {
    /// The four magnitude-based learners, in table order.
    pub const MAGNITUDE: [LearnerKind; 4] = [
        LearnerKind::Polyak,
        LearnerKind::AdaGradNorm,
        LearnerKind::Cocob,
        LearnerKind::Prodigy,
    ];

    /// Display name.
    pub fn label(self) -> &'static str {
        match self {
            Self::Sgd => "SGD",
            Self::Adam => "Adam",
            Self::AdamNoMomentum => "Adam(β1=0)",
            Self::Polyak => "Polyak",
            Self::AdaGradNorm => "AdaGrad-Norm",
            Self::Cocob => "COCOB",
            Self::Prodigy => "Prodigy",
        }
    }

    fn config(self) -> LearnerConfig {
        match self {
            Self::Sgd => LearnerConfig::Sgd(Sgd::plain()),
            Self::Adam => LearnerConfig::Adam(adam()),
            Self::AdamNoMomentum => LearnerConfig::Adam(Adam {
                beta1: 0.0,
                ..adam()
            }),
            Self::Polyak => LearnerConfig::Polyak(Polyak::default()),
            Self::AdaGradNorm => LearnerConfig::AdaGradNorm(AdaGradNorm::default()),
            Self::Cocob => LearnerConfig::Cocob(Cocob::default()),
            Self::Prodigy => LearnerConfig::Prodigy(Prodigy::default()),
        }
    }
}

/// Adam's `β1` (torch default).
pub const ADAM_BETA1: f64 = 0.9;

/// Adam as inside [`AdamC`], so that AdamW, AdamC and projection differ only in the decay.
fn adam() -> Adam {
    Adam {
        beta1: ADAM_BETA1,
        bias_correction: BiasCorrection::EpsBeforeCorrection,
        ..Adam::default()
    }
}

/// What happens to the weights tagged `normalized` (the others always get decoupled decay
/// unless the variant is [`DecayVariant::None`]; gains, shifts and biases never decay).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecayVariant {
    /// No weight decay anywhere.
    None,
    /// Decoupled decay `κ = λγ_t` (AdamW / SGD with decoupled decay).
    Standard,
    /// Corrected decay `κ = λγ_t²/γ_max` on normalized weights (AdamC / SGDC).
    Corrected,
    /// No decay on normalized weights, each output unit projected back to its initial norm
    /// after every step (§10.5; burn's `Linear` weight is `[in, out]`, so rows are axis 1).
    Projected,
}

impl DecayVariant {
    /// The four variants, in table order.
    pub const ALL: [DecayVariant; 4] = [
        DecayVariant::None,
        DecayVariant::Standard,
        DecayVariant::Corrected,
        DecayVariant::Projected,
    ];

    /// Display name.
    pub fn label(self) -> &'static str {
        match self {
            Self::None => "no decay",
            Self::Standard => "decoupled",
            Self::Corrected => "corrected",
            Self::Projected => "projection",
        }
    }
}

/// The lr multiplier of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// Constant, no warmup.
    Constant,
    /// Linear warmup, then linear decay to 0 at the last step.
    Linear,
    /// Linear warmup, then cosine decay to 0 at the last step.
    Cosine,
}

impl Shape {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Constant => "constant",
            Self::Linear => "linear",
            Self::Cosine => "cosine",
        }
    }

    /// The schedule over `total` steps with `warmup` steps of warmup.
    pub fn schedule(self, warmup: u64, total: u64) -> ScheduleConfig {
        match self {
            Self::Constant => ScheduleConfig::Constant {},
            Self::Linear => ScheduleConfig::Linear {
                warmup,
                total,
                end: 0.0,
            },
            Self::Cosine => ScheduleConfig::Cosine {
                warmup,
                total,
                end: 0.0,
            },
        }
    }
}

/// Axis of the output units in burn's `Linear` weight `[in, out]`.
pub const LINEAR_OUT_AXIS: usize = 1;

/// The projection of [`DecayVariant::Projected`]: rows along [`LINEAR_OUT_AXIS`], radius
/// from the initialisation.
pub fn projection() -> Projection {
    Projection {
        axis: LINEAR_OUT_AXIS,
        radius: RadiusInit::Initial,
        min_radius: 1e-3,
    }
}

/// One training run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The experiment it belongs to.
    pub experiment: Experiment,
    /// The base learner.
    pub learner: LearnerKind,
    /// The decay policy.
    pub decay: DecayVariant,
    /// The lr multiplier.
    pub shape: Shape,
    /// Peak lr `γ` (for the magnitude learners the multiplier of their own step).
    pub lr: f64,
    /// Weight decay `λ` (0 for [`DecayVariant::None`]).
    pub weight_decay: f64,
    /// Optimizer steps `T`.
    pub steps: u64,
    /// Warmup steps (0 for [`Shape::Constant`]).
    pub warmup: u64,
}

impl RunSpec {
    /// The method's name: `AdamW`, `AdamC`, `Adam+proj`, `SGD`, `SGDC`, `SGD+proj`, or the
    /// learner's name for the magnitude learners.
    pub fn method(&self) -> String {
        match (self.learner, self.decay) {
            (LearnerKind::Adam, DecayVariant::Standard) => "AdamW".into(),
            (LearnerKind::AdamNoMomentum, DecayVariant::Standard) => "AdamW(β1=0)".into(),
            (LearnerKind::Adam, DecayVariant::Corrected) => "AdamC".into(),
            (LearnerKind::Sgd, DecayVariant::Corrected) => "SGDC".into(),
            (LearnerKind::Adam | LearnerKind::Sgd, DecayVariant::Projected) => {
                format!("{}+proj", self.learner.label())
            }
            (l, _) => l.label().into(),
        }
    }

    /// A file stem unique within a protocol, e.g. `steady_sgd_decoupled_constant_lr0.1_wd0.02`.
    pub fn id(&self) -> String {
        let learner = serde_json::to_value(self.learner)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let decay = serde_json::to_value(self.decay)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        format!(
            "{}_{learner}_{decay}_{}_lr{}_wd{}",
            self.experiment.name(),
            self.shape.name(),
            self.lr,
            self.weight_decay
        )
    }

    /// Relaxation time `1/(2γλ)` of the weight norm at the peak lr, in steps (inf without
    /// decay; Van Laarhoven, arXiv 1706.05350).
    pub fn relaxation_steps(&self) -> f64 {
        1.0 / (2.0 * self.lr * self.weight_decay)
    }

    /// The optimizer: presets [`AdamC`] / [`SgdC`] (correction peak = `lr`) for the corrected
    /// SGD/Adam runs, otherwise a [`Composed`] last-iterate method.
    pub fn preset(&self) -> PresetConfig {
        let schedule = self.shape.schedule(self.warmup, self.steps);
        match (self.learner, self.decay) {
            (LearnerKind::Adam, DecayVariant::Corrected) => PresetConfig::AdamC {
                config: AdamC {
                    lr: self.lr,
                    weight_decay: self.weight_decay,
                    ..AdamC::default()
                },
                schedule,
            },
            (LearnerKind::Sgd, DecayVariant::Corrected) => PresetConfig::SgdC {
                config: SgdC {
                    lr: self.lr,
                    weight_decay: self.weight_decay,
                    ..SgdC::default()
                },
                schedule,
            },
            (learner, variant) => {
                let (base, normalized) = match variant {
                    DecayVariant::None => (AnyDecay::None, NormalizedPolicy::Standard),
                    DecayVariant::Standard => (AnyDecay::Decoupled, NormalizedPolicy::Standard),
                    // The running maximum of the effective step: the magnitude learners have
                    // no peak lr known in advance.
                    DecayVariant::Corrected => (
                        AnyDecay::Decoupled,
                        NormalizedPolicy::Corrected { peak_lr: None },
                    ),
                    DecayVariant::Projected => (
                        AnyDecay::Decoupled,
                        NormalizedPolicy::Projected(projection()),
                    ),
                };
                PresetConfig::Composed(Composed {
                    learner: learner.config(),
                    conversion: ConversionConfig::LastIterate,
                    decay: DecayConfig { base, normalized },
                    schedule,
                    lr: self.lr,
                    weight_decay: self.weight_decay,
                })
            }
        }
    }
}

impl fmt::Display for RunSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} γ={} λ={} T={}",
            self.experiment.name(),
            self.method(),
            self.shape.name(),
            self.lr,
            self.weight_decay,
            self.steps
        )
    }
}
