//! Base online learners: each turns a gradient `g` into a direction `d` so that the learner's
//! iterate moves as `z ← z − γ·d` (the online learner of arXiv 2405.15682v4, §2). A learner is proved and tested once
//! with a fixed step; a [`Conversion`](crate::conversion::Conversion) decides where `g` is
//! evaluated and which point is returned.

use crate::element::Element;
use crate::error::ConfigError;
use std::fmt::Debug;

mod adagrad_norm;
mod adam;
mod cocob;
mod polyak;
mod polyak_l1;
mod prodigy;
mod radam;
mod sgd;

pub use adagrad_norm::AdaGradNorm;
pub use adam::{Adam, BiasCorrection, StepCount};
pub use cocob::Cocob;
pub use polyak::Polyak;
pub use polyak_l1::{L1Ema, PolyakL1};
pub use prodigy::Prodigy;
pub use radam::RAdam;
pub use sgd::Sgd;

/// Most per-group scalar state values a learner may keep (AdaGrad-Norm's `b²`, Prodigy's
/// `d` and `r`).
pub const MAX_GROUP_STATE: usize = 4;
/// Most sums a learner's pre-pass may reduce (Prodigy's `⟨g, z₀ − z⟩` and `‖s‖₁`).
pub const MAX_PREPASS: usize = 4;

/// A learner's per-group scalar state: `values[..names.len()]` are used, the rest stay 0.
pub type GroupState = [f64; MAX_GROUP_STATE];

/// Per-step global quantities the driver reduces once per step, before any element is
/// touched (after the all-reduce hook of [`crate::StepInputs`], so they cover every shard).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reductions {
    /// `‖g‖₁` over the group's gradients.
    pub group_l1: f64,
    /// `‖g‖₂²` over the group's gradients.
    pub group_l2_sq: f64,
    /// `‖g‖₂²` over every gradient of the step (all groups).
    pub total_l2_sq: f64,
    /// `‖g‖₁` over every gradient of the step (all groups).
    pub total_l1: f64,
    /// The loss at the gradient point, when the caller passed one.
    pub loss: Option<f64>,
    /// The learner's pre-pass sums over every group, when it runs before the scalar phase
    /// ([`Learner::PREPASS_BEFORE_LR`]); zeros otherwise.
    pub prepass: [f64; MAX_PREPASS],
    /// The conversion's [`crate::conversion::Conversion::correction_scale`] for this step:
    /// turns `⟨g, z − y⟩` into the Schedule-Free correction `β_k·⟨g, z − x⟩`.
    pub correction_scale: f64,
}

impl Reductions {
    /// No gradient, loss or pre-pass seen (what [`crate::Optimizer::next_step`] passes when
    /// the learner does not read them).
    pub const NONE: Reductions = Reductions {
        group_l1: 0.0,
        group_l2_sq: 0.0,
        total_l2_sq: 0.0,
        total_l1: 0.0,
        loss: None,
        prepass: [0.0; MAX_PREPASS],
        correction_scale: 1.0,
    };
}

/// Step counters a learner may use for its per-step scalars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepIndex {
    /// Completed updates of the parameter's group (`k` of the reference code).
    pub group: u64,
    /// Updates this parameter has received (differs from `group` when it skipped steps).
    pub param: u64,
}

/// A base online learner (SGD, Adam, ...), composed into an optimizer's fused loop.
///
/// Per-element state lives in `slots` (one value per slot, gathered for the element), zero at
/// creation. `direction` is called once per element per step and must not allocate; it is
/// inlined into the vectorised lane loop of the kernel, so it should branch only on its
/// scalars (the same for every element), never on element values (use `max`, `min`, `abs`).
/// The slot counts a learner declares in [`Learner::SLOT_COUNTS`] (of 0, 1, 2, 4 and 5) are
/// compiled for vectors; other counts run one element at a time, with the same bits.
pub trait Learner: Clone + Debug + Send + Sync {
    /// Per-step scalars (bias corrections, ...), computed once per tensor in `f64`.
    type Scalars: Copy + Send + Sync + std::fmt::Debug;

    /// Every length [`Learner::slot_names`] can have. The kernel compiles its vector lane
    /// loop for these counts only (each compiled count is a copy of the loop per conversion,
    /// element type and instruction set, the bulk of the crate's build time); a count not
    /// listed still runs, one element at a time, with the same bits, only slower.
    const SLOT_COUNTS: &'static [usize] = &[0, 1, 2, 4, 5];

    /// Number of sums of the learner's pre-pass (0: no pre-pass, and none is compiled); at
    /// most [`MAX_PREPASS`].
    const PREPASS_LEN: usize = 0;

