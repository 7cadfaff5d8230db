//! Command-line arguments of `sflab train` and how they become a [`TrainConfig`].
//!
//! Without `--config`, the run is [`TrainConfig::default_for`] (or
//! [`TrainConfig::quick_for`] with `--quick`) of `--task`, with the optimizer built from
//! `--optimizer`, `--lr`, `--warmup` (default 5 % of the steps), `--weight-decay` (default 0)
//! and, for the last-iterate presets `adamw` / `sgd`, `--schedule` (default linear decay to
//! 0 at the last step; or `--schedule FILE`, a JSON `ScheduleConfig` such as `sflab refine`
//! writes, which selects `adamw` unless `--optimizer` names the other last-iterate preset,
//! and replaces the warmup). With `--config FILE` (a JSON [`TrainConfig`]) only the flags given
//! change it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::output::write_json;
use indicatif::{ProgressBar, ProgressStyle};
use schedulefree::PresetConfig;
use schedulefree::schedule::ScheduleConfig;

use super::config::{Task, TrainConfig};
use super::metrics::{DiagnosticsLevel, open_sink_with};
use super::{RunResult, run};

/// Task of a bare `sflab train`.
pub const DEFAULT_TASK: Task = Task::TragediesTransformer;

/// Default output folder.
pub const DEFAULT_OUT: &str = "sflab-out/train";

/// Schedule of a last-iterate preset (`adamw`, `sgd`), multiplying its lr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// Constant after warmup.
    Constant,
    /// Linear decay to 0 at the last step.
    Linear,
    /// Cosine decay to 0 at the last step.
    Cosine,
}

/// `--schedule`: a named shape or a JSON [`ScheduleConfig`] file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleArg {
    /// A shape ending at the run's last step, with `--warmup`.
    Kind(ScheduleKind),
    /// A JSON schedule file (e.g. written by `sflab refine`), used as it is.
    File(PathBuf),
}

/// Parses `--schedule`: `constant`, `linear`, `cosine`, or else a path to a JSON file.
///
/// # Errors
/// Never for a non-empty value (any other text is a path, checked when the run resolves).
pub fn parse_schedule_arg(text: &str) -> Result<ScheduleArg, String> {
    use clap::ValueEnum;
    if text.is_empty() {
        return Err("empty schedule".into());
    }
    Ok(match ScheduleKind::from_str(text, false) {
        Ok(kind) => ScheduleArg::Kind(kind),
        Err(_) => ScheduleArg::File(PathBuf::from(text)),
    })
}

/// `sflab train`: one run on real data; metrics to CSV/JSONL, result to `result.json` in `--out`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// A JSON TrainConfig to start from (flags given on the command line override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Model and data (default tragedies_transformer, about 2 minutes on 2 cores).
    #[arg(long, value_enum)]
    pub task: Option<Task>,
    /// Start from the task's short config (5-20 s) instead of its default (1-3 min).
    #[arg(long)]
    pub quick: bool,
    /// Folder holding non-bundled data (fashion-mnist/, text/tinyshakespeare.txt);
    /// default ../shared/data.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Optimizer preset (the `method` names of PresetConfig: adamw_schedule_free,
    /// sgd_schedule_free, radam_schedule_free, adamw, sgd, ...); default adamw_schedule_free.
    #[arg(long)]
    pub optimizer: Option<String>,
    /// The whole optimizer as PresetConfig JSON (overrides --optimizer, --lr, --warmup,
    /// --weight-decay, --schedule).
    #[arg(long)]
    pub optimizer_json: Option<String>,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Linear warmup in steps (default 5 % of the steps).
    #[arg(long)]
    pub warmup: Option<u64>,
    /// Weight decay (default 0).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Schedule of the last-iterate presets adamw / sgd: constant, linear (default), cosine,
    /// or a JSON ScheduleConfig file (e.g. from `sflab refine`; implies adamw unless
    /// --optimizer sgd; a warning if its horizon differs from --steps).
    #[arg(long, value_name = "KIND|SCHEDULE.json", value_parser = parse_schedule_arg)]
    pub schedule: Option<ScheduleArg>,
    /// Optimizer steps.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Minibatch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Seed of the weights and the data order.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Evaluate every N steps (0: only at the end).
    #[arg(long)]
    pub eval_every: Option<u64>,
    /// Cap the evaluation set at N batches.
    #[arg(long)]
    pub eval_batches: Option<usize>,
    /// Evaluate the training buffer y instead of the eval point x.
    #[arg(long)]
    pub eval_at_y: bool,
    /// Training batches for BatchNorm recalibration at x (0 disables; default 20).
    #[arg(long)]
    pub bn_recalibration: Option<usize>,
    /// Per-step metrics file (.csv or .jsonl); default metrics.csv in the --out folder.
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// Log norm diagnostics in the metrics file at the first step and at every evaluation:
    /// per parameter ‖g‖, ‖w‖, ‖u‖ (learner direction), ‖g‖/‖w‖, the steady-state ratio that
    /// weight decay predicts and the effective lr (Van Laarhoven, arXiv 1706.05350;
    /// AdamC, arXiv 2506.02285v2).
    #[arg(long)]
    pub diagnostics: bool,
    /// Output folder (config.json, result.json, default metrics).
    #[arg(long, default_value = DEFAULT_OUT)]
    pub out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

