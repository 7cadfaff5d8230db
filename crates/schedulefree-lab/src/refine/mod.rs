//! `sflab refine`: a gradient-norm log (CSV) → a refined learning-rate schedule (JSON
//! `ScheduleConfig`, usable as `--schedule`) and a PNG of both (Defazio et al., arXiv 2310.07831).
//!
//! The refinement itself is [`schedulefree::schedule::refine`]: invalid values filled in,
//! median filter of width `2·⌊τ·N/2⌋ + 1`, resampling to `--steps`, `w_t = ‖g_t‖⁻²` (ℓ2) or
//! `‖g_t‖₁⁻¹` (ℓ1), `η_t ∝ w_t Σ_{p>t} w_p`, peak 1, last update 0. This module reads the CSV,
//! writes the files and draws the plot.
//!
//! The log is any CSV with a header row and one row per update of the logged run; the
//! column defaults to `grad_l2` (`--norm l2`) or `grad_l1` (`--norm l1`), the columns the
//! training commands write (e.g. `refined/<dataset>_<base>_norms.csv` of
//! `sflab convex --suite schedules`).
//!
//! [`rerun`] is `sflab refine-run`: a linear-decay run, this refinement of its norms, and the
//! rerun with the refined schedule.

pub mod norms_csv;
pub mod plot;
pub mod rerun;

use std::path::{Path, PathBuf};

use anyhow::Context;
use schedulefree::schedule::{Refine, RefineNorm, ScheduleConfig, Tabulated, refine};

use norms_csv::{L1_COLUMN, L2_COLUMN};
use plot::{RefinementPlot, plot_refinement};

/// Which gradient norm the log holds (`--norm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum NormArg {
    /// ℓ2 norms, weights `‖g‖⁻²` (SGD-type learners).
    #[default]
    L2,
    /// ℓ1 norms, weights `‖g‖₁⁻¹` (Adam-type learners).
    L1,
}

impl NormArg {
    /// The core's norm selector.
    pub fn norm(self) -> RefineNorm {
        match self {
            NormArg::L2 => RefineNorm::L2,
            NormArg::L1 => RefineNorm::L1,
        }
    }

    /// The column the training commands log this norm in.
    pub fn default_column(self) -> &'static str {
        match self {
            NormArg::L2 => L2_COLUMN,
            NormArg::L1 => L1_COLUMN,
        }
    }
}

/// Command-line arguments of `sflab refine`.
#[derive(Debug, Clone, clap::Args)]
pub struct RefineArgs {
    /// Gradient-norm log: CSV with a header row, one row per update of a previous run with
    /// the same horizon.
    #[arg(long, value_name = "RUN.csv")]
    pub log: PathBuf,
    /// Column holding the norms (default: grad_l2 for --norm l2, grad_l1 for --norm l1).
    #[arg(long, value_name = "NAME")]
    pub column: Option<String>,
    /// Norm of the log: l2 (weights ‖g‖⁻², SGD-type) or l1 (weights ‖g‖₁⁻¹, Adam-type).
    #[arg(long, value_enum, default_value_t = NormArg::L2)]
    pub norm: NormArg,
    /// Length of the schedule in updates (default: the number of rows of the log); the
    /// smoothed norms are resampled to it.
    #[arg(long, value_name = "T")]
    pub steps: Option<usize>,
    /// Median-filter window as a fraction of the log length, in [0, 1] (0 = none).
    #[arg(long, value_name = "TAU", default_value_t = 0.1)]
    pub smoothing: f64,
    /// Output schedule (JSON `{"kind": "tabulated", "values": [...]}`); the PNG is written
    /// next to it with the extension `.png`.
    #[arg(short = 'o', long = "out", value_name = "SCHEDULE.json")]
    pub out: PathBuf,
    /// Do not draw the PNG.
    #[arg(long)]
    pub no_plot: bool,
}

/// What [`refine_with`] produced.
#[derive(Debug, Clone)]
pub struct RefineOutcome {
    /// The norms read from the log.
    pub norms: Vec<f64>,
    /// The column they were read from.
    pub column: String,
    /// The refined schedule.
    pub schedule: Tabulated,
    /// Its warmup length ([`warmup_length`]).
    pub warmup: usize,
    /// The JSON written.
    pub json: PathBuf,
    /// The PNG written, if it was drawn.
    pub png: Option<PathBuf>,
    /// Why the PNG could not be drawn, if it could not (the JSON is written first).
    pub plot_error: Option<String>,
}

