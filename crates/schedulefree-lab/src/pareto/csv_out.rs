//! `runs.csv` and `curves.csv`.

use std::path::Path;

use super::record::RunRecord;
use crate::output::csv::write_rows;

/// The order in which runs are listed: method, run length, β sweep, β, lr, seed.
fn sorted(records: &[RunRecord]) -> Vec<&RunRecord> {
    let mut v: Vec<&RunRecord> = records.iter().collect();
    v.sort_by(|a, b| {
        let (a, b) = (&a.spec, &b.spec);
        (a.method, a.steps, a.beta_sweep)
            .cmp(&(b.method, b.steps, b.beta_sweep))
            .then(a.beta.total_cmp(&b.beta))
            .then(a.lr.total_cmp(&b.lr))
            .then(a.seed.cmp(&b.seed))
    });
    v
}

/// Write `runs.csv`: one row per run (`method, budget, lr, beta, seed, beta_sweep,
/// final_eval_loss, final_eval_accuracy, diverged, seconds`); `budget` is the run's length.
///
/// # Errors
/// I/O errors.
pub fn write_runs(path: &Path, records: &[RunRecord]) -> anyhow::Result<()> {
    write_rows(
        path,
        &[
            "method",
            "budget",
            "lr",
            "beta",
            "seed",
            "beta_sweep",
            "final_eval_loss",
            "final_eval_accuracy",
            "diverged",
            "seconds",
        ],
        sorted(records).into_iter().map(|r| {
            let s = &r.spec;
            vec![
                s.method.name().to_string(),
                s.steps.to_string(),
                s.lr.to_string(),
                s.beta.to_string(),
                s.seed.to_string(),
                s.beta_sweep.to_string(),
                r.final_loss().to_string(),
                r.accuracy_at(s.steps).to_string(),
                r.diverged.to_string(),
                format!("{:.3}", r.seconds),
            ]
        }),
    )
}

/// Write `curves.csv`: one row per evaluation of every run (`method, budget, lr, beta, seed,
/// beta_sweep, step, train_loss, eval_loss, eval_accuracy`).
///
/// # Errors
/// I/O errors.
pub fn write_curves(path: &Path, records: &[RunRecord]) -> anyhow::Result<()> {
    write_rows(
        path,
        &[
            "method",
            "budget",
            "lr",
            "beta",
            "seed",
            "beta_sweep",
            "step",
            "train_loss",
            "eval_loss",
            "eval_accuracy",
        ],
        sorted(records).into_iter().flat_map(|r| {
            let s = r.spec;
            r.evals.iter().map(move |e| {
                vec![
                    s.method.name().to_string(),
                    s.steps.to_string(),
                    s.lr.to_string(),
                    s.beta.to_string(),
                    s.seed.to_string(),
                    s.beta_sweep.to_string(),
                    e.step.to_string(),
                    e.train_loss.to_string(),
                    e.eval_loss.to_string(),
                    e.eval_accuracy.to_string(),
                ]
            })
        }),
    )
}
