//! One training run: a method, base, lr and seed on one (standardised) dataset.

use anyhow::Context;
use schedulefree::schedule::ScheduleConfig;
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

/// Global gradient norms of one update, as reported by the optimizer
/// ([`schedulefree::StepInfo`]); the input of schedule refinement (arXiv 2310.07831).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StepNorms {
    /// Completed updates before this one (0-based update index).
    pub step: u64,
    /// `‖g‖₂` of the minibatch gradient.
    pub grad_l2: f64,
    /// `‖g‖₁` of the minibatch gradient.
    pub grad_l1: f64,
}

/// Optional extras of [`train_with`].
#[derive(Debug, Default)]
pub struct TrainOptions<'a> {
    /// Replaces the method's schedule (warmup included), see [`methods::build`].
    pub schedule: Option<&'a ScheduleConfig>,
    /// Receives the gradient norms of every update, in order (cleared first).
    pub norms: Option<&'a mut Vec<StepNorms>>,
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
    train_with(prep, spec, settings, TrainOptions::default())
}

/// Updates of a run on `prep` with `settings`.
pub fn total_steps(prep: &Prepared, settings: &TrainSettings) -> u64 {
    settings.steps_per_epoch(prep.data.train.rows()) * settings.epochs as u64
}

/// [`train`] with a schedule override and/or a log of every update's gradient norms (a
/// diverged run logs the updates it completed).
///
/// # Errors
/// As [`train`]; also a method that needs a schedule ([`Method::needs_schedule`]) without
/// `options.schedule`.
pub fn train_with(
    prep: &Prepared,
    spec: &RunSpec,
    settings: &TrainSettings,
    options: TrainOptions<'_>,
) -> anyhow::Result<RunResult> {
    let model = &prep.model;
    let train = &prep.data.train;
    let total = total_steps(prep, settings);
    let warmup = settings.warmup_steps(total);
    let mut opt = methods::build(
        spec.method,
        spec.base,
        spec.lr,
        total,
        warmup,
        options.schedule,
    )?;
    let mut norms = options.norms;
    if let Some(log) = norms.as_deref_mut() {
        log.clear();
        log.reserve(total as usize);
    }
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
                Ok(info) => {
                    if let Some(log) = norms.as_deref_mut() {
                        log.push(StepNorms {
                            step,
                            grad_l2: info.grad_l2,
                            grad_l1: info.grad_l1,
                        });
                    }
                }
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
