//! What `sflab pareto` reports, computed from the finished runs: the Pareto table (per
//! budget, the best schedule run that ended there vs Schedule-Free's single run read at
//! that step), the lr sweep, the β sweep and the power-law fit of Schedule-Free's curve.

use serde::Serialize;

use super::config::ParetoConfig;
use super::method::{Method, SF_BETA, SF_PLUS_LR};
use super::power_law::{self, PowerLawFit};
use super::record::RunRecord;
use super::select::{Cell, Query, best, best_cell, cells, rank_key};

/// Loss within this relative distance of a method's best counts as "near-optimal" in the lr
/// sensitivity summary.
pub const NEAR_OPTIMAL: f64 = 0.05;

/// One budget of the Pareto table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ParetoRow {
    /// The budget (updates).
    pub budget: u64,
    /// The best cosine run of this length (best lr at its end).
    pub cosine: Option<Cell>,
    /// The best linear-decay run of this length.
    pub linear_decay: Option<Cell>,
    /// Schedule-Free's `T`-run at the lr chosen at `T` (the one curve), read at this step.
    pub schedule_free: Option<Cell>,
    /// Schedule-Free's best lr at this step (from the same `T`-runs).
    pub schedule_free_best: Option<Cell>,
    /// ScheduleFree+'s untuned `T`-run (lr multiplier 1), read at this step.
    pub schedule_free_plus: Option<Cell>,
}

impl ParetoRow {
    /// The better of the two schedules (lower mean loss; cosine on ties).
    pub fn best_schedule(&self) -> Option<(Method, Cell)> {
        let c = self.cosine.map(|c| (Method::Cosine, c));
        let l = self.linear_decay.map(|c| (Method::LinearDecay, c));
        match (c, l) {
            (Some(c), Some(l)) => {
                if rank_key(l.1.loss.mean) < rank_key(c.1.loss.mean) {
                    Some(l)
                } else {
                    Some(c)
                }
            }
            (c, l) => c.or(l),
        }
    }

    /// Schedule-Free's loss (the one curve) relative to the best schedule's, in percent:
    /// `100·(L_SF − L_sched)/L_sched` (negative: Schedule-Free is better).
    pub fn relative_pct(&self) -> Option<f64> {
        relative(self.schedule_free?, self.best_schedule()?.1)
    }

    /// As [`Self::relative_pct`] with Schedule-Free's best lr at this budget.
    pub fn relative_best_pct(&self) -> Option<f64> {
        relative(self.schedule_free_best?, self.best_schedule()?.1)
    }

    /// As [`Self::relative_pct`] for ScheduleFree+'s untuned run.
    pub fn relative_plus_pct(&self) -> Option<f64> {
        relative(self.schedule_free_plus?, self.best_schedule()?.1)
    }
}

fn relative(sf: Cell, sched: Cell) -> Option<f64> {
    let (a, b) = (sf.loss.mean, sched.loss.mean);
    (a.is_finite() && b.is_finite() && b != 0.0).then(|| 100.0 * (a - b) / b)
}

/// One method's lr sensitivity at one budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LrSweep {
    /// Method.
    pub method: Method,
    /// Budget at which the runs are read (their end for the schedules).
    pub budget: u64,
    /// Every lr of the grid, ascending.
    pub cells: Vec<Cell>,
}

impl LrSweep {
    /// The best cell.
    pub fn best(&self) -> Option<Cell> {
        best(&self.cells)
    }

    /// The lrs whose loss is within [`NEAR_OPTIMAL`] of the best (the width of the
    /// sensitivity curve on the grid).
    pub fn near_optimal(&self) -> Vec<f64> {
        let Some(b) = self.best().filter(|b| b.loss.mean.is_finite()) else {
            return Vec::new();
        };
        self.cells
            .iter()
            .filter(|c| c.loss.mean <= b.loss.mean * (1.0 + NEAR_OPTIMAL))
            .map(|c| c.lr)
            .collect()
    }
}

/// One budget of the β sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BetaRow {
    /// The budget.
    pub budget: u64,
    /// One cell per β of the sweep (in the sweep's order), at the sweep's lr.
    pub cells: Vec<Cell>,
}

impl BetaRow {
    /// The β with the lowest loss at this budget.
    pub fn best_beta(&self) -> Option<f64> {
        best(&self.cells)
            .filter(|c| c.loss.mean.is_finite())
            .map(|c| c.beta)
    }
}

