//! The names users type: configurations whose behaviour equals the reference PyTorch
//! classes (schedulefree 1.4.1, torch 2.x), each building a composed [`Optimizer`].
//!
//! | preset | learner | conversion | decay | schedule |
//! | --- | --- | --- | --- | --- |
//! | [`SgdScheduleFree`] | SGD | Schedule-Free | at `y` | warmup |
//! | [`AdamWScheduleFree`] | Adam (no β1 EMA) | Schedule-Free | at `y` | warmup |
//! | [`AdamWScheduleFreePaper`] | Adam, bias correction in lr | Schedule-Free | at `y` | warmup |
//! | [`RAdamScheduleFree`] | RAdam | Schedule-Free | at `y` | — |
//! | [`SgdScheduleFreeReference`] | SGD | Schedule-Free (x, y, z stored) | at `y` | warmup |
//! | [`AdamWScheduleFreeReference`] | Adam | Schedule-Free (x, y, z stored) | at `y` or `z` | warmup |
//! | [`ScheduleFreeWrapper`] | any momentum-free learner | Schedule-Free (or reference) | at `y` | — |
//! | [`ScheduleFreePlus`] | Polyak step × Adam (β1) | Schedule-Free (annealed β, `c_warmup`) | `γ²λ` at `y` | — |
//! | [`AdamW`] | Adam | last iterate | decoupled (× lr) | any |
//! | [`TorchSgd`] | SGD (momentum, Nesterov) | last iterate | L2 | any |
//!
//! The Schedule-Free closure classes (`*ScheduleFreeClosure`) compute the same iterates as
//! the train/eval classes (their `closure` re-evaluates the gradient at `y` inside `step`,
//! which changes no iterate; `tests/suite/conformance.rs` checks both forms); use the presets above with
//! `train()`/`eval()` around each step.

mod corrected;
mod schedule_free_plus;
pub use corrected::{AdamC, AdamCOptimizer, SgdC, SgdCOptimizer};
pub use schedule_free_plus::{ScheduleFreePlus, ScheduleFreePlusOptimizer};

use crate::conversion::{AveragingWeights, LastIterate, ScheduleFree, ScheduleFreeReference};
use crate::decay::{AnyDecay, Decoupled, DecoupledAtY, L2};
use crate::driver::Optimizer;
use crate::element::Element;
use crate::error::ConfigError;
use crate::learner::{self, Adam, BiasCorrection, Learner, RAdam, StepCount};
use crate::param::GroupConfig;
use crate::schedule::{Constant, Schedule, Warmup};

/// The reference's linear warmup `min(1, (k+1)/W)`.
pub type WarmupConstant = Warmup<Constant>;

/// Schedule-Free SGD as built by [`SgdScheduleFree`].
pub type SgdScheduleFreeOptimizer<T> =
    Optimizer<T, learner::Sgd, ScheduleFree, DecoupledAtY, WarmupConstant>;
/// Schedule-Free AdamW as built by [`AdamWScheduleFree`] / [`AdamWScheduleFreePaper`].
pub type AdamWScheduleFreeOptimizer<T> =
    Optimizer<T, Adam, ScheduleFree, DecoupledAtY, WarmupConstant>;
/// Schedule-Free RAdam as built by [`RAdamScheduleFree`].
pub type RAdamScheduleFreeOptimizer<T> = Optimizer<T, RAdam, ScheduleFree, DecoupledAtY, Constant>;
/// Reference-form Schedule-Free SGD (x, y, z stored).
pub type SgdScheduleFreeReferenceOptimizer<T> =
    Optimizer<T, learner::Sgd, ScheduleFreeReference, DecoupledAtY, WarmupConstant>;
/// Reference-form Schedule-Free AdamW (x, y, z stored).
pub type AdamWScheduleFreeReferenceOptimizer<T> =
    Optimizer<T, Adam, ScheduleFreeReference, AnyDecay, WarmupConstant>;
