//! The driver: the composed [`Optimizer`], its registry of parameters and groups, and one
//! step as a short sequence of phases, each in its own file:
//!
//! | file | phase or concern |
//! | --- | --- |
//! | `registry.rs` | groups, parameters, tags; resolving the names passed to a call |
//! | `reduce.rs` | gradient norms, the non-finite check and the skip decision, all-reduced once |
//! | `scalar.rs` | per-group scalars in `f64` (lr, `c`, decay), learner group state, commit |
//! | `prepass.rs` | the learner's optional global pre-pass (Prodigy) |
//! | `update.rs` | the fused per-parameter update ([`crate::kernel`]), projection, diagnostics |
//! | `modes.rs`, `eval_guard.rs` | train/eval modes and scoped evaluation at `x` |
//! | `inspect.rs` | reading `x`, `z`, slots and the next step's scalars |
//! | `state.rs` | saving and loading the state bit-exactly |
//! | `diagnostics.rs` | per-parameter norm diagnostics |

mod diagnostics;
mod eval_guard;
mod external;
mod inspect;
mod modes;
mod prepass;
mod reduce;
mod registry;
mod scalar;
mod state;
mod step;
mod step_io;
mod update;

use std::collections::HashMap;

use crate::conversion::Conversion;
use crate::decay::Decay;
use crate::element::Element;
use crate::error::ConfigError;
use crate::kernel::{BlockSums, GradSums, MAX_SLOTS, PrepassSums};
use crate::learner::{GroupState, Learner, MAX_PREPASS};
use crate::param::{Entry, Group, GroupConfig, GroupStepInfo};
use crate::schedule::Schedule;

pub use diagnostics::ParamDiagnostics;
pub use eval_guard::EvalGuard;
pub use external::{
    ExternalParam, GradientSums, ParamProgram, PrepassEval, PrepassProgram, ProgramStep,
};
pub use inspect::{NextStep, SlotView};
pub(crate) use state::json_float;
pub use state::{GroupRecord, OptimizerState, ParamRecord, STATE_FORMAT_VERSION, write_atomic};
pub use step_io::{AllReduce, NonFinitePolicy, Skipped, StepInfo, StepInputs};

use diagnostics::EntryDiag;
use scalar::GroupScalars;