/// A mean curve (held-out loss vs step, mean over seeds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Curve {
    /// Method.
    pub method: Method,
    /// Run length.
    pub steps: u64,
    /// Peak lr.
    pub lr: f64,
    /// Schedule-Free β.
    pub beta: f64,
    /// `(step, mean held-out loss over the seeds that reached it)`.
    pub points: Vec<(u64, f64)>,
}

/// The power-law fit of Schedule-Free's curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitReport {
    /// First step of the fit window (the smallest budget).
    pub from: u64,
    /// Last step of the fit window (`T`).
    pub to: u64,
    /// `L∞` fitted (`Err`: why not).
    pub free: Result<PowerLawFit, String>,
    /// `L∞ = 0`: a pure power law.
    pub zero_floor: Result<PowerLawFit, String>,
}

/// Everything `sflab pareto` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Schedule-Free's lr, chosen by its loss at `T` (β = [`SF_BETA`]).
    pub sf_lr: Option<f64>,
    /// The β sweep's lr (Schedule-Free's best at `T`, as the sweep ran it).
    pub beta_lr: Option<f64>,
    /// One row per budget, ascending.
    pub pareto: Vec<ParetoRow>,
    /// Per method and budget, the lr sweep.
    pub lr_sweeps: Vec<LrSweep>,
    /// One row per budget.
    pub betas: Vec<BetaRow>,
    /// The schedules' curves at their best lr per budget, then Schedule-Free's at `sf_lr`.
    pub curves: Vec<Curve>,
    /// Schedule-Free's curve for each β of the sweep.
    pub beta_curves: Vec<Curve>,
    /// The power-law fit of Schedule-Free's curve at `sf_lr`.
    pub fit: FitReport,
    /// Runs that diverged.
    pub diverged: usize,
    /// Number of runs.
    pub runs: usize,
}

/// The mean held-out loss curve of the runs matching `q` at `lr` (and β if given).
pub fn mean_curve(records: &[RunRecord], q: &Query, lr: f64) -> Curve {
    let runs: Vec<&RunRecord> = records
        .iter()
        .filter(|r| {
            r.spec.method == q.method
                && r.spec.steps == q.run_steps
                && r.spec.lr == lr
                && q.beta.is_none_or(|b| r.spec.beta == b)
                && q.beta_sweep.is_none_or(|s| r.spec.beta_sweep == s)
        })
        .collect();
    let mut steps: Vec<u64> = runs
        .iter()
        .flat_map(|r| r.evals.iter().map(|e| e.step))
        .collect();
    steps.sort_unstable();
    steps.dedup();
    let points = steps
        .into_iter()
        .filter_map(|s| {
            let v: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.at(s).map(|e| e.eval_loss))
                .filter(|l| l.is_finite())
                .collect();
            (!v.is_empty()).then(|| (s, v.iter().sum::<f64>() / v.len() as f64))
        })
        .collect();
    Curve {
        method: q.method,
        steps: q.run_steps,
        lr,
        beta: runs.first().map_or(SF_BETA, |r| r.spec.beta),
        points,
    }
}

/// ScheduleFree+'s `T`-runs read at `at`.
fn sf_plus_query(cfg: &ParetoConfig, at: u64) -> Query {
    Query {
        method: Method::ScheduleFreePlus,
        run_steps: cfg.steps,
        at,
        beta: None,
        beta_sweep: Some(false),
    }
}

/// Schedule-Free's grid runs (β = [`SF_BETA`], not the β sweep) read at `at`.
fn sf_query(cfg: &ParetoConfig, at: u64) -> Query {
    Query {
        method: Method::ScheduleFree,
        run_steps: cfg.steps,
        at,
        beta: Some(SF_BETA),
        beta_sweep: Some(false),
    }
}

/// The fit of `curve` on `[from, to]`.
pub fn fit_curve(curve: &Curve, from: u64, to: u64) -> FitReport {
    let pts: Vec<(f64, f64)> = curve
        .points
        .iter()
        .filter(|p| p.0 >= from && p.0 <= to)
        .map(|&(t, l)| (t as f64, l))
        .collect();
    FitReport {
        from,
        to,
        free: power_law::fit(&pts).map_err(|e| e.to_string()),
        zero_floor: power_law::fit_fixed(&pts, 0.0).map_err(|e| e.to_string()),
    }
}

