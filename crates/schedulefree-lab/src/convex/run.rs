//! One training run: a method, base, lr and seed on one (standardised) dataset.

use anyhow::Context;
use schedulefree::{Param, StepError};
use serde::Serialize;

use super::config::{Base, Method};
use super::methods;
use crate::data::Dataset;
use crate::data::shuffle::EpochOrder;
use crate::model::{LogReg, Scratch};

/// Name under which the flat parameter vector is registered with the optimizer.
const PARAM: &str = "theta";

/// A dataset ready for training: standardised on its train split, with its model shape.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The standardised dataset.
    pub data: Dataset,
    /// The softmax-regression model for it.
    pub model: LogReg,
}

/// What one run trains.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RunSpec {
    /// Index into the sweep's dataset list.
    pub dataset: usize,
    /// Method.
    pub method: Method,
    /// Base learner.
    pub base: Base,
    /// Peak lr.
    pub lr: f64,
    /// Seed of the minibatch order (the same for every method and lr: common random numbers).
    pub seed: u64,
}

/// Run length and batch size shared by every run of a sweep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainSettings {
    /// Epochs.
    pub epochs: usize,
    /// Minibatch size.
    pub batch: usize,
    /// Warmup as a fraction of the run's updates.
    pub warmup_fraction: f64,
}

impl TrainSettings {
    /// Updates per epoch for `rows` training rows (the last batch may be short).
    pub fn steps_per_epoch(&self, rows: usize) -> u64 {
        rows.div_ceil(self.batch) as u64
    }

    /// Warmup updates of a run with `total` updates: `round(fraction · total)`, at least 1
    /// when the fraction is positive, at most `total`.
    pub fn warmup_steps(&self, total: u64) -> u64 {
        if self.warmup_fraction <= 0.0 {
            return 0;
        }
        ((self.warmup_fraction * total as f64).round() as u64)
            .max(1)
            .min(total)
    }
}

/// Metrics of the returned point `x` after `step` updates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CurvePoint {
    /// Completed updates.
    pub step: u64,
    /// Completed epochs.
    pub epoch: usize,
    /// Mean cross-entropy over the whole train split.
    pub train_loss: f64,
    /// Train accuracy in `[0, 1]`.
    pub train_acc: f64,
    /// Test accuracy, if the dataset has a test split.
    pub test_acc: Option<f64>,
}

/// The outcome of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// What was trained.
    pub spec: RunSpec,
    /// One point before training and one after every epoch (fewer if the run diverged).
    pub curve: Vec<CurvePoint>,
    /// The loss or a gradient became non-finite; the run was stopped.
    pub diverged: bool,
}

impl RunResult {
    /// Final train loss (`+∞` for a diverged run, so it is never selected as best).
    pub fn final_loss(&self) -> f64 {
        match self.curve.last() {
            Some(p) if !self.diverged && p.train_loss.is_finite() => p.train_loss,
            _ => f64::INFINITY,
        }
    }

    /// The last recorded point, if any.
    pub fn last(&self) -> Option<&CurvePoint> {
        self.curve.last()
    }
}

fn evaluate(prep: &Prepared, x: &[f32], step: u64, epoch: usize) -> anyhow::Result<CurvePoint> {
    let train = prep.model.evaluate(x, &prep.data.train)?;
    let test_acc = match &prep.data.test {
        Some(t) => Some(prep.model.evaluate(x, t)?.accuracy),
        None => None,
    };
    Ok(CurvePoint {
        step,
        epoch,
        train_loss: train.loss,
        train_acc: train.accuracy,
        test_acc,
    })
}

/// Train one run from zero parameters and evaluate the returned point `x` (the optimizer's
/// eval point, via `eval_params_into`) before training and after every epoch.
///
/// The minibatch order is reshuffled every epoch by a ChaCha8 stream seeded with
/// `spec.seed`. After setup, an update allocates nothing: the gradient goes into a
/// preallocated buffer and the optimizer steps the `f32` parameters in place.
///
/// # Errors
/// Optimizer construction or model errors (caller bugs); divergence is not an error.
pub fn train(
    prep: &Prepared,
    spec: &RunSpec,
    settings: &TrainSettings,
) -> anyhow::Result<RunResult> {
    let model = &prep.model;
    let train = &prep.data.train;
    let steps_per_epoch = settings.steps_per_epoch(train.rows());
    let total = steps_per_epoch * settings.epochs as u64;
    let warmup = settings.warmup_steps(total);
    let mut opt = methods::build(spec.method, spec.base, spec.lr, total, warmup)?;
    let n_params = model.num_params();
    opt.add_param_to(0, PARAM, &[n_params])?;
    let mut theta: Vec<f32> = model.zeros();
    let mut grad: Vec<f32> = model.zeros();
    let mut x: Vec<f32> = model.zeros();
    let mut scratch = Scratch::<f32>::new(model);
    let mut order = EpochOrder::new(train.rows(), spec.seed);

    let mut curve = Vec::with_capacity(settings.epochs + 1);
    curve.push(evaluate(prep, &theta, 0, 0)?);
    let mut step = 0u64;
    let mut diverged = false;
    'epochs: for epoch in 1..=settings.epochs {
        for batch in order.next_epoch().chunks(settings.batch) {
            let loss = model.loss_grad(&theta, train, batch, &mut grad, &mut scratch)?;
            if !loss.is_finite() {
                diverged = true;
                break 'epochs;
            }
            match opt.step(&mut [Param::new(PARAM, &mut theta, &grad)]) {
                Ok(_) => {}
                Err(StepError::NonFiniteGradient(_)) => {
                    diverged = true;
                    break 'epochs;
                }
                Err(e) => return Err(e).context("optimizer step"),
            }
            step += 1;
        }
        opt.eval_params_into(PARAM, &theta, &mut x)?;
        let point = evaluate(prep, &x, step, epoch)?;
        curve.push(point);
        if !point.train_loss.is_finite() {
            diverged = true;
            break;
        }
    }
    Ok(RunResult {
        spec: *spec,
        curve,
        diverged,
    })
}
