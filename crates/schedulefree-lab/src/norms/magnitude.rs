//! Experiment 3: magnitude-based learners (Polyak, AdaGrad-Norm, COCOB, Prodigy) under no
//! decay, decoupled decay, corrected decay and projection (the AdamC
//! paper's setting, arXiv 2506.02285v2, with the learners of [`schedulefree::learner`]):
//! stability, the effective step they choose, and where the normalized weights go.

use std::fmt;

use serde::Serialize;

use super::table::num;
use super::trace::{Norm, Trace, mean};
use crate::output::table::Table;

/// Number of equal windows the training loss is averaged over to judge stability.
pub const LOSS_WINDOWS: usize = 20;
/// A run "blew up" if its last window's mean loss exceeds this multiple of its best
/// window's (and by more than [`BLOW_UP_MARGIN`]).
pub const BLOW_UP_FACTOR: f64 = 1.5;
/// Absolute margin of the blow-up test (nats), so that tiny losses do not count.
pub const BLOW_UP_MARGIN: f64 = 0.1;
/// A run "stalled" if its last window's mean loss is above this fraction of its first's.
pub const STALL_FRACTION: f64 = 0.9;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Learned and did not regress.
    Ok,
    /// A non-finite training loss stopped it.
    Diverged,
    /// The loss rose far above its best ([`BLOW_UP_FACTOR`]).
    BlowUp,
    /// The loss barely fell ([`STALL_FRACTION`]).
    Stalled,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "ok",
            Self::Diverged => "DIVERGED",
            Self::BlowUp => "BLOW-UP",
            Self::Stalled => "stalled",
        })
    }
}

/// One run of experiment 3.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MagnitudeRow {
    /// The learner.
    pub learner: String,
    /// The decay policy.
    pub decay: String,
    /// Weight decay `λ` (0 without decay).
    pub weight_decay: f64,
    /// Stability verdict.
    pub status: Status,
    /// Steps skipped by the optimizer (non-finite gradients).
    pub skipped: usize,
    /// Steps completed.
    pub steps_done: u64,
    /// Mean effective step `γ` over the run.
    pub mean_lr: f64,
    /// Mean effective step over the last 10 %.
    pub mean_lr_last: f64,
    /// Mean learner factor in `γ` over the run.
    pub mean_lr_factor: f64,
    /// Combined `‖w‖` of the normalized weights over the first 1 %.
    pub weight_first: f64,
    /// Combined `‖w‖` over the last 10 %.
    pub weight_last: f64,
    /// Combined `‖g‖` over the middle 10 %.
    pub grad_middle: f64,
    /// Combined `‖g‖` over the last 10 %.
    pub grad_last: f64,
    /// Mean training loss over the first window ([`LOSS_WINDOWS`]).
    pub loss_first: f64,
    /// Mean training loss over the last window.
    pub loss_last: f64,
    /// Lowest window mean of the training loss.
    pub loss_best: f64,
    /// Held-out loss at the end (NaN if diverged before the first evaluation).
    pub eval_loss: f64,
}

/// The stability verdict from the window means of the training loss.
pub fn status(diverged: bool, windows: &[f64]) -> Status {
    let finite: Vec<f64> = windows.iter().copied().filter(|v| v.is_finite()).collect();
    let (Some(&first), Some(&last)) = (finite.first(), finite.last()) else {
        return Status::Diverged;
    };
    if diverged {
        return Status::Diverged;
    }
    let best = finite.iter().copied().fold(f64::INFINITY, f64::min);
    if last > BLOW_UP_FACTOR * best && last - best > BLOW_UP_MARGIN {
        Status::BlowUp
    } else if last > STALL_FRACTION * first {
        Status::Stalled
    } else {
        Status::Ok
    }
}

/// The row of `t`.
pub fn analyse(t: &Trace) -> MagnitudeRow {
    let n = LOSS_WINDOWS as f64;
    let windows: Vec<f64> = (0..LOSS_WINDOWS)
        .map(|i| t.mean_loss(i as f64 / n, (i + 1) as f64 / n))
        .collect();
    let stepped = || t.points.iter().filter(|p| !p.skipped);
    let finite = |v: f64| v.is_finite();
    let loss_best = windows
        .iter()
        .copied()
        .filter(|v| finite(*v))
        .fold(f64::NAN, f64::min);
    MagnitudeRow {
        learner: t.spec.learner.label().into(),
        decay: t.spec.decay.label().into(),
        weight_decay: t.spec.weight_decay,
        status: status(t.diverged, &windows),
        skipped: t.points.iter().filter(|p| p.skipped).count(),
        steps_done: t.points.last().map_or(0, |p| p.step),
        mean_lr: mean(stepped().map(|p| p.lr)),
        mean_lr_last: mean(t.window(0.9, 1.0).filter(|p| !p.skipped).map(|p| p.lr)),
        mean_lr_factor: mean(stepped().map(|p| p.lr_factor)),
        weight_first: t.mean_norm(Norm::Weight, None, 0.0, 0.01),
        weight_last: t.mean_norm(Norm::Weight, None, 0.9, 1.0),
        grad_middle: t.mean_norm(Norm::Grad, None, 0.45, 0.55),
        grad_last: t.mean_norm(Norm::Grad, None, 0.9, 1.0),
        loss_first: windows[0],
        loss_last: windows[LOSS_WINDOWS - 1],
        loss_best,
        eval_loss: t.final_eval_loss(),
    }
}

/// The markdown table of experiment 3.
pub fn table(rows: &[MagnitudeRow]) -> Table {
    let mut t = Table::new([
        "learner",
        "decay",
        "λ",
        "status",
        "mean γ",
        "γ last 10 %",
        "mean factor",
        "‖w‖ first→last",
        "‖g‖ mid→last",
        "train loss first→last",
        "eval loss",
    ]);
    for r in rows {
        let status = if r.skipped > 0 {
            format!("{} ({} skipped)", r.status, r.skipped)
        } else {
            r.status.to_string()
        };
        t.push(vec![
            r.learner.clone(),
            r.decay.clone(),
            num(r.weight_decay),
            status,
            num(r.mean_lr),
            num(r.mean_lr_last),
            num(r.mean_lr_factor),
            format!("{} → {}", num(r.weight_first), num(r.weight_last)),
            format!("{} → {}", num(r.grad_middle), num(r.grad_last)),
            format!("{} → {}", num(r.loss_first), num(r.loss_last)),
            num(r.eval_loss),
        ]);
    }
    t
}
