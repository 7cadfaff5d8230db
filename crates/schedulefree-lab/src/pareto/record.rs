//! What the report needs of a finished run: its spec and its evaluations.

use serde::{Deserialize, Serialize};

use super::method::RunSpec;
use crate::train::RunResult;

/// One evaluation of a run (at `x` for Schedule-Free, the last iterate for the schedules).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    /// Completed updates.
    pub step: u64,
    /// Mean training loss over the updates since the previous evaluation (at `y` for
    /// Schedule-Free: the point where gradients are taken).
    pub train_loss: f64,
    /// Mean loss on the fixed held-out subset.
    pub eval_loss: f64,
    /// Accuracy on the held-out subset, in `[0, 1]` (next-character accuracy for the text
    /// tasks).
    pub eval_accuracy: f64,
}

/// A finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// What was trained.
    pub spec: RunSpec,
    /// Evaluations in step order.
    pub evals: Vec<EvalPoint>,
    /// Whether the run stopped on a non-finite loss.
    pub diverged: bool,
    /// Wall time of the run in seconds.
    pub seconds: f64,
}

impl RunRecord {
    /// The record of `result`, trained as `spec`.
    pub fn from_result(spec: RunSpec, result: &RunResult) -> RunRecord {
        RunRecord {
            spec,
            evals: result
                .evals
                .iter()
                .map(|e| EvalPoint {
                    step: e.step,
                    train_loss: e.train_loss,
                    eval_loss: e.eval_loss,
                    eval_accuracy: e.eval_accuracy,
                })
                .collect(),
            diverged: result.diverged,
            seconds: result.seconds,
        }
    }

    /// The evaluation after exactly `step` updates, if the run made one.
    pub fn at(&self, step: u64) -> Option<&EvalPoint> {
        self.evals.iter().find(|e| e.step == step)
    }

    /// Held-out loss after `step` updates for ranking: `+∞` when the run diverged before
    /// reaching `step` or the loss is not finite; NaN when a run that did not diverge has no
    /// evaluation there (a protocol error, shown as such rather than hidden).
    pub fn loss_at(&self, step: u64) -> f64 {
        match self.at(step) {
            Some(e) if e.eval_loss.is_finite() => e.eval_loss,
            Some(_) => f64::INFINITY,
            None if self.diverged => f64::INFINITY,
            None => f64::NAN,
        }
    }

    /// Held-out accuracy after `step` updates (NaN if absent or diverged).
    pub fn accuracy_at(&self, step: u64) -> f64 {
        match self.at(step) {
            Some(e) if e.eval_loss.is_finite() => e.eval_accuracy,
            _ => f64::NAN,
        }
    }

    /// Held-out loss at the end of the run ([`Self::loss_at`] its length).
    pub fn final_loss(&self) -> f64 {
        self.loss_at(self.spec.steps)
    }
}
