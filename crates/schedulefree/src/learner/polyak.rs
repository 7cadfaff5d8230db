//! Polyak step sizes: SPS_max of Loizou et al. (arXiv 2002.10542,
//! eq. 5) in the form of optax's `scale_by_polyak`.

use super::{GroupState, Learner, Reductions, StepIndex};
use crate::element::Element;
use crate::error::{ConfigError, check};

/// Polyak step size: `z ← z − γ_P·g` with
/// `γ_P = min(max(f − f*, 0) / (‖g‖² + eps), max_lr)`, and `γ_P = 0` when
/// `‖g‖² + eps ≤ f64::EPSILON`. `f` is the loss at the gradient point, passed to
/// [`crate::Optimizer::step_with_loss`]; `‖g‖²` is over every gradient of the step (all
/// groups, all shards). The group's lr (times the schedule) multiplies `γ_P`: keep it 1 for
/// plain SPS, or use it for warmup.
///
/// A loss below `f*` gives a zero step (optax's `sps+` variant): the conversions need
/// `γ ≥ 0`. Needs the loss: `step` without one is [`crate::StepError::LossRequired`].
///
/// ```
/// use schedulefree::{GroupConfig, Optimizer, Param};
/// use schedulefree::{conversion::ScheduleFree, decay::NoDecay, schedule::Constant};
/// use schedulefree::learner::Polyak;
/// // Schedule-Free around it on ½‖w‖², from (1, −1).
/// let mut opt = Optimizer::<f64, _, _, _, _>::new(
///     Polyak::default(),
///     ScheduleFree::default(),
///     NoDecay,
///     Constant,
///     GroupConfig { lr: 1.0, weight_decay: 0.0 },
/// )?;
/// opt.add_param("w", &[2])?;
/// let mut w = vec![1.0, -1.0];
/// for _ in 0..200 {
///     let g = w.clone();
///     let f = 0.5 * w.iter().map(|v| v * v).sum::<f64>(); // the loss it reads
///     opt.step_with_loss(&mut [Param::new("w", &mut w, &g)], f)?;
/// }
/// let mut x = vec![0.0; 2];
/// opt.x_into("w", &w, &mut x)?;
/// assert!(x.iter().all(|v| v.abs() < 0.5), "{x:?}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Polyak {
    /// Lower bound `f*` of the loss (0 for non-negative losses, e.g. cross-entropy).
    pub f_min: f64,
    /// Cap `γ_b > 0` on the step (SPS_max).
    pub max_lr: f64,
    /// Added to `‖g‖²` (0 as in optax).
    pub eps: f64,
}

impl Default for Polyak {
    /// optax defaults: `f_min = 0`, `max_learning_rate = 1`, `eps = 0`.
    fn default() -> Self {
        Polyak {
            f_min: 0.0,
            max_lr: 1.0,
            eps: 0.0,
        }
    }
}

impl Learner for Polyak {
    type Scalars = ();
    const SLOT_COUNTS: &'static [usize] = &[0];

    fn name(&self) -> &'static str {
        "polyak"
    }
    fn slot_names(&self) -> &'static [&'static str] {
        &[]
    }
    fn validate(&self) -> Result<(), ConfigError> {
        check("f_min", self.f_min, self.f_min.is_finite(), "finite f_min")?;
        check(
            "max_lr",
            self.max_lr,
            self.max_lr > 0.0 && self.max_lr.is_finite(),
            "finite max_lr > 0",
        )?;
        check(
            "eps",
            self.eps,
            self.eps >= 0.0 && self.eps.is_finite(),
            "finite eps >= 0",
        )
    }
    fn has_momentum(&self) -> bool {
        false
    }
    fn needs_loss(&self) -> bool {
        true
    }
    fn lr_factor_needs_reductions(&self) -> bool {
        true
    }
    fn lr_factor(&self, _k: u64, _state: &GroupState, red: &Reductions) -> f64 {
        let denom = red.total_l2_sq + self.eps;
        let gap = (red.loss.unwrap_or(self.f_min) - self.f_min).max(0.0);
        if denom <= f64::EPSILON {
            0.0
        } else {
            (gap / denom).min(self.max_lr)
        }
    }
    fn scalars(&self, _k: StepIndex, _lr: f64, _state: &GroupState) {}
    #[inline(always)]
    fn direction<T: Element>(&self, _sc: &(), g: T, _z: T, _slots: &mut [T]) -> T {
        g
    }
}
