//! What one training run is: the task (model + data), the optimizer preset and the budget.

use std::fmt;
use std::path::PathBuf;

use schedulefree::schedule::ScheduleConfig;
use schedulefree::{AdamW, AdamWScheduleFree, PresetConfig};
use serde::{Deserialize, Serialize};

/// A model and data pair.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum Task {
    /// MLP with LayerNorm on the bundled MNIST-10k (8000 train / 2000 test images).
    MnistMlp,
    /// CNN with BatchNorm on the bundled MNIST-10k.
    MnistCnn,
    /// MLP with LayerNorm on Fashion-MNIST (60k / 10k, read from the data directory).
    FashionMlp,
    /// CNN with BatchNorm on Fashion-MNIST.
    FashionCnn,
    /// Character-level transformer on the bundled Shakespeare tragedies (841,779 characters).
    TragediesTransformer,
    /// Character-level transformer on Tiny Shakespeare (1,115,394 characters, read from the
    /// data directory).
    TinyShakespeareTransformer,
}

/// Every task, in declaration order.
pub const ALL_TASKS: [Task; 6] = [
    Task::MnistMlp,
    Task::MnistCnn,
    Task::FashionMlp,
    Task::FashionCnn,
    Task::TragediesTransformer,
    Task::TinyShakespeareTransformer,
];

/// Which data set a task reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataSet {
    /// `mnist-10k/` (bundled).
    Mnist10k,
    /// `fashion-mnist/` (data directory).
    FashionMnist,
    /// `text/shakespeare-tragedies.txt` (bundled).
    Tragedies,
    /// `text/tinyshakespeare.txt` (data directory).
    TinyShakespeare,
}

/// Which model a task trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// [`crate::nn::Mlp`].
    Mlp,
    /// [`crate::nn::Cnn`].
    Cnn,
    /// [`crate::nn::CharTransformer`].
    Transformer,
}

/// Image side of both image data sets.
pub const IMAGE_SIDE: usize = 28;
/// Classes of both image data sets.
pub const IMAGE_CLASSES: usize = 10;
/// MLP hidden width.
pub const MLP_HIDDEN: usize = 128;
/// MLP hidden layers.
pub const MLP_DEPTH: usize = 2;
/// CNN channels.
pub const CNN_CHANNELS: [usize; 2] = [8, 16];
/// Transformer context length (characters).
pub const CONTEXT: usize = 64;
/// Transformer width.
pub const D_MODEL: usize = 64;
/// Transformer blocks.
pub const LAYERS: usize = 2;
/// Transformer attention heads.
pub const HEADS: usize = 4;