fn is_last_iterate(p: &PresetConfig) -> bool {
    matches!(p, PresetConfig::AdamW { .. } | PresetConfig::Sgd { .. })
}

/// A preset of `method` with its defaults.
///
/// # Errors
/// Unknown method name.
pub fn preset_named(method: &str) -> anyhow::Result<PresetConfig> {
    serde_json::from_value(serde_json::json!({ "method": method }))
        .with_context(|| format!("unknown optimizer {method:?}"))
}

/// Sets the peak lr of `p`.
pub fn set_lr(p: &mut PresetConfig, lr: f64) {
    p.set_lr(lr);
}

/// Sets the weight decay of `p`.
pub fn set_weight_decay(p: &mut PresetConfig, wd: f64) {
    p.set_weight_decay(wd);
}

/// The schedule `kind` with `warmup` steps, ending at step `total`.
pub fn schedule(kind: ScheduleKind, warmup: u64, total: u64) -> ScheduleConfig {
    match kind {
        ScheduleKind::Constant if warmup == 0 => ScheduleConfig::Constant {},
        ScheduleKind::Constant => ScheduleConfig::Warmup {
            warmup,
            schedule: Box::new(ScheduleConfig::Constant {}),
        },
        ScheduleKind::Linear => ScheduleConfig::Linear {
            warmup,
            total,
            end: 0.0,
        },
        ScheduleKind::Cosine => ScheduleConfig::Cosine {
            warmup,
            total,
            end: 0.0,
        },
    }
}

/// Sets the warmup of a Schedule-Free preset.
///
/// # Errors
/// Presets without a warmup setting (RAdam's own rectification replaces it; the last-iterate
/// presets take theirs from the schedule).
pub fn set_sf_warmup(p: &mut PresetConfig, warmup: u64) -> anyhow::Result<()> {
    match p {
        PresetConfig::SgdScheduleFree(c) | PresetConfig::SgdScheduleFreeReference(c) => {
            c.warmup_steps = warmup
        }
        PresetConfig::AdamWScheduleFree(c) | PresetConfig::AdamWScheduleFreePaper(c) => {
            c.warmup_steps = warmup
        }
        PresetConfig::AdamWScheduleFreeReference(c) => c.config.warmup_steps = warmup,
        PresetConfig::RAdamScheduleFree(_) | PresetConfig::ScheduleFreePlus(_) if warmup == 0 => {}
        other => bail!("{} has no warmup setting", other.name()),
    }
    Ok(())
}

impl TrainArgs {
    /// The optimizer from the flags for a run of `steps` steps, starting from `base`
    /// (`from_file`: only explicit flags change it).
    fn optimizer(
        &self,
        base: &PresetConfig,
        steps: u64,
        from_file: bool,
    ) -> anyhow::Result<PresetConfig> {
        if let Some(json) = &self.optimizer_json {
            return serde_json::from_str(json).context("--optimizer-json is not a PresetConfig");
        }
        let file = match &self.schedule {
            Some(ScheduleArg::File(path)) => {
                if self.warmup.is_some() {
                    bail!(
                        "--warmup does not apply with --schedule FILE (the file holds the whole schedule)"
                    );
                }
                Some(load_schedule(path, steps)?)
            }
            _ => None,
        };
        let mut p = match &self.optimizer {
            Some(m) if m != base.name() => preset_named(m)?,
            None if file.is_some() && !is_last_iterate(base) => {
                // A schedule file means a last-iterate run: AdamW at the task's lr, no decay.
                let mut p = preset_named("adamw")?;
                set_lr(&mut p, base.lr());
                set_weight_decay(&mut p, 0.0);
                p
            }
            _ => base.clone(),
        };
        if !from_file || self.optimizer.is_some() {
            // Built from flags: the task's lr unless the method changed to one with another
            // scale, 5 % warmup, no decay.
            if self.optimizer.as_deref().is_none_or(|m| m == base.name()) {
                set_lr(&mut p, base.lr());
            }
            set_weight_decay(&mut p, 0.0);
        }
        if let Some(lr) = self.lr {
            set_lr(&mut p, lr);
        }
        if let Some(wd) = self.weight_decay {
            set_weight_decay(&mut p, wd);
        }
        let rebuild = !from_file || self.optimizer.is_some();
        let warmup = self.warmup.or(rebuild.then_some(steps / 20));
        if is_last_iterate(&p) {
            if let Some(s) = file {
                if let PresetConfig::AdamW { schedule, .. } | PresetConfig::Sgd { schedule, .. } =
                    &mut p
                {
                    *schedule = s;
                }
            } else if rebuild || self.schedule.is_some() || self.warmup.is_some() {
                let kind = match &self.schedule {
                    Some(ScheduleArg::Kind(k)) => *k,
                    _ => ScheduleKind::Linear,
                };
                let s = schedule(kind, warmup.unwrap_or(0), steps);
                match &mut p {
                    PresetConfig::AdamW { schedule, .. } | PresetConfig::Sgd { schedule, .. } => {
                        *schedule = s
                    }
                    _ => {}
                }
            }
        } else {
            if self.schedule.is_some() {
                bail!(
                    "--schedule applies to adamw and sgd; {} needs no schedule",
                    p.name()
                );
            }
            if let Some(w) = warmup {
                if matches!(
                    p,
                    PresetConfig::RAdamScheduleFree(_) | PresetConfig::ScheduleFreePlus(_)
                ) && self.warmup.is_none()
                {
                    // RAdam's rectification is its warmup; ScheduleFree+'s Polyak step sets
                    // its own lr (its `c_warmup` is set through --optimizer-json).
                } else {
                    set_sf_warmup(&mut p, w)?;
                }
            }
        }
        Ok(p)
    }