/// A Schedule-Free wrapper around learner `L`.
pub type ScheduleFreeWrapperOptimizer<T, L> = Optimizer<T, L, ScheduleFree, DecoupledAtY, Constant>;
/// A reference-form Schedule-Free wrapper around learner `L`.
pub type ScheduleFreeWrapperReferenceOptimizer<T, L> =
    Optimizer<T, L, ScheduleFreeReference, DecoupledAtY, Constant>;
/// torch-style AdamW driven by schedule `S`.
pub type AdamWOptimizer<T, S> = Optimizer<T, Adam, LastIterate, Decoupled, S>;
/// torch-style SGD driven by schedule `S`.
pub type SgdOptimizer<T, S> = Optimizer<T, learner::Sgd, LastIterate, L2, S>;

pub(crate) fn group(lr: f64, weight_decay: f64) -> GroupConfig {
    GroupConfig { lr, weight_decay }
}

/// `schedulefree.SGDScheduleFree` (schedulefree 1.4.1; Road Less Scheduled, arXiv 2405.15682v4, Alg. 1 with
/// an SGD base). Defaults are the reference's: `lr 1.0, momentum 0.9, weight_decay 0,
/// warmup_steps 0, r 0, weight_lr_power 2`. `momentum` is the interpolation `β ∈ (0, 1]`.
/// Decay is evaluated at `y` and scaled by the lr.
///
/// ```
/// use schedulefree::{Param, SgdScheduleFree};
/// let mut opt = SgdScheduleFree { lr: 0.5, warmup_steps: 10, ..Default::default() }.build::<f32>()?;
/// opt.add_param("w", &[3])?;
/// let (mut w, g) = (vec![1.0f32; 3], vec![0.5f32; 3]);
/// let info = opt.step(&mut [Param::new("w", &mut w, &g)])?;
/// assert!(info.skipped.is_none() && w.iter().all(|v| *v < 1.0)); // y moved against g
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SgdScheduleFree {
    /// Peak lr `γ` (SF wants 10–50× the lr of scheduled SGD).
    pub lr: f64,
    /// Interpolation `β ∈ (0, 1]`.
    pub momentum: f64,
    /// Weight decay `λ ≥ 0`, at `y`.
    pub weight_decay: f64,
    /// Linear warmup length (updates).
    pub warmup_steps: u64,
    /// Averaging exponent `r ≥ 0`.
    pub r: f64,
    /// Averaging `lr_max` power `p ≥ 0`.
    pub weight_lr_power: f64,
    /// Decoupled averaging weight `C ≥ 0`, `c ← min(1, c·(1 − β)·C)` ("Through the River",
    /// arXiv 2507.09846; pytorch_optimizer has it on `ScheduleFreeAdamW` only, this is the same
    /// rule here); 0 (default) is off, and must be when `β = 1`.
    #[serde(skip_serializing_if = "crate::conversion::is_off")]
    pub decoupling_c: f64,
}

impl Default for SgdScheduleFree {
    fn default() -> Self {
        SgdScheduleFree {
            lr: 1.0,
            momentum: 0.9,
            weight_decay: 0.0,
            warmup_steps: 0,
            r: 0.0,
            weight_lr_power: 2.0,
            decoupling_c: 0.0,
        }
    }
}

