//! ScheduleFree+ (arXiv 2605.19095): Schedule-Free + AdamC-style decay + a Polyak step size.

use super::group;
use crate::conversion::{AveragingWeights, BetaAnneal, ScheduleFree};
use crate::decay::SquaredLrAtY;
use crate::driver::Optimizer;
use crate::element::Element;
use crate::error::{ConfigError, check};
use crate::learner::{Adam, BiasCorrection, L1Ema, PolyakL1, StepCount};
use crate::schedule::Constant;

/// The optimizer [`ScheduleFreePlus`] builds.
pub type ScheduleFreePlusOptimizer<T> =
    Optimizer<T, PolyakL1<Adam>, ScheduleFree, SquaredLrAtY, Constant>;

/// ScheduleFree+ (`schedulefree.AdamCScheduleFreePlusPaper`, commit 43e5c2d of the official
/// repository, 2026-05-18; arXiv 2605.19095): the three fixes in one update,
///
/// ```text
/// γ = lr · η_P                  Polyak step (learner::PolyakL1): max(0, f + β_k⟨g, z − x⟩) / EMA(‖g‖₁·sqrt(π/2))
/// z ← z − γ²·λ·y                AdamC-style decay at y (decay::SquaredLrAtY)
/// m, v ← Adam moments;  z ← z − γ·(m/bc1)/(sqrt(v/bc2) + ε)     (inner momentum β1)
/// x ← (1 − c)·x + c·z;  y = β_k·x + (1 − β_k)·z                (conversion::ScheduleFree)
/// ```
///
/// with `c = 1` for the first `c_warmup` updates and `β_k` annealed from `sf_beta1` to
/// `sf_beta1_max` over `sf_beta1_anneal_steps` updates ([`BetaAnneal`]). Learning-rate free:
/// `lr` is a multiplier of the Polyak step (keep 1). Step with
/// [`Optimizer::step_with_loss`] and the loss at `y` (a loss whose minimum is 0, e.g.
/// cross-entropy; a missing loss is [`crate::StepError::LossRequired`], a non-finite one
/// skips the step); `f + I < 0` gives a zero step (`group_info(g).lr_factor = 0`).
///
/// Memory: `y` in the parameter and three state buffers, `exp_avg`, `exp_avg_sq`, `z` (the
/// reference keeps five: `x` and `y` too); `x = (y − (1 − β')·z)/β'` with the `β'` that
/// formed `y` (see [`ScheduleFree`] for annealing). Per step one extra read of `g`, `z`, `y`
/// for `⟨g, z − y⟩` before the update.
///
/// Defaults are the reference's: `lr 1, betas (0.9, 0.95), sf_beta1 0.9, eps 1e-8,
/// weight_decay 0 (20–50 in practice: it is multiplied by γ²), r 0 (2 for long runs),
/// polyak_beta 0, c_warmup 0 (1–2× an lr warmup), sf_beta1_anneal_steps 0,
/// sf_beta1_max 0.965, weight_lr_power 2`.
///
/// Differences from the reference, all chosen: the L1 EMA is stored raw
/// ([`L1Ema::Raw`]; the reference stores the bias-corrected value and corrects it again at
/// every step, which at `polyak_beta = 0.9` collapses the step within ~20 updates:
/// `ema: L1Ema::Reference` reproduces it); a zero gradient gives a zero step (the reference
/// divides by 0); `lr_max` starts at −1 as in the other Schedule-Free presets (the
/// reference starts it at `eps`, which changes `c` only while every step so far had
/// `γ < eps`, by about `eps²/Σw`); the group lr is used as given (the reference clamps it
/// at `eps`, so its `lr = 0` still steps); `β_k` and the EMA's bias correction follow
/// each group's own count (the reference's group 0 count: the same unless a group is added
/// after the first step). Per group, as
/// in the reference: `lr` and `weight_decay` ([`crate::GroupConfig`]), `r`,
/// `weight_lr_power` and `c_warmup` ([`Optimizer::set_group_averaging`]); the other
/// arguments are optimizer-wide (the reference reads them from group 0).
///
/// ```
/// use schedulefree::{Param, ScheduleFreePlus};
/// let mut opt = ScheduleFreePlus { weight_decay: 0.01, ..Default::default() }.build::<f32>()?;
/// opt.add_param("w", &[3])?;
/// let (mut w, g) = (vec![1.0f32; 3], vec![0.3f32; 3]);
/// // The Polyak step size reads the loss: step_with_loss (plain step is a typed error).
/// assert!(opt.step(&mut [Param::new("w", &mut w, &g)]).is_err());
/// opt.step_with_loss(&mut [Param::new("w", &mut w, &g)], 0.7)?;
/// assert!(w.iter().all(|v| *v < 1.0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleFreePlus {
    /// Multiplier `≥ 0` of the Polyak step (1: learning-rate free).
    pub lr: f64,
    /// Adam's `(β1, β2)`: `β1` is the inner momentum (an EMA of `g` inside `z`'s step).
    pub betas: (f64, f64),
    /// Schedule-Free interpolation `β ∈ (0, 1)` (at the start of any annealing).
    pub sf_beta1: f64,
    /// Adam's denominator offset `ε > 0`.
    pub eps: f64,
    /// Weight decay `λ ≥ 0`, applied as `z ← z − γ²·λ·y`.
    pub weight_decay: f64,
    /// Averaging exponent `r ≥ 0`.
    pub r: f64,
    /// EMA decay `∈ [0, 1)` of the gradient's L1 norm in the Polyak denominator.
    pub polyak_beta: f64,
    /// Updates during which the averaging weight is 1 (the reference suggests 1–2× the
    /// length of an lr warmup where one would be used).
    pub c_warmup: u64,
    /// Updates over which `β` moves from `sf_beta1` to `sf_beta1_max` (0: constant).
    pub sf_beta1_anneal_steps: u64,
    /// Final `β ∈ (0, 1)` of the annealing.
    pub sf_beta1_max: f64,
    /// Averaging `lr_max` power `p ≥ 0`.
    pub weight_lr_power: f64,
    /// What the L1 EMA holds between steps (default: raw, the fixed rule).
    pub ema: L1Ema,
}

