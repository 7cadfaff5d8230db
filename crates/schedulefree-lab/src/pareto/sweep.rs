//! Running the protocol: `jobs` worker threads, each driving one run at a time on its own
//! single-threaded rayon pool (burn's CPU kernels use the current rayon pool, so a run never
//! takes more than its core), behind an indicatif overall bar and one bar per worker.
//!
//! Work order: the Schedule-Free grid runs first (they are the longest and decide the β
//! sweep's lr), then the schedules, longest first. As soon as the last Schedule-Free grid
//! run finishes, the β sweep (at Schedule-Free's best lr at `T`) jumps the queue.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::config::ParetoConfig;
use super::method::{Method, RunSpec};
use super::record::RunRecord;
use super::select::{Query, best_cell};

/// Shared state of the workers.
struct Queue {
    pending: VecDeque<RunSpec>,
    /// Schedule-Free grid runs not finished yet; the β sweep is queued when it reaches 0.
    sf_left: usize,
    beta_queued: bool,
    running: usize,
    done: Vec<RunRecord>,
    error: Option<anyhow::Error>,
}

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

/// Run the whole protocol and return every finished run (in completion order).
///
/// # Errors
/// The first run that fails to start or train (not divergence), or a thread pool that cannot
/// be built.
pub fn run_all(cfg: &ParetoConfig) -> anyhow::Result<Vec<RunRecord>> {
    let grid = cfg.grid_specs();
    let sf_left = grid
        .iter()
        .filter(|s| s.method == Method::ScheduleFree)
        .count();
    let total_runs = grid.len() + cfg.beta_specs(cfg.lrs[0]).len();
    let queue = Mutex::new(Queue {
        pending: grid.into(),
        sf_left,
        beta_queued: false,
        running: 0,
        done: Vec::new(),
        error: None,
    });
    let wake = Condvar::new();

    let multi = MultiProgress::with_draw_target(if cfg.verbose {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let overall = multi.add(ProgressBar::new(cfg.total_updates()));
    overall.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {percent}% of updates (eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    overall.enable_steady_tick(Duration::from_millis(250));
    let finished = |q: &Queue| format!("{}/{total_runs} runs", q.done.len());
    overall.set_message(format!("0/{total_runs} runs on {} jobs", cfg.jobs));

    std::thread::scope(|scope| {
        for _ in 0..cfg.jobs {
            let bar = multi.add(ProgressBar::new(0));
            let (queue, wake, overall) = (&queue, &wake, &overall);
            scope.spawn(move || {
                let pool = match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
                    Ok(p) => p,
                    Err(e) => {
                        let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                        q.error
                            .get_or_insert(anyhow::Error::new(e).context("building a worker pool"));
                        wake.notify_all();
                        return;
                    }
                };
                loop {
                    let spec = {
                        let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                        loop {
                            if q.error.is_some() {
                                return;
                            }
                            if let Some(s) = q.pending.pop_front() {
                                q.running += 1;
                                break s;
                            }
                            // Nothing queued: done unless the β sweep is still to come.
                            if q.beta_queued || (q.sf_left == 0 && q.running == 0) {
                                return;
                            }
                            q = wake.wait(q).unwrap_or_else(|p| p.into_inner());
                        }
                    };
                    bar.reset();
                    bar.set_message(describe(&spec));
                    let tc = cfg.train_config(&spec);
                    let result = pool
                        .install(|| crate::train::run(&tc, Some(&bar), None))
                        .with_context(|| format!("run {}", describe(&spec)));
                    let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                    q.running -= 1;
                    match result {
                        Ok(r) => {
                            q.done.push(RunRecord::from_result(spec, &r));
                            if spec.method == Method::ScheduleFree && !spec.beta_sweep {
                                q.sf_left -= 1;
                            }
                            if q.sf_left == 0 && !q.beta_queued {
                                let lr = beta_sweep_lr(cfg, &q.done);
                                for s in cfg.beta_specs(lr).into_iter().rev() {
                                    q.pending.push_front(s);
                                }
                                q.beta_queued = true;
                            }
                            overall.inc(spec.steps);
                            overall.set_message(finished(&q));
                        }
                        Err(e) => {
                            q.error.get_or_insert(e);
                        }
                    }
                    wake.notify_all();
                }
            });
        }
    });
    overall.finish_and_clear();
    let _ = multi.clear();
    let q = queue.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = q.error {
        return Err(e);
    }
    Ok(q.done)
}