impl SgdScheduleFree {
    /// Build the optimizer (one group with this lr and weight decay).
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] for `momentum ∉ (0, 1]`, negative lr / decay / `r` /
    /// `weight_lr_power` / `decoupling_c`, `decoupling_c > 0` with `momentum = 1`.
    pub fn build<T: Element>(&self) -> Result<SgdScheduleFreeOptimizer<T>, ConfigError> {
        Optimizer::new(
            learner::Sgd::plain(),
            ScheduleFree {
                beta: self.momentum,
                weights: AveragingWeights {
                    r: self.r,
                    weight_lr_power: self.weight_lr_power,
                },
                decoupling_c: self.decoupling_c,
                anneal: None,
                c_warmup: 0,
            },
            DecoupledAtY,
            Warmup::new(self.warmup_steps, Constant),
            group(self.lr, self.weight_decay),
        )
    }

    /// Build the reference form that stores `x`, `y`, `z` (`SGDScheduleFreeReference`).
    ///
    /// # Errors
    /// As [`SgdScheduleFree::build`].
    pub fn build_reference<T: Element>(
        &self,
    ) -> Result<SgdScheduleFreeReferenceOptimizer<T>, ConfigError> {
        ScheduleFree::validate_beta(self.momentum)?;
        Optimizer::new(
            learner::Sgd::plain(),
            ScheduleFreeReference {
                beta: self.momentum,
                weights: AveragingWeights {
                    r: self.r,
                    weight_lr_power: self.weight_lr_power,
                },
                decoupling_c: self.decoupling_c,
            },
            DecoupledAtY,
            Warmup::new(self.warmup_steps, Constant),
            group(self.lr, self.weight_decay),
        )
    }
}

/// `schedulefree.SGDScheduleFreeReference` (schedulefree 1.4.1): [`SgdScheduleFree`]'s
/// configuration with `x, y, z` stored (3 buffers). Same iterates as the memory-efficient form.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct SgdScheduleFreeReference(pub SgdScheduleFree);

impl SgdScheduleFreeReference {
    /// Build the optimizer ([`SgdScheduleFree::build_reference`]).
    ///
    /// # Errors
    /// As [`SgdScheduleFree::build`].
    pub fn build<T: Element>(&self) -> Result<SgdScheduleFreeReferenceOptimizer<T>, ConfigError> {
        self.0.build_reference()
    }
}

/// `schedulefree.AdamWScheduleFree` (current semantics, schedulefree ≥ 1.3; checked against 1.4.1).
/// Defaults: `lr 0.0025, betas (0.9, 0.999), eps 1e-8, weight_decay 0, warmup_steps 0, r 0,
/// weight_lr_power 2, inner_momentum 0`. `betas.0` is the interpolation `β`, not an EMA;
/// `inner_momentum μ > 0` adds Adam's first moment (0.9 recommended when enabled).
///
/// ```
/// use schedulefree::{AdamWScheduleFree, Param};
/// let cfg = AdamWScheduleFree { lr: 1e-2, warmup_steps: 100, weight_decay: 0.01, ..Default::default() };
/// let mut opt = cfg.build::<f32>()?;
/// opt.add_param("w", &[2, 2])?;
/// let (mut w, g) = (vec![0.5f32; 4], vec![0.1f32; 4]);
/// opt.step(&mut [Param::new("w", &mut w, &g)])?; // w holds the training point y
/// let mut x = vec![0.0f32; 4];
/// opt.x_into("w", &w, &mut x)?; // the averaged point x, to evaluate
/// assert!(x.iter().all(|v| *v < 0.5));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamWScheduleFree {
    /// Peak lr `γ`.
    pub lr: f64,
    /// `(β, β2)`: Schedule-Free interpolation and second-moment decay.
    pub betas: (f64, f64),
    /// Denominator offset `ε > 0`.
    pub eps: f64,
    /// Weight decay `λ ≥ 0`, at `y`.
    pub weight_decay: f64,
    /// Linear warmup length (updates).
    pub warmup_steps: u64,
    /// Averaging exponent `r ≥ 0`.
    pub r: f64,
    /// Averaging `lr_max` power `p ≥ 0`.
    pub weight_lr_power: f64,
    /// Decoupled averaging weight `C ≥ 0`, `c ← min(1, c·(1 − β)·C)` (pytorch_optimizer's
    /// `decoupling_c`; "Through the River", arXiv 2507.09846); 0 (default) is off, and must be
    /// when `β = 1`.
    #[serde(skip_serializing_if = "crate::conversion::is_off")]
    pub decoupling_c: f64,
    /// Adam first-moment decay inside the learner (0: none, no buffer).
    pub inner_momentum: f64,
}

