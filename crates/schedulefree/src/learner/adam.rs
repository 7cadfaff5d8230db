//! Adam's diagonal preconditioner (Kingma & Ba 2015, arXiv 1412.6980, Algorithm 1), in the
//! forms used by PyTorch `AdamW` and by Schedule-Free AdamW (schedulefree 1.4.1).

use super::{GroupState, Learner, Reductions, StepIndex};
use crate::element::Element;
use crate::error::{ConfigError, check};

/// Where Adam's second-moment bias correction `1 − β2^t` is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BiasCorrection {
    /// Inside the denominator: `d = m̂ / (sqrt(v / (1 − β2^t)) + ε)` (torch AdamW,
    /// `AdamWScheduleFree` ≥ 1.3).
    #[default]
    Denominator,
    /// Folded into the lr: `γ_t = γ·sqrt(1 − β2^t)` and `d = m̂ / (sqrt(v) + ε)`
    /// (`AdamWScheduleFreePaper`, Road Less Scheduled Algorithm 1). The folded factor also
    /// enters `lr_max` and so the averaging weights.
    LearningRate,
    /// pytorch_optimizer's form (its `AdamC`, the reference of the AdamC golden fixtures):
    /// `d = m̂ / ((sqrt(v + 1e-15) + ε) / sqrt(1 − β2^t))`, i.e. `ε` is added before the bias
    /// correction and `1e-15` inside the root.
    EpsBeforeCorrection,
}

/// Which counter `t` Adam's bias corrections use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepCount {
    /// Updates this parameter received (torch `Adam`/`AdamW`: per-parameter `state["step"]`).
    #[default]
    Parameter,
    /// Completed updates of the parameter's group (the Schedule-Free classes use the group's
    /// `k`); differs only for parameters that skipped steps.
    Group,
}

/// Adam direction with optional first moment:
/// `v ← β2·v + (1 − β2)·g²`, `m ← β1·m + (1 − β1)·g` (only if `β1 > 0`),
/// `d = (β1 > 0 ? m/(1 − β1^t) : g) / (sqrt(v/(1 − β2^t)) + ε)`, `t` = the 1-based update
/// count chosen by [`StepCount`].
///
/// Slots: `["exp_avg", "exp_avg_sq"]` with a first moment, `["exp_avg_sq"]` without (the
/// Schedule-Free form, whose averaging replaces momentum).
///
/// The Schedule-Free presets count by group (as their reference classes do); torch-style
/// Adam counts per parameter.
///
/// ```
/// use schedulefree::{GroupConfig, Optimizer, Param};
/// use schedulefree::{conversion::ScheduleFree, decay::NoDecay, schedule::Constant};
/// use schedulefree::learner::Adam;
/// // Schedule-Free around it on ½‖w‖², from (1, −1).
/// let mut opt = Optimizer::<f64, _, _, _, _>::new(
///     Adam { beta1: 0.0, ..Default::default() },
///     ScheduleFree::default(),
///     NoDecay,
///     Constant,
///     GroupConfig { lr: 0.05, weight_decay: 0.0 },
/// )?;
/// opt.add_param("w", &[2])?;
/// let mut w = vec![1.0, -1.0];
/// for _ in 0..200 {
///     let g = w.clone();
///     opt.step(&mut [Param::new("w", &mut w, &g)])?;
/// }
/// let mut x = vec![0.0; 2];
/// opt.x_into("w", &w, &mut x)?;
/// assert!(x.iter().all(|v| v.abs() < 0.5), "{x:?}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Adam {
    /// First-moment decay `β1 ∈ [0, 1)`; 0 disables the first moment (no buffer).
    pub beta1: f64,
    /// Second-moment decay `β2 ∈ [0, 1)`.
    pub beta2: f64,
    /// Denominator offset `ε > 0`.
    pub eps: f64,
    /// Where the second-moment bias correction goes.
    pub bias_correction: BiasCorrection,
    /// Which step counter the bias corrections use.
    #[serde(default)]
    pub count: StepCount,
}

impl Default for Adam {
    /// torch defaults: `β1 = 0.9, β2 = 0.999, ε = 1e-8`.
    fn default() -> Self {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            bias_correction: BiasCorrection::Denominator,
            count: StepCount::Parameter,
        }
    }
}