/// A composed optimizer: base learner `L`, online-to-batch conversion `C`, weight-decay
/// policy `D` and lr schedule `S`, over `T` = `f32` or `f64` buffers.
///
/// One step is a short sequence of phases (see [`Optimizer::step_with`]): the reduction
/// (gradient norms and the non-finite check, all-reduced across shards), the scalar phase
/// once per group in `f64` (scheduled lr `γ_k = lr · schedule(k) · learner.lr_factor(k)`,
/// `lr_max`, the averaging weight `c`, decay coefficients), the learner's optional pre-pass,
/// then one monomorphised loop over each parameter's value, gradient and state, vectorised
/// for the widest instruction set the CPU has (AVX-512F, AVX2 or the build target's; all give
/// the same bits) and split across threads in blocks of 16384 elements for large tensors.
/// State is held per block, slot after slot ([`SlotView`] reads it), so the loop reads each
/// slot with full-width loads. After the first step of each parameter, `step` allocates
/// nothing.
///
/// ```
/// use schedulefree::{Optimizer, Param, GroupConfig};
/// use schedulefree::learner::Sgd;
/// use schedulefree::conversion::ScheduleFree;
/// use schedulefree::decay::NoDecay;
/// use schedulefree::schedule::Constant;
///
/// // Schedule-Free SGD composed by hand (the `SgdScheduleFree` preset does the same).
/// let mut opt = Optimizer::<f64, _, _, _, _>::new(
///     Sgd::plain(),
///     ScheduleFree::default(),
///     NoDecay,
///     Constant,
///     GroupConfig { lr: 0.5, weight_decay: 0.0 },
/// )?;
/// opt.add_param("w", &[2])?;
/// let mut w = vec![1.0, -1.0];
/// for _ in 0..200 {
///     let g = w.clone(); // ∇ ½‖w‖²
///     opt.step(&mut [Param::new("w", &mut w, &g)])?;
/// }
/// let mut x = vec![0.0; 2];
/// opt.x_into("w", &w, &mut x)?;
/// assert!(x.iter().all(|v| v.abs() < 1e-2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Parameters are owned by the caller and passed by name each call, in any order; state is
/// keyed by name. Use the presets ([`crate::presets`]) for the reference methods.
#[derive(Debug)]
pub struct Optimizer<T: Element, L: Learner, C: Conversion, D: Decay, S: Schedule> {
    learner: L,
    conversion: C,
    decay: D,
    schedule: S,
    non_finite: NonFinitePolicy,
    groups: Vec<Group>,
    entries: Vec<Entry<T>>,
    index: HashMap<String, usize>,
    stamp: u64,
    resolved: Vec<usize>,
    scratch: Vec<GroupScalars<C::Scalars>>,
    /// Per-chunk gradient sums of the largest tensor (filled in parallel, added in order).
    chunk_sums: Vec<BlockSums>,
    /// Per-chunk pre-pass sums of the largest tensor (as `chunk_sums`).
    chunk_prepass: Vec<PrepassSums>,
    /// Per-group gradient sums of the current step.
    group_sums: Vec<GradSums>,
    /// Per-entry gradient sums of the current step (zero without a gradient).
    entry_sums: Vec<GradSums>,
    /// Entry indices sorted by name: group sums are added in this order, so the reported norms
    /// do not depend on the order parameters are registered or passed.
    by_name: Vec<usize>,
    /// Buffer of the all-reduce hook (sized with the groups).
    reduce_buf: Vec<f64>,
    /// Per-group pre-pass sums of the current step.
    prepass_sums: Vec<[f64; MAX_PREPASS]>,
    /// Per-entry pre-pass sums of the current step, added into `prepass_sums` in name order
    /// (like `entry_sums`), so the result does not depend on the order parameters are passed.
    entry_prepass: Vec<[f64; MAX_PREPASS]>,
    /// Whether per-parameter norms are measured ([`Optimizer::set_diagnostics`]).
    diagnostics: bool,
    /// Per-entry norms of the latest step (when `diagnostics`).
    pub(crate) diag: Vec<EntryDiag>,
}

impl<T: Element, L: Learner, C: Conversion, D: Decay, S: Schedule> Optimizer<T, L, C, D, S> {
    /// Compose an optimizer with one parameter group (index 0) configured by `group`.
    ///
    /// # Errors
    /// [`ConfigError`] if any component's hyperparameters, or `group`, are invalid;
    /// [`ConfigError::Unsupported`] if learner and conversion have more than 8 state slots per
    /// element in all, or the conversion's [`Conversion::SLOTS`] differs from its
    /// `slot_names().len()`.
    pub fn new(
        learner: L,
        conversion: C,
        decay: D,
        schedule: S,
        group: GroupConfig,
    ) -> Result<Self, ConfigError> {
        const {
            assert!(
                L::PREPASS_LEN <= MAX_PREPASS,
                "Learner::PREPASS_LEN > MAX_PREPASS"
            )
        };
        learner.validate()?;
        conversion.validate()?;
        decay.validate()?;
        group.validate()?;
        let (n_learner, n_conv) = (learner.slot_names().len(), conversion.slot_names().len());
        if n_conv != C::SLOTS || n_learner + n_conv > MAX_SLOTS {
            return Err(ConfigError::Unsupported(format!(
                "{} learner + {n_conv} conversion state slots (the conversion declares {}); \
                 at most {MAX_SLOTS} in all, and the declared count must match",
                n_learner,
                C::SLOTS
            )));
        }
        let mut ls = GroupState::default();
        learner.init_group_state(&mut ls);
        Ok(Optimizer {
            learner,
            conversion,
            decay,
            schedule,
            non_finite: NonFinitePolicy::default(),
            groups: vec![Group::new(group, ls)],
            entries: Vec::new(),
            index: HashMap::new(),
            stamp: 0,
            resolved: Vec::new(),
            scratch: Vec::new(),
            chunk_sums: Vec::new(),
            chunk_prepass: Vec::new(),
            group_sums: vec![GradSums::default()],
            entry_sums: Vec::new(),
            by_name: Vec::new(),
            reduce_buf: vec![0.0; 3 + MAX_PREPASS],
            prepass_sums: vec![[0.0; MAX_PREPASS]],
            entry_prepass: Vec::new(),
            diagnostics: false,
            diag: Vec::new(),
        })
    }