impl Default for AdamWScheduleFree {
    fn default() -> Self {
        AdamWScheduleFree {
            lr: 0.0025,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            warmup_steps: 0,
            r: 0.0,
            weight_lr_power: 2.0,
            decoupling_c: 0.0,
            inner_momentum: 0.0,
        }
    }
}

/// `schedulefree.AdamWScheduleFreePaper` (releases ≤ 1.2 and the published runs;
/// arXiv 2405.15682v4, Alg. 1 with Adam): [`AdamWScheduleFree`]'s configuration with the
/// bias correction folded into the lr ([`AdamWScheduleFree::build_paper`]).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct AdamWScheduleFreePaper(pub AdamWScheduleFree);

impl AdamWScheduleFreePaper {
    /// Build the optimizer.
    ///
    /// # Errors
    /// As [`AdamWScheduleFree::build`].
    pub fn build<T: Element>(&self) -> Result<AdamWScheduleFreeOptimizer<T>, ConfigError> {
        self.0.build_paper()
    }
}

/// `schedulefree.AdamWScheduleFreeReference` (schedulefree 1.4.1): [`AdamWScheduleFree`]'s
/// configuration with `x, y, z` stored; `decay_at_z` decays `z` instead of adding `λy`.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct AdamWScheduleFreeReference {
    /// Hyperparameters shared with [`AdamWScheduleFree`].
    pub config: AdamWScheduleFree,
    /// Decay at `z` instead of at `y` (reference default false).
    pub decay_at_z: bool,
}

impl AdamWScheduleFreeReference {
    /// Build the optimizer ([`AdamWScheduleFree::build_reference`]).
    ///
    /// # Errors
    /// As [`AdamWScheduleFree::build`].
    pub fn build<T: Element>(&self) -> Result<AdamWScheduleFreeReferenceOptimizer<T>, ConfigError> {
        self.config.build_reference(self.decay_at_z)
    }
}

impl AdamWScheduleFree {
    fn adam(&self, bias_correction: BiasCorrection) -> Adam {
        // The reference classes count bias corrections with the group's k.
        Adam {
            beta1: self.inner_momentum,
            beta2: self.betas.1,
            eps: self.eps,
            bias_correction,
            count: StepCount::Group,
        }
    }
    fn weights(&self) -> AveragingWeights {
        AveragingWeights {
            r: self.r,
            weight_lr_power: self.weight_lr_power,
        }
    }

    /// Build `AdamWScheduleFree`.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] for `betas.0 ∉ (0, 1]`, `betas.1 ∉ [0, 1)`, `eps ≤ 0`,
    /// `inner_momentum ∉ [0, 1)`, negative lr / decay / `r` / `weight_lr_power` /
    /// `decoupling_c`, `decoupling_c > 0` with `betas.0 = 1`.
    pub fn build<T: Element>(&self) -> Result<AdamWScheduleFreeOptimizer<T>, ConfigError> {
        self.build_with(BiasCorrection::Denominator)
    }

    /// Build `AdamWScheduleFreePaper`: `γ_k = lr·sched·sqrt(1 − β2^(k+1))`, `d = g/(sqrt(v)+ε)`.
    ///
    /// # Errors
    /// As [`AdamWScheduleFree::build`].
    pub fn build_paper<T: Element>(&self) -> Result<AdamWScheduleFreeOptimizer<T>, ConfigError> {
        self.build_with(BiasCorrection::LearningRate)
    }

    fn build_with<T: Element>(
        &self,
        bc: BiasCorrection,
    ) -> Result<AdamWScheduleFreeOptimizer<T>, ConfigError> {
        Optimizer::new(
            self.adam(bc),
            ScheduleFree {
                beta: self.betas.0,
                weights: self.weights(),
                decoupling_c: self.decoupling_c,
                anneal: None,
                c_warmup: 0,
            },
            DecoupledAtY,
            Warmup::new(self.warmup_steps, Constant),
            group(self.lr, self.weight_decay),
        )
    }

