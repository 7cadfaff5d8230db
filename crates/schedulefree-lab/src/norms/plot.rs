//! PNG figures of `sflab norms` (plotters): measured vs predicted steady states (log-log,
//! with `y = x`), and panels of norm traces over training (log y, binned means).

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::end::LAST;
use super::grid::{LearnerKind, Shape};
use super::steady::SteadyRow;
use super::trace::{Norm, Trace};
use crate::output::figure::{DrawResult, legend, lin_range};
use crate::output::{Figure, Panel, Panels, Series, palette, save_png};

/// Points per plotted bin of a trace (about 200 bins per run).
fn bin_size(steps: u64) -> usize {
    (steps / 200).max(1) as usize
}

/// Means of consecutive chunks of `bin` points (non-finite points left out).
pub fn binned(points: impl Iterator<Item = (f64, f64)>, bin: usize) -> Vec<(f64, f64)> {
    let pts: Vec<(f64, f64)> = points
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    pts.chunks(bin.max(1))
        .map(|c| {
            let n = c.len() as f64;
            (
                c.iter().map(|p| p.0).sum::<f64>() / n,
                c.iter().map(|p| p.1).sum::<f64>() / n,
            )
        })
        .collect()
}

/// The steady-state figure: measured against predicted (log-log), one colour per method,
/// and `y = x`.
struct SteadyFigure<'a> {
    rows: &'a [SteadyRow],
}

impl SteadyFigure<'_> {
    fn shown(r: &SteadyRow) -> bool {
        r.measured > 0.0 && r.predicted > 0.0 && r.measured.is_finite() && r.predicted.is_finite()
    }
}

impl Figure for SteadyFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (760, 640)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let values = self
            .rows
            .iter()
            .filter(|r| Self::shown(r))
            .flat_map(|r| [r.measured.log10(), r.predicted.log10()]);
        let (lo, hi) = lin_range(values, 0.08, 0.02).unwrap_or((-1.0, 1.0));
        let (lo, hi) = (10f64.powf(lo), 10f64.powf(hi));
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(root)
            .caption(
                "steady state: SGD ‖g‖/‖w‖ and AdamW ‖w‖ (normalized weights, last 25 %)",
                ("sans-serif", 16),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((lo..hi).log_scale(), (lo..hi).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("predicted")
            .y_desc("measured")
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&|v| format!("{v:.3}"))
            .y_label_formatter(&|v| format!("{v:.3}"))
            .draw()?;
        chart
            .draw_series(LineSeries::new([(lo, lo), (hi, hi)], BLACK.stroke_width(1)))?
            .label("y = x")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
        for (i, method) in ["SGD", "AdamW(β1=0)", "AdamW"].into_iter().enumerate() {
            let color = palette::cycle(i);
            let pts: Vec<(f64, f64)> = self
                .rows
                .iter()
                .filter(|r| Self::shown(r) && r.method == method)
                .map(|r| (r.predicted, r.measured))
                .collect();
            let label = if method == "SGD" {
                "SGD ‖g‖/‖w‖".to_string()
            } else {
                format!("{method} ‖w‖")
            };
            chart
                .draw_series(pts.into_iter().map(|p| Circle::new(p, 5, color.filled())))?
                .label(label.as_str())
                .legend(move |(x, y)| Circle::new((x + 8, y), 5, color.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft, 14)
    }
}

/// `steady.png`: measured against predicted (log-log), one colour per method, and `y = x`.
///
/// # Errors
/// Drawing or writing errors.
pub fn steady(dir: &Path, rows: &[SteadyRow]) -> anyhow::Result<PathBuf> {
    save_png(&SteadyFigure { rows }, &dir.join("steady.png"))
}

/// A panel of norm traces against step (legend upper left: the curves end on the right).
fn panel(title: String, y_desc: &str, log_y: bool, series: Vec<Series>) -> Panel {
    Panel {
        log_y,
        legend_left: true,
        ..Panel::new(title, "step", y_desc, series)
    }
}

/// `panels` two per row under `title`, written as the PNG `path`.
fn save_grid(path: PathBuf, title: String, panels: Vec<Panel>) -> anyhow::Result<PathBuf> {
    let fig = Panels {
        title,
        cols: 2,
        panel_size: (600, 420),
        panels,
    };
    save_png(&fig, &path)
}

/// Binned series of `norm` (combined normalized weights) of each trace, coloured in order.
fn norm_series(traces: &[&Trace], norm: Norm, label: impl Fn(&Trace) -> String) -> Vec<Series> {
    traces
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let points = t
                .points
                .iter()
                .filter_map(|p| Some((p.step as f64, norm.of(&p.combined()?))));
            Series::new(
                label(t),
                palette::cycle(i),
                binned(points, bin_size(t.spec.steps)),
            )
        })
        .collect()
}

