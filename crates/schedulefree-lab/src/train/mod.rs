//! `sflab train`: one neural-network training run on real data, with any optimizer preset.
//!
//! # Tasks
//!
//! | task | model | data |
//! | --- | --- | --- |
//! | `mnist_mlp`, `fashion_mlp` | 784-128-128-10 MLP, LayerNorm + ReLU | MNIST-10k (bundled) / Fashion-MNIST |
//! | `mnist_cnn`, `fashion_cnn` | conv 3×3 ×8 → BN → ReLU → pool 2, conv 3×3 ×16 → BN → ReLU → pool 2, linear 784 → 10 | same |
//! | `tragedies_transformer`, `tiny_shakespeare_transformer` | pre-LN transformer, context 64, width 64, 2 blocks, 4 heads, vocabulary of the text | tragedies (bundled) / Tiny Shakespeare |
//!
//! Loss: mean softmax cross-entropy (per image, or per character). Evaluation: the whole test
//! split of the image sets, or non-overlapping 64-character windows of the last 10 % of the
//! text, optionally capped ([`TrainConfig::eval_batches`]); accuracy is top-1 (next-character
//! accuracy for text).
//!
//! # What a run does
//!
//! Weights come from the seed ([`crate::nn::init`]), and so does the data order (a fresh
//! permutation per epoch for images, uniform window positions for text): a run is a function
//! of its config. Every step takes the gradient at `y` (the optimizer's training buffer),
//! records the minibatch loss there, and calls [`schedulefree_burn::ModelOptimizer::step`].
//! Evaluations (every [`TrainConfig::eval_every`] steps and after the last) use the eval point
//! `x` from [`schedulefree_burn::ModelOptimizer::eval_module`] (Schedule-Free's average; the
//! training buffer itself for last-iterate presets) unless [`TrainConfig::eval_at_x`] is off.
//! For the CNN with a Schedule-Free preset the BatchNorm statistics are first recomputed at
//! `x` on [`TrainConfig::bn_recalibration`] training batches of a separate stream
//! (the reference `schedulefree` README's practical notes). A non-finite training loss ends the run early with
//! [`RunResult::diverged`] set.
//!
//! Data files are parsed once per process and shared by later runs ([`data::load`]).

pub mod batches;
pub mod cli;
pub mod config;
pub mod data;
pub mod metrics;
pub(crate) mod run;

use std::time::Instant;

use anyhow::{Context, bail};
use burn::tensor::Device;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

pub use cli::TrainArgs;
pub use config::{ALL_TASKS, DataSet, ModelKind, Task, TrainConfig};
pub use metrics::{CsvSink, JsonlSink, MemorySink, MetricsSink, StepMetrics, open_sink};

use self::batches::{ImageBatches, TextBatches};
use self::config::{
    CNN_CHANNELS, CONTEXT, D_MODEL, HEADS, IMAGE_CLASSES, LAYERS, MLP_DEPTH, MLP_HIDDEN,
};
use self::data::Loaded;
use crate::nn::{CnnConfig, Init, MlpConfig, TransformerConfig};

/// One evaluation of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Completed steps when evaluated.
    pub step: u64,
    /// Mean minibatch training loss (at `y`) over the steps since the previous evaluation.
    pub train_loss: f64,
    /// Mean loss on the evaluation set (at `x`, or `y` with `eval_at_x` off).
    pub eval_loss: f64,
    /// Top-1 accuracy on the evaluation set, in `[0, 1]`.
    pub eval_accuracy: f64,
    /// Scheduled lr of the latest step.
    pub lr: f64,
    /// Averaging weight `c` of the latest step.
    pub c: f64,
}

/// The outcome of [`run`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The config that ran.
    pub config: TrainConfig,
    /// Evaluations in step order (none if the run diverged before the first).
    pub evals: Vec<EvalRecord>,
    /// Whether a training loss was non-finite (the run stopped there).
    pub diverged: bool,
    /// Wall time of the training loop (evaluations included, data loading excluded).
    pub seconds: f64,
    /// Steps completed per second of [`RunResult::seconds`].
    pub steps_per_second: f64,
}

