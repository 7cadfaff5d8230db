//! Typed errors. Configuration is validated at construction; the element loop is infallible.

use crate::element::Dtype;
use crate::schedule::ScheduleError;

/// An invalid hyperparameter or optimizer configuration, reported at construction.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A hyperparameter lies outside its valid range.
    #[error("hyperparameter `{field}` = {value} is out of range: expected {expected}")]
    OutOfRange {
        /// Name of the hyperparameter, as in the papers / reference code (`lr`, `beta`, ...).
        field: &'static str,
        /// The value given.
        value: f64,
        /// The valid range, in words (e.g. "0 < beta <= 1").
        expected: &'static str,
    },
    /// An invalid schedule.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// A combination of components that the method does not support.
    #[error("unsupported configuration: {0}")]
    Unsupported(String),
}

/// Check `lo <= v <= hi` style ranges on one field, returning a typed error otherwise.
pub(crate) fn check(
    field: &'static str,
    value: f64,
    ok: bool,
    expected: &'static str,
) -> Result<(), ConfigError> {
    if ok && !value.is_nan() {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            field,
            value,
            expected,
        })
    }
}

/// An error registering parameters or parameter groups.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// The name is already registered.
    #[error("parameter `{0}` is already registered")]
    Duplicate(String),
    /// The shape's element count overflows `usize`.
    #[error("parameter `{name}`: shape {shape:?} has more elements than fit in usize")]
    ShapeOverflow {
        /// Parameter name.
        name: String,
        /// The shape given.
        shape: Vec<usize>,
    },
    /// The group index does not exist.
    #[error("parameter group {group} does not exist (there are {groups})")]
    NoSuchGroup {
        /// The index given.
        group: usize,
        /// Number of groups.
        groups: usize,
    },
    /// The name was never registered.
    #[error("unknown parameter `{0}`: register it with add_param first")]
    Unknown(String),
    /// The decay policy projects normalized parameters along an axis the shape lacks.
    #[error(
        "parameter `{name}`: shape {shape:?} has no axis {axis} for the hypersphere projection \
         of normalized parameters; set Projection::axis to the axis of output units"
    )]
    ProjectionAxis {
        /// Parameter name.
        name: String,
        /// The registered shape.
        shape: Vec<usize>,
        /// The projection's axis.
        axis: usize,
    },
}

