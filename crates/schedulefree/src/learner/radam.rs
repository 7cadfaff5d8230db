//! Rectified Adam (Liu et al. 2020, arXiv 1908.03265, Algorithm 2) in the form used by
//! `RAdamScheduleFree` (Liu et al., arXiv 1908.03265): rectification replaces warmup.

use super::adam::validate_betas;
use super::{GroupState, Learner, Reductions, StepIndex};
use crate::element::Element;
use crate::error::{ConfigError, check};

/// RAdam without first moment (the Schedule-Free form):
/// `ρ_∞ = 2/(1 − β2) − 1`, `ρ_t = ρ_∞ − 2tβ2^t/(1 − β2^t)`;
/// if `ρ_t > 4`: `d = g / (sqrt(v/(1 − β2^t)) + ε)` and the lr is multiplied by
/// `rect = sqrt((ρ_t − 4)(ρ_t − 2)ρ_∞ / ((ρ_∞ − 4)(ρ_∞ − 2)ρ_t))`;
/// otherwise `d = g` and the lr factor is 0 (`silent_sgd_phase`) or 1.
/// `t` is the group's 1-based step (as in the reference) so that the lr factor, which enters
/// the averaging weights, and the direction switch agree.
///
/// Slots: `["exp_avg_sq"]` (the second moment accumulates during the silent phase too).
///
/// ```
/// use schedulefree::{GroupConfig, Optimizer, Param};
/// use schedulefree::{conversion::ScheduleFree, decay::NoDecay, schedule::Constant};
/// use schedulefree::learner::RAdam;
/// // Schedule-Free around it on ½‖w‖², from (1, −1).
/// let mut opt = Optimizer::<f64, _, _, _, _>::new(
///     RAdam::default(),
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
pub struct RAdam {
    /// Second-moment decay `β2 ∈ [0, 1)`.
    pub beta2: f64,
    /// Denominator offset `ε > 0`.
    pub eps: f64,
    /// Freeze parameters (lr factor 0) while the variance is not rectifiable (`ρ_t ≤ 4`).
    pub silent_sgd_phase: bool,
}

impl Default for RAdam {
    /// Reference defaults: `β2 = 0.999, ε = 1e-8`, silent phase on.
    fn default() -> Self {
        RAdam {
            beta2: 0.999,
            eps: 1e-8,
            silent_sgd_phase: true,
        }
    }
}

impl RAdam {
    /// `(ρ_t, rect)` for 1-based step `t`; `rect` is `None` when `ρ_t ≤ 4`.
    pub fn rectification(&self, t: u64) -> (f64, Option<f64>) {
        let b2 = self.beta2;
        let t = t as f64;
        let rho_inf = 2.0 / (1.0 - b2) - 1.0;
        let b2t = b2.powf(t);
        let rho_t = rho_inf - 2.0 * t * b2t / (1.0 - b2t);
        if rho_t > 4.0 {
            let r = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                .sqrt();
            (rho_t, Some(r))
        } else {
            (rho_t, None)
        }
    }
}

/// Per-step scalars of [`RAdam`].
#[derive(Debug, Clone, Copy)]
pub struct RAdamScalars {
    beta2: f64,
    /// `1 − β2` in `f64`, rounded once (see `AdamScalars`).
    one_minus_beta2: f64,
    bc2: f64,
    eps: f64,
    adaptive: bool,
}

impl Learner for RAdam {
    type Scalars = RAdamScalars;
    const SLOT_COUNTS: &'static [usize] = &[1];

    fn name(&self) -> &'static str {
        "radam"
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["exp_avg_sq"]
    }

    fn validate(&self) -> Result<(), ConfigError> {
        validate_betas(0.0, self.beta2, self.eps)?;
        // ρ_∞ = 2/(1 − β2) − 1 > 4 ⇔ β2 > 0.6: otherwise the variance is never rectifiable and a
        // silent phase would freeze the parameters forever.
        check(
            "beta2",
            self.beta2,
            !self.silent_sgd_phase || self.beta2 > 0.6,
            "0.6 < beta2 < 1 with silent_sgd_phase (rectification needs rho_inf > 4)",
        )
    }

    fn has_momentum(&self) -> bool {
        false
    }

    fn lr_factor(&self, k: u64, _state: &GroupState, _red: &Reductions) -> f64 {
        match self.rectification(k + 1) {
            (_, Some(r)) => r,
            (_, None) if self.silent_sgd_phase => 0.0,
            (_, None) => 1.0,
        }
    }

    fn scalars(&self, k: StepIndex, _lr: f64, _state: &GroupState) -> RAdamScalars {
        let t = k.group + 1;
        RAdamScalars {
            beta2: self.beta2,
            one_minus_beta2: 1.0 - self.beta2,
            bc2: 1.0 - self.beta2.powf(t as f64),
            eps: self.eps,
            adaptive: self.rectification(t).1.is_some(),
        }
    }

    #[inline(always)]
    fn direction<T: Element>(&self, sc: &RAdamScalars, g: T, _z: T, slots: &mut [T]) -> T {
        let b2 = T::of(sc.beta2);
        let v = b2 * slots[0] + T::of(sc.one_minus_beta2) * g * g;
        slots[0] = v;
        if sc.adaptive {
            g / ((v / T::of(sc.bc2)).sqrt() + T::of(sc.eps))
        } else {
            g
        }
    }
}