    /// Whether [`Learner::lr_factor`] reads the pre-pass sums ([`Reductions::prepass`]):
    /// then the pre-pass runs before the scalar phase, its sums are all-reduced together with
    /// the gradient norms (one collective call per step), and the [`Learner::scalars`] it is
    /// given are computed with `lr = 0` (its factors must not depend on the lr).
    const PREPASS_BEFORE_LR: bool = false;

    /// Short name used in saved state and reports, e.g. `"adam"`.
    fn name(&self) -> &'static str;

    /// Names of the per-element state slots, e.g. `["exp_avg_sq"]`.
    fn slot_names(&self) -> &'static [&'static str];

    /// Validate hyperparameters.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] naming the first invalid field.
    fn validate(&self) -> Result<(), ConfigError>;

    /// Whether the learner carries its own momentum (a Schedule-Free wrapper refuses those:
    /// averaging already provides momentum).
    fn has_momentum(&self) -> bool;

    /// Names of the learner's per-group scalar state (saved with the group); at most
    /// [`MAX_GROUP_STATE`].
    fn group_state_names(&self) -> &'static [&'static str] {
        &[]
    }

    /// Initial per-group scalar state.
    fn init_group_state(&self, _state: &mut GroupState) {}

    /// Whether `step` needs the loss at the gradient point (Polyak step sizes).
    fn needs_loss(&self) -> bool {
        false
    }

    /// Multiplier the learner applies to the scheduled lr of the group's update after `k`
    /// completed updates, given the group state before the step and this step's reductions
    /// (RAdam's rectification, paper-style bias correction, `1/b` of AdaGrad-Norm, the Polyak
    /// step, Prodigy's `d·bc`). It enters `lr_max` and hence the averaging weights, and is
    /// what the step info reports as the effective step size.
    fn lr_factor(&self, _k: u64, _state: &GroupState, _red: &Reductions) -> f64 {
        1.0
    }

    /// Whether [`Learner::lr_factor`] or [`Learner::update_group_state`] reads the step's
    /// [`Reductions`] (gradient norms, the loss): then the next step's lr is known only once
    /// its gradient is (AdaGrad-Norm, Polyak), [`crate::Optimizer::next_step`] reports it as
    /// unknown, and every step reduces the gradients before the update (otherwise steps under
    /// [`crate::NonFinitePolicy::Propagate`] take the sums inside the update and the
    /// reductions these methods see are NaN).
    fn lr_factor_needs_reductions(&self) -> bool {
        false
    }

    /// Per-step scalars for one parameter tensor; `lr` is the effective step size `γ` of the
    /// group (lr × schedule × [`Learner::lr_factor`]) and `state` the group state before the
    /// step.
    fn scalars(&self, k: StepIndex, lr: f64, state: &GroupState) -> Self::Scalars;

    /// One element's terms of the pre-pass sums, as factors: term `j` is `a_j·b_j` with the
    /// product taken in `f64` (exact for `f32` factors), for the first
    /// [`Learner::PREPASS_LEN`] entries (the rest are ignored); computed before any element
    /// is updated (Prodigy's `g·(z₀ − z)` and `|s|·1`); `z` is the learner's iterate and `y`
    /// the parameter buffer (the gradient point in train mode). The
    /// factors are element values, so an element program can record them
    /// ([`crate::Optimizer::step_programs_with`]). The host driver adds the terms in `f64`, in
    /// 16 interleaved partial sums per block of 16384 elements, the blocks in order, so the
    /// result does not depend on the thread count.
    #[inline(always)]
    fn prepass_factors<T: Element>(
        &self,
        _sc: &Self::Scalars,
        _g: T,
        _z: T,
        _y: T,
        _slots: &[T],
    ) -> [(T, T); MAX_PREPASS] {
        [(T::zero(), T::zero()); MAX_PREPASS]
    }

    /// Advance the group state after the step's reductions and pre-pass sums (called in the
    /// scalar phase, after [`Learner::scalars`] saw the old state). `lr` as for `scalars`.
    fn update_group_state(
        &self,
        _k: u64,
        _lr: f64,
        _state: &mut GroupState,
        _red: &Reductions,
        _prepass: &[f64],
    ) {
    }

    /// Initialise the learner's slots of one element from its iterate at the first gradient
    /// (COCOB's `w₁`, Prodigy's `x₀`); slots start at 0 otherwise.
    fn init_slots<T: Element>(&self, _z: T, _slots: &mut [T]) {}

    /// The direction `d` for gradient `g` (already including any L2 term), updating `slots`;
    /// `z` is the learner's current iterate (read by COCOB, ignored by gradient methods).
    fn direction<T: Element>(&self, sc: &Self::Scalars, g: T, z: T, slots: &mut [T]) -> T;
}
