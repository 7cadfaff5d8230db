//! Any learner × conversion × decay policy × schedule as one serde value, for experiments
//! that cross them (the lab's `norms` grid, config files). It owns no math: it only picks
//! the monomorphised [`Optimizer`] to build.

use super::dynamic::DynOptimizer;
use crate::conversion::{AveragingWeights, LastIterate, PolyakAverage, ScheduleFree};
use crate::decay::DecayConfig;
use crate::driver::Optimizer;
use crate::element::Element;
use crate::error::ConfigError;
use crate::learner::{AdaGradNorm, Adam, Cocob, Learner, Polyak, Prodigy, Sgd};
use crate::param::GroupConfig;
use crate::schedule::{Schedule, ScheduleConfig};

/// A base online learner and its hyperparameters (`{"kind": "cocob", "alpha": 100}`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LearnerConfig {
    /// [`Sgd`].
    Sgd(Sgd),
    /// [`Adam`].
    Adam(Adam),
    /// [`AdaGradNorm`].
    #[serde(rename = "adagrad_norm")]
    AdaGradNorm(AdaGradNorm),
    /// [`Cocob`].
    Cocob(Cocob),
    /// [`Polyak`] (the step needs the loss).
    Polyak(Polyak),
    /// [`Prodigy`].
    Prodigy(Prodigy),
}

impl LearnerConfig {
    /// The learner's name (`"adagrad_norm"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sgd(l) => l.name(),
            Self::Adam(l) => l.name(),
            Self::AdaGradNorm(l) => l.name(),
            Self::Cocob(l) => l.name(),
            Self::Polyak(l) => l.name(),
            Self::Prodigy(l) => l.name(),
        }
    }
    /// Whether `step` needs the loss.
    pub fn needs_loss(&self) -> bool {
        matches!(self, Self::Polyak(_))
    }
}

/// An online-to-batch conversion (`{"kind": "schedule_free", "beta": 0.9}`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ConversionConfig {
    /// [`LastIterate`]: return the learner's iterate (use a decaying schedule).
    LastIterate,
    /// [`ScheduleFree`] with interpolation `beta` and averaging weights.
    ScheduleFree {
        /// `β ∈ (0, 1]`.
        #[serde(default = "beta_default")]
        beta: f64,
        /// Averaging weights.
        #[serde(default)]
        weights: AveragingWeights,
        /// Decoupled averaging weight `C ≥ 0` ([`ScheduleFree::decoupling_c`]; 0 = off).
        #[serde(default, skip_serializing_if = "crate::conversion::is_off")]
        decoupling_c: f64,
    },
    /// [`PolyakAverage`] of the iterates.
    PolyakAverage {
        /// Averaging weights (default uniform).
        #[serde(default = "uniform")]
        weights: AveragingWeights,
    },
}

fn beta_default() -> f64 {
    0.9
}
fn uniform() -> AveragingWeights {
    AveragingWeights::UNIFORM
}

/// A composed method: `learner` under `conversion`, with `decay` and `schedule`, one group
/// of `lr` and `weight_decay`.
///
/// ```
/// use schedulefree::composed::Composed;
/// let c: Composed = serde_json::from_str(r#"{
///     "learner": {"kind": "adagrad_norm", "b0": 0.1},
///     "conversion": {"kind": "schedule_free", "beta": 0.9},
///     "decay": {"base": "decoupled_at_y", "normalized": {"kind": "corrected"}},
///     "lr": 1.0, "weight_decay": 0.1
/// }"#).unwrap();
/// let mut opt = c.build_dyn::<f32>().unwrap();
/// opt.add_param_tagged(0, "w", &[4, 3], schedulefree::ParamTags::NORMALIZED).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Composed {
    /// The base learner.
    pub learner: LearnerConfig,
    /// The conversion.
    pub conversion: ConversionConfig,
    /// The decay policy (default: none).
    #[serde(default)]
    pub decay: DecayConfig,
    /// Multiplier of `lr` per update (default constant).
    #[serde(default = "constant")]
    pub schedule: ScheduleConfig,
    /// Group 0's lr `≥ 0`.
    pub lr: f64,
    /// Group 0's weight decay `λ ≥ 0`.
    #[serde(default)]
    pub weight_decay: f64,
}

fn constant() -> ScheduleConfig {
    ScheduleConfig::Constant {}
}

fn with_conversion<T: Element, L: Learner + 'static>(
    learner: L,
    c: &Composed,
    schedule: Box<dyn Schedule>,
) -> Result<Box<dyn DynOptimizer<T>>, ConfigError> {
    fn boxed<T: Element, O: DynOptimizer<T> + 'static>(
        o: Result<O, ConfigError>,
    ) -> Result<Box<dyn DynOptimizer<T>>, ConfigError> {
        Ok(Box::new(o?))
    }
    let g = GroupConfig {
        lr: c.lr,
        weight_decay: c.weight_decay,
    };
    match c.conversion {
        ConversionConfig::LastIterate => {
            boxed(Optimizer::new(learner, LastIterate, c.decay, schedule, g))
        }
        ConversionConfig::ScheduleFree {
            beta,
            weights,
            decoupling_c,
        } => boxed(Optimizer::new(
            learner,
            ScheduleFree {
                beta,
                weights,
                decoupling_c,
                anneal: None,
                c_warmup: 0,
            },
            c.decay,
            schedule,
            g,
        )),
        ConversionConfig::PolyakAverage { weights } => boxed(Optimizer::new(
            learner,
            PolyakAverage { weights },
            c.decay,
            schedule,
            g,
        )),
    }
}

impl Composed {
    /// Build behind the object-safe interface.
    ///
    /// # Errors
    /// Any component's [`ConfigError`].
    pub fn build_dyn<T: Element>(&self) -> Result<Box<dyn DynOptimizer<T>>, ConfigError> {
        T::composed_dyn(self)
    }

    /// [`Composed::build_dyn`], instantiated only by this crate's `Element` impls.
    pub(crate) fn build_dyn_here<T: Element>(
        &self,
    ) -> Result<Box<dyn DynOptimizer<T>>, ConfigError> {
        let s = self.schedule.build()?;
        match self.learner {
            LearnerConfig::Sgd(l) => with_conversion(l, self, s),
            LearnerConfig::Adam(l) => with_conversion(l, self, s),
            LearnerConfig::AdaGradNorm(l) => with_conversion(l, self, s),
            LearnerConfig::Cocob(l) => with_conversion(l, self, s),
            LearnerConfig::Polyak(l) => with_conversion(l, self, s),
            LearnerConfig::Prodigy(l) => with_conversion(l, self, s),
        }
    }

    /// Whether the returned point differs from the training buffer.
    pub fn has_modes(&self) -> bool {
        !matches!(self.conversion, ConversionConfig::LastIterate)
    }
}