    /// Build `AdamWScheduleFreeReference` (`x, y, z` stored). `decay_at_z = true` decays `z`
    /// (`z ← (1 − γλ)z`) instead of adding `λy` to the direction.
    ///
    /// # Errors
    /// As [`AdamWScheduleFree::build`].
    pub fn build_reference<T: Element>(
        &self,
        decay_at_z: bool,
    ) -> Result<AdamWScheduleFreeReferenceOptimizer<T>, ConfigError> {
        ScheduleFree::validate_beta(self.betas.0)?;
        Optimizer::new(
            self.adam(BiasCorrection::Denominator),
            ScheduleFreeReference {
                beta: self.betas.0,
                weights: self.weights(),
                decoupling_c: self.decoupling_c,
            },
            if decay_at_z {
                AnyDecay::Decoupled
            } else {
                AnyDecay::DecoupledAtY
            },
            Warmup::new(self.warmup_steps, Constant),
            group(self.lr, self.weight_decay),
        )
    }
}

/// `schedulefree.RAdamScheduleFree` (schedulefree 1.4.1; RAdam: Liu et al., arXiv 1908.03265):
/// rectification replaces warmup.
/// Defaults: `lr 0.0025, betas (0.9, 0.999), eps 1e-8, weight_decay 0, r 0,
/// weight_lr_power 2, silent_sgd_phase true`.
///
/// ```
/// use schedulefree::{Param, RAdamScheduleFree};
/// let mut opt = RAdamScheduleFree::default().build::<f32>()?;
/// opt.add_param("w", &[4])?;
/// let (mut w, g) = (vec![0.5f32; 4], vec![0.1f32; 4]);
/// for _ in 0..10 {
///     opt.step(&mut [Param::new("w", &mut w, &g)])?;
/// }
/// // Silent while the variance is not rectifiable (the first steps), then Adam-like.
/// assert!(w.iter().all(|v| *v < 0.5));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RAdamScheduleFree {
    /// Peak lr `γ`.
    pub lr: f64,
    /// `(β, β2)`.
    pub betas: (f64, f64),
    /// Denominator offset `ε > 0`.
    pub eps: f64,
    /// Weight decay `λ ≥ 0`, at `y`.
    pub weight_decay: f64,
    /// Averaging exponent `r ≥ 0`.
    pub r: f64,
    /// Averaging `lr_max` power `p ≥ 0`.
    pub weight_lr_power: f64,
    /// Decoupled averaging weight `C ≥ 0`, `c ← min(1, c·(1 − β)·C)` ("Through the River",
    /// arXiv 2507.09846; pytorch_optimizer has it on `ScheduleFreeAdamW` only, this is the same
    /// rule here); 0 (default) is off, and must be when `β = 1`.
    #[serde(skip_serializing_if = "crate::conversion::is_off")]
    pub decoupling_c: f64,
    /// Freeze parameters while the variance is not rectifiable.
    pub silent_sgd_phase: bool,
}

impl Default for RAdamScheduleFree {
    fn default() -> Self {
        RAdamScheduleFree {
            lr: 0.0025,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            r: 0.0,
            weight_lr_power: 2.0,
            decoupling_c: 0.0,
            silent_sgd_phase: true,
        }
    }
}

impl RAdamScheduleFree {
    /// Build the optimizer.
    ///
    /// # Errors
    /// As [`AdamWScheduleFree::build`].
    pub fn build<T: Element>(&self) -> Result<RAdamScheduleFreeOptimizer<T>, ConfigError> {
        Optimizer::new(
            RAdam {
                beta2: self.betas.1,
                eps: self.eps,
                silent_sgd_phase: self.silent_sgd_phase,
            },
            ScheduleFree {
                beta: self.betas.0,
                weights: AveragingWeights {
                    r: self.r,
                    weight_lr_power: self.weight_lr_power,
                },
                decoupling_c: self.decoupling_c,
                anneal: None,
                c_warmup: 0,
            },
            DecoupledAtY,
            Constant,
            group(self.lr, self.weight_decay),
        )
    }
}

