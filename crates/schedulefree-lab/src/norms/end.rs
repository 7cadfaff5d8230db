//! Experiment 2: gradient and weight norms of the normalized weights at the end of a
//! decaying schedule, standard vs corrected decay vs projection (the AdamC
//! paper's experiment, arXiv 2506.02285v2).
//!
//! With standard decay the steady state follows `γ_t`: SGD's `‖g‖/‖w‖ → sqrt(2λ/γ_t)` and
//! AdamW's `‖w‖ → sqrt(γ_t‖u‖²/(2λ))` as long as the relaxation time `1/(2γ_tλ)` is short,
//! so near the end `‖w‖` shrinks and `‖g‖ ∝ 1/‖w‖` rises. Corrected decay (`κ = λγ_t²/γ_max`)
//! and projection keep both flat. The summary statistic is the mean combined `‖g‖` over the
//! last 10 % of steps divided by its mean over the middle 10 % (45–55 %).

use serde::Serialize;

use super::table::num;
use super::trace::{Norm, Trace};
use crate::output::table::Table;

/// The middle window.
pub const MIDDLE: (f64, f64) = (0.45, 0.55);
/// The last window.
pub const LAST: (f64, f64) = (0.9, 1.0);
/// The window of the final training loss (minibatch losses, last 5 %).
pub const FINAL_LOSS: (f64, f64) = (0.95, 1.0);

/// One run of experiment 2.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndRow {
    /// `linear` or `cosine`.
    pub schedule: String,
    /// `AdamW`, `AdamC`, `Adam+proj`, `SGD`, `SGDC`, `SGD+proj`.
    pub method: String,
    /// Peak lr.
    pub lr: f64,
    /// Weight decay `λ`.
    pub weight_decay: f64,
    /// Mean `‖g‖` over the middle 10 %.
    pub grad_middle: f64,
    /// Mean `‖g‖` over the last 10 %.
    pub grad_last: f64,
    /// `grad_last / grad_middle`.
    pub grad_ratio: f64,
    /// Mean `‖w‖` over the middle 10 %.
    pub weight_middle: f64,
    /// Mean `‖w‖` over the last 10 %.
    pub weight_last: f64,
    /// `weight_last / weight_middle`.
    pub weight_ratio: f64,
    /// `grad_ratio · weight_ratio`: the change of `‖g‖·‖w‖`, the gradient at unit weight
    /// norm (for scale-invariant weights the part of `‖g‖`'s change not due to `‖w‖`).
    pub unit_grad_ratio: f64,
    /// Mean minibatch training loss over the last 5 % of steps.
    pub train_loss: f64,
    /// Held-out loss at the end.
    pub eval_loss: f64,
    /// Held-out accuracy at the end.
    pub eval_accuracy: f64,
    /// Whether the run diverged.
    pub diverged: bool,
}

/// The row of `t`.
pub fn analyse(t: &Trace) -> EndRow {
    let m = |n, (a, b): (f64, f64)| t.mean_norm(n, None, a, b);
    let (gm, gl) = (m(Norm::Grad, MIDDLE), m(Norm::Grad, LAST));
    let (wm, wl) = (m(Norm::Weight, MIDDLE), m(Norm::Weight, LAST));
    EndRow {
        schedule: t.spec.shape.name().into(),
        method: t.spec.method(),
        lr: t.spec.lr,
        weight_decay: t.spec.weight_decay,
        grad_middle: gm,
        grad_last: gl,
        grad_ratio: gl / gm,
        weight_middle: wm,
        weight_last: wl,
        weight_ratio: wl / wm,
        unit_grad_ratio: (gl / gm) * (wl / wm),
        train_loss: t.mean_loss(FINAL_LOSS.0, FINAL_LOSS.1),
        eval_loss: t.final_eval_loss(),
        eval_accuracy: t.final_eval_accuracy(),
        diverged: t.diverged,
    }
}

/// The markdown table of experiment 2.
pub fn table(rows: &[EndRow]) -> Table {
    let mut t = Table::new([
        "schedule",
        "method",
        "γ",
        "λ",
        "‖g‖ mid",
        "‖g‖ last",
        "‖g‖ last/mid",
        "‖w‖ last/mid",
        "‖g‖‖w‖ last/mid",
        "train loss",
        "eval loss",
        "eval acc",
    ]);
    for r in rows {
        t.push(vec![
            r.schedule.clone(),
            r.method.clone() + if r.diverged { " (diverged)" } else { "" },
            num(r.lr),
            num(r.weight_decay),
            num(r.grad_middle),
            num(r.grad_last),
            format!("{:.3}", r.grad_ratio),
            format!("{:.3}", r.weight_ratio),
            format!("{:.3}", r.unit_grad_ratio),
            num(r.train_loss),
            num(r.eval_loss),
            format!("{:.2} %", 100.0 * r.eval_accuracy),
        ]);
    }
    t
}