/// `end_<schedule>.png` for each schedule: `‖g‖` and `‖w‖` of the normalized weights over
/// training, Adam family left, SGD family right.
///
/// # Errors
/// Drawing or writing errors.
pub fn end(dir: &Path, traces: &[Trace], shapes: &[Shape]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for &shape in shapes {
        let family = |l: LearnerKind| -> Vec<&Trace> {
            traces
                .iter()
                .filter(|t| t.spec.shape == shape && t.spec.learner == l)
                .collect()
        };
        let (adam, sgd) = (family(LearnerKind::Adam), family(LearnerKind::Sgd));
        let label = |t: &Trace| t.spec.method();
        let panel = |name: &str, ts: &[&Trace], norm: Norm, y: &str| {
            panel(
                format!("{name}: {y}"),
                y,
                norm == Norm::Grad,
                norm_series(ts, norm, label),
            )
        };
        let panels = vec![
            panel("Adam", &adam, Norm::Grad, "‖g‖ (normalized)"),
            panel("SGD", &sgd, Norm::Grad, "‖g‖ (normalized)"),
            panel("Adam", &adam, Norm::Weight, "‖w‖ (normalized)"),
            panel("SGD", &sgd, Norm::Weight, "‖w‖ (normalized)"),
        ];
        let steps = traces.first().map_or(0, |t| t.spec.steps);
        files.push(save_grid(
            dir.join(format!("end_{}.png", shape.name())),
            format!(
                "{} schedule, T = {steps}: norms of the normalized weights (last {:.0} % = summary window)",
                shape.name(),
                100.0 * (LAST.1 - LAST.0)
            ),
            panels,
        )?);
    }
    Ok(files)
}

/// `magnitude_<learner>.png` per learner: effective step, `‖w‖`, `‖g‖` and training loss
/// over training for each decay policy.
///
/// # Errors
/// Drawing or writing errors.
pub fn magnitude(dir: &Path, traces: &[Trace]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for learner in LearnerKind::MAGNITUDE {
        let ts: Vec<&Trace> = traces
            .iter()
            .filter(|t| t.spec.learner == learner)
            .collect();
        if ts.is_empty() {
            continue;
        }
        let label = |t: &Trace| t.spec.decay.label().to_string();
        let per_step = |f: fn(&super::trace::TracePoint) -> f64| -> Vec<Series> {
            ts.iter()
                .enumerate()
                .map(|(i, t)| {
                    let points = t.points.iter().map(|p| (p.step as f64, f(p)));
                    Series::new(
                        label(t),
                        palette::cycle(i),
                        binned(points, bin_size(t.spec.steps)),
                    )
                })
                .collect()
        };
        let panels = vec![
            panel(
                "effective step γ".into(),
                "γ",
                true,
                per_step(|p| if p.skipped { f64::NAN } else { p.lr }),
            ),
            panel(
                "training loss (minibatch)".into(),
                "loss",
                true,
                per_step(|p| p.train_loss),
            ),
            panel(
                "‖w‖ (normalized)".into(),
                "‖w‖",
                true,
                norm_series(&ts, Norm::Weight, label),
            ),
            panel(
                "‖g‖ (normalized)".into(),
                "‖g‖",
                true,
                norm_series(&ts, Norm::Grad, label),
            ),
        ];
        let slug = learner.label().to_lowercase().replace('-', "_");
        let steps = ts[0].spec.steps;
        files.push(save_grid(
            dir.join(format!("magnitude_{slug}.png")),
            format!(
                "{}, constant multiplier, T = {steps}: decay policies",
                learner.label()
            ),
            panels,
        )?);
    }
    Ok(files)
}