/// Per-step scalars of [`Adam`].
#[derive(Debug, Clone, Copy)]
pub struct AdamScalars {
    beta1: f64,
    beta2: f64,
    /// `1 − β1`, `1 − β2` computed in `f64` and rounded once (as torch passes
    /// `value=1-beta2`): `1 − f32(β2)` would be off by ~1e-5 relative for `β2 = 0.999`.
    one_minus_beta1: f64,
    one_minus_beta2: f64,
    bc1: f64,
    bc2: f64,
    eps: f64,
    /// [`BiasCorrection::EpsBeforeCorrection`]: `bc2` then holds `sqrt(1 − β2^t)`.
    eps_first: bool,
}

pub(crate) fn validate_betas(beta1: f64, beta2: f64, eps: f64) -> Result<(), ConfigError> {
    check(
        "beta1",
        beta1,
        (0.0..1.0).contains(&beta1),
        "0 <= beta1 < 1",
    )?;
    check(
        "beta2",
        beta2,
        (0.0..1.0).contains(&beta2),
        "0 <= beta2 < 1",
    )?;
    check("eps", eps, eps > 0.0 && eps.is_finite(), "eps > 0")
}

impl Learner for Adam {
    type Scalars = AdamScalars;
    const SLOT_COUNTS: &'static [usize] = &[1, 2];

    fn name(&self) -> &'static str {
        match self.bias_correction {
            BiasCorrection::Denominator => "adam",
            BiasCorrection::LearningRate => "adam_paper",
            BiasCorrection::EpsBeforeCorrection => "adam_eps_first",
        }
    }

    fn slot_names(&self) -> &'static [&'static str] {
        if self.beta1 != 0.0 {
            &["exp_avg", "exp_avg_sq"]
        } else {
            &["exp_avg_sq"]
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        validate_betas(self.beta1, self.beta2, self.eps)
    }

    fn has_momentum(&self) -> bool {
        self.beta1 != 0.0
    }

    fn lr_factor(&self, k: u64, _state: &GroupState, _red: &Reductions) -> f64 {
        match self.bias_correction {
            BiasCorrection::Denominator | BiasCorrection::EpsBeforeCorrection => 1.0,
            BiasCorrection::LearningRate => (1.0 - self.beta2.powf((k + 1) as f64)).sqrt(),
        }
    }

    fn scalars(&self, k: StepIndex, _lr: f64, _state: &GroupState) -> AdamScalars {
        let t = match self.count {
            StepCount::Parameter => k.param + 1,
            StepCount::Group => k.group + 1,
        } as f64;
        let bc2 = match self.bias_correction {
            BiasCorrection::Denominator => 1.0 - self.beta2.powf(t),
            BiasCorrection::LearningRate => 1.0,
            BiasCorrection::EpsBeforeCorrection => (1.0 - self.beta2.powf(t)).sqrt(),
        };
        let bc1 = if self.beta1 != 0.0 {
            1.0 - self.beta1.powf(t)
        } else {
            1.0
        };
        AdamScalars {
            beta1: self.beta1,
            beta2: self.beta2,
            one_minus_beta1: 1.0 - self.beta1,
            one_minus_beta2: 1.0 - self.beta2,
            bc1,
            bc2,
            eps: self.eps,
            eps_first: self.bias_correction == BiasCorrection::EpsBeforeCorrection,
        }
    }

    #[inline(always)]
    fn direction<T: Element>(&self, sc: &AdamScalars, g: T, _z: T, slots: &mut [T]) -> T {
        let (num, v) = if slots.len() == 2 {
            let b1 = T::of(sc.beta1);
            let m = b1 * slots[0] + T::of(sc.one_minus_beta1) * g;
            slots[0] = m;
            (m / T::of(sc.bc1), &mut slots[1])
        } else {
            (g, &mut slots[0])
        };
        let b2 = T::of(sc.beta2);
        let v_new = b2 * *v + T::of(sc.one_minus_beta2) * g * g;
        *v = v_new;
        // Divisions (not reciprocal products) keep the reference's rounding.
        if sc.eps_first {
            num / (((v_new + T::of(1e-15)).sqrt() + T::of(sc.eps)) / T::of(sc.bc2))
        } else {
            num / ((v_new / T::of(sc.bc2)).sqrt() + T::of(sc.eps))
        }
    }
}
