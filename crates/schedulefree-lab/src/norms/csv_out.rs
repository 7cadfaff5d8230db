//! CSV outputs of `sflab norms`: one file per run (every step) and one per experiment (its
//! table's rows, full precision).
//!
//! A run's file `runs/<id>.csv` has one row per step: `step, train_loss, lr, lr_factor,
//! skipped`, the combined norms of the normalized weights `grad_norm, weight_norm,
//! update_norm, kappa`, then `grad_norm:<layer>`, `weight_norm:<layer>`, `update_norm:<layer>`
//! per normalized weight, and `eval_loss, eval_accuracy` in the rows of the steps that were
//! evaluated (empty elsewhere).

use std::path::Path;

use serde::Serialize;

use super::trace::Trace;
use crate::output::csv::{cell, write_serialized};

/// Writes `t` to `path` (format in the module docs).
///
/// # Errors
/// The file cannot be written.
pub fn write_run(path: &Path, t: &Trace) -> anyhow::Result<()> {
    let mut header: Vec<String> = [
        "step",
        "train_loss",
        "lr",
        "lr_factor",
        "skipped",
        "grad_norm",
        "weight_norm",
        "update_norm",
        "kappa",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for kind in ["grad_norm", "weight_norm", "update_norm"] {
        header.extend(t.layers.iter().map(|l| format!("{kind}:{l}")));
    }
    header.extend(["eval_loss".to_string(), "eval_accuracy".to_string()]);
    let mut evals = t.evals.iter().peekable();
    let mut rows = Vec::with_capacity(t.points.len());
    for p in &t.points {
        let mut row = vec![
            p.step.to_string(),
            cell(p.train_loss),
            cell(p.lr),
            cell(p.lr_factor),
            p.skipped.to_string(),
        ];
        match p.combined() {
            Some(c) => row.extend([c.grad, c.weight, c.update, c.kappa].map(cell)),
            None => row.extend(std::iter::repeat_n(String::new(), 4)),
        }
        for get in [
            |l: &super::trace::LayerPoint| l.grad,
            |l: &super::trace::LayerPoint| l.weight,
            |l: &super::trace::LayerPoint| l.update,
        ] {
            if p.layers.len() == t.layers.len() {
                row.extend(p.layers.iter().map(|l| cell(get(l))));
            } else {
                row.extend(std::iter::repeat_n(String::new(), t.layers.len()));
            }
        }
        match evals.next_if(|e| e.step == p.step) {
            Some(e) => row.extend([cell(e.eval_loss), cell(e.eval_accuracy)]),
            None => row.extend([String::new(), String::new()]),
        }
        rows.push(row);
    }
    crate::output::csv::write_rows(path, header, rows)
}

/// Writes `rows` to `path` with a header from their field names.
///
/// # Errors
/// The file cannot be written.
pub fn write_rows<R: Serialize>(path: &Path, rows: &[R]) -> anyhow::Result<()> {
    write_serialized(path, rows)
}
