//! `sflab refine-run`: schedule refinement on a real network (Defazio et al., arXiv 2310.07831).
//!
//! 1. AdamW (β = (0.9, 0.999), no weight decay) with linear warmup over 5 % of `T` and
//!    linear decay to 0 at `T`, at the task's batch size and lr (or `--lr`); the per-step
//!    global gradient norms are logged (`linear_decay.csv`, the `sflab train` metrics format).
//! 2. [`crate::refine::refine_with`] on that log, exactly as `sflab refine --log
//!    linear_decay.csv --norm l1 --steps T` would (`refined_l1.json` + `.png`; ℓ1 norms
//!    because AdamW is an Adam-type learner), and the same with ℓ2 for comparison
//!    (`refined_l2.json`).
//! 3. The same task, seed, lr and batch order rerun with the refined ℓ1 schedule
//!    (`refined_l1.csv`).
//! 4. `summary.md` / `summary.json` (final held-out loss and accuracy of both runs, their
//!    difference, the refined schedules' warmup and values at fixed fractions of the run),
//!    `schedules.png/.svg` and `curves.png/.svg`.
//!
//! The refinement is the core's; this module only runs, reads and writes.

pub mod plot;
pub mod summary;

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::output::{write_json, write_text};
use indicatif::{ProgressBar, ProgressStyle};
use schedulefree::PresetConfig;
use schedulefree::schedule::ScheduleConfig;

use crate::refine::{NormArg, RefineArgs, RefineOutcome, refine_with};
use crate::train::config::adamw_linear_decay;
use crate::train::{EvalRecord, MetricsSink, RunResult, StepMetrics, Task, TrainConfig, open_sink};

pub use summary::{RefineRunSummary, ScheduleStats};

/// Default output folder (the task's name is appended).
pub const DEFAULT_OUT: &str = "sflab-out/refine-run";

/// Fraction of `T` that linear decay warms up over.
pub const WARMUP_FRACTION: f64 = 0.05;

/// Default `T` of each task: both runs together take at most about 4 minutes on 2 cores
/// (measured: mnist_mlp 1500 steps 2 s per run; tragedies_transformer 800 steps 200 s per
/// run on a loaded machine, hence 500).
pub fn default_steps(task: Task) -> u64 {
    match task {
        Task::MnistMlp | Task::FashionMlp => 1500,
        Task::MnistCnn | Task::FashionCnn => 800,
        Task::TragediesTransformer | Task::TinyShakespeareTransformer => 500,
    }
}

/// Command-line arguments of `sflab refine-run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RefineRunArgs {
    /// Model and data.
    #[arg(long, value_enum)]
    pub task: Task,
    /// Run length T in steps (default per task: MLPs 1500, CNNs 800, transformers 500).
    #[arg(long, value_name = "T")]
    pub steps: Option<u64>,
    /// Peak lr of both runs (default: the task's default lr of `sflab train`).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Seed of the weights and the data order (shared by both runs).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Evaluate every N steps (default T/20).
    #[arg(long)]
    pub eval_every: Option<u64>,
    /// Median-filter window of the refinement as a fraction of T.
    #[arg(long, value_name = "TAU", default_value_t = 0.1)]
    pub smoothing: f64,
    /// Folder holding non-bundled data (default ../shared/data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Output folder (default sflab-out/refine-run/TASK).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// What [`run_with`] produced.
#[derive(Debug, Clone)]
pub struct RefineRunOutcome {
    /// The linear-decay run.
    pub linear_decay: RunResult,
    /// The rerun with the refined ℓ1 schedule.
    pub refined: RunResult,
    /// The ℓ1 refinement (the schedule that was rerun).
    pub l1: RefineOutcome,
    /// The ℓ2 refinement (reported, not run).
    pub l2: RefineOutcome,
    /// The numbers of `summary.md`.
    pub summary: RefineRunSummary,
    /// The output folder.
    pub out: PathBuf,
    /// Why a figure could not be drawn, if one could not (every other output is complete).
    pub plot_error: Option<String>,
}

/// A metrics sink that skips the per-parameter norms (the refinement needs only the global
/// gradient norms, which every step row carries).
struct GlobalNormsOnly(Box<dyn MetricsSink>);

impl MetricsSink for GlobalNormsOnly {
    fn step(&mut self, m: &StepMetrics) -> anyhow::Result<()> {
        self.0.step(m)
    }
    fn eval(&mut self, r: &EvalRecord) -> anyhow::Result<()> {
        self.0.eval(r)
    }
    fn flush(&mut self) -> anyhow::Result<()> {
        self.0.flush()
    }
    fn wants_param_norms(&self) -> bool {
        false
    }
}