impl Task {
    /// The task's name as written in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::MnistMlp => "mnist_mlp",
            Self::MnistCnn => "mnist_cnn",
            Self::FashionMlp => "fashion_mlp",
            Self::FashionCnn => "fashion_cnn",
            Self::TragediesTransformer => "tragedies_transformer",
            Self::TinyShakespeareTransformer => "tiny_shakespeare_transformer",
        }
    }

    /// The data set it reads.
    pub fn data_set(self) -> DataSet {
        match self {
            Self::MnistMlp | Self::MnistCnn => DataSet::Mnist10k,
            Self::FashionMlp | Self::FashionCnn => DataSet::FashionMnist,
            Self::TragediesTransformer => DataSet::Tragedies,
            Self::TinyShakespeareTransformer => DataSet::TinyShakespeare,
        }
    }

    /// The model it trains.
    pub fn model(self) -> ModelKind {
        match self {
            Self::MnistMlp | Self::FashionMlp => ModelKind::Mlp,
            Self::MnistCnn | Self::FashionCnn => ModelKind::Cnn,
            Self::TragediesTransformer | Self::TinyShakespeareTransformer => ModelKind::Transformer,
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn yes() -> bool {
    true
}

fn default_bn_recalibration() -> usize {
    DEFAULT_BN_RECALIBRATION
}

/// Default number of training batches used to recompute BatchNorm statistics at `x`.
pub const DEFAULT_BN_RECALIBRATION: usize = 20;

/// One training run (serialised as JSON for `sflab train --config`; unknown keys are
/// errors, and `data_dir`, `eval_batches`, `eval_at_x`, `bn_recalibration` may be omitted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Model and data.
    pub task: Task,
    /// Where non-bundled data lives (holding `fashion-mnist/` and `text/`); `None`: the
    /// bundled `data/` folder, then `../shared/data`.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Optimizer preset, including the schedule of the last-iterate presets.
    pub optimizer: PresetConfig,
    /// Number of optimizer steps (minibatches).
    pub steps: u64,
    /// Minibatch size (images, or sequences of [`CONTEXT`] characters).
    pub batch_size: usize,
    /// Seed of the initial weights and of the data order.
    pub seed: u64,
    /// Evaluate after every `eval_every` steps (0: only at the end) and after the last step.
    pub eval_every: u64,
    /// Cap on the evaluation set in batches of `batch_size` (`None`: the whole test split,
    /// or every non-overlapping window of the validation text).
    #[serde(default)]
    pub eval_batches: Option<usize>,
    /// Evaluate at the optimizer's eval point `x` (default); `false` evaluates the training
    /// buffer `y`.
    #[serde(default = "yes")]
    pub eval_at_x: bool,
    /// Training batches used to recompute BatchNorm statistics at `x` before each evaluation
    /// (CNN with a Schedule-Free optimizer only; 0 disables).
    #[serde(default = "default_bn_recalibration")]
    pub bn_recalibration: usize,
}

/// Schedule-Free AdamW with `lr`, linear warmup over `warmup` steps and otherwise the
/// preset's defaults (β = 0.9, β2 = 0.999, no weight decay).
pub fn sf_adamw(lr: f64, warmup: u64) -> PresetConfig {
    PresetConfig::AdamWScheduleFree(AdamWScheduleFree {
        lr,
        warmup_steps: warmup,
        ..Default::default()
    })
}

/// AdamW (β = (0.9, 0.999), no weight decay) with `lr`, linear warmup over `warmup` steps and
/// linear decay to 0 at `total` (the last-iterate baseline of arXiv 2310.07831).
pub fn adamw_linear_decay(lr: f64, warmup: u64, total: u64) -> PresetConfig {
    PresetConfig::AdamW {
        config: AdamW {
            lr,
            weight_decay: 0.0,
            ..Default::default()
        },
        schedule: ScheduleConfig::Linear {
            warmup,
            total,
            end: 0.0,
        },
    }
}

/// `(steps, batch, lr, eval_every, eval_batches)` of the default run of each task. The lrs
/// are the best of a coarse grid (×2–2.5 apart) at the quick budget with Schedule-Free AdamW.
fn defaults(task: Task) -> (u64, usize, f64, u64, Option<usize>) {
    match task {
        Task::MnistMlp => (2000, 64, 5e-3, 250, None),
        Task::MnistCnn => (1500, 64, 1e-2, 250, None),
        Task::FashionMlp => (2000, 64, 5e-3, 250, Some(40)),
        Task::FashionCnn => (1500, 64, 1e-2, 250, Some(40)),
        Task::TragediesTransformer | Task::TinyShakespeareTransformer => {
            (1500, 32, 5e-3, 250, Some(16))
        }
    }
}

/// `(steps, eval_every)` of the quick run of each task (same batch and lr as the default).
fn quick(task: Task) -> (u64, u64) {
    match task.model() {
        ModelKind::Mlp => (500, 250),
        ModelKind::Cnn => (300, 150),
        ModelKind::Transformer => (200, 100),
    }
}

impl TrainConfig {
    /// The default run of `task`: Schedule-Free AdamW with warmup over 5 % of the steps, a
    /// budget of a minute or two on 2 cores, evaluation every 250 steps.
    pub fn default_for(task: Task) -> Self {
        let (steps, batch_size, lr, eval_every, eval_batches) = defaults(task);
        Self {
            task,
            data_dir: None,
            optimizer: sf_adamw(lr, steps / 20),
            steps,
            batch_size,
            seed: 0,
            eval_every,
            eval_batches,
            eval_at_x: true,
            bn_recalibration: DEFAULT_BN_RECALIBRATION,
        }
    }

    /// A short run of `task` (5–20 s on 2 cores; for sweeps that need many runs): the default
    /// with fewer steps, warmup over 5 % of them and two evaluations.
    pub fn quick_for(task: Task) -> Self {
        let (steps, eval_every) = quick(task);
        let mut c = Self::default_for(task);
        c.steps = steps;
        c.eval_every = eval_every;
        c.optimizer = sf_adamw(c.optimizer.lr(), steps / 20);
        c
    }
}
