//! The adapter's typed error: candle's and the core's errors, plus what can go wrong
//! translating between candle `Var`s / safetensors files and the core's buffers.

use std::path::PathBuf;

use candle_core::DType;
use schedulefree::{ConfigError, ParamError, StateError, StepError};

/// Why an adapter call failed. Calls that return it change nothing unless the variant says
/// otherwise.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CandleAdapterError {
    /// A candle operation failed (device transfer, tensor creation, `Var::set`).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Invalid hyperparameters (from the preset builder or `set_learning_rate`).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Registering a parameter failed (duplicate name, ...).
    #[error(transparent)]
    Param(#[from] ParamError),
    /// The core refused a step or mode switch (e.g. a step in eval mode).
    #[error(transparent)]
    Step(#[from] StepError),
    /// Saved state does not fit this optimizer (names, shapes, method, version).
    #[error(transparent)]
    State(#[from] StateError),
    /// A tag-selection regex does not compile (the core's [`schedulefree::tags::RegexError`],
    /// converted with `?`).
    #[error("invalid var-selection regex `{pattern}`: {message}")]
    Regex {
        /// The pattern given.
        pattern: String,
        /// The regex crate's explanation.
        message: String,
    },
    /// The loss given to [`ScheduleFreeOptimizer::backward_step_with_loss`](crate::ScheduleFreeOptimizer::backward_step_with_loss)
    /// is not a single value (it must have exactly one element, e.g. a mean).
    #[error("the loss must be a tensor with one element; it has shape {shape:?}")]
    LossShape {
        /// The loss tensor's shape.
        shape: Vec<usize>,
    },
    /// A floating-point `Var` whose dtype the core does not run on (the core runs on `f32`
    /// and `f64`; keep master weights in one of those and cast in the forward pass).
    #[error("var `{name}` has dtype {dtype:?}; the optimizer supports f32 and f64 vars")]
    UnsupportedDtype {
        /// The var's name in the optimizer.
        name: String,
        /// Its dtype.
        dtype: DType,
    },
    /// The vars mix `f32` and `f64`; one optimizer runs on one element type.
    #[error(
        "var `{name}` has dtype {dtype:?} but earlier vars are {expected:?}; use one optimizer per dtype"
    )]
    MixedDtypes {
        /// The first var of the other dtype.
        name: String,
        /// Its dtype.
        dtype: DType,
        /// The dtype of the vars before it.
        expected: DType,
    },
    /// The same `Var` (same tensor id) was given twice.
    #[error("var `{name}` is the same Var as `{first}`")]
    DuplicateVar {
        /// The second name it was given.
        name: String,
        /// The first name it was given.
        first: String,
    },
    /// A gradient's dtype or element count differs from its var's.
    #[error("gradient of `{name}`: {what}")]
    Gradient {
        /// The var's name.
        name: String,
        /// What mismatched, with both values.
        what: String,
    },
    /// The `VarMap`'s mutex was poisoned by a panic in another thread.
    #[error("the VarMap's lock is poisoned (another thread panicked while holding it)")]
    VarMapPoisoned,
    /// An optimized var is not in the `VarMap` given to a checkpoint call.
    #[error(
        "optimized var `{name}` is not in the VarMap; a checkpoint must cover every optimized var"
    )]
    VarNotInVarMap {
        /// The var's name in the optimizer.
        name: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not valid safetensors, or could not be serialized.
    #[error("{path}: safetensors: {message}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The safetensors library's message.
        message: String,
    },
    /// A metadata entry of a state file is missing or malformed.
    #[error("{path}: metadata `{key}`: {message}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The metadata key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A tensor the file should contain is absent.
    #[error("{path}: tensor `{name}` is missing")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name (`<param>/<slot>` in optimizer files, the VarMap name in model files).
        name: String,
    },
    /// The file contains a tensor that nothing here matches.
    #[error("{path}: unexpected tensor `{name}` (no such parameter or slot here)")]
    UnexpectedTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
    },
    /// A tensor's shape or dtype differs from what this optimizer or VarMap expects.
    #[error("{path}: tensor `{name}`: {what}")]
    TensorMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// What mismatched, with both values.
        what: String,
    },
    /// The files of a checkpoint directory were written by different `save_checkpoint` calls
    /// (e.g. a crash between two of them).
    #[error("{dir}: checkpoint files come from different saves ({what})")]
    CheckpointMismatch {
        /// The checkpoint directory.
        dir: PathBuf,
        /// Which files disagree.
        what: String,
    },
}

impl CandleAdapterError {
    /// This error as a `candle_core::Error`, for the `candle_nn::Optimizer` trait methods
    /// (the message is kept; match on the typed error through the inherent methods instead).
    pub fn into_candle(self) -> candle_core::Error {
        match self {
            CandleAdapterError::Candle(e) => e,
            other => candle_core::Error::wrap(other),
        }
    }
}

impl From<schedulefree::tags::RegexError> for CandleAdapterError {
    /// The core's tag-rule regex error as [`CandleAdapterError::Regex`].
    fn from(e: schedulefree::tags::RegexError) -> Self {
        CandleAdapterError::Regex {
            pattern: e.pattern,
            message: e.message,
        }
    }
}
