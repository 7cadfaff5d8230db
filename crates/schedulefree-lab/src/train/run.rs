//! The training loop, generic over the model: steps at `y`, evaluations at `x`. Also driven
//! directly by `sflab norms` ([`train_loop_with`]), with its own model and tag rules.

use std::time::Instant;

use anyhow::Context;
use burn::optim::GradientsParams;
use burn::tensor::Device;
use indicatif::ProgressBar;
use schedulefree_burn::{ModelOptimizer, TagRules};

use super::batches::{Batch, Batches};
use super::metrics::{DiagnosticsLevel, LayerDiagnostics, MetricsSink, StepMetrics};
use super::{EvalRecord, TrainConfig};
use crate::nn::norms::param_norms;
use crate::nn::{Net, correct, cross_entropy};

/// What the loop produced (the caller adds the config and timing).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LoopOutcome {
    pub evals: Vec<EvalRecord>,
    pub diverged: bool,
    pub steps_done: u64,
}

/// Mean loss and accuracy of `model` (already in validation mode) over `set`.
fn evaluate<M: Net>(model: &M, set: &[Batch<M::Input>]) -> (f64, f64) {
    let (mut loss, mut hits, mut rows) = (0.0f64, 0i64, 0usize);
    for (input, targets) in set {
        let n = targets.dims()[0];
        let logits = model.logits(input.clone());
        loss += f64::from(cross_entropy(logits.clone(), targets.clone()).into_scalar::<f32>())
            * n as f64;
        hits += correct(logits, targets.clone()).into_scalar::<i64>();
        rows += n;
    }
    let rows = rows.max(1) as f64;
    (loss / rows, hits as f64 / rows)
}

/// What the loop needs beyond the [`TrainConfig`].
#[derive(Debug, Clone, Default)]
pub(crate) struct LoopOptions {
    /// Whether the model has BatchNorm layers whose statistics must be recomputed at `x`.
    pub batch_norm: bool,
    /// How the optimizer tags parameters (`normalized`, `no_decay`); default: no tags.
    pub tag_rules: TagRules,
}

/// [`train_loop_with`] without tag rules.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_loop<M, B>(
    model: M,
    batches: &mut B,
    config: &TrainConfig,
    batch_norm: bool,
    train_device: &Device,
    eval_device: &Device,
    progress: Option<&ProgressBar>,
    metrics: Option<&mut dyn MetricsSink>,
) -> anyhow::Result<LoopOutcome>
where
    M: Net,
    B: Batches<M::Input>,
{
    let options = LoopOptions {
        batch_norm,
        tag_rules: TagRules::new(),
    };
    train_loop_with(
        model,
        batches,
        config,
        &options,
        train_device,
        eval_device,
        progress,
        metrics,
    )
}

/// Runs `config.steps` steps of `model` on `batches` (training tensors on `train_device`,
/// evaluation on `eval_device`; `config.task` is not read). The optimizer tags parameters by
/// `options.tag_rules`, gets the minibatch loss when its learner needs one (Polyak), and
/// measures norm diagnostics when `metrics` asks for them ([`MetricsSink::diagnostics`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_loop_with<M, B>(
    mut model: M,
    batches: &mut B,
    config: &TrainConfig,
    options: &LoopOptions,
    train_device: &Device,
    eval_device: &Device,
    progress: Option<&ProgressBar>,
    mut metrics: Option<&mut dyn MetricsSink>,
) -> anyhow::Result<LoopOutcome>
where
    M: Net,
    B: Batches<M::Input>,
{
    let mut opt = ModelOptimizer::new(config.optimizer.clone())
        .context("building the optimizer")?
        .with_tag_rules(options.tag_rules.clone());
    let level = metrics
        .as_ref()
        .map_or(DiagnosticsLevel::Off, |m| m.diagnostics());
    opt.set_diagnostics(level != DiagnosticsLevel::Off);
    let needs_loss = opt.core().needs_loss();
    let batch_norm = options.batch_norm;
    let eval_set = batches.eval_set(
        config
            .eval_batches
            .map(|b| b.saturating_mul(config.batch_size)),
        eval_device,
    );
    let norms = metrics.as_ref().is_some_and(|m| m.wants_param_norms());
    let recalibrate =
        batch_norm && config.eval_at_x && opt.has_modes() && config.bn_recalibration > 0;
    let mut out = LoopOutcome {
        evals: Vec::new(),
        diverged: false,
        steps_done: 0,
    };
    let (mut loss_sum, mut loss_count) = (0.0f64, 0u64);
    let started = Instant::now();
    for step in 1..=config.steps {
        let (input, targets) = batches.next_train(train_device);
        let loss = cross_entropy(model.logits(input), targets);
        let train_loss = f64::from(loss.clone().into_scalar::<f32>());
        if !train_loss.is_finite() {
            out.diverged = true;
            break;
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let params = if norms {
            param_norms(&model, &grads)
        } else {
            Vec::new()
        };
        let (next, info) = if needs_loss {
            opt.step_with_loss(model, grads, train_loss)
        } else {
            opt.step(model, grads)
        }
        .context("optimizer step")?;
        model = next;
        out.steps_done = step;
        let (lr, c) = (info.group.lr, info.group.c);
        loss_sum += train_loss;
        loss_count += 1;
        let eval_now =
            step == config.steps || (config.eval_every > 0 && step % config.eval_every == 0);
        if let Some(m) = metrics.as_deref_mut() {
            let measured = match level {
                DiagnosticsLevel::Off => false,
                DiagnosticsLevel::AtEvals => step == 1 || eval_now,
                DiagnosticsLevel::EveryStep => true,
            };
            let diagnostics = if measured {
                opt.diagnostics()
                    .iter()
                    .map(LayerDiagnostics::from)
                    .collect()
            } else {
                Vec::new()
            };
            m.step(&StepMetrics {
                step,
                train_loss,
                lr,
                lr_factor: info.group.lr_factor,
                c,
                skipped: info.skipped.is_some(),
                grad_l1: info.grad_l1,
                grad_l2: info.grad_l2,
                params,
                diagnostics,
            })?;
        }
        if let Some(p) = progress {
            p.inc(1);
        }
        if !eval_now {
            continue;
        }
        let mut at = if config.eval_at_x {
            opt.eval_module(&model)
                .context("computing the eval point x")?
        } else {
            model.clone()
        };
        if recalibrate {
            let inputs: Vec<M::Input> = (0..config.bn_recalibration)
                .map(|_| batches.next_recalibration(train_device))
                .collect();
            at = schedulefree_burn::recalibrate_batch_norm(at, inputs, |m: &M, x| {
                let _ = m.logits(x);
            })
            .context("recomputing BatchNorm statistics at x")?;
        }
        let (eval_loss, eval_accuracy) = evaluate(&at.valid(), &eval_set);
        let record = EvalRecord {
            step,
            train_loss: loss_sum / loss_count.max(1) as f64,
            eval_loss,
            eval_accuracy,
            lr,
            c,
        };
        (loss_sum, loss_count) = (0.0, 0);
        if let Some(p) = progress {
            p.set_message(format!(
                "eval loss {eval_loss:.4} acc {:.2}% ({:.1} steps/s)",
                100.0 * eval_accuracy,
                step as f64 / started.elapsed().as_secs_f64().max(1e-9)
            ));
        }
        if let Some(m) = metrics.as_deref_mut() {
            m.eval(&record)?;
        }
        out.evals.push(record);
    }
    if let Some(m) = metrics {
        m.flush()?;
    }
    Ok(out)
}