/// Why a `step`, `train`, `eval` or eval-point call was refused. Nothing was modified.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// `step` was called while the optimizer is in eval mode (the buffers hold `x`).
    #[error(
        "step() called in eval mode: the buffers of parameter group {group} hold the returned \
         point x, not the gradient point y; call optimizer.train(&mut params) before step()"
    )]
    EvalMode {
        /// The first group found in eval mode.
        group: usize,
    },
    /// A parameter name that was never registered.
    #[error("unknown parameter `{0}`: register it with add_param before stepping")]
    UnknownParameter(String),
    /// A parameter was passed twice in one call.
    #[error("parameter `{0}` was passed twice in one call")]
    DuplicateParameter(String),
    /// A buffer's length disagrees with the registered shape.
    #[error("parameter `{name}`: {what} has {got} elements, the registered shape has {expected}")]
    LengthMismatch {
        /// Parameter name.
        name: String,
        /// Which buffer ("value", "grad", "out").
        what: &'static str,
        /// Its length.
        got: usize,
        /// The registered number of elements.
        expected: usize,
    },
    /// A gradient contained NaN or ±inf under [`NonFinitePolicy::Error`](crate::NonFinitePolicy).
    #[error("non-finite gradient for parameter `{0}`; the step was not applied")]
    NonFiniteGradient(String),
    /// The scalar phase produced a non-finite value (an lr or averaging weight overflowed);
    /// nothing was changed.
    #[error(
        "parameter group {group}: the step's `{what}` is {value} (overflow); lower the lr or \
         weight_lr_power; the step was not applied"
    )]
    NonFiniteScalar {
        /// Group index.
        group: usize,
        /// Which scalar (`lr`, `c`, `weight_sum`, `shrink`).
        what: &'static str,
        /// Its value.
        value: f64,
    },
    /// A mode switch would leave a parameter that has optimizer state in the wrong mode.
    #[error(
        "parameter `{0}` has optimizer state but was not passed to train()/eval(); pass every \
         trained parameter so that all switch modes together"
    )]
    MissingParameter(String),
    /// The learner needs the loss (Polyak step sizes) and `step` got none.
    #[error(
        "the {learner} learner needs the loss at the gradient point: call \
         step_with_loss(params, loss) (or step_with with StepInputs::loss)"
    )]
    LossRequired {
        /// The learner's name.
        learner: &'static str,
    },
    /// The parameter's state lives outside the optimizer (it was stepped with
    /// [`crate::Optimizer::step_programs`]): host calls cannot read or move it.
    #[error(
        "parameter `{0}` keeps its state outside this optimizer (stepped with step_programs): \
         step it with step_programs and read its eval point with eval_program"
    )]
    ExternalState(String),
    /// The parameter's state lives in this optimizer's host buffers, so
    /// [`crate::Optimizer::step_programs`] cannot step it.
    #[error(
        "parameter `{0}` keeps its state in this optimizer's host buffers: step it with step()"
    )]
    HostState(String),
    /// The step cannot be written as element programs ([`crate::Optimizer::step_programs`]).
    #[error(transparent)]
    Program(#[from] crate::program::ProgramError),
    /// The caller's pre-pass evaluator ([`crate::Optimizer::step_programs_with`]) gave no
    /// sums.
    #[error("the pre-pass evaluator failed (step_programs_with); nothing was changed")]
    PrepassFailed,
    /// The caller's pre-pass evaluator gave another number of sums than the programs have
    /// terms.
    #[error("the pre-pass evaluator returned {got} sums for {expected} terms")]
    PrepassLength {
        /// Terms of the programs passed.
        expected: usize,
        /// Sums returned.
        got: usize,
    },
    /// The all-reduce hook changed the length of the vector it was given. Not returned by
    /// this version: the hook receives a fixed-length slice ([`crate::AllReduce`]); kept so
    /// that code matching on it still compiles.
    #[error("the all_reduce hook changed the sums' length from {expected} to {got}")]
    AllReduceLength {
        /// The length passed in.
        expected: usize,
        /// The length after the hook.
        got: usize,
    },
}

/// Why saved state could not be loaded. The optimizer is left unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The state was written by an incompatible format version.
    #[error("state format version {found} is not supported (this build reads {supported})")]
    Version {
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// The state was saved from buffers of another dtype.
    #[error("state holds {found:?} buffers but this optimizer uses {expected:?}")]
    Dtype {
        /// Dtype in the state.
        found: Dtype,
        /// Dtype of this optimizer.
        expected: Dtype,
    },
    /// The state was saved by a different composition of components.
    #[error("state was saved by `{found}` but this optimizer is `{expected}`")]
    Method {
        /// Component signature in the state.
        found: String,
        /// Signature of this optimizer.
        expected: String,
    },
    /// Group count differs.
    #[error("state has {found} parameter groups, this optimizer has {expected}")]
    Groups {
        /// Groups in the state.
        found: usize,
        /// Groups here.
        expected: usize,
    },
    /// A group's saved scalars are impossible (non-finite, negative weight sum, ...).
    #[error("parameter group {group}: {what}")]
    Group {
        /// Group index.
        group: usize,
        /// What is wrong, with the value.
        what: String,
    },
    /// Parameters registered here but absent from the state, or the reverse.
    #[error(
        "parameter names differ: missing from state {missing:?}; unknown in state {unexpected:?}"
    )]
    Names {
        /// Registered here, not in the state.
        missing: Vec<String>,
        /// In the state, not registered here.
        unexpected: Vec<String>,
    },
    /// A parameter's shape, group or buffer set differs.
    #[error("parameter `{name}`: {what}")]
    Param {
        /// Parameter name.
        name: String,
        /// What mismatched, with both values.
        what: String,
    },
    /// Reading or writing the state file failed.
    #[error("state file {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        message: String,
    },
}