    /// The run these arguments describe.
    ///
    /// # Errors
    /// Unreadable or invalid `--config`, unknown optimizer, inconsistent flags.
    pub fn resolve(&self) -> anyhow::Result<TrainConfig> {
        let (mut c, from_file) = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let c: TrainConfig = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a TrainConfig", path.display()))?;
                (c, true)
            }
            None => {
                let task = self.task.unwrap_or(DEFAULT_TASK);
                let c = if self.quick {
                    TrainConfig::quick_for(task)
                } else {
                    TrainConfig::default_for(task)
                };
                (c, false)
            }
        };
        if let Some(t) = self.task {
            c.task = t;
        }
        if self.data_dir.is_some() {
            c.data_dir.clone_from(&self.data_dir);
        }
        if let Some(s) = self.steps {
            c.steps = s;
        }
        if let Some(b) = self.batch_size {
            c.batch_size = b;
        }
        if let Some(s) = self.seed {
            c.seed = s;
        }
        if let Some(e) = self.eval_every {
            c.eval_every = e;
        }
        if self.eval_batches.is_some() {
            c.eval_batches = self.eval_batches;
        }
        if self.eval_at_y {
            c.eval_at_x = false;
        }
        if let Some(n) = self.bn_recalibration {
            c.bn_recalibration = n;
        }
        c.optimizer = self.optimizer(&c.optimizer, c.steps, from_file)?;
        Ok(c)
    }
}

/// Reads a JSON [`ScheduleConfig`] for a run of `steps` steps, warning on stderr if its
/// horizon differs from `steps` (a tabulated schedule holds its last value after its end).
///
/// # Errors
/// An unreadable file, invalid JSON or an invalid schedule.
pub fn load_schedule(path: &Path, steps: u64) -> anyhow::Result<ScheduleConfig> {
    let custom = crate::convex::config::CustomSchedule::load(path)?;
    if let Some(h) = custom.horizon.filter(|&h| h != steps) {
        eprintln!(
            "warning: --schedule {} has a horizon of {h} updates, the run has {steps}",
            path.display()
        );
    }
    Ok(custom.config)
}

/// Prints the evaluations of `r` as a table.
pub fn print_result(r: &RunResult) {
    println!(
        "{} | {} lr {} | {} steps x batch {} | seed {} | eval at {}",
        r.config.task,
        r.config.optimizer.name(),
        r.config.optimizer.lr(),
        r.config.steps,
        r.config.batch_size,
        r.config.seed,
        if r.config.eval_at_x { "x" } else { "y" }
    );
    println!(
        "{:>7}  {:>10}  {:>9}  {:>8}  {:>10}  {:>8}",
        "step", "train_loss", "eval_loss", "eval_acc", "lr", "c"
    );
    for e in &r.evals {
        println!(
            "{:>7}  {:>10.4}  {:>9.4}  {:>7.2}%  {:>10.3e}  {:>8.2e}",
            e.step,
            e.train_loss,
            e.eval_loss,
            100.0 * e.eval_accuracy,
            e.lr,
            e.c
        );
    }
    if r.diverged {
        println!("diverged (non-finite training loss)");
    }
    println!("{:.1} s, {:.1} steps/s", r.seconds, r.steps_per_second);
}

/// Runs `sflab train`: resolves the config, trains with a progress bar, writes
/// `<out>/config.json`, `<out>/result.json` and the metrics file, and prints the evaluations.
///
/// # Errors
/// Those of [`TrainArgs::resolve`] and [`run`], and output write failures.
pub fn run_cli(args: &TrainArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    write_json(&args.out.join("config.json"), &config)?;
    let metrics_path = args
        .metrics
        .clone()
        .unwrap_or_else(|| args.out.join("metrics.csv"));
    let level = if args.diagnostics {
        DiagnosticsLevel::AtEvals
    } else {
        DiagnosticsLevel::Off
    };
    let mut sink = open_sink_with(&metrics_path, level)?;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(config.steps)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps [{elapsed} < {eta}] {msg}")
            .context("progress template")?,
    );
    let result = run(&config, Some(&bar), Some(sink.as_mut()))?;
    bar.finish();
    write_json(&args.out.join("result.json"), &result)?;
    print_result(&result);
    println!(
        "wrote {}, {}",
        args.out.join("result.json").display(),
        metrics_path.display()
    );
    Ok(())
}