/// Warmup length of a schedule: the number of updates before it first reaches its maximum
/// (0 when the first update is at the peak, as for linear decay).
pub fn warmup_length(values: &[f64]) -> usize {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    values.iter().position(|&v| v == max).unwrap_or(0)
}

/// The PNG path of a schedule file: the same path with the extension `.png`.
pub fn png_path(json: &Path) -> PathBuf {
    json.with_extension("png")
}

/// Write `schedule` as a JSON [`ScheduleConfig::Tabulated`] to `path`, atomically
/// ([`schedulefree::write_atomic`]), creating the parent directory if needed.
///
/// # Errors
/// The directory or file cannot be written.
pub fn write_schedule(path: &Path, schedule: &Tabulated) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let config = ScheduleConfig::Tabulated {
        values: schedule.values().to_vec(),
    };
    let json = serde_json::to_string_pretty(&config).context("serialising the schedule")?;
    schedulefree::write_atomic(path, json.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// The legend of a norm column, e.g. `grad_l2 (ℓ2)`.
pub fn norm_label(column: &str, norm: RefineNorm) -> String {
    let n = match norm {
        RefineNorm::L2 => "ℓ2",
        RefineNorm::L1 => "ℓ1",
    };
    format!("{column} ({n})")
}

/// Read the log, refine, write the JSON and (unless `--no-plot`) the PNG; prints nothing.
///
/// # Errors
/// An unreadable log or a bad column ([`norms_csv::NormCsvError`]), invalid settings
/// (`--steps 0`, `--smoothing` outside `[0, 1]`), an unwritable output. A plotting failure is
/// not an error: see [`RefineOutcome::plot_error`].
pub fn refine_with(args: &RefineArgs) -> anyhow::Result<RefineOutcome> {
    let column = args
        .column
        .clone()
        .unwrap_or_else(|| args.norm.default_column().to_string());
    let norms = norms_csv::read_column(&args.log, &column)?;
    let settings = Refine {
        norm: args.norm.norm(),
        smoothing: args.smoothing,
        steps: args.steps,
    };
    let schedule = refine(&norms, &settings).with_context(|| {
        format!(
            "refining (--steps must be positive, --smoothing in [0, 1]; got {:?}, {})",
            args.steps, args.smoothing
        )
    })?;
    let warmup = warmup_length(schedule.values());
    write_schedule(&args.out, &schedule)?;
    let (mut png, mut plot_error) = (None, None);
    if !args.no_plot {
        let path = png_path(&args.out);
        let name = args
            .log
            .file_name()
            .map_or_else(|| "log".into(), |n| n.to_string_lossy().into_owned());
        let label = norm_label(&column, settings.norm);
        let plot = RefinementPlot {
            name: &name,
            norm_label: &label,
            norm: settings.norm,
            norms: &norms,
            schedule: schedule.values(),
            warmup,
        };
        match plot_refinement(&path, &plot) {
            Ok(()) => png = Some(path),
            Err(e) => plot_error = Some(format!("{e:#}")),
        }
    }
    Ok(RefineOutcome {
        norms,
        column,
        schedule,
        warmup,
        json: args.out.clone(),
        png,
        plot_error,
    })
}

/// `sflab refine`: [`refine_with`], then a summary line on stderr.
///
/// # Errors
/// As [`refine_with`].
pub fn run(args: &RefineArgs) -> anyhow::Result<()> {
    let o = refine_with(args)?;
    if let Some(e) = &o.plot_error {
        eprintln!("warning: plot not drawn: {e}");
    }
    let steps = o.schedule.values().len();
    eprintln!(
        "sflab refine: {} norms from column {:?} -> {} updates, warmup {} ({:.1} %); wrote {}{}",
        o.norms.len(),
        o.column,
        steps,
        o.warmup,
        100.0 * o.warmup as f64 / steps as f64,
        o.json.display(),
        o.png
            .as_ref()
            .map(|p| format!(" and {}", p.display()))
            .unwrap_or_default()
    );
    Ok(())
}
