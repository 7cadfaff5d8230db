//! Errors of the burn adapter: the core's typed errors plus what can go wrong between burn's
//! modules and the core's named parameters.

use schedulefree::{ConfigError, ParamError, StateError, StepError};

/// Why an adapter call failed. Unless a variant says otherwise, nothing was modified: the
/// optimizer keeps its state and the module passed in is dropped unchanged (the caller still
/// holds its own clone if it needs one).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BurnAdapterError {
    /// Invalid hyperparameters or schedule (from the core).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Registering a parameter failed (from the core).
    #[error(transparent)]
    Param(#[from] ParamError),
    /// The core refused a step, mode switch or eval-point computation.
    #[error(transparent)]
    Step(#[from] StepError),
    /// The core refused a saved state (version, method, names, shapes, ...).
    #[error(transparent)]
    State(#[from] StateError),
    /// A tag-selection regex does not compile (the core's [`schedulefree::tags::RegexError`],
    /// converted with `?`).
    #[error("invalid parameter-selection regex `{pattern}`: {message}")]
    Regex {
        /// The pattern given.
        pattern: String,
        /// The regex crate's explanation.
        message: String,
    },
    /// Saved state names module paths that the module does not have. State is keyed by module
    /// path (`"layers.0.weight"`); loading it into a module with other paths would orphan it
    /// silently, so it is refused.
    #[error(
        "optimizer state for {paths:?} matches no float parameter of the module; \
         the module's parameter paths are {available:?}"
    )]
    UnmatchedState {
        /// Paths in the state with no parameter of that path in the module.
        paths: Vec<String>,
        /// The module's float parameter paths, for comparison.
        available: Vec<String>,
    },
    /// A parameter that the optimizer has state for is absent from the module (e.g. a
    /// checkpoint of another architecture), so its eval point cannot be restored.
    #[error("the module has no float parameter at path `{path}`, which has optimizer state")]
    MissingState {
        /// The path that has state but no parameter.
        path: String,
    },
    /// A saved state names slots that live elsewhere (`external`, no buffers): the core
    /// state of a [`DeviceOptimizer`](crate::DeviceOptimizer) (`core().state()`) rather than
    /// its [`state`](crate::DeviceOptimizer::state), which reads the slots back.
    #[error(
        "the state of `{path}` has no slot buffers (a DeviceOptimizer's core().state()); save \
         with DeviceOptimizer::state() or save()"
    )]
    StateWithoutSlots {
        /// The parameter's path.
        path: String,
    },
    /// A parameter's shape differs from the one the optimizer registered under its path.
    #[error("parameter `{path}`: shape {found:?} in the module, {expected:?} in the optimizer")]
    Shape {
        /// Module path of the parameter.
        path: String,
        /// Shape in the module.
        found: Vec<usize>,
        /// Shape the optimizer holds.
        expected: Vec<usize>,
    },
    /// Two float parameters of the module have the same path, so path-keyed state would be
    /// ambiguous.
    #[error("two float parameters of the module have the path `{0}`")]
    DuplicatePath(String),
    /// Reading a tensor back to the host, or building one, failed in burn.
    #[error("tensor `{path}`: {message}")]
    Tensor {
        /// Module path (or state name) of the tensor.
        path: String,
        /// burn's message.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        message: String,
    },
    /// burn refused to save or load a module record.
    #[error("module record {path}: {message}")]
    Record {
        /// The file.
        path: String,
        /// burn's message.
        message: String,
    },
    /// A state saved in eval mode (parameter buffers at `x`) was given to
    /// [`ModelOptimizer::load_state`](crate::ModelOptimizer::load_state), which has no module to
    /// recover `y` from; load checkpoints with [`load_checkpoint`](crate::load_checkpoint).
    #[error(
        "the state was saved in eval mode (buffers at x); load it with load_checkpoint, which \
         recovers y from the module's x"
    )]
    EvalModeState,
    /// Batch-norm recalibration could not be carried out (see the message).
    #[error("batch-norm recalibration: {0}")]
    BatchNorm(String),
}

impl From<schedulefree::tags::RegexError> for BurnAdapterError {
    /// The core's tag-rule regex error as [`BurnAdapterError::Regex`].
    fn from(e: schedulefree::tags::RegexError) -> Self {
        BurnAdapterError::Regex {
            pattern: e.pattern,
            message: e.message,
        }
    }
}