impl Report {
    /// Build the report from `records` (any order). The schedules' best lr per budget is the
    /// lowest mean held-out loss at the run's end; Schedule-Free's lr is chosen once, by its
    /// loss at `T`, and its best lr per budget is reported beside it.
    pub fn build(cfg: &ParetoConfig, records: &[RunRecord]) -> Report {
        let t = cfg.steps;
        let sf_lr = best_cell(records, &sf_query(cfg, t)).map(|c| c.lr);
        let mut pareto = Vec::new();
        let mut lr_sweeps = Vec::new();
        let mut curves = Vec::new();
        for &b in &cfg.budgets {
            let sched = |m| best_cell(records, &Query::end(m, b));
            let sf_cells = cells(records, &sf_query(cfg, b));
            pareto.push(ParetoRow {
                budget: b,
                cosine: sched(Method::Cosine),
                linear_decay: sched(Method::LinearDecay),
                schedule_free: sf_lr.and_then(|lr| sf_cells.iter().copied().find(|c| c.lr == lr)),
                schedule_free_best: best(&sf_cells),
                schedule_free_plus: super::select::cell(
                    records,
                    &sf_plus_query(cfg, b),
                    SF_PLUS_LR,
                ),
            });
            for m in Method::SCHEDULES {
                let q = Query::end(m, b);
                lr_sweeps.push(LrSweep {
                    method: m,
                    budget: b,
                    cells: cells(records, &q),
                });
                if let Some(c) = best_cell(records, &q) {
                    curves.push(mean_curve(records, &q, c.lr));
                }
            }
            lr_sweeps.push(LrSweep {
                method: Method::ScheduleFree,
                budget: b,
                cells: sf_cells,
            });
        }
        if cfg.schedule.is_some() {
            // The --schedule method runs at T only.
            let q = Query::end(Method::Custom, t);
            lr_sweeps.push(LrSweep {
                method: Method::Custom,
                budget: t,
                cells: cells(records, &q),
            });
            if let Some(c) = best_cell(records, &q) {
                curves.push(mean_curve(records, &q, c.lr));
            }
        }
        let sf_curve = sf_lr.map(|lr| mean_curve(records, &sf_query(cfg, t), lr));
        let from = cfg.budgets.first().copied().unwrap_or(t);
        let fit = match &sf_curve {
            Some(c) => fit_curve(c, from, t),
            None => FitReport {
                from,
                to: t,
                free: Err("no Schedule-Free run".into()),
                zero_floor: Err("no Schedule-Free run".into()),
            },
        };
        curves.extend(sf_curve);
        let plus = mean_curve(records, &sf_plus_query(cfg, t), SF_PLUS_LR);
        if !plus.points.is_empty() {
            curves.push(plus);
        }

        // The β sweep ran at one lr (Schedule-Free's best at T when the sweep was queued).
        let beta_lr = records
            .iter()
            .find(|r| r.spec.beta_sweep)
            .map(|r| r.spec.lr)
            .or(sf_lr);
        let mut betas = Vec::new();
        let mut beta_curves = Vec::new();
        if let Some(lr) = beta_lr {
            let q_of = |beta: f64, at: u64| Query {
                method: Method::ScheduleFree,
                run_steps: t,
                at,
                beta: Some(beta),
                beta_sweep: Some(beta != SF_BETA),
            };
            for &b in &cfg.budgets {
                let cells = cfg
                    .betas
                    .iter()
                    .filter_map(|&beta| super::select::cell(records, &q_of(beta, b), lr))
                    .collect();
                betas.push(BetaRow { budget: b, cells });
            }
            for &beta in &cfg.betas {
                let c = mean_curve(records, &q_of(beta, t), lr);
                if !c.points.is_empty() {
                    beta_curves.push(c);
                }
            }
        }
        Report {
            sf_lr,
            beta_lr,
            pareto,
            lr_sweeps,
            betas,
            curves,
            beta_curves,
            fit,
            diverged: records.iter().filter(|r| r.diverged).count(),
            runs: records.len(),
        }
    }

    /// The lr sweep of `method` at `budget`.
    pub fn lr_sweep(&self, method: Method, budget: u64) -> Option<&LrSweep> {
        self.lr_sweeps
            .iter()
            .find(|s| s.method == method && s.budget == budget)
    }

    /// Whether the best β is the same at every budget (`None` without a β sweep).
    pub fn beta_consistent(&self) -> Option<bool> {
        let best: Vec<Option<f64>> = self.betas.iter().map(BetaRow::best_beta).collect();
        let first = *best.first()?;
        first?;
        Some(best.iter().all(|b| *b == first))
    }
}
