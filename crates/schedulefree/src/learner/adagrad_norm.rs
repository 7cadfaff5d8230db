//! AdaGrad-Norm (Ward, Wu & Bottou, "AdaGrad stepsizes", arXiv 1806.01811, Algorithm 1;
//! arXiv 1806.01811): one scalar step size per parameter group.

use super::{GroupState, Learner, Reductions, StepIndex};
use crate::element::Element;
use crate::error::{ConfigError, check};

/// AdaGrad-Norm: `b_{j+1}² = b_j² + ‖g_j‖²`, `z ← z − (η / b_{j+1})·g_j`, with `η` the group's
/// lr (times the schedule) and `‖g‖` the ℓ2 norm of every gradient of the group in the step.
///
/// The scope of `b` is the parameter group: one group gives the paper's single scalar for
/// the whole model; put each tensor in its own group for one `b` per tensor. `b` never
/// decreases, so the effective step `η/b` never increases and is at most `η/b₀`
/// (`tests/suite/magnitude.rs` checks it).
///
/// Group state: `["b_sq"]` (starts at `b0²`). No per-element slots.
///
/// ```
/// use schedulefree::{GroupConfig, Optimizer, Param};
/// use schedulefree::{conversion::ScheduleFree, decay::NoDecay, schedule::Constant};
/// use schedulefree::learner::AdaGradNorm;
/// // Schedule-Free around it on ½‖w‖², from (1, −1).
/// let mut opt = Optimizer::<f64, _, _, _, _>::new(
///     AdaGradNorm::default(),
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
pub struct AdaGradNorm {
    /// Initial accumulator `b₀ > 0` (the first step is at most `η/b₀`).
    pub b0: f64,
}

impl Default for AdaGradNorm {
    /// `b0 = 0.1`: robust by the paper's analysis; the golden values of `tests/suite/magnitude.rs`
    /// use it.
    fn default() -> Self {
        AdaGradNorm { b0: 0.1 }
    }
}

impl Learner for AdaGradNorm {
    type Scalars = ();
    const SLOT_COUNTS: &'static [usize] = &[0];

    fn name(&self) -> &'static str {
        "adagrad_norm"
    }
    fn slot_names(&self) -> &'static [&'static str] {
        &[]
    }
    fn validate(&self) -> Result<(), ConfigError> {
        check(
            "b0",
            self.b0,
            self.b0 > 0.0 && self.b0.is_finite(),
            "finite b0 > 0",
        )
    }
    fn has_momentum(&self) -> bool {
        false
    }
    fn group_state_names(&self) -> &'static [&'static str] {
        &["b_sq"]
    }
    fn init_group_state(&self, state: &mut GroupState) {
        state[0] = self.b0 * self.b0;
    }
    fn lr_factor_needs_reductions(&self) -> bool {
        true
    }
    fn lr_factor(&self, _k: u64, state: &GroupState, red: &Reductions) -> f64 {
        1.0 / (state[0] + red.group_l2_sq).sqrt()
    }
    fn scalars(&self, _k: StepIndex, _lr: f64, _state: &GroupState) {}
    fn update_group_state(
        &self,
        _k: u64,
        _lr: f64,
        state: &mut GroupState,
        red: &Reductions,
        _prepass: &[f64],
    ) {
        state[0] += red.group_l2_sq;
    }
    #[inline(always)]
    fn direction<T: Element>(&self, _sc: &(), g: T, _z: T, _slots: &mut [T]) -> T {
        g
    }
}
