//! Two-phase refinement (the refinement pipeline of Defazio et al., arXiv 2310.07831): after the
//! linear-decay sweep, per (dataset, base), re-run linear decay at its best lr (seed 0)
//! logging every update's gradient norms, refine a schedule from them (ℓ2 and/or ℓ1, same
//! horizon, default smoothing), and hand the schedules to the refined methods' sweep.
//!
//! Files, under `<out>/refined/`: `<dataset>_<base>_norms.csv` (`step, grad_l2, grad_l1`,
//! readable by `sflab refine`), `<dataset>_<base>_{l2,l1}.json` (the schedules as
//! `ScheduleConfig`, usable as `--schedule`) and, with plots, the matching `.png`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rayon::prelude::*;
use schedulefree::schedule::{Refine, RefineNorm, ScheduleConfig, Tabulated, refine};
use serde::Serialize;

use super::config::{Base, ConvexConfig, Method, fmt_lr};
use super::overrides::Overrides;
use super::report::Report;
use super::run::{self, Prepared, RunResult, RunSpec, StepNorms, TrainOptions};
use crate::output::figure::safe_file_name;
use crate::refine::norms_csv::{L1_COLUMN, L2_COLUMN, write_norms};
use crate::refine::plot::{RefinementPlot, plot_refinement};
use crate::refine::{norm_label, png_path, warmup_length, write_schedule};

/// The seed of the logged linear-decay run.
pub const LOG_SEED: u64 = 0;

/// One refined schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefinedSchedule {
    /// The refined method it is for.
    pub method: Method,
    /// Updates before its peak ([`warmup_length`]).
    pub warmup: usize,
    /// The schedule file.
    pub json: PathBuf,
    /// The multipliers (not serialised: they are in `json`).
    #[serde(skip)]
    pub values: Vec<f64>,
}

/// The refinement of one (dataset, base).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refinement {
    /// Index into the sweep's datasets.
    pub dataset: usize,
    /// Base learner.
    pub base: Base,
    /// Linear decay's best lr, at which the norms were logged.
    pub lr: f64,
    /// Updates of a run (the schedules' length).
    pub total: u64,
    /// Updates the logged run completed (fewer than `total` only if it diverged).
    pub logged: usize,
    /// The norm log.
    pub norms_csv: PathBuf,
    /// One schedule per refined method of the sweep.
    pub schedules: Vec<RefinedSchedule>,
}

/// Whether `cfg` runs a refined method.
pub fn wanted(cfg: &ConvexConfig) -> bool {
    cfg.methods.iter().any(|m| m.refine_norm().is_some())
}

/// Refine the schedules of every (dataset, base) of `cfg` from `phase1` (which must hold the
/// linear-decay sweep), write them under `dir`, and register them in `overrides`.
///
/// # Errors
/// No linear-decay result for a (dataset, base), a failed logged run, unwritable files.
/// A plotting failure is not an error (returned as the second value).
pub fn refine_all(
    cfg: &ConvexConfig,
    datasets: &[Prepared],
    phase1: &[RunResult],
    dir: &Path,
    overrides: &mut Overrides,
) -> anyhow::Result<(Vec<Refinement>, Option<String>)> {
    let report = Report::build(cfg, datasets, phase1);
    let settings = cfg.settings();
    let mut jobs = Vec::new();
    for (dataset, prep) in datasets.iter().enumerate() {
        for &base in &cfg.bases {
            let best = report
                .best_of(dataset, base, Method::LinearDecay)
                .with_context(|| {
                    format!(
                        "no linear-decay result on {} / {base} to refine from",
                        prep.data.name
                    )
                })?;
            jobs.push(RunSpec {
                dataset,
                method: Method::LinearDecay,
                base,
                lr: best.lr,
                seed: LOG_SEED,
            });
        }
    }
    let logs: Vec<Vec<StepNorms>> = jobs
        .par_iter()
        .with_max_len(1)
        .map(|spec| {
            let mut norms = Vec::new();
            let options = TrainOptions {
                schedule: None,
                norms: Some(&mut norms),
            };
            run::train_with(&datasets[spec.dataset], spec, &settings, options).with_context(
                || {
                    format!(
                        "logging gradient norms of linear decay on {} / {} at lr {}",
                        datasets[spec.dataset].data.name,
                        spec.base,
                        fmt_lr(spec.lr)
                    )
                },
            )?;
            Ok(norms)
        })
        .collect::<anyhow::Result<_>>()?;

    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut out = Vec::with_capacity(jobs.len());
    let mut plot_error = None;
    for (spec, log) in jobs.iter().zip(logs) {
        let prep = &datasets[spec.dataset];
        let total = run::total_steps(prep, &settings);
        let stem = format!("{}_{}", safe_file_name(&prep.data.name), spec.base.name());
        let norms_csv = dir.join(format!("{stem}_norms.csv"));
        write_norms(
            &norms_csv,
            log.iter().map(|n| (n.step, n.grad_l2, n.grad_l1)),
        )?;
        let mut schedules = Vec::new();
        for &method in &cfg.methods {
            let Some(norm) = method.refine_norm() else {
                continue;
            };
            let (column, values): (&str, Vec<f64>) = match norm {
                RefineNorm::L2 => (L2_COLUMN, log.iter().map(|n| n.grad_l2).collect()),
                RefineNorm::L1 => (L1_COLUMN, log.iter().map(|n| n.grad_l1).collect()),
            };
            // A run that diverged at its first update logged nothing: all-invalid norms
            // refine to linear decay.
            let input = if values.is_empty() {
                vec![f64::NAN]
            } else {
                values.clone()
            };
            let settings = Refine {
                norm,
                steps: Some(total as usize),
                ..Refine::default()
            };
            let schedule: Tabulated =
                refine(&input, &settings).with_context(|| format!("refining {stem} ({method})"))?;
            let suffix = method.name().trim_start_matches("refined_");
            let json = dir.join(format!("{stem}_{suffix}.json"));
            write_schedule(&json, &schedule)?;
            let warmup = warmup_length(schedule.values());
            if cfg.plots && plot_error.is_none() {
                let name = format!(
                    "{} / {} (LD lr {})",
                    prep.data.name,
                    spec.base.label(),
                    fmt_lr(spec.lr)
                );
                let label = norm_label(column, norm);
                let plot = RefinementPlot {
                    name: &name,
                    norm_label: &label,
                    norm,
                    norms: &values,
                    schedule: schedule.values(),
                    warmup,
                };
                if let Err(e) = plot_refinement(&png_path(&json), &plot) {
                    plot_error = Some(format!("{e:#}"));
                }
            }
            overrides.set_refined(
                spec.dataset,
                spec.base,
                method,
                ScheduleConfig::Tabulated {
                    values: schedule.values().to_vec(),
                },
            );
            schedules.push(RefinedSchedule {
                method,
                warmup,
                json,
                values: schedule.values().to_vec(),
            });
        }
        out.push(Refinement {
            dataset: spec.dataset,
            base: spec.base,
            lr: spec.lr,
            total,
            logged: log.len(),
            norms_csv,
            schedules,
        });
    }
    Ok((out, plot_error))
}
