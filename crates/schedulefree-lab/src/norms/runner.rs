//! Running the protocol: the model and its tags, one run through the training loop of
//! `sflab train`, and the sweep on the lab's [`Runner`] (`jobs` runs at once, each on one
//! thread, so a run's result does not depend on the other runs).

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use burn::tensor::Device;
use indicatif::ProgressBar;
use schedulefree_burn::TagRules;

use super::augment::ShiftedBatches;
use super::config::{ModelShape, NormsConfig};
use super::grid::RunSpec;
use super::trace::{Trace, TraceSink};
use crate::experiment::{self, RunStore, Runner};
use crate::nn::{Init, MlpConfig};
use crate::train::config::{DataSet, IMAGE_CLASSES, Task, TrainConfig};
use crate::train::data::{ImageData, Loaded, load};
use crate::train::metrics::MetricsSink;
use crate::train::run::{LoopOptions, train_loop_with};

/// Offset of the seed for weight initialisation (the data order uses the seed itself).
const INIT_STREAM: u64 = 0x5EED_4E02_0000_0001;

/// The tags of the MLP: every hidden `Linear` weight is `normalized` (it feeds a LayerNorm;
/// the output layer `head` does not), and LayerNorm gains/shifts and biases get no decay
/// ([`TagRules::standard`]).
pub fn tag_rules() -> TagRules {
    TagRules::standard()
        .normalized_layer_type("Linear", "weight")
        .exclude_path("head")
}

/// MNIST-10k from the bundled `data/` folder (parsed once per process).
///
/// # Errors
/// Missing or unreadable files.
pub fn mnist() -> anyhow::Result<Arc<ImageData>> {
    match load(DataSet::Mnist10k, None).context("loading MNIST-10k")? {
        Loaded::Images(d) => Ok(d),
        Loaded::Text(_) => bail!("MNIST-10k did not load as images"),
    }
}

/// Trains `spec` on `data` with the MLP of `shape` (hidden `Linear` layers without bias, so
/// the normalized weights are exactly scale-invariant), evaluating `evals` times on the whole
/// test split.
///
/// # Errors
/// An optimizer the core rejects, adapter failures. Divergence is not an error.
pub fn run_one(
    spec: &RunSpec,
    shape: &ModelShape,
    seed: u64,
    evals: u64,
    data: Arc<ImageData>,
) -> anyhow::Result<Trace> {
    let eval_device = Device::default();
    let train_device = eval_device.clone().autodiff();
    let mut init = Init::new(seed ^ INIT_STREAM, &train_device);
    let side = data.train.side;
    let model = MlpConfig {
        d_in: side * side,
        hidden: shape.hidden,
        depth: shape.depth,
        classes: IMAGE_CLASSES,
    }
    .init_with(&mut init, false);
    let config = TrainConfig {
        optimizer: spec.preset(),
        steps: spec.steps,
        batch_size: shape.batch,
        seed,
        eval_every: (spec.steps / evals.max(1)).max(1),
        eval_batches: None,
        eval_at_x: true,
        bn_recalibration: 0,
        ..TrainConfig::default_for(Task::MnistMlp)
    };
    let options = LoopOptions {
        batch_norm: false,
        tag_rules: tag_rules(),
    };
    let mut batches = ShiftedBatches::new(data, shape.batch, seed, shape.max_shift);
    let mut sink = TraceSink::default();
    let started = Instant::now();
    let outcome = train_loop_with(
        model,
        &mut batches,
        &config,
        &options,
        &train_device,
        &eval_device,
        None,
        Some(&mut sink as &mut dyn MetricsSink),
    )?;
    Ok(Trace {
        spec: *spec,
        layers: sink.layers,
        points: sink.points,
        evals: sink.evals,
        diverged: outcome.diverged,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The protocol as an [`experiment::Task`]: [`run_one`] on the shared data; the bar counts steps.
struct Protocol<'a> {
    cfg: &'a NormsConfig,
    data: Arc<ImageData>,
    /// Finished runs on disk (`OUT/finished/`).
    store: RunStore,
}

impl experiment::Task for Protocol<'_> {
    type Spec = RunSpec;
    type Output = Trace;

    fn run(&self, spec: &RunSpec, _bar: &ProgressBar) -> anyhow::Result<Trace> {
        let c = self.cfg;
        run_one(spec, &c.model, c.seed, c.evals, Arc::clone(&self.data))
    }

    fn describe(&self, spec: &RunSpec) -> String {
        spec.to_string()
    }

    fn weight(&self, spec: &RunSpec) -> u64 {
        spec.steps
    }

    fn load(&self, spec: &RunSpec) -> Option<Trace> {
        self.store.load(spec)
    }

    fn save(&self, spec: &RunSpec, trace: &Trace) -> anyhow::Result<()> {
        self.store.save(spec, trace)
    }

    /// Longest runs first, so that the workers finish together.
    fn cost(&self, spec: &RunSpec) -> u64 {
        spec.steps
    }
}

/// Runs every spec of `specs` on `cfg.jobs` workers ([`Runner`]); returns the traces in spec
/// order. Each finished run is kept in `OUT/finished/`; with `--resume` the runs found there
/// for the same protocol are not trained again.
///
/// # Errors
/// Data that cannot be loaded, an unwritable output folder, a worker pool that cannot be
/// built, the first failed run.
pub fn run_all(cfg: &NormsConfig, specs: &[RunSpec]) -> anyhow::Result<Vec<Trace>> {
    let task = Protocol {
        cfg,
        data: mnist()?,
        store: RunStore::new(&cfg.out.join("finished"), &cfg.run_context(), cfg.resume)?,
    };
    let runner = Runner {
        jobs: cfg.jobs,
        verbose: cfg.verbose,
        worker_bars: false,
        unit: "steps",
    };
    let total = specs.iter().map(|s| s.steps).sum();
    let done = runner.run(&task, specs.to_vec(), total)?;
    Ok(done.into_iter().map(|(_, t)| t).collect())
}
