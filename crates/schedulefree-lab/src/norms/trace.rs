//! What one run records: per step the loss, the effective step and the norm diagnostics of
//! the normalized weights; the evaluations; and window averages over parts of the run.

use serde::{Deserialize, Serialize};

use super::grid::RunSpec;
use crate::train::EvalRecord;
use crate::train::metrics::{DiagnosticsLevel, MetricsSink, StepMetrics};

/// Norms of one normalized weight (or of all of them combined) in one step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LayerPoint {
    /// `‖g‖₂`.
    pub grad: f64,
    /// `‖w‖₂` at the gradient point, before the step.
    pub weight: f64,
    /// `‖u‖₂` of the learner's direction.
    pub update: f64,
    /// Per-step decay factor `κ`.
    pub kappa: f64,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TracePoint {
    /// Completed steps after it.
    pub step: u64,
    /// Minibatch loss before the step.
    pub train_loss: f64,
    /// Effective step `γ` (lr × schedule × learner factor).
    pub lr: f64,
    /// The learner's factor in `lr`.
    pub lr_factor: f64,
    /// Whether the optimizer skipped it (non-finite gradient).
    pub skipped: bool,
    /// The normalized weights, in [`Trace::layers`] order (empty if skipped).
    pub layers: Vec<LayerPoint>,
}

impl TracePoint {
    /// All normalized weights as one vector: norms combined by root-sum-of-squares, `κ` of
    /// the first (it is per group). `None` without layers.
    pub fn combined(&self) -> Option<LayerPoint> {
        let first = self.layers.first()?;
        let rss =
            |f: fn(&LayerPoint) -> f64| self.layers.iter().map(|l| f(l) * f(l)).sum::<f64>().sqrt();
        Some(LayerPoint {
            grad: rss(|l| l.grad),
            weight: rss(|l| l.weight),
            update: rss(|l| l.update),
            kappa: first.kappa,
        })
    }
}

/// A finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// What ran.
    pub spec: RunSpec,
    /// Module paths of the normalized weights.
    pub layers: Vec<String>,
    /// Every completed step.
    pub points: Vec<TracePoint>,
    /// Evaluations in step order.
    pub evals: Vec<EvalRecord>,
    /// Whether a training loss was non-finite (the run stopped there).
    pub diverged: bool,
    /// Wall time of the run in seconds.
    pub seconds: f64,
}

/// Which norm of a [`LayerPoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    /// `‖g‖`.
    Grad,
    /// `‖w‖`.
    Weight,
    /// `‖u‖`.
    Update,
}

impl Norm {
    /// The value in `p`.
    pub fn of(self, p: &LayerPoint) -> f64 {
        match self {
            Self::Grad => p.grad,
            Self::Weight => p.weight,
            Self::Update => p.update,
        }
    }
}

/// Mean of `values` (NaN if empty).
pub fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { f64::NAN } else { sum / n as f64 }
}

impl Trace {
    /// The points with `from·T < step ≤ to·T` (`T` = the planned steps), in order.
    pub fn window(&self, from: f64, to: f64) -> impl Iterator<Item = &TracePoint> {
        let t = self.spec.steps as f64;
        self.points
            .iter()
            .filter(move |p| (p.step as f64) > from * t && (p.step as f64) <= to * t)
    }

    /// The layer points of `layer` (`None`: combined) in the window `(from, to]`.
    pub fn layer_window(
        &self,
        layer: Option<usize>,
        from: f64,
        to: f64,
    ) -> impl Iterator<Item = LayerPoint> + '_ {
        self.window(from, to).filter_map(move |p| match layer {
            Some(i) => p.layers.get(i).copied(),
            None => p.combined(),
        })
    }

    /// Mean of `norm` over the window (NaN if it holds no measured step).
    pub fn mean_norm(&self, norm: Norm, layer: Option<usize>, from: f64, to: f64) -> f64 {
        mean(self.layer_window(layer, from, to).map(|p| norm.of(&p)))
    }

    /// Root mean square of `norm` over the window (the steady state is a statement about
    /// mean squares: `(2κ − κ²)·E‖w‖² = γ²·E‖u‖²`).
    pub fn rms_norm(&self, norm: Norm, layer: Option<usize>, from: f64, to: f64) -> f64 {
        mean(
            self.layer_window(layer, from, to)
                .map(|p| norm.of(&p).powi(2)),
        )
        .sqrt()
    }

    /// Mean minibatch training loss over the window.
    pub fn mean_loss(&self, from: f64, to: f64) -> f64 {
        mean(self.window(from, to).map(|p| p.train_loss))
    }

    /// The last evaluation's held-out loss (NaN if none).
    pub fn final_eval_loss(&self) -> f64 {
        self.evals.last().map_or(f64::NAN, |e| e.eval_loss)
    }

    /// The last evaluation's held-out accuracy (NaN if none).
    pub fn final_eval_accuracy(&self) -> f64 {
        self.evals.last().map_or(f64::NAN, |e| e.eval_accuracy)
    }
}

/// A [`MetricsSink`] that keeps what a [`Trace`] needs: diagnostics of every step, only the
/// normalized weights' (no per-parameter norm pass).
#[derive(Debug, Clone, Default)]
pub struct TraceSink {
    /// Module paths of the normalized weights (from the first measured step).
    pub layers: Vec<String>,
    /// Steps so far.
    pub points: Vec<TracePoint>,
    /// Evaluations so far.
    pub evals: Vec<EvalRecord>,
}

impl MetricsSink for TraceSink {
    fn step(&mut self, m: &StepMetrics) -> anyhow::Result<()> {
        let normalized: Vec<_> = m.diagnostics.iter().filter(|d| d.normalized).collect();
        if self.layers.is_empty() {
            self.layers = normalized.iter().map(|d| d.name.clone()).collect();
        }
        let layers = if normalized.iter().map(|d| &d.name).eq(self.layers.iter()) {
            normalized
                .iter()
                .map(|d| LayerPoint {
                    grad: d.grad_norm,
                    weight: d.weight_norm,
                    update: d.update_norm,
                    kappa: d.kappa,
                })
                .collect()
        } else {
            Vec::new()
        };
        self.points.push(TracePoint {
            step: m.step,
            train_loss: m.train_loss,
            lr: m.lr,
            lr_factor: m.lr_factor,
            skipped: m.skipped,
            layers,
        });
        Ok(())
    }

    fn eval(&mut self, r: &EvalRecord) -> anyhow::Result<()> {
        self.evals.push(r.clone());
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    fn wants_param_norms(&self) -> bool {
        false
    }

    fn diagnostics(&self) -> DiagnosticsLevel {
        DiagnosticsLevel::EveryStep
    }
}
