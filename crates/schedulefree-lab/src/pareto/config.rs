//! Command-line arguments of `sflab pareto` and the resolved protocol they describe.

use std::path::PathBuf;

use anyhow::bail;
use schedulefree::PresetConfig;
use serde::Serialize;

use super::method::{Method, RunSpec, SF_BETA, SF_PLUS_LR};
use crate::train::{Task, TrainConfig};

/// Budgets as divisors of `T`: the schedules run `T/8, T/4, T/2, T` updates.
pub const DEFAULT_BUDGET_DIVISORS: [u64; 4] = [8, 4, 2, 1];
/// Schedule-Free interpolations of the β sweep (run at Schedule-Free's best lr).
pub const DEFAULT_BETAS: [f64; 4] = [0.5, 0.9, 0.95, 0.98];
/// Linear warmup as a fraction of each run's own length (schedules) or of `T`
/// (Schedule-Free), for every method.
pub const DEFAULT_WARMUP_FRACTION: f64 = 0.05;
/// Weight decay of every method (none: the comparison is about the schedule).
pub const DEFAULT_WEIGHT_DECAY: f64 = 0.0;
/// Parallel runs (each single-threaded).
pub const DEFAULT_JOBS: usize = 2;
/// Seeds of `--full`.
pub const FULL_SEEDS: u64 = 3;
/// `--full` multiplies the default `T` by this.
pub const FULL_STEPS_FACTOR: u64 = 4;

/// The default protocol of a task: `T`, the lr grid (shared by every method), the
/// evaluation density and the held-out subset, and the `--full` grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskDefaults {
    /// Schedule-Free run length `T` (the longest budget) in updates.
    pub steps: u64,
    /// The lr grid of the default protocol.
    pub lrs: &'static [f64],
    /// The lr grid of `--full`.
    pub full_lrs: &'static [f64],
    /// Evaluations per smallest budget (the interval is `T/8` divided by this).
    pub evals_per_min_budget: u64,
    /// Held-out batches per evaluation (`None`: the whole test split).
    pub eval_batches: Option<usize>,
}

const MLP_LRS: [f64; 5] = [0.0005, 0.001, 0.002, 0.004, 0.008];
const CNN_LRS: [f64; 4] = [0.001, 0.002, 0.004, 0.008];
const IMAGE_FULL_LRS: [f64; 7] = [0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032];
const TEXT_LRS: [f64; 3] = [0.004, 0.008, 0.016];
const TEXT_FULL_LRS: [f64; 6] = [0.002, 0.004, 0.008, 0.016, 0.032, 0.064];

/// The default protocol of `task`, sized so that it finishes in under 10 minutes on 2 cores
/// (measured CPU cost per update, single-threaded, evaluations included: MLP ≈ 1.4 ms, CNN
/// ≈ 16 ms, transformer ≈ 89 ms; the default protocol trains `(4.75·lrs + 3)·T` updates,
/// spread over 2 jobs). Measured: `fashion_mlp` 81 s wall on 2 otherwise idle cores;
/// `tragedies_transformer` ≈ 850 and `mnist_cnn` ≈ 800 CPU-seconds, about 7 minutes on 2
/// idle cores (longer when other processes compete for them).
///
/// `fashion_mlp` has 60k training images, so its held-out loss still falls at `T` = 4000
/// (4.3 epochs; it starts to rise after about 5 epochs at the best lrs); MNIST-10k's 8000
/// images are memorised within a few epochs and the held-out loss of `mnist_mlp` rises late
/// in the run.
pub fn task_defaults(task: Task) -> TaskDefaults {
    match task {
        Task::MnistMlp => TaskDefaults {
            steps: 1600,
            lrs: &MLP_LRS,
            full_lrs: &IMAGE_FULL_LRS,
            evals_per_min_budget: 4,
            eval_batches: None,
        },
        Task::FashionMlp => TaskDefaults {
            steps: 4000,
            lrs: &MLP_LRS,
            full_lrs: &IMAGE_FULL_LRS,
            evals_per_min_budget: 4,
            eval_batches: Some(40),
        },
        Task::MnistCnn => TaskDefaults {
            steps: 1600,
            lrs: &CNN_LRS,
            full_lrs: &IMAGE_FULL_LRS,
            evals_per_min_budget: 2,
            eval_batches: None,
        },
        Task::FashionCnn => TaskDefaults {
            steps: 1600,
            lrs: &CNN_LRS,
            full_lrs: &IMAGE_FULL_LRS,
            evals_per_min_budget: 2,
            eval_batches: Some(40),
        },
        Task::TragediesTransformer | Task::TinyShakespeareTransformer => TaskDefaults {
            steps: 512,
            lrs: &TEXT_LRS,
            full_lrs: &TEXT_FULL_LRS,
            evals_per_min_budget: 2,
            eval_batches: Some(8),
        },
    }
}

