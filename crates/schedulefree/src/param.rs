//! Parameters as the optimizer sees them, and parameter groups.

use crate::conversion::{AveragingState, GroupAveraging};
use crate::error::{ConfigError, check};
use crate::kernel::SlotLayout;
use crate::learner::GroupState;

/// One parameter tensor for a call to `step`, `train`, `eval` or an eval guard: a name that
/// was registered with `add_param`, its buffer (row-major, any shape with the registered
/// number of elements) and, for `step`, its gradient of the same length (`None`: no
/// gradient this step — the parameter is not moved and gets no state).
#[derive(Debug)]
pub struct Param<'a, T> {
    /// Registered name (state is keyed by it).
    pub name: &'a str,
    /// The parameter buffer: `y` (train mode) or the returned point (eval mode).
    pub value: &'a mut [T],
    /// Gradient at `value`, same length; `None` if the parameter received none.
    pub grad: Option<&'a [T]>,
}

impl<'a, T> Param<'a, T> {
    /// A parameter with a gradient.
    pub fn new(name: &'a str, value: &'a mut [T], grad: &'a [T]) -> Self {
        Param {
            name,
            value,
            grad: Some(grad),
        }
    }
    /// A parameter without a gradient: what `train`, `eval` and `eval_guard` take, and what
    /// `step` takes for a parameter that got no gradient this step (it is not moved).
    pub fn no_grad(name: &'a str, value: &'a mut [T]) -> Self {
        Param {
            name,
            value,
            grad: None,
        }
    }
    /// Former name of [`Param::no_grad`].
    #[deprecated(since = "0.1.0", note = "renamed to `Param::no_grad`")]
    pub fn frozen(name: &'a str, value: &'a mut [T]) -> Self {
        Self::no_grad(name, value)
    }
}

/// Roles of a parameter that decay policies act on (AdamC, arXiv 2506.02285v2; the hypersphere projection of
/// [`crate::decay::Projected`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParamTags {
    /// The parameter's outputs feed a normalization layer (LayerNorm, BatchNorm, RMSNorm),
    /// so the loss is invariant to its scale: corrected decay and the hypersphere projection
    /// apply to it.
    pub normalized: bool,
    /// No weight decay whatever the policy (norm gains and biases, customarily).
    pub no_decay: bool,
}

impl std::fmt::Display for ParamTags {
    /// `normalized`, `no_decay`, `normalized, no_decay`, or `-` for none.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match (self.normalized, self.no_decay) {
            (true, true) => "normalized, no_decay",
            (true, false) => "normalized",
            (false, true) => "no_decay",
            (false, false) => "-",
        })
    }
}

impl ParamTags {
    /// Tagged `normalized`.
    pub const NORMALIZED: ParamTags = ParamTags {
        normalized: true,
        no_decay: false,
    };
    /// Tagged `no_decay`.
    pub const NO_DECAY: ParamTags = ParamTags {
        normalized: false,
        no_decay: true,
    };
}

/// Hyperparameters that may differ between parameter groups.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GroupConfig {
    /// Peak learning rate `γ ≥ 0` (multiplied by the schedule and the learner's lr factor).
    pub lr: f64,
    /// Weight decay `λ ≥ 0` (how it applies is the optimizer's decay policy).
    pub weight_decay: f64,
}

impl GroupConfig {
    /// Validate `lr ≥ 0` and `weight_decay ≥ 0`, both finite.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] for a negative or non-finite value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(
            "lr",
            self.lr,
            self.lr >= 0.0 && self.lr.is_finite(),
            "finite lr >= 0",
        )?;
        check(
            "weight_decay",
            self.weight_decay,
            self.weight_decay >= 0.0 && self.weight_decay.is_finite(),
            "finite weight_decay >= 0",
        )
    }
}

/// What one group did in the latest step.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct GroupStepInfo {
    /// Completed updates after the step (`k` of the reference).
    pub k: u64,
    /// The scheduled lr `γ_k` the step used (lr × schedule × learner factor).
    #[serde(with = "crate::driver::json_float")]
    pub lr: f64,
    /// Averaging weight `c` of the newest iterate (1 for conversions that do not average).
    #[serde(with = "crate::driver::json_float")]
    pub c: f64,
    /// Running maximum of the scheduled lr.
    #[serde(with = "crate::driver::json_float")]
    pub lr_max: f64,
    /// Sum of averaging weights.
    #[serde(with = "crate::driver::json_float")]
    pub weight_sum: f64,
    /// `‖g‖₁` of the group's gradients in the step, accumulated in `f64` (refinement input for
    /// Adam-type learners, [`crate::schedule::refine`]).
    #[serde(default, with = "crate::driver::json_float")]
    pub grad_l1: f64,
    /// `‖g‖₂` of the group's gradients in the step (refinement input for SGD-type learners).
    #[serde(default, with = "crate::driver::json_float")]
    pub grad_l2: f64,
    /// The learner's lr factor of the step (`lr` = group lr × schedule × this): `1/b` for
    /// AdaGrad-Norm, the Polyak step, Prodigy's `d·bc`; 1 for plain SGD/Adam.
    #[serde(default = "one", with = "crate::driver::json_float")]
    pub lr_factor: f64,
    /// Steps skipped so far for a non-finite gradient or loss ([`crate::NonFinitePolicy::Skip`]);
    /// counted for every group, since a skip is atomic across groups.
    #[serde(default)]
    pub skipped_steps: u64,
}

fn one() -> f64 {
    1.0
}

/// Per-group running state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Group {
    pub config: GroupConfig,
    /// Per-group averaging settings ([`crate::Optimizer::set_group_averaging`]).
    pub averaging_overrides: GroupAveraging,
    pub k: u64,
    pub averaging: AveragingState,
    /// The learner's scalar state ([`crate::learner::Learner::group_state_names`]).
    pub learner_state: GroupState,
    pub train_mode: bool,
    pub last: GroupStepInfo,
}

impl Group {
    pub fn new(config: GroupConfig, learner_state: GroupState) -> Self {
        Group {
            config,
            averaging_overrides: GroupAveraging::default(),
            k: 0,
            averaging: AveragingState::default(),
            learner_state,
            train_mode: true,
            last: GroupStepInfo::default(),
        }
    }
}

/// A registered parameter and its state (blocked slot-major, see
/// [`SlotLayout`]; empty until the first gradient).
#[derive(Debug, Clone)]
pub(crate) struct Entry<T> {
    pub name: String,
    pub group: usize,
    pub shape: Vec<usize>,
    pub len: usize,
    pub updates: u64,
    pub state: Vec<T>,
    pub has_state: bool,
    /// The state lives outside the optimizer ([`crate::Optimizer::step_programs`]): `state`
    /// stays empty and host calls refuse the parameter.
    pub external: bool,
    pub tags: ParamTags,
    /// Hypersphere radii per row (empty until the first projected step).
    pub radius: Vec<f64>,
    /// Row norms² of the projection (sized with `radius`, so stepping never allocates).
    pub row_scratch: Vec<f64>,
    /// Call stamp, to detect a name passed twice in one call without allocating.
    pub stamp: u64,
}

impl<T> Entry<T> {
    /// The layout of this entry's state with `n` slots per element.
    pub fn layout(&self, n: usize) -> SlotLayout {
        SlotLayout { len: self.len, n }
    }
}