/// `schedulefree.ScheduleFreeWrapper` / `ScheduleFreeWrapperReference` (schedulefree 1.4.1):
/// Schedule-Free around any momentum-free base learner with step `lr` (no warmup inside the
/// wrapper). Defaults: `momentum 0.9, weight_decay_at_y 0, r 0, weight_lr_power 2`.
///
/// ```
/// use schedulefree::{Param, ScheduleFreeWrapper, learner::Sgd};
/// let mut opt = ScheduleFreeWrapper::default().wrap::<f32, _>(Sgd::plain(), 0.1)?;
/// opt.add_param("w", &[2])?;
/// let (mut w, g) = (vec![1.0f32; 2], vec![1.0f32; 2]);
/// opt.step(&mut [Param::new("w", &mut w, &g)])?;
/// assert!(w[0] < 1.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleFreeWrapper {
    /// Interpolation `β ∈ (0, 1]` (`[0, 1]` for the reference form).
    pub momentum: f64,
    /// Decay at `y`, scaled by the lr.
    pub weight_decay_at_y: f64,
    /// Averaging exponent `r ≥ 0`.
    pub r: f64,
    /// Averaging `lr_max` power `p ≥ 0`.
    pub weight_lr_power: f64,
    /// Decoupled averaging weight `C ≥ 0`, `c ← min(1, c·(1 − β)·C)` ("Through the River",
    /// arXiv 2507.09846; pytorch_optimizer has it on `ScheduleFreeAdamW` only, this is the same
    /// rule here); 0 (default) is off, and must be when `β = 1`.
    #[serde(skip_serializing_if = "crate::conversion::is_off")]
    pub decoupling_c: f64,
}

impl Default for ScheduleFreeWrapper {
    fn default() -> Self {
        ScheduleFreeWrapper {
            momentum: 0.9,
            weight_decay_at_y: 0.0,
            r: 0.0,
            weight_lr_power: 2.0,
            decoupling_c: 0.0,
        }
    }
}

impl ScheduleFreeWrapper {
    fn check_base<L: Learner>(base: &L) -> Result<(), ConfigError> {
        if base.has_momentum() {
            return Err(ConfigError::Unsupported(format!(
                "ScheduleFreeWrapper needs a momentum-free base learner; `{}` has momentum (set it to 0: \
                 the averaging provides momentum)",
                base.name()
            )));
        }
        Ok(())
    }

    /// Wrap `base` with step `lr` (memory-efficient form).
    ///
    /// # Errors
    /// [`ConfigError::Unsupported`] if `base` has momentum; range errors as the presets.
    pub fn wrap<T: Element, L: Learner>(
        &self,
        base: L,
        lr: f64,
    ) -> Result<ScheduleFreeWrapperOptimizer<T, L>, ConfigError> {
        Self::check_base(&base)?;
        Optimizer::new(
            base,
            ScheduleFree {
                beta: self.momentum,
                weights: AveragingWeights {
                    r: self.r,
                    weight_lr_power: self.weight_lr_power,
                },
                decoupling_c: self.decoupling_c,
                anneal: None,
                c_warmup: 0,
            },
            DecoupledAtY,
            Constant,
            group(lr, self.weight_decay_at_y),
        )
    }

    /// Wrap `base` in the reference form (`x, y, z` stored; any `β ∈ [0, 1]`).
    ///
    /// # Errors
    /// As [`ScheduleFreeWrapper::wrap`].
    pub fn wrap_reference<T: Element, L: Learner>(
        &self,
        base: L,
        lr: f64,
    ) -> Result<ScheduleFreeWrapperReferenceOptimizer<T, L>, ConfigError> {
        Self::check_base(&base)?;
        Optimizer::new(
            base,
            ScheduleFreeReference {
                beta: self.momentum,
                weights: AveragingWeights {
                    r: self.r,
                    weight_lr_power: self.weight_lr_power,
                },
                decoupling_c: self.decoupling_c,
            },
            DecoupledAtY,
            Constant,
            group(lr, self.weight_decay_at_y),
        )
    }
}