/// The task of a plain `sflab pareto` (60k training images: see [`task_defaults`]).
pub const DEFAULT_TASK: Task = Task::FashionMlp;

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Help of `--steps` and `--lrs`, built from [`task_defaults`].
fn defaults_help(what: &str) -> String {
    let per: Vec<String> = crate::train::ALL_TASKS
        .iter()
        .map(|&t| {
            let d = task_defaults(t);
            match what {
                "steps" => format!("{t} {}", d.steps),
                _ => format!("{t} {} (--full {})", list(d.lrs), list(d.full_lrs)),
            }
        })
        .collect();
    match what {
        "steps" => format!(
            "Schedule-Free run length T (updates); the schedules run T/8, T/4, T/2, T. Must be divisible by \
             every budget divisor. Default per task: {}; ×{FULL_STEPS_FACTOR} with --full",
            per.join(", ")
        ),
        _ => format!(
            "The lr grid, comma-separated, shared by every method. Default per task: {}",
            per.join("; ")
        ),
    }
}

/// Command-line arguments of `sflab pareto`. Every field is optional; unset fields take the
/// task's default protocol ([`task_defaults`]) or the `--full` one, so
/// `ParetoArgs::default()` is the default run on [`DEFAULT_TASK`].
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ParetoArgs {
    /// Model/data pair (default fashion_mlp).
    #[arg(long, value_enum)]
    pub task: Option<Task>,
    /// Schedule-Free run length `T`; default per task ([`task_defaults`]).
    #[arg(long, allow_negative_numbers = true, help = defaults_help("steps"))]
    pub steps: Option<u64>,
    /// Budget divisors of T, comma-separated (default 8,4,2,1: budgets T/8, T/4, T/2, T).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub budgets: Option<Vec<u64>>,
    /// The lr grid shared by every method; default per task ([`task_defaults`]).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true, help = defaults_help("lrs"))]
    pub lrs: Option<Vec<f64>>,
    /// Schedule-Free β values of the β sweep, run at SF's best lr (default 0.5,0.9,0.95,0.98).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub betas: Option<Vec<f64>>,
    /// Seeds 0..N per configuration (default 1; 3 with --full).
    #[arg(long, allow_negative_numbers = true)]
    pub seeds: Option<u64>,
    /// Evaluate every this many updates (default: the smallest budget divided by 4 for the
    /// MLPs, by 2 for the CNNs and transformers). Must divide every budget.
    #[arg(long, allow_negative_numbers = true)]
    pub eval_every: Option<u64>,
    /// Held-out batches per evaluation, a fixed subset shared by every run; 0 = the whole
    /// test split (default: the whole split for MNIST-10k, 40 batches for Fashion-MNIST, 8
    /// for text).
    #[arg(long, allow_negative_numbers = true)]
    pub eval_batches: Option<usize>,
    /// Minibatch size (default: the task's, see `sflab train`).
    #[arg(long, allow_negative_numbers = true)]
    pub batch_size: Option<usize>,
    /// Linear warmup as a fraction of each schedule run's own length and of T for
    /// Schedule-Free (default 0.05).
    #[arg(long, allow_negative_numbers = true)]
    pub warmup: Option<f64>,
    /// Weight decay of every method (default 0).
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Directory with the datasets (default: the task's usual location, see `sflab train`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Output directory (default sflab-out/pareto/<task>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Runs in parallel, each single-threaded (default 2).
    #[arg(long, allow_negative_numbers = true)]
    pub jobs: Option<usize>,
    /// The longer protocol: T ×4, 3 seeds, a wider lr grid. Explicit flags still override.
    #[arg(long)]
    pub full: bool,
    /// Hide the progress bars and do not print the tables.
    #[arg(long)]
    pub quiet: bool,
    /// Reuse the runs an earlier invocation with the same protocol finished (kept in
    /// OUT/finished/); without it every run is trained again.
    #[arg(long)]
    pub resume: bool,
    /// Skip the plots.
    #[arg(long)]
    pub no_plots: bool,
    /// Also run AdamW with this JSON ScheduleConfig (e.g. from `sflab refine`) at T over the
    /// same lr grid: method `custom`, in runs.csv, the lr table at T and the lr-sweep plot.
    #[arg(long, value_name = "SCHEDULE.json")]
    pub schedule: Option<PathBuf>,
}

/// The fully resolved protocol of one `sflab pareto` invocation (written to `config.json`).
#[derive(Debug, Clone, Serialize)]
pub struct ParetoConfig {
    /// The task.
    pub task: Task,
    /// Schedule-Free run length `T`.
    pub steps: u64,
    /// Budgets in updates, ascending; the last is `T`.
    pub budgets: Vec<u64>,
    /// The lr grid of every method, ascending.
    pub lrs: Vec<f64>,
    /// The β sweep's values.
    pub betas: Vec<f64>,
    /// Seeds `0..seeds`.
    pub seeds: u64,
    /// Evaluation interval in updates.
    pub eval_every: u64,
    /// Held-out batches per evaluation (`None`: the whole test split).
    pub eval_batches: Option<usize>,
    /// Minibatch size.
    pub batch_size: usize,
    /// Warmup fraction.
    pub warmup_fraction: f64,
    /// Weight decay of every method.
    pub weight_decay: f64,
    /// Dataset directory passed to the trainer (`None`: its default).
    pub data_dir: Option<PathBuf>,
    /// Output directory.
    pub out: PathBuf,
    /// Parallel runs.
    pub jobs: usize,
    /// Whether `--full` was given.
    pub full: bool,
    /// Show progress and print the tables.
    pub verbose: bool,
    /// Draw the plots.
    pub plots: bool,
    /// Reuse finished runs from `out/finished/` (`--resume`).
    pub resume: bool,
    /// The `--schedule` file's schedule, run as [`Method::Custom`] at `T`.
    pub schedule: Option<crate::convex::config::CustomSchedule>,
}

fn sorted_unique(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

impl ParetoConfig {
    /// What a run's numbers depend on besides its spec (for `--resume`): this protocol with
    /// the output folder, job count, verbosity, plots and `--resume` itself cleared.
    pub fn run_context(&self) -> ParetoConfig {
        ParetoConfig {
            out: PathBuf::new(),
            jobs: 0,
            verbose: false,
            plots: false,
            resume: false,
            ..self.clone()
        }
    }

    /// Apply defaults (the task's default or `--full` protocol) and validate.
    ///
    /// # Errors
    /// Zero steps, seeds, jobs, batch size or evaluation batches; budgets
    /// that do not divide `T`; an evaluation interval that does not divide every budget;
    /// lrs not positive and finite; β outside `(0, 1]`; warmup outside `[0, 1]`; negative
    /// weight decay.
    pub fn resolve(args: &ParetoArgs) -> anyhow::Result<ParetoConfig> {
        let task = args.task.unwrap_or(DEFAULT_TASK);
        let d = task_defaults(task);
        let full = args.full;
        let steps = args.steps.unwrap_or(if full {
            d.steps * FULL_STEPS_FACTOR
        } else {
            d.steps
        });
        if steps == 0 {
            bail!("--steps must be positive");
        }
        let divisors = args
            .budgets
            .clone()
            .unwrap_or(DEFAULT_BUDGET_DIVISORS.to_vec());
        if divisors.is_empty() {
            bail!("--budgets must not be empty");
        }
        let mut budgets = Vec::new();
        for &k in &divisors {
            if k == 0 || !steps.is_multiple_of(k) {
                bail!("budget divisor {k} does not divide --steps {steps}");
            }
            budgets.push(steps / k);
        }
        budgets.sort_unstable();
        budgets.dedup();
        if budgets.last() != Some(&steps) {
            budgets.push(steps);
        }
        let eval_every = match args.eval_every {
            Some(e) => e,
            None => {
                let per = d.evals_per_min_budget;
                if per > 0 && budgets[0].is_multiple_of(per) {
                    budgets[0] / per
                } else {
                    budgets[0]
                }
            }
        };
        if eval_every == 0 || budgets.iter().any(|b| !b.is_multiple_of(eval_every)) {
            bail!("--eval-every {eval_every} must be positive and divide every budget {budgets:?}");
        }
        let lrs = sorted_unique(args.lrs.clone().unwrap_or_else(|| {
            if full {
                d.full_lrs.to_vec()
            } else {
                d.lrs.to_vec()
            }
        }));
        if lrs.is_empty() || lrs.iter().any(|&l| !(l > 0.0 && l.is_finite())) {
            bail!("--lrs must be non-empty, positive and finite, got {lrs:?}");
        }
        let betas = sorted_unique(args.betas.clone().unwrap_or(DEFAULT_BETAS.to_vec()));
        if betas.is_empty() || betas.iter().any(|&b| !(b > 0.0 && b <= 1.0)) {
            bail!("--betas must be non-empty and in (0, 1], got {betas:?}");
        }
        let seeds = args.seeds.unwrap_or(if full { FULL_SEEDS } else { 1 });
        let jobs = args.jobs.unwrap_or(DEFAULT_JOBS);
        let batch_size = args
            .batch_size
            .unwrap_or_else(|| TrainConfig::default_for(task).batch_size);
        let eval_batches = match args.eval_batches {
            Some(0) => None,
            Some(n) => Some(n),
            None => d.eval_batches,
        };
        if seeds == 0 || jobs == 0 || batch_size == 0 {
            bail!("--seeds, --jobs and --batch-size must be positive");
        }
        let warmup_fraction = args.warmup.unwrap_or(DEFAULT_WARMUP_FRACTION);
        if !(0.0..=1.0).contains(&warmup_fraction) {
            bail!("--warmup must be a fraction in [0, 1], got {warmup_fraction}");
        }
        let weight_decay = args.weight_decay.unwrap_or(DEFAULT_WEIGHT_DECAY);
        if !(weight_decay >= 0.0 && weight_decay.is_finite()) {
            bail!("--weight-decay must be non-negative, got {weight_decay}");
        }
        Ok(ParetoConfig {
            task,
            steps,
            budgets,
            lrs,
            betas,
            seeds,
            eval_every,
            eval_batches,
            batch_size,
            warmup_fraction,
            weight_decay,
            data_dir: args.data_dir.clone(),
            out: args
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("sflab-out/pareto").join(task.name())),
            jobs,
            full,
            verbose: !args.quiet,
            resume: args.resume,
            plots: !args.no_plots,
            schedule: match &args.schedule {
                Some(path) => {
                    let s = crate::convex::config::CustomSchedule::load(path)?;
                    if let Some(h) = s.horizon.filter(|&h| h != steps) {
                        eprintln!(
                            "warning: --schedule {} has a horizon of {h} updates, T is {steps}",
                            path.display()
                        );
                    }
                    Some(s)
                }
                None => None,
            },
        })
    }

    /// Warmup updates of a run of `steps` updates: `round(fraction · steps)`, at least 1 when
    /// the fraction is positive, at most `steps`.
    pub fn warmup_steps(&self, steps: u64) -> u64 {
        if self.warmup_fraction <= 0.0 {
            return 0;
        }
        ((self.warmup_fraction * steps as f64).round() as u64).clamp(1, steps)
    }

    /// The runs of the lr grid: Schedule-Free (β = [`SF_BETA`]) at `T`, ScheduleFree+ at `T`
    /// (lr [`SF_PLUS_LR`] only), then every schedule at every budget, each for every lr and
    /// seed. Longest first, so that the pool ends together.
    pub fn grid_specs(&self) -> Vec<RunSpec> {
        let mut v = Vec::new();
        let mut push = |method, steps, lrs: &[f64]| {
            for &lr in lrs {
                for seed in 0..self.seeds {
                    v.push(RunSpec {
                        method,
                        steps,
                        lr,
                        beta: SF_BETA,
                        seed,
                        beta_sweep: false,
                    });
                }
            }
        };
        push(Method::ScheduleFree, self.steps, &self.lrs);
        push(Method::ScheduleFreePlus, self.steps, &[SF_PLUS_LR]);
        if self.schedule.is_some() {
            push(Method::Custom, self.steps, &self.lrs);
        }
        for &b in self.budgets.iter().rev() {
            for m in Method::SCHEDULES {
                push(m, b, &self.lrs);
            }
        }
        v
    }

    /// The runs of the β sweep at Schedule-Free lr `lr`: every β except [`SF_BETA`] (whose run
    /// is in the grid), every seed.
    pub fn beta_specs(&self, lr: f64) -> Vec<RunSpec> {
        let mut v = Vec::new();
        for &beta in &self.betas {
            if beta == SF_BETA {
                continue;
            }
            for seed in 0..self.seeds {
                v.push(RunSpec {
                    method: Method::ScheduleFree,
                    steps: self.steps,
                    lr,
                    beta,
                    seed,
                    beta_sweep: true,
                });
            }
        }
        v
    }

    /// The trainer's configuration for `spec`.
    pub fn train_config(&self, spec: &RunSpec) -> TrainConfig {
        let mut c = TrainConfig::default_for(self.task);
        let warmup = match spec.method {
            // One Schedule-Free run serves every budget: its warmup is a fraction of T.
            Method::ScheduleFree => self.warmup_steps(self.steps),
            _ => self.warmup_steps(spec.steps),
        };
        c.data_dir = self.data_dir.clone().or(c.data_dir);
        c.optimizer = spec
            .method
            .preset(spec.lr, spec.beta, spec.steps, warmup, self.weight_decay);
        if let (Method::Custom, Some(s), PresetConfig::AdamW { schedule, .. }) =
            (spec.method, &self.schedule, &mut c.optimizer)
        {
            *schedule = s.config.clone();
        }
        c.steps = spec.steps;
        c.batch_size = self.batch_size;
        c.seed = spec.seed;
        c.eval_every = self.eval_every;
        c.eval_batches = self.eval_batches;
        c.eval_at_x = true;
        c
    }

    /// Relative cost of the whole protocol in updates (grid plus β sweep).
    pub fn total_updates(&self) -> u64 {
        let grid: u64 = self.grid_specs().iter().map(|s| s.steps).sum();
        grid + self
            .beta_specs(self.lrs[0])
            .iter()
            .map(|s| s.steps)
            .sum::<u64>()
    }
}
