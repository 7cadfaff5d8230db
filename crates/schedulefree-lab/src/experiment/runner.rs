//! The one runner of the lab's sweeps: `jobs` worker threads, each driving one run at a time on
//! its own single-threaded rayon pool, behind an indicatif progress bar (and, optionally, one
//! bar per worker).
//!
//! One thread per run, rather than one rayon pool shared by all runs: burn's CPU kernels and
//! the logistic-regression model parallelise over the *current* rayon pool, so a run never
//! spreads over more than its core, the runs do not slow each other unevenly, and a run's
//! numbers do not depend on how many others run beside it.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What a sweep runs: how to train one spec, and how its progress is counted.
pub trait Task: Sync {
    /// One run's description (method, lr, seed, …).
    type Spec: Clone + Send + Sync;
    /// What a finished run hands to the report.
    type Output: Send;

    /// Trains `spec`. `bar` is this worker's own bar (hidden unless [`Runner::worker_bars`]):
    /// a long run may advance it; it has been reset and given [`Task::describe`] as message.
    ///
    /// # Errors
    /// A run that cannot start or fails; the sweep stops at the first one (divergence is an
    /// outcome, not an error).
    fn run(&self, spec: &Self::Spec, bar: &ProgressBar) -> anyhow::Result<Self::Output>;

    /// A short label of `spec` for progress bars and error contexts.
    fn describe(&self, spec: &Self::Spec) -> String;

    /// What `spec` adds to the overall bar when it finishes (1: the bar counts runs; steps or
    /// updates for long runs).
    fn weight(&self, _spec: &Self::Spec) -> u64 {
        1
    }

    /// Relative cost, for scheduling: costlier runs start first (ties keep the given order),
    /// so the workers end together.
    fn cost(&self, _spec: &Self::Spec) -> u64 {
        0
    }

    /// The output of `spec` from an earlier, interrupted sweep (see
    /// [`super::store::RunStore::load`]); `None` (the default): train it.
    fn load(&self, _spec: &Self::Spec) -> Option<Self::Output> {
        None
    }

    /// Keeps a finished run for a later `--resume` (see [`super::store::RunStore::save`]);
    /// the default keeps nothing.
    ///
    /// # Errors
    /// The run cannot be saved; the sweep stops.
    fn save(&self, _spec: &Self::Spec, _output: &Self::Output) -> anyhow::Result<()> {
        Ok(())
    }

    /// Runs to start next (ahead of everything still queued), decided from the finished runs
    /// `done` (in completion order, the newest last). Called once after every finished run;
    /// workers with nothing queued wait while any run is still going, since it may add some.
    fn follow_up(&self, _done: &[(Self::Spec, Self::Output)]) -> Vec<Self::Spec> {
        Vec::new()
    }
}

/// How a sweep is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Runner {
    /// Runs at once (`--jobs`), each on one thread; at least 1.
    pub jobs: usize,
    /// Draw progress on stderr (off with `--quiet`).
    pub verbose: bool,
    /// One more bar per worker, for tasks whose runs are long enough to advance their own.
    pub worker_bars: bool,
    /// What the overall bar counts, after its percentage (`"runs"`, `"steps"`, `"updates"`).
    pub unit: &'static str,
}

/// The queue the workers share.
struct Queue<S, O> {
    /// Index (submission order) and spec of every run not started yet.
    pending: VecDeque<(usize, S)>,
    next_index: usize,
    running: usize,
    /// Finished runs in completion order, with their submission index.
    done: Vec<(S, O)>,
    order: Vec<usize>,
    error: Option<anyhow::Error>,
}

