//! Selection over the lr grid: a configuration's held-out loss at a step, aggregated over
//! seeds, and the best lr of a method at a budget.

use serde::Serialize;

use super::method::Method;
use super::record::RunRecord;
use crate::convex::report::Stat;

/// One configuration (method, run length, lr, β) read at one step, aggregated over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Cell {
    /// Peak lr.
    pub lr: f64,
    /// Schedule-Free β (the schedules carry the default; it is unused).
    pub beta: f64,
    /// Held-out loss at the step: mean ± SE over seeds (`+∞` if a seed diverged).
    pub loss: Stat,
    /// Held-out accuracy at the step, mean over seeds (NaN if a seed diverged).
    pub accuracy: f64,
    /// Seeds that diverged before the step.
    pub diverged: usize,
}

/// `+∞` for NaN, so that missing or broken values rank last.
pub fn rank_key(v: f64) -> f64 {
    if v.is_nan() { f64::INFINITY } else { v }
}

/// Which runs a selection reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Query {
    /// Method.
    pub method: Method,
    /// Run length of the runs (a budget for the schedules, `T` for Schedule-Free).
    pub run_steps: u64,
    /// The step at which they are read.
    pub at: u64,
    /// Schedule-Free β to select (`None`: any).
    pub beta: Option<f64>,
    /// Whether to read the β sweep's runs (`false`: the lr grid's).
    pub beta_sweep: Option<bool>,
}

impl Query {
    /// The runs of `method` of length `run_steps` read at their end, any β.
    pub fn end(method: Method, run_steps: u64) -> Query {
        Query {
            method,
            run_steps,
            at: run_steps,
            beta: None,
            beta_sweep: None,
        }
    }

    fn matches(&self, r: &RunRecord) -> bool {
        r.spec.method == self.method
            && r.spec.steps == self.run_steps
            && self.beta.is_none_or(|b| r.spec.beta == b)
            && self.beta_sweep.is_none_or(|s| r.spec.beta_sweep == s)
    }
}

/// The cell of the runs matching `q` at peak lr `lr` (`None` if there are none).
pub fn cell(records: &[RunRecord], q: &Query, lr: f64) -> Option<Cell> {
    let runs: Vec<&RunRecord> = records
        .iter()
        .filter(|r| q.matches(r) && r.spec.lr == lr)
        .collect();
    let first = runs.first()?;
    let losses: Vec<f64> = runs.iter().map(|r| r.loss_at(q.at)).collect();
    let accs: Vec<f64> = runs.iter().map(|r| r.accuracy_at(q.at)).collect();
    let diverged = losses.iter().filter(|l| l.is_infinite()).count();
    Some(Cell {
        lr,
        beta: first.spec.beta,
        loss: Stat::of(&losses),
        accuracy: accs.iter().sum::<f64>() / accs.len() as f64,
        diverged,
    })
}

/// Every lr of the runs matching `q`, ascending, with its cell.
pub fn cells(records: &[RunRecord], q: &Query) -> Vec<Cell> {
    let mut lrs: Vec<f64> = records
        .iter()
        .filter(|r| q.matches(r))
        .map(|r| r.spec.lr)
        .collect();
    lrs.sort_by(f64::total_cmp);
    lrs.dedup();
    lrs.into_iter()
        .filter_map(|lr| cell(records, q, lr))
        .collect()
}

/// The cell with the lowest mean loss (NaN ranks last; ties go to the smaller lr).
pub fn best(cells: &[Cell]) -> Option<Cell> {
    cells
        .iter()
        .copied()
        .fold(None, |b: Option<Cell>, c| match b {
            Some(b) if rank_key(b.loss.mean) <= rank_key(c.loss.mean) => Some(b),
            _ => Some(c),
        })
}

/// The best lr of the runs matching `q` (see [`best`]).
pub fn best_cell(records: &[RunRecord], q: &Query) -> Option<Cell> {
    best(&cells(records, q))
}
