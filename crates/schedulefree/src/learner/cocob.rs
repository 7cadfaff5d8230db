//! COCOB-Backprop (Orabona & Tommasi, "Training deep networks without learning rates
//! through coin betting", NeurIPS 2017, arXiv 1705.07795, Algorithm 2).

use super::{GroupState, Learner, StepIndex};
use crate::element::Element;
use crate::error::{ConfigError, check};

/// COCOB-Backprop, per coordinate: with `g` the gradient at the learner's iterate `w_t`,
/// `L ← max(L, |g|)`, `G ← G + |g|`, `R ← max(R − g·(w_t − w₁), 0)`, `θ ← θ − g`, and the bet
/// `w⋆ = w₁ + θ/(L·max(G + L, α·L))·(L + R)`.
///
/// As a learner its direction is `d = w_t − w⋆`, so with lr 1 and a last-iterate conversion
/// `z ← z − d = w⋆` exactly as the paper; another lr scales the move (optax's multiplier).
/// The iterate is recomputed from `w₁` and the statistics every step, so decoupled decay or
/// a projection applied to `z` only reaches the next iterate through the reward term and
/// `w_t − w⋆`. Invariant to positive rescaling of the gradients up to
/// the initial `L = eps`.
///
/// Slots: `["w1", "max_grad", "sum_abs_grad", "reward", "grad_sum"]` (`w₁`, `L`, `G`, `R`, `θ`).
///
/// ```
/// use schedulefree::{GroupConfig, Optimizer, Param};
/// use schedulefree::{conversion::ScheduleFree, decay::NoDecay, schedule::Constant};
/// use schedulefree::learner::Cocob;
/// // Schedule-Free around it on ½‖w‖², from (1, −1).
/// let mut opt = Optimizer::<f64, _, _, _, _>::new(
///     Cocob::default(),
///     ScheduleFree::default(),
///     NoDecay,
///     Constant,
///     GroupConfig { lr: 1.0, weight_decay: 0.0 },
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
#[serde(deny_unknown_fields)]
pub struct Cocob {
    /// Cap `α ≥ 1` on the early bet (`1/α` of the wealth); 100 in the paper.
    pub alpha: f64,
    /// Initial `L > 0`, avoiding 0/0 before the first non-zero gradient.
    pub eps: f64,
}

impl Default for Cocob {
    /// The paper's `α = 100`; `eps = 1e-8` as optax.
    fn default() -> Self {
        Cocob {
            alpha: 100.0,
            eps: 1e-8,
        }
    }
}

/// Per-step scalars of [`Cocob`].
#[derive(Debug, Clone, Copy)]
pub struct CocobScalars {
    alpha: f64,
}

impl Learner for Cocob {
    type Scalars = CocobScalars;
    const SLOT_COUNTS: &'static [usize] = &[5];

    fn name(&self) -> &'static str {
        "cocob"
    }
    fn slot_names(&self) -> &'static [&'static str] {
        &["w1", "max_grad", "sum_abs_grad", "reward", "grad_sum"]
    }
    fn validate(&self) -> Result<(), ConfigError> {
        check(
            "alpha",
            self.alpha,
            self.alpha >= 1.0 && self.alpha.is_finite(),
            "finite alpha >= 1",
        )?;
        check(
            "eps",
            self.eps,
            self.eps > 0.0 && self.eps.is_finite(),
            "finite eps > 0",
        )
    }
    fn has_momentum(&self) -> bool {
        false
    }
    fn scalars(&self, _k: StepIndex, _lr: f64, _state: &GroupState) -> CocobScalars {
        CocobScalars { alpha: self.alpha }
    }
    fn init_slots<T: Element>(&self, z: T, slots: &mut [T]) {
        slots[0] = z;
        slots[1] = T::of(self.eps);
    }
    #[inline(always)]
    fn direction<T: Element>(&self, sc: &CocobScalars, g: T, z: T, slots: &mut [T]) -> T {
        let w1 = slots[0];
        let l = slots[1].max(g.abs());
        let gsum = slots[2] + g.abs();
        let reward = (slots[3] - g * (z - w1)).max(T::zero());
        let theta = slots[4] - g;
        slots[1] = l;
        slots[2] = gsum;
        slots[3] = reward;
        slots[4] = theta;
        let bet = theta / (l * (gsum + l).max(T::of(sc.alpha) * l));
        z - (w1 + bet * (l + reward))
    }
}