impl Runner {
    /// Runs every spec of `specs` and the follow-ups [`Task::follow_up`] adds; returns each
    /// run's spec and output in submission order (`specs` first, follow-ups after, in the order
    /// they were added), whatever order they finished in. `total` is the overall bar's length
    /// in [`Task::weight`] units (the sum over every run, follow-ups included).
    ///
    /// # Errors
    /// The first failed run (with its description as context) or a worker pool that cannot be
    /// built; the workers stop starting runs as soon as one fails.
    pub fn run<T: Task>(
        &self,
        task: &T,
        specs: Vec<T::Spec>,
        total: u64,
    ) -> anyhow::Result<Vec<(T::Spec, T::Output)>> {
        let mut pending: Vec<(usize, T::Spec)> = specs.into_iter().enumerate().collect();
        let n = pending.len();
        pending.sort_by_key(|(i, s)| (std::cmp::Reverse(task.cost(s)), *i));
        let queue = Mutex::new(Queue {
            pending: pending.into(),
            next_index: n,
            running: 0,
            done: Vec::new(),
            order: Vec::new(),
            error: None,
        });
        let wake = Condvar::new();
        let multi = MultiProgress::with_draw_target(if self.verbose {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let overall = multi.add(ProgressBar::new(total));
        overall.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{percent}}% of {} (eta {{eta}}) {{msg}}",
                self.unit
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        overall.enable_steady_tick(Duration::from_millis(250));
        overall.set_message(format!("0 runs done, {} jobs", self.jobs));
        let workers = self.jobs.max(1).min(n.max(1));
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let bar = if self.worker_bars {
                    multi.add(ProgressBar::new(0))
                } else {
                    ProgressBar::hidden()
                };
                let (queue, wake, overall) = (&queue, &wake, &overall);
                scope.spawn(move || worker(task, queue, wake, overall, &bar));
            }
        });
        overall.finish_and_clear();
        let _ = multi.clear();
        let q = queue.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = q.error {
            return Err(e);
        }
        // Every submitted run finished (none failed), so every slot is filled.
        let mut slots: Vec<Option<_>> =
            std::iter::repeat_with(|| None).take(q.next_index).collect();
        for (i, run) in q.order.into_iter().zip(q.done) {
            slots[i] = Some(run);
        }
        Ok(slots.into_iter().flatten().collect())
    }
}

