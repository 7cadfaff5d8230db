//! Schedule-Free learning (Defazio et al., "The Road Less Scheduled", arXiv 2405.15682,
//! NeurIPS 2024, Algorithm 1 / Theorem 2), in the memory-efficient form of the reference
//! `SGDScheduleFree` / `AdamWScheduleFree` (schedulefree 1.4.1; arXiv 2405.15682v4, Alg. 1).

use super::{
    AveragingState, AveragingWeights, BetaAnneal, Conversion, GroupAveraging, decoupled_weight,
    validate_decoupling_c,
};
use crate::element::{Element, lerp};
use crate::error::{ConfigError, check};

/// Schedule-Free conversion with interpolation `β`:
/// `y = (1 − β)·z + β·x` (gradient point, held in the buffer), `z ← s·z − γ·d`,
/// `x ← (1 − c)·x + c·z` with `c` from [`AveragingWeights`]. `x` is not stored: eliminating
/// it gives `y' = lerp(y, z, c) + γ(β(1 − c) − 1)·d + (1 − β(1 − c))(s − 1)·z`
/// (the last term vanishes unless decay shrinks `z`), and `x = lerp(y, z, 1 − 1/β)`.
///
/// `β = 1` is primal averaging; `β → 0` would be Polyak averaging but the eval transform
/// divides by `β`, so `β` must lie in `(0, 1]` (use [`ScheduleFreeReference`](super::ScheduleFreeReference)
/// or [`PolyakAverage`](super::PolyakAverage) otherwise).
///
/// Two options of ScheduleFree+ (arXiv 2605.19095):
/// - **`c_warmup`**: for the first `c_warmup` updates `c = 1` (`x` follows `z`) and the
///   weights are not summed (`lr_max` still is).
/// - **`anneal`** ([`BetaAnneal`]): `β_k` changes with the step. `x` is still not stored:
///   with `β'` the value that formed the current `y` (`β_{k−1}`; any at `k = 0`, where
///   `y = x = z`), `x = (y − (1 − β')·z)/β'`, and the step becomes
///   `y' = lerp(y, z, 1 − β_k(1 − c)/β') + γ(β_k(1 − c) − 1)·d + …`, the same form with
///   `c` replaced by `1 − β_k(1 − c)/β'`. Mode switches and the eval point use `β'`
///   ([`Conversion::at_step`]). A parameter that gets no gradient while `β` anneals keeps
///   a `y` formed by an older `β`, and its `x` is then read with `β'`: off by the change
///   of `β` since its last update (ScheduleFree+ steps every parameter in every step).
///
/// Slots: `["z"]`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScheduleFree {
    /// Interpolation `β ∈ (0, 1]` (`momentum` / `betas[0]` in the reference; default 0.9).
    pub beta: f64,
    /// Averaging weights (`r`, `weight_lr_power`).
    pub weights: AveragingWeights,
    /// Decoupled averaging weight `C ≥ 0`: `c ← min(1, c·(1 − β)·C)` after the weights
    /// ("Through the River", arXiv 2507.09846; `decoupling_c` of pytorch_optimizer); 0 (default)
    /// is off, and must be at `β = 1`.
    #[serde(default, skip_serializing_if = "super::is_off")]
    pub decoupling_c: f64,
    /// Log-space annealing of `β` (ScheduleFree+); `None` (default): `β` is constant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anneal: Option<BetaAnneal>,
    /// Updates during which `c = 1` (ScheduleFree+'s `c_warmup`; default 0).
    #[serde(default, skip_serializing_if = "super::is_zero")]
    pub c_warmup: u64,
}

impl Default for ScheduleFree {
    fn default() -> Self {
        ScheduleFree {
            beta: 0.9,
            weights: AveragingWeights::default(),
            decoupling_c: 0.0,
            anneal: None,
            c_warmup: 0,
        }
    }
}

/// Per-step scalars of [`ScheduleFree`].
#[derive(Debug, Clone, Copy)]
pub struct ScheduleFreeScalars {
    /// Weight of `z` in the `y` update: `c`, or `1 − β_k(1 − c)/β'` while `β` anneals.
    w: f64,
    /// `γ(β(1 − c) − 1)`, the coefficient of `d` in the `y` update.
    y_coef: f64,
    /// `1 − β(1 − c)`, the coefficient of the decay term `(s − 1)·z`.
    z_coef: f64,
}

impl ScheduleFree {
    pub(crate) fn validate_beta(beta: f64) -> Result<(), ConfigError> {
        check("beta", beta, beta > 0.0 && beta <= 1.0, "0 < beta <= 1")
    }