    /// Set the non-finite gradient policy (default [`NonFinitePolicy::Skip`]).
    pub fn with_non_finite(mut self, policy: NonFinitePolicy) -> Self {
        self.non_finite = policy;
        self
    }

    /// [`Optimizer::with_non_finite`] on an optimizer in place (takes effect at the next step).
    pub fn set_non_finite(&mut self, policy: NonFinitePolicy) {
        self.non_finite = policy;
    }

    /// The non-finite gradient policy.
    pub fn non_finite(&self) -> NonFinitePolicy {
        self.non_finite
    }

    /// Measure per-parameter norms in every step (off by default): `‖g‖`, the norm of the
    /// buffer at the gradient point and of the learner's direction, read back with
    /// [`Optimizer::diagnostics`]. Costs one extra read of each parameter and a few flops
    /// per element.
    pub fn set_diagnostics(&mut self, on: bool) {
        self.diagnostics = on;
    }

    /// Whether diagnostics are measured.
    pub fn diagnostics_enabled(&self) -> bool {
        self.diagnostics
    }

    /// The learner.
    pub fn learner(&self) -> &L {
        &self.learner
    }
    /// The conversion.
    pub fn conversion(&self) -> &C {
        &self.conversion
    }
    /// The weight-decay policy.
    pub fn decay(&self) -> &D {
        &self.decay
    }
    /// The schedule.
    pub fn schedule(&self) -> &S {
        &self.schedule
    }
    /// Number of parameter groups.
    pub fn num_groups(&self) -> usize {
        self.groups.len()
    }
    /// Configuration of group `g`, if it exists.
    pub fn group_config(&self, g: usize) -> Option<GroupConfig> {
        self.groups.get(g).map(|x| x.config)
    }
    /// Change group `g`'s lr / weight decay (e.g. for an external schedule).
    ///
    /// # Errors
    /// [`ConfigError`] for invalid values or a missing group.
    pub fn set_group_config(&mut self, g: usize, config: GroupConfig) -> Result<(), ConfigError> {
        config.validate()?;
        let n = self.groups.len();
        let grp = self.groups.get_mut(g).ok_or(ConfigError::OutOfRange {
            field: "group",
            value: g as f64,
            expected: if n == 1 {
                "group 0"
            } else {
                "an existing group index"
            },
        })?;
        grp.config = config;
        Ok(())
    }
    /// Group `g`'s values from the latest step taken (k, lr, c, lr_max, weight sum, skipped
    /// steps so far): before the first step, zeros. For what the next step will use, see
    /// [`Optimizer::next_step`].
    pub fn group_info(&self, g: usize) -> Option<GroupStepInfo> {
        self.groups.get(g).map(|x| x.last)
    }
    /// Completed updates of group 0.
    pub fn step_count(&self) -> u64 {
        self.groups[0].k
    }
    /// Whether the groups are in train mode (buffers hold the gradient point).
    pub fn is_train_mode(&self) -> bool {
        self.groups[0].train_mode
    }
    /// A state buffer (`"z"`, `"exp_avg_sq"`, ...) of a parameter, copied out of the
    /// blocked layout into a new `Vec`; `None` for unknown names or before the first
    /// gradient. Without allocating: [`Optimizer::slot`], [`Optimizer::z_into`],
    /// [`Optimizer::x_into`].
    pub fn state_buffer(&self, param: &str, slot: &str) -> Option<Vec<T>> {
        self.slot(param, slot).map(|v| v.iter().collect())
    }

    pub(crate) fn num_slots(&self) -> usize {
        self.learner.slot_names().len() + self.conversion.slot_names().len()
    }
    pub(crate) fn method_name(&self) -> String {
        format!(
            "{}+{}+{}",
            self.learner.name(),
            self.conversion.name(),
            self.decay.name()
        )
    }
    pub(crate) fn entry_index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
}
