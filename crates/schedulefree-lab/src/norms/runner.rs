//! Running the protocol: the model and its tags, one run through the training loop of
//! `sflab train`, and `jobs` workers each on its own single-threaded rayon pool (burn's CPU
//! kernels use the current pool, so a run never spreads over more than one core and its
//! result does not depend on the other runs).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use schedulefree_burn::TagRules;

use super::augment::ShiftedBatches;
use super::config::{ModelShape, NormsConfig};
use super::grid::RunSpec;
use super::trace::{Trace, TraceSink};
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
    )
    .with_context(|| format!("run {spec}"))?;
    Ok(Trace {
        spec: *spec,
        layers: sink.layers,
        points: sink.points,
        evals: sink.evals,
        diverged: outcome.diverged,
        seconds: started.elapsed().as_secs_f64(),
    })
}

struct Queue {
    pending: VecDeque<(usize, RunSpec)>,
    done: Vec<(usize, Trace)>,
    error: Option<anyhow::Error>,
}

/// Runs every spec of `cfg.specs()` on `cfg.jobs` workers; returns the traces in spec order.
///
/// # Errors
/// Data that cannot be loaded, a worker pool that cannot be built, the first failed run.
pub fn run_all(cfg: &NormsConfig, specs: &[RunSpec]) -> anyhow::Result<Vec<Trace>> {
    let data = mnist()?;
    // Longest runs first, so that the workers finish together.
    let mut order: Vec<(usize, RunSpec)> = specs.iter().copied().enumerate().collect();
    order.sort_by_key(|(i, s)| (std::cmp::Reverse(s.steps), *i));
    let queue = Mutex::new(Queue {
        pending: order.into(),
        done: Vec::new(),
        error: None,
    });
    let bar = ProgressBar::with_draw_target(
        Some(specs.iter().map(|s| s.steps).sum()),
        if cfg.verbose {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {percent}% of steps (eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(250));
    let total = specs.len();
    std::thread::scope(|scope| {
        for _ in 0..cfg.jobs.min(total.max(1)) {
            let (queue, bar, data) = (&queue, &bar, &data);
            scope.spawn(move || {
                let lock = || queue.lock().unwrap_or_else(|p| p.into_inner());
                let pool = match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
                    Ok(p) => p,
                    Err(e) => {
                        lock()
                            .error
                            .get_or_insert(anyhow::Error::new(e).context("building a worker pool"));
                        return;
                    }
                };
                loop {
                    let next = {
                        let mut q = lock();
                        if q.error.is_some() {
                            return;
                        }
                        q.pending.pop_front()
                    };
                    let Some((i, spec)) = next else { return };
                    let result = pool.install(|| {
                        run_one(&spec, &cfg.model, cfg.seed, cfg.evals, Arc::clone(data))
                    });
                    let mut q = lock();
                    match result {
                        Ok(t) => {
                            q.done.push((i, t));
                            bar.inc(spec.steps);
                            bar.set_message(format!("{}/{total} runs", q.done.len()));
                        }
                        Err(e) => {
                            q.error.get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    let q = queue.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = q.error {
        return Err(e);
    }
    let mut done = q.done;
    done.sort_by_key(|(i, _)| *i);
    Ok(done.into_iter().map(|(_, t)| t).collect())
}