impl RunResult {
    /// The last evaluation, if any.
    pub fn last(&self) -> Option<&EvalRecord> {
        self.evals.last()
    }
}

/// Offset of the seed for weight initialisation (the data order uses the seed itself).
const INIT_STREAM: u64 = 0x5EED_1417_0000_0001;

fn validate(config: &TrainConfig) -> anyhow::Result<()> {
    if config.steps == 0 {
        bail!("steps must be at least 1");
    }
    if config.batch_size == 0 {
        bail!("batch_size must be at least 1");
    }
    if config.eval_batches == Some(0) {
        bail!("eval_batches must be at least 1 (omit it to evaluate on the whole set)");
    }
    Ok(())
}

/// Trains `config.task` as `config` says and returns its evaluations.
///
/// `progress` is advanced by one per step (its length is set to `config.steps`) and shows
/// the latest evaluation; `metrics` receives every step (with per-parameter norms if it
/// asks for them) and every evaluation.
///
/// # Errors
/// Invalid config (zero steps or batch), data that cannot be found or parsed, an optimizer
/// preset the core rejects, adapter failures, metrics write failures. Divergence is not an
/// error (see [`RunResult::diverged`]).
pub fn run(
    config: &TrainConfig,
    progress: Option<&ProgressBar>,
    metrics: Option<&mut dyn MetricsSink>,
) -> anyhow::Result<RunResult> {
    validate(config)?;
    let loaded = data::load(config.task.data_set(), config.data_dir.as_deref())
        .with_context(|| format!("loading the data of {}", config.task))?;
    if let Some(p) = progress {
        p.set_length(config.steps);
    }
    let eval_device = Device::default();
    let train_device = eval_device.clone().autodiff();
    let mut init = Init::new(config.seed ^ INIT_STREAM, &train_device);
    let started = Instant::now();
    let outcome = match (config.task.model(), loaded) {
        (ModelKind::Mlp, Loaded::Images(d)) => {
            let model = MlpConfig {
                d_in: d.train.side * d.train.side,
                hidden: MLP_HIDDEN,
                depth: MLP_DEPTH,
                classes: IMAGE_CLASSES,
            }
            .init(&mut init);
            let mut b = ImageBatches::new(d, config.batch_size, config.seed);
            run::train_loop(
                model,
                &mut b,
                config,
                false,
                &train_device,
                &eval_device,
                progress,
                metrics,
            )?
        }
        (ModelKind::Cnn, Loaded::Images(d)) => {
            let model = CnnConfig {
                side: d.train.side,
                channels: CNN_CHANNELS,
                classes: IMAGE_CLASSES,
            }
            .init(&mut init);
            let mut b = ImageBatches::new(d, config.batch_size, config.seed);
            run::train_loop(
                model,
                &mut b,
                config,
                true,
                &train_device,
                &eval_device,
                progress,
                metrics,
            )?
        }
        (ModelKind::Transformer, Loaded::Text(d)) => {
            let model = TransformerConfig {
                vocab: d.corpus.vocab.len(),
                context: CONTEXT,
                d_model: D_MODEL,
                layers: LAYERS,
                heads: HEADS,
            }
            .init(&mut init);
            let mut b = TextBatches::new(d, config.batch_size, config.seed);
            run::train_loop(
                model,
                &mut b,
                config,
                false,
                &train_device,
                &eval_device,
                progress,
                metrics,
            )?
        }
        (model, _) => bail!(
            "task {}: model {model:?} does not fit its data",
            config.task
        ),
    };
    let seconds = started.elapsed().as_secs_f64();
    Ok(RunResult {
        config: config.clone(),
        evals: outcome.evals,
        diverged: outcome.diverged,
        seconds,
        steps_per_second: outcome.steps_done as f64 / seconds.max(1e-9),
    })
}
