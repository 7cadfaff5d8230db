//! `sflab pareto`: one Schedule-Free run against cosine and linear-decay runs of every
//! budget, on a real model/data pair — the Schedule-Free paper's Pareto-frontier,
//! β-sensitivity and lr-sensitivity checks (Defazio et al., arXiv 2405.15682, Figures 1, 5, 6, 8).
//!
//! # Protocol
//!
//! * **Task**: a model/data pair of `sflab train` (`--task`, default `fashion_mlp`), trained
//!   by [`crate::train::run`] with the task's model, batch size and data.
//! * **Budgets**: `T/8, T/4, T/2, T` (`--budgets` divisors). Schedule-Free AdamW (β = 0.9)
//!   runs **once** for `T` updates; AdamW with cosine decay to 0 and with linear decay to 0
//!   runs once per budget, each schedule ending exactly at its budget ([`method`]).
//! * **lr grid**: the same small grid for every method ([`config::task_defaults`]); a
//!   schedule's best lr at a budget is the lowest held-out loss at its end; Schedule-Free's
//!   lr is chosen once, by its loss at `T` (its best lr at each budget, from the same runs,
//!   is reported beside it).
//! * **Warmup**: linear, over the same fraction (5 %) of each schedule run's own length and of
//!   `T` for Schedule-Free (whose single run has no other length).
//! * **Evaluation**: 4 (MLPs) or 2 (CNNs, transformers) times per smallest budget, hence at
//!   every budget, on the same held-out set, Schedule-Free at `x`. One Schedule-Free run is
//!   thus read at every budget.
//! * **β sweep**: Schedule-Free at its best lr with β ∈ {0.5, 0.9, 0.95, 0.98}; per budget,
//!   which β is best (the paper: the same at every horizon).
//! * **lr sweep**: the grid's results for every method at every budget (sensitivity curves).
//! * **1/√T check**: [`power_law`] fits `L(t) − L∞ = A·t^(−a)` on Schedule-Free's curve for
//!   `t ≥ T/8` and reports `a`, `L∞` and R².
//!
//! Runs are independent; `--jobs` (default 2) run at once, each on one thread ([`sweep`]).
//! The defaults ([`config::task_defaults`]) finish in under 10 minutes on 2 cores; `--full`
//! quadruples `T`, uses 3 seeds and a wider grid.
//!
//! # Outputs (under `--out`, default `sflab-out/pareto/<task>`)
//!
//! `runs.csv`, `curves.csv`, `summary.md`, `config.json`, and `pareto`, `lr_sweep`,
//! `beta_sweep` as `.png` and `.svg`.

pub mod config;
pub mod csv_out;
pub mod markdown;
pub mod method;
pub mod plot;
pub mod power_law;
pub mod record;
pub mod report;
pub mod select;
pub mod sweep;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::experiment::Finished;
use crate::output::{write_json, write_text};

pub use config::{ParetoArgs, ParetoConfig};
pub use method::{Method, RunSpec};
pub use record::{EvalPoint, RunRecord};
pub use report::Report;

/// Paths written by [`run_with`].
#[derive(Debug, Clone, PartialEq)]
pub struct OutputFiles {
    /// `runs.csv`.
    pub runs: PathBuf,
    /// `curves.csv`.
    pub curves: PathBuf,
    /// `summary.md`.
    pub summary_md: PathBuf,
    /// `config.json`.
    pub config: PathBuf,
    /// The plots that were drawn (PNG and SVG of each figure).
    pub plots: Vec<PathBuf>,
}

/// The result of [`run_with`].
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The resolved protocol.
    pub config: ParetoConfig,
    /// Every finished run.
    pub records: Vec<RunRecord>,
    /// The report.
    pub report: Report,
    /// The markdown summary (also in `summary.md`).
    pub markdown: String,
    /// Files written.
    pub files: OutputFiles,
    /// Why the plots could not be drawn, if they could not (every other output is complete).
    pub plot_error: Option<String>,
    /// Wall time of the whole protocol.
    pub elapsed: Duration,
}

/// What [`write_outputs`] produced.
#[derive(Debug, Clone)]
pub struct Written {
    /// The report.
    pub report: Report,
    /// The markdown summary (also in `summary.md`).
    pub markdown: String,
    /// Files written.
    pub files: OutputFiles,
    /// Why the plots could not be drawn, if they could not.
    pub plot_error: Option<String>,
}

/// Write every output of `records` into `cfg.out` (the CSVs, `config.json`, `summary.md` and,
/// if enabled, the plots); `seconds` is the wall time stated in the summary.
///
/// # Errors
/// Unwritable output. A plotting failure is reported in [`Written::plot_error`], not as an
/// error.
pub fn write_outputs(
    cfg: &ParetoConfig,
    records: &[RunRecord],
    seconds: f64,
) -> anyhow::Result<Written> {
    let out = &cfg.out;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let report = Report::build(cfg, records);
    let mut files = OutputFiles {
        runs: out.join("runs.csv"),
        curves: out.join("curves.csv"),
        summary_md: out.join("summary.md"),
        config: out.join("config.json"),
        plots: Vec::new(),
    };
    csv_out::write_runs(&files.runs, records)?;
    csv_out::write_curves(&files.curves, records)?;
    let md = markdown::markdown(cfg, &report, seconds);
    write_text(&files.summary_md, &md)?;
    write_json(&files.config, cfg)?;
    let mut plot_error = None;
    if cfg.plots {
        match plot::plot_all(out, cfg, &report) {
            Ok(p) => files.plots = p,
            Err(e) => plot_error = Some(format!("{e:#}")),
        }
    }
    Ok(Written {
        report,
        markdown: md,
        files,
        plot_error,
    })
}

/// Run the protocol described by `args` and write every output; prints nothing (the progress
/// bars go to stderr unless `--quiet`).
///
/// # Errors
/// Bad arguments, data that cannot be loaded, a failed run (not divergence), unwritable
/// output. A plotting failure is not an error: see [`Outcome::plot_error`].
pub fn run_with(args: &ParetoArgs) -> anyhow::Result<Outcome> {
    let config = ParetoConfig::resolve(args)?;
    let start = Instant::now();
    let records = sweep::run_all(&config)?;
    let elapsed = start.elapsed();
    let w = write_outputs(&config, &records, elapsed.as_secs_f64())?;
    Ok(Outcome {
        config,
        records,
        report: w.report,
        markdown: w.markdown,
        files: w.files,
        plot_error: w.plot_error,
        elapsed,
    })
}

/// `sflab pareto`: run the protocol, write the outputs, print the summary to stdout (unless
/// `--quiet`) and a one-line summary to stderr.
///
/// # Errors
/// As [`run_with`].
pub fn run(args: &ParetoArgs) -> anyhow::Result<()> {
    let o = run_with(args)?;
    Finished {
        command: "pareto",
        markdown: &o.markdown,
        verbose: o.config.verbose,
        warnings: &[],
        plot_error: o.plot_error.as_deref(),
        what: &format!("{} runs", o.records.len()),
        elapsed: o.elapsed,
        out: &o.config.out,
    }
    .print();
    Ok(())
}
