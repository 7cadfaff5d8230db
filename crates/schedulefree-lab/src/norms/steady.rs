//! Experiment 1: measured vs predicted steady-state norms of the normalized weights under a
//! constant lr (Van Laarhoven, arXiv 1706.05350; AdamC, arXiv 2506.02285v2).
//!
//! For `w ← (1 − κ)·w − γ·u` with `u ⟂ w` the mean squares satisfy, once the norm has
//! settled, `(2κ − κ²)·E‖w‖² = γ²·E‖u‖²`. So over the last 25 % of the run
//! ([`STEADY_FROM`]):
//! * SGD (`u = g`): measured `sqrt(E‖g‖²/E‖w‖²)` against `sqrt(2κ − κ²)/γ` with `κ = γλ`,
//!   i.e. `sqrt(2λ/γ − λ²)`;
//! * AdamW: measured `sqrt(E‖w‖²)` against `γ·sqrt(E‖u‖²)/sqrt(2κ − κ²)`, with Adam's
//!   measured direction `u` (as [`schedulefree::ParamDiagnostics::predicted_weight_norm`]).
//!
//! The AdamW prediction assumes `u ⟂ w` and steps uncorrelated over time, i.e. β1 = 0
//! (the scale-invariant simulations behind this prediction assume exactly that). With momentum the directions are
//! an EMA of the normalized gradients `ĝ = g/(√v̂ + ε)`; if those are uncorrelated noise,
//! `E‖u‖² = (1 − β1)/(1 + β1)·E‖ĝ‖²` while the norm's random walk is driven by `E‖ĝ‖²` per
//! step (the EMA's weights sum to 1), so the prediction from `‖u‖` is short by
//! `sqrt((1 + β1)/(1 − β1))` ([`SteadyRow::predicted_momentum`], my derivation, reported
//! beside the plain one).
//!
//! Means of squares rather than of norms: the identity is one of mean squares. Each hidden
//! weight matrix is scale-invariant on its own (LayerNorm after a bias-free `Linear`), so the
//! prediction holds per layer; the table reports all normalized weights combined and the
//! worst layer.

use serde::Serialize;

use super::grid::{ADAM_BETA1, LearnerKind};
use super::table::{num, pct};
use super::trace::{Norm, Trace, mean};
use crate::output::table::Table;

/// Start of the averaging window, as a fraction of the run.
pub const STEADY_FROM: f64 = 0.75;

/// One run of experiment 1.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SteadyRow {
    /// `SGD` or `AdamW`.
    pub method: String,
    /// lr `γ`.
    pub lr: f64,
    /// Weight decay `λ`.
    pub weight_decay: f64,
    /// Relaxation time `1/(2γλ)` in steps.
    pub relaxation_steps: f64,
    /// Steps `T`.
    pub steps: u64,
    /// `ratio` (SGD: `‖g‖/‖w‖`) or `weight_norm` (AdamW: `‖w‖`).
    pub quantity: String,
    /// Measured value, all normalized weights combined.
    pub measured: f64,
    /// Predicted value.
    pub predicted: f64,
    /// `measured/predicted − 1`.
    pub rel_error: f64,
    /// For AdamW with momentum: `predicted·sqrt((1 + β1)/(1 − β1))` (module docs); NaN
    /// otherwise.
    pub predicted_momentum: f64,
    /// The largest `|measured/predicted − 1|` over the single layers.
    pub worst_layer_error: f64,
    /// Final held-out loss.
    pub eval_loss: f64,
    /// Whether the run diverged.
    pub diverged: bool,
}

/// `(measured, predicted)` for one layer (`None`: combined).
fn measure(t: &Trace, layer: Option<usize>) -> (f64, f64) {
    let w = t.rms_norm(Norm::Weight, layer, STEADY_FROM, 1.0);
    let u = t.rms_norm(Norm::Update, layer, STEADY_FROM, 1.0);
    let g = t.rms_norm(Norm::Grad, layer, STEADY_FROM, 1.0);
    let kappa = mean(t.layer_window(layer, STEADY_FROM, 1.0).map(|p| p.kappa));
    let lr = mean(t.window(STEADY_FROM, 1.0).map(|p| p.lr));
    let ratio = (2.0 * kappa - kappa * kappa).max(0.0).sqrt() / lr;
    match t.spec.learner {
        LearnerKind::Sgd => (g / w, ratio),
        _ => (w, u / ratio),
    }
}

/// The row of `t`.
pub fn analyse(t: &Trace) -> SteadyRow {
    let (measured, predicted) = measure(t, None);
    let worst_layer_error = (0..t.layers.len())
        .map(|i| {
            let (m, p) = measure(t, Some(i));
            (m / p - 1.0).abs()
        })
        .fold(f64::NAN, f64::max);
    SteadyRow {
        method: t.spec.method(),
        lr: t.spec.lr,
        weight_decay: t.spec.weight_decay,
        relaxation_steps: t.spec.relaxation_steps(),
        steps: t.spec.steps,
        quantity: match t.spec.learner {
            LearnerKind::Sgd => "ratio".into(),
            _ => "weight_norm".into(),
        },
        measured,
        predicted,
        rel_error: measured / predicted - 1.0,
        predicted_momentum: match t.spec.learner {
            LearnerKind::Adam => predicted * ((1.0 + ADAM_BETA1) / (1.0 - ADAM_BETA1)).sqrt(),
            _ => f64::NAN,
        },
        worst_layer_error,
        eval_loss: t.final_eval_loss(),
        diverged: t.diverged,
    }
}

/// The markdown table of experiment 1.
pub fn table(rows: &[SteadyRow]) -> Table {
    let mut t = Table::new([
        "method",
        "γ",
        "λ",
        "1/(2γλ)",
        "quantity",
        "measured",
        "predicted",
        "rel. error",
        "worst layer",
        "pred. ×√((1+β1)/(1−β1))",
        "eval loss",
    ]);
    for r in rows {
        t.push(vec![
            r.method.clone(),
            num(r.lr),
            num(r.weight_decay),
            format!("{:.0}", r.relaxation_steps),
            if r.quantity == "ratio" {
                "‖g‖/‖w‖"
            } else {
                "‖w‖"
            }
            .into(),
            num(r.measured),
            num(r.predicted),
            pct(r.rel_error),
            format!("{:.1} %", 100.0 * r.worst_layer_error),
            if r.predicted_momentum.is_nan() {
                "—".into()
            } else {
                format!(
                    "{} ({})",
                    num(r.predicted_momentum),
                    pct(r.measured / r.predicted_momentum - 1.0)
                )
            },
            num(r.eval_loss),
        ]);
    }
    t
}
