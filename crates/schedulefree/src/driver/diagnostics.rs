//! Norm diagnostics of weight decay meeting normalization (Van Laarhoven, arXiv 1706.05350; AdamC, arXiv 2506.02285v2): per
//! parameter and per group, `‖g‖`, `‖w‖`, their ratio and its predicted steady state, and the
//! effective step size.

use super::Optimizer;
use crate::conversion::Conversion;
use crate::decay::Decay;
use crate::element::Element;
use crate::learner::Learner;
use crate::param::ParamTags;
use crate::schedule::Schedule;

/// Raw per-entry measurements of the latest step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct EntryDiag {
    /// Group step count after the step that measured them (0: never measured).
    pub step: u64,
    pub grad_sq: f64,
    pub weight_sq: f64,
    pub update_sq: f64,
    pub lr: f64,
    pub kappa: f64,
}

/// Norms of one parameter (or, from [`ParamDiagnostics::combine`], of several) in the step
/// that measured them, with the steady state that weight decay predicts.
///
/// For an update `w ← (1 − κ)·w − γ·u` with `u ⟂ w` (scale-invariant parameters) the norm
/// settles where `‖u‖/‖w‖ = sqrt(2κ − κ²)/γ` (Van Laarhoven, arXiv 1706.05350, for SGD; the same balance for Adam's direction): for SGD `u = g`, so
/// this is `‖g‖/‖w‖ = sqrt(2λ/γ − λ²)` under plain decay and `sqrt(2λ/γ_max)` under SGDC; for
/// Adam it gives `‖w‖ = γ‖u‖/sqrt(2κ − κ²) ≈ sqrt(γ‖u‖²/(2λ))`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ParamDiagnostics {
    /// Parameter name (for a combination, the first one's).
    pub name: String,
    /// Group index.
    pub group: usize,
    /// The parameter's tags.
    pub tags: ParamTags,
    /// Group step count after the measuring step.
    pub step: u64,
    /// `‖g‖₂` of the gradient passed.
    pub grad_norm: f64,
    /// `‖w‖₂` of the buffer at the gradient point (`y` for Schedule-Free), before the step.
    pub weight_norm: f64,
    /// `‖u‖₂` of the learner's direction (before decay terms); `= ‖g‖` for SGD.
    pub update_norm: f64,
    /// Effective step size `γ` (lr × schedule × learner factor).
    pub lr: f64,
    /// Per-step decay factor `κ` ([`crate::decay::DecayScalars::kappa`]).
    pub kappa: f64,
}

impl ParamDiagnostics {
    /// `‖g‖/‖w‖` (inf for a zero weight).
    pub fn ratio(&self) -> f64 {
        self.grad_norm / self.weight_norm
    }
    /// `‖u‖/‖w‖`.
    pub fn update_ratio(&self) -> f64 {
        self.update_norm / self.weight_norm
    }
    /// Predicted steady state of `‖u‖/‖w‖`: `sqrt(2κ − κ²)/γ` (= `‖g‖/‖w‖` for SGD); NaN when
    /// `γ = 0`, 0 without decay (the norm grows without bound).
    pub fn predicted_ratio(&self) -> f64 {
        (2.0 * self.kappa - self.kappa * self.kappa).max(0.0).sqrt() / self.lr
    }
    /// Predicted steady-state `‖w‖` given this step's `‖u‖`: `γ‖u‖/sqrt(2κ − κ²)` (inf
    /// without decay).
    pub fn predicted_weight_norm(&self) -> f64 {
        self.update_norm / self.predicted_ratio()
    }
    /// Angular step `γ‖u‖/‖w‖` (radians per step, for `u ⟂ w`).
    pub fn angular_step(&self) -> f64 {
        self.lr * self.update_ratio()
    }
    /// Root-sum-of-squares combination of several parameters (a layer, a group or all
    /// normalized ones): norms are combined, `lr`/`kappa`/`step` taken from the first (they
    /// are per group). `None` for an empty slice.
    pub fn combine(items: &[ParamDiagnostics]) -> Option<ParamDiagnostics> {
        let first = items.first()?;
        let rss =
            |f: fn(&ParamDiagnostics) -> f64| items.iter().map(|d| f(d) * f(d)).sum::<f64>().sqrt();
        Some(ParamDiagnostics {
            grad_norm: rss(|d| d.grad_norm),
            weight_norm: rss(|d| d.weight_norm),
            update_norm: rss(|d| d.update_norm),
            ..first.clone()
        })
    }
}

impl<T: Element, L: Learner, C: Conversion, D: Decay, S: Schedule> Optimizer<T, L, C, D, S> {
    /// Per-parameter norms measured by the latest step, for the parameters that got a
    /// gradient in it, in name order; empty unless [`Optimizer::set_diagnostics`] is on.
    /// Allocates (call it when logging, not every step of a hot loop).
    pub fn diagnostics(&self) -> Vec<ParamDiagnostics> {
        if !self.diagnostics_enabled() {
            return Vec::new();
        }
        let mut out: Vec<ParamDiagnostics> = self
            .entries
            .iter()
            .zip(&self.diag)
            .filter(|(e, d)| d.step != 0 && d.step == self.groups[e.group].k)
            .map(|(e, d)| ParamDiagnostics {
                name: e.name.clone(),
                group: e.group,
                tags: e.tags,
                step: d.step,
                grad_norm: d.grad_sq.sqrt(),
                weight_norm: d.weight_sq.sqrt(),
                update_norm: d.update_sq.sqrt(),
                lr: d.lr,
                kappa: d.kappa,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}