/// The base config of both runs: the task's default batch, lr and evaluation set, `T` steps.
pub fn base_config(args: &RefineRunArgs) -> anyhow::Result<TrainConfig> {
    let mut c = TrainConfig::default_for(args.task);
    c.steps = args.steps.unwrap_or_else(|| default_steps(args.task));
    if c.steps < 2 {
        anyhow::bail!("--steps must be at least 2");
    }
    c.seed = args.seed;
    c.eval_every = args.eval_every.unwrap_or((c.steps / 20).max(1));
    c.data_dir.clone_from(&args.data_dir);
    let lr = args.lr.unwrap_or_else(|| c.optimizer.lr());
    if !(lr.is_finite() && lr > 0.0) {
        anyhow::bail!("--lr must be positive and finite");
    }
    let warmup = (c.steps as f64 * WARMUP_FRACTION).round() as u64;
    c.optimizer = adamw_linear_decay(lr, warmup, c.steps);
    Ok(c)
}

fn train(config: &TrainConfig, log: &Path, label: &str, quiet: bool) -> anyhow::Result<RunResult> {
    let mut sink = GlobalNormsOnly(open_sink(log)?);
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(config.steps)
    };
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{label:>12} {{bar:30}} {{pos}}/{{len}} [{{elapsed}} < {{eta}}] {{msg}}"
        ))
        .context("progress template")?,
    );
    let r = crate::train::run(config, Some(&bar), Some(&mut sink))
        .with_context(|| format!("the {label} run of {}", config.task))?;
    bar.finish();
    if r.diverged {
        anyhow::bail!("the {label} run of {} diverged (lower --lr)", config.task);
    }
    Ok(r)
}

fn refine_log(
    log: &Path,
    norm: NormArg,
    steps: u64,
    smoothing: f64,
    out: PathBuf,
) -> anyhow::Result<RefineOutcome> {
    let o = refine_with(&RefineArgs {
        log: log.to_path_buf(),
        column: None,
        norm,
        steps: Some(steps as usize),
        smoothing,
        out,
        no_plot: false,
    })?;
    if let Some(e) = &o.plot_error {
        eprintln!("warning: refinement plot not drawn: {e}");
    }
    Ok(o)
}

/// Runs the whole protocol (module docs) and writes every output into the output folder.
///
/// # Errors
/// Invalid arguments, data that cannot be loaded, a diverged run, unwritable outputs. A
/// figure that cannot be drawn is reported in [`RefineRunOutcome::plot_error`].
pub fn run_with(args: &RefineRunArgs) -> anyhow::Result<RefineRunOutcome> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new(DEFAULT_OUT).join(args.task.name()));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let ld_config = base_config(args)?;
    let steps = ld_config.steps;
    let ld_log = out.join("linear_decay.csv");
    let linear_decay = train(&ld_config, &ld_log, "linear decay", args.quiet)?;

    let l1 = refine_log(
        &ld_log,
        NormArg::L1,
        steps,
        args.smoothing,
        out.join("refined_l1.json"),
    )?;
    let l2 = refine_log(
        &ld_log,
        NormArg::L2,
        steps,
        args.smoothing,
        out.join("refined_l2.json"),
    )?;

    let mut refined_config = ld_config.clone();
    let PresetConfig::AdamW { config: adamw, .. } = &ld_config.optimizer else {
        anyhow::bail!("the linear-decay run is not AdamW");
    };
    refined_config.optimizer = PresetConfig::AdamW {
        config: *adamw,
        schedule: ScheduleConfig::Tabulated {
            values: l1.schedule.values().to_vec(),
        },
    };
    let refined = train(
        &refined_config,
        &out.join("refined_l1.csv"),
        "refined l1",
        args.quiet,
    )?;
    write_json(&out.join("linear_decay_config.json"), &ld_config)?;
    write_json(&out.join("refined_l1_config.json"), &refined_config)?;

    let ld_values = summary::multipliers(&ld_config.optimizer, steps)?;
    let summary = RefineRunSummary::new(
        &ld_config,
        &linear_decay,
        &refined,
        &ld_values,
        l1.schedule.values(),
        l2.schedule.values(),
    )?;
    write_text(&out.join("summary.md"), &summary.markdown())?;
    write_json(&out.join("summary.json"), &summary)?;
    let plot_error = plot::figures(
        &out,
        &summary,
        &ld_values,
        &l1,
        &l2,
        &linear_decay,
        &refined,
    )
    .err()
    .map(|e| format!("{e:#}"));
    Ok(RefineRunOutcome {
        linear_decay,
        refined,
        l1,
        l2,
        summary,
        out,
        plot_error,
    })
}

/// `sflab refine-run`: [`run_with`], then the summary on stdout.
///
/// # Errors
/// As [`run_with`].
pub fn run(args: &RefineRunArgs) -> anyhow::Result<()> {
    let o = run_with(args)?;
    if let Some(e) = &o.plot_error {
        eprintln!("warning: figures not drawn: {e}");
    }
    print!("{}", o.summary.markdown());
    println!("wrote {}", o.out.display());
    Ok(())
}