/// `torch.optim.AdamW` (Loshchilov & Hutter, arXiv 1711.05101) driven by one of our
/// schedules (equal to torch with `LinearLR` / `CosineAnnealingLR` / `SequentialLR`).
/// Defaults are torch's: `lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0.01`.
///
/// ```
/// use schedulefree::{AdamW, Param, schedule::Linear};
/// let schedule = Linear::new(10, 1000, 0.0)?; // 10 warmup updates, linear decay to 0 at 1000
/// let mut opt = AdamW::default().build::<f32, _>(schedule)?;
/// opt.add_param("w", &[3])?;
/// let (mut w, g) = (vec![1.0f32; 3], vec![0.2f32; 3]);
/// let info = opt.step(&mut [Param::new("w", &mut w, &g)])?;
/// assert!((info.group.lr - 1e-3 / 10.0).abs() < 1e-12); // the first warmup step
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamW {
    /// Peak lr.
    pub lr: f64,
    /// `(β1, β2)`.
    pub betas: (f64, f64),
    /// Denominator offset `ε > 0`.
    pub eps: f64,
    /// Decoupled weight decay `λ ≥ 0` (`p ← (1 − γλ)p`).
    pub weight_decay: f64,
}

impl Default for AdamW {
    fn default() -> Self {
        AdamW {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

impl AdamW {
    /// Build with `schedule` (a multiplier of `lr`).
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] for invalid betas, eps, lr or decay.
    pub fn build<T: Element, S: Schedule>(
        &self,
        schedule: S,
    ) -> Result<AdamWOptimizer<T, S>, ConfigError> {
        Optimizer::new(
            Adam {
                beta1: self.betas.0,
                beta2: self.betas.1,
                eps: self.eps,
                bias_correction: BiasCorrection::Denominator,
                count: StepCount::Parameter,
            },
            LastIterate,
            Decoupled,
            schedule,
            group(self.lr, self.weight_decay),
        )
    }
}

/// `torch.optim.SGD` (momentum, dampening, Nesterov, coupled L2 `weight_decay`) driven by one
/// of our schedules, returning the last iterate. Defaults: `lr 1e-3`, everything else 0 /
/// false. (The base online learner it wraps is [`learner::Sgd`].)
///
/// ```
/// use schedulefree::{Param, TorchSgd, schedule::Constant};
/// let mut opt = TorchSgd { lr: 0.1, momentum: 0.9, ..Default::default() }.build::<f64, _>(Constant)?;
/// opt.add_param("w", &[1])?;
/// let (mut w, g) = (vec![1.0f64], vec![2.0f64]);
/// opt.step(&mut [Param::new("w", &mut w, &g)])?;
/// assert_eq!(w, [1.0 - 0.1 * 2.0]); // torch: the first step's buffer is the gradient
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TorchSgd {
    /// Peak lr.
    pub lr: f64,
    /// Momentum `μ ∈ [0, 1)`.
    pub momentum: f64,
    /// Dampening `τ ∈ [0, 1]`.
    pub dampening: f64,
    /// Coupled L2 coefficient `λ ≥ 0`.
    pub weight_decay: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
}

impl Default for TorchSgd {
    fn default() -> Self {
        TorchSgd {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

impl TorchSgd {
    /// Build with `schedule` (a multiplier of `lr`).
    ///
    /// # Errors
    /// [`ConfigError`] for invalid momentum / dampening / Nesterov combination, lr or decay.
    pub fn build<T: Element, S: Schedule>(
        &self,
        schedule: S,
    ) -> Result<SgdOptimizer<T, S>, ConfigError> {
        Optimizer::new(
            learner::Sgd {
                momentum: self.momentum,
                dampening: self.dampening,
                nesterov: self.nesterov,
            },
            LastIterate,
            L2,
            schedule,
            group(self.lr, self.weight_decay),
        )
    }
}

/// Former name of [`TorchSgd`] (it clashed with the base learner [`learner::Sgd`]).
#[deprecated(since = "0.1.0", note = "renamed to `TorchSgd`")]
pub type Sgd = TorchSgd;
