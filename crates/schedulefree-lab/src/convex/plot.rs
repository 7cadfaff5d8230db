//! PNG plots: per dataset, train loss of the returned point vs step, one curve per method at
//! its best lr (mean over seeds), log y, one panel per base.

use std::path::{Path, PathBuf};

use anyhow::Context;
use plotters::style::RGBColor;

use super::config::{ConvexConfig, Method, fmt_lr};
use super::report::Report;
use crate::output::figure::safe_file_name;
use crate::output::{Panel, Panels, Series, palette, save_png};

/// Line colour of each method (the lab's palette).
fn color(m: Method) -> RGBColor {
    match m {
        Method::Constant => palette::CONSTANT,
        Method::LinearDecay => palette::LINEAR_DECAY,
        Method::Cosine => palette::COSINE,
        Method::Polyak => palette::POLYAK,
        Method::Primal => palette::PRIMAL,
        Method::ScheduleFree => palette::SCHEDULE_FREE,
        Method::InverseSqrt => palette::INVERSE_SQRT,
        Method::Step => palette::STEP,
        Method::RefinedL2 => palette::REFINED_L2,
        Method::RefinedL1 => palette::REFINED_L1,
        Method::Custom => palette::CUSTOM,
    }
}

/// Draw `dir/<dataset>.png` for every dataset; returns the files written.
///
/// # Errors
/// Directory creation or drawing errors (e.g. no usable font for the labels).
pub fn plot_all(dir: &Path, cfg: &ConvexConfig, report: &Report) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = Vec::new();
    for d in 0..report.datasets.len() {
        let path = dir.join(format!("{}.png", safe_file_name(&report.datasets[d].name)));
        files.push(save_png(&figure(cfg, report, d), &path)?);
    }
    Ok(files)
}

/// Dataset `d`'s figure: one log-y panel per base (a loss of exactly 0, separable data or f32
/// saturation, sits on the axis floor); Schedule-Free drawn wider.
fn figure(cfg: &ConvexConfig, report: &Report, d: usize) -> Panels {
    let info = &report.datasets[d];
    let panels = cfg
        .bases
        .iter()
        .map(|&base| {
            let series = report
                .curves
                .iter()
                .filter(|c| c.dataset == d && c.base == base)
                .map(|c| Series {
                    width: if c.method == Method::ScheduleFree {
                        3
                    } else {
                        2
                    },
                    ..Series::new(
                        format!("{} (lr {})", c.method.label(), fmt_lr(c.lr)),
                        color(c.method),
                        c.points.iter().map(|&(s, l)| (s as f64, l)).collect(),
                    )
                })
                .collect();
            Panel::new(
                format!("{} base", base.label()),
                "step",
                "train loss (log scale)",
                series,
            )
            .log_y()
        })
        .collect();
    Panels {
        title: format!(
            "{} ({}×{}, {} classes): train loss of x, best lr per method, mean of {} seeds",
            info.name, info.rows, info.d, info.classes, cfg.seeds
        ),
        cols: cfg.bases.len().max(1),
        panel_size: (640, 460),
        panels,
    }
}