/// One worker: take the next run, train it on a one-thread pool, record it, until nothing is
/// queued or running, or a run failed.
fn worker<T: Task>(
    task: &T,
    queue: &Mutex<Queue<T::Spec, T::Output>>,
    wake: &Condvar,
    overall: &ProgressBar,
    bar: &ProgressBar,
) {
    let lock = || queue.lock().unwrap_or_else(|p| p.into_inner());
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
        Ok(p) => p,
        Err(e) => {
            lock()
                .error
                .get_or_insert(anyhow::Error::new(e).context("building a worker pool"));
            wake.notify_all();
            return;
        }
    };
    loop {
        let (index, spec) = {
            let mut q = lock();
            loop {
                if q.error.is_some() {
                    return;
                }
                if let Some(next) = q.pending.pop_front() {
                    q.running += 1;
                    break next;
                }
                if q.running == 0 {
                    return;
                }
                q = wake.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        let label = task.describe(&spec);
        bar.reset();
        bar.set_message(label.clone());
        let result = match task.load(&spec) {
            Some(out) => Ok(out),
            None => pool
                .install(|| task.run(&spec, bar))
                .and_then(|out| task.save(&spec, &out).map(|()| out))
                .with_context(|| format!("run {label}")),
        };
        let mut q = lock();
        q.running -= 1;
        match result {
            Ok(out) => {
                overall.inc(task.weight(&spec));
                q.done.push((spec, out));
                q.order.push(index);
                let more = task.follow_up(&q.done);
                let first = q.next_index;
                q.next_index += more.len();
                for (i, s) in more.into_iter().enumerate().rev() {
                    q.pending.push_front((first + i, s));
                }
                overall.set_message(format!("{} runs done", q.done.len()));
            }
            Err(e) => {
                q.error.get_or_insert(e);
            }
        }
        wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Squares its spec; spec 13 fails; after spec 0 finishes, adds 100 and 101 once.
    struct Squares {
        started: AtomicUsize,
    }

    impl Task for Squares {
        type Spec = u64;
        type Output = u64;
        fn run(&self, spec: &u64, _bar: &ProgressBar) -> anyhow::Result<u64> {
            self.started.fetch_add(1, Ordering::SeqCst);
            anyhow::ensure!(*spec != 13, "unlucky");
            // The run is on its worker's one-thread pool.
            assert_eq!(rayon::current_num_threads(), 1);
            Ok(spec * spec)
        }
        fn describe(&self, spec: &u64) -> String {
            format!("spec {spec}")
        }
        fn cost(&self, spec: &u64) -> u64 {
            *spec
        }
        fn follow_up(&self, done: &[(u64, u64)]) -> Vec<u64> {
            match done.last() {
                Some((0, _)) => vec![100, 101],
                _ => Vec::new(),
            }
        }
    }

    fn runner(jobs: usize) -> Runner {
        Runner {
            jobs,
            verbose: false,
            worker_bars: true,
            unit: "runs",
        }
    }

    #[test]
    fn outputs_come_in_submission_order_with_follow_ups_last() {
        for jobs in [1, 3] {
            let task = Squares {
                started: AtomicUsize::new(0),
            };
            let got = runner(jobs)
                .run(&task, vec![5, 0, 7, 2], 6)
                .expect("no run fails");
            let want: Vec<(u64, u64)> =
                [5, 0, 7, 2, 100, 101].iter().map(|&s| (s, s * s)).collect();
            assert_eq!(got, want, "jobs {jobs}");
        }
    }

    #[test]
    fn the_first_failure_is_the_error_and_stops_the_sweep() {
        let task = Squares {
            started: AtomicUsize::new(0),
        };
        // Costliest first: 13 starts first on the single worker and nothing runs after it.
        let err = runner(1)
            .run(&task, vec![1, 13, 2, 3], 4)
            .expect_err("13 fails");
        assert!(
            format!("{err:#}").contains("run spec 13: unlucky"),
            "{err:#}"
        );
        assert_eq!(task.started.load(Ordering::SeqCst), 1);
    }

    /// Doubles its spec; 1 is on "disk" already (as 100); every finished run is recorded.
    struct Stored {
        saved: std::sync::Mutex<Vec<u64>>,
    }

    impl Task for Stored {
        type Spec = u64;
        type Output = u64;
        fn run(&self, spec: &u64, _bar: &ProgressBar) -> anyhow::Result<u64> {
            Ok(2 * spec)
        }
        fn describe(&self, spec: &u64) -> String {
            spec.to_string()
        }
        fn load(&self, spec: &u64) -> Option<u64> {
            (*spec == 1).then_some(100)
        }
        fn save(&self, spec: &u64, _output: &u64) -> anyhow::Result<()> {
            anyhow::ensure!(*spec != 3, "disk full");
            self.saved.lock().expect("not poisoned").push(*spec);
            Ok(())
        }
    }

    #[test]
    fn stored_runs_are_reused_and_new_ones_saved() {
        let task = Stored {
            saved: std::sync::Mutex::new(Vec::new()),
        };
        let got = runner(2).run(&task, vec![0, 1, 2], 3).expect("runs");
        assert_eq!(got, [(0, 0), (1, 100), (2, 4)]);
        let mut saved = task.saved.into_inner().expect("not poisoned");
        saved.sort_unstable();
        assert_eq!(saved, [0, 2]);
        let task = Stored {
            saved: std::sync::Mutex::new(Vec::new()),
        };
        let err = runner(1).run(&task, vec![3], 1).expect_err("cannot save");
        assert!(format!("{err:#}").contains("run 3: disk full"), "{err:#}");
    }

    #[test]
    fn an_empty_sweep_returns_nothing() {
        let task = Squares {
            started: AtomicUsize::new(0),
        };
        assert!(
            runner(2)
                .run(&task, Vec::new(), 0)
                .expect("nothing to fail")
                .is_empty()
        );
    }
}
