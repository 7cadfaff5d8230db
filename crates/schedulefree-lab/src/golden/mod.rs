//! `sflab golden`: replay golden trajectories recorded from the reference PyTorch code
//! (`golden/README.md`) through our public presets and report, per fixture, the largest
//! absolute and relative error of every recorded quantity.
//!
//! Each reference class maps onto the preset users call ([`method`]); torch schedulers are
//! reproduced by a `Tabulated` schedule of the recorded lrs. Open loop feeds the recorded
//! gradients; closed loop recomputes them from our own iterates. Tolerance:
//! `|ours − expected| ≤ tol · max(1, |expected|)` with `tol` = 1e-12 (float64) or 1e-5
//! (float32).

mod driver;
pub mod fixture;
mod kwargs;
pub mod method;
pub mod replay;
pub mod report;
pub mod sf_plus;
mod torch_scheduler;

use std::path::PathBuf;

use rayon::prelude::*;

pub use fixture::{Fixture, FixtureDtype, RecordKind, collect_fixture_paths};
pub use replay::{ReplayOptions, quadratic_gradient, replay_fixture, replay_path};
pub use report::{FixtureReport, LoopMode, Outcome, QuantityError, Status};

/// Which loops to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// Feed the recorded gradients (isolates the optimizer).
    Open,
    /// Recompute the gradients from our own `y`.
    Closed,
    /// Both, one report each.
    Both,
}

impl ModeArg {
    /// The loop modes this selects.
    pub fn modes(self) -> Vec<LoopMode> {
        match self {
            ModeArg::Open => vec![LoopMode::Open],
            ModeArg::Closed => vec![LoopMode::Closed],
            ModeArg::Both => vec![LoopMode::Open, LoopMode::Closed],
        }
    }
}

/// Command-line arguments of `sflab golden`.
#[derive(Debug, Clone, clap::Args)]
pub struct GoldenArgs {
    /// Fixture files; a directory means every `*.json` in it except `index.json` and
    /// `schedules.json` (not trajectories: skipped with a note when named as files).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Open loop (recorded gradients), closed loop (gradients from our own iterates) or both.
    #[arg(long, value_enum, default_value_t = ModeArg::Both)]
    pub mode: ModeArg,
    /// Print a machine-readable JSON summary (an array of reports) instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Skip the eval()/train() round trip after every step (by default the buffer is switched
    /// to eval mode and back, compared with the recorded x and y, then restored).
    #[arg(long)]
    pub no_roundtrip: bool,
    /// Also print the preset used, worst locations and the quantities not compared.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Replay every fixture of `paths` (files or directories) in every mode of `modes`; reports
/// come in file order, then mode order.
///
/// # Errors
/// A path that does not exist or an unreadable directory. Unreadable or failing fixtures are
/// reported, not returned as errors.
pub fn replay_all(
    paths: &[PathBuf],
    modes: &[LoopMode],
    roundtrip: bool,
) -> anyhow::Result<Vec<FixtureReport>> {
    let files = collect_fixture_paths(paths)?;
    anyhow::ensure!(!files.is_empty(), "no fixture files found in {paths:?}");
    Ok(files
        .par_iter()
        .map(|f| replay_path(f, modes, roundtrip))
        .collect::<Vec<_>>()
        .into_iter()
        .flatten()
        .collect())
}

/// Run the replay and print the reports.
///
/// # Errors
/// Unreadable paths, or (after printing) any supported fixture beyond tolerance or failing to
/// replay, so that the process exits non-zero.
pub fn run(args: &GoldenArgs) -> anyhow::Result<()> {
    let reports = replay_all(&args.files, &args.mode.modes(), !args.no_roundtrip)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        for r in &reports {
            print!("{}", report::format_report(r, args.verbose));
        }
        println!();
        print!("{}", report::format_summary(&reports));
    }
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| r.failed())
        .map(|r| format!("{} [{}]", r.name, r.mode.as_str()))
        .collect();
    anyhow::ensure!(
        failed.is_empty(),
        "{} replay(s) failed: {}",
        failed.len(),
        failed.join(", ")
    );
    Ok(())
}
