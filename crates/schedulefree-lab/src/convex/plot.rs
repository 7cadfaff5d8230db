//! PNG plots (plotters): per dataset, train loss of the returned point vs step, one curve per
//! method at its best lr (mean over seeds), log-y, one panel per base.

use std::path::{Path, PathBuf};

use anyhow::Context;
use plotters::prelude::*;

use super::config::{ConvexConfig, Method, fmt_lr};
use super::report::Report;

/// Line colour of each method.
fn color(m: Method) -> RGBColor {
    match m {
        Method::Constant => RGBColor(127, 127, 127),
        Method::LinearDecay => RGBColor(31, 119, 180),
        Method::Cosine => RGBColor(148, 103, 189),
        Method::Polyak => RGBColor(44, 160, 44),
        Method::Primal => RGBColor(255, 127, 14),
        Method::ScheduleFree => RGBColor(214, 39, 40),
        Method::InverseSqrt => RGBColor(188, 189, 34),
        Method::Step => RGBColor(140, 86, 75),
        Method::RefinedL2 => RGBColor(23, 190, 207),
        Method::RefinedL1 => RGBColor(227, 119, 194),
        Method::Custom => RGBColor(0, 0, 0),
    }
}

/// A file-name-safe version of `name`.
pub(crate) fn safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Draw `dir/<dataset>.png` for every dataset; returns the files written.
///
/// # Errors
/// Directory creation or drawing errors (e.g. no usable font for the labels).
pub fn plot_all(dir: &Path, cfg: &ConvexConfig, report: &Report) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = Vec::new();
    for d in 0..report.datasets.len() {
        let path = dir.join(format!("{}.png", safe(&report.datasets[d].name)));
        plot_dataset(&path, cfg, report, d)
            .with_context(|| format!("drawing {}", path.display()))?;
        files.push(path);
    }
    Ok(files)
}

fn plot_dataset(path: &Path, cfg: &ConvexConfig, report: &Report, d: usize) -> anyhow::Result<()> {
    let info = &report.datasets[d];
    let panels = cfg.bases.len().max(1);
    let root = BitMapBackend::new(path, (640 * panels as u32, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "{} ({}×{}, {} classes): train loss of x, best lr per method, mean of {} seeds",
        info.name, info.rows, info.d, info.classes, cfg.seeds
    );
    let root = root.titled(&title, ("sans-serif", 20))?;
    for (area, &base) in root.split_evenly((1, panels)).iter().zip(&cfg.bases) {
        let curves: Vec<_> = report
            .curves
            .iter()
            .filter(|c| c.dataset == d && c.base == base)
            .collect();
        // Log-y: the axis is log10(loss) (nicer ticks than plotters' log scale over less than
        // a decade); a loss of exactly 0 (separable data, f32 saturation) sits on the floor.
        let ys = curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.1))
            .filter(|y| y.is_finite() && *y > 0.0);
        let (lo, hi) = ys.fold((f64::INFINITY, 0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
        let (lo, hi) = if lo.is_finite() && hi > 0.0 {
            (lo.log10(), hi.log10())
        } else {
            (-3.0, 1.0)
        };
        let pad = ((hi - lo) * 0.05).max(0.02);
        let (lo, hi) = (lo - pad, hi + pad);
        let x_max = curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.0))
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{} base", base.label()), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..x_max, lo..hi)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("train loss (log scale)")
            .y_labels(10)
            .y_label_formatter(&|v| {
                let y = 10f64.powf(*v);
                if y >= 0.01 {
                    format!("{y:.3}")
                } else {
                    format!("{y:.1e}")
                }
            })
            .x_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        for c in &curves {
            let col = color(c.method);
            let width = if c.method == Method::ScheduleFree {
                3
            } else {
                2
            };
            let pts: Vec<(f64, f64)> = c
                .points
                .iter()
                .filter(|p| p.1.is_finite())
                .map(|p| (p.0 as f64, if p.1 > 0.0 { p.1.log10().max(lo) } else { lo }))
                .collect();
            chart
                .draw_series(LineSeries::new(pts, col.stroke_width(width)))?
                .label(format!("{} (lr {})", c.method.label(), fmt_lr(c.lr)))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(width))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()?;
    }
    root.present()?;
    Ok(())
}
