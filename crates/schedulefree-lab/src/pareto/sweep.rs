//! Running the protocol on the lab's [`Runner`]: `jobs` runs at once, each on one thread,
//! behind an overall bar of updates and one bar per worker.
//!
//! Work order: the Schedule-Free grid runs first (they are the longest and decide the β
//! sweep's lr), then the schedules, longest first. As soon as the last Schedule-Free grid
//! run finishes, the β sweep (at Schedule-Free's best lr at `T`) jumps the queue.

use indicatif::ProgressBar;

use super::config::ParetoConfig;
use super::method::{Method, RunSpec};
use super::record::RunRecord;
use super::select::{Query, best_cell};
use crate::experiment::{RunStore, Runner, Task};

/// The lr at which the β sweep runs: Schedule-Free's best at `T` (β = the grid's), or the
/// middle of the grid if every run diverged.
pub fn beta_sweep_lr(cfg: &ParetoConfig, records: &[RunRecord]) -> f64 {
    let q = Query {
        beta_sweep: Some(false),
        ..Query::end(Method::ScheduleFree, cfg.steps)
    };
    best_cell(records, &q)
        .filter(|c| c.loss.mean.is_finite())
        .map_or(cfg.lrs[cfg.lrs.len() / 2], |c| c.lr)
}

fn describe(s: &RunSpec) -> String {
    let beta = if s.method == Method::ScheduleFree {
        format!(" β {}", s.beta)
    } else {
        String::new()
    };
    format!(
        "{} T={} lr {:e}{beta} seed {}",
        s.method.label(),
        s.steps,
        s.lr,
        s.seed
    )
}

/// The protocol as a [`Task`]: one run through [`crate::train::run`], its bar advanced per
/// update; the β sweep follows the last Schedule-Free grid run.
struct Protocol<'a> {
    cfg: &'a ParetoConfig,
    /// Finished runs on disk (`OUT/finished/`).
    store: RunStore,
    /// Schedule-Free runs of the lr grid.
    sf_grid: usize,
}

fn is_sf_grid(s: &RunSpec) -> bool {
    s.method == Method::ScheduleFree && !s.beta_sweep
}

impl Task for Protocol<'_> {
    type Spec = RunSpec;
    type Output = RunRecord;

    fn run(&self, spec: &RunSpec, bar: &ProgressBar) -> anyhow::Result<RunRecord> {
        let result = crate::train::run(&self.cfg.train_config(spec), Some(bar), None)?;
        Ok(RunRecord::from_result(*spec, &result))
    }

    fn describe(&self, spec: &RunSpec) -> String {
        describe(spec)
    }

    fn weight(&self, spec: &RunSpec) -> u64 {
        spec.steps
    }

    fn load(&self, spec: &RunSpec) -> Option<RunRecord> {
        self.store.load(spec)
    }

    fn save(&self, spec: &RunSpec, record: &RunRecord) -> anyhow::Result<()> {
        self.store.save(spec, record)
    }

    /// The β sweep, once: when the finished run completes the Schedule-Free grid (or after
    /// the first run if the grid has no Schedule-Free run).
    fn follow_up(&self, done: &[(RunSpec, RunRecord)]) -> Vec<RunSpec> {
        let Some((newest, _)) = done.last() else {
            return Vec::new();
        };
        let sf_done = done.iter().filter(|(s, _)| is_sf_grid(s)).count();
        let completes = if self.sf_grid == 0 {
            done.len() == 1
        } else {
            is_sf_grid(newest) && sf_done == self.sf_grid
        };
        if !completes {
            return Vec::new();
        }
        let records: Vec<RunRecord> = done.iter().map(|(_, r)| r.clone()).collect();
        self.cfg.beta_specs(beta_sweep_lr(self.cfg, &records))
    }
}

/// Run the whole protocol and return every finished run: the lr grid in
/// [`ParetoConfig::grid_specs`] order, then the β sweep. Each finished run is kept in
/// `OUT/finished/`; with `--resume` the runs found there for the same protocol are not
/// trained again.
///
/// # Errors
/// The first run that fails to start or train (not divergence), an unwritable output folder,
/// or a thread pool that cannot be built.
pub fn run_all(cfg: &ParetoConfig) -> anyhow::Result<Vec<RunRecord>> {
    let grid = cfg.grid_specs();
    let task = Protocol {
        cfg,
        store: RunStore::new(&cfg.out.join("finished"), &cfg.run_context(), cfg.resume)?,
        sf_grid: grid.iter().filter(|s| is_sf_grid(s)).count(),
    };
    let runner = Runner {
        jobs: cfg.jobs,
        verbose: cfg.verbose,
        worker_bars: true,
        unit: "updates",
    };
    let done = runner.run(&task, grid, cfg.total_updates())?;
    Ok(done.into_iter().map(|(_, r)| r).collect())
}
