//! PNG figures of `sflab norms` (plotters): measured vs predicted steady states (log-log,
//! with `y = x`), and panels of norm traces over training (log y, binned means).

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::end::LAST;
use super::grid::{LearnerKind, Shape};
use super::steady::SteadyRow;
use super::trace::{Norm, Trace};
use crate::refine_run::plot::Series;

/// Colours (matplotlib's tab10 order).
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

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

/// `log10` range of the positive finite values, padded; `(−1, 1)` if there are none.
fn log_bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.1, 10.0);
    }
    let pad = ((hi / lo).log10() * 0.08).max(0.02);
    (lo / 10f64.powf(pad), hi * 10f64.powf(pad))
}

/// One chart of a figure: series against step.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Caption.
    pub title: String,
    /// y-axis label.
    pub y_desc: String,
    /// Log y axis (non-positive values are then left out) if the values span more than a
    /// decade; else linear.
    pub log_y: bool,
    /// The curves.
    pub series: Vec<Series>,
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Linear range of the finite values, padded; `(0, 1)` if there are none.
fn lin_bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(hi.abs() * 1e-3).max(1e-9);
    (lo - pad, hi + pad)
}

impl Panel {
    fn visible(&self, p: &(f64, f64)) -> bool {
        p.0.is_finite() && p.1.is_finite() && (!self.log_y || p.1 > 0.0)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let pts = || {
            self.series
                .iter()
                .flat_map(|s| s.points.iter())
                .filter(|p| self.visible(p))
        };
        let x1 = pts().map(|p| p.0).fold(1.0, f64::max);
        let ys = || pts().map(|p| p.1);
        // Within one decade plotters' log axis has too few labels to read: use a linear one.
        let (lo, hi) = ys().fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        if self.log_y && hi > 10.0 * lo {
            let (y0, y1) = log_bounds(ys());
            let chart = ChartBuilder::on(area)
                .caption(&self.title, ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..x1, (y0..y1).log_scale())?;
            self.fill(chart)
        } else {
            let (y0, y1) = lin_bounds(ys());
            let chart = ChartBuilder::on(area)
                .caption(&self.title, ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..x1, y0..y1)?;
            self.fill(chart)
        }
    }

    fn fill<'a, DB, Y>(
        &self,
        mut chart: ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
    ) -> DrawResult<DB>
    where
        DB: DrawingBackend + 'a,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc(self.y_desc.as_str())
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.3}"))
            .draw()?;
        for s in &self.series {
            let color = s.color;
            let line = s.points.iter().copied().filter(|p| self.visible(p));
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(2)))?
                .label(s.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .draw()?;
        Ok(())
    }
}

/// Draws `panels` in a grid of `cols` columns under `title` into the PNG `path`.
///
/// # Errors
/// Drawing or writing errors (e.g. no usable font).
pub fn save_panels(path: &Path, title: &str, panels: &[Panel], cols: usize) -> anyhow::Result<()> {
    let cols = cols.max(1);
    let rows = panels.len().div_ceil(cols).max(1);
    let size = (600 * cols as u32, 420 * rows as u32 + 40);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    let draw = || -> DrawResult<BitMapBackend<'_>> {
        root.fill(&WHITE)?;
        let body = root.titled(title, ("sans-serif", 22))?;
        for (panel, area) in panels.iter().zip(body.split_evenly((rows, cols)).iter()) {
            panel.draw(area)?;
        }
        Ok(())
    };
    draw().map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    root.present()
        .map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}

/// `steady.png`: measured against predicted (log-log), one colour per method, and `y = x`.
///
/// # Errors
/// Drawing or writing errors.
pub fn steady(dir: &Path, rows: &[SteadyRow]) -> anyhow::Result<PathBuf> {
    let path = dir.join("steady.png");
    let ok = |r: &&SteadyRow| {
        r.measured > 0.0 && r.predicted > 0.0 && r.measured.is_finite() && r.predicted.is_finite()
    };
    let (lo, hi) = log_bounds(
        rows.iter()
            .filter(ok)
            .flat_map(|r| [r.measured, r.predicted]),
    );
    let root = BitMapBackend::new(&path, (760, 640)).into_drawing_area();
    let draw = || -> DrawResult<BitMapBackend<'_>> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
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
            let color = PALETTE[i];
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .filter(ok)
                .filter(|r| r.method == method)
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
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    };
    draw().map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    root.present()
        .map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    drop(root);
    Ok(path)
}

/// Binned series of `norm` (combined normalized weights) of each trace, coloured in order.
fn norm_series(traces: &[&Trace], norm: Norm, label: impl Fn(&Trace) -> String) -> Vec<Series> {
    traces
        .iter()
        .enumerate()
        .map(|(i, t)| Series {
            label: label(t),
            color: PALETTE[i % PALETTE.len()],
            points: binned(
                t.points
                    .iter()
                    .filter_map(|p| Some((p.step as f64, norm.of(&p.combined()?)))),
                bin_size(t.spec.steps),
            ),
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
        let panel = |name: &str, ts: &[&Trace], norm: Norm, y: &str| Panel {
            title: format!("{name}: {y}"),
            y_desc: y.into(),
            log_y: norm == Norm::Grad,
            series: norm_series(ts, norm, label),
        };
        let panels = [
            panel("Adam", &adam, Norm::Grad, "‖g‖ (normalized)"),
            panel("SGD", &sgd, Norm::Grad, "‖g‖ (normalized)"),
            panel("Adam", &adam, Norm::Weight, "‖w‖ (normalized)"),
            panel("SGD", &sgd, Norm::Weight, "‖w‖ (normalized)"),
        ];
        let path = dir.join(format!("end_{}.png", shape.name()));
        let steps = traces.first().map_or(0, |t| t.spec.steps);
        save_panels(
            &path,
            &format!(
                "{} schedule, T = {steps}: norms of the normalized weights (last {:.0} % = summary window)",
                shape.name(),
                100.0 * (LAST.1 - LAST.0)
            ),
            &panels,
            2,
        )?;
        files.push(path);
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
                .map(|(i, t)| Series {
                    label: label(t),
                    color: PALETTE[i % PALETTE.len()],
                    points: binned(
                        t.points.iter().map(|p| (p.step as f64, f(p))),
                        bin_size(t.spec.steps),
                    ),
                })
                .collect()
        };
        let panels = [
            Panel {
                title: "effective step γ".into(),
                y_desc: "γ".into(),
                log_y: true,
                series: per_step(|p| if p.skipped { f64::NAN } else { p.lr }),
            },
            Panel {
                title: "training loss (minibatch)".into(),
                y_desc: "loss".into(),
                log_y: true,
                series: per_step(|p| p.train_loss),
            },
            Panel {
                title: "‖w‖ (normalized)".into(),
                y_desc: "‖w‖".into(),
                log_y: true,
                series: norm_series(&ts, Norm::Weight, label),
            },
            Panel {
                title: "‖g‖ (normalized)".into(),
                y_desc: "‖g‖".into(),
                log_y: true,
                series: norm_series(&ts, Norm::Grad, label),
            },
        ];
        let slug = learner.label().to_lowercase().replace('-', "_");
        let path = dir.join(format!("magnitude_{slug}.png"));
        let steps = ts[0].spec.steps;
        save_panels(
            &path,
            &format!(
                "{}, constant multiplier, T = {steps}: decay policies",
                learner.label()
            ),
            &panels,
            2,
        )?;
        files.push(path);
    }
    Ok(files)
}