impl Default for ScheduleFreePlus {
    fn default() -> Self {
        ScheduleFreePlus {
            lr: 1.0,
            betas: (0.9, 0.95),
            sf_beta1: 0.9,
            eps: 1e-8,
            weight_decay: 0.0,
            r: 0.0,
            polyak_beta: 0.0,
            c_warmup: 0,
            sf_beta1_anneal_steps: 0,
            sf_beta1_max: 0.965,
            weight_lr_power: 2.0,
            ema: L1Ema::Raw,
        }
    }
}

impl ScheduleFreePlus {
    /// Build the optimizer (one group with this lr and weight decay).
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] naming the field: `sf_beta1` or `sf_beta1_max` outside
    /// `(0, 1)` (`sf_beta1_max` even without annealing), `polyak_beta` outside `[0, 1)`,
    /// `betas` outside `[0, 1)`, `eps ≤ 0`, negative `lr` or `weight_decay`, `r` or
    /// `weight_lr_power` outside `[0, 16]`.
    pub fn build<T: Element>(&self) -> Result<ScheduleFreePlusOptimizer<T>, ConfigError> {
        let open = |v: f64| v > 0.0 && v < 1.0;
        check(
            "sf_beta1",
            self.sf_beta1,
            open(self.sf_beta1),
            "0 < sf_beta1 < 1",
        )?;
        check(
            "sf_beta1_max",
            self.sf_beta1_max,
            open(self.sf_beta1_max),
            "0 < sf_beta1_max < 1",
        )?;
        let adam = Adam {
            beta1: self.betas.0,
            beta2: self.betas.1,
            eps: self.eps,
            bias_correction: BiasCorrection::Denominator,
            // The reference's bias corrections count the group's updates.
            count: StepCount::Group,
        };
        let anneal = (self.sf_beta1_anneal_steps > 0).then_some(BetaAnneal {
            beta_max: self.sf_beta1_max,
            steps: self.sf_beta1_anneal_steps,
        });
        Optimizer::new(
            PolyakL1 {
                inner: adam,
                polyak_beta: self.polyak_beta,
                ema: self.ema,
            },
            ScheduleFree {
                beta: self.sf_beta1,
                weights: AveragingWeights {
                    r: self.r,
                    weight_lr_power: self.weight_lr_power,
                },
                decoupling_c: 0.0,
                anneal,
                c_warmup: self.c_warmup,
            },
            SquaredLrAtY,
            Constant,
            group(self.lr, self.weight_decay),
        )
    }
}