    /// The interpolation `β_k` of the update after `k` completed updates.
    pub fn beta_at(&self, k: u64) -> f64 {
        match self.anneal {
            Some(a) => a.beta_at(self.beta, k),
            None => self.beta,
        }
    }

    /// The `β` that formed the buffer `y` after `k` completed updates.
    fn formed_beta(&self, k: u64) -> f64 {
        self.beta_at(k.saturating_sub(1))
    }
}

impl Conversion for ScheduleFree {
    type Scalars = ScheduleFreeScalars;
    const SLOTS: usize = 1;

    fn name(&self) -> &'static str {
        "schedule_free"
    }
    fn slot_names(&self) -> &'static [&'static str] {
        &["z"]
    }
    fn validate(&self) -> Result<(), ConfigError> {
        Self::validate_beta(self.beta)?;
        if let Some(a) = self.anneal {
            a.validate(self.beta)?;
        }
        validate_decoupling_c(self.decoupling_c, self.beta)?;
        self.weights.validate()
    }
    fn scalars(&self, avg: &mut AveragingState, lr: f64, k: u64) -> (ScheduleFreeScalars, f64) {
        let beta = self.beta_at(k);
        let c = if k < self.c_warmup {
            avg.lr_max = avg.lr_max.max(lr);
            1.0
        } else {
            decoupled_weight(self.weights.advance(avg, lr, k), beta, self.decoupling_c)
        };
        let formed = self.formed_beta(k);
        // Bit for bit `c` unless β changed since y was formed.
        let w = if formed == beta {
            c
        } else {
            1.0 - beta * (1.0 - c) / formed
        };
        let y_coef = lr * (beta * (1.0 - c) - 1.0);
        (
            ScheduleFreeScalars {
                w,
                y_coef,
                z_coef: 1.0 - beta * (1.0 - c),
            },
            c,
        )
    }
    fn with_group_averaging(&self, o: &GroupAveraging) -> Result<Self, ConfigError> {
        let c = ScheduleFree {
            weights: o.weights(self.weights),
            c_warmup: o.c_warmup.unwrap_or(self.c_warmup),
            ..*self
        };
        c.validate()?;
        Ok(c)
    }
    fn at_step(&self, k: u64) -> Self {
        match self.anneal {
            Some(_) => ScheduleFree {
                beta: self.formed_beta(k),
                anneal: None,
                ..*self
            },
            None => *self,
        }
    }
    /// `β_k/β_{k−1}`: `⟨g, z − y⟩ = β_{k−1}·⟨g, z − x⟩`, and ScheduleFree+ scales the
    /// correction by the `β_k` of the step.
    fn correction_scale(&self, k: u64) -> f64 {
        match self.anneal {
            Some(_) if k > 0 => self.beta_at(k) / self.formed_beta(k),
            _ => 1.0,
        }
    }
    fn init_slots<T: Element>(&self, p: T, slots: &mut [T]) {
        slots[0] = p;
    }
    #[inline(always)]
    fn update<T: Element>(
        &self,
        sc: &ScheduleFreeScalars,
        lr: T,
        shrink: T,
        p: &mut T,
        slots: &mut [T],
        d: T,
    ) {
        let z = slots[0];
        let y = lerp(*p, z, T::of(sc.w)) + T::of(sc.y_coef) * d;
        // Exactly +0 unless decay shrinks z (shrink = 1 makes (shrink − 1) = 0).
        *p = y + T::of(sc.z_coef) * ((shrink - T::one()) * z);
        slots[0] = z * shrink - lr * d;
    }
    #[inline(always)]
    fn iterate<T: Element>(&self, _p: T, slots: &[T]) -> T {
        slots[0]
    }
    /// `x ← x + c·(z' − z)` makes `x` the average of the replaced iterates, and
    /// `y = (1 − β)z + βx` then moves by `(1 − β(1 − c))·(z' − z)`.
    #[inline(always)]
    fn set_iterate<T: Element>(
        &self,
        sc: &ScheduleFreeScalars,
        p: &mut T,
        slots: &mut [T],
        z_new: T,
    ) {
        *p = *p + T::of(sc.z_coef) * (z_new - slots[0]);
        slots[0] = z_new;
    }
    fn has_modes(&self) -> bool {
        true
    }
    fn to_eval<T: Element>(&self, p: &mut T, slots: &mut [T]) {
        *p = lerp(*p, slots[0], T::of(1.0 - 1.0 / self.beta));
    }
    fn to_train<T: Element>(&self, p: &mut T, slots: &mut [T]) {
        *p = lerp(*p, slots[0], T::of(1.0 - self.beta));
    }
    fn eval_value<T: Element>(&self, p: T, slots: &[T]) -> T {
        lerp(p, slots[0], T::of(1.0 - 1.0 / self.beta))
    }
}
